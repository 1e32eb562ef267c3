//! One generation job end to end, for every pipeline: prompt (with the negative prompt when guided) →
//! first-frame image latents (image-to-video) → the pipeline's sampling ([`super::sample`]) → video VAE
//! decode (tiled when large), streamed into the H.264 encoder → audio VAE + vocoder → MP4.
use std::path::Path;

use ltx_protocol::{Pipeline as Kind, Stage};
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

/// What one generation needs from a request.
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
}

impl Settings {
    /// The distilled pipeline's settings for a prompt (tests, tools).
    pub fn distilled(prompt: &str, width: u32, height: u32, frames: u32, seed: u64) -> Self {
        Self {
            pipeline: Kind::Distilled,
            prompt: prompt.into(),
            negative: None,
            width,
            height,
            frames,
            fps: 24.0,
            seed,
            audio: true,
            steps: 8,
            video_guider: GuiderParams::ltx2_video(),
            audio_guider: GuiderParams::ltx2_audio(),
            image: None,
        }
    }

    fn guided(&self) -> bool {
        self.pipeline != Kind::Distilled
    }

    /// `assert_resolution` (÷64 for the two-stage flows, ÷32 for one-stage) and the VAE's 8k+1 frames.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |message: String| Err(EngineError::Failed { code: "invalid_request".into(), message });
        let multiple = if self.pipeline == Kind::OneStage { 32 } else { 64 };
        if self.width == 0 || self.height == 0 || self.width % multiple != 0 || self.height % multiple != 0 {
            return bad(format!(
                "{}x{}: the {} pipeline needs width and height divisible by {multiple}",
                self.width,
                self.height,
                self.pipeline.name()
            ));
        }
        if self.frames % 8 != 1 {
            return bad(format!("{} frames: the video VAE needs 8k+1 frames", self.frames));
        }
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return bad(format!("frame rate {}", self.fps));
        }
        if self.guided() && self.steps == 0 {
            return bad("the guided pipelines need at least one step".into());
        }
        Ok(())
    }
}

/// Runs `s.pipeline`, writing the MP4 to `output`.
pub fn generate(
    c: &mut Components,
    s: &Settings,
    output: &Path,
    progress: &mut dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<GenerationOutput, EngineError> {
    s.validate()?;
    c.models.check(s.audio, s.pipeline == Kind::TwoStage)?;
    let mut timings = Vec::new();
    let mut laps = Laps(std::time::Instant::now());
    let layouts = c.layouts()?;
    let channels = video_channels(&layouts.vae);
    let (w, h) = (s.width as usize, s.height as usize);
    let one_stage = s.pipeline == Kind::OneStage;
    let (h1, w1) = if one_stage { (h, w) } else { (h / 2, w / 2) };
    let shapes = Shapes {
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
    let negative = if s.guided() { Negative::for_cfg(s.negative.as_deref()) } else { Negative::None };
    let encoded = text.encode(&s.prompt, negative).fail("text_encoder_failed")?;
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
    let guided = match (s.guided(), negatives) {
        (true, Some(n)) => Some(Guided {
            video_negative: &n.video,
            audio_negative: &n.audio,
            video: s.video_guider.clone(),
            audio: s.audio_guider.clone(),
        }),
        (true, None) => {
            return Err(EngineError::Failed {
                code: "text_encoder_failed".into(),
                message: "the negative prompt was not encoded".into(),
            })
        }
        (false, _) => None,
    };
    let sigmas = if s.guided() { ltx2_sigmas(s.steps as usize, None) } else { DISTILLED_SIGMAS.to_vec() };
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
            let lora = s.pipeline == Kind::TwoStage;
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
        .fail("encode_failed")?;
    let options = DecodeOptions { seed: decode_seed, ..Default::default() };
    let mut push = |frames: Array| -> crate::video_vae::Result<()> {
        let rgb = to_rgb24(&frames)?;
        writer.push_frames(&rgb).map_err(|e| crate::video_vae::VaeError::Input(e.to_string()))
    };
    match tiling {
        Some(tiling) => tiled_decode(decoder, latent, &tiling, &options, push).fail("decode_failed")?,
        None => push(decoder.forward(latent, &options).fail("decode_failed")?).fail("decode_failed")?,
    }
    laps.lap("decode_video", timings);
    cancel.check()?;

    let audio_out = if s.audio {
        let (decoder, vocoder) = c.ensure_audio(progress)?;
        progress.stage(Stage::DecodingAudio);
        let wave = decode_audio(audio_latent, decoder, vocoder).fail("decode_failed")?;
        let channels = wave.shape()[1] as usize;
        let samples = wave.try_as_slice::<f32>().map_err(|e| EngineError::Failed {
            code: "decode_failed".into(),
            message: format!("waveform not readable: {e:?}"),
        })?;
        let a = Audio::from_planar(samples, channels, vocoder.sample_rate).fail("decode_failed")?;
        laps.lap("decode_audio", timings);
        Some(a)
    } else {
        None
    };

    cancel.check()?;
    progress.stage(Stage::WritingFile);
    writer.finish(output, audio_out.as_ref()).fail("encode_failed")?;
    laps.lap("write_file", timings);
    Ok(())
}
