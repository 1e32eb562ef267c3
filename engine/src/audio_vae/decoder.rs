//! `AudioDecoder` (`audio_vae.py`, `resnet.py`, `upsample.py`, `causal_conv_2d.py`): causal 2-D convs
//! over (time, mel), PixelNorm resnet blocks, no attention, nearest ×2 upsampling that drops the first
//! time row, so T latent frames become 4T-3 mel frames. Channels-last (B, T, F, C) inside.
use mlx_rs::{macros::ModuleParameters, nn, ops, Array, Dtype};

use crate::{
    checkpoint::{prefix, Checkpoint, LoadOptions},
    config::AudioVaeConfig,
    video_vae::{
        convolution::Conv,
        ops::{pixel_norm, slice_axis, PerChannelStatistics},
        Result, VaeError,
    },
};

/// `build_normalization_layer(.., NormType.PIXEL)` eps.
const PIXEL_NORM_EPS: f32 = 1e-6;
/// Latent -> mel time factor (`LATENT_DOWNSAMPLE_FACTOR`).
const TIME_FACTOR: i32 = 4;
/// The most resolution levels (`ch_mult` entries) a config may give: each halves time and mel.
const MAX_LEVELS: usize = 8;

/// `CausalConv2d` with causality on the height (time) axis: pad k-1 rows on top, (k-1)/2 mel bins
/// on each side, zeros.
#[derive(Debug, Clone, ModuleParameters)]
pub struct CausalConv2d {
    #[param]
    pub conv: Conv,
}

impl CausalConv2d {
    fn new(inputs: i32, outputs: i32, kernel: i32) -> Result<Self> {
        Ok(Self { conv: Conv::new(inputs, outputs, &[kernel, kernel], true)? })
    }

    fn forward(&self, x: &Array) -> Result<Array> {
        let k = self.conv.weight.shape()[1];
        let x = ops::pad(x, &[(0, 0), (k - 1, 0), ((k - 1) / 2, (k - 1) - (k - 1) / 2), (0, 0)], None, None)?;
        self.conv.forward(&x)
    }
}

/// `ResnetBlock` without timestep embedding: norm -> SiLU -> conv, twice, plus the (projected) input.
#[derive(Debug, Clone, ModuleParameters)]
pub struct ResnetBlock {
    #[param]
    pub conv1: CausalConv2d,
    #[param]
    pub conv2: CausalConv2d,
    #[param]
    pub nin_shortcut: Option<CausalConv2d>,
}

impl ResnetBlock {
    fn new(inputs: i32, outputs: i32) -> Result<Self> {
        Ok(Self {
            conv1: CausalConv2d::new(inputs, outputs, 3)?,
            conv2: CausalConv2d::new(outputs, outputs, 3)?,
            nin_shortcut: (inputs != outputs).then(|| CausalConv2d::new(inputs, outputs, 1)).transpose()?,
        })
    }

    fn forward(&self, x: &Array) -> Result<Array> {
        let h = self.conv1.forward(&nn::silu(pixel_norm(x, PIXEL_NORM_EPS)?)?)?;
        let h = self.conv2.forward(&nn::silu(pixel_norm(&h, PIXEL_NORM_EPS)?)?)?;
        let x = match &self.nin_shortcut {
            Some(shortcut) => shortcut.forward(x)?,
            None => x.clone(),
        };
        Ok(x.add(&h)?)
    }
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct Mid {
    #[param]
    pub block_1: ResnetBlock,
    #[param]
    pub block_2: ResnetBlock,
}

/// `Upsample(with_conv=True)`: nearest ×2 on time and mel, causal conv, drop the first time row.
#[derive(Debug, Clone, ModuleParameters)]
pub struct Upsample {
    #[param]
    pub conv: CausalConv2d,
}

impl Upsample {
    fn forward(&self, x: &Array) -> Result<Array> {
        let [b, t, f, c] = crate::video_vae::dims(x, "the mel features")?;
        let x =
            ops::broadcast_to(x.reshape(&[b, t, 1, f, 1, c])?, &[b, t, 2, f, 2, c])?.reshape(&[b, 2 * t, 2 * f, c])?;
        let x = self.conv.forward(&x)?;
        slice_axis(&x, 1, 1, 2 * t)
    }
}

/// One resolution level of the upsampling path (`up.{level}`).
#[derive(Debug, Clone, ModuleParameters)]
pub struct UpStage {
    #[param]
    pub block: Vec<ResnetBlock>,
    #[param]
    pub upsample: Option<Upsample>,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct AudioDecoder {
    #[param]
    pub conv_in: CausalConv2d,
    #[param]
    pub mid: Mid,
    #[param]
    pub up: Vec<UpStage>,
    #[param]
    pub conv_out: CausalConv2d,
    pub statistics: Option<PerChannelStatistics>,
    pub mel_bins: Option<i32>,
    pub out_channels: i32,
}

impl AudioDecoder {
    /// `AudioDecoderConfigurator`; only the LTX-2 layout (pixel norm, causal in time, no attention).
    pub fn new(config: &AudioVaeConfig) -> Result<Self> {
        let dd = config.ddconfig();
        let levels = dd.ch_mult.len();
        if !(1..=MAX_LEVELS).contains(&levels) {
            return Err(VaeError::Unsupported(format!("audio decoder of {levels} levels (1 to {MAX_LEVELS})")));
        }
        let lowest_res = dd.resolution >> (levels - 1);
        let attention = dd.mid_block_add_attention
            || (0..levels).any(|level| dd.attn_resolutions.contains(&(lowest_res << (levels - 1 - level))));
        if dd.norm_type != "pixel" || dd.causality_axis != "height" || attention {
            return Err(VaeError::Unsupported(format!(
                "audio decoder norm `{}`, causality `{}`, attention {attention}",
                dd.norm_type, dd.causality_axis
            )));
        }
        let ch = dd.ch as i32;
        let mut block_in = ch * dd.ch_mult[levels - 1] as i32;
        let mut up: Vec<UpStage> = Vec::with_capacity(levels);
        for level in (0..levels).rev() {
            let block_out = ch * dd.ch_mult[level] as i32;
            let mut block = Vec::new();
            for _ in 0..=dd.num_res_blocks {
                block.push(ResnetBlock::new(block_in, block_out)?);
                block_in = block_out;
            }
            let upsample = (level != 0).then(|| CausalConv2d::new(block_in, block_in, 3)).transpose()?;
            up.insert(0, UpStage { block, upsample: upsample.map(|conv| Upsample { conv }) });
        }
        let base = ch * dd.ch_mult[levels - 1] as i32;
        Ok(Self {
            conv_in: CausalConv2d::new(dd.z_channels as i32, base, 3)?,
            mid: Mid { block_1: ResnetBlock::new(base, base)?, block_2: ResnetBlock::new(base, base)? },
            up,
            conv_out: CausalConv2d::new(block_in, dd.out_ch as i32, 3)?,
            statistics: None,
            mel_bins: config.mel_bins().map(|m| m as i32),
            out_channels: dd.out_ch as i32,
        })
    }

    /// Builds from `config.audio_vae` and loads `audio_vae.decoder.*` and the per-channel statistics.
    pub fn from_checkpoint(checkpoint: &Checkpoint, dtype: Dtype) -> Result<Self> {
        let mut decoder = Self::new(&checkpoint.config()?.audio_vae()?)?;
        let options = LoadOptions { dtype: Some(dtype), ..Default::default() };
        checkpoint.load_into(&mut decoder, &format!("{}decoder.", prefix::AUDIO_VAE), &options)?;
        decoder.statistics = Some(PerChannelStatistics::load(checkpoint, prefix::AUDIO_VAE, dtype)?);
        Ok(decoder)
    }

    /// Normalised latent (B, C, T, F) -> mel (B, out_ch, max(4T-3, 1), mel_bins).
    pub fn forward(&self, latent: &Array) -> Result<Array> {
        let statistics =
            self.statistics.as_ref().ok_or_else(|| VaeError::Input("audio statistics not loaded".into()))?;
        let &[b, c, t, f] = latent.shape() else {
            return Err(VaeError::Input(format!("audio latent must be (B, C, T, F), got {:?}", latent.shape())));
        };
        let dtype = self.conv_in.conv.weight.dtype();
        // patchify "b c t f -> b t (c f)", un-normalise, back to channels-last (B, T, F, C)
        let z = latent.as_dtype(dtype)?.transpose_axes(&[0, 2, 1, 3])?.reshape(&[b, t, c * f])?;
        let z = statistics.un_normalize(&z)?.reshape(&[b, t, c, f])?.transpose_axes(&[0, 1, 3, 2])?;

        let h = self.conv_in.forward(&z)?;
        let mut h = self.mid.block_2.forward(&self.mid.block_1.forward(&h)?)?;
        for stage in self.up.iter().rev() {
            h = stage.block.iter().try_fold(h, |h, block| block.forward(&h))?;
            if let Some(upsample) = &stage.upsample {
                h = upsample.forward(&h)?;
            }
        }
        let h = self.conv_out.forward(&nn::silu(pixel_norm(&h, PIXEL_NORM_EPS)?)?)?;

        // `_adjust_output_shape`: crop, then zero-pad to the target frames and mel bins.
        let (frames, bins) = ((t * TIME_FACTOR - (TIME_FACTOR - 1)).max(1), self.mel_bins.unwrap_or(f));
        let [_, ht, hf, _] = crate::video_vae::dims(&h, "the mel")?;
        let h = slice_axis(&slice_axis(&h, 1, 0, ht.min(frames))?, 2, 0, hf.min(bins))?;
        let h = ops::pad(&h, &[(0, 0), (0, frames - ht.min(frames)), (0, bins - hf.min(bins)), (0, 0)], None, None)?;
        Ok(h.transpose_axes(&[0, 3, 1, 2])?)
    }
}
