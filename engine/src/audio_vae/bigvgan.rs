//! BigVGAN v2 pieces of ltx-core's `vocoder.py` (LTX-2.3): the `SnakeBeta` activation, the anti-aliased
//! `Activation1d` (×2 kaiser-sinc upsampling, the activation, ×2 kaiser-sinc low-pass downsampling) and the
//! `AMPBlock1` residual block. Channels-last: (B, T, C). The kaiser-sinc filters are checkpoint buffers
//! (`upsample.filter`, `downsample.lowpass.filter`, (1, 1, 12)) and are loaded, as ltx-core loads them.
use mlx_rs::{
    macros::ModuleParameters,
    module::Param,
    ops::{self, PadMode},
    Array,
};

use crate::video_vae::{convolution::Conv, dims, ops::slice_axis, Result, VaeError};

/// `Activation1d`'s resampling ratio and filter length (ltx-core defaults, the only ones it builds).
const RATIO: i32 = 2;
const TAPS: i32 = 12;

/// `SnakeBeta` with log-scale parameters: x + sin²(x·e^α) / (e^β + 1e-9), per channel.
#[derive(Debug, Clone, ModuleParameters)]
pub struct SnakeBeta {
    #[param]
    pub alpha: Param<Array>,
    #[param]
    pub beta: Param<Array>,
}

impl SnakeBeta {
    pub fn new(channels: i32) -> Result<Self> {
        Ok(Self {
            alpha: Param::new(Array::zeros::<f32>(&[channels])?),
            beta: Param::new(Array::zeros::<f32>(&[channels])?),
        })
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        let alpha = self.alpha.exp()?;
        let inverse_beta = self.beta.exp()?.add(Array::from_f32(1e-9))?.reciprocal()?;
        Ok(x.add(x.multiply(&alpha)?.sin()?.square()?.multiply(&inverse_beta)?)?)
    }
}

/// A fixed FIR filter (1, 1, K) applied to every channel of (B, T, C): the grouped convolution's weight.
fn depthwise(filter: &Array, channels: i32) -> Result<Array> {
    let taps = filter.size() as i32;
    Ok(ops::broadcast_to(filter.reshape(&[1, taps, 1])?, &[channels, taps, 1])?)
}

/// `x` padded along time with copies of its first / last sample (`F.pad(..., mode="replicate")`).
pub fn replicate_pad(x: &Array, left: i32, right: i32) -> Result<Array> {
    Ok(ops::pad(x, &[(0, 0), (left, right), (0, 0)][..], None, PadMode::Edge)?)
}

/// `ratio`× upsampling by a transposed depthwise convolution with `filter`, after replicate-padding `pad`
/// samples each side, times `ratio`, cropped by `crops` (left, right): ltx-core's `UpSample1d`.
pub fn upsample(x: &Array, filter: &Array, ratio: i32, pad: i32, crops: (i32, i32)) -> Result<Array> {
    let [_, _, channels] = dims(x, "the signal")?;
    let padded = replicate_pad(x, pad, pad)?;
    let y = ops::conv_transpose1d(&padded, depthwise(filter, channels)?, ratio, 0, 1, 0, channels)?;
    let length = y.shape()[1];
    slice_axis(&y.multiply(Array::from_f32(ratio as f32))?, 1, crops.0, length - crops.1)
}

/// `UpSample1d(2, 12)` with the kaiser-sinc filter (key `filter`).
#[derive(Debug, Clone, ModuleParameters)]
pub struct UpSample1d {
    #[param]
    pub filter: Param<Array>,
}

impl UpSample1d {
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let pad = TAPS / RATIO - 1;
        let crops = (pad * RATIO + (TAPS - RATIO) / 2, pad * RATIO + (TAPS - RATIO + 1) / 2);
        upsample(x, &self.filter, RATIO, pad, crops)
    }
}

/// `LowPassFilter1d` (stride 2, replicate padding; key `filter`).
#[derive(Debug, Clone, ModuleParameters)]
pub struct LowPassFilter1d {
    #[param]
    pub filter: Param<Array>,
}

/// `DownSample1d(2, 12)`: its `lowpass` at stride 2.
#[derive(Debug, Clone, ModuleParameters)]
pub struct DownSample1d {
    #[param]
    pub lowpass: LowPassFilter1d,
}

impl DownSample1d {
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let [_, _, channels] = dims(x, "the signal")?;
        let even = i32::from(TAPS % 2 == 0);
        let padded = replicate_pad(x, TAPS / 2 - even, TAPS / 2)?;
        let weight = depthwise(&self.lowpass.filter, channels)?;
        Ok(ops::conv1d(&padded, weight, RATIO, 0, 1, channels)?)
    }
}

/// `Activation1d(SnakeBeta)`: upsample ×2, activation, downsample ×2 (length kept).
#[derive(Debug, Clone, ModuleParameters)]
pub struct Activation1d {
    #[param]
    pub act: SnakeBeta,
    #[param]
    pub upsample: UpSample1d,
    #[param]
    pub downsample: DownSample1d,
}

impl Activation1d {
    pub fn new(channels: i32) -> Result<Self> {
        let filter = || -> Result<Param<Array>> { Ok(Param::new(Array::zeros::<f32>(&[1, 1, TAPS])?)) };
        Ok(Self {
            act: SnakeBeta::new(channels)?,
            upsample: UpSample1d { filter: filter()? },
            downsample: DownSample1d { lowpass: LowPassFilter1d { filter: filter()? } },
        })
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        self.downsample.forward(&self.act.forward(&self.upsample.forward(x)?)?)
    }
}

/// `AMPBlock1(channels, kernel, dilations)` with SnakeBeta: for each dilation d,
/// x += conv2(act2(conv1_d(act1(x)))), both convolutions length-preserving.
#[derive(Debug, Clone, ModuleParameters)]
pub struct AmpBlock1 {
    #[param]
    pub convs1: Vec<Conv>,
    #[param]
    pub convs2: Vec<Conv>,
    #[param]
    pub acts1: Vec<Activation1d>,
    #[param]
    pub acts2: Vec<Activation1d>,
    pub dilations: Vec<i32>,
}

impl AmpBlock1 {
    pub fn new(channels: i32, kernel: i32, dilations: &[u32]) -> Result<Self> {
        if dilations.len() != 3 || kernel % 2 == 0 || dilations.contains(&0) {
            return Err(VaeError::Unsupported(format!("AMP block of kernel {kernel}, dilations {dilations:?}")));
        }
        let convs = || (0..3).map(|_| Conv::new(channels, channels, &[kernel], true)).collect::<Result<Vec<_>>>();
        let acts = || (0..3).map(|_| Activation1d::new(channels)).collect::<Result<Vec<_>>>();
        Ok(Self {
            convs1: convs()?,
            convs2: convs()?,
            acts1: acts()?,
            acts2: acts()?,
            dilations: dilations.iter().map(|&d| d as i32).collect(),
        })
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        let kernel = |c: &Conv| c.weight.shape()[1];
        let convs = self.convs1.iter().zip(&self.convs2);
        let acts = self.acts1.iter().zip(&self.acts2);
        let mut x = x.clone();
        for (((c1, c2), (a1, a2)), &d) in convs.zip(acts).zip(&self.dilations) {
            let h = c1.forward_with(&a1.forward(&x)?, &[d * (kernel(c1) - 1) / 2], &[d])?;
            let h = c2.forward_with(&a2.forward(&h)?, &[(kernel(c2) - 1) / 2], &[1])?;
            x = x.add(&h)?;
        }
        Ok(x)
    }
}
