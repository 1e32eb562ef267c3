//! Flow-matching Euler on x0 predictions (`EulerDiffusionStep`, `euler_denoising_loop`), f32, with
//! per-step progress and cancellation at step boundaries.

use std::ops::ControlFlow;

use mlx_rs::{Array, Dtype};

use crate::transformer::Result;

/// One modality's latent state (`LatentState`, patchified, batch of one).
#[derive(Debug, Clone)]
pub struct LatentState {
    /// (1, T, C) f32.
    pub latent: Array,
    /// Per-token denoise strength (1 = denoise, 0 = keep `clean_latent`, e.g. the i2v frame).
    pub denoise_mask: Vec<f32>,
    pub clean_latent: Array,
    /// (1, n_axes, T, 2) position bounds.
    pub positions: Vec<f32>,
}

impl LatentState {
    fn mask(&self) -> Array {
        Array::from_slice(&self.denoise_mask, &[1, self.denoise_mask.len() as i32, 1])
    }

    /// `post_process_latent`: keep conditioned tokens clean.
    pub fn post_process(&self, denoised: &Array) -> Result<Array> {
        let m = self.mask();
        let keep = Array::from_f32(1.0).subtract(&m)?;
        Ok(denoised
            .as_dtype(Dtype::Float32)?
            .multiply(&m)?
            .add(self.clean_latent.as_dtype(Dtype::Float32)?.multiply(keep)?)?)
    }
}

/// `EulerDiffusionStep.step`: x + (x - x0)/sigma * (sigma_next - sigma), f32.
pub fn euler_step(sample: &Array, denoised: &Array, sigma: f32, sigma_next: f32) -> Result<Array> {
    let x = sample.as_dtype(Dtype::Float32)?;
    let velocity = x.subtract(denoised.as_dtype(Dtype::Float32)?)?.divide(Array::from_f32(sigma))?;
    Ok(x.add(velocity.multiply(Array::from_f32(sigma_next - sigma))?)?)
}

/// Reported after every finished step.
#[derive(Debug, Clone, Copy)]
pub struct StepProgress {
    pub step: usize,
    pub steps: usize,
    pub sigma: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopEnd {
    Finished,
    Cancelled { after_steps: usize },
}

/// `euler_denoising_loop`: for each sigma but the last, `denoise(video, audio, sigmas, step)` gives
/// the x0 predictions; they are post-processed with the masks and stepped. `progress` is called after
/// each step; returning `Break` stops at that step boundary.
pub fn euler_loop(
    sigmas: &[f32],
    video: &mut LatentState,
    audio: &mut LatentState,
    mut denoise: impl FnMut(&LatentState, &LatentState, &[f32], usize) -> Result<(Array, Array)>,
    mut progress: impl FnMut(StepProgress) -> ControlFlow<()>,
) -> Result<LoopEnd> {
    let steps = sigmas.len().saturating_sub(1);
    for step in 0..steps {
        let (dv, da) = denoise(video, audio, sigmas, step)?;
        let (dv, da) = (video.post_process(&dv)?, audio.post_process(&da)?);
        let (s, s_next) = (sigmas[step], sigmas[step + 1]);
        video.latent = euler_step(&video.latent, &dv, s, s_next)?;
        audio.latent = euler_step(&audio.latent, &da, s, s_next)?;
        mlx_rs::transforms::eval([&video.latent, &audio.latent])?;
        if progress(StepProgress { step: step + 1, steps, sigma: s_next }).is_break() && step + 1 < steps {
            return Ok(LoopEnd::Cancelled { after_steps: step + 1 });
        }
    }
    Ok(LoopEnd::Finished)
}
