//! The denoising stages of ltx-pipelines 1.0.0 below the prompt and above the decoders:
//! `create_noised_state` (initial latent, first-frame conditioning, `GaussianNoiser`),
//! `euler_denoising_loop` with `simple_denoising_func` (one pass per step) or
//! `multi_modal_guider_factory_denoising_func` (up to four), `upsample_video`, and the stage-2 re-noise.
//!
//! - one-stage (`TI2VidOneStagePipeline`): guided over the LTX-2 schedule at full size.
//! - two-stage: stage 1 at half size (distilled: `DISTILLED_SIGMA_VALUES`, no guidance; dev: guided over
//!   the LTX-2 schedule) → ×2 upscale → stage 2 over `STAGE_2_DISTILLED_SIGMA_VALUES`, both latents re-noised
//!   to its first sigma, no guidance (dev: with the distilled LoRA on).
//!
//! Noise comes from one seeded [`Noiser`] in the reference's draw order (stage-1 video, stage-1 audio,
//! stage-2 video, stage-2 audio), so a request and seed give identical bytes.
use std::{ops::ControlFlow, time::Instant};

use ltx_protocol::{FailureCode, Stage};
use mlx_rs::{ops::indexing::IndexOp, Array, Dtype};

use super::{
    components::Components,
    latents::{patchify_video, unpatchify_audio, unpatchify_video, AudioLatentShape, Noiser, VideoLatentShape},
    preview::Previewer,
    Fail,
};
use crate::{
    job::{CancelToken, EngineError, ProgressSink},
    sampling::{
        euler_loop, guidance::Contexts, guided_denoise, GuiderParams, LatentState, StepProgress,
        STAGE_2_DISTILLED_SIGMAS,
    },
    transformer::{lora, LtxModel, Modality, Perturbations},
};

/// Latent shapes of both stages (one-stage: only `stage1`, at full size) and the audio, and the frame
/// rate the positions use.
#[derive(Debug, Clone, Copy)]
pub struct Shapes {
    /// The upscale between the stages (`stage2` = `stage1` × it).
    pub upscale: ltx_protocol::Upscale,
    pub stage1: VideoLatentShape,
    pub stage2: VideoLatentShape,
    pub audio: AudioLatentShape,
    pub fps: f32,
}

/// Multi-modal guidance of a stage: the negative contexts and both modalities' parameters.
pub struct Guided<'a> {
    pub video_negative: &'a Array,
    pub audio_negative: &'a Array,
    pub video: GuiderParams,
    pub audio: GuiderParams,
}

/// How stage 1 samples.
pub struct Stage1<'a> {
    pub sigmas: Vec<f32>,
    /// `None`: one pass per step (distilled).
    pub guided: Option<Guided<'a>>,
}

/// First-frame conditioning (`VideoConditionByLatentIndex` at latent frame 0): the image's normalised
/// VAE latent (1, C, 1, H', W') at one stage's size, and the strength (1 = frame 0 is kept as given).
#[derive(Debug, Clone)]
pub struct FirstFrame {
    pub latent: Array,
    pub strength: f32,
}

/// Everything the sampler takes besides the components.
pub struct Sampling<'a> {
    pub shapes: Shapes,
    /// Positive video and audio contexts.
    pub contexts: (&'a Array, &'a Array),
    pub stage1: Stage1<'a>,
    /// First-frame latents at stage-1 and stage-2 size.
    pub first_frame: [Option<FirstFrame>; 2],
}

/// Renders step previews (while a client wants them).
pub type Preview<'p> = &'p Previewer;

/// Phase timings in milliseconds.
pub(crate) struct Laps(pub Instant);

impl Laps {
    pub fn lap(&mut self, name: &str, timings: &mut Vec<(String, u64)>) {
        timings.push((name.to_string(), self.0.elapsed().as_millis() as u64));
        self.0 = Instant::now();
    }
}

/// `create_initial_state` + `state_with_conditionings`: the initial tokens (zeros, or `initial`), with
/// the first frame's tokens written into latent and clean latent at mask `1 - strength`.
fn initial_state(
    tokens: usize,
    channels: usize,
    initial: Option<Array>,
    positions: Vec<f32>,
    first_frame: Option<&FirstFrame>,
) -> Result<LatentState, EngineError> {
    let latent = match initial {
        Some(l) => l.as_dtype(Dtype::Float32).fail(FailureCode::DenoiseFailed)?,
        None => Array::zeros::<f32>(&[1, tokens as i32, channels as i32]).fail(FailureCode::DenoiseFailed)?,
    };
    let mut state = LatentState { clean_latent: latent.clone(), latent, denoise_mask: vec![1.0; tokens], positions };
    if let Some(ff) = first_frame {
        let cond = patchify_video(&ff.latent)
            .and_then(|t| Ok(t.as_dtype(Dtype::Float32)?))
            .fail(FailureCode::DenoiseFailed)?;
        let n = cond.shape()[1] as usize;
        if cond.shape()[2] as usize != channels || n > tokens {
            return Err(EngineError::failed(
                FailureCode::EncodeImageFailed,
                format!("image latent {:?} does not fit the video latent ({tokens} tokens)", ff.latent.shape()),
            ));
        }
        let replace = |x: &Array| -> mlx_rs::error::Result<Array> {
            let rest = x.index((.., n as i32.., ..));
            mlx_rs::ops::concatenate(&[&cond, &rest], 1)
        };
        state.latent = replace(&state.latent).fail(FailureCode::DenoiseFailed)?;
        state.clean_latent = replace(&state.clean_latent).fail(FailureCode::DenoiseFailed)?;
        state.denoise_mask[..n].fill(1.0 - ff.strength);
    }
    Ok(state)
}

/// `GaussianNoiser`: latent = noise·(mask·s) + latent·(1 − mask·s), one full-shape draw.
fn noised(noiser: &mut Noiser, mut state: LatentState, scale: f32) -> Result<LatentState, EngineError> {
    let noise = noiser.randn(state.latent.shape()).fail(FailureCode::DenoiseFailed)?;
    let t = state.denoise_mask.len() as i32;
    let m = Array::from_slice(&state.denoise_mask, &[1, t, 1])
        .multiply(Array::from_f32(scale))
        .fail(FailureCode::DenoiseFailed)?;
    let keep = Array::from_f32(1.0).subtract(&m).fail(FailureCode::DenoiseFailed)?;
    state.latent =
        noise.multiply(&m).and_then(|n| n.add(state.latent.multiply(&keep)?)).fail(FailureCode::DenoiseFailed)?;
    Ok(state)
}

/// One stage's Euler loop: simple (one pass per step) or guided; progress after every step,
/// cancellation at every step boundary.
#[allow(clippy::too_many_arguments)]
fn denoise(
    model: &LtxModel,
    sigmas: &[f32],
    video: &mut LatentState,
    audio: &mut LatentState,
    contexts: (&Array, &Array),
    guided: Option<&Guided>,
    stage: u8,
    shape: &VideoLatentShape,
    progress: &mut dyn ProgressSink,
    cancel: &CancelToken,
    preview: Option<Preview>,
) -> Result<(), EngineError> {
    cancel.check()?;
    progress.stage(Stage::Denoising(stage));
    let mut last = None;
    // The step's x0 video prediction, for previews (written by `step`, read by `on_step`).
    let x0_video: std::cell::RefCell<Option<Array>> = Default::default();
    let step = |v: &LatentState, a: &LatentState, sigmas: &[f32], i: usize| {
        let s = sigmas[i];
        let out = match guided {
            None => {
                let mv =
                    Modality::new(v.latent.clone(), s, Some(&v.denoise_mask), v.positions.clone(), contexts.0.clone());
                let ma =
                    Modality::new(a.latent.clone(), s, Some(&a.denoise_mask), a.positions.clone(), contexts.1.clone());
                model.denoise(&mv, &ma, &Perturbations::none())?
            }
            Some(g) => {
                let ctx = Contexts {
                    video: contexts.0,
                    audio: contexts.1,
                    video_negative: g.video_negative,
                    audio_negative: g.audio_negative,
                };
                guided_denoise(model, v, a, s, i, &ctx, &g.video, &g.audio, &mut last)?
            }
        };
        x0_video.replace(Some(out.0.clone()));
        Ok(out)
    };
    let on_step = |p: StepProgress| {
        progress.step(Stage::Denoising(stage), p.step as u32, p.steps as u32);
        if let (Some(previewer), Some(x0), true) = (preview, x0_video.take(), progress.wants_preview()) {
            // A failed preview is logged, never fatal to the job.
            match previewer.render(shape, &x0) {
                Ok(jpeg) => progress.preview(p.step as u32, jpeg),
                Err(e) => tracing::warn!("step preview: {e}"),
            }
        }
        if cancel.is_cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    euler_loop(sigmas, video, audio, step, on_step).fail(FailureCode::DenoiseFailed)?;
    cancel.check()
}

/// Stage 1 from pure noise (video drawn first, then audio) over `s.stage1`.
fn stage_one(
    c: &mut Components,
    s: &Sampling,
    noiser: &mut Noiser,
    progress: &mut dyn ProgressSink,
    cancel: &CancelToken,
    preview: Option<Preview>,
) -> Result<(LatentState, LatentState), EngineError> {
    let Shapes { stage1, audio: audio_shape, fps, .. } = s.shapes;
    cancel.check()?;
    let video =
        initial_state(stage1.tokens(), stage1.channels, None, stage1.positions(fps), s.first_frame[0].as_ref())?;
    let features = audio_shape.channels * audio_shape.mel_bins;
    let audio = initial_state(audio_shape.frames, features, None, audio_shape.positions(), None)?;
    let mut video = noised(noiser, video, 1.0)?;
    let mut audio = noised(noiser, audio, 1.0)?;
    let model = c.ensure_transformer(progress)?;
    let guided = s.stage1.guided.as_ref();
    let sigmas = &s.stage1.sigmas;
    denoise(model, sigmas, &mut video, &mut audio, s.contexts, guided, 1, &stage1, progress, cancel, preview)?;
    Ok((video, audio))
}

/// The one-stage flow: stage 1 only, at full size. Returns the unpatchified video (1, C, F', H', W') and
/// audio (1, C, T, M) latents.
pub fn sample_one_stage(
    c: &mut Components,
    s: &Sampling,
    noiser: &mut Noiser,
    progress: &mut dyn ProgressSink,
    cancel: &CancelToken,
    timings: &mut Vec<(String, u64)>,
    preview: Option<Preview>,
) -> Result<(Array, Array), EngineError> {
    let mut laps = Laps(Instant::now());
    let (video, audio) = stage_one(c, s, noiser, progress, cancel, preview)?;
    laps.lap("denoise", timings);
    let v = unpatchify_video(&video.latent, &s.shapes.stage1).fail(FailureCode::DenoiseFailed)?;
    let a = unpatchify_audio(&audio.latent, &s.shapes.audio).fail(FailureCode::DenoiseFailed)?;
    Ok((v, a))
}

/// The two-stage flow: stage 1 at half size, the ×2 upscale, stage 2 at full size with both latents
/// re-noised to its first sigma; `lora`: stage 2 runs with the distilled LoRA attached (dev weights).
/// Returns the unpatchified video (1, C, F', H', W') and audio (1, C, T, M) latents.
#[allow(clippy::too_many_arguments)]
pub fn sample_two_stage(
    c: &mut Components,
    s: &Sampling,
    lora: bool,
    noiser: &mut Noiser,
    progress: &mut dyn ProgressSink,
    cancel: &CancelToken,
    timings: &mut Vec<(String, u64)>,
    preview: Option<Preview>,
) -> Result<(Array, Array), EngineError> {
    let mut laps = Laps(Instant::now());
    let Shapes { stage1, stage2, audio: audio_shape, fps, upscale } = s.shapes;
    let (video, audio) = stage_one(c, s, noiser, progress, cancel, preview)?;
    laps.lap("denoise_stage_1", timings);

    progress.stage(Stage::Upscaling);
    let latent1 = unpatchify_video(&video.latent, &stage1).fail(FailureCode::UpscaleFailed)?;
    let (upsampler, stats) = c.ensure_upsampler(upscale, progress)?;
    let upscaled = upsampler.upsample(&latent1, stats).fail(FailureCode::UpscaleFailed)?;
    let upscaled = patchify_video(&upscaled).fail(FailureCode::UpscaleFailed)?;
    upscaled.eval().fail(FailureCode::UpscaleFailed)?;
    laps.lap("upscale", timings);

    cancel.check()?;
    let sigma0 = STAGE_2_DISTILLED_SIGMAS[0];
    let v = initial_state(
        stage2.tokens(),
        stage2.channels,
        Some(upscaled),
        stage2.positions(fps),
        s.first_frame[1].as_ref(),
    )?;
    let features = audio_shape.channels * audio_shape.mel_bins;
    let a = initial_state(audio_shape.frames, features, Some(audio.latent), audio_shape.positions(), None)?;
    let mut video = noised(noiser, v, sigma0)?;
    let mut audio = noised(noiser, a, sigma0)?;
    let adapters = match lora {
        true => Some(c.ensure_lora(progress)?.clone()),
        false => None,
    };
    c.ensure_transformer(progress)?;
    let model = c
        .transformer
        .as_mut()
        .ok_or_else(|| EngineError::failed(FailureCode::LoadFailed, "the transformer is not loaded"))?;
    if let Some(adapters) = &adapters {
        let n = lora::attach_lora(model, adapters, 1.0).fail(FailureCode::LoadFailed)?;
        tracing::debug!(linears = n, "distilled LoRA attached for stage 2");
    }
    let res = denoise(
        model,
        &STAGE_2_DISTILLED_SIGMAS,
        &mut video,
        &mut audio,
        s.contexts,
        None,
        2,
        &stage2,
        progress,
        cancel,
        preview,
    );
    // Always detached: the resident dev weights serve the next job's stage 1 unchanged.
    lora::detach_lora(model);
    res?;
    laps.lap("denoise_stage_2", timings);
    let v = unpatchify_video(&video.latent, &stage2).fail(FailureCode::DenoiseFailed)?;
    let a = unpatchify_audio(&audio.latent, &audio_shape).fail(FailureCode::DenoiseFailed)?;
    Ok((v, a))
}
