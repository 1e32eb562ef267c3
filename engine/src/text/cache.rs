//! Prompt-embedding cache: the encoded contexts of a (prompts, model, encoder settings) key, kept in a
//! bounded in-memory LRU and, when a directory is given, as `<key>.safetensors` files there, so that a
//! re-run with another seed skips Gemma. Keys are SHA-256 over length-prefixed parts (see
//! [`cache_key`]); a damaged file is treated as a miss and replaced.

use std::{
    collections::{HashMap, VecDeque},
    path::{Path, PathBuf},
};

use mlx_rs::Array;
use sha2::{Digest, Sha256};

use super::Result;
use crate::checkpoint::Checkpoint;

/// The tensors of one cache entry by name (`video`, `audio`, `negative.video`, `negative.audio`).
pub type Entry = HashMap<String, Array>;

/// Hex SHA-256 of the length-prefixed parts.
pub fn cache_key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub struct PromptCache {
    dir: Option<PathBuf>,
    capacity: usize,
    /// Least recently used first.
    memory: VecDeque<(String, Entry)>,
}

impl PromptCache {
    pub fn new(dir: Option<PathBuf>, capacity: usize) -> Self {
        Self { dir, capacity, memory: VecDeque::new() }
    }

    pub fn len(&self) -> usize {
        self.memory.len()
    }

    pub fn is_empty(&self) -> bool {
        self.memory.is_empty()
    }

    fn file(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{key}.safetensors")))
    }

    /// The entry for `key` from memory, else from disk (then kept in memory too).
    pub fn get(&mut self, key: &str) -> Option<Entry> {
        if let Some(i) = self.memory.iter().position(|(k, _)| k == key) {
            let item = self.memory.remove(i)?;
            let entry = item.1.clone();
            self.memory.push_back(item);
            return Some(entry);
        }
        let path = self.file(key)?;
        let entry = read_entry(&path).ok()?;
        self.remember(key, entry.clone());
        Some(entry)
    }

    /// Stores `entry` in memory and on disk: MLX writes a fresh temporary file (created here, 0600, never
    /// through a link; checked to be the same file afterwards), which then replaces `<key>.safetensors`.
    pub fn put(&mut self, key: &str, entry: Entry) -> Result<()> {
        if let Some(path) = self.file(key) {
            let dir = path.parent().unwrap_or(Path::new("."));
            let file_err = |e| super::TextError::file(dir, e);
            let d = ltx_protocol::fsutil::Dir::create(dir).map_err(file_err)?;
            // MLX appends `.safetensors` to a path without it: the temporary name ends so.
            let tmp = d.temp_with_suffix(&format!(".{key}."), ".part.safetensors").map_err(file_err)?;
            Array::save_safetensors(entry.iter().map(|(k, v)| (k.as_str(), v)), None, tmp.path())
                .map_err(|e| super::TextError::file(&tmp.path(), e))?;
            tmp.check_unchanged().map_err(file_err)?;
            tmp.replace(std::ffi::OsStr::new(&format!("{key}.safetensors")), 0o600)
                .map_err(|e| super::TextError::file(&path, e))?;
        }
        self.remember(key, entry);
        Ok(())
    }

    fn remember(&mut self, key: &str, entry: Entry) {
        self.memory.retain(|(k, _)| k != key);
        self.memory.push_back((key.to_string(), entry));
        while self.memory.len() > self.capacity {
            self.memory.pop_front();
        }
    }
}

fn read_entry(path: &Path) -> Result<Entry> {
    let ck = Checkpoint::open(path)?;
    let entry = ck.tensors_with_prefix("")?;
    mlx_rs::transforms::eval(entry.values())?;
    Ok(entry)
}
