//! What desktop notifications say, shared by the daemon (when no tray is running) and the tray.

/// At most `n` characters of a prompt, on one line, with `…` when cut.
pub fn excerpt(prompt: &str, n: usize) -> String {
    let one_line = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        one_line.chars().take(n.saturating_sub(1)).chain(['…']).collect()
    }
}

/// `42 s`, `3 min 5 s`, `1 h 2 min`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// Summary and body of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub summary: String,
    pub body: String,
}

pub fn completed(prompt: &str, duration_ms: u64, output: &std::path::Path) -> Note {
    let file = output.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    Note {
        summary: "Video ready".into(),
        body: format!("“{}” in {} — {file}", excerpt(prompt, 80), duration(duration_ms)),
    }
}

pub fn failed(prompt: &str, message: &str) -> Note {
    Note { summary: "Generation failed".into(), body: format!("“{}”: {message}", excerpt(prompt, 80)) }
}

/// The action key that opens the video (also sent for a click on the notification itself: `default`).
pub const ACTION_OPEN: &str = "open";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(excerpt("a  red\nfox", 10), "a red fox");
        assert_eq!(excerpt("abcdefghijk", 5), "abcd…");
        assert_eq!(duration(42_400), "42 s");
        assert_eq!(duration(185_000), "3 min 5 s");
        assert_eq!(duration(3_720_000), "1 h 2 min");
        let n = completed("a fox", 61_000, std::path::Path::new("/o/2026_a-fox_7.mp4"));
        assert_eq!(n.summary, "Video ready");
        assert_eq!(n.body, "“a fox” in 1 min 1 s — 2026_a-fox_7.mp4");
        assert_eq!(failed("a fox", "model not installed").body, "“a fox”: model not installed");
    }
}
