//! Spatial latent upscaler ×2 (`ltx_core/model/upsampler`), loaded from its own safetensors file and
//! top-level config: Conv3d -> GroupNorm -> SiLU -> res blocks -> per-frame Conv2d + pixel shuffle ->
//! res blocks -> Conv3d, wrapped as `normalize(upsampler(un_normalize(z)))` with the video VAE's
//! per-channel statistics (`upsample_video`). Channels-last inside; latents are (B, C, F, H, W) outside.
use std::path::Path;

use mlx_rs::{macros::ModuleParameters, module::Param, nn, Array, Dtype};

use crate::{
    checkpoint::{Checkpoint, LoadOptions},
    config::UpsamplerConfig,
    video_vae::{
        convolution::Conv,
        ops::{group_norm, to_channels_first, to_channels_last, PerChannelStatistics},
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

/// `SpatialRationalResampler` at scale 2 (num 2, den 1: the blur-downsample is the identity).
#[derive(Debug, Clone, ModuleParameters)]
pub struct Resampler {
    #[param]
    pub conv: Conv,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct LatentUpsampler {
    #[param]
    pub initial_conv: Conv,
    #[param]
    pub initial_norm: GroupNorm,
    #[param]
    pub res_blocks: Vec<ResBlock>,
    #[param]
    pub upsampler: Resampler,
    #[param]
    pub post_upsample_res_blocks: Vec<ResBlock>,
    #[param]
    pub final_conv: Conv,
}

impl LatentUpsampler {
    /// Only the configuration LTX-2 ships: 3-D convs, spatial ×2 (rational resampler or plain shuffle).
    pub fn new(config: &UpsamplerConfig) -> Result<Self> {
        if config.dims != 3 || !config.spatial_upsample || config.temporal_upsample || config.spatial_scale != 2.0 {
            return Err(VaeError::Unsupported(format!("latent upsampler {config:?}")));
        }
        let (c, mid) = (config.in_channels as i32, config.mid_channels as i32);
        let blocks = || (0..config.num_blocks_per_stage).map(|_| ResBlock::new(mid)).collect::<Result<Vec<_>>>();
        Ok(Self {
            initial_conv: Conv::new(c, mid, &[3, 3, 3], true)?,
            initial_norm: GroupNorm::new(mid)?,
            res_blocks: blocks()?,
            upsampler: Resampler { conv: Conv::new(mid, 4 * mid, &[3, 3], true)? },
            post_upsample_res_blocks: blocks()?,
            final_conv: Conv::new(mid, c, &[3, 3, 3], true)?,
        })
    }

    /// Reads the upscaler file (its own config in the metadata). LTX-2's file uses the rational resampler
    /// (`upsampler.conv.*`); the plain-shuffle layout (`upsampler.0.*`) is refused.
    pub fn from_file(path: impl AsRef<Path>, dtype: Dtype) -> Result<Self> {
        let checkpoint = Checkpoint::open(path)?;
        let config = UpsamplerConfig::from_metadata(checkpoint.metadata())?;
        if !config.rational_resampler {
            return Err(VaeError::Unsupported("non-rational spatial upsampler layout".into()));
        }
        let mut model = Self::new(&config)?;
        let options = LoadOptions {
            dtype: Some(dtype),
            ignore: &|k| k.starts_with("upsampler.blur_down."),
            ..Default::default()
        };
        checkpoint.load_into(&mut model, "", &options)?;
        Ok(model)
    }

    /// The upsampler network on an un-normalised latent, channels-last (B, F, H, W, C) -> (B, F, 2H, 2W, C).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let h = nn::silu(self.initial_norm.forward(&conv3(&self.initial_conv, x)?)?)?;
        let h = self.res_blocks.iter().try_fold(h, |h, b| b.forward(&h))?;
        let [b, f, height, width, c] = crate::video_vae::dims(&h, "the upsampler's latent")?;
        let frames = self.upsampler.conv.forward_with(&h.reshape(&[b * f, height, width, c])?, &[1, 1], &[1, 1])?;
        let frames = frames.reshape(&[b, f, height, width, 4 * c])?;
        let h = depth_to_space(&frames, [1, 2, 2])?;
        let h = self.post_upsample_res_blocks.iter().try_fold(h, |h, b| b.forward(&h))?;
        conv3(&self.final_conv, &h)
    }

    /// `upsample_video`: normalised latent (B, C, F, H, W) -> normalised latent (B, C, F, 2H, 2W).
    pub fn upsample(&self, latent: &Array, statistics: &PerChannelStatistics) -> Result<Array> {
        let dtype = self.initial_conv.weight.dtype();
        let z = statistics.un_normalize(&to_channels_last(&latent.as_dtype(dtype)?)?)?;
        to_channels_first(&statistics.normalize(&self.forward(&z)?)?)
    }
}
