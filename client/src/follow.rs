//! Following a job until it ends — `ltxctl submit --wait` and `ltxctl follow` both call [`follow`]: an indicatif
//! bar on a terminal, plain lines otherwise, one JSON event a line with `--json`; Ctrl-C asks whether to cancel
//! the job or detach, the bar held still while it asks and a second Ctrl-C detaching (detach without asking when
//! not interactive).
use crate::daemon::connect;
use crate::exit::{Failure, Res, EXIT_CANCELLED, EXIT_DETACHED, EXIT_FAILED, EXIT_OK};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ltx_protocol::client::{Client, ClientError};
use ltx_protocol::{Event, EventKind, JobId};
use std::io::IsTerminal;
use std::path::Path;

enum View {
    Json,
    Plain(JobId),
    Bar(ProgressBar),
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

impl View {
    fn new(job: JobId, json: bool) -> Self {
        if json {
            return View::Json;
        }
        if !std::io::stdout().is_terminal() {
            return View::Plain(job);
        }
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template("{spinner} job {prefix}: {msg} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(job.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        View::Bar(bar)
    }

    fn describe(kind: &EventKind) -> Option<String> {
        Some(match kind {
            EventKind::Queued { position } => format!("queued (position {position})"),
            EventKind::Started => "started".into(),
            EventKind::Stage(s) => s.to_string(),
            EventKind::Step { stage, step, total, eta_ms, .. } => {
                let eta = eta_ms.map(|e| format!(", ETA {}", secs(e))).unwrap_or_default();
                format!("{stage} step {step}/{total}{eta}")
            }
            EventKind::Preview { .. } => return None,
            _ => return None,
        })
    }

    fn show(&self, ev: &Event) {
        match self {
            View::Json => crate::print::json(ltx_protocol::json::event_json(ev)),
            View::Plain(job) => {
                if let Some(line) = Self::describe(&ev.kind) {
                    println!("job {job}: {line}");
                }
            }
            View::Bar(bar) => {
                if let EventKind::Step { step, total, .. } = &ev.kind {
                    bar.set_length(u64::from(*total));
                    bar.set_position(u64::from(*step));
                }
                if let Some(line) = Self::describe(&ev.kind) {
                    bar.set_message(line);
                }
            }
        }
    }

    fn note(&self, msg: &str) {
        match self {
            View::Bar(bar) => bar.println(msg),
            _ => eprintln!("{msg}"),
        }
    }

    /// Holds the bar still while a question is on the screen: its last frame stays where it was and nothing is
    /// drawn over the question (the steady tick redrew the line at once and erased it).
    fn hold(&self) {
        if let View::Bar(bar) = self {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
    }

    /// Draws the bar again, below the answered question.
    fn release(&self) {
        if let View::Bar(bar) = self {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn finish(&self, job: JobId, kind: &EventKind) -> Res {
        if let View::Bar(bar) = self {
            bar.finish_and_clear();
        }
        let json = matches!(self, View::Json);
        let code = match kind {
            EventKind::Completed { output, duration_ms, seed, .. } => {
                if !json {
                    println!("completed: {} ({}, seed {seed})", output.display(), secs(*duration_ms));
                }
                EXIT_OK
            }
            EventKind::Cancelled => {
                if !json {
                    eprintln!("job {job} cancelled");
                }
                EXIT_CANCELLED
            }
            EventKind::Failed { code, message } => {
                if !json {
                    eprintln!("job {job} failed ({code}): {message}");
                }
                EXIT_FAILED
            }
            EventKind::Interrupted { reason } => {
                if !json {
                    eprintln!("job {job} interrupted: {reason}");
                }
                EXIT_FAILED
            }
            _ => EXIT_FAILED,
        };
        Ok(code)
    }
}

/// Asks on the terminal; `true` = cancel. Runs on a blocking thread so events keep flowing meanwhile.
fn ask(job: JobId) -> bool {
    eprint!("\nCtrl-C: cancel job {job}, or detach and let it run? [c]ancel / [d]etach (default; Ctrl-C again): ");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line.trim().to_ascii_lowercase().starts_with('c')
}

fn detached(job: JobId) -> String {
    format!("detached; job {job} keeps running (`ltxctl follow {job}` to watch it again)")
}

/// Subscribes `c` to `job` and shows its events until the final one; the exit code follows how it ended.
pub async fn follow(c: Client, socket: &Path, job: JobId, json: bool) -> Res {
    // Registered before anything is shown, so a Ctrl-C from then on is never the default "kill".
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Failure::new(EXIT_FAILED, format!("cannot handle Ctrl-C: {e}")))?;
    let mut events = c.subscribe(Some(job), false).await?;
    let view = View::new(job, json);
    let interactive = !json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mut answer: Option<tokio::task::JoinHandle<bool>> = None;
    loop {
        let pending_answer = async {
            match answer.as_mut() {
                Some(h) => h.await.unwrap_or(false),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = events.next() => {
                let ev = ev?.ok_or(ClientError::Closed)?;
                view.show(&ev);
                if ev.kind.is_final() {
                    if answer.is_some() {
                        // Off the unanswered question's line.
                        eprintln!();
                    }
                    return view.finish(job, &ev.kind);
                }
            }
            _ = sigint.recv() => {
                let asking = answer.is_some();
                if !interactive || asking {
                    // A second Ctrl-C is the answer "detach".
                    match asking {
                        // Below the question, which the held bar does not print over.
                        true => eprintln!("\n{}", detached(job)),
                        false => view.note(&detached(job)),
                    }
                    return Ok(EXIT_DETACHED);
                }
                view.hold();
                answer = Some(tokio::task::spawn_blocking(move || ask(job)));
            }
            cancel = pending_answer => {
                answer = None;
                if !cancel {
                    eprintln!("{}", detached(job));
                    return Ok(EXIT_DETACHED);
                }
                eprintln!("cancelling job {job} at the next step…");
                view.release();
                connect(socket).await?.cancel(job).await?;
            }
        }
    }
}
