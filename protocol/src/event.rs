//! Job events streamed to subscribers.
use crate::job::JobId;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub job: JobId,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stage {
    LoadingComponent(String),
    EncodingPrompt,
    /// Denoising stage 1 or 2 (two-stage pipelines).
    Denoising(u8),
    Upscaling,
    DecodingVideo,
    DecodingAudio,
    WritingFile,
    /// Image-to-video: the first-frame image through the video VAE encoder.
    EncodingImage,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LoadingComponent(c) => write!(f, "loading {c}"),
            Self::EncodingPrompt => f.write_str("encoding prompt"),
            Self::Denoising(n) => write!(f, "denoising (stage {n})"),
            Self::Upscaling => f.write_str("upscaling"),
            Self::DecodingVideo => f.write_str("decoding video"),
            Self::DecodingAudio => f.write_str("decoding audio"),
            Self::WritingFile => f.write_str("writing file"),
            Self::EncodingImage => f.write_str("encoding image"),
        }
    }
}

/// How long a running job has left, over every stage it still has to run (`ltxd`'s estimate: its past jobs on
/// this machine per stage, scaled by tokens and steps, then the job's own steps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eta {
    pub remaining_ms: u64,
    /// The job's own denoising steps back it; `false`: an estimate from past jobs alone, to be shown as one.
    pub measured: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// Waiting; 1 = next to run.
    Queued {
        position: u32,
    },
    Started,
    /// A small latent-decoded JPEG (only to subscriptions that asked for previews).
    Preview {
        step: u32,
        jpeg: Vec<u8>,
    },
    /// A stage began, `elapsed_ms` after the job started.
    Stage {
        stage: Stage,
        elapsed_ms: u64,
        eta: Option<Eta>,
    },
    /// A denoising step ended.
    Step {
        stage: Stage,
        step: u32,
        total: u32,
        elapsed_ms: u64,
        eta: Option<Eta>,
    },
    Completed {
        output: PathBuf,
        duration_ms: u64,
        seed: u64,
        timings: Vec<(String, u64)>,
    },
    Failed {
        code: String,
        message: String,
    },
    Cancelled,
    Interrupted {
        reason: String,
    },
    /// Model download progress (job [`crate::models::MODEL_EVENTS`]).
    Download(crate::models::DownloadEvent),
}

impl EventKind {
    /// Whether this event ends the job.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Completed { .. } | Self::Failed { .. } | Self::Cancelled | Self::Interrupted { .. })
    }
}
