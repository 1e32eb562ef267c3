//! Quantised files cached next to their source checkpoint: `<stem>.<mode>.safetensors`, written tensor by
//! tensor into a temporary file (0600 until placed, then the source's mode), fsynced and renamed into place,
//! so a crash never leaves a half file under the real name and later loads are plain memory-mapped loads.
//!
//! The file's `__metadata__` says what it was made from: the source's file name and fingerprint (its size,
//! modification time and the SHA-256 of its safetensors header — a content hash of a 20–40 GB file would
//! cost a full read at every load), the mode and group size, and the source's own `config`, so the file is
//! a checkpoint of the same model. A cache whose fingerprint no longer matches its source is not used (and
//! is overwritten by the next quantisation).
use std::{
    collections::HashMap,
    fs::File,
    io::{Read, Write},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use ltx_protocol::fsutil::{Dir, Temp};
use mlx_rs::{Array, Dtype};
use safetensors::Dtype as StDtype;
use sha2::{Digest, Sha256};

use super::QuantMode;

/// Metadata keys of a quantised file.
pub mod key {
    pub const FORMAT: &str = "ltx.quantized";
    pub const SOURCE: &str = "ltx.quantized.source";
    pub const FINGERPRINT: &str = "ltx.quantized.fingerprint";
    pub const MODE: &str = "ltx.quantized.mode";
    pub const GROUP: &str = "ltx.quantized.group_size";
}

/// The format version written in [`key::FORMAT`].
pub const FORMAT: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("quantising was cancelled")]
    Cancelled,
    #[error("mlx: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
}

/// The quantised file of `checkpoint` in `mode`: `<dir>/<stem>.<mode>.safetensors`.
pub fn path_for(checkpoint: &Path, mode: QuantMode) -> PathBuf {
    let stem = checkpoint.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    checkpoint.with_file_name(format!("{stem}.{}.safetensors", mode.name()))
}

/// The quantised files that exist for `checkpoint` (what removing its model removes too).
pub fn existing(checkpoint: &Path) -> Vec<PathBuf> {
    QuantMode::ALL.into_iter().map(|m| path_for(checkpoint, m)).filter(|p| p.is_file()).collect()
}

/// `size:mtime-ns:sha256(header)` of a safetensors file.
pub fn fingerprint(path: &Path) -> Result<String, CacheError> {
    let io = |source| CacheError::Io { path: path.to_path_buf(), source };
    let mut f = File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    let mtime = meta.modified().map_err(io)?.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(io)?;
    let n = u64::from_le_bytes(len);
    if n > 100 << 20 || n + 8 > meta.len() {
        return Err(CacheError::Invalid { path: path.into(), reason: format!("a {n}-byte header is not safetensors") });
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(io)?;
    let digest = Sha256::digest(&header);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}:{mtime}:{hex}", meta.len()))
}

/// Why the cache's metadata does not describe `source` in `mode` (`None`: it does).
pub fn mismatch(meta: &HashMap<String, String>, source: &Path, mode: QuantMode) -> Result<Option<String>, CacheError> {
    let get = |k: &str| meta.get(k).map(String::as_str);
    if get(key::FORMAT) != Some(FORMAT) {
        return Ok(Some(format!("not a quantised file of format {FORMAT}")));
    }
    if get(key::MODE) != Some(mode.name()) {
        return Ok(Some(format!("its mode is {:?}, not {mode}", get(key::MODE))));
    }
    let name = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if get(key::SOURCE) != Some(name.as_str()) {
        return Ok(Some(format!("it was made from {:?}, not {name}", get(key::SOURCE))));
    }
    let now = fingerprint(source)?;
    if get(key::FINGERPRINT) != Some(now.as_str()) {
        return Ok(Some(format!(
            "{name} changed since it was made (fingerprint {:?}, now {now})",
            get(key::FINGERPRINT)
        )));
    }
    Ok(None)
}

/// The metadata of a quantised file of `source` (whose own metadata is `source_meta`) in `mode`.
pub fn metadata(
    source: &Path,
    source_meta: &HashMap<String, String>,
    mode: QuantMode,
    group: i32,
) -> Result<HashMap<String, String>, CacheError> {
    let mut meta = source_meta.clone();
    let name = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    meta.insert(key::FORMAT.into(), FORMAT.into());
    meta.insert(key::SOURCE.into(), name);
    meta.insert(key::FINGERPRINT.into(), fingerprint(source)?);
    meta.insert(key::MODE.into(), mode.name().into());
    meta.insert(key::GROUP.into(), group.to_string());
    Ok(meta)
}

fn st_dtype(d: Dtype) -> Option<StDtype> {
    Some(match d {
        Dtype::Uint8 => StDtype::U8,
        Dtype::Uint32 => StDtype::U32,
        Dtype::Float32 => StDtype::F32,
        Dtype::Bfloat16 => StDtype::BF16,
        Dtype::Float16 => StDtype::F16,
        _ => return None,
    })
}

/// One tensor of the layout: name, dtype, shape (known before anything is computed).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<i32>,
}

impl Entry {
    fn bytes(&self, dtype: StDtype) -> u64 {
        let n: u64 = self.shape.iter().map(|&d| d.max(0) as u64).product();
        n * (dtype.bitsize() / 8) as u64
    }
}

/// A safetensors file written one tensor at a time in the order of its layout, into a temporary file that
/// [`Writer::finish`] places.
pub struct Writer<'d> {
    temp: Temp<'d>,
    to: PathBuf,
    entries: Vec<Entry>,
    next: usize,
}

impl<'d> Writer<'d> {
    /// Writes the header of `entries` (offsets in that order) into a new temporary file in `dir`.
    pub fn create(
        dir: &'d Dir,
        to: &Path,
        entries: Vec<Entry>,
        metadata: &HashMap<String, String>,
    ) -> Result<Self, CacheError> {
        let io = |source| CacheError::Io { path: to.to_path_buf(), source };
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::to_value(metadata).unwrap_or_default());
        let mut offset = 0u64;
        for e in &entries {
            let dtype = st_dtype(e.dtype).ok_or_else(|| CacheError::Invalid {
                path: to.into(),
                reason: format!("{}: {:?} has no safetensors dtype here", e.name, e.dtype),
            })?;
            let end = offset + e.bytes(dtype);
            header.insert(
                e.name.clone(),
                serde_json::json!({"dtype": dtype, "shape": e.shape, "data_offsets": [offset, end]}),
            );
            offset = end;
        }
        let mut json = serde_json::to_vec(&header).map_err(|e| io(std::io::Error::other(e)))?;
        // Data starts 8-byte aligned (the safetensors convention).
        json.resize(json.len().div_ceil(8) * 8, b' ');
        let prefix = format!(".{}.", to.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        let mut temp = dir.temp(&prefix).map_err(io)?;
        temp.write_all(&(json.len() as u64).to_le_bytes()).map_err(io)?;
        temp.write_all(&json).map_err(io)?;
        Ok(Self { temp, to: to.to_path_buf(), entries, next: 0 })
    }

    /// Appends the next tensor of the layout (evaluated here), checking its name, dtype and shape.
    pub fn write(&mut self, name: &str, a: &Array) -> Result<(), CacheError> {
        let invalid = |reason: String| CacheError::Invalid { path: self.to.clone(), reason };
        let Some(e) = self.entries.get(self.next) else {
            return Err(invalid(format!("{name}: more tensors than the layout holds")));
        };
        if e.name != name || e.dtype != a.dtype() || e.shape != a.shape() {
            return Err(invalid(format!(
                "{name} {:?} {:?} where the layout has {} {:?} {:?}",
                a.dtype(),
                a.shape(),
                e.name,
                e.dtype,
                e.shape
            )));
        }
        let bytes = a.reshape(&[-1])?.view_dtype(Dtype::Uint8)?;
        bytes.eval()?;
        let slice = bytes.try_as_slice::<u8>().map_err(|e| invalid(format!("{name}: not readable ({e:?})")))?;
        let to = self.to.clone();
        self.temp.file().write_all(slice).map_err(|source| CacheError::Io { path: to, source })?;
        self.next += 1;
        Ok(())
    }

    pub fn written(&self) -> (usize, usize) {
        (self.next, self.entries.len())
    }

    /// fsyncs the file and renames it over the cache name with `mode` (the source's permissions).
    pub fn finish(self, mode: u32) -> Result<(), CacheError> {
        if self.next != self.entries.len() {
            return Err(CacheError::Invalid {
                path: self.to,
                reason: format!("{} of {} tensors written", self.next, self.entries.len()),
            });
        }
        let io = |source| CacheError::Io { path: self.to.clone(), source };
        let name = self.to.file_name().ok_or_else(|| io(std::io::Error::other("no file name")))?.to_os_string();
        self.temp.replace(&name, mode).map_err(io)
    }
}

/// The permission bits of `path` (what the cache file of it gets).
pub fn mode_of(path: &Path) -> Result<u32, CacheError> {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .map_err(|source| CacheError::Io { path: path.into(), source })
}
