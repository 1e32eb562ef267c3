//! What `ltxctl` prints: the plain-text form of each reply (`--json`'s documents are [`crate::json`]'s), and the
//! one way anything reaches stdout or stderr ([`line`], [`note`]; the crate's `println!` and `eprintln!`).
use crate::exit::{EXIT_FAILED, EXIT_OK};
use ltx_protocol::models::human_bytes;
use ltx_protocol::{ComponentStatus, DaemonStatus, Eta, JobId, JobRecord, QueueInfo};
use std::io::Write;

/// Writes `s` and a newline to stdout (line-buffered: written at once). When the reader has gone (`| head -1`),
/// ltxctl ends at once and quietly with exit 0 — it had what it wanted, and a job ltxctl follows keeps running;
/// any other write error ends it with exit 1 and the reason on stderr.
pub fn line(s: &str) {
    bytes(format!("{s}\n").as_bytes());
}

/// Writes `b` to stdout, as [`line`].
pub fn bytes(b: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(b).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(EXIT_OK.into());
        }
        note(&format!("ltxctl: cannot write to stdout: {e}"));
        std::process::exit(EXIT_FAILED.into());
    }
}

/// Writes `s` and a newline to stderr; a stderr that cannot be written is ignored (there is nowhere to say so).
pub fn note(s: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

/// A question on stderr, without a newline.
pub fn prompt(s: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(s.as_bytes()).and_then(|()| err.flush());
}

/// Prints a JSON document (`crate::json`) on one line, `"schema"` added.
pub fn json(doc: serde_json::Value) {
    line(&ltx_protocol::json::document(doc).to_string());
}

/// `s` cut to `n` characters, an ellipsis marking the cut.
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// How long ago the Unix time `ms` was: `12 s ago`, `3 min ago`, `5 h ago`, `2 d ago`.
fn ago(ms: u64, now: u64) -> String {
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// `768x512×97`: the size and the frame count.
fn shape(r: &JobRecord) -> String {
    format!("{}x{}×{}", r.request.width, r.request.height, r.request.frames)
}

/// Rows under a header, each column as wide as its widest cell (the last one as it is).
fn table(header: &[&str], rows: &[Vec<String>]) {
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).chain([header[c].len()]).max().unwrap_or(0);
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, s)| if c == last { s.to_string() } else { format!("{s:<w$}", w = widths[c]) })
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// A span of time, short: `4.1s`, `12s`, `1m 05s`, `2h 03m`.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        10_000..60_000 => format!("{s}s"),
        60_000..3_600_000 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// The time since the job started and the whole job's ETA, as `ltxctl` shows them: `12s elapsed, ETA 45s`, or
/// `ETA ~45s (estimate)` while the daemon has only past jobs to go by.
pub fn clock(elapsed_ms: u64, eta: Option<Eta>) -> String {
    let left = |ms: u64| if ms < 1000 { "<1s".to_string() } else { span(ms) };
    let eta = match eta {
        Some(Eta { remaining_ms, measured: true }) => format!(", ETA {}", left(remaining_ms)),
        Some(Eta { remaining_ms, measured: false }) => format!(", ETA ~{} (estimate)", left(remaining_ms)),
        None => String::new(),
    };
    format!("{} elapsed{eta}", span(elapsed_ms))
}

/// How far a job in the queue is: the running job's last step, a pending job's place.
fn progress(q: &QueueInfo, r: &JobRecord) -> String {
    if q.running.as_ref().is_some_and(|x| x.id == r.id) {
        return q.progress.as_ref().map_or("starting".into(), |p| {
            let steps = if p.total > 0 { format!(" {}/{}", p.step, p.total) } else { String::new() };
            format!("{}{steps}, {}", p.stage, clock(p.elapsed_ms, p.eta))
        });
    }
    let place = q.pending.iter().position(|p| p.id == r.id).map_or(0, |i| i + 1);
    format!("#{place} in line")
}

pub fn status(s: &DaemonStatus) {
    println!("ltxd {} (protocol v{}), pid {}, up {}s", s.daemon_version, s.protocol_version, s.pid, s.uptime_ms / 1000);
    println!("socket:  {}", s.socket.display());
    let running = s.running.map_or("none".into(), |j| format!("job {j}"));
    println!(
        "queue:   {}{} running, {} pending (max {})",
        if s.paused { "PAUSED, " } else { "" },
        running,
        s.pending,
        s.capacity
    );
    println!("outputs: {}", s.outputs_dir.display());
    println!("models:  {}", s.models_dir.display());
    println!("compute: {}", s.compute);
    println!("memory:  {}", s.memory);
    println!("default: {}", s.decision.summary());
    if let Some(pull) = s.decision.pull() {
        println!("         install it: {pull}");
    }
    if s.engine_restarts > 0 {
        let last = s.engine_panic.as_deref().unwrap_or("no message");
        println!("engine:  restarted {} time(s) after a panic; last: {last}", s.engine_restarts);
    }
}

/// `ltxctl queue`: the running job and the pending ones, with their progress.
pub fn queue(q: &QueueInfo) {
    if q.paused {
        println!("queue paused (`ltxctl resume` to continue)");
    }
    if q.running.is_none() && q.pending.is_empty() {
        println!("queue empty");
        return;
    }
    let now = now_ms();
    let rows: Vec<Vec<String>> = q
        .running
        .iter()
        .chain(&q.pending)
        .map(|r| {
            let prompt = short(&r.request.prompt, 40);
            vec![r.id.to_string(), r.state.name().into(), ago(r.created_ms, now), shape(r), progress(q, r), prompt]
        })
        .collect();
    table(&["ID", "STATE", "SUBMITTED", "SIZE", "PROGRESS", "PROMPT"], &rows);
}

pub fn cancelled(jobs: &[JobId]) {
    if jobs.is_empty() {
        println!("nothing to cancel");
    } else {
        println!("cancelled {}", jobs.iter().map(|j| j.to_string()).collect::<Vec<_>>().join(", "));
    }
}

/// `pause` / `resume`, and what they found.
pub fn paused(pause: bool, was_paused: bool) {
    println!(
        "{}",
        match (pause, was_paused) {
            (true, false) => "queue paused: the current job finishes, then the queue holds",
            (true, true) => "the queue was already paused (`ltxctl resume` runs it again)",
            (false, true) => "queue resumed",
            (false, false) => "the queue is not paused: nothing to resume",
        }
    );
}

/// `ltxctl history`: finished jobs, newest first, with their times and output (or why they failed).
pub fn history(h: &[JobRecord]) {
    if h.is_empty() {
        println!("no finished jobs");
        return;
    }
    let now = now_ms();
    let rows: Vec<Vec<String>> = h
        .iter()
        .map(|r| {
            let finished = r.finished_ms.map_or("-".into(), |t| ago(t, now));
            let took = match (r.started_ms, r.finished_ms) {
                (Some(s), Some(f)) => ltx_service::desktop::duration(f.saturating_sub(s)),
                _ => "-".into(),
            };
            let out = r.output.as_ref().map(|p| p.display().to_string()).or(r.message.clone()).unwrap_or_default();
            let (state, created, prompt) =
                (r.state.name().into(), ago(r.created_ms, now), short(&r.request.prompt, 30));
            vec![r.id.to_string(), state, created, finished, took, shape(r), prompt, out]
        })
        .collect();
    table(&["ID", "STATE", "SUBMITTED", "FINISHED", "TOOK", "SIZE", "PROMPT", "OUTPUT"], &rows);
}

/// `ltxctl show`: one job in detail.
pub fn job(r: &JobRecord) {
    let q = &r.request;
    let now = now_ms();
    println!("job {}: {}", r.id, r.state.name());
    println!("prompt:   {}", q.prompt);
    let started = r.started_ms.map(|t| format!(", started {}", ago(t, now))).unwrap_or_default();
    let finished = r.finished_ms.map(|t| format!(", finished {}", ago(t, now))).unwrap_or_default();
    println!("times:    submitted {}{started}{finished}", ago(r.created_ms, now));
    println!("model:    {} / {} pipeline", q.variant.name(), q.pipeline.name());
    println!(
        "video:    {}x{}, {} frames @ {} fps, {} steps, guidance {}, seed {}",
        q.width, q.height, q.frames, q.fps, q.steps, q.guidance_scale, r.seed
    );
    if let Some(o) = &r.output {
        println!("output:   {}", o.display());
    }
    if let Some(m) = &r.message {
        println!("message:  {m}");
    }
    if !r.timings.is_empty() {
        let t: Vec<_> = r.timings.iter().map(|(stage, ms)| format!("{stage} {ms} ms")).collect();
        println!("timings:  {}", t.join(", "));
    }
}

/// `ltxctl ps`: the loaded components and how long they stay.
pub fn components(comps: &[ComponentStatus]) {
    if comps.is_empty() {
        println!("no models loaded");
        return;
    }
    let now = now_ms();
    let rows: Vec<Vec<String>> = comps
        .iter()
        .map(|c| {
            let unloads = c.expires_ms.map_or("never (kept loaded)".into(), |t| {
                format!("in {}", ltx_service::desktop::duration(t.saturating_sub(now)))
            });
            vec![c.name.to_string(), c.variant.name().into(), human_bytes(c.bytes), unloads]
        })
        .collect();
    table(&["NAME", "VARIANT", "SIZE", "UNLOADS"], &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_clocks() {
        let spans: Vec<_> = [0, 4_100, 12_000, 65_000, 7_380_000].into_iter().map(span).collect();
        assert_eq!(spans, ["0.0s", "4.1s", "12s", "1m 05s", "2h 03m"]);
        assert_eq!(clock(4_100, None), "4.1s elapsed");
        assert_eq!(clock(4_100, Some(Eta { remaining_ms: 45_000, measured: true })), "4.1s elapsed, ETA 45s");
        let estimate = Some(Eta { remaining_ms: 300, measured: false });
        assert_eq!(clock(0, estimate), "0.0s elapsed, ETA ~<1s (estimate)", "never `ETA 0.0s`");
    }

    #[test]
    fn ages() {
        let now = 10 * 86_400_000;
        let ages = [0, 59_000, 60_000, 3_599_000, 3_600_000, 86_400_000].map(|d| ago(now - d, now));
        assert_eq!(ages, ["0 s ago", "59 s ago", "1 min ago", "59 min ago", "1 h ago", "1 d ago"]);
        assert_eq!(ago(now + 5000, now), "0 s ago", "a clock behind the daemon's");
    }

    #[test]
    fn short_cuts_with_an_ellipsis() {
        assert_eq!(short("abc", 3), "abc");
        assert_eq!(short("abcdef", 4), "abc…");
        assert_eq!(short("ééééé", 3), "éé…");
    }
}
