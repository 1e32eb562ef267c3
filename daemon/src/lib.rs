//! `ltxd`: the daemon as a library, so the shipped binary and the test binary (with a test engine) share
//! every line except the engine they plug in.
pub mod config;
pub mod engine;
mod handlers;
mod listen;
pub mod logging;
pub mod memory;
pub mod models;
pub mod notify;
pub mod output;
mod scheduler;
mod server;
pub mod store;
mod worker;

use config::{Args, Config};
use ltx_engine::job::{CancelToken, Generator};
use ltx_protocol::{frame, Event, JobId, ServerMsg};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use store::Store;
use tokio::sync::{broadcast, Notify};

/// An event plus its encoded frame (encoded once, written to every subscriber).
pub(crate) type Broadcast = Arc<(Event, Vec<u8>)>;

#[derive(Default)]
pub(crate) struct Queue {
    pub paused: bool,
    pub running: Option<(JobId, CancelToken)>,
}

pub(crate) struct Shared {
    pub cfg: Config,
    pub store: Arc<Mutex<Store>>,
    pub events: broadcast::Sender<Broadcast>,
    pub queue: Mutex<Queue>,
    /// Wakes the scheduler (new job, resume, cancel of the running job, shutdown).
    pub wake: Notify,
    pub shutting_down: AtomicBool,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub preview_subscribers: AtomicUsize,
    /// The only path to the engine's worker thread, and the models directory.
    pub engine: engine::EngineHandle,
    pub started: Instant,
    /// Desktop notifications: who follows which job, whether a client shows notifications itself.
    pub desktop: Arc<notify::Desktop>,
    pub models: models::Models,
}

impl Shared {
    pub fn emit(&self, event: Event) {
        self.desktop.on_event(&event);
        match frame::encode(&ServerMsg::Event(event.clone())) {
            Ok(bytes) => {
                let _ = self.events.send(Arc::new((event, bytes)));
            }
            Err(e) => tracing::error!("cannot encode event: {e}"),
        }
    }

    /// Runs a store operation off the async threads (SQLite fsyncs on commit).
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> store::DbResult<T> + Send + 'static,
    ) -> Result<T, ltx_protocol::DaemonError> {
        let store = self.store.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().map_err(|_| "store lock poisoned".to_string())?;
            f(&mut guard).map_err(|e| e.to_string())
        })
        .await;
        match res {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ltx_protocol::DaemonError::Internal(format!("database: {e}"))),
            Err(e) => Err(ltx_protocol::DaemonError::Internal(e.to_string())),
        }
    }

    pub fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn begin_shutdown(&self) {
        if !self.shutting_down.swap(true, Ordering::SeqCst) {
            self.shutdown.send_replace(true);
            self.wake.notify_one();
        }
    }
}

/// Entry point shared by `ltxd` and test daemons: parse flags, load config, log, serve until a signal.
pub fn main_with(make_engine: impl FnOnce(&Config) -> Box<dyn Generator> + Send + 'static) -> ExitCode {
    use clap::Parser;
    let args = Args::parse();
    let env = ltx_protocol::paths::Env::process();
    let cfg = match Config::load(&args, ltx_protocol::paths::Os::current(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ltxd: {e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        println!("ok: {}", cfg.config_path.display());
        return ExitCode::SUCCESS;
    }
    let _guard = logging::init(&cfg.log_dir);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ltxd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(run(cfg, make_engine));
    // Do not wait on blocking tasks (e.g. a request queued behind a long engine step).
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("ltxd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Holds an exclusive lock on the state directory for the daemon's lifetime.
fn lock_state_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("ltxd.lock"))?;
    // SAFETY: flock on an fd we own; no memory is shared.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!("another ltxd is already using {}", dir.display());
    }
    Ok(file)
}

pub async fn run(
    cfg: Config,
    make_engine: impl FnOnce(&Config) -> Box<dyn Generator> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context;
    // Bind first: a second daemon must stop here, before it touches the database.
    let listener = listen::listener(&cfg.socket)?;
    if let Some(dir) = cfg.socket.parent().filter(|d| !ltx_protocol::server::dir_is_private(d)) {
        tracing::warn!("{} is accessible to other users; the socket is 0600 and peers are uid-checked", dir.display());
    }
    ltx_protocol::server::private_dir(&cfg.state_dir)
        .with_context(|| format!("creating {}", cfg.state_dir.display()))?;
    let _lock = lock_state_dir(&cfg.state_dir)?;
    let mut store = Store::open(&cfg.state_dir.join("jobs.db")).context("opening the job database")?;
    let interrupted = store.recover("the daemon stopped while this job was running (crash, kill or power loss)")?;
    for id in &interrupted {
        tracing::warn!(job = id, "job was running when the daemon died; marked interrupted");
    }
    if let Err(e) = std::fs::create_dir_all(&cfg.outputs_dir) {
        tracing::warn!("cannot create outputs dir {}: {e}", cfg.outputs_dir.display());
    }
    let (engine_handle, worker_rx) = engine::EngineHandle::new(cfg.models_dir.clone());
    let store = Arc::new(Mutex::new(store));
    let shared = Arc::new(Shared {
        desktop: Arc::new(notify::Desktop::start(cfg.notifications, store.clone())),
        store,
        events: broadcast::channel(4096).0,
        queue: Mutex::default(),
        wake: Notify::new(),
        shutting_down: AtomicBool::new(false),
        shutdown: tokio::sync::watch::channel(false).0,
        preview_subscribers: AtomicUsize::new(0),
        engine: engine_handle,
        started: Instant::now(),
        models: models::Models::start()?,
        cfg,
    });
    let engine = make_engine(&shared.cfg);
    let wshared = shared.clone();
    // The worker thread is not joined: it ends with the process (it may be inside a long step).
    std::thread::Builder::new().name("ltxd-engine".into()).spawn(move || worker::run(engine, worker_rx, wshared))?;
    tracing::info!(socket = %shared.cfg.socket.display(), pid = std::process::id(), "ltxd {} listening", ltx_protocol::VERSION);

    let sched = tokio::spawn(scheduler::run(shared.clone()));
    let signals = tokio::spawn(wait_for_signal(shared.clone()));
    server::serve(listener, shared.clone()).await;
    signals.abort();
    // Shutdown: the listener is gone (socket removed); the running job is already marked interrupted.
    let grace = shared.cfg.shutdown_grace;
    if tokio::time::timeout(grace, sched).await.is_err() {
        tracing::warn!("the running job did not stop within {grace:?}; exiting anyway");
    }
    tracing::info!("ltxd stopped");
    Ok(())
}

async fn wait_for_signal(shared: Arc<Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shared.begin_shutdown();
}
