//! The engine handle: the only path to the worker thread that owns the engine ([`crate::worker`]), the models
//! directory it reads, and what it has loaded. The scheduler runs jobs through it, request handlers load and
//! unload through it, `ltxctl models dir` switches the directory through it.
//!
//! One bounded channel carries every command in order, and the directory is switched under the same lock that
//! sends the switch: a job handed over after [`EngineHandle::set_models_dir`] returns runs from the new
//! directory (the running one finishes from the old).
//!
//! The submit-time preflight does not go through the worker (a job may be running for minutes): it runs on
//! the blocking pool against a second engine built by the same factory, which never loads anything and only
//! reads the model files' headers ([`Generator::preflight`]).
use crate::{eta::JobClock, worker::Cmd};
use ltx_engine::job::{CancelToken, EngineError, GenerationOutput, Generator};
use ltx_engine::{pipeline::Pipeline, Compute};
use ltx_protocol::{ComponentStatus, DaemonError, FailureCode, JobId, KeepAlive, ModelVariant, ValidRequest};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// How often the worker rebuilt the engine after a panic, and the last panic's message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Restarts {
    pub count: u32,
    pub last: Option<String>,
}

/// Commands waiting for the worker before a sender blocks (the scheduler sends one job at a time).
const QUEUE: usize = 4;
/// Senders handing a command over at once: each may hold a blocking thread while the channel is full.
const SENDERS: usize = 2;
/// Requests (loads, unloads) waiting for the worker before another is refused `EngineBusy`.
const MAX_WAITING: u32 = 64;

/// The engine the shipped `ltxd` runs: the LTX-2 pipelines over the configured models directory, on MLX's best
/// device (GPU in bf16 where MLX has one, else the CPU in f32).
pub fn shipped(cfg: &crate::config::Config) -> Box<dyn Generator> {
    Box::new(
        Pipeline::from_dir(cfg.models_dir.clone(), Compute::detect())
            .with_memory(cfg.memory.settings())
            .with_low_memory(cfg.memory.low_memory),
    )
}

pub struct EngineHandle {
    tx: SyncSender<Cmd>,
    /// The async queue in front of the channel: requests wait here without a thread.
    senders: tokio::sync::Semaphore,
    waiting: AtomicU32,
    /// The config's models directory until `ltxctl models dir PATH` switches it.
    dir: Mutex<PathBuf>,
    /// What the engine holds, as the worker last published it (`ltxctl ps`).
    resident: Mutex<Vec<ComponentStatus>>,
    /// The preflight's engine: never loads, follows the models directory.
    checker: Arc<Mutex<Box<dyn Generator>>>,
    restarts: Mutex<Restarts>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    Always,
    Bounded,
}

/// Counts one waiting command until dropped.
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn stopped() -> DaemonError {
    DaemonError::Internal("the engine worker stopped".into())
}

impl EngineHandle {
    /// The handle and the receiving end the worker thread reads; `checker` runs the submit-time preflight.
    pub fn new(models_dir: PathBuf, checker: Box<dyn Generator>) -> (Self, Receiver<Cmd>) {
        let (tx, rx) = sync_channel(QUEUE);
        let checker = Arc::new(Mutex::new(checker));
        let handle = Self {
            tx,
            senders: tokio::sync::Semaphore::new(SENDERS),
            waiting: AtomicU32::new(0),
            dir: Mutex::new(models_dir),
            resident: Mutex::default(),
            checker,
            restarts: Mutex::default(),
        };
        (handle, rx)
    }

    /// The engine's preflight of a job at submit, on the blocking pool: the memory estimate from the model
    /// files' headers, refused with its numbers when the job cannot fit.
    pub async fn preflight(&self, request: ValidRequest) -> Result<ValidRequest, DaemonError> {
        let checker = self.checker.clone();
        let res = tokio::task::spawn_blocking(move || {
            let res = checker.lock().unwrap_or_else(|p| p.into_inner()).preflight(&request);
            res.map(|()| request)
        })
        .await
        .map_err(|e| DaemonError::Internal(format!("the engine's preflight failed: {e}")))?;
        match res {
            Ok(request) => Ok(request),
            Err(EngineError::ModelNotInstalled(missing)) => Err(missing.into()),
            Err(EngineError::Failed { code: FailureCode::InsufficientMemory, message, .. }) => {
                Err(DaemonError::InsufficientMemory(message))
            }
            Err(e) => Err(DaemonError::Engine(format!("the job cannot run: {e}"))),
        }
    }

    /// The engine restarts after panics so far (`ltxctl status`).
    pub fn restarts(&self) -> Restarts {
        self.restarts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The worker records each rebuild after a panic.
    pub(crate) fn record_restart(&self, message: &str) {
        let mut r = self.restarts.lock().unwrap_or_else(|p| p.into_inner());
        r.count = r.count.saturating_add(1);
        r.last = Some(message.to_string());
    }

    /// The models directory jobs load from now.
    pub fn models_dir(&self) -> PathBuf {
        self.dir.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs one job on the worker, its stages and steps timed by `clock`; `EngineCrashed` when the worker is
    /// gone.
    pub async fn run(
        &self,
        id: JobId,
        request: ValidRequest,
        seed: u64,
        output: PathBuf,
        cancel: CancelToken,
        clock: Arc<JobClock>,
    ) -> Result<GenerationOutput, EngineError> {
        let (done, rx) = oneshot::channel();
        let lost = || EngineError::failed(FailureCode::EngineCrashed, "the engine worker stopped");
        let cmd = Cmd::Run { id, request: Box::new(request), seed, output, cancel, clock, done };
        self.send(cmd, Wait::Always).await.map_err(|_| lost())?;
        rx.await.unwrap_or_else(|_| Err(lost()))
    }

    /// Loads a variant and keeps it warm (`None`: each component's configured keep-alive).
    pub async fn load(&self, variant: ModelVariant, keep_alive: Option<KeepAlive>) -> Result<(), DaemonError> {
        let (done, rx) = oneshot::channel();
        self.send(Cmd::Load { variant, keep_alive, done }, Wait::Bounded).await?;
        match rx.await.map_err(|_| stopped())? {
            Ok(()) => Ok(()),
            Err(EngineError::ModelNotInstalled(missing)) => Err(missing.into()),
            Err(e) => Err(DaemonError::Engine(e.to_string())),
        }
    }

    /// Unloads one variant, or everything.
    pub async fn unload(&self, variant: Option<ModelVariant>) -> Result<(), DaemonError> {
        let (done, rx) = oneshot::channel();
        self.send(Cmd::Unload { variant, done }, Wait::Bounded).await?;
        rx.await.map_err(|_| stopped())
    }

    /// Switches the models directory: the engine unloads what came from the old one.
    pub fn set_models_dir(&self, dir: &Path) -> Result<(), DaemonError> {
        let mut current = self.dir.lock().unwrap_or_else(|p| p.into_inner());
        if *current != dir {
            self.tx.send(Cmd::SetModelsDir { dir: dir.to_path_buf() }).map_err(|_| stopped())?;
            self.checker.lock().unwrap_or_else(|p| p.into_inner()).set_models_dir(dir);
            *current = dir.to_path_buf();
        }
        Ok(())
    }

    /// The loaded components (expiry filled in by the worker, which owns keep-alive).
    pub fn resident(&self) -> Vec<ComponentStatus> {
        self.resident.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The worker publishes what is loaded after every command.
    pub(crate) fn publish(&self, resident: Vec<ComponentStatus>) {
        *self.resident.lock().unwrap_or_else(|p| p.into_inner()) = resident;
    }

    /// Hands a command over: it waits in the async queue (no thread), then at most [`SENDERS`] blocking
    /// sends run at once while the worker is inside a long step. A client request finding [`MAX_WAITING`]
    /// ahead of it is refused; the scheduler's job always waits.
    async fn send(&self, cmd: Cmd, wait: Wait) -> Result<(), DaemonError> {
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        let _counted = Waiting(&self.waiting);
        if wait == Wait::Bounded && waiting > MAX_WAITING {
            return Err(DaemonError::EngineBusy { waiting: waiting - 1 });
        }
        let _permit = self.senders.acquire().await.map_err(|_| stopped())?;
        let tx = self.tx.clone();
        match tokio::task::spawn_blocking(move || tx.send(cmd)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(stopped()),
        }
    }
}
