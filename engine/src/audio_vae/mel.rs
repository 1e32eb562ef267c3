//! `MelSTFT` of ltx-core's `vocoder.py` (LTX-2.3 bandwidth extension): the causal log-mel spectrogram of a
//! waveform, from the checkpoint's buffers `stft_fn.forward_basis` (2·F, 1, n_fft: Hann-windowed DFT rows,
//! real parts then imaginary parts), `stft_fn.inverse_basis` (same shape, loaded and unused, as in ltx-core)
//! and `mel_basis` (mels, F), where F = n_fft/2 + 1.
use mlx_rs::{
    macros::ModuleParameters,
    module::Param,
    ops::{self, PadMode},
    Array,
};

use crate::video_vae::{ops::slice_axis, Result, VaeError};

/// `_STFTFn`: the DFT bases.
#[derive(Debug, Clone, ModuleParameters)]
pub struct StftFn {
    #[param]
    pub forward_basis: Param<Array>,
    #[param]
    pub inverse_basis: Param<Array>,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct MelStft {
    #[param]
    pub stft_fn: StftFn,
    #[param]
    pub mel_basis: Param<Array>,
    pub hop: i32,
    /// Window (= FFT) length.
    pub window: i32,
}

impl MelStft {
    pub fn new(n_fft: u32, hop: u32, mels: u32) -> Result<Self> {
        if n_fft < 2 || hop == 0 || mels == 0 || n_fft > 1 << 16 || mels > 1 << 12 {
            return Err(VaeError::Unsupported(format!("STFT of {n_fft} points, hop {hop}, {mels} mel bands")));
        }
        let (n, freqs) = (n_fft as i32, n_fft as i32 / 2 + 1);
        let basis = || -> Result<Param<Array>> { Ok(Param::new(Array::zeros::<f32>(&[2 * freqs, 1, n])?)) };
        Ok(Self {
            stft_fn: StftFn { forward_basis: basis()?, inverse_basis: basis()? },
            mel_basis: Param::new(Array::zeros::<f32>(&[mels as i32, freqs])?),
            hop: hop as i32,
            window: n,
        })
    }

    /// `mel_spectrogram(y)[0]`: waveforms (N, T, 1) -> log-mel (N, frames, mels), with left-only padding of
    /// window - hop samples (no lookahead) and frames every `hop` samples.
    pub fn log_mel(&self, y: &Array) -> Result<Array> {
        let left = (self.window - self.hop).max(0);
        let y = ops::pad(y, &[(0, 0), (left, 0), (0, 0)][..], None, PadMode::Constant)?;
        // (2F, 1, n) -> (2F, n, 1): the basis as a channels-last convolution weight.
        let basis = self.stft_fn.forward_basis.transpose_axes(&[0, 2, 1])?;
        let spec = ops::conv1d(&y, &basis, self.hop, 0, 1, 1)?;
        let freqs = spec.shape()[2] / 2;
        let (real, imag) = (slice_axis(&spec, 2, 0, freqs)?, slice_axis(&spec, 2, freqs, 2 * freqs)?);
        let magnitude = real.square()?.add(imag.square()?)?.sqrt()?;
        let mel = ops::matmul(&magnitude, self.mel_basis.as_dtype(magnitude.dtype())?.t())?;
        Ok(ops::maximum(&mel, Array::from_f32(1e-5))?.log()?)
    }
}
