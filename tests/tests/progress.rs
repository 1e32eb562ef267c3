//! Progress as people see it (issue 15, friction 3): a spinner with the stage until steps are known (no `0/0`,
//! also for a `follow` that joins mid-job and in `queue`), the time since the job started, no `ETA 0.0s` at
//! step 1, and a whole-job ETA from the daemon learned from this machine's past jobs, labelled an estimate until
//! the job's own steps back it, within 25 % of the real time left from step 3 on — for a size and step count no
//! past job had, and with no past job at all.
use ltx_e2e::pty::Pty;
use ltx_e2e::*;
use ltx_protocol::{Eta, EventKind, GenerationRequest, ModelVariant, Pipeline, Reply, Request};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

fn on_a_terminal(d: &Daemon, args: &[&str]) -> Pty {
    let mut c = d.ctl_cmd(args);
    c.env("TERM", "xterm-256color");
    Pty::spawn(c)
}

/// The row of the screen that shows job `id`.
fn row(screen: &[String], id: u64) -> Option<String> {
    screen.iter().find(|l| l.contains(&format!(" job {id}: "))).cloned()
}

#[test]
fn a_spinner_with_the_stage_until_steps_then_the_bar_with_elapsed_and_eta() {
    let d = Daemon::start(bins!());
    let gate = d.gate("g");
    let prompt = format!("held gate={} steps=6 ms=150", gate.display());
    let mut t = on_a_terminal(&d, &["submit", &prompt, "--size", "256x256", "--frames", "9", "--wait"]);
    // Held at the first step: the stage is known, its steps are not.
    let screen = t.wait_screen("denoising before its steps", LONG, |l| l.contains("denoising (stage 1), "));
    let id: u64 = screen[0].trim().parse().expect("the job id first");
    let before = row(&screen, id).expect("the job's row");
    assert!(!before.contains("0/0") && !before.contains('['), "a spinner, not an empty bar: {before}");
    assert!(before.contains(" elapsed"), "{before}");
    // The clock runs on between events.
    std::thread::sleep(Duration::from_millis(1500));
    let later = row(&t.screen(), id).expect("the job's row");
    assert_ne!(later, before, "the elapsed time counts on");

    // `follow` joining now shows where the job is, and `queue` too.
    let mut f = on_a_terminal(&d, &["follow", &id.to_string()]);
    let joined = f.wait_screen("follow's row", LONG, |l| l.contains("denoising (stage 1), "));
    let joined = row(&joined, id).expect("follow's row");
    assert!(!joined.contains("0/0") && joined.contains(" elapsed"), "{joined}");
    let q = String::from_utf8_lossy(&d.ctl(&["queue"]).stdout).into_owned();
    assert!(q.contains("denoising (stage 1), ") && q.contains(" elapsed") && !q.contains("0/0"), "{q}");

    open_gate(&gate);
    for p in [&mut t, &mut f] {
        let code = p.wait(LONG);
        assert_eq!(code, Some(0), "{}", p.screen().join("\n"));
        let raw = p.raw();
        assert!(raw.contains("] 1/6") && raw.contains("] 6/6"), "the bar of the steps: {raw:?}");
        assert!(!raw.contains("0/0") && !raw.contains("ETA 0.0s"), "{raw:?}");
        assert!(p.screen().iter().any(|l| l.starts_with("completed: ")), "{}", p.screen().join("\n"));
    }
}

/// A machine's costs, from the one real job measured in issue 15 (4.4 s a step and 15.6 s of video decode at the
/// default 768×512×97, 4 992 latent tokens) run 20 times faster: milliseconds per latent token × step, per token
/// of decode and of writing, and for the prompt.
const STEP: f64 = 0.044;
const DECODE: f64 = 0.156;
const WRITE: f64 = 0.004;
const PROMPT: u64 = 150;

/// A one-stage job of this size, its stages taking what they take on that machine.
fn job(width: u32, height: u32, frames: u32, steps: u32) -> GenerationRequest {
    let tokens = f64::from(((frames - 1) / 8 + 1) * (width / 32) * (height / 32));
    let ms = |per: f64| (per * tokens).round() as u64;
    let prompt =
        format!("eta steps={steps} ms={} prompt_ms={PROMPT} decode_ms={} write_ms={}", ms(STEP), ms(DECODE), ms(WRITE));
    let mut r = GenerationRequest::for_pipeline(&prompt, ModelVariant::Dev, Pipeline::OneStage);
    (r.width, r.height, r.frames, r.steps, r.audio) = (width, height, frames, steps, false);
    r
}

/// Runs `r` to the end: each event's ETA and the real time left from when it came.
async fn run(c: &mut ltx_protocol::client::Client, r: GenerationRequest) -> Vec<(EventKind, Option<Eta>, u64)> {
    let id = submit(c, r).await;
    assert_eq!(c.request(Request::Subscribe { job: Some(id), previews: false }).await.unwrap(), Reply::Subscribed);
    let mut seen = Vec::new();
    loop {
        let e = tokio::time::timeout(LONG, c.next_event()).await.expect("event timeout").expect("event");
        let at = Instant::now();
        if let EventKind::Completed { .. } = e.kind {
            let left = |t: Instant| (at - t).as_millis() as u64;
            return seen.into_iter().map(|(k, eta, t)| (k, eta, left(t))).collect();
        }
        assert!(!e.kind.is_final(), "{:?}", e.kind);
        let eta = match &e.kind {
            EventKind::Stage { eta, .. } | EventKind::Step { eta, .. } => *eta,
            _ => None,
        };
        seen.push((e.kind, eta, at));
    }
}

/// The ETA's error at every step from 3 on, as fractions of the real time left; printed.
fn errors(what: &str, seen: &[(EventKind, Option<Eta>, u64)]) -> Vec<f64> {
    let mut out = Vec::new();
    for (kind, eta, real) in seen {
        if let EventKind::Step { step: step @ 3.., total, .. } = kind {
            let eta = eta.unwrap_or_else(|| panic!("{what}: no ETA at step {step}"));
            let err = (eta.remaining_ms as f64 - *real as f64) / *real as f64;
            println!(
                "{what}: step {step}/{total}: ETA {} ms, real {real} ms, error {:+.1} %",
                eta.remaining_ms,
                err * 100.0
            );
            out.push(err.abs());
        }
    }
    out
}

#[tokio::test]
async fn the_eta_is_within_a_quarter_of_the_time_left_from_step_3_on() {
    // With an empty history: nothing to go by before the first step, then the job's own steps.
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    let seen = run(&mut c, job(768, 512, 97, 20)).await;
    let before: Vec<_> = seen.iter().take_while(|(k, ..)| !matches!(k, EventKind::Step { .. })).collect();
    assert!(before.iter().all(|(_, eta, _)| eta.is_none()), "no ETA from nothing: {before:?}");
    let first = seen.iter().find(|(k, ..)| matches!(k, EventKind::Step { step: 1, .. })).and_then(|s| s.1);
    assert!(first.is_some_and(|e| e.remaining_ms > 1000 && !e.measured), "step 1: {first:?}");
    let empty = errors("empty history", &seen);

    // A history of other sizes and step counts; then a job like none of them.
    for (w, h, f, s) in [(512, 512, 49, 12), (640, 384, 65, 16), (384, 256, 33, 30)] {
        run(&mut c, job(w, h, f, s)).await;
    }
    let seen = run(&mut c, job(768, 512, 97, 20)).await;
    let stages = seen.iter().take_while(|(k, ..)| !matches!(k, EventKind::Step { .. }));
    let before: Vec<_> = stages.filter(|(k, ..)| matches!(k, EventKind::Stage { .. })).collect();
    assert!(!before.is_empty());
    for (kind, eta, real) in &before {
        let eta = eta.unwrap_or_else(|| panic!("{kind:?}: no ETA with a history"));
        assert!(!eta.measured, "an estimate before the job's own steps: {kind:?}");
        let err = (eta.remaining_ms as f64 - *real as f64) / *real as f64;
        println!(
            "history, before the steps ({kind:?}): ETA {} ms, real {real} ms, error {:+.1} %",
            eta.remaining_ms,
            err * 100.0
        );
    }
    let learned = errors("history", &seen);
    let worst = |e: &[f64]| e.iter().copied().fold(0.0, f64::max);
    println!(
        "worst error from step 3 on: empty history {:.1} %, history {:.1} %",
        worst(&empty) * 100.0,
        worst(&learned) * 100.0
    );
    assert!(worst(&empty) < 0.25 && worst(&learned) < 0.25, "empty {empty:?}, history {learned:?}");
}
