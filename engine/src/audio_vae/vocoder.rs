//! The vocoders of `vocoder.py`: stereo mel (B, 2, T, 64) -> waveform (B, 2, samples).
//!
//! [`Generator`] is ltx-core's `Vocoder` class: `conv_pre`, per stage a ConvTranspose1d upsampling followed
//! by the mean of its residual blocks, `act_post`, `conv_post`, the final activation. With `resblock` "1" it
//! is LTX-2's HiFi-GAN (LeakyReLU 0.1 before each upsampling, `nn.LeakyReLU()` (slope 0.01) before
//! `conv_post`, tanh); with "AMP1" a BigVGAN v2 generator (anti-aliased SnakeBeta AMP blocks and `act_post`,
//! see [`super::bigvgan`]).
use mlx_rs::{macros::ModuleParameters, nn, ops, Array, Dtype};

use super::bigvgan::{Activation1d, AmpBlock1};
use crate::{
    config::VocoderConfig,
    video_vae::{convolution::Conv, module_enum, Result, VaeError},
};

const LRELU_SLOPE: f32 = 0.1;
/// `torch.nn.LeakyReLU()` default slope, used once before `conv_post` (HiFi-GAN).
const FINAL_LRELU_SLOPE: f32 = 0.01;
/// Input channels of every production generator: 2 stereo channels × 64 mel bins (fixed in ltx-core).
pub const MEL_CHANNELS: i32 = 128;

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

#[derive(Debug, Clone)]
pub enum ResBlock {
    Hifi(ResBlock1),
    Amp(AmpBlock1),
}
module_enum!(ResBlock { Hifi, Amp });

impl ResBlock {
    fn forward(&self, x: &Array) -> Result<Array> {
        match self {
            Self::Hifi(b) => b.forward(x),
            Self::Amp(b) => b.forward(x),
        }
    }
}

/// What follows `conv_post` (`apply_final_activation`, `use_tanh_at_final`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalActivation {
    Tanh,
    Clamp,
    None,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct Generator {
    #[param]
    pub conv_pre: Conv,
    /// ConvTranspose1d layers (PyTorch (in, out, k), moved to MLX (out, k, in) at load).
    #[param]
    pub ups: Vec<Conv>,
    #[param]
    pub resblocks: Vec<ResBlock>,
    /// BigVGAN's `Activation1d(SnakeBeta)`; HiFi-GAN has a parameter-free LeakyReLU there.
    #[param]
    pub act_post: Option<Activation1d>,
    #[param]
    pub conv_post: Conv,
    pub rates: Vec<i32>,
    pub final_activation: FinalActivation,
    pub sample_rate: u32,
}

impl Generator {
    /// `_vocoder_from_config(config, apply_final_activation)`: `resblock` "1" (HiFi-GAN) or "AMP1" with
    /// `activation` "snakebeta" (BigVGAN v2), stereo.
    pub fn new(config: &VocoderConfig, apply_final_activation: bool) -> Result<Self> {
        let amp = match (config.resblock.as_str(), config.activation.as_str()) {
            ("1", _) => false,
            ("AMP1", "snakebeta") => true,
            (resblock, activation) => {
                return Err(VaeError::Unsupported(format!("vocoder resblock `{resblock}` / activation `{activation}`")))
            }
        };
        let stages = config.upsample_rates.len();
        let initial = config.upsample_initial_channel as i32;
        let kernels = &config.resblock_kernel_sizes;
        // Each upsampling halves the channels: at most 8 of them, and every stage keeps a channel.
        if !config.stereo
            || stages != config.upsample_kernel_sizes.len()
            || !(1..=8).contains(&stages)
            || initial >> stages < 1
            || kernels.is_empty()
            || kernels.len() != config.resblock_dilation_sizes.len()
            || kernels.iter().any(|&k| k % 2 == 0)
            || config.upsample_rates.iter().zip(&config.upsample_kernel_sizes).any(|(&r, &k)| r == 0 || k < r)
        {
            return Err(VaeError::Unsupported(format!(
                "vocoder (stereo {}) of {stages} upsamplings {:?} / kernels {:?} from {initial} channels with \
                 resblock kernels {kernels:?}, dilations {:?}",
                config.stereo, config.upsample_rates, config.upsample_kernel_sizes, config.resblock_dilation_sizes
            )));
        }
        let width = |i: usize| initial >> i;
        let mut ups = Vec::new();
        let mut resblocks = Vec::new();
        for (i, &k) in config.upsample_kernel_sizes.iter().enumerate() {
            ups.push(Conv::new(width(i), width(i + 1), &[k as i32], true)?);
            for (&kernel, dilations) in kernels.iter().zip(&config.resblock_dilation_sizes) {
                resblocks.push(match amp {
                    true => ResBlock::Amp(AmpBlock1::new(width(i + 1), kernel as i32, dilations)?),
                    false => ResBlock::Hifi(ResBlock1::new(width(i + 1), kernel as i32, dilations)?),
                });
            }
        }
        let last = width(stages);
        let final_activation = match (apply_final_activation, config.use_tanh_at_final) {
            (false, _) => FinalActivation::None,
            (true, true) => FinalActivation::Tanh,
            (true, false) => FinalActivation::Clamp,
        };
        Ok(Self {
            conv_pre: Conv::new(MEL_CHANNELS, initial, &[7], true)?,
            ups,
            resblocks,
            act_post: amp.then(|| Activation1d::new(last)).transpose()?,
            conv_post: Conv::new(last, 2, &[7], config.use_bias_at_final)?,
            rates: config.upsample_rates.iter().map(|&r| r as i32).collect(),
            final_activation,
            sample_rate: config.output_sampling_rate,
        })
    }

    pub fn dtype(&self) -> Dtype {
        self.conv_pre.weight.dtype()
    }

    /// Mel (B, 2, T, mel) -> waveform channels-last (B, T·∏rates, 2).
    pub fn forward_channels_last(&self, mel: &Array) -> Result<Array> {
        let &[b, s, t, m] = mel.shape() else {
            return Err(VaeError::Input(format!("vocoder input must be (B, 2, T, mel), got {:?}", mel.shape())));
        };
        // "b s c t -> b (s c) t" on the transposed mel, channels-last: (B, T, s·mel)
        let x = mel.as_dtype(self.dtype())?.transpose_axes(&[0, 2, 1, 3])?.reshape(&[b, t, s * m])?;
        let mut x = same(&self.conv_pre, &x, 1)?;
        let per_stage = self.resblocks.len() / self.ups.len().max(1);
        let amp = self.act_post.is_some();
        for (i, (up, &rate)) in self.ups.iter().zip(&self.rates).enumerate() {
            let k = up.weight.shape()[1];
            let input = if amp { x } else { nn::leaky_relu(&x, LRELU_SLOPE)? };
            let h = ops::conv_transpose1d(&input, &*up.weight, rate, (k - rate) / 2, None, None, None)?;
            x = match &*up.bias {
                Some(bias) => h.add(bias)?,
                None => h,
            };
            let blocks = self.resblocks.get(i * per_stage..(i + 1) * per_stage).unwrap_or_default();
            let sum = blocks.iter().try_fold(None::<Array>, |acc, block| -> Result<_> {
                let y = block.forward(&x)?;
                Ok(Some(match acc {
                    Some(acc) => acc.add(&y)?,
                    None => y,
                }))
            })?;
            x = sum.map_or(Ok(x.clone()), |s| s.divide(Array::from_f32(per_stage as f32)))?;
        }
        let x = match &self.act_post {
            Some(act) => act.forward(&x)?,
            None => nn::leaky_relu(&x, FINAL_LRELU_SLOPE)?,
        };
        let x = same(&self.conv_post, &x, 1)?;
        Ok(match self.final_activation {
            FinalActivation::Tanh => ops::tanh(&x)?,
            FinalActivation::Clamp => ops::clip(&x, (-1.0f32, 1.0f32))?,
            FinalActivation::None => x,
        })
    }

    /// Mel (B, 2, T, mel) -> waveform (B, 2, T·∏rates).
    pub fn forward(&self, mel: &Array) -> Result<Array> {
        Ok(self.forward_channels_last(mel)?.transpose_axes(&[0, 2, 1])?)
    }
}
