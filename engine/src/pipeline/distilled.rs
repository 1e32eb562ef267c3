//! ltx-pipelines' `DistilledPipeline` (text-to-video with audio): prompt → stage 1 at half resolution
//! over `DISTILLED_SIGMA_VALUES` from pure noise → spatial ×2 upscale of the video latent → stage 2 at
//! full resolution over `STAGE_2_DISTILLED_SIGMA_VALUES`, both latents re-noised to its first sigma →
//! video VAE decode (tiled when large) → audio VAE + vocoder → MP4. No guidance. Noise comes from one
//! seeded source in the reference's draw order, so a request and seed give identical bytes.
use std::{ops::ControlFlow, path::Path, time::Instant};

use ltx_protocol::Stage;
use mlx_rs::Array;

use super::{
    components::Components,
    latents::{
        patchify_video, unpatchify_audio, unpatchify_video, video_channels, AudioLatentShape, Noiser, VideoLatentShape,
    },
    Fail,
};
use crate::{
    audio_vae::decode_audio,
    job::{CancelToken, EngineError, GenerationOutput, ProgressSink},
    media::{Audio, Mp4Writer, VideoSettings},
    sampling::{euler_loop, LatentState, StepProgress, DISTILLED_SIGMAS, STAGE_2_DISTILLED_SIGMAS},
    text::Negative,
    transformer::{LtxModel, Modality, Perturbations},
    video_vae::{decoder::to_rgb24, tiling::tiled_decode, DecodeOptions, TilingConfig},
};

/// What one distilled generation needs from a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub fps: f64,
    pub seed: u64,
    pub audio: bool,
}

impl Settings {
    /// `assert_resolution(is_two_stage=True)` and the VAE's 8k+1 frames.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |message: String| Err(EngineError::Failed { code: "invalid_request".into(), message });
        if self.width == 0 || self.height == 0 || self.width % 64 != 0 || self.height % 64 != 0 {
            return bad(format!(
                "{}x{}: the two-stage pipeline needs width and height divisible by 64",
                self.width, self.height
            ));
        }
        if self.frames % 8 != 1 {
            return bad(format!("{} frames: the video VAE needs 8k+1 frames", self.frames));
        }
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return bad(format!("frame rate {}", self.fps));
        }
        Ok(())
    }
}

/// Phase timings in milliseconds.
struct Laps(Instant);

impl Laps {
    fn lap(&mut self, name: &str, timings: &mut Vec<(String, u64)>) {
        timings.push((name.to_string(), self.0.elapsed().as_millis() as u64));
        self.0 = Instant::now();
    }
}

fn state(latent: Array, positions: Vec<f32>) -> LatentState {
    let tokens = latent.shape()[1] as usize;
    LatentState { clean_latent: latent.clone(), latent, denoise_mask: vec![1.0; tokens], positions }
}

/// `euler_denoising_loop` with `simple_denoising_func`; progress after every step, cancellation at
/// every step boundary.
#[allow(clippy::too_many_arguments)]
fn denoise(
    model: &LtxModel,
    sigmas: &[f32],
    video: &mut LatentState,
    audio: &mut LatentState,
    contexts: (&Array, &Array),
    stage: u8,
    progress: &mut dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<(), EngineError> {
    cancel.check()?;
    progress.stage(Stage::Denoising(stage));
    let step = |v: &LatentState, a: &LatentState, sigmas: &[f32], i: usize| {
        let s = sigmas[i];
        let mv = Modality::new(v.latent.clone(), s, Some(&v.denoise_mask), v.positions.clone(), contexts.0.clone());
        let ma = Modality::new(a.latent.clone(), s, Some(&a.denoise_mask), a.positions.clone(), contexts.1.clone());
        model.denoise(&mv, &ma, &Perturbations::none())
    };
    let on_step = |p: StepProgress| {
        progress.step(Stage::Denoising(stage), p.step as u32, p.steps as u32);
        if cancel.is_cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    euler_loop(sigmas, video, audio, step, on_step).fail("denoise_failed")?;
    cancel.check()
}

/// Latent shapes of both stages and the audio, and the frame rate the positions use.
#[derive(Debug, Clone, Copy)]
pub struct Shapes {
    pub stage1: VideoLatentShape,
    pub stage2: VideoLatentShape,
    pub audio: AudioLatentShape,
    pub fps: f32,
}

/// Stage 1 from pure noise at half resolution (video drawn first, then audio, as the reference
/// draws them), the ×2 upscale, stage 2 with both latents re-noised to its first sigma. Returns the
/// unpatchified video (1, C, F', H', W') and audio (1, C, T, M) latents.
pub fn sample_two_stage(
    c: &mut Components,
    shapes: &Shapes,
    contexts: (&Array, &Array),
    noiser: &mut Noiser,
    progress: &mut dyn ProgressSink,
    cancel: &CancelToken,
    timings: &mut Vec<(String, u64)>,
) -> Result<(Array, Array), EngineError> {
    let mut laps = Laps(Instant::now());
    let Shapes { stage1, stage2, audio: audio_shape, fps } = *shapes;
    let channels = stage1.channels as i32;
    cancel.check()?;
    let model = c.ensure_transformer(progress)?;
    let v0 = noiser.randn(&[1, stage1.tokens() as i32, channels]).fail("denoise_failed")?;
    let a_dims = [1, audio_shape.frames as i32, (audio_shape.channels * audio_shape.mel_bins) as i32];
    let a0 = noiser.randn(&a_dims).fail("denoise_failed")?;
    let mut video = state(v0, stage1.positions(fps));
    let mut audio = state(a0, audio_shape.positions());
    denoise(model, &DISTILLED_SIGMAS, &mut video, &mut audio, contexts, 1, progress, cancel)?;
    laps.lap("denoise_stage_1", timings);

    progress.stage(Stage::Upscaling);
    let latent1 = unpatchify_video(&video.latent, &stage1).fail("upscale_failed")?;
    let (upsampler, stats) = c.ensure_upsampler(progress)?;
    let upscaled = upsampler.upsample(&latent1, stats).fail("upscale_failed")?;
    let upscaled = patchify_video(&upscaled).fail("upscale_failed")?;
    upscaled.eval().fail("upscale_failed")?;
    laps.lap("upscale", timings);

    cancel.check()?;
    let sigma0 = STAGE_2_DISTILLED_SIGMAS[0];
    let v1 = noiser.noise(&upscaled, sigma0).fail("denoise_failed")?;
    let a1 = noiser.noise(&audio.latent, sigma0).fail("denoise_failed")?;
    let mut video = LatentState { clean_latent: upscaled, ..state(v1, stage2.positions(fps)) };
    let mut audio = LatentState { clean_latent: audio.latent.clone(), ..state(a1, audio_shape.positions()) };
    let model = c.ensure_transformer(progress)?;
    denoise(model, &STAGE_2_DISTILLED_SIGMAS, &mut video, &mut audio, contexts, 2, progress, cancel)?;
    laps.lap("denoise_stage_2", timings);
    let v = unpatchify_video(&video.latent, &stage2).fail("denoise_failed")?;
    let a = unpatchify_audio(&audio.latent, &audio_shape).fail("denoise_failed")?;
    Ok((v, a))
}

/// Runs the distilled pipeline, writing the MP4 to `output`.
pub fn generate_distilled(
    c: &mut Components,
    s: &Settings,
    output: &Path,
    progress: &mut dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<GenerationOutput, EngineError> {
    s.validate()?;
    c.models.check(s.audio)?;
    let mut timings = Vec::new();
    let mut laps = Laps(Instant::now());
    let layouts = c.layouts()?;
    let channels = video_channels(&layouts.vae);
    let (w, h) = (s.width as usize, s.height as usize);
    let stage1 = VideoLatentShape::from_pixels(channels, s.frames as usize, h / 2, w / 2);
    let stage2 = VideoLatentShape::from_pixels(channels, s.frames as usize, h, w);
    let audio_shape: AudioLatentShape = layouts.audio.shape(s.frames, s.fps);
    let fps = s.fps as f32;

    // Prompt.
    cancel.check()?;
    let before = crate::memory::MemoryReport::now().mlx_active;
    let had_gemma = c.text.as_ref().is_some_and(|t| t.gemma_loaded());
    let text = c.ensure_text(progress)?;
    progress.stage(Stage::EncodingPrompt);
    let encoded = text.encode(&s.prompt, Negative::None).fail("text_encoder_failed")?;
    if !had_gemma && text.gemma_loaded() {
        let after = crate::memory::MemoryReport::now().mlx_active;
        c.charge_text(after.saturating_sub(before) as u64);
    }
    let contexts = (encoded.positive.video, encoded.positive.audio);
    // A prompt-cache hit (Gemma did not run) shows in the job's timings.
    laps.lap(if encoded.cache_hit { "encode_prompt_cached" } else { "encode_prompt" }, &mut timings);

    let mut noiser = Noiser::new(s.seed);
    let shapes = Shapes { stage1, stage2, audio: audio_shape, fps };
    let (latent, audio_latent) =
        sample_two_stage(c, &shapes, (&contexts.0, &contexts.1), &mut noiser, progress, cancel, &mut timings)?;
    laps.0 = Instant::now();

    // Video decode, streamed into the H.264 encoder chunk by chunk.
    let decode_seed = noiser.next_seed();
    let base_channels = layouts.vae.decoder_base_channels;
    let bytes = if c.compute.dtype == mlx_rs::Dtype::Float32 { 4 } else { 2 };
    let tiling = match c.decode_budget {
        Some(budget) => TilingConfig::for_budget(latent.shape(), base_channels, bytes, budget),
        None => TilingConfig::for_available_memory(latent.shape(), base_channels, bytes),
    };
    if c.low_memory {
        c.drop_denoisers();
    }
    let decoder = c.ensure_video_decoder(progress)?;
    progress.stage(Stage::DecodingVideo);
    let mut writer = Mp4Writer::new(VideoSettings { width: s.width, height: s.height, fps: s.fps, bitrate: None })
        .fail("encode_failed")?;
    let options = DecodeOptions { seed: decode_seed, ..Default::default() };
    let mut push = |frames: Array| -> crate::video_vae::Result<()> {
        let rgb = to_rgb24(&frames)?;
        writer.push_frames(&rgb).map_err(|e| crate::video_vae::VaeError::Input(e.to_string()))
    };
    match tiling {
        Some(tiling) => tiled_decode(decoder, &latent, &tiling, &options, push).fail("decode_failed")?,
        None => push(decoder.forward(&latent, &options).fail("decode_failed")?).fail("decode_failed")?,
    }
    laps.lap("decode_video", &mut timings);
    cancel.check()?;

    // Audio.
    let audio_out = if s.audio {
        let (decoder, vocoder) = c.ensure_audio(progress)?;
        progress.stage(Stage::DecodingAudio);
        let wave = decode_audio(&audio_latent, decoder, vocoder).fail("decode_failed")?;
        let channels = wave.shape()[1] as usize;
        let samples = wave.try_as_slice::<f32>().map_err(|e| EngineError::Failed {
            code: "decode_failed".into(),
            message: format!("waveform not readable: {e:?}"),
        })?;
        let a = Audio::from_planar(samples, channels, vocoder.sample_rate).fail("decode_failed")?;
        laps.lap("decode_audio", &mut timings);
        Some(a)
    } else {
        None
    };

    cancel.check()?;
    progress.stage(Stage::WritingFile);
    writer.finish(output, audio_out.as_ref()).fail("encode_failed")?;
    laps.lap("write_file", &mut timings);
    Ok(GenerationOutput { timings })
}
