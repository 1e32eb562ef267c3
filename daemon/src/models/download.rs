//! One file from the Hub into the models directory: resolve (`HEAD …/resolve/…`, no redirects, for the Hub's
//! `x-linked-etag` sha256 / `x-linked-size` and the file host's location), then a ranged GET that appends to
//! `<file>.part` (kept across interruptions and daemon restarts), retries with backoff on stalls, network
//! errors, 429 and 5xx, hashes while writing, and renames into place only when the checksum matches. A file of
//! a GitHub repository (`Source::GitHub`) resolves with a `HEAD` of its raw URL at the pinned commit and is
//! checked against the catalogue's git blob id; the rest is the same.
use super::hf::HfConfig;
use super::{disk_free, part_path, Active, Stop, CONNECT_TIMEOUT};
use ltx_protocol::catalogue::{ModelFile, Source};
use ltx_protocol::fsutil::Dir;
use ltx_protocol::models::{human_bytes, DownloadEvent};
use reqwest::{header, StatusCode, Url};
use sha1::Digest as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Consecutive failed attempts (without a byte of progress) before a download gives up.
const MAX_ATTEMPTS: u32 = 8;
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

pub struct Ctx {
    pub client: reqwest::Client,
    pub hf: HfConfig,
    pub dir: PathBuf,
}

/// The checksum the Hub publishes: sha256 for LFS files, the git blob id for small files kept in git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Sha256(String),
    GitSha1(String),
}

pub struct Published {
    pub expected: Expected,
    pub size: u64,
    /// Where the bytes are (the file host for LFS files).
    pub location: Url,
}

pub struct Done {
    pub bytes: u64,
    pub sha256: String,
}

enum Fail {
    /// Transient: try again after a backoff.
    Retry(String),
    /// The host cannot be resolved or connected to: fatal before the download's first byte (no route to the
    /// Hub is not a stall), retried like a stall once bytes have come.
    Unreachable(String),
    Fatal(String),
}

// Test hook for the disk-full path: only the test daemon sets it (there is no way to fill a real disk in CI).
static WRITE_QUOTA: AtomicU64 = AtomicU64::new(u64::MAX);
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Makes downloads fail with ENOSPC once this process has written `bytes` (test daemons only).
pub fn set_test_write_quota(bytes: u64) {
    WRITE_QUOTA.store(bytes, Ordering::SeqCst);
}

fn write_counted(file: &mut std::fs::File, buf: &[u8]) -> std::io::Result<()> {
    let before = WRITTEN.fetch_add(buf.len() as u64, Ordering::SeqCst);
    let quota = WRITE_QUOTA.load(Ordering::SeqCst);
    if before.saturating_add(buf.len() as u64) > quota {
        let room = quota.saturating_sub(before) as usize;
        file.write_all(&buf[..room.min(buf.len())])?;
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    file.write_all(buf)
}

pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn header_str<'a>(h: &'a header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)?.to_str().ok()
}

/// `"abc"` / `W/"abc"` → `abc`, lowercased.
fn etag_value(s: &str) -> String {
    s.trim().trim_start_matches("W/").trim_matches('"').to_ascii_lowercase()
}

fn auth(ctx: &Ctx, req: reqwest::RequestBuilder, url: &Url) -> reqwest::RequestBuilder {
    // The token goes to the Hub only, never to a file host on another origin.
    let same_origin = Url::parse(&ctx.hf.endpoint).is_ok_and(|e| e.origin() == url.origin());
    match (&ctx.hf.token, same_origin) {
        (Some(t), true) => req.bearer_auth(t),
        _ => req,
    }
}

fn http_fail(ctx: &Ctx, f: &ModelFile, status: StatusCode, url: &Url) -> Fail {
    let page = format!("https://huggingface.co/{}", f.repo);
    match status.as_u16() {
        401 | 403 if ctx.hf.token.is_none() => Fail::Fatal(format!(
            "{} is gated (HTTP {status}): accept its licence at {page}, then set HF_TOKEN (or hf_token in the config file, or run `huggingface-cli login`) and restart ltxd",
            f.repo
        )),
        401 | 403 => Fail::Fatal(format!(
            "the Hub refused the token for {} (HTTP {status}): check that it has read access and that its account accepted the licence at {page}",
            f.repo
        )),
        404 if f.source != Source::Hub => {
            Fail::Fatal(format!("{} is not in {} at {} (HTTP 404 at {url})", f.remote, f.repo, f.revision))
        }
        404 => Fail::Fatal(format!("{} is not on the Hub (HTTP 404 at {url})", f.remote)),
        429 => Fail::Retry(format!("rate limited by the Hub (HTTP {status})")),
        s if s >= 500 => Fail::Retry(format!("server error (HTTP {status}) from {}", url.host_str().unwrap_or("?"))),
        _ => Fail::Fatal(format!("unexpected HTTP {status} for {url}")),
    }
}

fn net_fail(ctx: &Ctx, what: &str, e: reqwest::Error) -> Fail {
    use std::error::Error;
    let mut msg = format!("{what}: {e}");
    let mut src = e.source();
    let mut root = None;
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        root = Some(s);
        src = s.source();
    }
    if !e.is_connect() {
        return Fail::Retry(msg);
    }
    // Name lookup or connection failed: the same words for every file of that host, so they read as one cause.
    let host = e.url().and_then(|u| u.host_str()).unwrap_or("?");
    let hub = Url::parse(&ctx.hf.endpoint).ok();
    let endpoint = if hub.as_ref().and_then(|u| u.host_str()) == Some(host) {
        format!("the Hub at {}", ctx.hf.endpoint)
    } else {
        format!("the file host {host} (the Hub is {})", ctx.hf.endpoint)
    };
    let cause = match root {
        _ if e.is_timeout() => format!("no answer within {CONNECT_TIMEOUT:?}"),
        Some(r) => r.to_string(),
        None => e.to_string(),
    };
    Fail::Unreachable(format!(
        "cannot reach {endpoint} ({cause}); check the network connection, or set HF_ENDPOINT (hf_endpoint in the config file) to a reachable mirror and restart ltxd"
    ))
}

/// What the Hub publishes for `f`: checksum, size and where the bytes are.
pub async fn published(ctx: &Ctx, f: &ModelFile) -> Result<Published, String> {
    resolve(ctx, f).await.map_err(|e| match e {
        Fail::Retry(m) | Fail::Unreachable(m) | Fail::Fatal(m) => m,
    })
}

async fn resolve(ctx: &Ctx, f: &ModelFile) -> Result<Published, Fail> {
    if let Source::GitHub { git_blob } = f.source {
        return resolve_github(ctx, f, git_blob).await;
    }
    let base = format!("{}/{}/resolve/{}/{}", ctx.hf.endpoint.trim_end_matches('/'), f.repo, f.revision, f.remote);
    let mut url = Url::parse(&base).map_err(|e| Fail::Fatal(format!("bad Hugging Face endpoint {base}: {e}")))?;
    for _ in 0..5 {
        let req = auth(ctx, ctx.client.head(url.clone()).header(header::ACCEPT_ENCODING, "identity"), &url);
        let resp = match tokio::time::timeout(ctx.hf.stall, req.send()).await {
            Err(_) => return Err(Fail::Retry(format!("no answer from {} within {:?}", url, ctx.hf.stall))),
            Ok(Err(e)) => return Err(net_fail(ctx, "cannot reach the Hub", e)),
            Ok(Ok(r)) => r,
        };
        let (status, h) = (resp.status(), resp.headers());
        let location = header_str(h, "location").and_then(|l| url.join(l).ok());
        let linked = header_str(h, "x-linked-etag").map(etag_value);
        if status.is_redirection() && linked.is_none() {
            // A moved repository or revision: follow on the Hub itself.
            url = location.ok_or_else(|| Fail::Fatal(format!("HTTP {status} without a location from {url}")))?;
            continue;
        }
        if !status.is_success() && !status.is_redirection() {
            return Err(http_fail(ctx, f, status, &url));
        }
        let size = header_str(h, "x-linked-size")
            .or_else(|| header_str(h, "content-length"))
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| Fail::Fatal(format!("the Hub sent no size for {}", f.remote)))?;
        let expected = match linked {
            Some(sha) if is_hex(&sha, 64) => Expected::Sha256(sha),
            Some(other) => {
                return Err(Fail::Fatal(format!(
                    "the Hub's checksum for {} is not a sha256 ({other:?}); refusing a file that cannot be verified",
                    f.remote
                )))
            }
            None if f.lfs => {
                return Err(Fail::Fatal(format!(
                    "the Hub published no sha256 (x-linked-etag) for {}/{}; refusing a file that cannot be verified",
                    f.repo, f.remote
                )))
            }
            None => match header_str(h, "etag").map(etag_value) {
                Some(id) if is_hex(&id, 40) => Expected::GitSha1(id),
                _ => {
                    return Err(Fail::Fatal(format!(
                        "the Hub published no checksum (etag) for {}/{}; refusing a file that cannot be verified",
                        f.repo, f.remote
                    )))
                }
            },
        };
        if let (Some(pin), Expected::Sha256(sha)) = (f.sha256, &expected) {
            if pin != sha {
                return Err(Fail::Fatal(format!(
                    "the Hub's {} has sha256 {sha}, the catalogue pins {pin}: refusing a replaced file",
                    f.remote
                )));
            }
        }
        let location = if status.is_redirection() {
            location.ok_or_else(|| Fail::Fatal(format!("HTTP {status} without a location from {url}")))?
        } else {
            url
        };
        return Ok(Published { expected, size, location });
    }
    Err(Fail::Fatal(format!("too many redirects resolving {base}")))
}

/// A GitHub file: its size from a `HEAD` of the raw URL at the pinned commit, its checksum the catalogue's.
async fn resolve_github(ctx: &Ctx, f: &ModelFile, git_blob: &str) -> Result<Published, Fail> {
    let base = format!("{}/{}/{}/{}", ctx.hf.github.trim_end_matches('/'), f.repo, f.revision, f.remote);
    let url = Url::parse(&base).map_err(|e| Fail::Fatal(format!("bad GitHub endpoint {base}: {e}")))?;
    let req = ctx.client.head(url.clone()).header(header::ACCEPT_ENCODING, "identity");
    let resp = match tokio::time::timeout(ctx.hf.stall, req.send()).await {
        Err(_) => return Err(Fail::Retry(format!("no answer from {} within {:?}", url, ctx.hf.stall))),
        Ok(Err(e)) => return Err(net_fail(ctx, "cannot reach GitHub", e)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    if !status.is_success() {
        return Err(http_fail(ctx, f, status, &url));
    }
    let size = header_str(resp.headers(), "content-length")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| Fail::Fatal(format!("{} sent no size for {}", url.host_str().unwrap_or("GitHub"), f.remote)))?;
    Ok(Published { expected: Expected::GitSha1(git_blob.to_ascii_lowercase()), size, location: url })
}

/// Both hashes a file may be checked by, computed in one pass.
pub struct Hasher {
    sha256: sha2::Sha256,
    git: Option<sha1::Sha1>,
}

impl Hasher {
    fn new(git_size: Option<u64>) -> Self {
        let git = git_size.map(|n| {
            let mut h = sha1::Sha1::new();
            h.update(format!("blob {n}\0").as_bytes());
            h
        });
        Self { sha256: sha2::Sha256::new(), git }
    }
    fn update(&mut self, b: &[u8]) {
        self.sha256.update(b);
        if let Some(g) = &mut self.git {
            g.update(b);
        }
    }
    fn finish(self) -> Hashes {
        Hashes {
            sha256: format!("{:x}", self.sha256.finalize()),
            git_sha1: self.git.map(|g| format!("{:x}", g.finalize())),
        }
    }
}

pub struct Hashes {
    pub sha256: String,
    pub git_sha1: Option<String>,
}

/// Hashes the first `len` bytes of `path` into `h`.
fn hash_prefix(path: &Path, len: u64, h: &mut Hasher) -> std::io::Result<()> {
    let mut r = std::fs::File::open(path)?.take(len);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

/// sha256 of a whole file (and its git blob id when `git`).
pub fn hash_file(path: &Path, git: bool) -> std::io::Result<Hashes> {
    let len = std::fs::metadata(path)?.len();
    let mut h = Hasher::new(git.then_some(len));
    hash_prefix(path, len, &mut h)?;
    Ok(h.finish())
}

fn backoff(attempt: u32) -> Duration {
    (Duration::from_millis(500) * 2u32.saturating_pow(attempt.saturating_sub(1).min(10))).min(MAX_BACKOFF)
}

/// Why a download ended without its file.
pub struct Failed {
    pub message: String,
    /// The Hub or its file host could not be reached before the download's first byte (it was not retried).
    pub unreachable: bool,
}

impl From<String> for Failed {
    fn from(message: String) -> Self {
        Self { message, unreachable: false }
    }
}

/// Downloads `f` (resuming its `.part`), verified; retries transient failures.
pub async fn fetch(
    ctx: &Ctx,
    f: &ModelFile,
    act: &Active,
    emit: &(dyn Fn(DownloadEvent) + Sync),
) -> Result<Done, Failed> {
    let target = ctx.dir.join(f.local);
    let part = part_path(&target);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut attempt = 0;
    loop {
        let before = act.received.load(Ordering::Relaxed);
        // A stop ends a request in flight too (a connection attempt, a stalled read).
        let res = tokio::select! {
            r = try_once(ctx, f, &target, &part, act, emit) => r,
            () = act.until_stopped() => Err(Fail::Fatal("stopped".into())),
        };
        if let Some(m) = stopped(act, &part) {
            return Err(m.into());
        }
        match res {
            Ok(done) => return Ok(done),
            Err(Fail::Fatal(m)) => return Err(m.into()),
            // No byte yet: no route to the host, not a stall.
            Err(Fail::Unreachable(message)) if act.received.load(Ordering::Relaxed) == 0 => {
                return Err(Failed { message, unreachable: true })
            }
            Err(Fail::Retry(reason) | Fail::Unreachable(reason)) => {
                // Progress since the last failure restarts the count: a slow, flaky line still finishes.
                if act.received.load(Ordering::Relaxed) > before {
                    attempt = 0;
                }
                attempt += 1;
                if attempt >= MAX_ATTEMPTS {
                    return Err(format!(
                        "{reason} (gave up after {MAX_ATTEMPTS} attempts; `ltxctl models pull` resumes from {})",
                        human_bytes(act.done.load(Ordering::Relaxed))
                    )
                    .into());
                }
                let delay = backoff(attempt);
                tracing::info!(file = f.local, attempt, ?delay, "retrying: {reason}");
                emit(DownloadEvent::Retrying {
                    file: f.local.into(),
                    attempt,
                    delay_ms: delay.as_millis() as u64,
                    reason,
                });
                // The backoff ends early for `models cancel` or `models rm`.
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = act.until_stopped() => {}
                }
            }
        }
    }
}

/// The message of a download asked to stop ([`Stop`]); a removed one's partial file is deleted.
pub fn stopped(act: &Active, part: &Path) -> Option<String> {
    Some(match act.stopped()? {
        Stop::Removed => {
            let _ = std::fs::remove_file(part);
            "cancelled: the model files were removed".into()
        }
        Stop::Cancelled => format!(
            "cancelled by `ltxctl models cancel` at {} (the partial file is kept: `ltxctl models pull` resumes it)",
            human_bytes(act.done.load(Ordering::Relaxed))
        ),
        Stop::Unreachable(m) => m,
    })
}

fn disk_full(dir: &Path, file: &str, need: u64) -> Fail {
    let free = disk_free(dir).map_or("unknown".into(), human_bytes);
    Fail::Fatal(format!(
        "disk full: {file} needs {} more in {} ({free} free); free some space or choose another models directory (`ltxctl models dir PATH`), then pull again — the partial download is kept",
        human_bytes(need),
        dir.display()
    ))
}

async fn try_once(
    ctx: &Ctx,
    f: &ModelFile,
    target: &Path,
    part: &Path,
    act: &Active,
    emit: &(dyn Fn(DownloadEvent) + Sync),
) -> Result<Done, Fail> {
    let io = |what: &str, p: &Path, e: std::io::Error| Fail::Fatal(format!("{what} {}: {e}", p.display()));
    let meta = resolve(ctx, f).await?;
    let size = meta.size;
    let git_size = matches!(meta.expected, Expected::GitSha1(_)).then_some(size);
    let mut have = std::fs::symlink_metadata(part).map_or(0, |m| m.len());
    if have > size {
        have = 0;
    }
    act.total.store(size, Ordering::Relaxed);
    act.done.store(have, Ordering::Relaxed);
    let dir = part.parent().unwrap_or(&ctx.dir);
    if let Some(free) = disk_free(dir) {
        if free < size - have {
            return Err(disk_full(dir, f.local, size - have));
        }
    }
    // The partial file is opened relative to its directory, never through a link, and must be this user's.
    let (fsdir, part_name) = Dir::of(part).map_err(|e| io("cannot open", part, e))?;
    let mut file = fsdir.open_resumable(&part_name).map_err(|e| io("cannot open", part, e))?;
    file.set_len(have).map_err(|e| io("cannot truncate", part, e))?;
    // Resumed bytes are hashed from disk (off the runtime) before new ones are appended.
    let mut hasher = {
        let p = part.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut h = Hasher::new(git_size);
            hash_prefix(&p, have, &mut h).map(|()| h)
        })
        .await
        .map_err(|e| Fail::Fatal(e.to_string()))?
        .map_err(|e| io("cannot read", part, e))?
    };
    emit(DownloadEvent::Progress { file: f.local.into(), done: have, total: size });
    if have < size {
        let url = meta.location;
        let mut req = auth(ctx, ctx.client.get(url.clone()).header(header::ACCEPT_ENCODING, "identity"), &url);
        if have > 0 {
            req = req.header(header::RANGE, format!("bytes={have}-"));
        }
        let mut resp = match tokio::time::timeout(ctx.hf.stall, req.send()).await {
            Err(_) => return Err(Fail::Retry(format!("no answer from the file host within {:?}", ctx.hf.stall))),
            Ok(Err(e)) => return Err(net_fail(ctx, "download failed", e)),
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        let resumed = status == StatusCode::PARTIAL_CONTENT
            && header_str(resp.headers(), "content-range")
                .is_some_and(|r| r.trim().starts_with(&format!("bytes {have}-")));
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            file.set_len(0).map_err(|e| io("cannot truncate", part, e))?;
            return Err(Fail::Retry("the file host refused the resume range; starting over".into()));
        }
        if !status.is_success() {
            return Err(http_fail(ctx, f, status, &url));
        }
        if !resumed && have > 0 {
            // The host sent the whole file: start over.
            tracing::info!(file = f.local, "the file host ignored the range request; downloading from the start");
            have = 0;
            file.set_len(0).map_err(|e| io("cannot truncate", part, e))?;
            hasher = Hasher::new(git_size);
            act.done.store(0, Ordering::Relaxed);
        }
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(have)).map_err(|e| io("cannot seek", part, e))?;
        let mut last = Instant::now();
        loop {
            if act.stopping() {
                return Err(Fail::Fatal("stopped".into()));
            }
            let chunk = match tokio::time::timeout(ctx.hf.stall, resp.chunk()).await {
                Err(_) => return Err(Fail::Retry(format!("stalled: no data for {:?}", ctx.hf.stall))),
                Ok(Err(e)) => return Err(net_fail(ctx, "connection lost", e)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => c,
            };
            if have + chunk.len() as u64 > size {
                file.set_len(0).map_err(|e| io("cannot truncate", part, e))?;
                return Err(Fail::Retry(format!("the file host sent more than the {size} bytes the Hub announced")));
            }
            if let Err(e) = write_counted(&mut file, &chunk) {
                let _ = file.set_len(have);
                if e.raw_os_error() == Some(libc::ENOSPC) {
                    return Err(disk_full(dir, f.local, size - have));
                }
                return Err(io("cannot write", part, e));
            }
            hasher.update(&chunk);
            have += chunk.len() as u64;
            act.done.store(have, Ordering::Relaxed);
            act.received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                emit(DownloadEvent::Progress { file: f.local.into(), done: have, total: size });
            }
        }
        if have < size {
            return Err(Fail::Retry(format!("the connection closed at {have} of {size} bytes")));
        }
        file.sync_all().map_err(|e| io("cannot sync", part, e))?;
    }
    let hashes = hasher.finish();
    let (want, got) = match &meta.expected {
        Expected::Sha256(s) => (s.as_str(), hashes.sha256.as_str()),
        Expected::GitSha1(s) => (s.as_str(), hashes.git_sha1.as_deref().unwrap_or_default()),
    };
    if want != got {
        let _ = fsdir.remove(&part_name);
        return Err(Fail::Fatal(format!(
            "checksum mismatch for {}: {} {want}, the downloaded bytes hash to {got}; the corrupt download was deleted — run the pull again",
            f.local,
            match f.source {
                Source::Hub => "the Hub publishes",
                Source::GitHub { .. } => "the catalogue pins the git blob id",
            }
        )));
    }
    // Verified: readable by all, renamed over the target's name (a link there is replaced, not followed).
    let target_name = target.file_name().unwrap_or_default();
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .and_then(|()| fsdir.rename(&part_name, target_name))
        .map_err(|e| io("cannot move into place", target, e))?;
    drop(file);
    let _ = fsdir.sync();
    emit(DownloadEvent::Progress { file: f.local.into(), done: size, total: size });
    Ok(Done { bytes: size, sha256: hashes.sha256 })
}

#[cfg(test)]
mod tests;
