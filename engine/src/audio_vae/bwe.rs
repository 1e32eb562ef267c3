//! `VocoderWithBWE` of ltx-core's `vocoder.py` (LTX-2.3): the BigVGAN v2 `vocoder` renders the waveform at
//! the input rate (16 kHz, clamped); the bandwidth extension pads it to whole hops, takes its causal
//! log-mel ([`MelStft`]), runs the second generator `bwe_generator` on it (no final activation) and adds
//! that residual to a Hann-windowed-sinc upsampled copy of the waveform; the sum is clamped to [-1, 1] and
//! cut to input length × ratio (48 kHz).
use mlx_rs::{macros::ModuleParameters, ops, Array};

use super::{
    bigvgan::upsample,
    mel::MelStft,
    vocoder::{Generator, MEL_CHANNELS},
};
use crate::{
    config::BweSection,
    video_vae::{ops::slice_axis, Result, VaeError},
};

/// `UpSample1d(ratio, window_type="hann")`: torchaudio-style resampling with a Hann-windowed sinc
/// (rolloff 0.99, 6 zero crossings), computed here as ltx-core computes it (it is not in the checkpoint).
#[derive(Debug, Clone)]
pub struct HannUpsample {
    pub ratio: i32,
    pub filter: Array,
    width: i32,
}

impl HannUpsample {
    const ROLLOFF: f64 = 0.99;
    const ZERO_CROSSINGS: f64 = 6.0;

    pub fn new(ratio: i32) -> Result<Self> {
        if !(1..=64).contains(&ratio) {
            return Err(VaeError::Unsupported(format!("bandwidth extension ratio {ratio}")));
        }
        let width = (Self::ZERO_CROSSINGS / Self::ROLLOFF).ceil() as i32;
        let taps = 2 * width * ratio + 1;
        let sinc = |t: f64| if t == 0.0 { 1.0 } else { (std::f64::consts::PI * t).sin() / (std::f64::consts::PI * t) };
        let filter: Vec<f32> = (0..taps)
            .map(|i| {
                let t = (i as f64 / ratio as f64 - width as f64) * Self::ROLLOFF;
                let clamped = t.clamp(-Self::ZERO_CROSSINGS, Self::ZERO_CROSSINGS);
                let window = (clamped * std::f64::consts::PI / Self::ZERO_CROSSINGS / 2.0).cos().powi(2);
                (sinc(t) * window * Self::ROLLOFF / ratio as f64) as f32
            })
            .collect();
        Ok(Self { ratio, filter: Array::from_slice(&filter, &[1, 1, taps]), width })
    }

    /// (B, T, C) -> (B, ratio·T, C).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let taps = self.filter.shape()[2];
        let filter = self.filter.as_dtype(x.dtype())?;
        upsample(x, &filter, self.ratio, self.width, (2 * self.width * self.ratio, taps - self.ratio))
    }
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct VocoderWithBwe {
    #[param]
    pub vocoder: Generator,
    #[param]
    pub bwe_generator: Generator,
    #[param]
    pub mel_stft: MelStft,
    pub resampler: HannUpsample,
    pub input_sampling_rate: u32,
    pub output_sampling_rate: u32,
    pub hop: i32,
}

impl VocoderWithBwe {
    /// ltx-core `VocoderConfigurator` with a `bwe` section: both generators BigVGAN v2 (AMP1, snakebeta,
    /// stereo); the main one ends in tanh or a clamp, the extension generator in nothing.
    pub fn new(section: &BweSection) -> Result<Self> {
        let BweSection { vocoder, bwe_generator, bwe } = section;
        for (name, g) in [("vocoder", vocoder), ("bwe", bwe_generator)] {
            if g.resblock != "AMP1" || g.activation != "snakebeta" {
                return Err(VaeError::Unsupported(format!(
                    "`vocoder.{name}`: resblock `{}`, activation `{}` (the bandwidth-extension vocoder is BigVGAN v2)",
                    g.resblock, g.activation
                )));
            }
        }
        let (input, output, hop) = (bwe.input_sampling_rate, bwe.output_sampling_rate, bwe.hop_length);
        if input == 0 || output % input != 0 || hop == 0 || 2 * bwe.num_mels as i32 != MEL_CHANNELS {
            return Err(VaeError::Unsupported(format!(
                "bandwidth extension {input} -> {output} Hz, hop {hop}, {} mel bands",
                bwe.num_mels
            )));
        }
        let ratio = (output / input) as i32;
        // The extension generator renders ratio samples per input sample: hop·ratio per mel frame.
        let per_frame: u64 = bwe_generator.upsample_rates.iter().map(|&r| r as u64).product();
        if per_frame != hop as u64 * ratio as u64 {
            return Err(VaeError::Unsupported(format!(
                "bandwidth extension generator of ×{per_frame} per frame for hop {hop} × ratio {ratio}"
            )));
        }
        let mut main = Generator::new(vocoder, true)?;
        main.sample_rate = input;
        let mut extension = Generator::new(bwe_generator, false)?;
        extension.sample_rate = output;
        Ok(Self {
            vocoder: main,
            bwe_generator: extension,
            mel_stft: MelStft::new(bwe.n_fft, hop, bwe.num_mels)?,
            resampler: HannUpsample::new(ratio)?,
            input_sampling_rate: input,
            output_sampling_rate: output,
            hop: hop as i32,
        })
    }

    /// The causal log-mel the extension generator reads: waveform (B, T, C) -> (B, C, frames, mels).
    pub fn mel(&self, wave: &Array) -> Result<Array> {
        let [b, t, c] = crate::video_vae::dims(wave, "the waveform")?;
        let flat = wave.transpose_axes(&[0, 2, 1])?.reshape(&[b * c, t, 1])?;
        let mel = self.mel_stft.log_mel(&flat)?;
        let (frames, mels) = (mel.shape()[1], mel.shape()[2]);
        Ok(mel.reshape(&[b, c, frames, mels])?)
    }

    /// Mel (B, 2, T, mel) -> 48 kHz waveform (B, 2, samples) in [-1, 1].
    pub fn forward(&self, mel: &Array) -> Result<Array> {
        let x = self.vocoder.forward_channels_last(mel)?;
        let length = x.shape()[1];
        let output_length = (length as i64 * self.output_sampling_rate as i64 / self.input_sampling_rate as i64) as i32;
        let remainder = length % self.hop;
        let x = match remainder {
            0 => x,
            r => ops::pad(&x, &[(0, 0), (0, self.hop - r), (0, 0)][..], None, None)?,
        };
        let residual = self.bwe_generator.forward_channels_last(&self.mel(&x)?)?;
        let skip = self.resampler.forward(&x)?;
        if residual.shape() != skip.shape() {
            return Err(VaeError::Input(format!(
                "bandwidth extension residual {:?} != upsampled waveform {:?}",
                residual.shape(),
                skip.shape()
            )));
        }
        let out = ops::clip(&residual.add(&skip)?, (-1.0f32, 1.0f32))?;
        Ok(slice_axis(&out, 1, 0, output_length)?.transpose_axes(&[0, 2, 1])?)
    }
}
