//! `ltxd`: the daemon as a library, so the shipped binary and the test binary (with a test engine) share
//! every line except the engine they plug in.
pub mod config;
mod crash;
pub mod engine;
pub mod eta;
mod handlers;
mod listen;
pub mod logging;
pub mod memory;
pub mod models;
pub mod notify;
mod outbox;
pub mod output;
mod scheduler;
mod server;
mod shared;
pub mod store;
mod worker;

use config::{Args, Config};
use ltx_engine::job::Generator;
use ltx_protocol::MachineReport;
pub(crate) use shared::{Broadcast, Shared};
use std::process::ExitCode;
use std::sync::Arc;
use store::Store;

/// Builds an engine for the config: the worker's at start and after a panic, and the copy the submit-time
/// preflight runs on. Building must be cheap (nothing loaded until a job or `load` asks).
pub trait MakeEngine: Fn(&Config) -> Box<dyn Generator> + Send + Sync + 'static {}
impl<F: Fn(&Config) -> Box<dyn Generator> + Send + Sync + 'static> MakeEngine for F {}

/// The factory, shared by the worker (which rebuilds its engine after a panic) and the engine handle's
/// preflight copy.
pub(crate) type Factory = Arc<dyn Fn(&Config) -> Box<dyn Generator> + Send + Sync>;

/// Threads of tokio's blocking pool.
const BLOCKING_THREADS: usize = 6;

/// Entry point shared by `ltxd` and test daemons: parse flags, load config, log, serve until a signal.
pub fn main_with(make_engine: impl MakeEngine) -> ExitCode {
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
    if args.memory_decision {
        let decision = cfg.memory.decision(ltx_engine::Compute::detect().backend, &cfg.models_dir);
        return match serde_json::to_string(&MachineReport { models_dir: cfg.models_dir.clone(), decision }) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ltxd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let _guard = logging::init(&cfg.log_dir);
    // Blocking work (SQLite behind one lock, file probes, at most two engine hand-overs) needs few threads: a
    // crowd of clients queues for them instead of growing the process by a thread each.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .build();
    let rt = match runtime {
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
    // Created 0600 if missing; never through a link, and only a file of this user.
    let file = ltx_protocol::fsutil::Dir::open(dir)?.open_resumable(std::ffi::OsStr::new("ltxd.lock"))?;
    // SAFETY: flock on an fd we own; no memory is shared.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!("another ltxd is already using {}", dir.display());
    }
    Ok(file)
}

pub async fn run(cfg: Config, make_engine: impl MakeEngine) -> anyhow::Result<()> {
    use anyhow::Context;
    // Bind first: a second daemon must stop here, before it touches the database.
    let listener = listen::listener(&cfg.socket)?;
    if let Some(dir) = cfg.socket.parent().filter(|d| !ltx_protocol::server::dir_is_private(d)) {
        tracing::warn!("{} is accessible to other users; the socket is 0600 and peers are uid-checked", dir.display());
    }
    ltx_protocol::server::private_dir(&cfg.state_dir)
        .with_context(|| format!("creating {}", cfg.state_dir.display()))?;
    let _lock = lock_state_dir(&cfg.state_dir)?;
    let mut store =
        Store::open(&cfg.state_dir.join("jobs.db")).context("opening the job database")?.with_input_cap(cfg.inputs);
    let interrupted = store.recover(&crash::last_reason(&cfg.state_dir))?;
    if let Err(e) = crash::install(&cfg.state_dir) {
        tracing::warn!("cannot record aborts for the next start: {e}");
    }
    for id in &interrupted {
        tracing::warn!(job = id, "job was running when the daemon died; marked interrupted");
    }
    for (id, message) in store.quarantine()? {
        let code = ltx_protocol::FailureCode::CorruptRecord.name();
        tracing::warn!(job = id, code, "job set aside as failed: {message}");
    }
    if let Err(e) = store.prune_inputs() {
        tracing::warn!("cannot prune job inputs: {e}");
    }
    if let Err(e) = std::fs::create_dir_all(&cfg.outputs_dir) {
        tracing::warn!("cannot create outputs dir {}: {e}", cfg.outputs_dir.display());
    }
    let recovered = output::recover(&mut store, &cfg);
    for (id, path) in &recovered.completed {
        tracing::warn!(job = id, output = %path.display(), "the daemon stopped after placing this job's output; recorded completed");
    }
    for path in recovered.removed.iter().chain(&models::remove_orphans(&cfg.config_path, &cfg.state_dir)) {
        tracing::info!("removed {}, a temporary file left by a crash", path.display());
    }
    let make_engine: Factory = Arc::new(make_engine);
    let (engine_handle, worker_rx) = engine::EngineHandle::new(cfg.models_dir.clone(), make_engine(&cfg));
    let shared = Arc::new(Shared::new(cfg, store, engine_handle, models::Models::start()?));
    let wshared = shared.clone();
    // The worker thread is not joined: it ends with the process (it may be inside a long step).
    std::thread::Builder::new()
        .name("ltxd-engine".into())
        .spawn(move || worker::run(make_engine, worker_rx, wshared))?;
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
    // Fold the WAL into jobs.db: a copy of that file alone (a backup) then holds every job.
    if let Err(e) = shared.db(|s| s.checkpoint()).await {
        tracing::warn!("cannot checkpoint the job database: {e}");
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
