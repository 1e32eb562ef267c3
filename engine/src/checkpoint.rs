//! Safetensors checkpoints, memory-mapped and handed to MLX without an intermediate buffer.
//!
//! Each tensor's bytes in the mapping are offered to MLX with a deleter that keeps the mapping alive:
//! MLX's Metal allocator wraps page-aligned bytes without copying; its CPU and CUDA allocators copy them
//! once into their own buffer (and release the mapping's pages). Nothing is read into a Rust `Vec` first.
//! The mapping is private copy-on-write, so a donated buffer written by MLX never reaches the file.
//!
//! `F8_E4M3` tensors stay FP8 bytes (MLX `uint8`) next to their `weight_scale`; the layers that use them
//! decode them with MLX's fp8 op (`transformer::linear::Linear`).
//!
//! Single-file LTX-2 checkpoints hold several components under key prefixes (see [`prefix`]);
//! [`Checkpoint::load_into`] fills an mlx-rs module whose parameter tree mirrors the keys below a prefix,
//! converting PyTorch convolution layouts to MLX's channels-last once, and reports every missing,
//! unexpected or mis-shaped tensor.
use std::{
    collections::{BTreeMap, HashMap},
    ffi::c_void,
    fmt,
    fs::File,
    io::Read,
    path::{Path, PathBuf},
    sync::Arc,
};

use memmap2::{MmapMut as Mmap, MmapOptions};
use mlx_rs::{module::ModuleParameters, Array, Dtype};
use safetensors::{tensor::TensorInfo, Dtype as StDtype, SafeTensors};

use crate::config::{ConfigError, LtxConfig};

/// Key prefixes of the single-file LTX-2 layout.
pub mod prefix {
    pub const TRANSFORMER: &str = "model.diffusion_model.";
    pub const VIDEO_VAE: &str = "vae.";
    pub const AUDIO_VAE: &str = "audio_vae.";
    pub const VOCODER: &str = "vocoder.";
    pub const TEXT_PROJECTION: &str = "text_embedding_projection.";
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a valid safetensors file: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
    #[error("{}: tensor `{name}` has dtype {dtype:?}, which the engine does not load", path.display())]
    UnsupportedDtype { path: PathBuf, name: String, dtype: StDtype },
    #[error("{}: no tensor `{name}`", path.display())]
    MissingTensor { path: PathBuf, name: String },
    #[error("{}: weights under `{prefix}` do not match the model:\n{report}", path.display())]
    Mismatch { path: PathBuf, prefix: String, report: Box<LoadReport> },
    #[error("mlx: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
}

/// An open, memory-mapped safetensors file.
pub struct Checkpoint {
    path: PathBuf,
    map: Arc<Mmap>,
    data_start: usize,
    tensors: BTreeMap<String, TensorInfo>,
    metadata: HashMap<String, String>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint").field("path", &self.path).field("tensors", &self.tensors.len()).finish()
    }
}

impl Checkpoint {
    /// Maps the file and validates its header (offsets, sizes, dtypes) before any tensor is touched.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| LoadError::Io { path: path.clone(), source };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the mapping is private (copy-on-write): writes through it never reach the file, and
        // the file is a checkpoint nobody is expected to truncate while it is loaded.
        let map = unsafe { MmapOptions::new().map_copy(&file) }.map_err(io)?;
        let (header_len, header) = SafeTensors::read_metadata(&map)
            .map_err(|e| LoadError::Format { path: path.clone(), reason: e.to_string() })?;
        let tensors = header.tensors().into_iter().map(|(k, v)| (k, v.clone())).collect();
        let metadata = header.metadata().clone().unwrap_or_default();
        Ok(Self { path, map: Arc::new(map), data_start: 8 + header_len, tensors, metadata })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The safetensors `__metadata__` strings.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The LTX-2 `config` metadata; an error names the file when it is not an LTX-2 checkpoint.
    pub fn config(&self) -> Result<LtxConfig, LoadError> {
        ltx_config(&self.path, &self.metadata)
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Shape of a tensor as stored.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// Size of the mapped file in bytes.
    pub fn file_size(&self) -> usize {
        self.map.len()
    }

    /// One tensor as an MLX array, in its stored dtype (FP8 as `uint8`), pointing into the mapping when
    /// aligned.
    pub fn tensor(&self, name: &str) -> Result<Array, LoadError> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| LoadError::MissingTensor { path: self.path.clone(), name: name.into() })?;
        let dtype = mlx_dtype(info.dtype).ok_or_else(|| LoadError::UnsupportedDtype {
            path: self.path.clone(),
            name: name.into(),
            dtype: info.dtype,
        })?;
        let shape = info
            .shape
            .iter()
            .map(|&d| i32::try_from(d))
            .collect::<Result<Vec<i32>, _>>()
            .map_err(|_| LoadError::Format { path: self.path.clone(), reason: format!("`{name}` is too large") })?;
        let (begin, end) = info.data_offsets;
        // read_metadata checked that the offsets lie within the file.
        let bytes = &self.map[self.data_start + begin..self.data_start + end];
        Ok(array_from_bytes(&self.map, bytes, &shape, dtype, info.dtype.bitsize() / 8))
    }

    /// All tensors whose names start with `prefix`, keyed without it.
    pub fn tensors_with_prefix(&self, prefix: &str) -> Result<HashMap<String, Array>, LoadError> {
        self.names()
            .filter_map(|n| n.strip_prefix(prefix).map(|rest| (n, rest)))
            .map(|(full, rest)| Ok((rest.to_string(), self.tensor(full)?)))
            .collect()
    }

    /// Fills `module` from the tensors under `prefix`: names below the prefix must equal the module's
    /// flattened parameter names. Floating tensors are cast to `options.dtype` (FP8 bytes are not),
    /// convolution kernels are moved to MLX's channels-last layout. Any missing, unexpected or
    /// mis-shaped tensor fails the load, with all of them listed.
    pub fn load_into<M: ModuleParameters + ?Sized>(
        &self,
        module: &mut M,
        prefix: &str,
        options: &LoadOptions,
    ) -> Result<LoadReport, LoadError> {
        let mut params = module.parameters_mut().flatten();
        let mut report = LoadReport::default();
        for full in self.names() {
            let Some(key) = full.strip_prefix(prefix) else { continue };
            if (options.ignore)(key) {
                continue;
            }
            let Some(slot) = params.get_mut(key) else {
                report.unexpected.push(key.to_string());
                continue;
            };
            let mut array = self.tensor(full)?;
            if array.ndim() >= 3 && key.ends_with("weight") {
                array = to_channels_last(&array, (options.transposed_conv)(key))?;
            }
            if array.shape() != slot.shape() {
                report.misshaped.push((key.to_string(), array.shape().to_vec(), slot.shape().to_vec()));
                continue;
            }
            if let Some(dtype) = options.dtype {
                // FP8 bytes stay bytes, and their per-tensor scales stay f32.
                if array.dtype().is_float() && array.dtype() != dtype && !key.ends_with("_scale") {
                    array = array.as_dtype(dtype)?;
                }
            }
            report.loaded += 1;
            report.bytes += array.nbytes();
            **slot = array;
        }
        let loaded: std::collections::HashSet<&str> = self.names().filter_map(|n| n.strip_prefix(prefix)).collect();
        report.missing = params
            .keys()
            .filter(|k| !loaded.contains(k.as_ref()) && !(options.optional)(k))
            .map(|k| k.to_string())
            .collect();
        report.missing.sort();
        if report.is_clean() {
            Ok(report)
        } else {
            Err(LoadError::Mismatch { path: self.path.clone(), prefix: prefix.to_string(), report: Box::new(report) })
        }
    }
}

fn ltx_config(path: &Path, metadata: &HashMap<String, String>) -> Result<LtxConfig, LoadError> {
    LtxConfig::from_metadata(metadata).map_err(|source| LoadError::Config { path: path.to_path_buf(), source })
}

/// safetensors' own limit on a header's length.
const MAX_HEADER: u64 = 100_000_000;

/// A safetensors file's header alone: its tensor table and `__metadata__`, read without mapping the file
/// or reading any tensor (what the preflight estimates from). The table is validated as safetensors
/// validates it (contiguous offsets, sizes matching dtype and shape); unlike [`Checkpoint::open`], a file
/// whose data is cut short after an intact header is not noticed here.
#[derive(Debug, Clone)]
pub struct Header {
    path: PathBuf,
    tensors: BTreeMap<String, TensorInfo>,
    metadata: HashMap<String, String>,
}

impl Header {
    pub fn read(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref().to_path_buf();
        let format = |reason: String| LoadError::Format { path: path.clone(), reason };
        let mut file = File::open(&path).map_err(|source| LoadError::Io { path: path.clone(), source })?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len).map_err(|e| format(format!("no header length ({e})")))?;
        let len = u64::from_le_bytes(len);
        if len > MAX_HEADER {
            return Err(format(format!("safetensors header of {len} bytes")));
        }
        let mut text = Vec::with_capacity(len as usize);
        file.take(len).read_to_end(&mut text).map_err(|source| LoadError::Io { path: path.clone(), source })?;
        if text.len() as u64 != len {
            return Err(format(format!("header of {len} bytes cut at {}", text.len())));
        }
        let header: safetensors::tensor::Metadata =
            serde_json::from_slice(&text).map_err(|e| format(format!("safetensors header: {e}")))?;
        let tensors = header.tensors().into_iter().map(|(k, v)| (k, v.clone())).collect();
        let metadata = header.metadata().clone().unwrap_or_default();
        Ok(Self { path, tensors, metadata })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor's name and header entry (dtype, shape, data offsets), sorted by name.
    pub fn tensors(&self) -> impl Iterator<Item = (&str, &TensorInfo)> {
        self.tensors.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The safetensors `__metadata__` strings.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// The LTX-2 `config` metadata, parsed as [`Checkpoint::config`] parses it.
    pub fn config(&self) -> Result<LtxConfig, LoadError> {
        ltx_config(&self.path, &self.metadata)
    }
}

/// How [`Checkpoint::load_into`] treats tensors.
pub struct LoadOptions<'a> {
    /// Cast floating-point tensors to this dtype (f32 on CPU, bf16 on GPU); `None` keeps the stored one.
    pub dtype: Option<Dtype>,
    /// Names (below the prefix) of transposed convolutions, whose PyTorch layout is (in, out, k…).
    pub transposed_conv: &'a dyn Fn(&str) -> bool,
    /// Names (below the prefix) the file may hold that the module does not use; they are skipped.
    pub ignore: &'a dyn Fn(&str) -> bool,
    /// Module parameters the file may lack; they keep the value the module was built with (e.g. the FP8
    /// `weight_scale` slots of linears, absent from bf16 files).
    pub optional: &'a dyn Fn(&str) -> bool,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        Self { dtype: None, transposed_conv: &|_| false, ignore: &|_| false, optional: &|_| false }
    }
}

/// What a load found: counts, and every mismatch by name.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoadReport {
    pub loaded: usize,
    pub bytes: usize,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    /// (name, shape in the file after layout conversion, shape the model expects)
    pub misshaped: Vec<(String, Vec<i32>, Vec<i32>)>,
}

impl LoadReport {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.misshaped.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        let mut list = |label: &str, items: Vec<String>| -> fmt::Result {
            if items.is_empty() {
                return Ok(());
            }
            writeln!(f, "  {} {label}:", items.len())?;
            for item in items.iter().take(SHOWN) {
                writeln!(f, "    {item}")?;
            }
            if items.len() > SHOWN {
                writeln!(f, "    … and {} more", items.len() - SHOWN)?;
            }
            Ok(())
        };
        list("missing from the file", self.missing.clone())?;
        list("in the file but not in the model", self.unexpected.clone())?;
        list(
            "with the wrong shape",
            self.misshaped.iter().map(|(k, got, want)| format!("{k}: file {got:?}, model {want:?}")).collect(),
        )
    }
}

fn mlx_dtype(dtype: StDtype) -> Option<Dtype> {
    Some(match dtype {
        StDtype::BOOL => Dtype::Bool,
        StDtype::U8 | StDtype::F8_E4M3 => Dtype::Uint8,
        StDtype::I8 => Dtype::Int8,
        StDtype::I16 => Dtype::Int16,
        StDtype::U16 => Dtype::Uint16,
        StDtype::I32 => Dtype::Int32,
        StDtype::U32 => Dtype::Uint32,
        StDtype::I64 => Dtype::Int64,
        StDtype::U64 => Dtype::Uint64,
        StDtype::F16 => Dtype::Float16,
        StDtype::BF16 => Dtype::Bfloat16,
        StDtype::F32 => Dtype::Float32,
        StDtype::F64 => Dtype::Float64,
        _ => return None,
    })
}

/// An array over `bytes` (a slice of `map`): zero-copy when aligned, else copied.
fn array_from_bytes(map: &Arc<Mmap>, bytes: &[u8], shape: &[i32], dtype: Dtype, align: usize) -> Array {
    unsafe extern "C" fn release(payload: *mut c_void) {
        // SAFETY: `payload` is the Box<Arc<Mmap>> leaked below, released exactly once by MLX.
        drop(unsafe { Box::from_raw(payload.cast::<Arc<Mmap>>()) });
    }
    let ptr = bytes.as_ptr();
    if bytes.is_empty() || (ptr as usize) % align.max(1) != 0 {
        // SAFETY: `bytes` holds exactly prod(shape) elements of `dtype` (checked by read_metadata);
        // MLX copies them.
        return unsafe { Array::from_raw_data(ptr.cast(), shape, dtype) };
    }
    let keep_alive = Box::into_raw(Box::new(Arc::clone(map))).cast::<c_void>();
    // SAFETY: the buffer stays valid while the payload (an Arc of the mapping) lives; MLX calls
    // `release` once when the array's data is freed. The mapping is private, so writes stay in memory.
    unsafe {
        let raw = mlx_sys::mlx_array_new_data_managed_payload(
            ptr as *mut c_void,
            shape.as_ptr(),
            shape.len() as i32,
            u32::from(dtype) as mlx_sys::mlx_dtype,
            keep_alive,
            Some(release),
        );
        Array::from_ptr(raw)
    }
}

/// PyTorch (out, in, k…) → MLX (out, k…, in); transposed convolutions (in, out, k…) → (out, k…, in).
fn to_channels_last(w: &Array, transposed: bool) -> Result<Array, mlx_rs::error::Exception> {
    let n = w.ndim() as i32;
    let axes: Vec<i32> = if transposed {
        std::iter::once(1).chain(2..n).chain(std::iter::once(0)).collect()
    } else {
        std::iter::once(0).chain(2..n).chain(std::iter::once(1)).collect()
    };
    w.transpose_axes(&axes)
}
