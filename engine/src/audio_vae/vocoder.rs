//! HiFi-GAN vocoder (`vocoder.py`, `Vocoder` with `ResBlock1`): stereo mel (B, 2, T, 64) -> waveform
//! (B, 2, T·∏rates). LeakyReLU 0.1 inside, `nn.LeakyReLU()` (slope 0.01) before `conv_post`, tanh.
use mlx_rs::{macros::ModuleParameters, nn, ops, Array, Dtype};

use crate::{
    checkpoint::{prefix, Checkpoint, LoadOptions},
    config::VocoderConfig,
    video_vae::{convolution::Conv, Result, VaeError},
};

const LRELU_SLOPE: f32 = 0.1;
/// `torch.nn.LeakyReLU()` default slope, used once before `conv_post`.
const FINAL_LRELU_SLOPE: f32 = 0.01;

/// "same"-padded stride-1 Conv1d on (B, T, C).
fn same(conv: &Conv, x: &Array, dilation: i32) -> Result<Array> {
    let k = conv.weight.shape()[1];
    conv.forward_with(x, &[dilation * (k - 1) / 2], &[dilation])
}

/// `ResBlock1`: for each dilation, x += conv2(lrelu(conv1_d(lrelu(x)))).
#[derive(Debug, Clone, ModuleParameters)]
pub struct ResBlock1 {
    #[param]
    pub convs1: Vec<Conv>,
    #[param]
    pub convs2: Vec<Conv>,
    pub dilations: Vec<i32>,
}

impl ResBlock1 {
    fn new(channels: i32, kernel: i32, dilations: &[u32]) -> Result<Self> {
        let convs =
            || dilations.iter().map(|_| Conv::new(channels, channels, &[kernel], true)).collect::<Result<Vec<_>>>();
        Ok(Self { convs1: convs()?, convs2: convs()?, dilations: dilations.iter().map(|&d| d as i32).collect() })
    }

    fn forward(&self, x: &Array) -> Result<Array> {
        let mut x = x.clone();
        for ((conv1, conv2), &d) in self.convs1.iter().zip(&self.convs2).zip(&self.dilations) {
            let h = same(conv1, &nn::leaky_relu(&x, LRELU_SLOPE)?, d)?;
            x = x.add(same(conv2, &nn::leaky_relu(&h, LRELU_SLOPE)?, 1)?)?;
        }
        Ok(x)
    }
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct Vocoder {
    #[param]
    pub conv_pre: Conv,
    /// ConvTranspose1d layers (PyTorch (in, out, k), moved to MLX (out, k, in) at load).
    #[param]
    pub ups: Vec<Conv>,
    #[param]
    pub resblocks: Vec<ResBlock1>,
    #[param]
    pub conv_post: Conv,
    pub rates: Vec<i32>,
    pub tanh: bool,
    pub sample_rate: u32,
}

impl Vocoder {
    /// `_vocoder_from_config`; only LTX-2's HiFi-GAN (`resblock` "1", stereo).
    pub fn new(config: &VocoderConfig) -> Result<Self> {
        if config.resblock != "1" || !config.stereo || config.upsample_rates.len() != config.upsample_kernel_sizes.len()
        {
            return Err(VaeError::Unsupported(format!(
                "vocoder resblock `{}`, stereo {}",
                config.resblock, config.stereo
            )));
        }
        // Each upsampling halves the channels: at most 8 of them, and every stage keeps a channel.
        let stages = config.upsample_rates.len();
        let initial = config.upsample_initial_channel as i32;
        if !(1..=8).contains(&stages) || initial >> stages < 1 || config.resblock_kernel_sizes.is_empty() {
            return Err(VaeError::Unsupported(format!(
                "vocoder of {stages} upsamplings from {initial} channels with {} resblock kernels",
                config.resblock_kernel_sizes.len()
            )));
        }
        let width = |i: usize| initial >> i;
        let mut ups = Vec::new();
        let mut resblocks = Vec::new();
        for (i, &k) in config.upsample_kernel_sizes.iter().enumerate() {
            ups.push(Conv::new(width(i), width(i + 1), &[k as i32], true)?);
            for (&kernel, dilations) in config.resblock_kernel_sizes.iter().zip(&config.resblock_dilation_sizes) {
                resblocks.push(ResBlock1::new(width(i + 1), kernel as i32, dilations)?);
            }
        }
        let last = width(config.upsample_rates.len());
        Ok(Self {
            conv_pre: Conv::new(128, initial, &[7], true)?,
            ups,
            resblocks,
            conv_post: Conv::new(last, 2, &[7], config.use_bias_at_final)?,
            rates: config.upsample_rates.iter().map(|&r| r as i32).collect(),
            tanh: config.use_tanh_at_final,
            sample_rate: config.output_sampling_rate,
        })
    }

    /// Builds from `config.vocoder` and loads `vocoder.*`.
    pub fn from_checkpoint(checkpoint: &Checkpoint, dtype: Dtype) -> Result<Self> {
        let mut vocoder = Self::new(&checkpoint.config()?.vocoder()?)?;
        let options = LoadOptions {
            dtype: Some(dtype),
            transposed_conv: &|key: &str| key.starts_with("ups."),
            ..Default::default()
        };
        checkpoint.load_into(&mut vocoder, prefix::VOCODER, &options)?;
        Ok(vocoder)
    }

    /// Mel (B, 2, T, mel) -> waveform (B, 2, T·∏rates).
    pub fn forward(&self, mel: &Array) -> Result<Array> {
        let &[b, s, t, m] = mel.shape() else {
            return Err(VaeError::Input(format!("vocoder input must be (B, 2, T, mel), got {:?}", mel.shape())));
        };
        // "b s c t -> b (s c) t" on the transposed mel, channels-last: (B, T, s·mel)
        let x = mel.as_dtype(self.conv_pre.weight.dtype())?.transpose_axes(&[0, 2, 1, 3])?.reshape(&[b, t, s * m])?;
        let mut x = same(&self.conv_pre, &x, 1)?;
        let per_stage = self.resblocks.len() / self.ups.len();
        for (i, (up, &rate)) in self.ups.iter().zip(&self.rates).enumerate() {
            let k = up.weight.shape()[1];
            let h = ops::conv_transpose1d(
                nn::leaky_relu(&x, LRELU_SLOPE)?,
                &*up.weight,
                rate,
                (k - rate) / 2,
                None,
                None,
                None,
            )?;
            x = match &*up.bias {
                Some(bias) => h.add(bias)?,
                None => h,
            };
            let blocks = &self.resblocks[i * per_stage..(i + 1) * per_stage];
            let sum = blocks.iter().try_fold(None::<Array>, |acc, block| -> Result<_> {
                let y = block.forward(&x)?;
                Ok(Some(match acc {
                    Some(acc) => acc.add(&y)?,
                    None => y,
                }))
            })?;
            x = sum.map_or(Ok(x.clone()), |s| s.divide(Array::from_f32(per_stage as f32)))?;
        }
        let x = same(&self.conv_post, &nn::leaky_relu(&x, FINAL_LRELU_SLOPE)?, 1)?;
        let x = if self.tanh { ops::tanh(&x)? } else { ops::clip(&x, (-1.0f32, 1.0f32))? };
        Ok(x.transpose_axes(&[0, 2, 1])?)
    }
}
