//! The engine failing hard: a panic is contained (the job fails `engine_crashed` with the panic's message, the
//! engine is rebuilt, later jobs run, `status` counts the restart); an abort nothing in-process can catch ends
//! the daemon, and the next start fails that job with a clear message and runs the rest of the queue.
use ltx_e2e::*;
use ltx_protocol::{EventKind, JobState, Reply, Request};
use serde_json::Value;
use std::time::Duration;

fn failed(evs: &[ltx_protocol::Event]) -> (String, String) {
    match &evs.last().expect("events").kind {
        EventKind::Failed { code, message } => (code.clone(), message.clone()),
        other => panic!("expected a failure, got {other:?} in {evs:?}"),
    }
}

fn completed(evs: &[ltx_protocol::Event]) {
    assert!(matches!(evs.last().expect("events").kind, EventKind::Completed { .. }), "{evs:?}");
}

/// `ltxctl --json status` as JSON (read by field name, so the test also runs against older daemons).
fn status(d: &Daemon) -> Value {
    let o = d.ctl(&["--json", "status"]);
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&o.stdout).expect("status JSON")
}

#[tokio::test]
async fn an_engine_panic_fails_its_job_and_later_jobs_run_on_a_fresh_engine() {
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    let warm = submit(&mut c, req("warm up")).await;
    completed(&events(&mut c, warm).await);
    let Reply::Ps(loaded) = c.request(Request::Ps).await.unwrap() else { panic!() };
    assert_eq!(loaded.len(), 1, "the test engine keeps its transformer loaded");
    assert_eq!(status(&d)["engine_restarts"], 0);

    let bad = submit(&mut c, req("please panic now")).await;
    let (code, message) = failed(&events(&mut c, bad).await);
    assert_eq!(code, "engine_crashed");
    assert!(message.contains(&format!("the test engine was asked to panic in job {bad}")), "{message}");
    assert!(message.contains("tests/src/engine.rs:") && message.contains("restarted"), "{message}");
    let r = record(&mut c, bad).await;
    assert_eq!((r.state, r.error_code.as_deref()), (JobState::Failed, Some("engine_crashed")));

    // What the panicked engine loaded is gone; the next job runs on a fresh engine.
    let Reply::Ps(loaded) = c.request(Request::Ps).await.unwrap() else { panic!() };
    assert!(loaded.is_empty(), "{loaded:?}");
    let after = submit(&mut c, req("after the crash")).await;
    completed(&events(&mut c, after).await);
    let s = status(&d);
    assert_eq!(s["engine_restarts"], 1, "{s}");
    assert!(s["engine_panic"].as_str().is_some_and(|m| m.contains("asked to panic")), "{s}");
    let text = String::from_utf8_lossy(&d.ctl(&["status"]).stdout).into_owned();
    assert!(text.contains("engine:  restarted 1 time(s) after a panic; last: the test engine was asked"), "{text}");

    // Again: each panic is contained the same way.
    let bad = submit(&mut c, req("panic")).await;
    assert_eq!(failed(&events(&mut c, bad).await).0, "engine_crashed");
    let fine = submit(&mut c, req("still fine")).await;
    completed(&events(&mut c, fine).await);
    assert_eq!(status(&d)["engine_restarts"], 2);
    assert!(!d.stderr().contains("engine worker stopped"), "{}", d.stderr());
}

/// Starts the daemon without core dumps (an abort's default action would write one into the test's directory).
fn spawn_without_core(d: &mut Daemon) {
    let mut cmd = d.command();
    // SAFETY: only setrlimit runs in the child between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    d.child = Some(cmd.spawn().expect("spawn ltxd-test"));
    d.wait_ready();
}

#[tokio::test]
async fn an_abort_mid_job_fails_that_job_at_the_next_start_and_the_queue_runs() {
    let mut d = Daemon::with(bins!(), Opts { start: false, ..Opts::default() });
    spawn_without_core(&mut d);
    let mut c = d.client().await;
    let gate = d.gate("never");
    let running = submit(&mut c, req(&format!("held gate={}", gate.display()))).await;
    let pending = [submit(&mut c, req("pending one")).await, submit(&mut c, req("pending two")).await];
    let mut sub = d.client().await;
    sub.request(Request::Subscribe { job: Some(running), previews: false }).await.unwrap();
    wait_for(&mut sub, running, |k| matches!(k, EventKind::Started)).await;

    // What an abort in MLX does to the process.
    d.signal(libc::SIGABRT);
    assert_eq!(d.wait_exit(Duration::from_secs(10)), None, "ended by the signal, without an exit code");
    assert!(d.child.is_none(), "the daemon did not die of SIGABRT:\n{}", d.stderr());
    spawn_without_core(&mut d);

    let mut c = d.client().await;
    let r = record(&mut c, running).await;
    assert!(r.state.is_final() && r.state != JobState::Completed, "{r:?}");
    let message = r.message.unwrap_or_default();
    assert!(message.contains("aborted (SIGABRT) while this job was running"), "{message}");
    assert!(message.contains("did not finish"), "{message}");
    for job in pending {
        completed(&events(&mut c, job).await);
    }
    let again = events(&mut c, running).await;
    assert!(matches!(&again[0].kind, EventKind::Interrupted { reason } if reason.contains("SIGABRT")), "{again:?}");
}
