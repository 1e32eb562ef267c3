//! Backbone benchmark (a bench binary, not a timed test): a real `ltxd-test` over a real socket with its
//! SQLite database on disk (synchronous=FULL). Run: `cargo bench -p ltx-e2e --bench backbone`.
//!
//! 1. submit→ack latency with 1 client and with 100 concurrent clients (queue paused: the backbone only);
//! 2. event fan-out to 100 subscribers: submit→`completed` seen by all 100, and bulk event throughput.
use ltx_e2e::*;
use ltx_protocol::client::Client;
use ltx_protocol::{EventKind, Request};
use std::time::{Duration, Instant};

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut v: Vec<Duration>, total: Duration) {
    let n = v.len();
    let (p50, p99) = (pct(&mut v, 0.50), pct(&mut v, 0.99));
    println!(
        "{name:<44} n={n:<5} p50={:>8.3} ms  p99={:>8.3} ms  ({:.0}/s)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        n as f64 / total.as_secs_f64()
    );
}

async fn timed_submits(socket: std::path::PathBuf, n: usize) -> Vec<Duration> {
    let mut c = Client::connect(&socket, "bench").await.unwrap();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        submit(&mut c, req(&format!("bench {i}"))).await;
        out.push(t.elapsed());
    }
    out
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let d = Daemon::with(bins!(), Opts { extra_config: "queue_size = 1000000".into(), ..Opts::default() });
    d.client().await.request(Request::Pause).await.unwrap();
    timed_submits(d.socket.clone(), 50).await; // warm-up
    let t = Instant::now();
    let one = timed_submits(d.socket.clone(), 500).await;
    report("submit→ack, 1 client", one, t.elapsed());
    let t = Instant::now();
    let tasks: Vec<_> = (0..100).map(|_| tokio::spawn(timed_submits(d.socket.clone(), 20))).collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    report("submit→ack, 100 concurrent clients", all, t.elapsed());
    drop(d);

    let d = Daemon::start(bins!());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant, usize)>();
    let mut subs = Vec::new();
    for _ in 0..100 {
        let mut c = d.client().await;
        c.request(Request::Subscribe { job: None, previews: false }).await.unwrap();
        let tx = tx.clone();
        subs.push(tokio::spawn(async move {
            let mut counts = std::collections::HashMap::new();
            while let Ok(e) = c.next_event().await {
                let n = counts.entry(e.job).or_insert(0usize);
                *n += 1;
                if matches!(e.kind, EventKind::Completed { .. }) && tx.send((e.job, Instant::now(), *n)).is_err() {
                    return;
                }
            }
        }));
    }
    let mut c = d.client().await;
    let mut lat = Vec::new();
    let t = Instant::now();
    for i in 0..30 {
        let sent = Instant::now();
        let job = submit(&mut c, req(&format!("fanout {i} steps=1 ms=0"))).await;
        let mut seen = 0;
        let mut last = sent;
        while seen < 100 {
            let (j, at, _) = rx.recv().await.unwrap();
            if j == job {
                seen += 1;
                last = last.max(at);
            }
        }
        lat.push(last - sent);
    }
    report("submit→completed seen by 100 subscribers", lat, t.elapsed());
    // Bulk: a 1000-step job (1 ms steps) streams ~1000 events to each subscriber. Subscribers that fall
    // more than the per-client buffer behind are dropped by design; the count is reported.
    drop(tx);
    let t = Instant::now();
    let job = submit(&mut c, req("bulk steps=1000 ms=1")).await;
    let (mut delivered, mut finished) = (0, 0);
    while let Ok(Some((j, _, n))) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        if j == job {
            delivered += n;
            finished += 1;
            if finished == 100 {
                break;
            }
        }
    }
    let el = t.elapsed();
    println!(
        "{:<44} {delivered} events to {finished}/100 subscribers in {:.3} s ({:.0} events/s delivered)",
        "bulk fan-out (1000-step job)",
        el.as_secs_f64(),
        delivered as f64 / el.as_secs_f64()
    );
    for s in subs {
        s.abort();
    }
}
