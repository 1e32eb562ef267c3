//! Queue and job behaviour over a real socket with the test engine.
use ltx_e2e::*;
use ltx_protocol::{EventKind, JobState, KeepAlive, ModelVariant, Reply, Request, Stage};

#[tokio::test]
async fn submit_events_completed_with_output_and_sidecar() {
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    let mut r = req("a red fox in the snow steps=3");
    r.seed = Some(42);
    let job = submit(&mut c, r).await;
    let evs = events(&mut c, job).await;
    let kinds: Vec<_> = evs.iter().map(|e| &e.kind).collect();
    assert!(kinds.iter().filter(|k| matches!(k, EventKind::Started)).count() <= 1, "duplicate Started: {kinds:?}");
    assert!(kinds.iter().any(|k| matches!(k, EventKind::Stage { stage: Stage::Denoising(1), .. })), "{kinds:?}");
    let steps: Vec<_> = kinds
        .iter()
        .filter_map(|k| match k {
            EventKind::Step { step, total, .. } => Some((*step, *total)),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [(1, 3), (2, 3), (3, 3)]);
    let EventKind::Completed { output, seed, timings, .. } = kinds.last().unwrap() else { panic!("{kinds:?}") };
    assert_eq!(*seed, 42);
    assert!(output.starts_with(d.outputs()), "{output:?}");
    let name = output.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with("_a-red-fox-in-the-snow-steps-3_42.mp4"), "{name}");
    assert!(std::fs::read_to_string(output).unwrap().contains("seed 42"));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(output.with_extension("json")).unwrap()).unwrap();
    assert_eq!((&sidecar["schema"], &sidecar["id"], &sidecar["seed"]), (&1.into(), &job.into(), &42.into()));
    assert_eq!((&sidecar["state"], &sidecar["request"]["variant"]), (&"completed".into(), &"distilled".into()));
    assert_eq!(sidecar["output"].as_str(), output.to_str());
    assert_eq!(sidecar["daemon_version"], ltx_protocol::VERSION);
    assert_eq!(sidecar["request"]["frames"], 9);
    assert!(sidecar["timings_ms"]["total"].is_u64());
    // No temp files left behind; the record says completed; subscribing again returns the final event.
    let leftovers: Vec<_> = std::fs::read_dir(d.outputs())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(record(&mut c, job).await.state, JobState::Completed);
    let again = events(&mut d.client().await, job).await;
    assert!(matches!(&again[..], [e] if matches!(e.kind, EventKind::Completed { .. })));
    // The record keeps the job's timings and a late subscriber's final event carries them.
    assert!(timings.iter().any(|(stage, _)| stage == "total"), "{timings:?}");
    assert_eq!(&record(&mut c, job).await.timings, timings);
    assert!(matches!(&again[0].kind, EventKind::Completed { timings: t, .. } if t == timings), "{again:?}");
}

#[tokio::test]
async fn queue_order_front_priority_and_no_overwrite() {
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    let gate = d.gate("a");
    let a = submit(&mut c, req(&format!("first gate={}", gate.display()))).await;
    let mut same = req("same prompt");
    same.seed = Some(7);
    let b = submit(&mut c, same.clone()).await;
    let mut front = same.clone();
    front.front = true;
    let f = submit(&mut c, front).await;
    let e = submit(&mut c, same).await;
    let Reply::Queue(q) = c.request(Request::Queue).await.unwrap() else { panic!() };
    assert_eq!(q.running.map(|r| r.id), Some(a));
    assert_eq!(q.pending.iter().map(|r| r.id).collect::<Vec<_>>(), [f, b, e]);
    open_gate(&gate);
    let mut outputs = Vec::new();
    for job in [a, f, b, e] {
        let evs = events(&mut d.client().await, job).await;
        let Some(EventKind::Completed { output, .. }) = evs.last().map(|e| &e.kind) else { panic!("{evs:?}") };
        outputs.push(output.clone());
    }
    let started: Vec<_> = futures_started(&d, &[a, f, b, e]).await;
    assert!(started.windows(2).all(|w| w[0] <= w[1]), "run order {started:?}");
    // Three jobs with the same prompt and seed: three files, none overwritten.
    outputs.sort();
    outputs.dedup();
    assert_eq!(outputs.len(), 4);
    assert!(outputs.iter().all(|o| o.exists()));
}

async fn futures_started(d: &Daemon, jobs: &[u64]) -> Vec<u64> {
    let mut c = d.client().await;
    let mut out = Vec::new();
    for &j in jobs {
        out.push(record(&mut c, j).await.started_ms.unwrap());
    }
    out
}

#[tokio::test]
async fn cancel_running_and_pending() {
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    let gate = d.gate("never");
    let running = submit(&mut c, req(&format!("held gate={}", gate.display()))).await;
    let pending = submit(&mut c, req("waiting")).await;
    let mut sub = d.client().await;
    sub.request(Request::Subscribe { job: Some(running), previews: false }).await.unwrap();
    wait_for(&mut sub, running, |k| matches!(k, EventKind::Started)).await;
    assert_eq!(c.request(Request::Cancel { job: pending }).await.unwrap(), Reply::Cancelled { jobs: vec![pending] });
    assert_eq!(c.request(Request::Cancel { job: running }).await.unwrap(), Reply::Cancelled { jobs: vec![running] });
    assert_eq!(wait_for(&mut sub, running, EventKind::is_final).await, EventKind::Cancelled);
    assert_eq!(record(&mut c, running).await.state, JobState::Cancelled);
    assert_eq!(record(&mut c, pending).await.state, JobState::Cancelled);
    let again = c.request(Request::Cancel { job: pending }).await.unwrap_err().to_string();
    assert!(again.contains("cannot be cancelled"), "{again}");
    assert!(c.request(Request::Cancel { job: 999 }).await.unwrap_err().to_string().contains("no job with id 999"));
    // Nothing partial is left in the outputs directory.
    assert_eq!(std::fs::read_dir(d.outputs()).unwrap().count(), 0);
    // Cancel all: one running, two pending.
    let r2 = submit(&mut c, req(&format!("held gate={}", gate.display()))).await;
    let p2 = submit(&mut c, req("x")).await;
    let p3 = submit(&mut c, req("y")).await;
    sub.request(Request::Subscribe { job: Some(r2), previews: false }).await.unwrap();
    wait_for(&mut sub, r2, |k| matches!(k, EventKind::Started)).await;
    let Reply::Cancelled { mut jobs } = c.request(Request::CancelAll).await.unwrap() else { panic!() };
    jobs.sort();
    assert_eq!(jobs, [r2, p2, p3]);
    assert_eq!(wait_for(&mut sub, r2, EventKind::is_final).await, EventKind::Cancelled);
}

#[tokio::test]
async fn pause_finishes_current_then_holds_until_resume() {
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    let gate = d.gate("a");
    let mut sub = d.client().await;
    sub.request(Request::Subscribe { job: None, previews: false }).await.unwrap();
    let a = submit(&mut c, req(&format!("a gate={}", gate.display()))).await;
    let b = submit(&mut c, req("b")).await;
    wait_for(&mut sub, a, |k| matches!(k, EventKind::Started)).await;
    assert_eq!(c.request(Request::Pause).await.unwrap(), Reply::Ok);
    open_gate(&gate);
    assert!(matches!(wait_for(&mut sub, a, EventKind::is_final).await, EventKind::Completed { .. }));
    // Paused: b stays pending (the scheduler decides under the same lock as the pause flag).
    let Reply::Queue(q) = c.request(Request::Queue).await.unwrap() else { panic!() };
    assert!(q.paused && q.running.is_none());
    assert_eq!(q.pending.iter().map(|r| r.id).collect::<Vec<_>>(), [b]);
    let Reply::Status(s) = c.request(Request::Status).await.unwrap() else { panic!() };
    assert!(s.paused && s.pending == 1);
    assert_eq!(c.request(Request::Resume).await.unwrap(), Reply::Ok);
    assert!(matches!(wait_for(&mut sub, b, EventKind::is_final).await, EventKind::Completed { .. }));
}

#[tokio::test]
async fn hundred_concurrent_clients_every_job_accounted_for() {
    let d = Daemon::start(bins!());
    let socket = d.socket.clone();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let socket = socket.clone();
            tokio::spawn(async move {
                let mut c = ltx_protocol::client::Client::connect(&socket, "load").await.unwrap();
                let job = submit(&mut c, req(&format!("client {i} steps=1 ms=0"))).await;
                let evs = events(&mut c, job).await;
                match evs.last().map(|e| &e.kind) {
                    Some(EventKind::Completed { output, .. }) => (job, output.clone()),
                    other => panic!("job {job}: {other:?}"),
                }
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let mut ids: Vec<_> = results.iter().map(|r| r.0).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100);
    assert!(results.iter().all(|(_, o)| o.exists()));
    let Reply::History(h) = d.client().await.request(Request::History { limit: 1000 }).await.unwrap() else { panic!() };
    assert_eq!(h.len(), 100);
    assert!(h.iter().all(|r| r.state == JobState::Completed));
}

#[tokio::test]
async fn previews_only_when_asked_and_failures_are_typed() {
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    let gate = d.gate("p");
    let job = submit(&mut c, req(&format!("p steps=4 gate={}", gate.display()))).await;
    let mut with = d.client().await;
    with.request(Request::Subscribe { job: Some(job), previews: true }).await.unwrap();
    let mut without = d.client().await;
    without.request(Request::Subscribe { job: Some(job), previews: false }).await.unwrap();
    open_gate(&gate);
    assert_eq!(previews(&mut with).await, 2);
    assert_eq!(previews(&mut without).await, 0);
    let failed = submit(&mut c, req("boom fail")).await;
    let evs = events(&mut c, failed).await;
    assert!(matches!(&evs.last().unwrap().kind, EventKind::Failed { code, .. } if code == "denoise_failed"));
    let r = record(&mut c, failed).await;
    assert_eq!((r.state, r.error_code.as_deref()), (JobState::Failed, Some("denoise_failed")));
}

async fn previews(c: &mut ltx_protocol::client::Client) -> usize {
    let mut n = 0;
    loop {
        let e = c.next_event().await.unwrap();
        n += usize::from(matches!(e.kind, EventKind::Preview { .. }));
        if e.kind.is_final() {
            return n;
        }
    }
}

#[tokio::test]
async fn load_ps_keep_alive_unload() {
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    let ps = |r: Reply| match r {
        Reply::Ps(v) => v,
        other => panic!("{other:?}"),
    };
    assert!(ps(c.request(Request::Ps).await.unwrap()).is_empty());
    c.request(Request::Load { variant: ModelVariant::Dev, keep_alive: Some(KeepAlive::Forever) }).await.unwrap();
    let p = ps(c.request(Request::Ps).await.unwrap());
    assert_eq!((p.len(), p[0].variant, p[0].expires_ms), (1, ModelVariant::Dev, None));
    c.request(Request::Load { variant: ModelVariant::Dev, keep_alive: Some(KeepAlive::Seconds(3600)) }).await.unwrap();
    let until = ps(c.request(Request::Ps).await.unwrap())[0].expires_ms.unwrap();
    let in_an_hour = ltxd::store::now_ms() + 3_600_000;
    assert!(until <= in_an_hour && until + 60_000 > in_an_hour, "{until} vs {in_an_hour}");
    c.request(Request::Load { variant: ModelVariant::Dev, keep_alive: Some(KeepAlive::Seconds(1)) }).await.unwrap();
    let t = std::time::Instant::now();
    while !ps(c.request(Request::Ps).await.unwrap()).is_empty() {
        assert!(t.elapsed().as_secs() < 10, "keep-alive did not expire");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    c.request(Request::Load { variant: ModelVariant::Distilled, keep_alive: None }).await.unwrap();
    c.request(Request::Unload { variant: None }).await.unwrap();
    assert!(ps(c.request(Request::Ps).await.unwrap()).is_empty());
}

#[tokio::test]
async fn shipped_engine_refuses_a_job_whose_model_is_not_installed() {
    let opts = Opts { env: vec![("LTX_TEST_ENGINE".into(), "shipped".into())], ..Opts::default() };
    let d = Daemon::with(bins!(), opts);
    let mut c = d.client().await;
    let mut r = req("a cat");
    r.variant = ModelVariant::DistilledFp8;
    // Refused at submit (the catalogue check), with the command that installs it; no job is queued.
    let message = c.request(Request::Submit(r)).await.unwrap_err().to_string();
    assert!(message.contains("ltx-2-19b-distilled-fp8.safetensors"), "{message}");
    assert!(message.contains("run `ltxctl models pull distilled-fp8`"), "{message}");
    assert!(message.contains(&d.dir.path().join("models").display().to_string()), "{message}");
    assert!(matches!(c.request(Request::History { limit: 10 }).await.unwrap(), Reply::History(h) if h.is_empty()));
    assert_eq!(std::fs::read_dir(d.outputs()).unwrap().count(), 0, "no fake output");
    // `load` gives the same refusal (it used to be the engine's own "model not installed" wording).
    let err = c.request(Request::Load { variant: ModelVariant::Dev, keep_alive: None }).await.unwrap_err();
    let models = d.dir.path().join("models");
    let want = format!("model files missing from {}: ltx-2-19b-dev.safetensors, ", models.display());
    assert!(err.to_string().starts_with(&want), "{err}");
    assert!(err.to_string().ends_with(" — run `ltxctl models pull dev`"), "{err}");
}

/// A `jobs.db` written before the schema had a version (committed fixture, written by the store as it was)
/// migrates when a daemon starts on it, and `ltxctl` shows its jobs with their states, errors and results.
#[test]
fn a_database_from_before_versioning_migrates_and_shows_its_jobs() {
    let mut d = Daemon::with(bins!(), Opts { start: false, ..Opts::default() });
    let state = d.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../daemon/tests/fixtures/jobs-v0.db");
    std::fs::copy(fixture, state.join("jobs.db")).unwrap();
    d.spawn();
    d.wait_ready();
    let o = d.ctl(&["--json", "history", "--limit", "10"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let history: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let jobs = history["jobs"].as_array().unwrap();
    let by_id = |id: u64| jobs.iter().find(|j| j["id"] == id).unwrap_or_else(|| panic!("job {id} in {jobs:?}"));
    assert_eq!(by_id(1)["state"], "completed");
    assert!(by_id(1)["timings_ms"].as_object().is_some_and(|t| !t.is_empty()), "{}", by_id(1));
    assert_eq!((by_id(2)["state"].as_str(), by_id(2)["error_code"].as_str()), (Some("failed"), Some("model_missing")));
    assert_eq!(by_id(3)["state"], "cancelled");
    let show = d.ctl(&["show", "1"]);
    assert!(String::from_utf8_lossy(&show.stdout).contains("timings:"), "{show:?}");
}
