//! Output files: MP4 (H.264 + AAC-LC, index first, QuickTime-safe) and WAV.
pub mod mp4;
pub mod wav;

pub use mp4::{Mp4Writer, VideoSettings};
pub use wav::write_wav;

/// Errors writing media files.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("H.264 encoder: {0}")]
    H264(String),
    #[error("AAC encoder: {0}")]
    Aac(String),
    #[error("MP4 muxer: {0}")]
    Mux(String),
    #[error("invalid media input: {0}")]
    Input(String),
}

pub type Result<T> = std::result::Result<T, MediaError>;

/// Stereo (or mono) float audio, planar: `channels[c][i]` in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub channels: Vec<Vec<f32>>,
    pub sample_rate: u32,
}

impl Audio {
    /// From a vocoder waveform laid out (channels, samples), row-major.
    pub fn from_planar(samples: &[f32], channels: usize, sample_rate: u32) -> Result<Self> {
        if channels == 0 || samples.len() % channels != 0 {
            return Err(MediaError::Input(format!("{} samples do not split into {channels} channels", samples.len())));
        }
        if samples.is_empty() {
            return Err(MediaError::Input("the waveform has no samples".into()));
        }
        let n = samples.len() / channels;
        Ok(Self { channels: samples.chunks(n).map(<[f32]>::to_vec).collect(), sample_rate })
    }

    pub fn len(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Interleaved signed 16-bit samples, clipped to [-1, 1].
    pub fn interleaved_i16(&self) -> Vec<i16> {
        (0..self.len())
            .flat_map(|i| self.channels.iter().map(move |c| (c[i].clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16))
            .collect()
    }

    /// Cut or zero-pad every channel to `n` samples.
    pub fn fit(&self, n: usize) -> Self {
        let channels =
            self.channels.iter().map(|c| (0..n).map(|i| c.get(i).copied().unwrap_or(0.0)).collect()).collect();
        Self { channels, sample_rate: self.sample_rate }
    }
}
