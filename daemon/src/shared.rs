//! The state every connection, the scheduler and the worker share. Only the config, the engine handle, the
//! notifier and the downloads are reached directly; the queue, the events, the store and the shutdown signal
//! through the methods here.
use crate::{config::Config, engine, models, notify, store, store::Store};
use ltx_engine::job::CancelToken;
use ltx_protocol::{frame, Event, EventKind, JobId, Progress, ServerMsg};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
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
    store: Arc<Mutex<Store>>,
    events: broadcast::Sender<Broadcast>,
    queue: Mutex<Queue>,
    /// The last stage or step event of a job and when it was sent (`ltxctl queue`'s progress, and what a
    /// client subscribing mid-job is shown first; only the running job's is read).
    progress: Mutex<Option<(JobId, Progress, Instant)>>,
    /// Wakes the scheduler (new job, resume, cancel of the running job, shutdown).
    wake: Notify,
    shutting_down: AtomicBool,
    shutdown: tokio::sync::watch::Sender<bool>,
    preview_subscribers: AtomicUsize,
    /// The only path to the engine's worker thread, and the models directory.
    pub engine: engine::EngineHandle,
    started: Instant,
    /// Desktop notifications: who follows which job, whether a client shows notifications itself.
    pub desktop: Arc<notify::Desktop>,
    pub models: models::Models,
    /// The completed jobs the ETA learns from.
    pub eta: crate::eta::History,
}

impl Shared {
    pub fn new(cfg: Config, store: Store, engine: engine::EngineHandle, models: models::Models) -> Self {
        let samples = store.samples(crate::eta::HISTORY).unwrap_or_else(|e| {
            tracing::warn!("the ETA starts without the past jobs: {e}");
            Vec::new()
        });
        let store = Arc::new(Mutex::new(store));
        Self {
            desktop: Arc::new(notify::Desktop::start(cfg.notifications, store.clone())),
            store,
            events: broadcast::channel(4096).0,
            queue: Mutex::default(),
            progress: Mutex::default(),
            wake: Notify::new(),
            shutting_down: AtomicBool::new(false),
            shutdown: tokio::sync::watch::channel(false).0,
            preview_subscribers: AtomicUsize::new(0),
            engine,
            started: Instant::now(),
            models,
            eta: crate::eta::History::new(samples),
            cfg,
        }
    }

    pub fn emit(&self, event: Event) {
        self.desktop.on_event(&event);
        let progress = match &event.kind {
            EventKind::Stage { stage, elapsed_ms, eta } => {
                Some(Progress { stage: stage.clone(), step: 0, total: 0, elapsed_ms: *elapsed_ms, eta: *eta })
            }
            EventKind::Step { stage, step, total, elapsed_ms, eta } => {
                Some(Progress { stage: stage.clone(), step: *step, total: *total, elapsed_ms: *elapsed_ms, eta: *eta })
            }
            _ => None,
        };
        if let Some(p) = progress {
            *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = Some((event.job, p, Instant::now()));
        }
        match frame::encode(&ServerMsg::Event(event.clone())) {
            Ok(bytes) => {
                let _ = self.events.send(Arc::new((event, bytes)));
            }
            Err(e) => tracing::error!("cannot encode event: {e}"),
        }
    }

    /// Job `job`'s last stage or step, if it reported one, its elapsed time and ETA as of now.
    pub fn progress(&self, job: JobId) -> Option<Progress> {
        let last = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let (_, p, at) = last.as_ref().filter(|(id, ..)| *id == job)?;
        let since = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut p = p.clone();
        p.elapsed_ms = p.elapsed_ms.saturating_add(since);
        if let Some(eta) = p.eta.as_mut() {
            eta.remaining_ms = eta.remaining_ms.saturating_sub(since);
        }
        Some(p)
    }

    /// The memory decision now, over the current models directory (file sizes read on the blocking pool).
    pub async fn decision(self: &Arc<Self>) -> ltx_protocol::MemoryDecision {
        let me = self.clone();
        let backend = ltx_engine::Compute::detect().backend;
        let decide = move || me.cfg.memory.decision(backend, &me.engine.models_dir());
        match tokio::task::spawn_blocking(decide.clone()).await {
            Ok(d) => d,
            // The pool is shutting down: a few file sizes, read here.
            Err(_) => decide(),
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

    /// Every event from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Broadcast> {
        self.events.subscribe()
    }

    /// Wakes the scheduler.
    pub fn wake_scheduler(&self) {
        self.wake.notify_one();
    }

    /// Until the scheduler is woken.
    pub async fn scheduler_woken(&self) {
        self.wake.notified().await
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Resolves once the shutdown has begun.
    pub async fn stopping(&self) {
        let _ = self.shutdown.subscribe().wait_for(|v| *v).await;
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Whether any client wants step previews; the returned guard counts one until dropped.
    pub fn wants_previews(&self) -> bool {
        self.preview_subscribers.load(Ordering::Relaxed) > 0
    }

    pub fn preview_subscriber(self: &Arc<Self>) -> PreviewGuard {
        self.preview_subscribers.fetch_add(1, Ordering::Relaxed);
        PreviewGuard(self.clone())
    }

    pub fn begin_shutdown(&self) {
        if !self.shutting_down.swap(true, Ordering::SeqCst) {
            self.shutdown.send_replace(true);
            self.wake.notify_one();
        }
    }
}

/// One client that wants previews, until dropped.
pub(crate) struct PreviewGuard(Arc<Shared>);

impl Drop for PreviewGuard {
    fn drop(&mut self) {
        self.0.preview_subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}
