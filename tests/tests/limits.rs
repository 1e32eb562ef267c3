//! Same-user clients cannot exhaust the daemon: silent connections time out (a follower never does), one
//! over the cap is told why, a stalled frame costs what it sent, and requests queued behind a running job
//! wait without a thread each and are refused once too many wait; numbers that would overflow are refused.
use ltx_e2e::*;
use ltx_protocol::{client::connect_raw, ClientMsg, Hello, KeepAlive, ModelVariant, Reply, Request, PROTOCOL_VERSION};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A value from `/proc/<pid>/status` (`VmData` in kB, `Threads`).
fn proc_status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} in {text}"));
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("number")
}

fn hello() -> Vec<u8> {
    let hello = Hello { protocol_version: PROTOCOL_VERSION, client_name: "limits".into(), client_version: "0".into() };
    ltx_protocol::frame::encode(&ClientMsg::Hello(hello)).expect("encode")
}

/// A raw connection past its handshake.
async fn handshaken(d: &Daemon) -> interprocess::local_socket::tokio::Stream {
    let mut s = connect_raw(&d.socket).await.expect("connect");
    s.write_all(&hello()).await.expect("hello");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.expect("welcome length");
    let mut welcome = vec![0u8; u32::from_le_bytes(len) as usize];
    s.read_exact(&mut welcome).await.expect("welcome");
    s
}

#[tokio::test]
async fn a_silent_connection_is_closed_but_a_follower_is_not() {
    let d = Daemon::with(bins!(), Opts { extra_config: "idle_timeout_secs = 1".into(), ..Opts::default() });
    let mut silent = handshaken(&d).await;
    let mut follower = d.client().await;
    let gate = d.gate("g");
    let job = submit(&mut follower, req(&format!("held gate={}", gate.display()))).await;
    assert_eq!(
        follower.request(Request::Subscribe { job: Some(job), previews: false }).await.unwrap(),
        Reply::Subscribed
    );
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0))), "the silent connection was not closed: {closed:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    open_gate(&gate);
    let last = wait_for(&mut follower, job, |k| k.is_final()).await;
    assert!(matches!(last, ltx_protocol::EventKind::Completed { .. }), "{last:?}");
}

#[tokio::test]
async fn one_connection_over_the_cap_is_told_why() {
    let d = Daemon::with(bins!(), Opts { extra_config: "max_connections = 3".into(), ..Opts::default() });
    let _held = [handshaken(&d).await, handshaken(&d).await, handshaken(&d).await];
    let err = ltx_protocol::client::Client::connect(&d.socket, "fourth").await.err().expect("refused");
    assert!(err.to_string().contains("maximum of 3 connections"), "{err}");
    let o = d.ctl(&["status"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("maximum of 3 connections"), "{o:?}");
}

#[tokio::test]
async fn stalled_frames_cost_what_they_sent() {
    let d = Daemon::start(bins!());
    // Reserved memory (`VmData`): what the daemon set aside for these frames, touched or not.
    let before = proc_status(d.pid(), "VmData:");
    let mut stalled = Vec::new();
    for _ in 0..40 {
        let mut s = handshaken(&d).await;
        // A full 16 MiB announced, 100 bytes sent.
        s.write_all(&((16u32 << 20) - 1).to_le_bytes()).await.unwrap();
        s.write_all(&[0u8; 100]).await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(d.ctl(&["status"]).status.success());
    let grown = proc_status(d.pid(), "VmData:").saturating_sub(before);
    assert!(grown < 64 << 10, "40 stalled frames grew the daemon by {grown} kB");
}

#[tokio::test]
async fn loads_behind_a_running_job_wait_without_threads_and_are_bounded() {
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    let gate = d.gate("g");
    let job = submit(&mut c, req(&format!("held gate={}", gate.display()))).await;
    assert_eq!(c.request(Request::Subscribe { job: Some(job), previews: false }).await.unwrap(), Reply::Subscribed);
    wait_for(&mut c, job, |k| matches!(k, ltx_protocol::EventKind::Stage { .. })).await;
    let idle_threads = proc_status(d.pid(), "Threads:");
    let mut loads = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let socket = d.socket.clone();
        loads.spawn(async move {
            let mut c = ltx_protocol::client::Client::connect(&socket, "load").await.expect("connect");
            c.request(Request::Load { variant: ModelVariant::Distilled, keep_alive: None }).await
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let threads = proc_status(d.pid(), "Threads:");
    assert!(threads <= idle_threads + 8, "{threads} threads with 200 loads waiting ({idle_threads} idle)");
    let t = Instant::now();
    assert!(d.ctl(&["status"]).status.success());
    assert!(t.elapsed() < Duration::from_secs(3), "status took {:?}", t.elapsed());
    open_gate(&gate);
    let (mut ok, mut busy) = (0, 0);
    while let Some(r) = loads.join_next().await {
        match r.expect("task") {
            Ok(Reply::Ok) => ok += 1,
            Err(e) if e.to_string().contains("requests waiting") => busy += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ok + busy, 200);
    assert!(busy > 0 && ok >= 64, "{ok} loaded, {busy} refused");
}

/// Numbers that overflow: a keep-alive beyond the limit is refused where it is typed and capped where it
/// arrives over the wire, so `ltxctl ps` never shows a wrapped-around "0s from now".
#[tokio::test]
async fn an_overlong_keep_alive_is_refused_by_ltxctl_and_capped_by_the_daemon() {
    let d = Daemon::start(bins!());
    let o = d.ctl(&["load", "--variant", "dev", "--keep-alive", "4611686018427387904s"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "accepted: {o:?}");
    assert!(err.contains("longer than the limit of 31536000s (1 year)"), "{err}");

    // A client that sends it anyway: kept for the limit, not wrapped around to now.
    let mut c = d.client().await;
    let huge = KeepAlive::Seconds(4611686018427387904);
    c.request(Request::Load { variant: ModelVariant::Dev, keep_alive: Some(huge) }).await.unwrap();
    let Reply::Ps(ps) = c.request(Request::Ps).await.unwrap() else { panic!() };
    let until = ps[0].expires_ms.expect("an expiry");
    let year = 365 * 24 * 3600 * 1000;
    let now = ltxd::store::now_ms();
    assert!(until > now + year - 60_000 && until <= now + year, "{until} is not a year after {now}");
    let text = String::from_utf8_lossy(&d.ctl(&["ps"]).stdout).into_owned();
    assert!(text.contains("in 8759 h 59 min") || text.contains("in 8760 h 0 min"), "{text}");
}
