//! The daemon's request handlers: one function per [`Request`], each against the shared state, the store and the
//! engine handle. The connection loop ([`crate::server`]) calls [`handle`] and writes what it returns.
use crate::outbox::{Out, CLIENT_BUFFER};
use crate::Shared;
use ltx_protocol::{validate, DaemonError, DaemonStatus, Event, EventKind, FsCheck};
use ltx_protocol::{JobId, JobState, QueueInfo, Reply, Request, ServerMsg};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, Notify};
use tokio::task::JoinSet;

pub(crate) async fn handle(
    req: Request,
    shared: &Arc<Shared>,
    tx: &mpsc::Sender<Out>,
    subs: &mut JoinSet<()>,
    kill: &Arc<Notify>,
) -> Option<Reply> {
    let res = match req {
        Request::Subscribe { job, previews } => {
            return subscribe(shared, job, previews, tx, subs, kill).await.err().map(Reply::Error)
        }
        Request::Submit(r) => submit(shared, r).await,
        Request::Cancel { job } => cancel(shared, job).await,
        Request::CancelAll => cancel_all(shared).await,
        Request::Queue => {
            let paused = shared.queue().paused;
            let capacity = shared.cfg.queue_size;
            let sh = shared.clone();
            shared
                .db(move |s| {
                    let running = s.running()?;
                    let progress = running.as_ref().and_then(|r| sh.progress(r.id));
                    Ok(Reply::Queue(Box::new(QueueInfo { paused, capacity, running, progress, pending: s.pending()? })))
                })
                .await
        }
        Request::Pause => {
            shared.queue().paused = true;
            tracing::info!("queue paused");
            Ok(Reply::Ok)
        }
        Request::Resume => {
            shared.queue().paused = false;
            shared.wake_scheduler();
            tracing::info!("queue resumed");
            Ok(Reply::Ok)
        }
        Request::History { limit } => {
            shared.db(move |s| Ok(Reply::History(s.history(limit.clamp(1, ltx_protocol::MAX_HISTORY))?))).await
        }
        Request::Job { job } => match shared.db(move |s| s.get(job)).await {
            Ok(Some(r)) => Ok(Reply::Job(Box::new(r))),
            Ok(None) => Err(DaemonError::NotFound(job)),
            Err(e) => Err(e),
        },
        Request::Ps => Ok(Reply::Ps(shared.engine.resident())),
        Request::Load { variant, keep_alive } => shared.engine.load(variant, keep_alive).await.map(|()| Reply::Ok),
        Request::Unload { variant } => shared.engine.unload(variant).await.map(|()| Reply::Ok),
        Request::Status => status(shared).await,
        // The connection loop begins the shutdown once this reply is written.
        Request::Shutdown => Ok(Reply::Ok),
        r @ (Request::ModelsList
        | Request::ModelsPull { .. }
        | Request::ModelsPullPreview { .. }
        | Request::ModelsRemove { .. }
        | Request::ModelsVerify { .. }
        | Request::ModelsDir { .. }
        | Request::ModelsCancel) => crate::models::request(shared, r).await,
        Request::ShowsNotifications => {
            // Held by a task of this connection: dropped (notifications resume) when the connection closes.
            let guard = shared.desktop.client_notifies();
            subs.spawn(async move {
                let _guard = guard;
                std::future::pending::<()>().await
            });
            Ok(Reply::Ok)
        }
    };
    Some(res.unwrap_or_else(Reply::Error))
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish() & 0xffff_ffff
}

async fn submit(shared: &Arc<Shared>, req: ltx_protocol::GenerationRequest) -> Result<Reply, DaemonError> {
    if shared.is_shutting_down() {
        return Err(DaemonError::ShuttingDown);
    }
    let req = tokio::task::spawn_blocking(move || validate(req, FsCheck::Probe))
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))?
        .map_err(DaemonError::Invalid)?;
    let sh = shared.clone();
    let req = tokio::task::spawn_blocking(move || crate::models::check_job(&sh, &req).map(|()| req))
        .await
        .map_err(|e| DaemonError::Internal(e.to_string()))??;
    // The engine's memory estimate, from the files' headers: a job that cannot fit is refused now.
    let req = shared.engine.preflight(req).await?;
    let seed = req.seed.unwrap_or_else(random_seed);
    let capacity = shared.cfg.queue_size;
    match shared.db(move |s| s.insert(&req, seed, req.front, capacity)).await? {
        crate::store::Insert::Full => Err(DaemonError::Busy { capacity }),
        crate::store::Insert::Queued { id, position } => {
            tracing::info!(job = id, position, "queued");
            shared.emit(Event { job: id, kind: EventKind::Queued { position } });
            shared.wake_scheduler();
            Ok(Reply::Submitted { job: id, position, seed })
        }
    }
}

enum Cancel {
    Running,
    Pending,
    State(JobState),
    Missing,
}

async fn cancel(shared: &Arc<Shared>, job: JobId) -> Result<Reply, DaemonError> {
    let sh = shared.clone();
    let outcome = shared
        .db(move |s| {
            if let Some((id, token)) = &sh.queue().running {
                if *id == job {
                    token.cancel();
                    return Ok(Cancel::Running);
                }
            }
            if s.cancel_pending(job)? {
                return Ok(Cancel::Pending);
            }
            Ok(s.get(job)?.map_or(Cancel::Missing, |r| Cancel::State(r.state)))
        })
        .await?;
    match outcome {
        Cancel::Running => Ok(Reply::Cancelled { jobs: vec![job] }),
        Cancel::Pending => {
            shared.emit(Event { job, kind: EventKind::Cancelled });
            Ok(Reply::Cancelled { jobs: vec![job] })
        }
        Cancel::State(state) => Err(DaemonError::NotCancellable { job, state }),
        Cancel::Missing => Err(DaemonError::NotFound(job)),
    }
}

async fn cancel_all(shared: &Arc<Shared>) -> Result<Reply, DaemonError> {
    let sh = shared.clone();
    let (running, pending) = shared
        .db(move |s| {
            let running = sh.queue().running.as_ref().map(|(id, t)| {
                t.cancel();
                *id
            });
            let mut cancelled = Vec::new();
            for r in s.pending()? {
                if s.cancel_pending(r.id)? {
                    cancelled.push(r.id);
                }
            }
            Ok((running, cancelled))
        })
        .await?;
    for &job in &pending {
        shared.emit(Event { job, kind: EventKind::Cancelled });
    }
    Ok(Reply::Cancelled { jobs: running.into_iter().chain(pending).collect() })
}

async fn status(shared: &Arc<Shared>) -> Result<Reply, DaemonError> {
    let pending = shared.db(|s| s.pending_count()).await?;
    let (paused, running) = {
        let q = shared.queue();
        (q.paused, q.running.as_ref().map(|r| r.0))
    };
    let cfg = &shared.cfg;
    let compute = ltx_engine::Compute::detect();
    let restarts = shared.engine.restarts();
    let decision = shared.decision().await;
    Ok(Reply::Status(Box::new(DaemonStatus {
        daemon_version: ltx_protocol::VERSION.into(),
        protocol_version: ltx_protocol::PROTOCOL_VERSION,
        pid: std::process::id(),
        uptime_ms: shared.uptime().as_millis() as u64,
        socket: cfg.socket.clone(),
        paused,
        running,
        pending,
        capacity: cfg.queue_size,
        outputs_dir: cfg.outputs_dir.clone(),
        models_dir: shared.engine.models_dir(),
        compute: compute.to_string(),
        memory: cfg.memory.describe(compute.backend),
        decision,
        engine_restarts: restarts.count,
        engine_panic: restarts.last,
    })))
}

/// Replies `Subscribed`, sends the job's current state (its final event if it already ended), then streams.
async fn subscribe(
    shared: &Arc<Shared>,
    job: Option<JobId>,
    previews: bool,
    tx: &mpsc::Sender<Out>,
    subs: &mut JoinSet<()>,
    kill: &Arc<Notify>,
) -> Result<(), DaemonError> {
    let mut rx = shared.subscribe_events();
    // Counted as following until the subscription ends: the daemon does not notify for a followed job.
    let follow = job.map(|id| shared.desktop.follow(id));
    let send = |kind: EventKind, job: JobId| Out::Msg(ServerMsg::Event(Event { job, kind }));
    let closed = |_| DaemonError::Internal("connection closed".into());
    // A job seen running already got `Started` from the record; its broadcast copy may still be queued.
    let mut skip_started = false;
    if let Some(id) = job {
        let (rec, position) = shared
            .db(move |s| {
                let rec = s.get(id)?;
                let pos = match &rec {
                    Some(r) if r.state == JobState::Pending => s.position(id)?,
                    _ => 0,
                };
                Ok((rec, pos))
            })
            .await?;
        let rec = rec.ok_or(DaemonError::NotFound(id))?;
        tx.send(Out::Msg(ServerMsg::Reply(Reply::Subscribed))).await.map_err(closed)?;
        let now = match rec.state {
            JobState::Pending => EventKind::Queued { position },
            JobState::Running => EventKind::Started,
            JobState::Completed => EventKind::Completed {
                output: rec.output.clone().unwrap_or_default(),
                duration_ms: rec.finished_ms.unwrap_or(0).saturating_sub(rec.started_ms.unwrap_or(0)),
                seed: rec.seed,
                timings: rec.timings.clone(),
            },
            JobState::Failed => EventKind::Failed {
                code: rec.error_code.clone().unwrap_or_default(),
                message: rec.message.clone().unwrap_or_default(),
            },
            JobState::Cancelled => EventKind::Cancelled,
            JobState::Interrupted => EventKind::Interrupted { reason: rec.message.clone().unwrap_or_default() },
        };
        let done = now.is_final();
        skip_started = now == EventKind::Started;
        tx.send(send(now, id)).await.map_err(closed)?;
        if done {
            return Ok(());
        }
        // Joining mid-job: where it is now (its stage, step and ETA), not only that it started.
        if let Some(p) = shared.progress(id).filter(|_| skip_started) {
            tx.send(send(p.event(), id)).await.map_err(closed)?;
        }
    } else {
        tx.send(Out::Msg(ServerMsg::Reply(Reply::Subscribed))).await.map_err(closed)?;
    }
    let guard = previews.then(|| shared.preview_subscriber());
    let (tx, kill) = (tx.clone(), kill.clone());
    subs.spawn(async move {
        let _guard = guard;
        let _follow = follow;
        loop {
            let b = match rx.recv().await {
                Ok(b) => b,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("dropping a slow client: it missed {n} events");
                    return kill.notify_one();
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if job.is_some_and(|j| j != b.0.job) || (!previews && matches!(b.0.kind, EventKind::Preview { .. })) {
                continue;
            }
            if skip_started && b.0.kind == EventKind::Started {
                skip_started = false;
                continue;
            }
            let last = job.is_some() && b.0.kind.is_final();
            match tx.try_send(Out::Event(b)) {
                Ok(()) if last => return,
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!("dropping a slow client: {CLIENT_BUFFER} frames unread");
                    return kill.notify_one();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    });
    Ok(())
}
