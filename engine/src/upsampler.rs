//! Latent upscalers (`ltx_core/model/upsampler`), each loaded from its own safetensors file and top-level
//! config: Conv3d -> GroupNorm -> SiLU -> res blocks -> the upsampler -> res blocks -> Conv3d, wrapped as
//! `normalize(upsampler(un_normalize(z)))` with the video VAE's per-channel statistics (`upsample_video`).
//! The upsampler is the spatial rational resampler (per-frame Conv2d, pixel shuffle ×num, blur-downsample
//! ÷den: ×2 for LTX-2 and LTX-2.3's x2 files, ×1.5 = 3/2 for LTX-2.3's x1.5 file) or the temporal ×2 one
//! (Conv3d, pixel shuffle along time, first frame dropped). Channels-last inside; latents are
//! (B, C, F, H, W) outside.
use std::path::Path;

use mlx_rs::{macros::ModuleParameters, module::Param, nn, ops, Array, Dtype};

use crate::{
    checkpoint::{Checkpoint, LoadOptions},
    config::UpsamplerConfig,
    video_vae::{
        convolution::Conv,
        module_enum,
        ops::{group_norm, slice_axis, to_channels_first, to_channels_last, PerChannelStatistics},
        sampling::depth_to_space,
        Result, VaeError,
    },
};

/// `torch.nn.GroupNorm(32, C)` (eps 1e-5).
#[derive(Debug, Clone, ModuleParameters)]
pub struct GroupNorm {
    #[param]
    pub weight: Param<Array>,
    #[param]
    pub bias: Param<Array>,
}

impl GroupNorm {
    fn new(channels: i32) -> Result<Self> {
        Ok(Self {
            weight: Param::new(Array::ones::<f32>(&[channels])?),
            bias: Param::new(Array::zeros::<f32>(&[channels])?),
        })
    }

    fn forward(&self, x: &Array) -> Result<Array> {
        group_norm(x, 32, 1e-5, &self.weight, &self.bias)
    }
}

/// 3×3×3 convolution with zero padding 1 on (B, F, H, W, C).
fn conv3(conv: &Conv, x: &Array) -> Result<Array> {
    conv.forward_with(x, &[1, 1, 1], &[1, 1, 1])
}

/// `ResBlock`: conv -> GN -> SiLU -> conv -> GN -> SiLU(x + residual).
#[derive(Debug, Clone, ModuleParameters)]
pub struct ResBlock {
    #[param]
    pub conv1: Conv,
    #[param]
    pub norm1: GroupNorm,
    #[param]
    pub conv2: Conv,
    #[param]
    pub norm2: GroupNorm,
}

impl ResBlock {
    fn new(channels: i32) -> Result<Self> {
        Ok(Self {
            conv1: Conv::new(channels, channels, &[3, 3, 3], true)?,
            norm1: GroupNorm::new(channels)?,
            conv2: Conv::new(channels, channels, &[3, 3, 3], true)?,
            norm2: GroupNorm::new(channels)?,
        })
    }

    fn forward(&self, x: &Array) -> Result<Array> {
        let h = nn::silu(self.norm1.forward(&conv3(&self.conv1, x)?)?)?;
        let h = self.norm2.forward(&conv3(&self.conv2, &h)?)?;
        Ok(nn::silu(h.add(x)?)?)
    }
}

/// `BlurDownsample(dims=2, stride)`: the fixed 5×5 binomial filter ([1, 4, 6, 4, 1] ⊗ itself / 256, key
/// `kernel`, (1, 1, 5, 5)) applied per channel at `stride` with zero padding 2; the identity at stride 1.
#[derive(Debug, Clone, ModuleParameters)]
pub struct BlurDownsample {
    #[param]
    pub kernel: Param<Array>,
    pub stride: i32,
}

impl BlurDownsample {
    fn new(stride: i32) -> Self {
        let taps = [1.0f32, 4.0, 6.0, 4.0, 1.0];
        let kernel: Vec<f32> = taps.iter().flat_map(|a| taps.iter().map(move |b| a * b / 256.0)).collect();
        Self { kernel: Param::new(Array::from_slice(&kernel, &[1, 1, 5, 5])), stride }
    }

    /// (N, H, W, C) -> (N, ⌈H/stride⌉, ⌈W/stride⌉, C).
    fn forward(&self, x: &Array) -> Result<Array> {
        if self.stride == 1 {
            return Ok(x.clone());
        }
        let c = x.shape()[3];
        let weight = ops::broadcast_to(self.kernel.reshape(&[1, 5, 5, 1])?, &[c, 5, 5, 1])?;
        Ok(ops::conv2d(x, weight.as_dtype(x.dtype())?, (self.stride, self.stride), (2, 2), None, c)?)
    }
}

/// `SpatialRationalResampler`: per frame, Conv2d to num²·C channels, pixel shuffle ×num, blur ÷den.
#[derive(Debug, Clone, ModuleParameters)]
pub struct Resampler {
    #[param]
    pub conv: Conv,
    #[param]
    pub blur_down: BlurDownsample,
    pub num: i32,
}

impl Resampler {
    /// ltx-core `_rational_for_scale`.
    fn new(mid: i32, scale: f64) -> Result<Self> {
        let (num, den) = match scale {
            0.75 => (3, 4),
            1.5 => (3, 2),
            2.0 => (2, 1),
            4.0 => (4, 1),
            other => return Err(VaeError::Unsupported(format!("spatial_scale {other}"))),
        };
        Ok(Self { conv: Conv::new(mid, num * num * mid, &[3, 3], true)?, blur_down: BlurDownsample::new(den), num })
    }

    fn forward(&self, x: &Array) -> Result<Array> {
        let [b, f, h, w, c] = crate::video_vae::dims(x, "the upsampler's latent")?;
        let n = self.num;
        let frames = self.conv.forward_with(&x.reshape(&[b * f, h, w, c])?, &[1, 1], &[1, 1])?;
        let frames = depth_to_space(&frames.reshape(&[b * f, 1, h, w, n * n * c])?, [1, n, n])?;
        let frames = self.blur_down.forward(&frames.reshape(&[b * f, n * h, n * w, c])?)?;
        let [_, h, w, _] = crate::video_vae::dims(&frames, "the resampled latent")?;
        Ok(frames.reshape(&[b, f, h, w, c])?)
    }
}

/// The temporal ×2 upsampler (`Sequential(Conv3d(C, 2C, 3, padding=1), PixelShuffleND(1))`, keys
/// `upsampler.0.*`), first frame dropped: F frames -> 2F - 1.
fn temporal_forward(layers: &[Conv], x: &Array) -> Result<Array> {
    let conv = layers.first().ok_or_else(|| VaeError::Input("temporal upsampler without its conv".into()))?;
    let h = depth_to_space(&conv3(conv, x)?, [2, 1, 1])?;
    let frames = h.shape()[1];
    slice_axis(&h, 1, 1, frames)
}

#[derive(Debug, Clone)]
pub enum Upsampler {
    Spatial(Resampler),
    /// The one-layer list names its conv `0`, as the checkpoint does.
    Temporal(Vec<Conv>),
}
module_enum!(Upsampler { Spatial, Temporal });

#[derive(Debug, Clone, ModuleParameters)]
pub struct LatentUpsampler {
    #[param]
    pub initial_conv: Conv,
    #[param]
    pub initial_norm: GroupNorm,
    #[param]
    pub res_blocks: Vec<ResBlock>,
    #[param]
    pub upsampler: Upsampler,
    #[param]
    pub post_upsample_res_blocks: Vec<ResBlock>,
    #[param]
    pub final_conv: Conv,
}

impl LatentUpsampler {
    /// The layouts LTX-2 / LTX-2.3 ship, 3-D convolutions: spatial with the rational resampler (×2, ×1.5;
    /// ltx-core's other rational scales too) or temporal ×2. The plain spatial pixel shuffle and the
    /// spatio-temporal upsampler ltx-core can also build are refused.
    pub fn new(config: &UpsamplerConfig) -> Result<Self> {
        let (c, mid) = (config.in_channels as i32, config.mid_channels as i32);
        let upsampler = match (config.dims, config.spatial_upsample, config.temporal_upsample) {
            (3, true, false) if config.rational_resampler => {
                Upsampler::Spatial(Resampler::new(mid, config.spatial_scale)?)
            }
            (3, false, true) => Upsampler::Temporal(vec![Conv::new(mid, 2 * mid, &[3, 3, 3], true)?]),
            _ => return Err(VaeError::Unsupported(format!("latent upsampler {config:?}"))),
        };
        let blocks = || (0..config.num_blocks_per_stage).map(|_| ResBlock::new(mid)).collect::<Result<Vec<_>>>();
        Ok(Self {
            initial_conv: Conv::new(c, mid, &[3, 3, 3], true)?,
            initial_norm: GroupNorm::new(mid)?,
            res_blocks: blocks()?,
            upsampler,
            post_upsample_res_blocks: blocks()?,
            final_conv: Conv::new(mid, c, &[3, 3, 3], true)?,
        })
    }

    /// Reads an upscaler file (its own config in the metadata). The blur filter (`upsampler.blur_down.kernel`)
    /// is fixed: a file without it keeps the binomial one.
    pub fn from_file(path: impl AsRef<Path>, dtype: Dtype) -> Result<Self> {
        let checkpoint = Checkpoint::open(path)?;
        let mut model = Self::new(&UpsamplerConfig::from_metadata(checkpoint.metadata())?)?;
        let options =
            LoadOptions { dtype: Some(dtype), optional: &|k| k == "upsampler.blur_down.kernel", ..Default::default() };
        checkpoint.load_into(&mut model, "", &options)?;
        Ok(model)
    }

    /// The upsampler network on an un-normalised latent, channels-last (B, F, H, W, C) -> (B, F, 2H, 2W, C)
    /// (×1.5: (B, F, ⌈3H/2⌉, ⌈3W/2⌉, C); temporal: (B, 2F - 1, H, W, C)).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let h = nn::silu(self.initial_norm.forward(&conv3(&self.initial_conv, x)?)?)?;
        let h = self.res_blocks.iter().try_fold(h, |h, b| b.forward(&h))?;
        let h = match &self.upsampler {
            Upsampler::Spatial(resampler) => resampler.forward(&h)?,
            Upsampler::Temporal(layers) => temporal_forward(layers, &h)?,
        };
        let h = self.post_upsample_res_blocks.iter().try_fold(h, |h, b| b.forward(&h))?;
        conv3(&self.final_conv, &h)
    }

    /// `upsample_video`: normalised latent (B, C, F, H, W) -> normalised upscaled latent (B, C, F', H', W').
    pub fn upsample(&self, latent: &Array, statistics: &PerChannelStatistics) -> Result<Array> {
        let dtype = self.initial_conv.weight.dtype();
        let z = statistics.un_normalize(&to_channels_last(&latent.as_dtype(dtype)?)?)?;
        to_channels_first(&statistics.normalize(&self.forward(&z)?)?)
    }
}
