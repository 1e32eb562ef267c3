//! Audio side of LTX-2 (`ltx_core/model/audio_vae`): the causal audio VAE decoder (latent (B, 8, T, 16)
//! -> stereo mel (B, 2, 4T-3, 64)) and the vocoder (mel -> stereo waveform): LTX-2's HiFi-GAN at 24 kHz or
//! LTX-2.3's BigVGAN v2 with bandwidth extension to 48 kHz.
pub mod bigvgan;
pub mod bwe;
pub mod decoder;
pub mod mel;
pub mod vocoder;

pub use decoder::AudioDecoder;
pub use vocoder::{Generator, Vocoder};

use mlx_rs::Array;

use crate::video_vae::Result;

/// ltx-core `decode_audio`: latent (B, C, T, F) -> waveform (B, 2, samples) in [-1, 1] at
/// [`Vocoder::sample_rate`], f32, row-major.
pub fn decode_audio(latent: &Array, decoder: &AudioDecoder, vocoder: &Vocoder) -> Result<Array> {
    Ok(vocoder.forward(&decoder.forward(latent)?)?.as_dtype(mlx_rs::Dtype::Float32)?.contiguous()?)
}
