//! The messages on a connection: the handshake, every request and every reply.
use crate::error::DaemonError;
use crate::event::Event;
use crate::job::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// Finished jobs, newest first: at most `limit` (1 to [`MAX_HISTORY`]; the daemon clamps).
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
    /// Stop every running or queued download (partial files are kept; a pull resumes them). Appended last:
    /// the bincode indices of the variants above stay.
    ModelsCancel,
    /// Download a generation's preview decoder (`ltxctl models pull --preview`), answered like `ModelsPull`.
    /// Appended last, as `ModelsCancel`.
    ModelsPullPreview {
        generation: crate::rules::Generation,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    Submitted {
        job: JobId,
        position: u32,
        seed: u64,
    },
    Subscribed,
    Cancelled {
        jobs: Vec<JobId>,
    },
    Queue(Box<QueueInfo>),
    Ok,
    History(Vec<JobRecord>),
    Job(Box<JobRecord>),
    Ps(Vec<ComponentStatus>),
    Status(Box<DaemonStatus>),
    Error(DaemonError),
    Models(Box<crate::models::ModelsInfo>),
    Pulling(Vec<crate::models::PullFile>),
    Removed {
        files: Vec<String>,
        bytes: u64,
    },
    Verified(Vec<crate::models::VerifyResult>),
    ModelsDir {
        path: PathBuf,
        configured: PathBuf,
        restart_needed: bool,
    },
    /// The downloads `ModelsCancel` stopped.
    ModelsCancelled {
        files: Vec<String>,
    },
}

/// The most jobs one `History` request returns.
pub const MAX_HISTORY: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueInfo {
    pub paused: bool,
    pub capacity: u32,
    pub running: Option<JobRecord>,
    /// How far the running job is: its last stage or step event (`None` before its first).
    pub progress: Option<Progress>,
    pub pending: Vec<JobRecord>,
}

/// A running job's last stage or step event, as of when it was asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: crate::Stage,
    /// The stage's last step of `total`; both 0 before its first step (or in a stage without steps).
    pub step: u32,
    pub total: u32,
    pub elapsed_ms: u64,
    pub eta: Option<crate::Eta>,
}

impl Progress {
    /// The event that brings a client that joins now up to date.
    pub fn event(&self) -> crate::EventKind {
        let Progress { stage, step, total, elapsed_ms, eta } = self.clone();
        match total {
            0 => crate::EventKind::Stage { stage, elapsed_ms, eta },
            _ => crate::EventKind::Step { stage, step, total, elapsed_ms, eta },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentStatus {
    pub name: crate::Part,
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
    /// What a job that names no variant runs on this machine, and how ([`MemoryDecision`]).
    pub decision: MemoryDecision,
    /// How often the engine was rebuilt after a panic since the daemon started.
    pub engine_restarts: u32,
    /// The last engine panic's message (the job it failed has it too).
    pub engine_panic: Option<String>,
}

/// The one memory decision (`ltx_engine::pipeline::decision::decide`): the variant a job that names none runs on
/// this machine, the loading plan its weights get, and why. `ltxctl status`, `doctor`, a refused submit and each
/// job's sidecar show this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryDecision {
    /// The memory profile (`16gb`, …).
    pub profile: String,
    /// The machine's memory and the peak a job is held to, in bytes.
    pub total_memory: u64,
    pub budget: u64,
    pub variant: ModelVariant,
    /// Its files are in the models directory.
    pub installed: bool,
    /// What its weights take loaded: the installed files (Gemma at the profile's precision), else the published
    /// sizes.
    pub weights: u64,
    /// The low-memory sequential plan (the weights exceed the budget, or the config asks for it); else all
    /// resident, a job too large for the budget still running low-memory.
    pub low_memory: bool,
    pub why: String,
}

impl MemoryDecision {
    pub fn plan(&self) -> &'static str {
        if self.low_memory {
            "low-memory sequential"
        } else {
            "all resident"
        }
    }

    /// The command that installs the variant, when it is not installed.
    pub fn pull(&self) -> Option<String> {
        let v = self.variant;
        (!self.installed).then(|| crate::catalogue::pull_command(v, v.default_pipeline()))
    }

    /// One line: `distilled-fp8, low-memory sequential plan: <why>`.
    pub fn summary(&self) -> String {
        format!("{}, {} plan: {}", self.variant.name(), self.plan(), self.why)
    }
}

/// What `ltxd --memory-decision` prints (one JSON line) for `ltxctl doctor` when no daemon runs: the models
/// directory the config names and the decision over it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineReport {
    pub models_dir: PathBuf,
    pub decision: MemoryDecision,
}
