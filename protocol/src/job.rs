//! A generation job's data: what is asked for ([`GenerationRequest`]), its model and pipeline, and how it is
//! recorded ([`JobRecord`]).
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub type JobId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModelVariant {
    Distilled,
    DistilledFp8,
    Dev,
}

impl ModelVariant {
    pub const ALL: [ModelVariant; 3] = [Self::Distilled, Self::DistilledFp8, Self::Dev];
    pub fn name(self) -> &'static str {
        match self {
            Self::Distilled => "distilled",
            Self::DistilledFp8 => "distilled-fp8",
            Self::Dev => "dev",
        }
    }
    /// The checkpoint file this variant needs in the models directory.
    pub fn checkpoint(self) -> &'static str {
        match self {
            Self::Distilled => "ltx-2-19b-distilled.safetensors",
            Self::DistilledFp8 => "ltx-2-19b-distilled-fp8.safetensors",
            Self::Dev => "ltx-2-19b-dev.safetensors",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pipeline {
    Distilled,
    OneStage,
    TwoStage,
}

impl Pipeline {
    pub fn name(self) -> &'static str {
        match self {
            Self::Distilled => "distilled",
            Self::OneStage => "one-stage",
            Self::TwoStage => "two-stage",
        }
    }
}

/// Ollama-style keep-alive: how long components stay loaded after use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeepAlive {
    Forever,
    UnloadNow,
    Seconds(u64),
}

impl KeepAlive {
    /// Parses "5m", "30s", "2h", "300" (seconds), "-1" (forever), "0" (unload now).
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
        Ok(if n == 0 { Self::UnloadNow } else { Self::Seconds(n.saturating_mul(mult)) })
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
}

/// Multi-modal guidance overrides (one-stage, and two-stage stage 1). Each `None` keeps the LTX-2 default:
/// audio CFG 7, STG 1 (both modalities, block 29), rescale 0.7, modality (A↔V) guidance 3.
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
    /// Defaults for the distilled pipeline (the fast path).
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            negative_prompt: None,
            variant: ModelVariant::Distilled,
            pipeline: Pipeline::Distilled,
            width: 768,
            height: 512,
            frames: 97,
            fps: 24,
            steps: 8,
            guidance_scale: 1.0,
            seed: None,
            image: None,
            audio: true,
            output: None,
            front: false,
            keep_alive: None,
            guidance: None,
            low_memory: false,
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
