//! The single worker thread that owns the engine: runs jobs one at a time, loads/unloads on request, and
//! unloads components when their keep-alive expires or, between jobs, when the system runs short of memory.
use crate::{eta::JobClock, Factory, Shared};
use ltx_engine::job::{CancelToken, EngineError, GenerationOutput, Generator, Job, ProgressSink};
use ltx_protocol::{Event, EventKind, FailureCode, JobId, KeepAlive, ModelVariant, Part, Stage, ValidRequest};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub enum Cmd {
    Run {
        id: JobId,
        request: Box<ValidRequest>,
        seed: u64,
        output: PathBuf,
        cancel: CancelToken,
        clock: Arc<JobClock>,
        done: oneshot::Sender<Result<GenerationOutput, EngineError>>,
    },
    Load {
        variant: ModelVariant,
        /// `None`: each component's configured keep-alive.
        keep_alive: Option<KeepAlive>,
        done: oneshot::Sender<Result<(), EngineError>>,
    },
    Unload {
        variant: Option<ModelVariant>,
        done: oneshot::Sender<()>,
    },
    /// Later jobs load from this models directory.
    SetModelsDir {
        dir: PathBuf,
    },
}

/// Sends a job's stage and step events, each with the time since the job started and the whole job's ETA
/// ([`crate::eta`]).
struct Sink<'a> {
    shared: &'a Shared,
    job: JobId,
    clock: &'a JobClock,
}

impl ProgressSink for Sink<'_> {
    fn stage(&mut self, stage: Stage) {
        let (elapsed_ms, eta) = self.clock.stage(&stage);
        self.shared.emit(Event { job: self.job, kind: EventKind::Stage { stage, elapsed_ms, eta } });
    }
    fn step(&mut self, stage: Stage, step: u32, total: u32) {
        let (elapsed_ms, eta) = self.clock.step(&stage, step, total);
        self.shared.emit(Event { job: self.job, kind: EventKind::Step { stage, step, total, elapsed_ms, eta } });
    }
    fn wants_preview(&self) -> bool {
        self.shared.wants_previews()
    }
    fn preview(&mut self, step: u32, jpeg: Vec<u8>) {
        self.shared.emit(Event { job: self.job, kind: EventKind::Preview { step, jpeg } });
    }
}

/// When a component kept alive for `ka` from now unloads: `None` = never.
fn deadline(ka: KeepAlive) -> Option<Instant> {
    let now = Instant::now();
    match ka {
        KeepAlive::Forever => None,
        KeepAlive::UnloadNow => Some(now),
        // Saturates: a keep-alive past the limit (the wire can carry any number) is the limit.
        KeepAlive::Seconds(s) => now.checked_add(Duration::from_secs(s.min(KeepAlive::MAX_SECS))),
    }
}

/// Hands the heap pages freed by an unload back to the system, so the process's memory drops (glibc
/// keeps freed small blocks, which most of a model's tensors are, for reuse otherwise).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Each resident component's unload time (`None` = kept forever), keyed by variant and component.
#[derive(Default)]
struct KeepAlives(HashMap<(ModelVariant, Part), Option<Instant>>);

impl KeepAlives {
    /// Restarts a component's keep-alive: the one asked for, else its configured one.
    fn restart(&mut self, shared: &Shared, variant: ModelVariant, name: Part, requested: Option<KeepAlive>) {
        let ka = requested.unwrap_or_else(|| shared.cfg.keep_alive_for(name));
        self.0.insert((variant, name), deadline(ka));
    }

    fn next(&self) -> Option<Instant> {
        self.0.values().flatten().min().copied()
    }

    /// Unloads the components whose keep-alive has passed.
    fn expire(&mut self, engine: &mut dyn Generator) {
        let now = Instant::now();
        let due: Vec<_> = self.0.iter().filter(|(_, t)| t.is_some_and(|t| t <= now)).map(|(k, _)| *k).collect();
        for (variant, name) in &due {
            tracing::info!(variant = variant.name(), component = name.name(), "keep-alive expired; unloading");
            engine.unload_component(*variant, *name);
            self.0.remove(&(*variant, *name));
        }
        if !due.is_empty() {
            release_freed_memory();
        }
    }

    /// Forgets what is no longer resident, gives what became resident without a keep-alive its configured
    /// one, unloads what is due, and publishes what is loaded with its expiry.
    fn settle(&mut self, engine: &mut dyn Generator, shared: &Shared) {
        let resident = engine.components();
        self.0.retain(|(v, n), _| resident.iter().any(|c| c.variant == *v && c.name == *n));
        for c in &resident {
            if !self.0.contains_key(&(c.variant, c.name)) {
                self.restart(shared, c.variant, c.name, None);
            }
        }
        self.expire(engine);
        let wall = |t: Instant| {
            let left = t.saturating_duration_since(Instant::now()).as_millis();
            crate::store::now_ms().saturating_add(u64::try_from(left).unwrap_or(u64::MAX))
        };
        let mut comps = engine.components();
        for c in &mut comps {
            c.expires_ms = self.0.get(&(c.variant, c.name)).copied().flatten().map(wall);
        }
        shared.engine.publish(comps);
    }
}

/// How often an idle worker with models loaded looks at the system's memory.
const PRESSURE_POLL: Duration = Duration::from_secs(5);

/// While the system is short of memory (`memory_pressure`), unloads the largest loaded components until it
/// is not; `true` when something was unloaded. Only runs between jobs.
fn relieve_pressure(engine: &mut dyn Generator, shared: &Shared) -> bool {
    let mut comps = engine.components();
    comps.sort_by_key(|c| std::cmp::Reverse(c.bytes));
    let mut unloaded = false;
    for c in comps {
        if !shared.cfg.memory.pressure.now() {
            break;
        }
        tracing::warn!(
            variant = c.variant.name(),
            component = c.name.name(),
            bytes = c.bytes,
            "memory pressure: the system is short of memory; unloading"
        );
        engine.unload_component(c.variant, c.name);
        release_freed_memory();
        unloaded = true;
    }
    unloaded
}

/// Runs on its own thread until the command channel closes. A panic anywhere in the loop (an engine call, the
/// keep-alive bookkeeping, a progress event) is contained: the engine is rebuilt and the loop goes on, so the
/// worker never dies of one.
pub fn run(factory: Factory, rx: Receiver<Cmd>, shared: Arc<Shared>) {
    record_panic_locations();
    let mut engine = factory(&shared.cfg);
    let mut keep = KeepAlives::default();
    loop {
        let served = contained(|| serve(&mut engine, &mut keep, &rx, &shared, &factory));
        match served {
            Ok(()) => return,
            // The command in flight, if any, was dropped: its caller reports the worker stopped.
            Err(message) => restart(&mut engine, &mut keep, &shared, &factory, &message),
        }
    }
}

/// One command's work on the engine and the keep-alives.
type Step<'a> = &'a mut dyn FnMut(&mut dyn Generator, &mut KeepAlives);

/// Serves commands until the channel closes.
fn serve(
    engine: &mut Box<dyn Generator>,
    keep: &mut KeepAlives,
    rx: &Receiver<Cmd>,
    shared: &Arc<Shared>,
    factory: &Factory,
) {
    let watch_pressure = shared.cfg.memory.pressure != crate::memory::Pressure::Off;
    // Each command runs contained: on a panic the engine is rebuilt and the panic's message comes back.
    let guarded = |engine: &mut Box<dyn Generator>, keep: &mut KeepAlives, what: &str, f: Step<'_>| {
        let message = contained(|| f(engine.as_mut(), keep)).err()?;
        tracing::error!("the engine panicked during {what}");
        restart(engine, keep, shared, factory, &message);
        Some(message)
    };
    loop {
        let poll = (watch_pressure && !keep.0.is_empty()).then(|| Instant::now() + PRESSURE_POLL);
        let cmd = match [keep.next(), poll].into_iter().flatten().min() {
            Some(t) => match rx.recv_timeout(t.saturating_duration_since(Instant::now())) {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(cmd) => Some(cmd),
                Err(_) => return,
            },
        };
        // Replies go out once the keep-alives are settled, so a client that asks `ps` next sees the result.
        match cmd {
            None => {
                guarded(engine, keep, "a keep-alive check", &mut |engine, keep| {
                    keep.settle(engine, shared);
                    if watch_pressure && relieve_pressure(engine, shared) {
                        keep.settle(engine, shared);
                    }
                });
            }
            Some(Cmd::Run { id, request, seed, output, cancel, clock, done }) => {
                let mut res = Err(EngineError::Cancelled);
                let panicked = guarded(engine, keep, "a job", &mut |engine, keep| {
                    let mut sink = Sink { shared, job: id, clock: &clock };
                    let job = Job { id, request: &request, seed, output: &output };
                    res = engine.generate(&job, &mut sink, &cancel);
                    for name in res.iter().flat_map(|out| &out.used) {
                        keep.restart(shared, request.variant, *name, request.keep_alive);
                    }
                    keep.settle(engine, shared);
                });
                let _ = done.send(panicked.map_or(res, |message| Err(crashed(&message))));
            }
            Some(Cmd::Load { variant, keep_alive, done }) => {
                let mut res = Ok(());
                let panicked = guarded(engine, keep, "a load", &mut |engine, keep| {
                    res = engine.load(variant);
                    for c in engine.components().iter().filter(|c| c.variant == variant) {
                        keep.restart(shared, variant, c.name, keep_alive);
                    }
                    keep.settle(engine, shared);
                });
                let _ = done.send(panicked.map_or(res, |message| Err(crashed(&message))));
            }
            Some(Cmd::SetModelsDir { dir }) => {
                guarded(engine, keep, "a models-directory switch", &mut |engine, keep| {
                    engine.set_models_dir(&dir);
                    release_freed_memory();
                    keep.settle(engine, shared);
                });
            }
            Some(Cmd::Unload { variant, done }) => {
                guarded(engine, keep, "an unload", &mut |engine, keep| {
                    engine.unload(variant);
                    release_freed_memory();
                    keep.settle(engine, shared);
                });
                let _ = done.send(());
            }
        }
    }
}

/// The failure a job (or load) gets when the engine panicked under it.
fn crashed(message: &str) -> EngineError {
    EngineError::failed(
        FailureCode::EngineCrashed,
        format!("the engine panicked: {message}; it was restarted with no models loaded"),
    )
}

/// Runs `f`, containing a panic: `Err` carries its message and, where the hook saw it, its location.
fn contained<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        match PANIC_AT.with(|at| at.take()) {
            Some(at) => format!("{message} (at {at})"),
            None => message,
        }
    })
}

thread_local! {
    /// Where the last panic on this thread happened, as the panic hook saw it.
    static PANIC_AT: std::cell::Cell<Option<String>> = const { std::cell::Cell::new(None) };
}

/// Chains a panic hook that notes each panic's location for [`contained`] (the previous hook still prints it).
fn record_panic_locations() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(l) = info.location() {
                PANIC_AT.with(|at| at.set(Some(format!("{}:{}", l.file(), l.line()))));
            }
            previous(info)
        }));
    });
}

/// After a panic: drops everything the engine loaded (its state is unknown), builds a fresh one from the
/// factory on the current models directory, forgets the keep-alives, publishes that nothing is loaded and
/// counts the restart for `ltxctl status`.
fn restart(engine: &mut Box<dyn Generator>, keep: &mut KeepAlives, shared: &Shared, factory: &Factory, message: &str) {
    tracing::error!("the engine panicked: {message}; dropping its models and starting a fresh engine");
    let fresh = factory(&shared.cfg);
    let mut old = std::mem::replace(engine, fresh);
    // Unloading or dropping the panicked engine may panic too: then its memory is leaked, not the worker.
    if contained(move || {
        old.unload(None);
        drop(old);
    })
    .is_err()
    {
        tracing::error!("dropping the panicked engine panicked as well; its memory is not reclaimed");
    }
    release_freed_memory();
    engine.set_models_dir(&shared.engine.models_dir());
    *keep = KeepAlives::default();
    shared.engine.publish(Vec::new());
    shared.engine.record_restart(message);
}
