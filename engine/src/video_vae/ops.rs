//! Small shared pieces: `Linear`, the PixArt timestep embedder, PixelNorm, GroupNorm, per-channel
//! statistics and (un)patchify, all channels-last.
use mlx_rs::{macros::ModuleParameters, module::Param, nn, ops, Array, Dtype};

use super::Result;
use crate::{checkpoint::Checkpoint, transformer::adaln::sinusoid};

/// `torch.nn.Linear` (weight (out, in)).
#[derive(Debug, Clone, ModuleParameters)]
pub struct Linear {
    #[param]
    pub weight: Param<Array>,
    #[param]
    pub bias: Param<Array>,
}

impl Linear {
    pub fn new(inputs: i32, outputs: i32) -> Result<Self> {
        Ok(Self {
            weight: Param::new(Array::zeros::<f32>(&[outputs, inputs])?),
            bias: Param::new(Array::zeros::<f32>(&[outputs])?),
        })
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        Ok(ops::addmm(&*self.bias, x, self.weight.t(), None, None)?)
    }
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct TimestepMlp {
    #[param]
    pub linear_1: Linear,
    #[param]
    pub linear_2: Linear,
}

/// `PixArtAlphaCombinedTimestepSizeEmbeddings(dim, size_emb_dim=0)`: sinusoid(256) -> Linear -> SiLU ->
/// Linear (keys `timestep_embedder.linear_{1,2}`).
#[derive(Debug, Clone, ModuleParameters)]
pub struct TimestepEmbedder {
    #[param]
    pub timestep_embedder: TimestepMlp,
}

impl TimestepEmbedder {
    pub fn new(dim: i32) -> Result<Self> {
        let timestep_embedder = TimestepMlp { linear_1: Linear::new(256, dim)?, linear_2: Linear::new(dim, dim)? };
        Ok(Self { timestep_embedder })
    }

    /// `t` (B,) already scaled -> (B, dim).
    pub fn forward(&self, t: &Array, dtype: Dtype) -> Result<Array> {
        let mlp = &self.timestep_embedder;
        let h = mlp.linear_1.forward(&sinusoid(t)?.as_dtype(dtype)?)?;
        mlp.linear_2.forward(&nn::silu(&h)?)
    }
}

/// `PixelNorm`: x / sqrt(mean(x², channels) + eps), channels last.
pub fn pixel_norm(x: &Array, eps: f32) -> Result<Array> {
    let mean_sq = x.square()?.mean_axis(-1, true)?;
    Ok(x.multiply(ops::rsqrt(&mean_sq.add(Array::from_f32(eps))?)?)?)
}

/// `torch.nn.GroupNorm` on a channels-last tensor (contiguous channel groups), with affine weights.
pub fn group_norm(x: &Array, groups: i32, eps: f32, weight: &Array, bias: &Array) -> Result<Array> {
    let shape = x.shape().to_vec();
    let c = shape.last().copied().unwrap_or(0);
    if shape.len() < 2 || groups < 1 || c % groups != 0 {
        return Err(super::VaeError::Input(format!("group norm of {groups} groups over shape {shape:?}")));
    }
    let grouped = x.reshape(&[shape[0], -1, groups, c / groups])?;
    let mean = grouped.mean_axes(&[1, 3], true)?;
    let var = grouped.subtract(&mean)?.square()?.mean_axes(&[1, 3], true)?;
    let normed = grouped.subtract(&mean)?.multiply(ops::rsqrt(&var.add(Array::from_f32(eps))?)?)?;
    Ok(normed.reshape(&shape)?.multiply(weight)?.add(bias)?)
}

/// `PerChannelStatistics`: dataset statistics of the latent channels.
#[derive(Debug, Clone)]
pub struct PerChannelStatistics {
    pub mean: Array,
    pub std: Array,
}

impl PerChannelStatistics {
    /// The tensors under `<prefix>per_channel_statistics.`: the means, then the standard deviations, each
    /// (latent channels,).
    pub const NAMES: [&'static str; 2] = ["mean-of-means", "std-of-means"];

    /// Reads `<prefix>per_channel_statistics.{mean-of-means,std-of-means}`.
    pub fn load(checkpoint: &Checkpoint, prefix: &str, dtype: Dtype) -> Result<Self> {
        let read = |name: &str| -> Result<Array> {
            Ok(checkpoint.tensor(&format!("{prefix}per_channel_statistics.{name}"))?.as_dtype(dtype)?)
        };
        let [mean, std] = Self::NAMES;
        Ok(Self { mean: read(mean)?, std: read(std)? })
    }

    /// x * std + mean over the last axis.
    pub fn un_normalize(&self, x: &Array) -> Result<Array> {
        Ok(x.multiply(&self.std)?.add(&self.mean)?)
    }

    /// (x - mean) / std over the last axis.
    pub fn normalize(&self, x: &Array) -> Result<Array> {
        Ok(x.subtract(&self.mean)?.divide(&self.std)?)
    }
}

/// ltx-core `patchify(x, p, 1)`: "b c f (h q) (w r) -> b (c r q) f h w", here (B, F, H, W, C) -> (B, F, H/p, W/p, C·p²).
pub fn patchify(x: &Array, p: i32) -> Result<Array> {
    let [b, f, h, w, c] = super::dims(x, "the video")?;
    if p < 1 || h % p != 0 || w % p != 0 {
        return Err(super::VaeError::Input(format!("patch size {p} for a {h}x{w} video")));
    }
    let x = x.reshape(&[b, f, h / p, p, w / p, p, c])?.transpose_axes(&[0, 1, 2, 4, 6, 5, 3])?;
    Ok(x.reshape(&[b, f, h / p, w / p, c * p * p])?)
}

/// Inverse of [`patchify`]: (B, F, H, W, C·p²) -> (B, F, H·p, W·p, C).
pub fn unpatchify(x: &Array, p: i32) -> Result<Array> {
    let [b, f, h, w, cpp] = super::dims(x, "the video")?;
    if p < 1 || cpp % (p * p) != 0 {
        return Err(super::VaeError::Input(format!("patch size {p} for {cpp} channels")));
    }
    let c = cpp / (p * p);
    let x = x.reshape(&[b, f, h, w, c, p, p])?.transpose_axes(&[0, 1, 2, 6, 3, 5, 4])?;
    Ok(x.reshape(&[b, f, h * p, w * p, c])?)
}

/// (B, C, F, H, W) -> (B, F, H, W, C).
pub fn to_channels_last(x: &Array) -> Result<Array> {
    Ok(x.transpose_axes(&[0, 2, 3, 4, 1])?)
}

/// (B, F, H, W, C) -> (B, C, F, H, W).
pub fn to_channels_first(x: &Array) -> Result<Array> {
    Ok(x.transpose_axes(&[0, 4, 1, 2, 3])?)
}

/// `x[..., start:stop, ...]` along `axis`.
pub fn slice_axis(x: &Array, axis: i32, start: i32, stop: i32) -> Result<Array> {
    Ok(x.take_axis(Array::arange::<_, i32>(start, stop, None)?, axis)?)
}

/// AdaLN on channels-last `x`: `x * (1 + ada[:, scale_row]) + ada[:, shift_row]`, `ada` (B, rows, C).
pub fn modulate(x: &Array, ada: &Array, shift_row: i32, scale_row: i32) -> Result<Array> {
    let c = ada.shape()[2];
    let mut shape = vec![-1];
    shape.extend(std::iter::repeat_n(1, x.ndim() - 2));
    shape.push(c);
    let row = |i: i32| -> Result<Array> { Ok(slice_axis(ada, 1, i, i + 1)?.reshape(&shape)?) };
    Ok(x.multiply(row(scale_row)?.add(Array::from_f32(1.0))?)?.add(row(shift_row)?)?)
}
