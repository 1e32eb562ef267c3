//! The JSON document each `ltxctl --json` command prints (`docs/json.md`): objects from
//! [`ltx_protocol::json`] inside the command's own fields; [`crate::print::json`] adds `"schema"`. (`doctor`'s is
//! [`crate::doctor::document`], a failure's [`crate::exit::Failure::json`].)
use ltx_protocol::client::Submitted;
use ltx_protocol::json::{self as view, path_json};
use ltx_protocol::models::{ModelsInfo, PullFile, VerifyResult};
use ltx_protocol::{ComponentStatus, JobId, JobRecord, KeepAlive, ModelVariant, Pipeline};
use serde_json::{json, Value};
use std::path::Path;

/// `submit`: the job, its place in the queue, its seed.
pub fn submitted(s: &Submitted) -> Value {
    let Submitted { job, position, seed } = s;
    json!({ "job": job, "position": position, "seed": seed })
}

/// `cancel`: the jobs cancelled.
pub fn cancelled(jobs: &[JobId]) -> Value {
    json!({ "cancelled": jobs })
}

/// `pause` / `resume`: whether the queue holds now, and whether it did before (`resume` of a queue that was not
/// paused changes nothing).
pub fn paused(paused: bool, was_paused: bool) -> Value {
    json!({ "paused": paused, "was_paused": was_paused })
}

/// `history`: finished jobs, newest first.
pub fn history(jobs: &[JobRecord]) -> Value {
    json!({ "jobs": jobs.iter().map(view::job_json).collect::<Vec<_>>() })
}

/// `ps`: the loaded components.
pub fn ps(components: &[ComponentStatus]) -> Value {
    json!({ "components": components.iter().map(view::component_json).collect::<Vec<_>>() })
}

/// `load`: the variant loaded and the keep-alive asked for (`null`: the configured one).
pub fn loaded(variant: ModelVariant, keep_alive: Option<KeepAlive>) -> Value {
    json!({ "loaded": variant.name(), "keep_alive": keep_alive.map(view::keep_alive_json) })
}

/// `unload`: the variant unloaded (`null`: all).
pub fn unloaded(variant: Option<ModelVariant>) -> Value {
    json!({ "unloaded": variant.map(ModelVariant::name) })
}

/// `open`: the video, and whether an application opened it (else the path is all there is).
pub fn opened(job: JobId, video: &Path, opened: bool) -> Value {
    json!({ "job": job, "video": path_json(video), "opened": opened })
}

/// `daemon start`: `started` or `already_running`.
pub fn daemon_started(state: &str, socket: &Path, pid: Option<u32>) -> Value {
    json!({ "state": state, "socket": path_json(socket), "pid": pid })
}

/// `daemon stop`: `stopped` (with the pid and the job it interrupted, if one ran) or `not_running`.
pub fn daemon_stopped(state: &str, pid: Option<u32>, interrupted: Option<JobId>) -> Value {
    json!({ "state": state, "pid": pid, "interrupted": interrupted })
}

/// `models list`: per variant whether it is ready (or what is missing), per file its state.
pub fn models_list(info: &ModelsInfo, summary: &[ltx_protocol::models::VariantState]) -> Value {
    let ModelsInfo { dir, disk_free, hf_cache, files } = info;
    let variants: Vec<_> = summary
        .iter()
        .map(|s| {
            json!({
                "variant": s.variant.name(), "ready": s.missing.is_empty(), "missing": s.missing,
                "missing_bytes": s.bytes, "downloading": s.downloading,
            })
        })
        .collect();
    json!({
        "dir": path_json(dir),
        "disk_free": disk_free,
        "hf_cache": hf_cache.as_deref().map(path_json),
        "variants": variants,
        "files": files.iter().map(view::model_file_json).collect::<Vec<_>>(),
    })
}

/// `models pull`'s first line: what the pull does with each file (download events follow).
pub fn models_pull(variant: ModelVariant, pipeline: Pipeline, files: &[PullFile]) -> Value {
    let files: Vec<_> = files.iter().map(view::pull_file_json).collect();
    json!({ "variant": variant.name(), "pipeline": pipeline.name(), "files": files })
}

/// `models cancel`: the downloads stopped (their partial files are kept).
pub fn models_cancelled(files: &[String]) -> Value {
    json!({ "cancelled": files })
}

/// `models rm`: the files deleted and the bytes freed.
pub fn models_removed(files: &[String], bytes: u64) -> Value {
    json!({ "removed": files, "bytes": bytes })
}

/// `models verify`: each file's outcome.
pub fn models_verified(results: &[VerifyResult]) -> Value {
    json!({ "files": results.iter().map(view::verify_json).collect::<Vec<_>>() })
}

/// `models dir`: the running daemon's directory, the config file's, and whether they differ.
pub fn models_dir(dir: &Path, configured: &Path, restart_needed: bool) -> Value {
    json!({ "dir": path_json(dir), "configured": path_json(configured), "restart_needed": restart_needed })
}

/// `service install | uninstall | restart`: each change made.
pub fn service_changes(changes: &[String]) -> Value {
    json!({ "changed": changes })
}

/// `service status`.
pub fn service_status(s: &ltx_service::manage::ServiceStatus) -> Value {
    let ltx_service::manage::ServiceStatus { installed, files, enabled, running, pid, tray_login_item, detail } = s;
    let files: Vec<_> = files.iter().map(|f| path_json(f)).collect();
    json!({
        "installed": installed, "files": files, "enabled": enabled, "running": running, "pid": pid,
        "tray_login_item": tray_login_item, "detail": detail,
    })
}
