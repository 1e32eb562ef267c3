//! Daemon lifecycle: crash recovery, graceful signals, one daemon per socket, stale sockets.
use ltx_e2e::*;
use ltx_protocol::{EventKind, JobState, Reply, Request};
use std::time::Duration;

#[tokio::test]
async fn kill_9_marks_running_interrupted_and_pending_jobs_run_after_restart() {
    let mut d = Daemon::start(bins!());
    let mut c = d.client().await;
    let gate = d.gate("never");
    let running = submit(&mut c, req(&format!("held gate={}", gate.display()))).await;
    let p1 = submit(&mut c, req("pending one")).await;
    let p2 = submit(&mut c, req("pending two")).await;
    let mut sub = d.client().await;
    sub.request(Request::Subscribe { job: Some(running), previews: false }).await.unwrap();
    wait_for(&mut sub, running, |k| matches!(k, EventKind::Started)).await;
    d.kill9();
    assert!(d.socket.exists(), "a crash leaves the socket file behind");
    d.spawn(); // replaces the stale socket
    d.wait_ready();
    let mut c = d.client().await;
    let r = record(&mut c, running).await;
    assert_eq!(r.state, JobState::Interrupted);
    assert!(r.message.unwrap().contains("stopped while this job was running"));
    for job in [p1, p2] {
        let evs = events(&mut c, job).await;
        assert!(matches!(evs.last().unwrap().kind, EventKind::Completed { .. }), "{evs:?}");
    }
    let again = events(&mut c, running).await;
    assert!(matches!(&again[0].kind, EventKind::Interrupted { .. }));
}

#[tokio::test]
async fn sigterm_records_interrupted_removes_socket_and_exits_0() {
    let mut d = Daemon::start(bins!());
    let mut c = d.client().await;
    let gate = d.gate("never");
    let running = submit(&mut c, req(&format!("held gate={}", gate.display()))).await;
    let pending = submit(&mut c, req("later")).await;
    let mut sub = d.client().await;
    sub.request(Request::Subscribe { job: Some(running), previews: false }).await.unwrap();
    wait_for(&mut sub, running, |k| matches!(k, EventKind::Started)).await;
    d.signal(libc::SIGTERM);
    let last = wait_for(&mut sub, running, EventKind::is_final).await;
    assert!(matches!(last, EventKind::Interrupted { ref reason } if reason.contains("shut down")), "{last:?}");
    assert_eq!(d.wait_exit(Duration::from_secs(10)), Some(0), "{}", d.stderr());
    assert!(!d.socket.exists(), "socket removed on shutdown");
    assert!(!d.stderr().contains("panicked"));
    d.spawn();
    d.wait_ready();
    let mut c = d.client().await;
    let r = record(&mut c, running).await;
    assert_eq!(r.state, JobState::Interrupted);
    assert!(r.message.unwrap().contains("shut down"));
    let evs = events(&mut c, pending).await;
    assert!(matches!(evs.last().unwrap().kind, EventKind::Completed { .. }));
    // Shutdown through the protocol too.
    assert_eq!(c.request(Request::Shutdown).await.unwrap(), Reply::Ok);
    assert_eq!(d.wait_exit(Duration::from_secs(10)), Some(0));
}

#[tokio::test]
async fn second_daemon_refuses_to_replace_a_live_one() {
    let d = Daemon::start(bins!());
    let out = d.command().output().unwrap();
    assert!(!out.status.success());
    assert!(d.stderr().contains("already running"), "{}", d.stderr());
    // The first daemon still serves.
    let Reply::Status(s) = d.client().await.request(Request::Status).await.unwrap() else { panic!() };
    assert_eq!(s.pid, d.pid());
}
