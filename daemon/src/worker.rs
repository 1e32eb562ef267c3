//! The single worker thread that owns the engine: runs jobs one at a time, loads/unloads on request and
//! unloads components when their keep-alive expires.
use crate::Shared;
use ltx_engine::job::{CancelToken, EngineError, GenerationOutput, Generator, Job, ProgressSink};
use ltx_protocol::{Event, EventKind, GenerationRequest, JobId, KeepAlive, ModelVariant, Stage};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub enum Cmd {
    Run {
        id: JobId,
        request: Box<GenerationRequest>,
        seed: u64,
        output: PathBuf,
        cancel: CancelToken,
        done: oneshot::Sender<Result<GenerationOutput, EngineError>>,
    },
    Load {
        variant: ModelVariant,
        keep_alive: KeepAlive,
        done: oneshot::Sender<Result<(), EngineError>>,
    },
    Unload {
        variant: Option<ModelVariant>,
        done: oneshot::Sender<()>,
    },
}

struct Sink<'a> {
    shared: &'a Shared,
    job: JobId,
    stage_start: Option<(Stage, Instant)>,
    started: Instant,
}

impl ProgressSink for Sink<'_> {
    fn stage(&mut self, stage: Stage) {
        self.shared.emit(Event { job: self.job, kind: EventKind::Stage(stage) });
    }
    fn step(&mut self, stage: Stage, step: u32, total: u32) {
        let now = Instant::now();
        let since = match &self.stage_start {
            Some((s, t)) if *s == stage => *t,
            _ => {
                // The first step report of a stage marks its start; ETA counts from there.
                self.stage_start = Some((stage.clone(), now));
                now
            }
        };
        let done = now.duration_since(since).as_millis() as u64;
        let eta_ms = (step > 0 && total >= step).then(|| done / u64::from(step) * u64::from(total - step));
        let elapsed_ms = now.duration_since(self.started).as_millis() as u64;
        self.shared.emit(Event { job: self.job, kind: EventKind::Step { stage, step, total, elapsed_ms, eta_ms } });
    }
    fn wants_preview(&self) -> bool {
        self.shared.preview_subscribers.load(std::sync::atomic::Ordering::Relaxed) > 0
    }
    fn preview(&mut self, step: u32, jpeg: Vec<u8>) {
        self.shared.emit(Event { job: self.job, kind: EventKind::Preview { step, jpeg } });
    }
}

fn deadline(ka: KeepAlive) -> Option<Option<Instant>> {
    match ka {
        KeepAlive::Forever => Some(None),
        KeepAlive::UnloadNow => None,
        KeepAlive::Seconds(s) => Some(Instant::now().checked_add(Duration::from_secs(s))),
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

/// Runs on its own thread until the command channel closes.
pub fn run(mut engine: Box<dyn Generator>, rx: Receiver<Cmd>, shared: Arc<Shared>) {
    // Per variant: `None` = keep forever, `Some(t)` = unload at t.
    let mut expiry: HashMap<ModelVariant, Option<Instant>> = HashMap::new();
    loop {
        let next = expiry.iter().filter_map(|(v, t)| t.map(|t| (*v, t))).min_by_key(|(_, t)| *t);
        let cmd = match next {
            Some((v, t)) => match rx.recv_timeout(t.saturating_duration_since(Instant::now())) {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => {
                    tracing::info!(variant = v.name(), "keep-alive expired; unloading");
                    engine.unload(Some(v));
                    release_freed_memory();
                    expiry.remove(&v);
                    None
                }
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(cmd) => Some(cmd),
                Err(_) => return,
            },
        };
        let mut keep = |engine: &mut Box<dyn Generator>, v: ModelVariant, ka: KeepAlive| match deadline(ka) {
            Some(t) => {
                expiry.insert(v, t);
            }
            None => {
                engine.unload(Some(v));
                release_freed_memory();
                expiry.remove(&v);
            }
        };
        match cmd {
            None => {}
            Some(Cmd::Run { id, request, seed, output, cancel, done }) => {
                let mut sink = Sink { shared: &shared, job: id, stage_start: None, started: Instant::now() };
                let job = Job { id, request: &request, seed, output: &output };
                let res = engine.generate(&job, &mut sink, &cancel);
                let ka = request.keep_alive.unwrap_or(shared.cfg.keep_alive);
                if engine.components().iter().any(|c| c.variant == request.variant) {
                    keep(&mut engine, request.variant, ka);
                }
                let _ = done.send(res);
            }
            Some(Cmd::Load { variant, keep_alive, done }) => {
                let res = engine.load(variant, keep_alive);
                if res.is_ok() {
                    keep(&mut engine, variant, keep_alive);
                }
                let _ = done.send(res);
            }
            Some(Cmd::Unload { variant, done }) => {
                engine.unload(variant);
                release_freed_memory();
                match variant {
                    Some(v) => {
                        expiry.remove(&v);
                    }
                    None => expiry.clear(),
                }
                let _ = done.send(());
            }
        }
        // Publish what is loaded, with the expiry the daemon tracks.
        let wall = |t: Instant| crate::store::now_ms() + t.saturating_duration_since(Instant::now()).as_millis() as u64;
        let mut comps = engine.components();
        for c in &mut comps {
            c.expires_ms = expiry.get(&c.variant).copied().flatten().map(wall);
        }
        if let Ok(mut g) = shared.components.lock() {
            *g = comps;
        }
    }
}
