//! The transformer of a checkpoint, quantised once and cached next to it ([`crate::quant::cache`]): the
//! block linears of [`AvBlock::linears_mut`] packed in the mode, every other tensor in `dtype` (bf16: what the
//! GPU computes in; the CPU casts to f32 at load), FP8 block weights decoded per layer with their scale and
//! requantised directly (no bf16 copy of the file is ever made). Keys are the checkpoint's, so the file loads
//! through the same tree with packed placeholders ([`LtxModel::load_block`], [`LtxModel::from_quantized`]).
//!
//! Written one block at a time: the peak is one block's dense weights plus its packed copy, and the progress
//! callback (blocks done, blocks in all) can cancel between blocks.
use std::path::{Path, PathBuf};

use mlx_rs::{module::ModuleParameters, Array, Dtype};

use super::{block::AvBlock, LtxModel, Result, TransformerConfig, TransformerError};
use crate::{
    checkpoint::Checkpoint,
    quant::{
        cache::{self, CacheError, Entry, Writer},
        QuantMode,
    },
};

/// The tensors of a (sub)module as the file stores them: sorted names under `prefix`, no FP8 `weight_scale`
/// slots (nothing in the file is FP8), floats in `dtype`.
fn parts<M: ModuleParameters>(m: &M, prefix: &str, dtype: Dtype) -> Result<Vec<(String, Array)>> {
    let mut v: Vec<(String, Array)> = m
        .parameters()
        .flatten()
        .into_iter()
        .filter(|(k, _)| !k.ends_with(".weight_scale"))
        .map(|(k, a)| {
            let a = if a.dtype().is_float() && a.dtype() != dtype { a.as_dtype(dtype) } else { Ok(a.clone()) };
            Ok((format!("{prefix}{k}"), a?))
        })
        .collect::<std::result::Result<_, mlx_rs::error::Exception>>()?;
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

fn block_prefix(i: usize) -> String {
    format!("{}transformer_blocks.{i}.", super::model::CHECKPOINT_PREFIX)
}

fn entries(parts: &[(String, Array)]) -> Vec<Entry> {
    parts.iter().map(|(name, a)| Entry { name: name.clone(), dtype: a.dtype(), shape: a.shape().to_vec() }).collect()
}

/// The group size `mode` uses on this model's block linears (all widths are multiples of 64 in the real
/// models; the tiny test models' 32-wide rows use 32).
fn group_of(config: &TransformerConfig, mode: QuantMode) -> i32 {
    mode.group_for(config.video_inner_dim().min(config.audio_inner_dim()) as i32).unwrap_or(0)
}

/// Writes the quantised file of the checkpoint at `source` in `mode` (floats in `dtype`); `progress(done,
/// total)` is called after each block and cancels by returning `false`. Returns the file's path.
pub fn write(
    source: &Path,
    mode: QuantMode,
    dtype: Dtype,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> std::result::Result<PathBuf, CacheError> {
    let mlx = |e: TransformerError| CacheError::Invalid { path: source.into(), reason: e.to_string() };
    let ck = Checkpoint::open(source).map_err(|e| mlx(e.into()))?;
    let config = TransformerConfig::from_ltx(&ck.config().map_err(|e| mlx(e.into()))?).map_err(mlx)?;
    let group = group_of(&config, mode);
    let mut model = LtxModel::new(config, dtype).map_err(mlx)?;
    let n = model.transformer_blocks.len();

    // The layout, from placeholders (shapes and dtypes only; nothing is computed).
    let globals = LtxModel { transformer_blocks: Vec::new(), ..model.clone() };
    let mut layout = entries(&parts(&globals, super::model::CHECKPOINT_PREFIX, dtype).map_err(mlx)?);
    for i in 0..n {
        let mut b: AvBlock = model.new_block(i).map_err(mlx)?;
        b.quantized_placeholders(mode, dtype).map_err(mlx)?;
        layout.extend(entries(&parts(&b, &block_prefix(i), dtype).map_err(mlx)?));
    }

    let to = cache::path_for(source, mode);
    let meta = cache::metadata(source, ck.metadata(), mode, group)?;
    let (dir, _) = ltx_protocol::fsutil::Dir::of(&to).map_err(|e| CacheError::Io { path: to.clone(), source: e })?;
    let mut out = Writer::create(&dir, &to, layout, &meta)?;
    model.load_globals(&ck).map_err(mlx)?;
    for (name, a) in parts(&model, super::model::CHECKPOINT_PREFIX, dtype).map_err(mlx)? {
        out.write(&name, &a)?;
    }
    for i in 0..n {
        let mut block = model.load_block(&ck, i, None).map_err(mlx)?;
        block.quantize(mode, dtype).map_err(mlx)?;
        for (name, a) in parts(&block, &block_prefix(i), dtype).map_err(mlx)? {
            out.write(&name, &a)?;
        }
        drop(block);
        let _ = mlx_rs::memory::clear_cache();
        if !progress(i + 1, n) {
            return Err(CacheError::Cancelled);
        }
    }
    out.finish(cache::mode_of(source)?)?;
    Ok(to)
}

/// The cached quantised file of `source` in `mode`, opened, when it is there and describes `source` as it is
/// now; `Ok(None)` with the reason logged otherwise.
pub fn open_cached(source: &Path, mode: QuantMode) -> std::result::Result<Option<Checkpoint>, CacheError> {
    let path = cache::path_for(source, mode);
    if !path.is_file() {
        return Ok(None);
    }
    let ck = Checkpoint::open(&path).map_err(|e| CacheError::Invalid { path: path.clone(), reason: e.to_string() })?;
    match cache::mismatch(ck.metadata(), source, mode)? {
        None => Ok(Some(ck)),
        Some(why) => {
            tracing::info!(path = %path.display(), "quantised file not used: {why}");
            Ok(None)
        }
    }
}

impl LtxModel {
    /// The whole model from a quantised file of `mode` (blocks through packed placeholders), evaluated.
    pub fn from_quantized(ck: &Checkpoint, mode: QuantMode, dtype: Dtype) -> Result<Self> {
        let mut model = Self::new(TransformerConfig::from_ltx(&ck.config()?)?, dtype)?;
        for b in &mut model.transformer_blocks {
            b.quantized_placeholders(mode, dtype)?;
        }
        model.load(ck)?;
        Ok(model)
    }
}

/// The quantised file of `source` in `mode`: the cached one when it is valid, else made now (`progress` as in
/// [`write`]). The flag says whether it was made.
pub fn ensure(
    source: &Path,
    mode: QuantMode,
    dtype: Dtype,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> std::result::Result<(Checkpoint, bool), CacheError> {
    if let Some(ck) = open_cached(source, mode)? {
        return Ok((ck, false));
    }
    let path = write(source, mode, dtype, progress)?;
    let ck = Checkpoint::open(&path).map_err(|e| CacheError::Invalid { path, reason: e.to_string() })?;
    Ok((ck, true))
}
