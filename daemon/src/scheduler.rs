//! Picks jobs from the store one at a time (FIFO, front-of-queue first), hands them to the engine worker and
//! records how they ended: output and sidecar placed without overwriting and fsynced, then the row updated,
//! then the event sent.
use crate::eta::{self, JobClock};
use crate::store::{now_ms, Outcome};
use crate::{output, Shared};
use ltx_engine::job::{CancelToken, EngineError};
use ltx_protocol::{Event, EventKind, FailureCode, FsCheck, JobRecord, JobState};
use std::sync::Arc;
use tracing::Instrument;

pub async fn run(shared: Arc<Shared>) {
    loop {
        if shared.is_shutting_down() {
            return;
        }
        let sh = shared.clone();
        // Claiming and publishing the running job happen under the store lock, so cancel and pause see
        // a consistent picture.
        let claimed = shared
            .db(move |s| {
                let mut q = sh.queue();
                if q.paused || q.running.is_some() || sh.is_shutting_down() {
                    return Ok(None);
                }
                let claim = s.claim_next()?;
                if claim.job.is_none() && claim.quarantined.is_empty() {
                    return Ok(None);
                }
                let token = CancelToken::new();
                if let Some(r) = &claim.job {
                    q.running = Some((r.id, token.clone()));
                }
                Ok(Some((claim.job.map(|r| (r, token)), claim.quarantined)))
            })
            .await;
        match claimed {
            Ok(Some((job, quarantined))) => {
                // Rows that could not be read were set aside as failed; the queue goes on without them.
                for (id, message) in quarantined {
                    tracing::warn!(job = id, code = FailureCode::CorruptRecord.name(), "job set aside: {message}");
                    let code = FailureCode::CorruptRecord.name().into();
                    shared.emit(Event { job: id, kind: EventKind::Failed { code, message } });
                }
                if let Some((rec, token)) = job {
                    let span = tracing::info_span!("job", id = rec.id);
                    run_job(&shared, rec, token).instrument(span).await
                }
            }
            Ok(None) => shared.scheduler_woken().await,
            Err(e) => {
                tracing::error!("scheduler: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// The clock of a job starting now, its ETA learned from this machine's completed jobs and knowing what is loaded.
fn clock(shared: &Shared, rec: &JobRecord) -> Arc<JobClock> {
    let resident = shared.engine.resident();
    let names: Vec<&str> =
        resident.iter().filter(|c| c.variant == rec.request.variant).map(|c| c.name.name()).collect();
    Arc::new(JobClock::start(shared.eta.tracker(&rec.request, &names)))
}

async fn run_job(shared: &Arc<Shared>, rec: JobRecord, cancel: CancelToken) {
    let id = rec.id;
    tracing::info!(prompt = %rec.request.prompt, seed = rec.seed, "started");
    let clock = clock(shared, &rec);
    // What the sidecar says the job ran under.
    let decision = shared.decision().await;
    shared.emit(Event { job: id, kind: EventKind::Started });
    let cfg = &shared.cfg;
    let target =
        output::target(rec.request.output.as_deref(), &cfg.outputs_dir, rec.created_ms, &rec.request.prompt, rec.seed);
    let tmp = output::temp_for(&target, &output::instance_tag(&cfg.state_dir), id);
    // ltxd creates its own outputs folder only; a job's `-o` directory was there at submit (`validate`).
    let dir = target.parent().unwrap_or(&cfg.outputs_dir);
    let made = match rec.request.output {
        None => std::fs::create_dir_all(dir),
        Some(_) if dir.is_dir() => Ok(()),
        Some(_) => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "it no longer exists")),
    };
    let result = match made {
        Err(e) => Err(EngineError::failed(
            FailureCode::OutputDir,
            format!("cannot use the output directory {}: {e}", dir.display()),
        )),
        // The stored row is a file's contents: the one validation again, before the engine sees it.
        _ => match ltx_protocol::validate(rec.request.clone(), FsCheck::Skip) {
            Ok(request) => shared.engine.run(id, request, rec.seed, tmp.clone(), cancel, clock.clone()).await,
            Err(e) => Err(EngineError::failed(FailureCode::CorruptRecord, format!("the stored job is invalid: {e}"))),
        },
    };
    shared.queue().running = None;
    let finished = now_ms();
    let duration_ms = finished.saturating_sub(rec.started_ms.unwrap_or(finished));
    let event = match result {
        Ok(out) => {
            let sidecar = |path: &std::path::Path| output::sidecar(&rec, path, finished, &out.timings, &decision);
            let placed = output::place(&tmp, &target, sidecar);
            match placed {
                Ok(placed) => {
                    // Test daemons may stop here: placed and synced, not yet recorded (see output::recover).
                    let _ = output::fault("output-placed");
                    let path = placed.video.clone();
                    // The last stage ends with the output in place: what a client waits for.
                    let stages = clock.finish();
                    shared.eta.add(eta::Sample::new(&rec.request, stages.clone()));
                    let outcome = Outcome { timings: out.timings.clone(), stages };
                    let p = path.clone();
                    let saved =
                        shared.db(move |s| s.finish(id, JobState::Completed, Some(&p), None, Some(&outcome))).await;
                    match saved {
                        // The temporary name marked the placement until the row said so.
                        Ok(_) => placed.commit(),
                        Err(e) => tracing::error!("recording completion: {e} (the next start records it)"),
                    }
                    tracing::info!(output = %path.display(), duration_ms, "completed");
                    Some(EventKind::Completed { output: path, duration_ms, seed: rec.seed, timings: out.timings })
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    fail(shared, id, FailureCode::OutputWrite.name(), &format!("cannot write the output: {e}")).await
                }
            }
        }
        Err(EngineError::Cancelled) => {
            let _ = std::fs::remove_file(&tmp);
            // After a shutdown the row is already `interrupted` and subscribers were told.
            let changed = shared.db(move |s| s.finish(id, JobState::Cancelled, None, None, None)).await;
            tracing::info!("cancelled");
            matches!(changed, Ok(true)).then_some(EventKind::Cancelled)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            fail(shared, id, e.code(), &e.to_string()).await
        }
    };
    if let Some(kind) = event {
        shared.emit(Event { job: id, kind });
    }
}

async fn fail(shared: &Shared, id: u64, code: &str, message: &str) -> Option<EventKind> {
    tracing::warn!(code, "failed: {message}");
    let (c, m) = (code.to_string(), message.to_string());
    let changed = shared.db(move |s| s.finish(id, JobState::Failed, None, Some((&c, &m)), None)).await;
    matches!(changed, Ok(true)).then(|| EventKind::Failed { code: code.into(), message: message.into() })
}
