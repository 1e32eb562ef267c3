//! The warm model manager end to end: the shipped pipeline over the bundled tiny model set, the real
//! daemon and CLI. Keep-alive (per request, config default, per component, 0, forever) and idle expiry as `ltxctl ps`
//! shows them, preloading, the process's memory dropping after an unload, the low-memory switch, and
//! the preflight refusing a job over the configured memory budget with its reason.
use ltx_e2e::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// A daemon running the shipped engine over the tiny model set, with `extra` config lines.
fn daemon(extra: &str) -> Daemon {
    let opts = Opts {
        env: vec![("LTX_TEST_ENGINE".into(), "shipped".into())],
        start: false,
        extra_config: extra.into(),
        ..Opts::default()
    };
    let mut d = Daemon::with(bins!(), opts);
    ltx_engine::pipeline::tiny::bundle_tiny(&d.dir.path().join("models")).expect("bundle the tiny model");
    d.spawn();
    d.wait_ready();
    d
}

const JOB: [&str; 8] = ["submit", "a red fox in the snow", "--size", "128x128", "--frames", "9", "--seed", "3"];

fn submit(d: &Daemon, extra: &[&str]) -> std::process::Output {
    d.ctl(&[&["--json"][..], &JOB, extra, &["--wait"]].concat())
}

fn ok(d: &Daemon, o: &std::process::Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `ltxctl --json ps`: (name, bytes, expires_ms) of each loaded component.
fn ps(d: &Daemon) -> Vec<(String, u64, Option<u64>)> {
    let out = ok(d, &d.ctl(&["--json", "ps"]));
    let v: Value = serde_json::from_str(out.trim()).expect("ps JSON");
    v["components"]
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["bytes"].as_u64().expect("bytes"),
                c["expires_ms"].as_u64(),
            )
        })
        .collect()
}

fn names(comps: &[(String, u64, Option<u64>)]) -> Vec<&str> {
    comps.iter().map(|c| c.0.as_str()).collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The daemon's resident set in bytes (`VmRSS`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|k| k.parse::<u64>().ok()).expect("kB") * 1024
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn keep_alive_expiry_unloads_every_component() {
    let d = daemon("memory_profile = \"128gb\"\nkeep_alive = \"10m\"\n");
    assert_eq!(ok(&d, &d.ctl(&["ps"])).trim(), "no models loaded");

    // The config default (10 minutes) applies to a job without --keep-alive.
    ok(&d, &submit(&d, &[]));
    let comps = ps(&d);
    for want in ["text_encoder", "transformer", "upscaler", "video_decoder", "audio_decoder", "vocoder"] {
        assert!(names(&comps).contains(&want), "{want} not loaded: {comps:?}");
    }
    for (name, bytes, expires) in &comps {
        let left = expires.expect("expiry").saturating_sub(now_ms());
        assert!((590_000..=600_000).contains(&left), "{name}: {left} ms left");
        assert!(*bytes > 0, "{name} charged no memory");
    }
    let table = ok(&d, &d.ctl(&["ps"]));
    assert!(table.contains("transformer") && table.contains("in 9 min 5"), "{table}");
    // The tiny model's components are kilobytes: said so, not `0MB`.
    assert!(table.contains(" KB") && !table.contains("0MB"), "{table}");

    // A per-request keep-alive replaces it; when it passes, every component unloads.
    ok(&d, &submit(&d, &["--keep-alive", "2s"]));
    let comps = ps(&d);
    assert!(!comps.is_empty());
    assert!(comps.iter().all(|c| c.2.expect("expiry") <= now_ms() + 2_000), "{comps:?}");
    assert!(wait_until(Duration::from_secs(20), || ps(&d).is_empty()), "still loaded: {:?}", ps(&d));
    assert!(d.stderr().contains("keep-alive expired"), "{}", d.stderr());
}

#[test]
fn each_component_keeps_its_own_keep_alive() {
    let d = daemon(
        "memory_profile = \"128gb\"\nkeep_alive = \"10m\"\n\
         [component_keep_alive]\ntext_encoder = \"0\"\nvocoder = \"3s\"\n",
    );
    ok(&d, &submit(&d, &[]));
    let comps = ps(&d);
    let left = |comps: &[(String, u64, Option<u64>)], name: &str| {
        comps.iter().find(|c| c.0 == name).map(|c| c.2.expect("expiry").saturating_sub(now_ms()))
    };
    // text_encoder = "0": gone as soon as the job ended; the vocoder has 3 s, the rest the default.
    assert!(!names(&comps).contains(&"text_encoder"), "{comps:?}");
    assert!(left(&comps, "vocoder").is_some_and(|ms| ms <= 3_000), "{comps:?}");
    assert!(left(&comps, "transformer").is_some_and(|ms| ms > 590_000), "{comps:?}");
    assert!(wait_until(Duration::from_secs(20), || !names(&ps(&d)).contains(&"vocoder")), "{:?}", ps(&d));
    let comps = ps(&d);
    assert!(names(&comps).contains(&"transformer") && names(&comps).contains(&"audio_decoder"), "{comps:?}");

    // A job without audio restarts the keep-alive of what it used only: the audio decoder's stays.
    let audio_expiry = comps.iter().find(|c| c.0 == "audio_decoder").and_then(|c| c.2).expect("expiry");
    let transformer_expiry = comps.iter().find(|c| c.0 == "transformer").and_then(|c| c.2).expect("expiry");
    std::thread::sleep(Duration::from_millis(1_100));
    ok(&d, &submit(&d, &["--no-audio"]));
    let comps = ps(&d);
    let expiry = |name: &str| comps.iter().find(|c| c.0 == name).and_then(|c| c.2);
    // (The wall-clock expiry is recomputed from a monotonic deadline at each publish: ±1 ms.)
    assert!(expiry("audio_decoder").is_some_and(|t| t.abs_diff(audio_expiry) <= 5), "{comps:?}");
    assert!(expiry("transformer").is_some_and(|t| t >= transformer_expiry + 1_000), "{comps:?}");
    assert!(!names(&comps).contains(&"vocoder") && !names(&comps).contains(&"text_encoder"), "{comps:?}");
    assert!(d.stderr().contains("component=\"vocoder\"") || d.stderr().contains("component=vocoder"), "{}", d.stderr());
}

#[test]
fn an_idle_daemon_gives_its_models_back_under_memory_pressure() {
    // A threshold above what any machine has available: the system always counts as short of memory.
    let d = daemon("memory_profile = \"128gb\"\nkeep_alive = \"10m\"\nmemory_pressure = \"1000TB\"\n");
    ok(&d, &submit(&d, &[]));
    assert!(wait_until(Duration::from_secs(20), || ps(&d).is_empty()), "still loaded: {:?}", ps(&d));
    assert!(d.stderr().contains("memory pressure"), "{}", d.stderr());
    // Largest first: the first unload named is the biggest component the job left loaded.
    let first = d.stderr().lines().find(|l| l.contains("memory pressure")).map(str::to_string).unwrap_or_default();
    assert!(first.contains("audio_decoder") || first.contains("video_decoder"), "{first}");

    // `off`: the same job leaves everything loaded for its keep-alive.
    let d = daemon("memory_profile = \"128gb\"\nkeep_alive = \"10m\"\nmemory_pressure = \"off\"\n");
    ok(&d, &submit(&d, &[]));
    std::thread::sleep(Duration::from_secs(6));
    assert!(names(&ps(&d)).contains(&"transformer"), "{:?}", ps(&d));
}

#[test]
fn switching_the_models_directory_applies_to_the_next_job() {
    let d = daemon("memory_profile = \"128gb\"\n");
    ok(&d, &submit(&d, &[]));
    assert!(!ps(&d).is_empty());
    let other = d.dir.path().join("other");
    std::fs::rename(d.dir.path().join("models"), &other).expect("move the models");
    let refused = submit(&d, &[]);
    assert_ne!(refused.status.code(), Some(0), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ltxctl models pull"), "{refused:?}");

    // No restart: the daemon and the engine switch; what was loaded from the old directory goes.
    let out = ok(&d, &d.ctl(&["models", "dir", other.to_str().expect("utf-8")]));
    assert!(out.contains(&format!("models directory is now {}", other.display())), "{out}");
    assert!(wait_until(Duration::from_secs(10), || ps(&d).is_empty()), "{:?}", ps(&d));
    ok(&d, &submit(&d, &[]));
    assert!(names(&ps(&d)).contains(&"transformer"), "{:?}", ps(&d));
    let status: Value = serde_json::from_str(ok(&d, &d.ctl(&["--json", "status"])).trim()).expect("status JSON");
    assert_eq!(status["models_dir"].as_str(), other.to_str());
}

#[test]
fn keep_alive_zero_forever_preload_and_memory_after_unload() {
    let d = daemon("memory_profile = \"128gb\"\n");
    // 0: unloaded as soon as the job ends.
    ok(&d, &submit(&d, &["--keep-alive", "0"]));
    assert!(ps(&d).is_empty(), "{:?}", ps(&d));

    // `ltxctl load` preloads every component; -1 keeps them forever.
    let before = rss(d.pid());
    let t = Instant::now();
    ok(&d, &d.ctl(&["load", "--variant", "distilled", "--keep-alive", "-1"]));
    let cold = t.elapsed();
    let comps = ps(&d);
    assert!(names(&comps).contains(&"transformer") && names(&comps).contains(&"vocoder"), "{comps:?}");
    assert!(comps.iter().all(|c| c.2.is_none()), "not forever: {comps:?}");
    assert!(ok(&d, &d.ctl(&["ps"])).contains("never (kept loaded)"));
    let weights: u64 = comps.iter().map(|c| c.1).sum();

    // Loading again reuses the resident copies: same bytes, nothing reloaded.
    let t = Instant::now();
    ok(&d, &d.ctl(&["load", "--variant", "distilled", "--keep-alive", "-1"]));
    let warm = t.elapsed();
    assert_eq!(ps(&d), comps);
    eprintln!("load: cold {cold:?}, again {warm:?}; {weights} B of weights");

    // Unloading gives the memory back to the system.
    let loaded = rss(d.pid());
    ok(&d, &d.ctl(&["unload"]));
    assert!(ps(&d).is_empty());
    let after = rss(d.pid());
    eprintln!("rss: before load {before} B, loaded {loaded} B, after unload {after} B; weights {weights} B");
    assert!(
        loaded.saturating_sub(after) >= weights / 2,
        "unload freed {} B of {weights} B of weights (rss {loaded} -> {after})",
        loaded.saturating_sub(after)
    );
}

#[test]
fn low_memory_request_drops_the_denoisers_before_decoding() {
    let d = daemon("memory_profile = \"128gb\"\n");
    ok(&d, &submit(&d, &["--low-memory"]));
    let comps = ps(&d);
    let n = names(&comps);
    assert!(n.contains(&"video_decoder") && !n.contains(&"transformer") && !n.contains(&"upscaler"), "{comps:?}");
    // Without the switch the same daemon keeps everything.
    ok(&d, &submit(&d, &[]));
    assert!(names(&ps(&d)).contains(&"transformer"));
    assert!(d.stderr().contains("low-memory sequential plan"), "{}", d.stderr());
}

#[test]
fn a_job_over_the_memory_budget_is_refused_with_the_reason() {
    let d = daemon("memory_budget = \"1MB\"\n");
    let status = ok(&d, &d.ctl(&["status"]));
    assert!(status.contains("memory:") && status.contains("memory_budget 0.00 GB"), "{status}");
    let doctor = String::from_utf8_lossy(&d.ctl(&["doctor"]).stdout).into_owned();
    assert!(doctor.contains("memory profile") && doctor.contains("peak budget"), "{doctor}");

    // Refused at submit (the engine's preflight runs on the models' headers), as an invalid request.
    let o = submit(&d, &[]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(all.contains("not enough memory for 128x128x9 frames"), "{all}");
    assert!(all.contains("low-memory sequential plan") && all.contains("Try"), "{all}");
    assert!(all.contains("distilled-fp8"), "no suggestion: {all}");
    // Nothing was loaded or queued for it.
    assert!(ps(&d).is_empty());
    assert_eq!(history(&d), Vec::<Value>::new());
}

/// `ltxctl --json history`'s jobs.
fn history(d: &Daemon) -> Vec<Value> {
    let v: Value = serde_json::from_str(ok(d, &d.ctl(&["--json", "history"])).trim()).expect("history JSON");
    v["jobs"].as_array().expect("jobs").clone()
}

#[test]
fn a_job_that_cannot_fit_is_refused_at_submit_with_the_numbers() {
    let d = daemon("memory_budget = \"4GB\"\n");
    let big = ["--json", "submit", "a red fox in the snow", "--size", "2048x2048", "--frames", "257"];
    let o = d.ctl(&big);
    assert_eq!(o.status.code(), Some(4), "queued instead of refused: {o:?}");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("not enough memory for 2048x2048x257 frames: the estimated peak is "), "{err}");
    assert!(
        err.contains(" GB even with the low-memory sequential plan") && err.contains("4.00 GB is available"),
        "{err}"
    );
    assert!(err.contains("Try a smaller size ("), "{err}");
    assert_eq!(history(&d), Vec::<Value>::new(), "nothing was queued");
    // The same budget takes a small job.
    ok(&d, &submit(&d, &[]));
}
