//! `VideoEncoder` (`video_vae.py`): RGB (B, F, H, W, 3) in [-1, 1] -> normalised latent means
//! (B, 128, (F-1)/8+1, H/32, W/32); causal convolutions, space-to-depth downsampling, configured from
//! `config.vae` as ltx-core's `VideoEncoderConfigurator`.
use mlx_rs::{macros::ModuleParameters, nn, Array, Dtype};

use super::{
    convolution::{CausalConv3d, Padding},
    module_enum,
    ops::{patchify, pixel_norm, slice_axis, to_channels_first, PerChannelStatistics},
    resnet::UNetMidBlock3D,
    sampling::SpaceToDepthDownsample,
    Result, VaeError,
};
use crate::{
    checkpoint::{prefix, Checkpoint, LoadOptions},
    config::VaeConfig,
};

#[derive(Debug, Clone)]
pub enum DownBlock {
    Res(UNetMidBlock3D),
    Downsample(SpaceToDepthDownsample),
}
module_enum!(DownBlock { Res, Downsample });

#[derive(Debug, Clone, ModuleParameters)]
pub struct VideoEncoder {
    #[param]
    pub conv_in: CausalConv3d,
    #[param]
    pub down_blocks: Vec<DownBlock>,
    #[param]
    pub conv_out: CausalConv3d,
    pub statistics: Option<PerChannelStatistics>,
    pub latent_channels: i32,
    pub patch_size: i32,
}

impl VideoEncoder {
    pub fn new(config: &VaeConfig) -> Result<Self> {
        if config.dims != 3 || config.norm_layer != "pixel_norm" {
            return Err(VaeError::Unsupported(format!("encoder dims {} / norm {}", config.dims, config.norm_layer)));
        }
        let padding = Padding::parse(config.encoder_padding())?;
        let (p, latent) = (config.patch_size as i32, config.latent_channels as i32);
        let mut channels = latent;
        let conv_in = CausalConv3d::new(config.in_channels as i32 * p * p, channels, padding)?;
        let mut down_blocks = Vec::new();
        for block in &config.encoder_blocks {
            let stride = match block.name.as_str() {
                "res_x" => {
                    let layers = block.int("num_layers").unwrap_or(1) as usize;
                    down_blocks.push(DownBlock::Res(UNetMidBlock3D::new(channels, layers, padding, false)?));
                    continue;
                }
                "compress_time_res" => [2, 1, 1],
                "compress_space_res" => [1, 2, 2],
                "compress_all_res" => [2, 2, 2],
                other => return Err(VaeError::Unsupported(format!("encoder block `{other}`"))),
            };
            let out = channels * block.int("multiplier").unwrap_or(2) as i32;
            down_blocks.push(DownBlock::Downsample(SpaceToDepthDownsample::new(channels, out, stride, padding)?));
            channels = out;
        }
        let out = match config.latent_log_var.as_str() {
            "per_channel" => 2 * latent,
            "uniform" | "constant" => latent + 1,
            "none" => latent,
            other => return Err(VaeError::Unsupported(format!("latent_log_var `{other}`"))),
        };
        Ok(Self {
            conv_in,
            down_blocks,
            conv_out: CausalConv3d::new(channels, out, padding)?,
            statistics: None,
            latent_channels: latent,
            patch_size: p,
        })
    }

    /// Builds the encoder from `config.vae` and loads `vae.encoder.*` and the per-channel statistics.
    pub fn from_checkpoint(checkpoint: &Checkpoint, dtype: Dtype) -> Result<Self> {
        let mut encoder = Self::new(&checkpoint.config()?.vae()?)?;
        let options = LoadOptions { dtype: Some(dtype), ..Default::default() };
        checkpoint.load_into(&mut encoder, &format!("{}encoder.", prefix::VIDEO_VAE), &options)?;
        encoder.statistics = Some(PerChannelStatistics::load(checkpoint, prefix::VIDEO_VAE, dtype)?);
        Ok(encoder)
    }

    /// Encodes (B, F, H, W, 3) in [-1, 1] to the normalised means (B, C, F', H', W'). Frames beyond the
    /// last 8k+1 are dropped, as in ltx-core.
    pub fn forward(&self, video: &Array) -> Result<Array> {
        let statistics =
            self.statistics.as_ref().ok_or_else(|| VaeError::Input("encoder statistics not loaded".into()))?;
        let frames = video.shape()[1];
        let video = slice_axis(video, 1, 0, frames - (frames - 1) % 8)?.as_dtype(self.conv_in.conv.weight.dtype())?;
        let mut h = self.conv_in.forward(&patchify(&video, self.patch_size)?, true)?;
        for block in &self.down_blocks {
            h = match block {
                DownBlock::Res(res) => res.forward(&h, true, None)?,
                DownBlock::Downsample(down) => down.forward(&h, true)?,
            };
        }
        let h = self.conv_out.forward(&nn::silu(&pixel_norm(&h, 1e-8)?)?, true)?;
        let means = slice_axis(&h, 4, 0, self.latent_channels)?;
        to_channels_first(&statistics.normalize(&means)?)
    }
}
