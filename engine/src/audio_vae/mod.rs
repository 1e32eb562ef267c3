//! Audio side of LTX-2 (`ltx_core/model/audio_vae`): the causal audio VAE decoder (latent (B, 8, T, 16)
//! -> stereo mel (B, 2, 4T-3, 64)) and the HiFi-GAN vocoder (mel -> 24 kHz stereo waveform).
pub mod decoder;
pub mod vocoder;

pub use decoder::AudioDecoder;
pub use vocoder::Vocoder;

use mlx_rs::Array;

use crate::video_vae::Result;

/// ltx-core `decode_audio`: latent (B, C, T, F) -> waveform (B, 2, samples) in [-1, 1], f32, row-major.
pub fn decode_audio(latent: &Array, decoder: &AudioDecoder, vocoder: &Vocoder) -> Result<Array> {
    Ok(vocoder.forward(&decoder.forward(latent)?)?.as_dtype(mlx_rs::Dtype::Float32)?.contiguous()?)
}
