//! The generation interface between the daemon's worker and an engine (the LTX-2 pipeline, or test doubles).
//!
//! The daemon owns the queue, the output files and the events; an engine only turns one request into a video
//! file at the path it is given, reporting progress and checking cancellation at step boundaries.
use ltx_protocol::{ComponentStatus, FailureCode, MissingModels, ModelVariant, Part, Stage, ValidRequest};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One job handed to an engine.
pub struct Job<'a> {
    pub id: u64,
    /// Validated once, at submit: the engine never checks a field again.
    pub request: &'a ValidRequest,
    /// The seed to use (the daemon picked one if the request had none).
    pub seed: u64,
    /// Where to write the `.mp4`: a new file (it must not exist; the writer never follows a link there), which
    /// the daemon then places under its final name and gives its sidecar.
    pub output: &'a Path,
}

/// What an engine reports back on success.
#[derive(Debug, Default, Clone)]
pub struct GenerationOutput {
    /// Named phase durations in milliseconds (recorded in the sidecar and the `completed` event).
    pub timings: Vec<(String, u64)>,
    /// The components the job used (loaded or already resident): their keep-alive restarts.
    pub used: Vec<Part>,
}

/// Progress reporting; the daemon turns these into protocol events (adding elapsed time and ETA).
pub trait ProgressSink {
    fn stage(&mut self, stage: Stage);
    fn step(&mut self, stage: Stage, step: u32, total: u32);
    /// Whether anyone wants preview JPEGs right now (skip the latent decode when not).
    fn wants_preview(&self) -> bool;
    fn preview(&mut self, step: u32, jpeg: Vec<u8>);
}

/// Cooperative cancellation, checked by engines at step boundaries.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// `Err(EngineError::Cancelled)` once cancelled: use with `?` at each step boundary.
    pub fn check(&self) -> Result<(), EngineError> {
        if self.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[derive(Debug, Clone)]
pub enum EngineError {
    /// The job was cancelled at a step boundary.
    Cancelled,
    /// The files the job (or load) needs are missing: the same refusal the daemon gives at submit.
    ModelNotInstalled(MissingModels),
    /// Any other failure: its code, the message a person reads, and the error that caused it.
    Failed { code: FailureCode, message: String, cause: Option<Cause> },
}

/// The underlying error of a failure (shared so an [`EngineError`] stays `Clone`).
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

impl EngineError {
    /// A failure without an underlying error.
    pub fn failed(code: FailureCode, message: impl Into<String>) -> Self {
        Self::Failed { code, message: message.into(), cause: None }
    }

    /// A failure caused by `cause` (its message is the cause's).
    pub fn caused(code: FailureCode, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Failed { code, message: cause.to_string(), cause: Some(Arc::new(cause)) }
    }

    /// The machine code recorded with the job (`cancelled` for a cancellation).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::ModelNotInstalled(_) => FailureCode::ModelNotInstalled.name(),
            Self::Failed { code, .. } => code.name(),
        }
    }
}

/// Equal when the kind, code and message are (the cause is not compared).
impl PartialEq for EngineError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Cancelled, Self::Cancelled) => true,
            (Self::ModelNotInstalled(a), Self::ModelNotInstalled(b)) => a == b,
            (Self::Failed { code: a, message: m, .. }, Self::Failed { code: b, message: n, .. }) => a == b && m == n,
            _ => false,
        }
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cancelled => f.write_str("cancelled"),
            Self::ModelNotInstalled(missing) => missing.fmt(f),
            Self::Failed { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::ModelNotInstalled(missing) => Some(missing),
            Self::Failed { cause: Some(c), .. } => Some(c.as_ref()),
            _ => None,
        }
    }
}

/// A generation engine. The daemon's single worker thread owns it; calls never overlap.
pub trait Generator: Send {
    /// Runs one job to completion, writing the video to `job.output`.
    fn generate(
        &mut self,
        job: &Job<'_>,
        progress: &mut dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<GenerationOutput, EngineError>;

    /// Whether `request` can run, decided from the model files' headers alone (no weight is read, nothing is
    /// loaded, no device is touched): the daemon calls it at submit, on a copy of the engine off the worker
    /// thread, so a job that cannot fit is refused with the numbers instead of failing later. Engines without
    /// a preflight accept everything.
    fn preflight(&self, _request: &ValidRequest) -> Result<(), EngineError> {
        Ok(())
    }

    /// Loads (warms) a variant's components.
    fn load(&mut self, variant: ModelVariant) -> Result<(), EngineError>;

    /// Unloads one variant, or everything.
    fn unload(&mut self, variant: Option<ModelVariant>);

    /// Unloads one component of a variant (named as [`Generator::components`] names it); a variant whose
    /// last component goes is unloaded.
    fn unload_component(&mut self, variant: ModelVariant, name: Part);

    /// Later jobs load their models from `dir` (what was loaded from elsewhere is unloaded).
    fn set_models_dir(&mut self, dir: &Path);

    /// What is loaded now (expiry is filled in by the daemon, which owns keep-alive).
    fn components(&self) -> Vec<ComponentStatus>;
}
