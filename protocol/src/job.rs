//! A generation job's data: what is asked for ([`GenerationRequest`]), its model and pipeline, and how it is
//! recorded ([`JobRecord`]).
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub type JobId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModelVariant {
    /// LTX-2 (19B).
    Distilled,
    DistilledFp8,
    Dev,
    /// LTX-2.3 (22B).
    Ltx23Distilled,
    Ltx23Dev,
}

impl ModelVariant {
    /// Every variant, in the order of [`crate::rules::VARIANTS`] (generation, names, weights and defaults live
    /// there).
    pub const ALL: [ModelVariant; 5] =
        [Self::Distilled, Self::DistilledFp8, Self::Dev, Self::Ltx23Distilled, Self::Ltx23Dev];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pipeline {
    Distilled,
    OneStage,
    TwoStage,
}

/// Ollama-style keep-alive: how long components stay loaded after use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeepAlive {
    Forever,
    UnloadNow,
    Seconds(u64),
}

impl KeepAlive {
    /// The longest keep-alive in seconds (one year); longer ones are refused (`-1` keeps forever).
    pub const MAX_SECS: u64 = 365 * 24 * 3600;

    /// Parses "5m", "30s", "2h", "300" (seconds), "-1" (forever), "0" (unload now); at most
    /// [`KeepAlive::MAX_SECS`].
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.starts_with('-') {
            return Ok(Self::Forever);
        }
        let (num, mult) = match s.char_indices().last() {
            Some((i, 's')) => (&s[..i], 1),
            Some((i, 'm')) => (&s[..i], 60),
            Some((i, 'h')) => (&s[..i], 3600),
            _ => (s, 1),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid keep-alive {s:?}: use e.g. 30s, 5m, 2h, 0 (unload now) or -1 (forever)"))?;
        let max = Self::MAX_SECS;
        match n.checked_mul(mult) {
            Some(0) => Ok(Self::UnloadNow),
            Some(secs) if secs <= max => Ok(Self::Seconds(secs)),
            _ => Err(format!("keep-alive {s:?} is longer than the limit of {max}s (1 year); use -1 to keep forever")),
        }
    }
}

impl std::fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Forever => f.write_str("forever"),
            Self::UnloadNow => f.write_str("0"),
            Self::Seconds(s) => write!(f, "{s}s"),
        }
    }
}

/// First-frame image: the client sends the bytes (a launchd agent may not read the user's folders).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInput {
    pub name: String,
    pub bytes: Vec<u8>,
    pub strength: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationRequest {
    pub prompt: String,
    pub negative_prompt: Option<String>,
    pub variant: ModelVariant,
    pub pipeline: Pipeline,
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub fps: u32,
    pub steps: u32,
    pub guidance_scale: f32,
    /// Random when absent; the daemon always records the seed it used.
    pub seed: Option<u64>,
    pub image: Option<ImageInput>,
    pub audio: bool,
    /// A file path (`.mp4`) or an existing directory; the configured outputs directory when absent.
    pub output: Option<PathBuf>,
    /// Put the job at the front of the queue.
    pub front: bool,
    pub keep_alive: Option<KeepAlive>,
    /// Guidance beyond the video CFG scale (`guidance_scale`) for the guided pipelines; `None`: LTX-2's
    /// defaults. Ignored by the distilled pipeline.
    #[serde(default)]
    pub guidance: Option<Guidance>,
    /// Run the low-memory sequential plan (encode, drop Gemma, denoise, drop the transformer, decode
    /// tiled) even when everything would fit.
    #[serde(default)]
    pub low_memory: bool,
    /// The two-stage pipelines' latent upscale between the stages (×2, or ×1.5 where the generation has that
    /// upscaler); ignored by one-stage.
    #[serde(default)]
    pub upscale: Upscale,
}

/// The spatial latent upscale of the two-stage pipelines ([`crate::rules::GenerationRules::upscales`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Upscale {
    /// Stage 1 at half size.
    #[default]
    X2,
    /// Stage 1 at two thirds of the size (LTX-2.3's rational 3/2 upscaler).
    X1_5,
}

impl Upscale {
    pub const ALL: [Upscale; 2] = [Self::X2, Self::X1_5];
    /// The factor as written on the command line (`--upscale 1.5`).
    pub fn name(self) -> &'static str {
        match self {
            Self::X2 => "2",
            Self::X1_5 => "1.5",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.name() == s)
    }
    /// (numerator, denominator) of the factor: stage-1 latent sides are the full ones × den / num, so the full
    /// latent sides must be multiples of the numerator.
    pub fn ratio(self) -> (u32, u32) {
        match self {
            Self::X2 => (2, 1),
            Self::X1_5 => (3, 2),
        }
    }
}

/// Multi-modal guidance overrides (one-stage, and two-stage stage 1). Each `None` keeps the generation's
/// default ([`crate::rules::GuidanceDefaults`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Guidance {
    pub audio_cfg: Option<f32>,
    pub stg: Option<f32>,
    pub rescale: Option<f32>,
    pub modality: Option<f32>,
    /// Transformer blocks whose self-attention STG skips (LTX-2: `[29]`).
    pub stg_blocks: Option<Vec<u32>>,
}

impl GenerationRequest {
    /// The first variant's default pipeline with its defaults ([`crate::rules`]: distilled, the fast path).
    pub fn new(prompt: impl Into<String>) -> Self {
        Self::for_pipeline(prompt, ModelVariant::ALL[0], ModelVariant::ALL[0].default_pipeline())
    }

    /// `pipeline` on `variant` with the table's defaults for everything not asked for.
    pub fn for_pipeline(prompt: impl Into<String>, variant: ModelVariant, pipeline: Pipeline) -> Self {
        let g = variant.generation();
        let d = pipeline.defaults(variant);
        Self {
            prompt: prompt.into(),
            negative_prompt: None,
            variant,
            pipeline,
            width: g.width,
            height: g.height,
            frames: g.frames,
            fps: g.fps,
            steps: d.steps,
            guidance_scale: d.guidance_scale,
            seed: None,
            image: None,
            audio: true,
            output: None,
            front: false,
            keep_alive: None,
            guidance: None,
            low_memory: false,
            upscale: Upscale::X2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
    Interrupted,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Running, Self::Completed, Self::Failed, Self::Cancelled, Self::Interrupted]
            .into_iter()
            .find(|v| v.name() == s)
    }
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

/// A job as stored by the daemon. Image bytes are not echoed back (`request.image.bytes` is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub state: JobState,
    pub request: GenerationRequest,
    pub seed: u64,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub output: Option<PathBuf>,
    pub error_code: Option<String>,
    pub message: Option<String>,
    /// A completed job's stage timings in milliseconds, as its `Completed` event carried them; empty otherwise.
    #[serde(default)]
    pub timings: Vec<(String, u64)>,
}

/// Why a job failed: one machine spelling each, as `error_code` in records and `Failed` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCode {
    /// The files the pipeline needs are not in the models directory.
    ModelNotInstalled,
    /// The preflight found the job cannot fit in memory.
    InsufficientMemory,
    /// The first-frame image cannot be decoded or resized.
    InvalidImage,
    /// A checkpoint or component failed to load.
    LoadFailed,
    TextEncoderFailed,
    EncodeImageFailed,
    DenoiseFailed,
    UpscaleFailed,
    DecodeFailed,
    /// The H.264/AAC encoder or the MP4 muxer failed.
    EncodeFailed,
    PreviewFailed,
    /// The output directory cannot be created.
    OutputDir,
    /// The finished video cannot be placed or its sidecar written.
    OutputWrite,
    /// The engine worker stopped (a contained panic).
    EngineCrashed,
    /// The daemon stopped while the job ran.
    Interrupted,
    /// The stored job no longer passes validation (its row was altered on disk).
    CorruptRecord,
}

impl FailureCode {
    pub const ALL: [FailureCode; 16] = [
        Self::ModelNotInstalled,
        Self::InsufficientMemory,
        Self::InvalidImage,
        Self::LoadFailed,
        Self::TextEncoderFailed,
        Self::EncodeImageFailed,
        Self::DenoiseFailed,
        Self::UpscaleFailed,
        Self::DecodeFailed,
        Self::EncodeFailed,
        Self::PreviewFailed,
        Self::OutputDir,
        Self::OutputWrite,
        Self::EngineCrashed,
        Self::Interrupted,
        Self::CorruptRecord,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ModelNotInstalled => "model_not_installed",
            Self::InsufficientMemory => "insufficient_memory",
            Self::InvalidImage => "invalid_image",
            Self::LoadFailed => "load_failed",
            Self::TextEncoderFailed => "text_encoder_failed",
            Self::EncodeImageFailed => "encode_image_failed",
            Self::DenoiseFailed => "denoise_failed",
            Self::UpscaleFailed => "upscale_failed",
            Self::DecodeFailed => "decode_failed",
            Self::EncodeFailed => "encode_failed",
            Self::PreviewFailed => "preview_failed",
            Self::OutputDir => "output_dir",
            Self::OutputWrite => "output_write",
            Self::EngineCrashed => "engine_crashed",
            Self::Interrupted => "interrupted",
            Self::CorruptRecord => "corrupt_record",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::KeepAlive;

    #[test]
    fn keep_alive_parses_up_to_a_year() {
        assert_eq!(KeepAlive::parse("5m"), Ok(KeepAlive::Seconds(300)));
        assert_eq!(KeepAlive::parse("0"), Ok(KeepAlive::UnloadNow));
        assert_eq!(KeepAlive::parse("-1"), Ok(KeepAlive::Forever));
        assert_eq!(KeepAlive::parse("8760h"), Ok(KeepAlive::Seconds(KeepAlive::MAX_SECS)));
        for s in ["4611686018427387904s", "31536001", "8761h", "18446744073709551615h", "99999999999999999999"] {
            let e = KeepAlive::parse(s).unwrap_err();
            assert!(e.contains("invalid keep-alive") || e.contains("limit of 31536000s"), "{s}: {e}");
        }
        assert!(KeepAlive::parse("4611686018427387904s").unwrap_err().contains("limit of 31536000s (1 year)"));
    }
}
