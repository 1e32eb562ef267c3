//! Output naming and placement: `<date>_<slug>_<seed>.mp4`, temp file + no-overwrite link, JSON sidecar.
use std::io::Write;
use std::path::{Path, PathBuf};

/// `YYYY-MM-DD` (UTC) for a Unix time in milliseconds.
pub fn date(ms: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = (ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Lower-case ASCII words of the prompt joined by `-`, at most 48 characters.
pub fn slug(prompt: &str) -> String {
    let mut out = String::new();
    for word in prompt.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        if out.len() + word.len() + 1 > 48 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    if out.is_empty() {
        out.push_str("video");
    }
    out
}

/// The intended final path for a job (may be taken by the time it finishes: see [`place`]).
pub fn target(output: Option<&Path>, outputs_dir: &Path, created_ms: u64, prompt: &str, seed: u64) -> PathBuf {
    let name = format!("{}_{}_{seed}.mp4", date(created_ms), slug(prompt));
    match output {
        Some(p) if p.is_dir() => p.join(name),
        Some(p) => p.to_path_buf(),
        None => outputs_dir.join(name),
    }
}

/// The temp file the engine writes, in the target's directory so the final link is atomic.
pub fn temp_for(target: &Path, job: u64) -> PathBuf {
    let name = target.file_name().map_or_else(|| "out.mp4".into(), |n| n.to_string_lossy().into_owned());
    target.with_file_name(format!(".{name}.{job}.part"))
}

fn numbered(target: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return target.to_path_buf();
    }
    let stem = target.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let ext = target.extension().map_or_else(String::new, |e| format!(".{}", e.to_string_lossy()));
    target.with_file_name(format!("{stem}-{n}{ext}"))
}

/// Moves `tmp` to `target` — or `target-1`, `target-2`, … — without ever replacing an existing file.
pub fn place(tmp: &Path, target: &Path) -> std::io::Result<PathBuf> {
    for n in 0..10_000 {
        let cand = numbered(target, n);
        match std::fs::hard_link(tmp, &cand) {
            Ok(()) => {
                std::fs::remove_file(tmp)?;
                return Ok(cand);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // File systems without hard links: check, then rename (racy only against other writers).
            Err(_) if cand.symlink_metadata().is_err() => {
                std::fs::rename(tmp, &cand)?;
                return Ok(cand);
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no free output name"))
}

/// Writes `bytes` next to `video` as `<name>.json` (temp + no-overwrite placement).
pub fn write_sidecar(video: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let target = video.with_extension("json");
    let tmp = target.with_file_name(format!(".{}.part", target.file_name().unwrap_or_default().to_string_lossy()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    place(&tmp, &target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_no_overwrite() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_795_737_600_000), "2026-11-27");
        assert_eq!(slug("A cat, on the MOON!  ünïcode"), "a-cat-on-the-moon-n-code");
        assert_eq!(slug("日本"), "video");
        assert!(slug(&"word ".repeat(40)).len() <= 48);
        let dir = tempfile::tempdir().unwrap();
        let t = target(None, dir.path(), 0, "a cat", 7);
        assert_eq!(t, dir.path().join("1970-01-01_a-cat_7.mp4"));
        for i in 0..3 {
            let tmp = temp_for(&t, i);
            std::fs::write(&tmp, [i as u8]).unwrap();
            let got = place(&tmp, &t).unwrap();
            assert_eq!(std::fs::read(&got).unwrap(), [i as u8]);
            assert!(!tmp.exists());
        }
        assert!(dir.path().join("1970-01-01_a-cat_7-2.mp4").exists());
        assert_eq!(std::fs::read(&t).unwrap(), [0]);
        let side = write_sidecar(&t, b"{}").unwrap();
        assert_eq!(side, dir.path().join("1970-01-01_a-cat_7.json"));
    }
}
