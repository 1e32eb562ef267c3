//! Job inputs (first-frame images today) kept by content: `<state dir>/inputs/<sha256>`, 0600 in a 0700
//! directory, written through a `create_new` temp file and renamed into place, so a name planted there is
//! replaced, never followed. A row holds the hash. [`Inputs::prune`] keeps the directory under a size and age
//! cap ([`InputCap`]), oldest first, never touching an input a pending or running job needs.
use ltx_protocol::validate::MAX_IMAGE_BYTES;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How much the inputs of finished jobs may keep (config `inputs_max_bytes`, `inputs_max_age_days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputCap {
    pub max_bytes: u64,
    pub max_age: Duration,
}

impl Default for InputCap {
    fn default() -> Self {
        Self { max_bytes: 2_000_000_000, max_age: Duration::from_secs(30 * 24 * 3600) }
    }
}

/// Why an input cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0:?} is not a sha256")]
    BadHash(String),
    #[error("{} is missing (pruned or deleted)", .0.display())]
    Missing(PathBuf),
    #[error("{} does not match its hash (damaged)", .0.display())]
    Damaged(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// What a prune removed and what is left.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub removed: usize,
    pub freed: u64,
    /// Bytes left, the inputs of pending and running jobs included (they may exceed the cap).
    pub kept: u64,
}

pub(super) struct Inputs {
    dir: PathBuf,
}

pub(super) fn hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn mtime_ms(meta: &std::fs::Metadata) -> u64 {
    meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis() as u64)
}

impl Inputs {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, hash: &str) -> Result<PathBuf, InputError> {
        if !is_hash(hash) {
            return Err(InputError::BadHash(hash.chars().take(80).collect()));
        }
        Ok(self.dir.join(hash))
    }

    /// Stores `bytes` under their hash (a no-op when an intact copy is there) and returns the hash.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let hash = hash(bytes);
        let path = self.dir.join(&hash);
        if self.get(&hash).is_ok() {
            return Ok(hash);
        }
        ltx_protocol::server::private_dir(&self.dir)?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let tmp = self.dir.join(format!(".{hash}.{}.{nanos}.tmp", std::process::id()));
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map(|()| hash)
    }

    /// The bytes stored under `hash`, checked against it.
    pub fn get(&self, hash: &str) -> Result<Vec<u8>, InputError> {
        let path = self.path(hash)?;
        let io = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::NotFound => InputError::Missing(path.clone()),
            _ => InputError::Io { path: path.clone(), source },
        };
        let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(MAX_IMAGE_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() > MAX_IMAGE_BYTES || self::hash(&bytes) != hash {
            return Err(InputError::Damaged(path));
        }
        Ok(bytes)
    }

    /// Removes the inputs not in `keep`, oldest first (`last_use`: the newest job's creation per hash; a file no
    /// job names counts from its mtime): every one older than the cap's age, then more while all inputs
    /// together exceed its size. Also removes temp files a crash left (the caller holds the store, so no
    /// write is in flight).
    pub fn prune(
        &self,
        keep: &HashSet<String>,
        last_use: &HashMap<String, u64>,
        cap: InputCap,
        now_ms: u64,
    ) -> std::io::Result<Pruned> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pruned::default()),
            Err(e) => return Err(e),
        };
        let mut total = 0u64;
        let mut candidates = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.file_type().is_file() {
                continue;
            }
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            if !is_hash(&name) {
                continue;
            }
            total += meta.len();
            if !keep.contains(&name) {
                let used = last_use.get(&name).copied().unwrap_or_else(|| mtime_ms(&meta));
                candidates.push((used, name, meta.len()));
            }
        }
        candidates.sort();
        let max_age_ms = cap.max_age.as_millis() as u64;
        let mut pruned = Pruned::default();
        for (used, name, len) in candidates {
            let old = now_ms.saturating_sub(used) > max_age_ms;
            if !old && total <= cap.max_bytes {
                break;
            }
            match std::fs::remove_file(self.dir.join(&name)) {
                Ok(()) => {
                    total -= len;
                    pruned.removed += 1;
                    pruned.freed += len;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                Err(e) => return Err(e),
            }
        }
        pruned.kept = total;
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn put_get_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = Inputs::new(dir.path().join("inputs"));
        let h = inputs.put(b"png").unwrap();
        assert_eq!(h, hash(b"png"));
        assert_eq!(inputs.put(b"png").unwrap(), h);
        assert_eq!(inputs.get(&h).unwrap(), b"png");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&inputs.dir.join(&h)), 0o600);
        assert_eq!(mode(&inputs.dir), 0o700);
        assert!(matches!(inputs.get("../../etc/passwd"), Err(InputError::BadHash(_))));
        assert!(matches!(inputs.get(&hash(b"other")), Err(InputError::Missing(_))));
        std::fs::write(inputs.dir.join(&h), b"PNG").unwrap();
        assert!(matches!(inputs.get(&h), Err(InputError::Damaged(_))));
        // A damaged copy is replaced by the next put of the same bytes; so is a planted symlink.
        assert_eq!(inputs.put(b"png").unwrap(), h);
        assert_eq!(inputs.get(&h).unwrap(), b"png");
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"keep me").unwrap();
        let planted = hash(b"new");
        std::os::unix::fs::symlink(&target, inputs.dir.join(&planted)).unwrap();
        assert!(matches!(inputs.get(&planted), Err(InputError::Io { .. })));
        assert_eq!(inputs.put(b"new").unwrap(), planted);
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        assert_eq!(inputs.get(&planted).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(&inputs.dir).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 2, "no temp files left: {names:?}");
    }

    #[test]
    fn prune_oldest_first_never_kept_ones() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = Inputs::new(dir.path().join("inputs"));
        let day = 24 * 3600 * 1000;
        let now = 100 * day;
        // a: 40 days old (over the age), b: 5 days, c: 1 day, d: 50 days but a pending job needs it.
        let [a, b, c, d] = [b"aaaa", b"bbbb", b"cccc", b"dddd"].map(|x| inputs.put(x).unwrap());
        std::fs::write(inputs.dir.join(".x.1.2.tmp"), b"crash").unwrap();
        let last: HashMap<_, _> = [
            (a.clone(), now - 40 * day),
            (b.clone(), now - 5 * day),
            (c.clone(), now - day),
            (d.clone(), now - 50 * day),
        ]
        .into();
        let keep: HashSet<_> = [d.clone()].into();
        let cap = InputCap { max_bytes: 8, max_age: Duration::from_secs(30 * 24 * 3600) };
        // Age removes a; then 12 bytes > 8 removes b, the oldest left; c and the kept d remain.
        let pruned = inputs.prune(&keep, &last, cap, now).unwrap();
        assert_eq!(pruned, Pruned { removed: 2, freed: 8, kept: 8 });
        let mut left: Vec<_> =
            std::fs::read_dir(&inputs.dir).unwrap().flatten().map(|e| e.file_name().into_string().unwrap()).collect();
        left.sort();
        let mut want = vec![c.clone(), d.clone()];
        want.sort();
        assert_eq!(left, want);
        // Under the cap nothing goes, even with a tiny one the kept input stays.
        assert_eq!(inputs.prune(&keep, &last, cap, now).unwrap().removed, 0);
        let tiny = InputCap { max_bytes: 0, ..cap };
        assert_eq!(inputs.prune(&keep, &last, tiny, now).unwrap(), Pruned { removed: 1, freed: 4, kept: 4 });
        assert_eq!(inputs.get(&d).unwrap(), b"dddd");
    }
}
