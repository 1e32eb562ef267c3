//! A bounded soak: 50 clients for a minute (`LTX_SOAK_SECS`), mixing status, submits, cancels, silent
//! connections and truncated frames. Every job ends in a final state and the daemon's threads, descriptors and
//! memory come back to what an idle daemon holds (the limits of issue 14). The numbers are printed for
//! BENCHMARKS.md.
use ltx_e2e::*;
use ltx_protocol::client::{connect_raw, Client};
use ltx_protocol::{JobState, Reply, Request};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

fn status_kb(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key}"));
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("number")
}

fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// A small deterministic generator (no dependency): each client its own sequence.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

async fn client_loop(socket: std::path::PathBuf, seed: u64, until: Instant, submitted: Arc<AtomicU64>) {
    let mut rng = Lcg(seed);
    while Instant::now() < until {
        match rng.next(10) {
            0..=2 => {
                if let Ok(mut c) = Client::connect(&socket, "soak").await {
                    let _ = c.status().await;
                }
            }
            3..=5 => {
                if let Ok(mut c) = Client::connect(&socket, "soak").await {
                    if c.submit(req("soak steps=1 ms=1")).await.is_ok() {
                        submitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            6 => {
                if let Ok(mut c) = Client::connect(&socket, "soak").await {
                    let _ = c.cancel(rng.next(submitted.load(Ordering::Relaxed).max(1)) + 1).await;
                }
            }
            7 => {
                // A silent connection, closed by the idle timeout.
                if let Ok(s) = connect_raw(&socket).await {
                    tokio::spawn(async move {
                        let _held = s;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    });
                }
            }
            _ => {
                // A frame that announces more than it sends, then the connection goes.
                if let Ok(mut s) = connect_raw(&socket).await {
                    let _ = s.write_all(&(1u32 << 20).to_le_bytes()).await;
                    let _ = s.write_all(&[7u8; 64]).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.next(20))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_clients_for_a_minute_leave_nothing_behind() {
    let secs: u64 = std::env::var("LTX_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let opts = Opts { extra_config: "queue_size = 4096\nidle_timeout_secs = 2".into(), ..Opts::default() };
    let d = Daemon::with(bins!(), opts);
    let pid = d.pid();
    let mut c = d.client().await;
    let warm = submit(&mut c, req("warm up steps=1")).await;
    events(&mut c, warm).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = (status_kb(pid, "Threads:"), fds(pid), status_kb(pid, "VmRSS:"));

    let until = Instant::now() + Duration::from_secs(secs);
    let submitted = Arc::new(AtomicU64::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..50 {
        clients.spawn(client_loop(d.socket.clone(), 0x5eed + i, until, submitted.clone()));
    }
    let mut peak = (0, 0, 0);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak.0 = peak.0.max(status_kb(pid, "Threads:"));
        peak.1 = peak.1.max(fds(pid));
        peak.2 = peak.2.max(status_kb(pid, "VmRSS:"));
    }
    while clients.join_next().await.is_some() {}
    // The silent connections' holders let go within 5 s; the idle timeout closes what is left.
    tokio::time::sleep(Duration::from_secs(6)).await;

    // Every job reaches a final state.
    let mut c = d.client().await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let q = c.queue().await.expect("queue");
        if q.running.is_none() && q.pending.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "jobs still pending: {}", q.pending.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let Reply::History(h) = c.request(Request::History { limit: 1000 }).await.expect("history") else { panic!() };
    assert!(h.iter().all(|r| r.state.is_final()), "a job not final");
    let done = h.iter().filter(|r| r.state == JobState::Completed).count();
    drop(c);
    // What stays is what an idle daemon holds (the blocking pool's threads go after 2 s idle).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = (status_kb(pid, "Threads:"), fds(pid), status_kb(pid, "VmRSS:"));
    let cap = 256;
    println!(
        "soak {secs} s, 50 clients: {} submitted, {done} completed in the last 1000; threads idle {} peak {} after {}; \
         fds idle {} peak {} after {}; RSS idle {} peak {} after {} kB",
        submitted.load(Ordering::Relaxed),
        idle.0,
        peak.0,
        after.0,
        idle.1,
        peak.1,
        after.1,
        idle.2,
        peak.2,
        after.2
    );
    assert!(peak.0 <= idle.0 + 8, "threads: idle {} peak {}", idle.0, peak.0);
    assert!(peak.1 <= idle.1 + cap + 16, "fds: idle {} peak {}", idle.1, peak.1);
    assert!(after.2 <= idle.2 + 64 * 1024, "RSS: idle {} kB, after {} kB", idle.2, after.2);
    assert!(submitted.load(Ordering::Relaxed) > 0);
}
