//! Golden documents: every object and document `--json` prints, rendered from fixed values, must appear verbatim
//! among the examples of `docs/json.md` (and every example there must be one of them), so a renamed or dropped
//! field fails here and the documentation cannot drift.
use crate::doctor::{self, Check, Level};
use crate::exit::Failure;
use crate::json::*;
use ltx_protocol::client::Submitted;
use ltx_protocol::json::{document, event_json};
use ltx_protocol::models::*;
use ltx_protocol::*;
use serde_json::Value;
use std::path::Path;

const DOCS: &str = include_str!("../../docs/json.md");

/// Every JSON value in the ```json blocks of `docs/json.md` (one a line, or one spread over several lines).
fn examples() -> Vec<Value> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in DOCS.lines() {
        match (&mut block, line.trim_end()) {
            (None, "```json") => block = Some(String::new()),
            (Some(b), "```") => {
                for v in serde_json::Deserializer::from_str(b).into_iter::<Value>() {
                    out.push(v.unwrap_or_else(|e| panic!("docs/json.md: a ```json block does not parse: {e}\n{b}")));
                }
                block = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

fn request() -> GenerationRequest {
    let mut r = GenerationRequest::for_pipeline("a red fox in the snow", ModelVariant::Dev, Pipeline::TwoStage);
    r.negative_prompt = Some("blurry".into());
    r.width = 1024;
    r.height = 768;
    r.frames = 121;
    r.seed = Some(7);
    r.image = Some(ImageInput { name: "/home/me/first.png".into(), bytes: vec![0x89; 16], strength: 0.8 });
    r.output = Some("/home/me/clip.mp4".into());
    r.keep_alive = Some(KeepAlive::Seconds(1800));
    r.guidance = Some(Guidance { rescale: Some(0.7), stg_blocks: Some(vec![28, 29]), ..Guidance::default() });
    r
}

fn job() -> JobRecord {
    JobRecord {
        id: 12,
        state: JobState::Completed,
        request: request(),
        seed: 7,
        created_ms: 1767225600000,
        started_ms: Some(1767225601000),
        finished_ms: Some(1767225723000),
        output: Some("/home/me/clip.mp4".into()),
        error_code: None,
        message: None,
        timings: vec![("denoise".into(), 98000), ("total".into(), 122000)],
    }
}

fn file(state: FileState) -> ModelFileInfo {
    ModelFileInfo {
        name: "ltx-2-19b-distilled.safetensors".into(),
        repo: "Lightricks/LTX-2".into(),
        component: "transformer".into(),
        size: 43_000_000_000,
        state,
        verified: true,
        own_split: false,
    }
}

fn event(kind: EventKind) -> Value {
    document(event_json(&Event { job: 12, kind }))
}

/// A stage event `elapsed_ms` into the job, with its ETA (ms left, measured) if any.
fn stage(stage: Stage, elapsed_ms: u64, eta: Option<(u64, bool)>) -> Value {
    let eta = eta.map(|(remaining_ms, measured)| Eta { remaining_ms, measured });
    event(EventKind::Stage { stage, elapsed_ms, eta })
}

fn download(d: DownloadEvent) -> Value {
    document(event_json(&Event { job: models::MODEL_EVENTS, kind: EventKind::Download(d) }))
}

/// Each object and document, by the name the failure message gives it.
fn goldens() -> Vec<(&'static str, Value)> {
    use ltx_protocol::json as view;
    let f = "ltx-2-19b-distilled.safetensors".to_string();
    let status = DaemonStatus {
        daemon_version: "0.1.0".into(),
        protocol_version: 5,
        pid: 4242,
        uptime_ms: 93000,
        socket: "/run/user/1000/ltx/ltxd.sock".into(),
        paused: false,
        running: Some(12),
        pending: 1,
        capacity: 256,
        outputs_dir: "/home/me/Videos/ltx".into(),
        models_dir: "/home/me/ltx/models".into(),
        compute: "cuda bf16, MLX 0.32.2".into(),
        memory: "profile 64gb, budget 60.0 GB".into(),
        decision: decision(),
        engine_restarts: 0,
        engine_panic: None,
    };
    let component = ComponentStatus {
        name: Part::Transformer,
        variant: ModelVariant::Distilled,
        bytes: 27_000_000_000,
        expires_ms: None,
    };
    let info = ModelsInfo {
        dir: "/home/me/ltx/models".into(),
        disk_free: Some(500_000_000_000),
        hf_cache: None,
        files: vec![],
    };
    let refused = Failure::from(ValidationError::PromptEmpty);
    vec![
        ("request", view::request_json(&request())),
        ("job", view::job_json(&job())),
        ("component", view::component_json(&component)),
        ("file installed", view::model_file_json(&file(FileState::Installed { bytes: 43_000_000_000 }))),
        ("file partial", view::model_file_json(&file(FileState::Partial { bytes: 1_000_000 }))),
        ("file downloading", view::model_file_json(&file(FileState::Downloading { done: 5, total: 43 }))),
        (
            "file in_hf_cache",
            view::model_file_json(&file(FileState::InHfCache {
                path: "/home/me/.cache/huggingface/hub/models--Lightricks--LTX-2/snapshots/abc/f".into(),
                bytes: 43_000_000_000,
            })),
        ),
        ("file missing", view::model_file_json(&file(FileState::Missing))),
        ("file queued", view::model_file_json(&file(FileState::Queued))),
        (
            "pull already_installed",
            view::pull_file_json(&PullFile { name: f.clone(), action: PullAction::AlreadyInstalled }),
        ),
        (
            "pull linked",
            view::pull_file_json(&PullFile { name: f.clone(), action: PullAction::Linked("/hf/f".into()) }),
        ),
        ("pull started", view::pull_file_json(&PullFile { name: f.clone(), action: PullAction::Started })),
        ("pull joined", view::pull_file_json(&PullFile { name: f.clone(), action: PullAction::Joined })),
        (
            "verify ok",
            view::verify_json(&VerifyResult {
                name: f.clone(),
                sha256: Some("ab12".into()),
                outcome: VerifyOutcome::Ok,
            }),
        ),
        (
            "verify mismatch",
            view::verify_json(&VerifyResult {
                name: f.clone(),
                sha256: Some("ab12".into()),
                outcome: VerifyOutcome::Mismatch { expected: "ab12".into(), actual: "cd34".into() },
            }),
        ),
        (
            "verify missing",
            view::verify_json(&VerifyResult { name: f.clone(), sha256: None, outcome: VerifyOutcome::Missing }),
        ),
        (
            "verify unverifiable",
            view::verify_json(&VerifyResult {
                name: f.clone(),
                sha256: None,
                outcome: VerifyOutcome::Unverifiable("offline".into()),
            }),
        ),
        (
            "verify own_split",
            view::verify_json(&VerifyResult { name: f.clone(), sha256: None, outcome: VerifyOutcome::OwnSplit }),
        ),
        ("event queued", event(EventKind::Queued { position: 2 })),
        ("event started", event(EventKind::Started)),
        ("event preview", event(EventKind::Preview { step: 3, jpeg: vec![0xff; 2048] })),
        ("event stage loading", stage(Stage::LoadingComponent("transformer".into()), 300, None)),
        ("event stage encoding_prompt", stage(Stage::EncodingPrompt, 2100, Some((118000, false)))),
        ("event stage upscaling", stage(Stage::Upscaling, 60000, Some((55000, true)))),
        ("event stage decoding_video", stage(Stage::DecodingVideo, 90000, Some((30000, true)))),
        ("event stage decoding_audio", stage(Stage::DecodingAudio, 110000, Some((9000, true)))),
        ("event stage writing_file", stage(Stage::WritingFile, 119000, Some((2000, true)))),
        ("event stage encoding_image", stage(Stage::EncodingImage, 3000, Some((117000, false)))),
        (
            "event step",
            event(EventKind::Step {
                stage: Stage::Denoising(1),
                step: 3,
                total: 8,
                elapsed_ms: 4100,
                eta: Some(Eta { remaining_ms: 6800, measured: true }),
            }),
        ),
        (
            "event completed",
            event(EventKind::Completed {
                output: "/home/me/clip.mp4".into(),
                duration_ms: 122000,
                seed: 7,
                timings: vec![("total".into(), 122000)],
            }),
        ),
        ("event failed", event(EventKind::Failed { code: "denoise_failed".into(), message: "out of memory".into() })),
        ("event cancelled", event(EventKind::Cancelled)),
        ("event interrupted", event(EventKind::Interrupted { reason: "the daemon stopped".into() })),
        ("download progress", download(DownloadEvent::Progress { file: f.clone(), done: 1000, total: 43000 })),
        (
            "download retrying",
            download(DownloadEvent::Retrying {
                file: f.clone(),
                attempt: 2,
                delay_ms: 4000,
                reason: "HTTP 503".into(),
            }),
        ),
        ("download done", download(DownloadEvent::Done { file: f.clone(), bytes: 43000, sha256: "ab12".into() })),
        ("download failed", download(DownloadEvent::Failed { file: f.clone(), message: "disk full".into() })),
        ("submitted", document(submitted(&Submitted { job: 12, position: 1, seed: 7 }))),
        ("status", document(view::status_json(&status))),
        (
            "queue",
            document(view::queue_json(&QueueInfo {
                paused: false,
                capacity: 256,
                running: None,
                progress: Some(Progress {
                    stage: Stage::Denoising(1),
                    step: 3,
                    total: 8,
                    elapsed_ms: 4100,
                    eta: Some(Eta { remaining_ms: 6800, measured: true }),
                }),
                pending: vec![],
            })),
        ),
        ("history", document(history(&[]))),
        ("cancel", document(cancelled(&[12, 13]))),
        ("pause", document(paused(true, false))),
        ("ps", document(ps(&[]))),
        ("load", document(loaded(ModelVariant::Distilled, Some(KeepAlive::Forever)))),
        ("unload", document(unloaded(None))),
        ("open", document(opened(12, Path::new("/home/me/clip.mp4"), true))),
        ("daemon start", document(daemon_started("started", Path::new("/run/user/1000/ltx/ltxd.sock"), Some(4242)))),
        ("daemon stop", document(daemon_stopped("stopped", Some(4242), Some(12)))),
        (
            "models list",
            document(models_list(
                &info,
                &[ltx_protocol::models::VariantState {
                    variant: ModelVariant::Dev,
                    missing: vec![f.clone()],
                    bytes: 43_000_000_000,
                    downloading: 0,
                }],
            )),
        ),
        ("models pull", document(models_pull(ModelVariant::Distilled, Pipeline::Distilled, &[]))),
        ("models rm", document(models_removed(std::slice::from_ref(&f), 43_000_000_000))),
        ("models verify", document(models_verified(&[]))),
        ("models dir", document(models_dir(Path::new("/data/ltx"), Path::new("/data/ltx"), false))),
        (
            "doctor",
            document(doctor::document(&[Check {
                check: "socket",
                status: Level::Ok,
                detail: "ltxd answers".into(),
                fix: None,
            }])),
        ),
        ("service changes", document(service_changes(&["wrote ~/.config/systemd/user/ltxd.socket".into()]))),
        ("service status", document(service_status(&ltx_service::manage::ServiceStatus::default()))),
        ("error", document(refused.json())),
        ("sidecar", view_sidecar()),
    ]
}

#[test]
fn every_document_is_documented_verbatim_in_docs_json_md() {
    let examples = examples();
    let goldens = goldens();
    let missing: Vec<_> =
        goldens.iter().filter(|(_, v)| !examples.contains(v)).map(|(name, v)| format!("{name}:\n{v}")).collect();
    assert!(missing.is_empty(), "docs/json.md lacks (or spells otherwise):\n{}", missing.join("\n"));
    for e in &examples {
        assert!(goldens.iter().any(|(_, v)| v == e), "docs/json.md shows a document nothing prints: {e}");
    }
}

#[test]
fn documents_carry_the_schema_and_one_spelling_per_value() {
    for (name, v) in goldens() {
        let top_level =
            !matches!(name.split(' ').next(), Some("request" | "job" | "component" | "file" | "pull" | "verify"));
        assert_eq!(v.get("schema").is_some(), top_level, "{name}: {v}");
        // Every enum value is lowercase snake_case or a rule-table name; nothing like `"Distilled"` or
        // `{"Step":{…}}` (an externally tagged enum).
        fn walk(name: &str, v: &Value) {
            match v {
                Value::Object(m) => m.iter().for_each(|(k, v)| {
                    assert!(!k.starts_with(char::is_uppercase), "{name}: key {k}");
                    walk(name, v)
                }),
                Value::Array(a) => a.iter().for_each(|v| walk(name, v)),
                _ => {}
            }
        }
        walk(name, &v);
    }
    let step = &goldens().into_iter().find(|(n, _)| *n == "event step").expect("step").1;
    assert_eq!((step["event"].as_str(), step["stage"].as_str()), (Some("step"), Some("denoising")));
    let sidecar = view_sidecar();
    assert_eq!((sidecar["request"]["variant"].as_str(), sidecar["state"].as_str()), (Some("dev"), Some("completed")));
    assert_eq!(sidecar["request"]["image"]["strength"].to_string(), "0.8");
    assert_eq!(sidecar["request"]["guidance"]["rescale"].to_string(), "0.7");
}

/// A 64 GB machine's memory decision.
fn decision() -> MemoryDecision {
    MemoryDecision {
        profile: "64gb".into(),
        total_memory: 68_719_476_736,
        budget: 51_539_607_552,
        variant: ModelVariant::Distilled,
        installed: true,
        weights: 49_700_000_000,
        low_memory: false,
        why: "69 GB of memory, the 64gb profile (51.5 GB for a job): it runs distilled; its weights (49.7 GB) fit, so \
              all resident unless a job's size needs the low-memory plan"
            .into(),
    }
}

/// The sidecar of [`job`], its versions those `docs/json.md` shows.
fn view_sidecar() -> Value {
    let mut v = ltx_protocol::json::sidecar_json(&job(), &decision());
    assert_eq!((&v["daemon_version"], &v["protocol_version"]), (&VERSION.into(), &PROTOCOL_VERSION.into()));
    (v["daemon_version"], v["protocol_version"]) = ("0.1.0".into(), 5.into());
    v
}
