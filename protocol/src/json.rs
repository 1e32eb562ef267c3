//! The JSON form of the wire types: what `ltxctl --json` prints, what an output's sidecar holds, and what an HTTP
//! API is to serve (`docs/json.md` documents every object, with the golden examples `ltx-client`'s tests hold to).
//! A shape of its own, versioned by [`JSON_SCHEMA`]: flat `"event"` tags, the rule table's names for variants and
//! pipelines, lowercase states, f32 values as the decimal they were given, paths as text, and one stable machine
//! `code` per error. The bincode wire types' serde derive is the socket protocol and is not this.
//!
//! Each view destructures its type completely: a field added to a wire type does not build until it has its JSON.
use crate::event::{Eta, Event, EventKind, Stage};
use crate::job::{GenerationRequest, Guidance, ImageInput, JobRecord, KeepAlive};
use crate::message::{ComponentStatus, DaemonStatus, MemoryDecision, Progress, QueueInfo};
use crate::models::{DownloadEvent, FileState, ModelFileInfo, PullAction, PullFile, VerifyOutcome, VerifyResult};
use serde_json::{json, Map, Value};
use std::path::Path;

/// The version of every JSON document ltxctl prints and of the output sidecar; bumped on an incompatible change
/// (a field renamed, removed or given another meaning). New fields may appear within a version.
pub const JSON_SCHEMA: u32 = 1;

/// A top-level document: `v`'s fields with `"schema"`. `v` must be an object (anything else is wrapped as
/// `{"value": v}`).
pub fn document(v: Value) -> Value {
    let mut doc = match v {
        Value::Object(m) => m,
        other => Map::from_iter([("value".to_string(), other)]),
    };
    doc.insert("schema".into(), JSON_SCHEMA.into());
    Value::Object(doc)
}

/// An f32 as the decimal it was written as (0.7, not 0.699999988); `null` for NaN or an infinity.
pub fn f32_json(v: f32) -> Value {
    // `{v}` is the shortest decimal that reads back as this f32.
    format!("{v}").parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
}

/// A path as text (bytes that are not UTF-8 shown as U+FFFD: JSON strings are Unicode).
pub fn path_json(p: &Path) -> Value {
    p.to_string_lossy().into()
}

fn opt_path(p: Option<&Path>) -> Value {
    p.map_or(Value::Null, path_json)
}

fn opt_f32(v: Option<f32>) -> Value {
    v.map_or(Value::Null, f32_json)
}

fn extend(m: &mut Map<String, Value>, extra: Value) {
    if let Value::Object(extra) = extra {
        m.extend(extra);
    }
}

/// A stage as `"stage"` plus its detail: `component` while loading, `denoising_stage` (1, or 2 in the two-stage
/// pipelines) while denoising.
fn stage_fields(stage: &Stage, m: &mut Map<String, Value>) {
    let name = match stage {
        Stage::LoadingComponent(c) => {
            m.insert("component".into(), c.as_str().into());
            "loading"
        }
        Stage::EncodingPrompt => "encoding_prompt",
        Stage::Denoising(n) => {
            m.insert("denoising_stage".into(), (*n).into());
            "denoising"
        }
        Stage::Upscaling => "upscaling",
        Stage::DecodingVideo => "decoding_video",
        Stage::DecodingAudio => "decoding_audio",
        Stage::WritingFile => "writing_file",
        Stage::EncodingImage => "encoding_image",
    };
    m.insert("stage".into(), name.into());
}

/// The whole job's time left as `eta_ms` (`null` while it cannot be estimated) and whether the job's own steps
/// back it, `eta_measured` (`false`: an estimate from this machine's past jobs).
fn eta_fields(eta: &Option<Eta>, m: &mut Map<String, Value>) {
    let (ms, measured) = eta.map_or((None, false), |Eta { remaining_ms, measured }| (Some(remaining_ms), measured));
    extend(m, json!({ "eta_ms": ms, "eta_measured": measured }));
}

/// One event, flat: `{"event":"step","job":1,"stage":"denoising","denoising_stage":1,"step":2,…}` (no
/// `"schema"`: [`document`] adds it where the event is a line of its own). Download events carry no job.
pub fn event_json(ev: &Event) -> Value {
    let Event { job, kind } = ev;
    let mut m = Map::new();
    let name = match kind {
        EventKind::Queued { position } => {
            extend(&mut m, json!({ "position": position }));
            "queued"
        }
        EventKind::Started => "started",
        EventKind::Preview { step, jpeg } => {
            extend(&mut m, json!({ "step": step, "jpeg_bytes": jpeg.len() }));
            "preview"
        }
        EventKind::Stage { stage, elapsed_ms, eta } => {
            stage_fields(stage, &mut m);
            extend(&mut m, json!({ "elapsed_ms": elapsed_ms }));
            eta_fields(eta, &mut m);
            "stage"
        }
        EventKind::Step { stage, step, total, elapsed_ms, eta } => {
            stage_fields(stage, &mut m);
            extend(&mut m, json!({ "step": step, "total": total, "elapsed_ms": elapsed_ms }));
            eta_fields(eta, &mut m);
            "step"
        }
        EventKind::Completed { output, duration_ms, seed, timings } => {
            let v = json!({ "output": path_json(output), "duration_ms": duration_ms, "seed": seed,
                            "timings_ms": timings_json(timings) });
            extend(&mut m, v);
            "completed"
        }
        EventKind::Failed { code, message } => {
            extend(&mut m, json!({ "code": code, "message": message }));
            "failed"
        }
        EventKind::Cancelled => "cancelled",
        EventKind::Interrupted { reason } => {
            extend(&mut m, json!({ "reason": reason }));
            "interrupted"
        }
        EventKind::Download(d) => download_fields(d, &mut m),
    };
    if !matches!(kind, EventKind::Download(_)) {
        m.insert("job".into(), (*job).into());
    }
    m.insert("event".into(), name.into());
    Value::Object(m)
}

fn download_fields(d: &DownloadEvent, m: &mut Map<String, Value>) -> &'static str {
    let (name, v) = match d {
        DownloadEvent::Progress { file, done, total } => {
            ("download_progress", json!({ "file": file, "done": done, "total": total }))
        }
        DownloadEvent::Retrying { file, attempt, delay_ms, reason } => {
            ("download_retrying", json!({ "file": file, "attempt": attempt, "delay_ms": delay_ms, "reason": reason }))
        }
        DownloadEvent::Done { file, bytes, sha256 } => {
            ("download_done", json!({ "file": file, "bytes": bytes, "sha256": sha256 }))
        }
        DownloadEvent::Failed { file, message } => ("download_failed", json!({ "file": file, "message": message })),
    };
    extend(m, v);
    name
}

/// Stage timings as `{"<stage>": ms}`.
pub fn timings_json(timings: &[(String, u64)]) -> Value {
    Value::Object(timings.iter().map(|(k, v)| (k.clone(), (*v).into())).collect())
}

/// `-1` forever, `0` unload right after use, else seconds.
pub fn keep_alive_json(k: KeepAlive) -> Value {
    match k {
        KeepAlive::Forever => (-1).into(),
        KeepAlive::UnloadNow => 0.into(),
        KeepAlive::Seconds(s) => s.into(),
    }
}

fn guidance_json(g: &Guidance) -> Value {
    let Guidance { audio_cfg, stg, rescale, modality, stg_blocks } = g;
    json!({
        "audio_cfg": opt_f32(*audio_cfg),
        "stg": opt_f32(*stg),
        "rescale": opt_f32(*rescale),
        "modality": opt_f32(*modality),
        "stg_blocks": stg_blocks,
    })
}

/// A first-frame image by its name and strength (never its bytes).
fn image_json(i: &ImageInput) -> Value {
    let ImageInput { name, bytes: _, strength } = i;
    json!({ "name": name, "strength": f32_json(*strength) })
}

/// A generation request with the rule table's names.
pub fn request_json(r: &GenerationRequest) -> Value {
    let GenerationRequest {
        prompt,
        negative_prompt,
        variant,
        pipeline,
        width,
        height,
        frames,
        fps,
        steps,
        guidance_scale,
        seed,
        image,
        audio,
        output,
        front,
        keep_alive,
        guidance,
        low_memory,
        upscale,
    } = r;
    json!({
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "variant": variant.name(),
        "pipeline": pipeline.name(),
        "width": width,
        "height": height,
        "frames": frames,
        "fps": fps,
        "steps": steps,
        "guidance_scale": f32_json(*guidance_scale),
        "seed": seed,
        "image": image.as_ref().map(image_json),
        "audio": audio,
        "output": opt_path(output.as_deref()),
        "front": front,
        "keep_alive": keep_alive.map(keep_alive_json),
        "guidance": guidance.as_ref().map(guidance_json),
        "low_memory": low_memory,
        "upscale": upscale.name(),
    })
}

/// A job: its lowercase state, the request through [`request_json`], the seed it runs with, Unix-millisecond
/// times, the output or the failure, stage timings.
pub fn job_json(r: &JobRecord) -> Value {
    let JobRecord {
        id,
        state,
        request,
        seed,
        created_ms,
        started_ms,
        finished_ms,
        output,
        error_code,
        message,
        timings,
    } = r;
    json!({
        "id": id,
        "state": state.name(),
        "request": request_json(request),
        "seed": seed,
        "created_ms": created_ms,
        "started_ms": started_ms,
        "finished_ms": finished_ms,
        "output": opt_path(output.as_deref()),
        "error_code": error_code,
        "message": message,
        "timings_ms": timings_json(timings),
    })
}

/// The running job, how far it is, and the pending ones in the order they run.
pub fn queue_json(q: &QueueInfo) -> Value {
    let QueueInfo { paused, capacity, running, progress, pending } = q;
    json!({
        "paused": paused,
        "capacity": capacity,
        "running": running.as_ref().map(job_json),
        "progress": progress.as_ref().map(progress_json),
        "pending": pending.iter().map(job_json).collect::<Vec<_>>(),
    })
}

/// A running job's last stage or step event: the stage as in the event, `step` of `total` (0 of 0 before the
/// stage's first step), `elapsed_ms`, `eta_ms`, `eta_measured`.
pub fn progress_json(p: &Progress) -> Value {
    let Progress { stage, step, total, elapsed_ms, eta } = p;
    let mut m = Map::new();
    stage_fields(stage, &mut m);
    extend(&mut m, json!({ "step": step, "total": total, "elapsed_ms": elapsed_ms }));
    eta_fields(eta, &mut m);
    Value::Object(m)
}

/// The daemon's state (`ltxctl status`).
pub fn status_json(s: &DaemonStatus) -> Value {
    let DaemonStatus {
        daemon_version,
        protocol_version,
        pid,
        uptime_ms,
        socket,
        paused,
        running,
        pending,
        capacity,
        outputs_dir,
        models_dir,
        compute,
        memory,
        decision,
        engine_restarts,
        engine_panic,
    } = s;
    json!({
        "daemon_version": daemon_version,
        "protocol_version": protocol_version,
        "pid": pid,
        "uptime_ms": uptime_ms,
        "socket": path_json(socket),
        "paused": paused,
        "running": running,
        "pending": pending,
        "capacity": capacity,
        "outputs_dir": path_json(outputs_dir),
        "models_dir": path_json(models_dir),
        "compute": compute,
        "memory": memory,
        "decision": decision_json(decision),
        "engine_restarts": engine_restarts,
        "engine_panic": engine_panic,
    })
}

/// The memory decision (`ltxctl status`, `doctor`, the sidecar): the variant by name, `installed`, `plan`
/// (`all resident` or `low-memory sequential`), the bytes, `why`, and the pull command when not installed.
pub fn decision_json(d: &MemoryDecision) -> Value {
    let MemoryDecision { profile, total_memory, budget, variant, installed, weights, low_memory: _, why } = d;
    json!({
        "variant": variant.name(),
        "installed": installed,
        "plan": d.plan(),
        "profile": profile,
        "total_memory": total_memory,
        "budget": budget,
        "weights": weights,
        "why": why,
        "pull": d.pull(),
    })
}

/// A loaded component: its part and variant by name, its size, when it unloads (`null`: kept forever).
pub fn component_json(c: &ComponentStatus) -> Value {
    let ComponentStatus { name, variant, bytes, expires_ms } = c;
    json!({ "name": name.name(), "variant": variant.name(), "bytes": bytes, "expires_ms": expires_ms })
}

/// A model file: `"state"` one of `installed`, `partial`, `downloading`, `queued`, `in_hf_cache`, `missing`,
/// with its numbers beside it; `own_split` for the directory's own shard split (no Hub repository).
pub fn model_file_json(f: &ModelFileInfo) -> Value {
    let ModelFileInfo { name, repo, component, size, state, verified, own_split } = f;
    let mut m = Map::new();
    extend(
        &mut m,
        json!({
            "name": name, "repo": repo, "component": component, "size": size, "verified": verified,
            "own_split": own_split,
        }),
    );
    let (state, extra) = match state {
        FileState::Installed { bytes } => ("installed", json!({ "bytes": bytes })),
        FileState::Partial { bytes } => ("partial", json!({ "bytes": bytes })),
        FileState::Downloading { done, total } => ("downloading", json!({ "done": done, "total": total })),
        FileState::InHfCache { path, bytes } => ("in_hf_cache", json!({ "path": path_json(path), "bytes": bytes })),
        FileState::Missing => ("missing", json!({})),
        FileState::Queued => ("queued", json!({})),
    };
    m.insert("state".into(), state.into());
    extend(&mut m, extra);
    Value::Object(m)
}

/// What a pull does with a file: `"action"` one of `already_installed`, `linked` (with `from`), `started`,
/// `joined`.
pub fn pull_file_json(f: &PullFile) -> Value {
    let PullFile { name, action } = f;
    match action {
        PullAction::AlreadyInstalled => json!({ "name": name, "action": "already_installed" }),
        PullAction::Linked(from) => json!({ "name": name, "action": "linked", "from": path_json(from) }),
        PullAction::Started => json!({ "name": name, "action": "started" }),
        PullAction::Joined => json!({ "name": name, "action": "joined" }),
    }
}

/// A verification: `"outcome"` one of `ok`, `mismatch` (with `expected`, `actual`), `missing`, `unverifiable`
/// (with `reason`), `own_split` (the directory's own shard split: nothing published to check it against).
pub fn verify_json(r: &VerifyResult) -> Value {
    let VerifyResult { name, sha256, outcome } = r;
    let mut m = Map::new();
    extend(&mut m, json!({ "name": name, "sha256": sha256 }));
    let (outcome, extra) = match outcome {
        VerifyOutcome::Ok => ("ok", json!({})),
        VerifyOutcome::Mismatch { expected, actual } => ("mismatch", json!({ "expected": expected, "actual": actual })),
        VerifyOutcome::Missing => ("missing", json!({})),
        VerifyOutcome::Unverifiable(why) => ("unverifiable", json!({ "reason": why })),
        VerifyOutcome::OwnSplit => ("own_split", json!({})),
    };
    m.insert("outcome".into(), outcome.into());
    extend(&mut m, extra);
    Value::Object(m)
}

/// An error: its stable `code`, for an invalid request the validation's `reason`, and the message for a person.
pub fn error_json(code: &str, reason: Option<&str>, message: &str) -> Value {
    let mut m = Map::new();
    extend(&mut m, json!({ "code": code, "message": message }));
    if let Some(r) = reason {
        m.insert("reason".into(), r.into());
    }
    Value::Object(m)
}

/// The sidecar beside a finished video: its job (as [`job_json`]) and the versions that made it.
pub fn sidecar_json(job: &JobRecord, decision: &MemoryDecision) -> Value {
    let mut doc = document(job_json(job));
    doc["memory"] = decision_json(decision);
    doc["daemon_version"] = crate::VERSION.into();
    doc["protocol_version"] = crate::PROTOCOL_VERSION.into();
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobState, ModelVariant, Pipeline};

    #[test]
    fn f32_values_keep_their_decimal() {
        assert_eq!(f32_json(0.7).to_string(), "0.7");
        assert_eq!(f32_json(0.8).to_string(), "0.8");
        assert_eq!(f32_json(3.0).to_string(), "3.0");
        assert_eq!(f32_json(1e-7).to_string(), "1e-7");
        assert_eq!((f32_json(f32::NAN), f32_json(f32::INFINITY)), (Value::Null, Value::Null));
        // What an f32 becomes in a `serde_json::Value` by itself: the f64 nearest to it.
        assert_eq!(serde_json::to_value(0.7f32).unwrap().to_string(), "0.699999988079071");
    }

    #[test]
    fn events_are_flat_and_tagged() {
        let step = Event {
            job: 3,
            kind: EventKind::Step { stage: Stage::Denoising(2), step: 1, total: 8, elapsed_ms: 5, eta: None },
        };
        assert_eq!(
            event_json(&step),
            json!({"job": 3, "event": "step", "stage": "denoising", "denoising_stage": 2, "step": 1, "total": 8,
                   "elapsed_ms": 5, "eta_ms": null, "eta_measured": false})
        );
        let eta = Some(Eta { remaining_ms: 900, measured: false });
        let stage = Event { job: 3, kind: EventKind::Stage { stage: Stage::DecodingVideo, elapsed_ms: 7, eta } };
        assert_eq!(
            event_json(&stage),
            json!({"job": 3, "event": "stage", "stage": "decoding_video", "elapsed_ms": 7, "eta_ms": 900,
                   "eta_measured": false})
        );
        assert_eq!(event_json(&Event { job: 1, kind: EventKind::Started }), json!({"job": 1, "event": "started"}));
        let dl = Event {
            job: 0,
            kind: EventKind::Download(DownloadEvent::Failed { file: "f".into(), message: "m".into() }),
        };
        assert_eq!(event_json(&dl), json!({"event": "download_failed", "file": "f", "message": "m"}));
        assert_eq!(document(event_json(&dl))["schema"], JSON_SCHEMA);
    }

    #[test]
    fn requests_use_the_rule_table_names_and_never_image_bytes() {
        let mut r = GenerationRequest::for_pipeline("a fox", ModelVariant::DistilledFp8, Pipeline::Distilled);
        r.guidance = Some(Guidance { rescale: Some(0.7), ..Default::default() });
        r.image = Some(ImageInput { name: "a.png".into(), bytes: vec![1; 64], strength: 0.8 });
        let v = request_json(&r);
        assert_eq!((v["variant"].as_str(), v["pipeline"].as_str()), (Some("distilled-fp8"), Some("distilled")));
        assert_eq!(v["guidance"]["rescale"].to_string(), "0.7");
        assert_eq!(v["image"], json!({"name": "a.png", "strength": 0.8}));
    }

    #[test]
    fn paths_that_are_not_utf8_are_text_not_a_panic() {
        use std::os::unix::ffi::OsStrExt;
        let p = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b"/tmp/\xff.mp4"));
        let mut rec = JobRecord {
            id: 1,
            state: JobState::Completed,
            request: GenerationRequest::new("x"),
            seed: 1,
            created_ms: 0,
            started_ms: None,
            finished_ms: None,
            output: Some(p.clone()),
            error_code: None,
            message: None,
            timings: vec![],
        };
        rec.request.output = Some(p);
        let d = MemoryDecision {
            profile: "16gb".into(),
            total_memory: 1,
            budget: 1,
            variant: ModelVariant::DistilledFp8,
            installed: false,
            weights: 2,
            low_memory: true,
            why: "w".into(),
        };
        let v = sidecar_json(&rec, &d);
        assert_eq!(v["memory"]["pull"], "ltxctl models pull distilled-fp8");
        assert_eq!(v["memory"]["plan"], "low-memory sequential");
        assert_eq!(v["output"], "/tmp/\u{fffd}.mp4");
        assert_eq!(v["request"]["output"], "/tmp/\u{fffd}.mp4");
        assert_eq!(v["state"], "completed");
    }
}
