//! One generation job end to end, for every pipeline: prompt (with the negative prompt when guided) →
//! first-frame image latents (image-to-video) → the pipeline's sampling ([`super::sample`]) → video VAE
//! decode (tiled when large), streamed into the H.264 encoder → audio VAE + vocoder → MP4.
use std::path::Path;

use ltx_protocol::{FailureCode, Pipeline as Kind, Stage};
use mlx_rs::Array;

use super::{
    components::Components,
    conditioning,
    latents::{video_channels, Noiser, VideoLatentShape},
    preview::Previewer,
    sample::{sample_one_stage, sample_two_stage, FirstFrame, Guided, Laps, Sampling, Shapes, Stage1},
    Fail,
};
use crate::{
    audio_vae::decode_audio,
    job::{CancelToken, EngineError, GenerationOutput, ProgressSink},
    media::{Audio, Mp4Writer, VideoSettings},
    sampling::{ltx2_sigmas, GuiderParams, DISTILLED_SIGMAS},
    text::Negative,
    video_vae::{decoder::to_rgb24, tiling::tiled_decode, DecodeOptions, TilingConfig},
};

/// A first-frame image as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub strength: f32,
}

/// What one generation needs from a validated request ([`super::generator::settings`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub pipeline: Kind,
    pub prompt: String,
    /// Guided pipelines: `None` = the reference's default negative prompt.
    pub negative: Option<String>,
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub fps: f64,
    pub seed: u64,
    pub audio: bool,
    /// Stage-1 steps of the guided pipelines (the distilled schedule is fixed).
    pub steps: u32,
    pub video_guider: GuiderParams,
    pub audio_guider: GuiderParams,
    pub image: Option<Image>,
    /// The two-stage pipelines' spatial upscale.
    pub upscale: ltx_protocol::Upscale,
}

/// Runs `s.pipeline`, writing the MP4 to `output`.
pub fn generate(
    c: &mut Components,
    s: &Settings,
    output: &Path,
    progress: &mut dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<GenerationOutput, EngineError> {
    c.models.check(s.pipeline)?;
    let mut timings = Vec::new();
    let mut laps = Laps(std::time::Instant::now());
    let layouts = c.layouts()?;
    let channels = video_channels(&layouts.vae);
    let (w, h) = (s.width as usize, s.height as usize);
    let one_stage = !s.pipeline.rules().two_stage;
    let (num, den) = s.upscale.ratio();
    let (h1, w1) = if one_stage { (h, w) } else { (h * den as usize / num as usize, w * den as usize / num as usize) };
    let shapes = Shapes {
        upscale: s.upscale,
        stage1: VideoLatentShape::from_pixels(channels, s.frames as usize, h1, w1),
        stage2: VideoLatentShape::from_pixels(channels, s.frames as usize, h, w),
        audio: layouts.audio.shape(s.frames, s.fps),
        fps: s.fps as f32,
    };

    // Prompt (and the negative prompt when guided).
    cancel.check()?;
    let before = crate::memory::MemoryReport::now().mlx_active;
    let had_gemma = c.text.as_ref().is_some_and(|t| t.gemma_loaded());
    let text = c.ensure_text(progress)?;
    progress.stage(Stage::EncodingPrompt);
    let negative = if s.pipeline.guided() { Negative::for_cfg(s.negative.as_deref()) } else { Negative::None };
    let encoded = text.encode(&s.prompt, negative).fail(FailureCode::TextEncoderFailed)?;
    if !had_gemma && text.gemma_loaded() {
        let after = crate::memory::MemoryReport::now().mlx_active;
        c.charge_text(after.saturating_sub(before) as u64);
    }
    // A prompt-cache hit (Gemma did not run) shows in the job's timings.
    laps.lap(if encoded.cache_hit { "encode_prompt_cached" } else { "encode_prompt" }, &mut timings);

    // First-frame image latents at each stage's size.
    let first_frame = match &s.image {
        Some(img) => {
            cancel.check()?;
            let encoder = c.ensure_video_encoder(progress)?;
            progress.stage(Stage::EncodingImage);
            let pixels = conditioning::prepare_image(&img.bytes)?;
            let at = |height: usize, width: usize| -> Result<FirstFrame, EngineError> {
                let latent = conditioning::encode_first_frame(encoder, &pixels, width, height)?;
                Ok(FirstFrame { latent, strength: img.strength })
            };
            let stage2 = if one_stage { None } else { Some(at(h, w)?) };
            let ff = [Some(at(h1, w1)?), stage2];
            laps.lap("encode_image", &mut timings);
            ff
        }
        None => [None, None],
    };

    let negatives = encoded.negative.as_ref();
    let guided = match (s.pipeline.guided(), negatives) {
        (true, Some(n)) => Some(Guided {
            video_negative: &n.video,
            audio_negative: &n.audio,
            video: s.video_guider.clone(),
            audio: s.audio_guider.clone(),
        }),
        (true, None) => {
            return Err(EngineError::failed(FailureCode::TextEncoderFailed, "the negative prompt was not encoded"))
        }
        (false, _) => None,
    };
    let sigmas = if s.pipeline.guided() { ltx2_sigmas(s.steps as usize, None) } else { DISTILLED_SIGMAS.to_vec() };
    let sampling = Sampling {
        shapes,
        contexts: (&encoded.positive.video, &encoded.positive.audio),
        stage1: Stage1 { sigmas, guided },
        first_frame,
    };
    let mut noiser = Noiser::new(s.seed);
    let previewer = Previewer::new(c, progress)?;
    let preview = previewer.as_ref();
    let (latent, audio_latent) = match s.pipeline {
        Kind::OneStage => sample_one_stage(c, &sampling, &mut noiser, progress, cancel, &mut timings, preview)?,
        Kind::Distilled | Kind::TwoStage => {
            let lora = s.pipeline.rules().lora_on_dev;
            sample_two_stage(c, &sampling, lora, &mut noiser, progress, cancel, &mut timings, preview)?
        }
    };
    drop(previewer);
    decode_and_write(c, s, &latent, &audio_latent, &mut noiser, output, progress, cancel, &mut timings)?;
    Ok(GenerationOutput { timings, used: Vec::new() })
}

/// Video decode streamed into the H.264 encoder chunk by chunk, then the audio, then the MP4.
#[allow(clippy::too_many_arguments)]
fn decode_and_write(
    c: &mut Components,
    s: &Settings,
    latent: &Array,
    audio_latent: &Array,
    noiser: &mut Noiser,
    output: &Path,
    progress: &mut dyn ProgressSink,
    cancel: &CancelToken,
    timings: &mut Vec<(String, u64)>,
) -> Result<(), EngineError> {
    let mut laps = Laps(std::time::Instant::now());
    let layouts = c.layouts()?;
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
        .fail(FailureCode::EncodeFailed)?;
    let options = DecodeOptions { seed: decode_seed, ..Default::default() };
    let mut push = |frames: Array| -> crate::video_vae::Result<()> {
        let rgb = to_rgb24(&frames)?;
        writer.push_frames(&rgb).map_err(|e| crate::video_vae::VaeError::Input(e.to_string()))
    };
    match tiling {
        Some(tiling) => tiled_decode(decoder, latent, &tiling, &options, push).fail(FailureCode::DecodeFailed)?,
        None => {
            push(decoder.forward(latent, &options).fail(FailureCode::DecodeFailed)?).fail(FailureCode::DecodeFailed)?
        }
    }
    laps.lap("decode_video", timings);
    cancel.check()?;

    let audio_out = if s.audio {
        let (decoder, vocoder) = c.ensure_audio(progress)?;
        progress.stage(Stage::DecodingAudio);
        let wave = decode_audio(audio_latent, decoder, vocoder).fail(FailureCode::DecodeFailed)?;
        let &[1, channels, _] = wave.shape() else {
            let shape = wave.shape();
            return Err(EngineError::failed(
                FailureCode::DecodeFailed,
                format!("the vocoder returned shape {shape:?}"),
            ));
        };
        let channels = channels as usize;
        let samples = wave
            .try_as_slice::<f32>()
            .map_err(|e| EngineError::failed(FailureCode::DecodeFailed, format!("waveform not readable: {e:?}")))?;
        let a = Audio::from_planar(samples, channels, vocoder.sample_rate()).fail(FailureCode::DecodeFailed)?;
        laps.lap("decode_audio", timings);
        Some(a)
    } else {
        None
    };

    cancel.check()?;
    progress.stage(Stage::WritingFile);
    writer.finish(output, audio_out.as_ref()).fail(FailureCode::EncodeFailed)?;
    laps.lap("write_file", timings);
    Ok(())
}
