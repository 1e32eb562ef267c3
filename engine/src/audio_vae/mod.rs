//! Audio side of LTX-2 (`ltx_core/model/audio_vae`): the causal audio VAE decoder (latent (B, 8, T, 16)
//! -> stereo mel (B, 2, 4T-3, 64)) and the vocoder (mel -> stereo waveform): LTX-2's HiFi-GAN at 24 kHz or
//! LTX-2.3's BigVGAN v2 with bandwidth extension to 48 kHz.
pub mod bigvgan;
pub mod bwe;
pub mod decoder;
pub mod mel;
pub mod vocoder;

pub use decoder::AudioDecoder;
pub use vocoder::Generator;

use bwe::VocoderWithBwe;
use mlx_rs::{Array, Dtype};

use crate::{
    checkpoint::{prefix, Checkpoint, LoadOptions},
    config::VocoderSection,
    video_vae::{module_enum, Result, VaeError},
};

/// The vocoder `config.vocoder` describes (ltx-core `VocoderConfigurator`).
#[derive(Debug, Clone)]
pub enum Vocoder {
    /// LTX-2: one HiFi-GAN generator (keys `vocoder.*`).
    Plain(Box<Generator>),
    /// LTX-2.3: BigVGAN v2 + bandwidth extension (keys `vocoder.{vocoder,bwe_generator,mel_stft}.*`).
    WithBwe(Box<VocoderWithBwe>),
}
module_enum!(Vocoder { Plain, WithBwe });

impl Vocoder {
    /// As ltx-core: a flat section must be the HiFi-GAN (`resblock` "1"); a `bwe` section, BigVGAN.
    pub fn new(section: &VocoderSection) -> Result<Self> {
        Ok(match section {
            VocoderSection::Plain(config) if config.resblock == "1" => {
                Self::Plain(Box::new(Generator::new(config, true)?))
            }
            VocoderSection::Plain(config) => {
                return Err(VaeError::Unsupported(format!(
                    "vocoder resblock `{}` without a `bwe` section",
                    config.resblock
                )))
            }
            VocoderSection::WithBwe(section) => Self::WithBwe(Box::new(VocoderWithBwe::new(section)?)),
        })
    }

    /// Builds from `config.vocoder` and loads `vocoder.*`.
    pub fn from_checkpoint(checkpoint: &Checkpoint, dtype: Dtype) -> Result<Self> {
        let mut vocoder = Self::new(&checkpoint.config()?.vocoder()?)?;
        let options = LoadOptions {
            dtype: Some(dtype),
            transposed_conv: &|key: &str| key.split('.').any(|part| part == "ups"),
            ..Default::default()
        };
        checkpoint.load_into(&mut vocoder, prefix::VOCODER, &options)?;
        Ok(vocoder)
    }

    /// Sample rate of [`Self::forward`]'s waveform (24 kHz for LTX-2, 48 kHz for LTX-2.3).
    pub fn sample_rate(&self) -> u32 {
        match self {
            Self::Plain(g) => g.sample_rate,
            Self::WithBwe(v) => v.output_sampling_rate,
        }
    }

    /// Mel (B, 2, T, mel) -> waveform (B, 2, samples) in [-1, 1].
    pub fn forward(&self, mel: &Array) -> Result<Array> {
        match self {
            Self::Plain(g) => g.forward(mel),
            Self::WithBwe(v) => v.forward(mel),
        }
    }
}

/// ltx-core `decode_audio`: latent (B, C, T, F) -> waveform (B, 2, samples) in [-1, 1] at
/// [`Vocoder::sample_rate`], f32, row-major.
pub fn decode_audio(latent: &Array, decoder: &AudioDecoder, vocoder: &Vocoder) -> Result<Array> {
    Ok(vocoder.forward(&decoder.forward(latent)?)?.as_dtype(Dtype::Float32)?.contiguous()?)
}
