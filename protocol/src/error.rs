//! The errors the daemon reports to a client. bincode encodes an enum by its variant index: the first
//! variant (`VersionMismatch`) must stay first, so a client of any version reads an older daemon's refusal.
use crate::catalogue::MissingModels;
use crate::job::{JobId, JobState};
use crate::validate::ValidationError;
use serde::{Deserialize, Serialize};

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
    #[error(transparent)]
    ModelsMissing(#[from] MissingModels),
    #[error("{0}")]
    Models(String),
    #[error("the daemon already serves its maximum of {max} connections; close idle clients and try again")]
    TooManyConnections { max: u32 },
    #[error("the engine has {waiting} requests waiting; try again when the running job has finished")]
    EngineBusy { waiting: u32 },
    #[error("cannot check the model files in {}: {reason}", dir.display())]
    ModelsUnreadable { dir: std::path::PathBuf, reason: String },
    /// The engine's preflight at submit: the job cannot fit in memory (the numbers and what would fit).
    #[error("{0}")]
    InsufficientMemory(String),
}

impl DaemonError {
    /// The stable machine spelling of this error: the `"code"` of a JSON error object (`docs/json.md`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::VersionMismatch { .. } => "version_mismatch",
            Self::HandshakeRequired => "handshake_required",
            Self::BadFrame(_) => "bad_frame",
            Self::Invalid(_) => "invalid_request",
            Self::Busy { .. } => "queue_full",
            Self::NotFound(_) => "not_found",
            Self::NotCancellable { .. } => "not_cancellable",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::ShuttingDown => "shutting_down",
            Self::Engine(_) => "engine",
            Self::Internal(_) => "internal",
            Self::ModelsMissing(_) => "models_missing",
            Self::Models(_) => "models",
            Self::TooManyConnections { .. } => "too_many_connections",
            Self::EngineBusy { .. } => "engine_busy",
            Self::ModelsUnreadable { .. } => "models_unreadable",
            Self::InsufficientMemory(_) => "insufficient_memory",
        }
    }

    /// For an invalid request, the validation refusal's code ([`ValidationError::code`]).
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(v) => Some(v.code()),
            _ => None,
        }
    }
}
