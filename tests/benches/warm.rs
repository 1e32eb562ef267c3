//! Warm model manager benchmark (a bench binary, not a timed test): the real daemon running the shipped
//! pipeline over a models directory (the bundled tiny model set, or `LTX_BENCH_MODELS=DIR` for real
//! weights), measured from the client's side of the socket.
//!
//! 1. cold vs warm job: submit → first denoising step, and submit → completed (fresh daemon vs the
//!    same daemon again with another prompt);
//! 2. prompt-cache hit vs miss: the job's own `encode_prompt` / `encode_prompt_cached` timing;
//! 3. `ltxctl load` cold vs again (the resident copy reused), peak and resident RSS vs weight bytes.
//!
//! Run: `cargo bench -p ltx-e2e --bench warm` (`LTX_BENCH_SIZE=WxHxF`, default 128x128x9; `LTX_BENCH_RUNS`,
//! default 3). Each row is the median of the runs.
use ltx_e2e::*;
use ltx_protocol::client::Client;
use ltx_protocol::{EventKind, ModelVariant, Reply, Request, Stage};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn daemon() -> Daemon {
    let opts = Opts {
        env: vec![("LTX_TEST_ENGINE".into(), "shipped".into())],
        start: false,
        extra_config: "memory_profile = \"128gb\"\nkeep_alive = \"-1\"\n".into(),
        ..Opts::default()
    };
    let mut d = Daemon::with(bins!(), opts);
    let models = d.dir.path().join("models");
    match std::env::var_os("LTX_BENCH_MODELS") {
        Some(dir) => std::os::unix::fs::symlink(PathBuf::from(dir), &models).expect("link the models"),
        None => drop(ltx_engine::pipeline::tiny::bundle_tiny(&models).expect("bundle the tiny model")),
    }
    d.spawn();
    d.wait_ready();
    d
}

/// (VmRSS, VmHWM) of a process in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct JobTimes {
    first_step: Duration,
    total: Duration,
    timings: Vec<(String, u64)>,
}

async fn job(d: &Daemon, prompt: &str, size: (u32, u32, u32)) -> JobTimes {
    let mut events = d.client().await;
    assert_eq!(
        events.request(Request::Subscribe { job: None, previews: false }).await.expect("sub"),
        Reply::Subscribed
    );
    let mut c = d.client().await;
    let mut r = req(prompt);
    (r.width, r.height, r.frames, r.seed) = (size.0, size.1, size.2, Some(1));
    let t = Instant::now();
    let id = submit(&mut c, r).await;
    let mut first_step = None;
    loop {
        let e = tokio::time::timeout(Duration::from_secs(3600), events.next_event())
            .await
            .expect("timeout")
            .expect("event");
        if e.job != id {
            continue;
        }
        match e.kind {
            EventKind::Step { stage: Stage::Denoising(_), .. } if first_step.is_none() => {
                first_step = Some(t.elapsed())
            }
            EventKind::Completed { timings, .. } => {
                return JobTimes { first_step: first_step.expect("no denoising step"), total: t.elapsed(), timings }
            }
            k if k.is_final() => panic!("job ended {k:?}:\n{}", d.stderr()),
            _ => {}
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn timing(t: &JobTimes, name: &str) -> Option<f64> {
    t.timings.iter().find(|(n, _)| n == name).map(|(_, v)| *v as f64)
}

async fn ps(c: &mut Client) -> u64 {
    match c.request(Request::Ps).await.expect("ps") {
        Reply::Ps(comps) => comps.iter().map(|c| c.bytes).sum(),
        other => panic!("{other:?}"),
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("warm: bench");
        return;
    }
    let size = std::env::var("LTX_BENCH_SIZE").ok().and_then(|s| {
        let v: Vec<u32> = s.split('x').filter_map(|n| n.parse().ok()).collect();
        (v.len() == 3).then(|| (v[0], v[1], v[2]))
    });
    let size = size.unwrap_or((128, 128, 9));
    let runs: usize = std::env::var("LTX_BENCH_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(3);
    let (mut cold_first, mut cold_total, mut warm_first, mut warm_total) = (vec![], vec![], vec![], vec![]);
    let (mut miss, mut hit) = (vec![], vec![]);
    let (mut load_cold, mut load_again, mut weights, mut rss_loaded, mut hwm_loaded, mut rss_base) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        // Jobs: a fresh daemon (cold), then warm with a new prompt, then the same prompt (cache hit).
        let d = daemon();
        let cold = job(&d, "a red fox in the snow", size).await;
        let warm = job(&d, "a lighthouse at dusk", size).await;
        let cached = job(&d, "a lighthouse at dusk", size).await;
        cold_first.push(ms(cold.first_step));
        cold_total.push(ms(cold.total));
        warm_first.push(ms(warm.first_step));
        warm_total.push(ms(warm.total));
        miss.push(timing(&warm, "encode_prompt").expect("encode_prompt timing"));
        hit.push(timing(&cached, "encode_prompt_cached").expect("encode_prompt_cached timing"));
        drop(d);

        // Preloading: a fresh daemon, `load` twice.
        let d = daemon();
        let mut c = d.client().await;
        rss_base.push(rss(d.pid()).0 as f64);
        for times in [&mut load_cold, &mut load_again] {
            let t = Instant::now();
            let r = c.request(Request::Load { variant: ModelVariant::Distilled, keep_alive: None }).await;
            assert!(matches!(r, Ok(Reply::Ok)), "{r:?}");
            times.push(ms(t.elapsed()));
        }
        weights.push(ps(&mut c).await as f64);
        let (now, peak) = rss(d.pid());
        rss_loaded.push(now as f64);
        hwm_loaded.push(peak as f64);
    }
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let (cf, ct, wf, wt) = (median(cold_first), median(cold_total), median(warm_first), median(warm_total));
    println!("size {}x{}x{}, {runs} runs (medians)", size.0, size.1, size.2);
    println!("| job | submit → first denoise step | submit → completed |");
    println!("|---|---|---|");
    println!("| cold (fresh daemon) | {cf:.0} ms | {ct:.0} ms |");
    println!("| warm (components resident) | {wf:.0} ms | {wt:.0} ms |");
    println!("| cold / warm | {:.1}x | {:.1}x |", cf / wf, ct / wt);
    let (m, h) = (median(miss), median(hit));
    println!("prompt encode: miss {m:.0} ms, hit {h:.0} ms ({:.0}x)", m / h.max(1.0));
    let (lc, la) = (median(load_cold), median(load_again));
    let (w, base, now, peak) = (median(weights), median(rss_base), median(rss_loaded), median(hwm_loaded));
    println!("load: cold {lc:.1} ms, again {la:.1} ms ({:.0}x); weights {:.2} MiB", lc / la.max(0.01), mib(w));
    println!(
        "rss: idle {:.1} MiB, loaded {:.1} MiB (+{:.2} MiB = {:.2}x the weights), peak {:.1} MiB (+{:.2} MiB = {:.2}x)",
        mib(base),
        mib(now),
        mib(now - base),
        (now - base) / w,
        mib(peak),
        mib(peak - base),
        (peak - base) / w
    );
}
