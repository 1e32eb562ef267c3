//! A record of files whose sha256 was checked (at download or by `models verify`): path → size, mtime, sha256,
//! in `models-verified.json` in the state directory. A file whose size or mtime changed since is not sealed.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seal {
    size: u64,
    mtime_ns: u64,
    sha256: String,
}

pub(super) fn file(state_dir: &Path) -> PathBuf {
    state_dir.join("models-verified.json")
}

fn load(state_dir: &Path) -> BTreeMap<String, Seal> {
    std::fs::read(file(state_dir)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Replaces the record atomically (a fresh temporary file, fsynced, renamed over it; 0600).
fn store(state_dir: &Path, map: &BTreeMap<String, Seal>) {
    let path = file(state_dir);
    let res = serde_json::to_vec_pretty(map)
        .map_err(std::io::Error::other)
        .and_then(|b| ltx_protocol::fsutil::write_replace(&path, &b, 0o600));
    if let Err(e) = res {
        tracing::warn!("cannot record verified models in {}: {e}", path.display());
    }
}

fn stat(path: &Path) -> Option<(u64, u64)> {
    let m = std::fs::metadata(path).ok()?;
    let mtime = m.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as u64;
    Some((m.len(), mtime))
}

fn key(path: &Path) -> String {
    path.display().to_string()
}

pub fn seal(lock: &Mutex<()>, state_dir: &Path, path: &Path, sha256: &str) {
    let Some((size, mtime_ns)) = stat(path) else { return };
    let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
    let mut map = load(state_dir);
    map.insert(key(path), Seal { size, mtime_ns, sha256: sha256.into() });
    store(state_dir, &map);
}

pub fn unseal(lock: &Mutex<()>, state_dir: &Path, path: &Path) {
    let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
    let mut map = load(state_dir);
    if map.remove(&key(path)).is_some() {
        store(state_dir, &map);
    }
}

/// Whether `path` was verified and has not changed since.
pub fn is_sealed(state_dir: &Path, path: &Path) -> bool {
    let Some((size, mtime_ns)) = stat(path) else { return false };
    load(state_dir).get(&key(path)).is_some_and(|s| s.size == size && s.mtime_ns == mtime_ns)
}

/// The sha256 recorded for `path` when it was last verified (whether or not it changed since).
pub fn recorded(state_dir: &Path, path: &Path) -> Option<String> {
    load(state_dir).remove(&key(path)).map(|s| s.sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_never_written_through_a_planted_link() {
        // Its temporary file once had a fixed name (`models-verified.json.tmp`): a link there was followed.
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("models-verified.json.tmp")).unwrap();
        let model = dir.path().join("m.safetensors");
        std::fs::write(&model, b"weights").unwrap();
        let lock = Mutex::new(());
        seal(&lock, dir.path(), &model, "abc");
        assert_eq!(std::fs::read_to_string(&victim).unwrap_or_default(), "precious", "written through the link");
        assert!(is_sealed(dir.path(), &model));
        let mode = std::fs::metadata(file(dir.path())).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    }
}
