//! Following a job until it ends — `ltxctl submit --wait` and `ltxctl follow` both call [`follow`]: on a terminal
//! a spinner with the stage until the stage has steps, then an indicatif bar of them, with the time since the
//! job started and the daemon's whole-job ETA (labelled an estimate until the job's own steps back it) counting
//! on between events; plain lines otherwise, one JSON event a line with `--json`. Ctrl-C asks whether to cancel
//! the job or detach, the bar held still while it asks and a second Ctrl-C detaching (detach without asking when
//! not interactive). With previews asked for, each step's preview is drawn above the bar in terminals that take
//! inline images ([`crate::inline`]).
use crate::daemon::connect;
use crate::exit::{Failure, Res, EXIT_CANCELLED, EXIT_DETACHED, EXIT_FAILED, EXIT_OK};
use crate::print::{clock, span};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ltx_protocol::client::{Client, ClientError};
use ltx_protocol::{Eta, Event, EventKind, JobId};
use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

enum View {
    Json,
    Plain(JobId),
    Bar(Live),
}

/// What an event says, for a person: the stage (its steps in the plain form) and the clock as of the event.
struct Said {
    what: String,
    clock: Option<(u64, Option<Eta>)>,
    steps: Option<(u32, u32)>,
}

impl Said {
    fn of(kind: &EventKind) -> Option<Said> {
        let (what, clock, steps) = match kind {
            EventKind::Queued { position } => (format!("queued (position {position})"), None, None),
            EventKind::Started => ("started".into(), None, None),
            EventKind::Stage { stage, elapsed_ms, eta } => (stage.to_string(), Some((*elapsed_ms, *eta)), None),
            EventKind::Step { stage, step, total, elapsed_ms, eta } => {
                (stage.to_string(), Some((*elapsed_ms, *eta)), Some((*step, *total)))
            }
            _ => return None,
        };
        Some(Said { what, clock, steps })
    }

    /// The line, the clock run on by `since` milliseconds.
    fn line(&self, since: u64, with_steps: bool) -> String {
        let mut line = self.what.clone();
        if let (Some((step, total)), true) = (self.steps, with_steps) {
            line.push_str(&format!(" step {step}/{total}"));
        }
        if let Some((elapsed, eta)) = self.clock {
            let eta = eta.map(|e| Eta { remaining_ms: e.remaining_ms.saturating_sub(since), ..e });
            line.push_str(&format!(", {}", clock(elapsed.saturating_add(since), eta)));
        }
        line
    }
}

/// The terminal's line: a spinner and the stage until a stage has steps, then the bar of its steps; between
/// events the elapsed time and the ETA count on from the last event's.
struct Live {
    bar: ProgressBar,
    last: RefCell<Option<(Said, Instant)>>,
}

impl Live {
    fn new(job: JobId) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(Self::style(false));
        bar.set_prefix(job.to_string());
        bar.set_message("waiting for the daemon");
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Live { bar, last: RefCell::new(None) }
    }

    fn style(steps: bool) -> ProgressStyle {
        let template = match steps {
            true => "{spinner} job {prefix}: {msg} [{bar:30}] {pos}/{len}",
            false => "{spinner} job {prefix}: {msg}",
        };
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    fn show(&self, kind: &EventKind) {
        let Some(said) = Said::of(kind) else { return };
        match said.steps {
            Some((step, total)) => {
                self.bar.set_style(Self::style(true));
                self.bar.set_length(u64::from(total));
                self.bar.set_position(u64::from(step));
            }
            None => self.bar.set_style(Self::style(false)),
        }
        self.bar.set_message(said.line(0, false));
        *self.last.borrow_mut() = Some((said, Instant::now()));
    }

    /// Runs the clock on.
    fn tick(&self) {
        if let Some((said, at)) = self.last.borrow().as_ref() {
            let since = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.bar.set_message(said.line(since, false));
        }
    }
}

impl View {
    fn new(job: JobId, json: bool) -> Self {
        if json {
            return View::Json;
        }
        if !std::io::stdout().is_terminal() {
            return View::Plain(job);
        }
        View::Bar(Live::new(job))
    }

    fn show(&self, ev: &Event, inline: Option<crate::inline::Protocol>) {
        if let (View::Bar(bar), EventKind::Preview { jpeg, .. }, Some(protocol)) = (self, &ev.kind, inline) {
            if let Some(image) = crate::inline::image(protocol, jpeg) {
                bar.bar.suspend(|| {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{image}").and_then(|()| out.flush());
                });
            }
        }
        match self {
            View::Json => crate::print::json(ltx_protocol::json::event_json(ev)),
            View::Plain(job) => {
                if let Some(said) = Said::of(&ev.kind) {
                    println!("job {job}: {}", said.line(0, true));
                }
            }
            View::Bar(live) => live.show(&ev.kind),
        }
    }

    fn tick(&self) {
        if let View::Bar(live) = self {
            live.tick();
        }
    }

    fn note(&self, msg: &str) {
        match self {
            View::Bar(live) => live.bar.println(msg),
            _ => eprintln!("{msg}"),
        }
    }

    /// Holds the bar still while a question is on the screen: its last frame stays where it was and nothing is
    /// drawn over the question (the steady tick redrew the line at once and erased it).
    fn hold(&self) {
        if let View::Bar(live) = self {
            live.bar.set_draw_target(ProgressDrawTarget::hidden());
        }
    }

    /// Draws the bar again, below the answered question.
    fn release(&self) {
        if let View::Bar(live) = self {
            live.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn finish(&self, job: JobId, kind: &EventKind) -> Res {
        if let View::Bar(live) = self {
            live.bar.finish_and_clear();
        }
        let json = matches!(self, View::Json);
        let code = match kind {
            EventKind::Completed { output, duration_ms, seed, .. } => {
                if !json {
                    println!("completed: {} ({}, seed {seed})", output.display(), span(*duration_ms));
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
pub async fn follow(c: Client, socket: &Path, job: JobId, json: bool, preview: bool) -> Res {
    // Registered before anything is shown, so a Ctrl-C from then on is never the default "kill".
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Failure::new(EXIT_FAILED, format!("cannot handle Ctrl-C: {e}")))?;
    let inline = crate::inline::terminal().filter(|_| preview && !json && std::io::stdout().is_terminal());
    if preview && !json && inline.is_none() {
        eprintln!("previews are off: this is not a terminal that draws inline images (kitty, Ghostty, iTerm2 or WezTerm, outside tmux and screen)");
    }
    let mut events = c.subscribe(Some(job), preview && (json || inline.is_some())).await?;
    let view = View::new(job, json);
    let interactive = !json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mut answer: Option<tokio::task::JoinHandle<bool>> = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        let pending_answer = async {
            match answer.as_mut() {
                Some(h) => h.await.unwrap_or(false),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => view.tick(),
            ev = events.next() => {
                let ev = ev?.ok_or(ClientError::Closed)?;
                view.show(&ev, inline);
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

#[cfg(test)]
mod tests {
    use super::*;
    use ltx_protocol::Stage;

    #[test]
    fn lines_say_the_stage_its_steps_and_the_clock_run_on() {
        let eta = Some(Eta { remaining_ms: 38_000, measured: true });
        let step = EventKind::Step { stage: Stage::Denoising(1), step: 1, total: 20, elapsed_ms: 2_000, eta };
        let said = Said::of(&step).expect("a step says something");
        assert_eq!(said.line(0, true), "denoising (stage 1) step 1/20, 2.0s elapsed, ETA 38s");
        assert_eq!(said.line(1_000, false), "denoising (stage 1), 3.0s elapsed, ETA 37s");
        let stage = EventKind::Stage { stage: Stage::EncodingPrompt, elapsed_ms: 10, eta: None };
        assert_eq!(Said::of(&stage).map(|s| s.line(0, true)).as_deref(), Some("encoding prompt, 0.0s elapsed"));
        assert_eq!(Said::of(&EventKind::Started).map(|s| s.line(500, true)).as_deref(), Some("started"));
    }
}
