//! Handshake, requests, replies and the shared data types.
use crate::event::Event;
use crate::validate::ValidationError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub type JobId = u64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    pub client_name: String,
    pub client_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol_version: u32,
    pub daemon_version: String,
    pub capabilities: Vec<String>,
}

/// Everything a client sends: the first frame must be `Hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClientMsg {
    Hello(Hello),
    Request(Request),
}

/// Everything the daemon sends. Replies come in request order; events interleave after `Subscribed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg {
    Welcome(Welcome),
    Reply(Reply),
    Event(Event),
    /// Connection-level error (bad frame, handshake, permission); the daemon closes the connection after it.
    Error(DaemonError),
}

// One request per frame, decoded and handled at once: the size of the biggest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Submit(GenerationRequest),
    /// Follow one job (`Some`) or all jobs; preview JPEGs only when asked for.
    Subscribe {
        job: Option<JobId>,
        previews: bool,
    },
    Cancel {
        job: JobId,
    },
    CancelAll,
    Queue,
    Pause,
    Resume,
    History {
        limit: u32,
    },
    Job {
        job: JobId,
    },
    Ps,
    Load {
        variant: ModelVariant,
        keep_alive: Option<KeepAlive>,
    },
    Unload {
        variant: Option<ModelVariant>,
    },
    Status,
    Shutdown,
    /// This client (the tray) shows completion notifications itself: the daemon posts none while it is connected.
    ShowsNotifications,
    /// Model files: installed / partial / downloading / missing, disk free.
    ModelsList,
    /// Download (or link from a Hugging Face cache) what `variant` needs for `pipeline` (its default when absent).
    ModelsPull {
        variant: ModelVariant,
        pipeline: Option<Pipeline>,
    },
    /// Delete a variant's files (and shared ones no other installed variant needs), partial downloads included.
    ModelsRemove {
        variant: ModelVariant,
    },
    /// Re-hash installed files against the published sha256 (one variant's files, or all).
    ModelsVerify {
        variant: Option<ModelVariant>,
    },
    /// Show or set the models directory (setting writes the config file; used after a restart).
    ModelsDir {
        path: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    Submitted { job: JobId, position: u32, seed: u64 },
    Subscribed,
    Cancelled { jobs: Vec<JobId> },
    Queue(Box<QueueInfo>),
    Ok,
    History(Vec<JobRecord>),
    Job(Box<JobRecord>),
    Ps(Vec<ComponentStatus>),
    Status(Box<DaemonStatus>),
    Error(DaemonError),
    Models(Box<crate::models::ModelsInfo>),
    Pulling(Vec<crate::models::PullFile>),
    Removed { files: Vec<String>, bytes: u64 },
    Verified(Vec<crate::models::VerifyResult>),
    ModelsDir { path: PathBuf, configured: PathBuf, restart_needed: bool },
}

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueInfo {
    pub paused: bool,
    pub capacity: u32,
    pub running: Option<JobRecord>,
    pub pending: Vec<JobRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentStatus {
    pub name: String,
    pub variant: ModelVariant,
    pub bytes: u64,
    /// Unix milliseconds when it will be unloaded; `None` = kept forever.
    pub expires_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub daemon_version: String,
    pub protocol_version: u32,
    pub pid: u32,
    pub uptime_ms: u64,
    pub socket: PathBuf,
    pub paused: bool,
    pub running: Option<JobId>,
    pub pending: u32,
    pub capacity: u32,
    pub outputs_dir: PathBuf,
    pub models_dir: PathBuf,
    /// Where generation runs: backend, compute dtype and MLX version (e.g. `cuda bf16, MLX 0.32.2`).
    pub compute: String,
    /// The memory profile and budget the preflight holds jobs to.
    pub memory: String,
}

/// Typed errors the daemon reports; `Display` is the message a person reads.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum DaemonError {
    #[error("protocol version mismatch: client speaks v{client}, daemon {daemon_version} speaks v{daemon} — restart the daemon (`ltxctl daemon stop && ltxctl daemon start`) or update ltxctl")]
    VersionMismatch { client: u32, daemon: u32, daemon_version: String },
    #[error("the first message on a connection must be Hello")]
    HandshakeRequired,
    #[error("bad frame: {0}")]
    BadFrame(String),
    #[error("invalid request: {0}")]
    Invalid(ValidationError),
    #[error("queue is full ({capacity} jobs waiting); try again later")]
    Busy { capacity: u32 },
    #[error("no job with id {0}")]
    NotFound(JobId),
    #[error("job {job} is already {state:?} and cannot be cancelled")]
    NotCancellable { job: JobId, state: JobState },
    #[error("permission denied: the daemon runs as uid {daemon_uid}, this client is uid {peer_uid}")]
    PermissionDenied { peer_uid: u32, daemon_uid: u32 },
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Engine(String),
    #[error("internal daemon error: {0}")]
    Internal(String),
    #[error("model files missing from {}: {} — run `{command}`", dir.display(), missing.join(", "))]
    ModelsMissing { dir: PathBuf, missing: Vec<String>, command: String },
    #[error("{0}")]
    Models(String),
}
