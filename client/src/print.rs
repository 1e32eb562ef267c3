//! What `ltxctl` prints: the plain-text form of each reply (`--json`'s documents are [`crate::json`]'s), and the
//! one way anything reaches stdout or stderr ([`line`], [`note`]; the crate's `println!` and `eprintln!`).
use crate::exit::{EXIT_FAILED, EXIT_OK};
use ltx_protocol::{ComponentStatus, DaemonStatus, JobId, JobRecord, QueueInfo};
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

/// One job per line: id, state, prompt, output (or message).
pub fn job_line(r: &JobRecord) -> String {
    let out = r.output.as_ref().map(|p| p.display().to_string()).or(r.message.clone()).unwrap_or_default();
    format!("{:>6}  {:<11}  {:<40}  {}", r.id, r.state.name(), short(&r.request.prompt, 40), out)
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
    if s.engine_restarts > 0 {
        let last = s.engine_panic.as_deref().unwrap_or("no message");
        println!("engine:  restarted {} time(s) after a panic; last: {last}", s.engine_restarts);
    }
}

pub fn queue(q: &QueueInfo) {
    if q.paused {
        println!("queue paused (`ltxctl resume` to continue)");
    }
    if q.running.is_none() && q.pending.is_empty() {
        println!("queue empty");
    }
    for r in q.running.iter().chain(&q.pending) {
        println!("{}", job_line(r));
    }
}

pub fn cancelled(jobs: &[JobId]) {
    if jobs.is_empty() {
        println!("nothing to cancel");
    } else {
        println!("cancelled {}", jobs.iter().map(|j| j.to_string()).collect::<Vec<_>>().join(", "));
    }
}

pub fn paused(pause: bool) {
    if pause {
        println!("queue paused: the current job finishes, then the queue holds");
    } else {
        println!("queue resumed");
    }
}

pub fn history(h: &[JobRecord]) {
    h.iter().for_each(|r| println!("{}", job_line(r)));
}

/// `ltxctl show`: one job in detail.
pub fn job(r: &JobRecord) {
    let q = &r.request;
    println!("job {}: {}", r.id, r.state.name());
    println!("prompt:   {}", q.prompt);
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
    println!("{:<24} {:<14} {:>10}  UNTIL", "NAME", "VARIANT", "SIZE");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    for c in comps {
        let until = c.expires_ms.map_or("forever".into(), |t| format!("{}s from now", t.saturating_sub(now) / 1000));
        println!("{:<24} {:<14} {:>8}MB  {until}", c.name, c.variant.name(), c.bytes >> 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_cuts_with_an_ellipsis() {
        assert_eq!(short("abc", 3), "abc");
        assert_eq!(short("abcdef", 4), "abc…");
        assert_eq!(short("ééééé", 3), "éé…");
    }
}
