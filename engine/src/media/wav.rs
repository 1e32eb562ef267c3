//! 16-bit PCM WAV (RIFF) for audio-only output.
use std::path::Path;

use super::{Audio, MediaError, Result};

/// Writes `audio` as interleaved 16-bit PCM to `path` (replaced atomically; a link there is replaced, not
/// followed).
pub fn write_wav(path: impl AsRef<Path>, audio: &Audio) -> Result<()> {
    let channels = audio.channels.len() as u16;
    if channels == 0 || audio.sample_rate == 0 {
        return Err(MediaError::Input("WAV needs at least one channel and a sample rate".into()));
    }
    let pcm: Vec<u8> = audio.interleaved_i16().iter().flat_map(|s| s.to_le_bytes()).collect();
    let data_len = u32::try_from(pcm.len()).map_err(|_| MediaError::Input("audio too long for WAV".into()))?;
    let block_align = channels * 2;
    let mut out = Vec::with_capacity(44 + pcm.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&audio.sample_rate.to_le_bytes());
    out.extend_from_slice(&(audio.sample_rate * block_align as u32).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&pcm);
    ltx_protocol::fsutil::write_replace(path.as_ref(), &out, 0o644)?;
    Ok(())
}
