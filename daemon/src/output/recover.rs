//! Start-up repair of what a crash left among the outputs: this daemon's temporary files are removed (only
//! names carrying its tag, files of its user), and a job the crash caught after its video was placed but
//! before it was recorded — its temporary name still links the video — is recorded completed with that
//! video, its sidecar written if it was not.
use super::{instance_tag, parse_temp, sidecar, sidecar_name, target, temp_prefix, write_sidecar};
use crate::config::Config;
use crate::store::{now_ms, Store};
use ltx_protocol::fsutil::{Dir, Stat};
use ltx_protocol::{JobId, JobRecord, JobState};
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;

/// Interrupted jobs looked at (newest first): a crash interrupts one job, a shutdown at most one more.
const RECENT: u32 = 64;

/// What [`recover`] did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Jobs recorded completed, with their output.
    pub completed: Vec<(JobId, PathBuf)>,
    /// Temporary files removed.
    pub removed: Vec<PathBuf>,
}

/// Runs before the scheduler: no job of this daemon is running, so every temporary file of its own is an
/// orphan. Problems are logged, never fatal.
pub fn recover(store: &mut Store, cfg: &Config) -> Recovered {
    let tag = instance_tag(&cfg.state_dir);
    let interrupted: HashMap<JobId, JobRecord> = match store.history(RECENT) {
        Ok(h) => h
            .into_iter()
            .filter(|r| r.state == JobState::Interrupted && r.output.is_none())
            .map(|r| (r.id, r))
            .collect(),
        Err(e) => {
            tracing::warn!("cannot read the interrupted jobs: {e}");
            HashMap::new()
        }
    };
    let mut dirs = BTreeSet::from([cfg.outputs_dir.clone()]);
    for r in interrupted.values() {
        let t = target(r.request.output.as_deref(), &cfg.outputs_dir, r.created_ms, &r.request.prompt, r.seed);
        dirs.extend(t.parent().map(PathBuf::from));
    }
    let mut out = Recovered::default();
    // A sidecar written now says the decision of now (the job's own was not kept).
    let decision = cfg.memory.decision(ltx_engine::Compute::detect().backend, &cfg.models_dir);
    for path in dirs {
        let Ok(dir) = Dir::open(&path) else { continue };
        let names = dir.entries().unwrap_or_default();
        for name in &names {
            let Some((file, t, job)) = parse_temp(name) else { continue };
            let Some(st) = dir.stat(name).ok().flatten() else { continue };
            if t != tag || !st.is_file() || st.uid != ltx_protocol::server::current_uid() {
                continue;
            }
            let is_video = !file.ends_with(".json");
            if let (true, Some(rec)) = (is_video && st.nlink > 1, interrupted.get(&job)) {
                if let Some(video) = names.iter().find(|n| same_file(&dir, n, &st)) {
                    match complete(store, &dir, rec, video, &tag, &decision) {
                        Ok(p) => out.completed.push((job, p)),
                        Err(e) => tracing::warn!(job, "cannot record the output {:?} found for this job: {e}", video),
                    }
                }
            }
            if dir.remove(name).is_ok() {
                out.removed.push(dir.join(name));
            }
        }
        let _ = dir.sync();
    }
    out
}

/// Whether `name` (not a temporary name) is the file `st` describes.
fn same_file(dir: &Dir, name: &OsString, st: &Stat) -> bool {
    parse_temp(name).is_none()
        && dir.stat(name).ok().flatten().is_some_and(|s| s.is_file() && (s.dev, s.ino) == (st.dev, st.ino))
}

fn complete(
    store: &mut Store,
    dir: &Dir,
    rec: &JobRecord,
    video: &OsString,
    tag: &str,
    decision: &ltx_protocol::MemoryDecision,
) -> Result<PathBuf, String> {
    let path = dir.join(video);
    let json = sidecar_name(video);
    if dir.stat(&json).map_err(|e| e.to_string())?.is_none() {
        let finished = rec.finished_ms.unwrap_or_else(now_ms);
        let bytes = sidecar(rec, &path, finished, &[], decision).map_err(|e| e.to_string())?;
        write_sidecar(dir, &json, &temp_prefix(&json, tag, rec.id), &bytes)
            .map_err(|e| format!("cannot write the sidecar {}: {e}", dir.join(&json).display()))?;
    }
    store.finish(rec.id, JobState::Completed, Some(&path), None, None).map_err(|e| e.to_string())?;
    Ok(path)
}
