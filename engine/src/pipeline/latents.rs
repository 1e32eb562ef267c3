//! Latent shapes, patchifiers and noise of the pipelines (ltx-core `types.py` `VideoLatentShape`,
//! `AudioLatentShape`, `components/patchifiers.py`, `components/noisers.py`), with channel counts taken
//! from the checkpoint's configs rather than hard-coded (LTX-2: 128 video channels, 8 × 16 audio).
use mlx_rs::{random, Array, Dtype};

use crate::{
    config::{AudioVaeConfig, VaeConfig},
    transformer::{
        positions::{audio_positions, video_positions, VIDEO_SCALE_FACTORS},
        Result,
    },
};

/// Video latent (1, C, F', H', W').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoLatentShape {
    pub channels: usize,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
}

impl VideoLatentShape {
    /// `VideoLatentShape.from_pixel_shape`: F' = (F - 1) / 8 + 1, H' = H / 32, W' = W / 32.
    pub fn from_pixels(channels: usize, frames: usize, height: usize, width: usize) -> Self {
        let [t, h, w] = VIDEO_SCALE_FACTORS;
        Self { channels, frames: (frames.max(1) - 1) / t + 1, height: height / h, width: width / w }
    }
    pub fn dims(&self) -> [i32; 5] {
        [1, self.channels as i32, self.frames as i32, self.height as i32, self.width as i32]
    }
    pub fn tokens(&self) -> usize {
        self.frames * self.height * self.width
    }
    /// Token positions (1, 3, T, 2) at `fps`.
    pub fn positions(&self, fps: f32) -> Vec<f32> {
        video_positions(self.frames, self.height, self.width, fps)
    }
}

/// Audio latent (1, C, T, M).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLatentShape {
    pub channels: usize,
    pub frames: usize,
    pub mel_bins: usize,
}

/// Python's `round` (half to even), which `AudioLatentShape.from_duration` uses.
pub fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

/// How the audio VAE lays out its latent: channels, mel bins and latent frames per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioLayout {
    pub channels: usize,
    pub mel_bins: usize,
    pub latents_per_second: f64,
}

impl AudioLayout {
    /// From `config.audio_vae`: z_channels, mel_bins / 2^(levels-1), sample_rate / hop / downsample
    /// (LTX-2: 8, 16, 16000 / 160 / 4 = 25).
    pub fn from_config(config: &AudioVaeConfig) -> Self {
        let dd = config.ddconfig();
        // A crafted config's level count must not overflow the shift (the decoder refuses more than 8 levels).
        let downsample = 1usize.checked_shl(dd.ch_mult.len().saturating_sub(1) as u32).unwrap_or(usize::MAX);
        let mel = config.mel_bins_or_default() as usize;
        let rate = config.model.params.sampling_rate as f64;
        let hop = config.mel_hop_length() as f64;
        Self {
            channels: dd.z_channels as usize,
            mel_bins: mel / downsample,
            latents_per_second: rate / hop / downsample as f64,
        }
    }

    /// `AudioLatentShape.from_video_pixel_shape`: round(frames / fps · latents per second).
    pub fn shape(&self, frames: u32, fps: f64) -> AudioLatentShape {
        let t = round_half_even(frames as f64 / fps * self.latents_per_second) as usize;
        AudioLatentShape { channels: self.channels, frames: t, mel_bins: self.mel_bins }
    }
}

impl AudioLatentShape {
    pub fn dims(&self) -> [i32; 4] {
        [1, self.channels as i32, self.frames as i32, self.mel_bins as i32]
    }
    pub fn positions(&self) -> Vec<f32> {
        audio_positions(self.frames)
    }
}

/// Video latent channels of the VAE.
pub fn video_channels(vae: &VaeConfig) -> usize {
    vae.latent_channels as usize
}

/// `VideoLatentPatchifier(1).patchify`: (1, C, F, H, W) -> (1, F·H·W, C).
pub fn patchify_video(latent: &Array) -> Result<Array> {
    let s = latent.shape();
    let c = s[1];
    Ok(latent.transpose_axes(&[0, 2, 3, 4, 1])?.reshape(&[s[0], -1, c])?)
}

/// Inverse of [`patchify_video`].
pub fn unpatchify_video(tokens: &Array, shape: &VideoLatentShape) -> Result<Array> {
    let [b, c, f, h, w] = shape.dims();
    Ok(tokens.reshape(&[b, f, h, w, c])?.transpose_axes(&[0, 4, 1, 2, 3])?)
}

/// `AudioPatchifier(1).patchify`: (1, C, T, M) -> (1, T, C·M) (`b c t f -> b t (c f)`).
pub fn patchify_audio(latent: &Array) -> Result<Array> {
    let s = latent.shape();
    Ok(latent.transpose_axes(&[0, 2, 1, 3])?.reshape(&[s[0], s[2], s[1] * s[3]])?)
}

/// Inverse of [`patchify_audio`].
pub fn unpatchify_audio(tokens: &Array, shape: &AudioLatentShape) -> Result<Array> {
    let [b, c, t, m] = shape.dims();
    Ok(tokens.reshape(&[b, t, c, m])?.transpose_axes(&[0, 2, 1, 3])?)
}

/// The seeded noise source of one generation: every draw takes the next key, so a run's draws
/// (stage-1 video, stage-1 audio, stage-2 video, stage-2 audio, decode) are fixed by the seed.
#[derive(Debug, Clone)]
pub struct Noiser {
    seed: u64,
    draws: u64,
    given: std::collections::VecDeque<Array>,
}

impl Noiser {
    pub fn new(seed: u64) -> Self {
        Self { seed, draws: 0, given: Default::default() }
    }

    /// Hands out `noise` in order before drawing (parity tests against the reference's noise).
    pub fn given(seed: u64, noise: Vec<Array>) -> Self {
        Self { given: noise.into(), ..Self::new(seed) }
    }

    /// A seed for a consumer with its own generator (the VAE decode noise).
    pub fn next_seed(&mut self) -> u64 {
        let s = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(self.draws);
        self.draws += 1;
        s
    }

    /// Standard normal f32 noise of `shape`.
    pub fn randn(&mut self, shape: &[i32]) -> Result<Array> {
        if let Some(noise) = self.given.pop_front() {
            if noise.shape() != shape {
                let msg = format!("given noise {:?} for a draw of {shape:?}", noise.shape());
                return Err(crate::transformer::TransformerError::Input(msg));
            }
            return Ok(noise.as_dtype(Dtype::Float32)?);
        }
        let key = random::key(self.next_seed())?;
        Ok(random::normal::<f32>(shape, None, None, &key)?)
    }

    /// `GaussianNoiser` with an all-ones denoise mask: noise·s + latent·(1 - s), f32.
    pub fn noise(&mut self, latent: &Array, scale: f32) -> Result<Array> {
        let noise = self.randn(latent.shape())?;
        if scale == 1.0 {
            return Ok(noise);
        }
        let latent = latent.as_dtype(Dtype::Float32)?;
        Ok(noise.multiply(Array::from_f32(scale))?.add(latent.multiply(Array::from_f32(1.0 - scale))?)?)
    }
}
