//! `VideoDecoder` (`video_vae.py`): latent (B, 128, F', H', W') -> RGB (B, 8(F'-1)+1, 32H', 32W', 3) in
//! [-1, 1], configured from `config.vae` exactly as ltx-core's `VideoDecoderConfigurator`.
use mlx_rs::{macros::ModuleParameters, module::Param, nn, ops, random, Array, Dtype};

use super::{
    convolution::{CausalConv3d, Padding},
    module_enum,
    ops::{modulate, pixel_norm, to_channels_last, unpatchify, PerChannelStatistics, TimestepEmbedder},
    resnet::UNetMidBlock3D,
    sampling::DepthToSpaceUpsample,
    Result, VaeError,
};
use crate::{
    checkpoint::{prefix, Checkpoint, LoadOptions},
    config::{VaeBlock, VaeConfig},
};

/// Decoder-side randomness and conditioning (ltx-core defaults: noise 0.025, timestep 0.05).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeOptions {
    /// `z = noise_scale·randn + (1 - noise_scale)·z` before decoding (timestep-conditioned decoders).
    pub noise_scale: f32,
    /// Decode timestep before the stored multiplier.
    pub timestep: f32,
    /// Seed of the decode noise.
    pub seed: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self { noise_scale: 0.025, timestep: 0.05, seed: 0 }
    }
}

#[derive(Debug, Clone)]
pub enum UpBlock {
    Res(UNetMidBlock3D),
    Upsample(DepthToSpaceUpsample),
}
module_enum!(UpBlock { Res, Upsample });

#[derive(Debug, Clone, ModuleParameters)]
pub struct VideoDecoder {
    #[param]
    pub conv_in: CausalConv3d,
    #[param]
    pub up_blocks: Vec<UpBlock>,
    #[param]
    pub conv_out: CausalConv3d,
    #[param]
    pub timestep_scale_multiplier: Param<Option<Array>>,
    #[param]
    pub last_time_embedder: Option<TimestepEmbedder>,
    #[param]
    pub last_scale_shift_table: Param<Option<Array>>,
    pub statistics: Option<PerChannelStatistics>,
    pub causal: bool,
    pub patch_size: i32,
}

/// Integer block parameter with ltx-core's default.
fn param(block: &VaeBlock, key: &str, default: i64) -> i32 {
    block.int(key).unwrap_or(default) as i32
}

impl VideoDecoder {
    pub fn new(config: &VaeConfig) -> Result<Self> {
        if config.dims != 3 || config.norm_layer != "pixel_norm" {
            return Err(VaeError::Unsupported(format!("decoder dims {} / norm {}", config.dims, config.norm_layer)));
        }
        let padding = Padding::parse(config.decoder_padding())?;
        let cond = config.timestep_conditioning;
        let mut channels = config.decoder_base_channels as i32 * 8;
        let conv_in = CausalConv3d::new(config.latent_channels as i32, channels, padding)?;
        let mut up_blocks = Vec::new();
        for block in config.decoder_blocks.iter().rev() {
            let stride = match block.name.as_str() {
                "res_x" => {
                    let layers = param(block, "num_layers", 1) as usize;
                    up_blocks.push(UpBlock::Res(UNetMidBlock3D::new(channels, layers, padding, cond)?));
                    continue;
                }
                "compress_time" => [2, 1, 1],
                "compress_space" => [1, 2, 2],
                "compress_all" => [2, 2, 2],
                other => return Err(VaeError::Unsupported(format!("decoder block `{other}`"))),
            };
            let reduction = param(block, "multiplier", 1);
            let residual = block.name == "compress_all" && block.bool("residual").unwrap_or(false);
            up_blocks
                .push(UpBlock::Upsample(DepthToSpaceUpsample::new(channels, stride, residual, reduction, padding)?));
            channels /= reduction;
        }
        let p = config.patch_size as i32;
        let out = config.out_channels as i32 * p * p;
        Ok(Self {
            conv_in,
            up_blocks,
            conv_out: CausalConv3d::new(channels, out, padding)?,
            timestep_scale_multiplier: Param::new(cond.then(|| Array::from_f32(1000.0))),
            last_time_embedder: cond.then(|| TimestepEmbedder::new(2 * channels)).transpose()?,
            last_scale_shift_table: Param::new(cond.then(|| Array::zeros::<f32>(&[2, channels])).transpose()?),
            statistics: None,
            causal: config.causal_decoder,
            patch_size: p,
        })
    }

    /// Builds the decoder from `config.vae` and loads `vae.decoder.*` and the shared per-channel statistics.
    pub fn from_checkpoint(checkpoint: &Checkpoint, dtype: Dtype) -> Result<Self> {
        let mut decoder = Self::new(&checkpoint.config()?.vae()?)?;
        let options = LoadOptions { dtype: Some(dtype), ..Default::default() };
        checkpoint.load_into(&mut decoder, &format!("{}decoder.", prefix::VIDEO_VAE), &options)?;
        decoder.statistics = Some(PerChannelStatistics::load(checkpoint, prefix::VIDEO_VAE, dtype)?);
        Ok(decoder)
    }

    pub fn dtype(&self) -> Dtype {
        self.conv_in.conv.weight.dtype()
    }

    /// Decodes a normalised latent (B, C, F', H', W') to RGB (B, F, H, W, 3) in [-1, 1].
    pub fn forward(&self, latent: &Array, options: &DecodeOptions) -> Result<Array> {
        let statistics =
            self.statistics.as_ref().ok_or_else(|| VaeError::Input("decoder statistics not loaded".into()))?;
        let mut z = to_channels_last(latent)?.as_dtype(self.dtype())?;
        let multiplier = (*self.timestep_scale_multiplier).as_ref();
        if multiplier.is_some() && options.noise_scale != 0.0 {
            let noise =
                random::normal::<f32>(z.shape(), None, None, &random::key(options.seed)?)?.as_dtype(z.dtype())?;
            let s = Array::from_f32(options.noise_scale);
            z = noise.multiply(&s)?.add(z.multiply(Array::from_f32(1.0 - options.noise_scale))?)?;
        }
        let z = statistics.un_normalize(&z)?;
        let batch = z.shape()[0];
        let t = multiplier
            .map(|m| {
                Array::full::<f32>(&[batch], Array::from_f32(options.timestep))?.multiply(m.as_dtype(Dtype::Float32)?)
            })
            .transpose()?;

        let mut h = self.conv_in.forward(&z, self.causal)?;
        for block in &self.up_blocks {
            h = match block {
                UpBlock::Res(res) => res.forward(&h, self.causal, t.as_ref())?,
                UpBlock::Upsample(up) => up.forward(&h, self.causal)?,
            };
        }
        h = pixel_norm(&h, 1e-8)?;
        if let (Some(embedder), Some(table), Some(t)) = (&self.last_time_embedder, &*self.last_scale_shift_table, &t) {
            let c = table.shape()[1];
            let ada = table.add(embedder.forward(t, h.dtype())?.reshape(&[batch, 2, c])?)?;
            h = modulate(&h, &ada, 0, 1)?;
        }
        let h = self.conv_out.forward(&nn::silu(&h)?, self.causal)?;
        unpatchify(&h, self.patch_size)
    }
}

/// ltx-core `decode_video`'s conversion: ((x + 1) / 2).clamp(0, 1) · 255 truncated to u8 (row-major).
pub fn to_u8(video: &Array) -> Result<Array> {
    let x = video.as_dtype(Dtype::Float32)?.add(Array::from_f32(1.0))?.multiply(Array::from_f32(0.5))?;
    let x = ops::clip(&x, (0.0f32, 1.0f32))?.multiply(Array::from_f32(255.0))?;
    Ok(x.as_dtype(Dtype::Uint8)?.contiguous()?)
}

/// Frames (B, F, H, W, 3) in [-1, 1] as RGB24 bytes, frame-major (what the MP4 writer takes).
pub fn to_rgb24(video: &Array) -> Result<Vec<u8>> {
    let frames = to_u8(video)?;
    frames.eval()?;
    let bytes = frames.try_as_slice::<u8>().map_err(|e| VaeError::Input(format!("frames not readable: {e:?}")))?;
    Ok(bytes.to_vec())
}
