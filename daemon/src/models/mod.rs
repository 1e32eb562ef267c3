//! Model management in the daemon: listing, pulls (downloads on their own runtime thread, one download per
//! file however many pulls ask for it), removal, verification, the models-directory setting, reuse of a
//! Hugging Face cache and the submit-time check that a job's files are installed.
mod download;
mod hf;
mod seal;

pub use download::set_test_write_quota;
pub use hf::HfConfig;

use crate::Shared;
use ltx_protocol::catalogue::{self, DirFile, ModelFile};
use ltx_protocol::fsutil;
use ltx_protocol::models::*;
use ltx_protocol::{
    DaemonError, Event, EventKind, GenerationRequest, MissingModels, ModelVariant, Pipeline, Reply, Request,
};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Files downloaded at the same time (the rest wait their turn).
const PARALLEL_DOWNLOADS: usize = 2;
/// Name lookup and connection to the Hub or a file host. A host that cannot be reached in this fails the pull
/// (and the files queued behind it) before its first byte: no route is not a stall, it is not retried.
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

/// Why a download ends before it finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `models rm`: the partial file is deleted.
    Removed,
    /// `models cancel`: the partial file is kept for a resume.
    Cancelled,
    /// Another download could not reach the Hub or its file host: this one, still waiting for a slot, fails
    /// with that message instead of trying the same unreachable host.
    Unreachable(String),
}

/// One file being downloaded; every pull of it shares this.
#[derive(Default)]
pub(crate) struct Active {
    pub done: AtomicU64,
    pub total: AtomicU64,
    /// Bytes that came over the network in this daemon's lifetime (resumed bytes are not counted).
    pub received: AtomicU64,
    /// Holds a download slot (else it waits for one: "queued").
    pub started: AtomicBool,
    stop: Mutex<Option<Stop>>,
}

impl Active {
    /// Asks the download to end: the first reason holds, except that a removal always deletes the partial file.
    pub fn stop(&self, why: Stop) {
        let mut s = self.stop.lock().unwrap_or_else(|p| p.into_inner());
        if s.is_none() || why == Stop::Removed {
            *s = Some(why);
        }
    }

    pub fn stopped(&self) -> Option<Stop> {
        self.stop.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn stopping(&self) -> bool {
        self.stop.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Returns once the download is asked to stop (within 100 ms), to race a request, a backoff or the wait for
    /// a slot against.
    pub async fn until_stopped(&self) {
        while !self.stopping() {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

pub struct Models {
    rt: tokio::runtime::Handle,
    client: reqwest::Client,
    active: Mutex<HashMap<&'static str, Arc<Active>>>,
    slots: Arc<tokio::sync::Semaphore>,
    seals: Mutex<()>,
}

impl Models {
    /// Starts the download runtime on its own thread (not the engine's, not the request handlers').
    pub fn start() -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = rt.handle().clone();
        std::thread::Builder::new().name("ltxd-download".into()).spawn(move || {
            rt.block_on(std::future::pending::<()>());
        })?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("ltxd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            rt: handle,
            client,
            active: Mutex::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(PARALLEL_DOWNLOADS)),
            seals: Mutex::default(),
        })
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Arc<Active>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn emit(shared: &Shared, ev: DownloadEvent) {
    shared.emit(Event { job: MODEL_EVENTS, kind: EventKind::Download(ev) });
}

fn models_err(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Models(e.to_string())
}

/// Handles the `Models*` requests.
pub(crate) async fn request(shared: &Arc<Shared>, req: Request) -> Result<Reply, DaemonError> {
    match req {
        Request::ModelsList => {
            let sh = shared.clone();
            blocking(move || Ok(Reply::Models(Box::new(list(&sh))))).await
        }
        Request::ModelsPull { variant, pipeline } => {
            let sh = shared.clone();
            blocking(move || pull(&sh, variant, pipeline.unwrap_or(variant.default_pipeline()))).await
        }
        Request::ModelsPullPreview { generation } => {
            let sh = shared.clone();
            blocking(move || pull_preview(&sh, generation)).await
        }
        Request::ModelsRemove { variant } => {
            let sh = shared.clone();
            blocking(move || remove(&sh, variant)).await
        }
        Request::ModelsVerify { variant } => verify(shared, variant).await,
        Request::ModelsDir { path } => {
            let sh = shared.clone();
            blocking(move || set_dir(&sh, path)).await
        }
        Request::ModelsCancel => Ok(Reply::ModelsCancelled { files: cancel(shared) }),
        other => Err(DaemonError::Internal(format!("not a models request: {other:?}"))),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DaemonError> + Send + 'static,
) -> Result<T, DaemonError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| DaemonError::Internal(e.to_string()))?
}

// Test hook for the free-space warning: only the test daemon sets it (a disk this full cannot be made in CI).
static TEST_DISK_FREE: AtomicU64 = AtomicU64::new(u64::MAX);

/// Makes every free-space reading this (test daemons only).
pub fn set_test_disk_free(bytes: u64) {
    TEST_DISK_FREE.store(bytes, Ordering::SeqCst);
}

/// Free bytes for an unprivileged user on the file system holding `path` (or its nearest existing parent).
pub(crate) fn disk_free(path: &std::path::Path) -> Option<u64> {
    let fake = TEST_DISK_FREE.load(Ordering::SeqCst);
    if fake != u64::MAX {
        return Some(fake);
    }
    ltx_protocol::models::disk_free(path)
}

fn part_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// What the directory holds: every file it uses ([`catalogue::files_in`]: its own Gemma split where it has one).
fn list(shared: &Shared) -> ModelsInfo {
    let dir = &shared.engine.models_dir();
    let hf = &shared.cfg.hf;
    let active = shared.models.active().clone();
    // An unreadable directory lists the catalogue's files (each then reads as missing or partial).
    let files = catalogue::files_in(dir).unwrap_or_else(|_| catalogue::FILES.iter().map(DirFile::Catalogue).collect());
    let files = files
        .into_iter()
        .map(|file| {
            let path = dir.join(file.local());
            let on_disk = || std::fs::metadata(&path).map_or(0, |m| m.len());
            let (state, size, repo) = match &file {
                DirFile::Own(_) if path.is_file() => (FileState::Installed { bytes: on_disk() }, on_disk(), ""),
                DirFile::Own(_) => (FileState::Missing, 0, ""),
                DirFile::Catalogue(f) => {
                    let state = if let Some(a) = active.get(f.local) {
                        if a.started.load(Ordering::SeqCst) {
                            let (done, total) = (a.done.load(Ordering::Relaxed), a.total.load(Ordering::Relaxed));
                            FileState::Downloading { done, total }
                        } else {
                            FileState::Queued
                        }
                    } else if catalogue::is_present(dir, f) {
                        FileState::Installed { bytes: on_disk() }
                    } else if let Ok(m) = std::fs::metadata(part_path(&path)) {
                        FileState::Partial { bytes: m.len() }
                    } else if let Some(p) = hf::cached(&hf.cache, f) {
                        FileState::InHfCache { bytes: std::fs::metadata(&p).map_or(0, |m| m.len()), path: p }
                    } else {
                        FileState::Missing
                    };
                    (state, f.size, f.repo)
                }
            };
            let verified =
                matches!(state, FileState::Installed { .. }) && seal::is_sealed(&shared.cfg.state_dir, &path);
            ModelFileInfo {
                name: file.local().into(),
                repo: repo.into(),
                component: file.component().name(),
                size,
                state,
                verified,
                own_split: matches!(file, DirFile::Own(_)),
            }
        })
        .collect();
    ModelsInfo {
        dir: dir.clone(),
        disk_free: disk_free(dir),
        hf_cache: hf.cache.is_dir().then(|| hf.cache.clone()),
        files,
    }
}

/// Links `f` from the Hugging Face cache into the models directory, if the cache has it.
fn link_from_cache(shared: &Shared, f: &ModelFile) -> Option<PathBuf> {
    let src = hf::cached(&shared.cfg.hf.cache, f)?;
    let src = std::fs::canonicalize(&src).ok()?;
    let target = shared.engine.models_dir().join(f.local);
    std::fs::create_dir_all(target.parent()?).ok()?;
    // A dangling link (the cache was cleaned) is replaced.
    if std::fs::symlink_metadata(&target).is_ok() && !target.exists() {
        let _ = std::fs::remove_file(&target);
    }
    match std::os::unix::fs::symlink(&src, &target) {
        Ok(()) => {
            tracing::info!(file = f.local, from = %src.display(), "linked from the Hugging Face cache");
            Some(src)
        }
        Err(e) => {
            tracing::warn!(file = f.local, "cannot link {} from the Hugging Face cache: {e}", src.display());
            None
        }
    }
}

fn pull(shared: &Arc<Shared>, variant: ModelVariant, pipeline: Pipeline) -> Result<Reply, DaemonError> {
    if shared.is_shutting_down() {
        return Err(DaemonError::ShuttingDown);
    }
    let dir = &shared.engine.models_dir();
    std::fs::create_dir_all(dir).map_err(|e| models_err(format!("cannot create {}: {e}", dir.display())))?;
    let unreadable = |e: std::io::Error| DaemonError::ModelsUnreadable { dir: dir.clone(), reason: e.to_string() };
    let files = catalogue::needs_in(dir, variant, pipeline).map_err(unreadable)?;
    // The directory's own Gemma split cannot be completed from the Hub.
    let lost: Vec<&str> = files
        .iter()
        .filter(|f| matches!(f, DirFile::Own(_)) && !dir.join(f.local()).is_file())
        .map(DirFile::local)
        .collect();
    if !lost.is_empty() {
        return Err(models_err(format!(
            "{} missing from {}: its {} names its own shard split, which is not on the Hub — put the files back, or delete that index to download the Hub's shards",
            lost.join(", "),
            dir.display(),
            catalogue::GEMMA_INDEX
        )));
    }
    let out = files
        .into_iter()
        .map(|file| match file {
            DirFile::Catalogue(f) => pull_file(shared, dir, f),
            own => PullFile { name: own.local().into(), action: PullAction::AlreadyInstalled },
        })
        .collect();
    Ok(Reply::Pulling(out))
}

/// `models pull --preview`: the generation's preview decoder, from its GitHub repository (the download creates
/// its directory).
fn pull_preview(shared: &Arc<Shared>, generation: ltx_protocol::Generation) -> Result<Reply, DaemonError> {
    if shared.is_shutting_down() {
        return Err(DaemonError::ShuttingDown);
    }
    let f = catalogue::preview_decoder(generation)
        .ok_or_else(|| models_err(format!("{} has no preview decoder", generation.id())))?;
    Ok(Reply::Pulling(vec![pull_file(shared, &shared.engine.models_dir(), f)]))
}

/// Joins the running download of `f`, finds it installed, links it from the Hugging Face cache or starts it.
fn pull_file(shared: &Arc<Shared>, dir: &Path, f: &'static ModelFile) -> PullFile {
    let action = {
        let mut active = shared.models.active();
        if active.contains_key(f.local) {
            PullAction::Joined
        } else if catalogue::is_present(dir, f) {
            PullAction::AlreadyInstalled
        } else if let Some(src) = (f.source == catalogue::Source::Hub).then(|| link_from_cache(shared, f)).flatten() {
            PullAction::Linked(src)
        } else {
            let a = Arc::new(Active::default());
            active.insert(f.local, a.clone());
            start(shared.clone(), f, a);
            PullAction::Started
        }
    };
    PullFile { name: f.local.into(), action }
}

fn start(shared: Arc<Shared>, f: &'static ModelFile, act: Arc<Active>) {
    let models = &shared.models;
    let (rt, slots, client) = (models.rt.clone(), models.slots.clone(), models.client.clone());
    rt.spawn(async move {
        // One stopped while it waits for a slot ends without taking one.
        let permit = tokio::select! {
            p = slots.acquire_owned() => Some(p),
            () = act.until_stopped() => None,
        };
        act.started.store(permit.is_some(), Ordering::SeqCst);
        let ctx = download::Ctx { client, hf: shared.cfg.hf.clone(), dir: shared.engine.models_dir() };
        let sh = shared.clone();
        let res = match download::stopped(&act, &part_path(&ctx.dir.join(f.local))) {
            Some(m) => Err(m.into()),
            None => download::fetch(&ctx, f, &act, &move |ev| emit(&sh, ev)).await,
        };
        shared.models.active().remove(f.local);
        match res {
            Ok(done) => {
                let path = ctx.dir.join(f.local);
                seal::seal(&shared.models.seals, &shared.cfg.state_dir, &path, &done.sha256);
                tracing::info!(file = f.local, bytes = done.bytes, "downloaded and verified");
                emit(&shared, DownloadEvent::Done { file: f.local.into(), bytes: done.bytes, sha256: done.sha256 });
            }
            Err(failed) => {
                if failed.unreachable {
                    // The files waiting for a slot would try the same host: they fail now, with the same words.
                    for a in shared.models.active().values().filter(|a| !a.started.load(Ordering::SeqCst)) {
                        a.stop(Stop::Unreachable(failed.message.clone()));
                    }
                }
                tracing::warn!(file = f.local, "download failed: {}", failed.message);
                emit(&shared, DownloadEvent::Failed { file: f.local.into(), message: failed.message });
            }
        }
        // The slot is given back only now: a file queued behind an unreachable host is stopped before it starts.
        drop(permit);
    });
}

/// `models cancel`: stops every running or queued download, keeping its partial file; the files stopped.
fn cancel(shared: &Shared) -> Vec<String> {
    let active = shared.models.active();
    let mut files: Vec<String> = active
        .iter()
        .map(|(name, a)| {
            a.stop(Stop::Cancelled);
            name.to_string()
        })
        .collect();
    files.sort();
    tracing::info!(files = files.len(), "downloads cancelled");
    files
}

/// Whether every file `variant`'s default pipeline needs is present.
fn installed(dir: &Path, variant: ModelVariant) -> bool {
    catalogue::missing(dir, variant, variant.default_pipeline()).is_ok_and(|m| m.is_empty())
}

fn remove(shared: &Shared, variant: ModelVariant) -> Result<Reply, DaemonError> {
    let dir = &shared.engine.models_dir();
    let unreadable = |e: std::io::Error| DaemonError::ModelsUnreadable { dir: dir.clone(), reason: e.to_string() };
    let needs = |v: ModelVariant| catalogue::needs_in(dir, v, v.default_pipeline()).map_err(unreadable);
    let mut keep: HashSet<String> = HashSet::new();
    for v in ModelVariant::ALL.into_iter().filter(|&v| v != variant && installed(dir, v)) {
        keep.extend(needs(v)?.iter().map(|f| f.local().to_string()));
    }
    let (mut files, mut bytes) = (Vec::new(), 0);
    let mut remove = needs(variant)?;
    // The generation's preview decoder goes with its last installed variant.
    let generation = variant.rules().generation;
    let others =
        ModelVariant::ALL.into_iter().any(|v| v != variant && v.rules().generation == generation && installed(dir, v));
    if let (Some(preview), false) = (catalogue::preview_decoder(generation), others) {
        remove.push(DirFile::Catalogue(preview));
    }
    for f in remove {
        let f = f.local();
        if keep.contains(f) {
            continue;
        }
        if let Some(a) = shared.models.active().get(f) {
            a.stop(Stop::Removed);
        }
        let target = dir.join(f);
        for p in [target.clone(), part_path(&target)] {
            // symlink_metadata: a link into a Hugging Face cache is removed, its target is left alone.
            let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
            std::fs::remove_file(&p).map_err(|e| models_err(format!("cannot remove {}: {e}", p.display())))?;
            if meta.is_file() {
                bytes += meta.len();
            }
            files.push(p.strip_prefix(dir).unwrap_or(&p).display().to_string());
        }
        seal::unseal(&shared.models.seals, &shared.cfg.state_dir, &target);
    }
    // The Gemma and preview directories go when they are empty (remove_dir refuses otherwise).
    let _ = std::fs::remove_dir(dir.join(catalogue::GEMMA_DIR));
    if let Some(parent) = catalogue::preview_decoder(generation).and_then(|f| Path::new(f.local).parent()) {
        let _ = std::fs::remove_dir(dir.join(parent));
    }
    tracing::info!(variant = variant.name(), removed = files.len(), bytes, "removed model files");
    Ok(Reply::Removed { files, bytes })
}

async fn verify(shared: &Arc<Shared>, variant: Option<ModelVariant>) -> Result<Reply, DaemonError> {
    let dir = shared.engine.models_dir();
    let unreadable = |e: std::io::Error| DaemonError::ModelsUnreadable { dir: dir.clone(), reason: e.to_string() };
    let files = match variant {
        Some(v) => catalogue::needs_in(&dir, v, v.default_pipeline()).map_err(unreadable)?,
        None => catalogue::files_in(&dir)
            .map_err(unreadable)?
            .into_iter()
            .filter(|f| dir.join(f.local()).is_file())
            .collect(),
    };
    let ctx = download::Ctx { client: shared.models.client.clone(), hf: shared.cfg.hf.clone(), dir: dir.clone() };
    let mut results = Vec::new();
    for file in files {
        let path = dir.join(file.local());
        let f = match file {
            DirFile::Catalogue(f) if path.is_file() => f,
            file => {
                let outcome = match file {
                    DirFile::Own(_) if path.is_file() => VerifyOutcome::OwnSplit,
                    _ => VerifyOutcome::Missing,
                };
                results.push(VerifyResult { name: file.local().into(), sha256: None, outcome });
                continue;
            }
        };
        let expected = match expected_hash(shared, &ctx, f, &path).await {
            Ok(e) => e,
            Err(reason) => {
                results.push(VerifyResult {
                    name: f.local.into(),
                    sha256: None,
                    outcome: VerifyOutcome::Unverifiable(reason),
                });
                continue;
            }
        };
        let p = path.clone();
        let git = matches!(expected, download::Expected::GitSha1(_));
        let hashed = tokio::task::spawn_blocking(move || download::hash_file(&p, git))
            .await
            .map_err(|e| DaemonError::Internal(e.to_string()))?
            .map_err(|e| models_err(format!("cannot read {}: {e}", path.display())))?;
        let (want, got) = match &expected {
            download::Expected::Sha256(s) => (s.clone(), hashed.sha256.clone()),
            download::Expected::GitSha1(s) => (s.clone(), hashed.git_sha1.clone().unwrap_or_default()),
        };
        let outcome = if want == got {
            seal::seal(&shared.models.seals, &shared.cfg.state_dir, &path, &hashed.sha256);
            VerifyOutcome::Ok
        } else {
            seal::unseal(&shared.models.seals, &shared.cfg.state_dir, &path);
            tracing::warn!(file = f.local, "checksum mismatch: expected {want}, got {got}");
            VerifyOutcome::Mismatch { expected: want, actual: got }
        };
        results.push(VerifyResult { name: f.local.into(), sha256: Some(hashed.sha256), outcome });
    }
    Ok(Reply::Verified(results))
}

/// The checksum to verify an installed file against: the catalogue's pin, the Hugging Face cache blob it links
/// to (blobs are named by their sha256), the sha256 recorded when it was downloaded and verified, or the Hub.
async fn expected_hash(
    shared: &Shared,
    ctx: &download::Ctx,
    f: &ModelFile,
    path: &Path,
) -> Result<download::Expected, String> {
    if let Some(s) = f.sha256 {
        return Ok(download::Expected::Sha256(s.into()));
    }
    if let catalogue::Source::GitHub { git_blob } = f.source {
        return Ok(download::Expected::GitSha1(git_blob.to_ascii_lowercase()));
    }
    if let Ok(target) = std::fs::read_link(path) {
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if download::is_hex(name, 64) {
            return Ok(download::Expected::Sha256(name.into()));
        }
    }
    if let Some(s) = seal::recorded(&shared.cfg.state_dir, path) {
        return Ok(download::Expected::Sha256(s));
    }
    download::published(ctx, f).await.map(|m| m.expected).map_err(|e| {
        format!("no recorded checksum and the Hub's could not be fetched ({e}); connect and run `ltxctl models verify` again")
    })
}

fn set_dir(shared: &Shared, path: Option<PathBuf>) -> Result<Reply, DaemonError> {
    let current = shared.engine.models_dir();
    let Some(path) = path else {
        let configured = configured_dir(&shared.cfg.config_path).unwrap_or_else(|| current.clone());
        let restart_needed = configured != current;
        return Ok(Reply::ModelsDir { path: current, configured, restart_needed });
    };
    if !path.is_absolute() {
        return Err(models_err(format!("the models directory must be an absolute path; got {}", path.display())));
    }
    if std::env::var_os("LTX_MODELS_DIR").is_some() {
        return Err(models_err(
            "LTX_MODELS_DIR is set in the daemon's environment and overrides the config file; change or unset it there",
        ));
    }
    let downloading: Vec<&str> = shared.models.active().keys().copied().collect();
    if !downloading.is_empty() {
        return Err(models_err(format!(
            "downloads into {} are running ({}); switch once they have finished",
            current.display(),
            downloading.join(", ")
        )));
    }
    let dir = fsutil::Dir::create(&path).map_err(|e| models_err(format!("cannot create {}: {e}", path.display())))?;
    // A fresh temporary name (removed when dropped): nothing at a predictable name is opened.
    drop(dir.temp(".ltx-write-probe.").map_err(|e| models_err(format!("{} is not writable: {e}", path.display())))?);
    write_config_key(&shared.cfg.config_path, "models_dir", &path.display().to_string())?;
    // Every job handed to the engine after this runs from the new directory (the running one finishes from the old).
    shared.engine.set_models_dir(&path)?;
    tracing::info!(dir = %path.display(), was = %current.display(), "models directory switched and saved in the config file");
    Ok(Reply::ModelsDir { path: path.clone(), configured: path, restart_needed: false })
}

fn configured_dir(config: &Path) -> Option<PathBuf> {
    let doc: toml_edit::DocumentMut = fsutil::read_trusted(config).ok()??.parse().ok()?;
    doc.get("models_dir")?.as_str().map(PathBuf::from)
}

/// Sets one string key in the TOML config file, keeping its comments and layout; an atomic rewrite of the
/// file (of a link's target where the config is a link) that keeps its mode and owner (a new file is 0600).
/// A config other users can write is refused.
fn write_config_key(config: &Path, key: &str, value: &str) -> Result<(), DaemonError> {
    let text = fsutil::read_trusted(config).map_err(|e| models_err(e.to_string()))?.unwrap_or_default();
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| models_err(format!("{}: {e}", config.display())))?;
    doc[key] = toml_edit::value(value);
    if let Some(parent) = config.parent() {
        std::fs::create_dir_all(parent).map_err(|e| models_err(format!("cannot create {}: {e}", parent.display())))?;
    }
    fsutil::rewrite(config, doc.to_string().as_bytes())
        .map_err(|e| models_err(format!("cannot write {}: {e}", config.display())))
}

/// At start-up: the temporary files a crash left from rewriting the config file or the verified-models
/// record (names only this module gives, files of this user). Returns what was removed.
pub fn remove_orphans(config_path: &Path, state_dir: &Path) -> Vec<PathBuf> {
    let config = std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let mut out = Vec::new();
    for path in [config, seal::file(state_dir)] {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { continue };
        let Ok(dir) = fsutil::Dir::open(dir) else { continue };
        let removed = dir.remove_orphans(&format!(".{}.", name.to_string_lossy()));
        out.extend(removed.iter().map(|n| dir.join(n)));
    }
    out
}

/// Submit-time check: every file the job's pipeline needs is installed (linking from a Hugging Face cache
/// where it has them), else the exact pull command.
pub(crate) fn check_job(shared: &Shared, req: &GenerationRequest) -> Result<(), DaemonError> {
    let dir = &shared.engine.models_dir();
    let unreadable = |e: std::io::Error| DaemonError::ModelsUnreadable { dir: dir.clone(), reason: e.to_string() };
    let missing: Vec<_> = catalogue::missing(dir, req.variant, req.pipeline)
        .map_err(unreadable)?
        .into_iter()
        .filter(|f| link_from_cache(shared, f).is_none())
        .collect();
    MissingModels::from_files(dir, req.variant, req.pipeline, missing).map_or(Ok(()), |m| Err(m.into()))
}
