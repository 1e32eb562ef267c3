//! `ltxctl`'s entry point and the dispatch of each command to the typed client, printer or module doing it.
use crate::cli::{Cli, Cmd, DaemonCmd};
use crate::daemon::{self, connect, Daemon, Started, Stopped};
use crate::exit::{Failure, Res, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::print;
use crate::{doctor, follow, json, models, platform, request, service};
use clap::Parser;
use ltx_protocol::client::Client;
use ltx_protocol::{JobId, JobRecord, JobState};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    let json = cli.json;
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ltxctl: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let res = rt.block_on(run(cli));
    // A Ctrl-C prompt may still be blocked reading stdin: do not wait for it.
    rt.shutdown_timeout(Duration::from_millis(100));
    match res {
        Ok(code) => ExitCode::from(code),
        Err(f) => fail(&f, json),
    }
}

/// A refused submit; one for want of models or memory says the machine's memory decision too.
fn refused(e: ltx_protocol::client::ClientError, decision: &ltx_protocol::MemoryDecision) -> Failure {
    use ltx_protocol::{client::ClientError, DaemonError};
    let names_memory =
        matches!(&e, ClientError::Daemon(DaemonError::ModelsMissing(_) | DaemonError::InsufficientMemory(_)));
    let mut f = Failure::from(e);
    if names_memory {
        f.message.push_str(&format!("\nthis machine: {}", decision.summary()));
        if let Some(pull) = decision.pull() {
            f.message.push_str(&format!(" (`{pull}`)"));
        }
    }
    f
}

/// Says why on stderr; under `--json` the error document goes to stdout too, where scripts read.
fn fail(f: &Failure, json: bool) -> ExitCode {
    eprintln!("ltxctl: {}", f.message);
    if json {
        print::json(f.json());
    }
    ExitCode::from(f.exit)
}

/// `--help` and `--version` (exit 0), or a command line clap refused: an invalid request (exit 4, not clap's 2,
/// which is "cancelled" here), with its error document under `--json`.
fn usage(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if !e.use_stderr() {
        return ExitCode::from(EXIT_OK);
    }
    let json = std::env::args_os().take_while(|a| a != "--").any(|a| a == "--json");
    if json {
        let message = e.to_string().lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
        print::json(Failure { exit: EXIT_INVALID, code: "usage", reason: None, message }.json());
    }
    ExitCode::from(EXIT_INVALID)
}

/// Prints `value`'s JSON document (`doc`), or its plain form.
fn show<T: ?Sized>(json: bool, value: &T, doc: impl FnOnce(&T) -> serde_json::Value, plain: impl FnOnce(&T)) {
    if json {
        print::json(doc(value))
    } else {
        plain(value)
    }
}

pub async fn run(cli: Cli) -> Res {
    let socket = platform::socket_path(cli.socket.clone());
    let json = cli.json;
    match cli.cmd {
        Cmd::Submit(a) => {
            let mut c = connect(&socket).await?;
            // A job that names no model, variant or pipeline runs what the daemon's memory decision says (which
            // prefers the newest installed generation that fits); one naming only a model or a pipeline takes that
            // decision's generation for the rest.
            let decision = c.status().await?.decision;
            let mut req = request::build_request(&a, decision.variant.rules().generation)?;
            let named = a.model.is_some() || a.variant.is_some() || a.pipeline.is_some();
            if !named && decision.variant.default_pipeline() == req.pipeline {
                req.variant = decision.variant;
            }
            let s = c.submit(req).await.map_err(|e| refused(e, &decision))?;
            show(json, &s, json::submitted, |s| print::line(&s.job.to_string()));
            if !a.wait {
                return Ok(EXIT_OK);
            }
            follow::follow(c, &socket, s.job, json, false).await
        }
        Cmd::Follow { id, preview } => follow::follow(connect(&socket).await?, &socket, id, json, preview).await,
        Cmd::Status | Cmd::Daemon { action: DaemonCmd::Status } => {
            show(json, &connect(&socket).await?.status().await?, ltx_protocol::json::status_json, print::status);
            Ok(EXIT_OK)
        }
        Cmd::Queue => {
            show(json, &connect(&socket).await?.queue().await?, ltx_protocol::json::queue_json, print::queue);
            Ok(EXIT_OK)
        }
        Cmd::Cancel { id, all } => {
            let mut c = connect(&socket).await?;
            let jobs = match (id, all) {
                (Some(job), _) => c.cancel(job).await?,
                (None, _) => c.cancel_all().await?,
            };
            show(json, &jobs[..], json::cancelled, print::cancelled);
            Ok(EXIT_OK)
        }
        c @ (Cmd::Pause | Cmd::Resume) => {
            let pause = matches!(c, Cmd::Pause);
            let mut c = connect(&socket).await?;
            let was = c.status().await?.paused;
            match (pause, was) {
                (true, false) => c.pause().await?,
                (false, true) => c.resume().await?,
                _ => {}
            }
            show(json, &(pause, was), |(p, w)| json::paused(*p, *w), |(p, w)| print::paused(*p, *w));
            Ok(EXIT_OK)
        }
        Cmd::History { limit } => {
            show(json, &connect(&socket).await?.history(limit).await?[..], json::history, print::history);
            Ok(EXIT_OK)
        }
        Cmd::Show { id } => {
            let mut c = connect(&socket).await?;
            let id = match id {
                Some(id) => id,
                None => last_job(&mut c).await?,
            };
            show(json, &c.job(id).await?, ltx_protocol::json::job_json, print::job);
            Ok(EXIT_OK)
        }
        Cmd::Open { id } => open(&socket, id, json).await,
        Cmd::Ps => {
            show(json, &connect(&socket).await?.ps().await?[..], json::ps, print::components);
            Ok(EXIT_OK)
        }
        Cmd::Load { variant, keep_alive } => {
            let mut c = connect(&socket).await?;
            let variant = match variant {
                Some(v) => v,
                None => c.status().await?.decision.variant,
            };
            c.load(variant, keep_alive).await?;
            show(json, &variant, |v| json::loaded(*v, keep_alive), |v| print::line(&format!("{} loaded", v.name())));
            Ok(EXIT_OK)
        }
        Cmd::Unload { variant } => {
            connect(&socket).await?.unload(variant).await?;
            show(json, &variant, |v| json::unloaded(*v), |_| print::line("unloaded"));
            Ok(EXIT_OK)
        }
        Cmd::Daemon { action: DaemonCmd::Start } => daemon_start(&socket, cli.socket.is_some(), json).await,
        Cmd::Daemon { action: DaemonCmd::Stop } => daemon_stop(&socket, cli.socket.is_some(), json).await,
        Cmd::Daemon { action: DaemonCmd::Restart } => {
            daemon_stop(&socket, cli.socket.is_some(), json).await?;
            daemon_start(&socket, cli.socket.is_some(), json).await
        }
        Cmd::Models { cmd } => models::run(cmd, &socket, json).await,
        Cmd::Doctor => doctor::run(&socket, json).await,
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            // Written whole through `print`, so `| head -1` does not panic inside clap_complete.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ltxctl", &mut script);
            print::bytes(&script);
            Ok(EXIT_OK)
        }
        Cmd::Service { action } => service::command(action, &socket, json).await,
    }
}

/// No such job: exit 4, code `not_found`.
fn not_found(message: String) -> Failure {
    Failure { code: "not_found", ..Failure::new(EXIT_INVALID, message) }
}

/// The job `show` means without an id: the running one, else the one that finished last, else the newest pending.
async fn last_job(c: &mut Client) -> Result<JobId, Failure> {
    let q = c.queue().await?;
    if let Some(r) = q.running {
        return Ok(r.id);
    }
    if let Some(r) = c.history(1).await?.first() {
        return Ok(r.id);
    }
    q.pending.last().map(|r| r.id).ok_or_else(|| not_found("there are no jobs yet".into()))
}

/// How far back `open` without an id looks for a video.
const OPEN_LOOKBACK: u32 = 100;

/// `ltxctl open [ID]`: the job's video (default: the newest finished one with a video) in the default
/// application; where nothing can open it, its path on stdout (the reason on stderr).
async fn open(socket: &Path, id: Option<JobId>, json: bool) -> Res {
    let mut c = connect(socket).await?;
    let has_video = |r: &JobRecord| r.output.as_ref().is_some_and(|p| p.exists());
    let r = match id {
        Some(id) => c.job(id).await?,
        None => c
            .history(OPEN_LOOKBACK)
            .await?
            .into_iter()
            .find(|r| r.state == JobState::Completed && has_video(r))
            .ok_or_else(|| not_found(format!("none of the last {OPEN_LOOKBACK} finished jobs has a video")))?,
    };
    let Some(video) = r.output.clone().filter(|_| has_video(&r)) else {
        return Err(Failure::new(EXIT_INVALID, format!("job {} has no video ({})", r.id, r.state.name())));
    };
    let opened = platform::open(&video);
    if let Err(why) = &opened {
        eprintln!("ltxctl: {why}; the video is at the path printed");
    }
    show(
        json,
        &video,
        |v| json::opened(r.id, v, opened.is_ok()),
        |v| {
            if opened.is_err() {
                // The path's own bytes: a name that is not UTF-8 still opens from what is printed.
                print::bytes(&[std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()), b"\n"].concat())
            }
        },
    );
    Ok(EXIT_OK)
}

/// `ltxctl daemon start`: [`daemon::start`], said in words or JSON.
async fn daemon_start(socket: &Path, explicit_socket: bool, json: bool) -> Res {
    let (state, pid, msg) = match daemon::start(&Daemon::new(socket.to_path_buf(), explicit_socket)).await? {
        Started::AlreadyRunning { daemon_version } => {
            ("already_running", None, format!("ltxd {daemon_version} is already running at {}", socket.display()))
        }
        Started::Started { pid, by_service: false } => {
            ("started", Some(pid), format!("ltxd started (pid {pid}) at {}", socket.display()))
        }
        Started::Started { pid, by_service: true } => {
            ("started", Some(pid), format!("ltxd started by the service manager (pid {pid}) at {}", socket.display()))
        }
    };
    show(json, &msg, |_| json::daemon_started(state, socket, pid), |m| print::line(m));
    Ok(EXIT_OK)
}

/// `ltxctl daemon stop`: [`daemon::stop`], said in words or JSON.
async fn daemon_stop(socket: &Path, explicit_socket: bool, json: bool) -> Res {
    let d = Daemon::new(socket.to_path_buf(), explicit_socket);
    // Said before it happens: the running job will not finish.
    if let Ok(Some(job)) = tokio::time::timeout(std::time::Duration::from_secs(2), running_job(socket)).await {
        eprintln!("ltxctl: job {job} is running; stopping ltxd marks it interrupted");
    }
    let (state, msg, pid, interrupted) = match daemon::stop(&d).await? {
        Stopped::Stopped { pid, interrupted } => ("stopped", "ltxd stopped", pid, interrupted),
        Stopped::NotRunning => ("not_running", "ltxd is not running", None, None),
    };
    show(json, msg, |_| json::daemon_stopped(state, pid, interrupted), print::line);
    Ok(EXIT_OK)
}

/// The job the daemon is running, if it answers.
async fn running_job(socket: &Path) -> Option<ltx_protocol::JobId> {
    daemon::connect(socket).await.ok()?.status().await.ok()?.running
}
