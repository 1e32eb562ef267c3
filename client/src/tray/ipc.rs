//! The tray's connection to the daemon, on its own thread (tokio, current-thread runtime): one connection
//! subscribed to every event (and telling the daemon the tray shows notifications), one for requests. Updates
//! are pushed to the UI as whole [`State`]s; the UI sends [`Cmd`]s over a bounded channel with `try_send`, so the
//! menu bar never waits on the daemon. When the daemon goes away the tray shows "not running" and reconnects
//! every 2 s (unless the person stopped it from the tray). Starting and stopping the daemon are the same library
//! calls as `ltxctl daemon start|stop` ([`crate::daemon`]).
use super::model::{Recent, Running, State};
use crate::daemon::{self, Daemon};
use ltx_protocol::client::{Client, ClientError};
use ltx_protocol::{EventKind, GenerationRequest, JobState, ModelVariant};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum Cmd {
    Cancel,
    Pause,
    Resume,
    Submit(Box<GenerationRequest>),
    UnloadAll,
    Pull(ModelVariant),
    SetModelsDir(PathBuf),
    StartDaemon,
    StopDaemon,
    SetLaunchAtLogin(bool),
    Quit,
}

pub struct Config {
    pub socket: PathBuf,
    /// Passed on to a daemon the tray starts when the socket was given on the command line.
    pub explicit_socket: bool,
    /// Post notifications here (and tell the daemon not to).
    pub notifications: bool,
}

const RECENT: usize = 10;

/// Starts the IPC thread; `push` delivers each new state to the UI.
pub fn spawn(cfg: Config, push: impl Fn(State) + Send + 'static) -> std::io::Result<mpsc::Sender<Cmd>> {
    let (tx, rx) = mpsc::channel(64);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("ltx-tray-ipc".into()).spawn(move || rt.block_on(run(cfg, rx, push)))?;
    Ok(tx)
}

async fn run(cfg: Config, mut rx: mpsc::Receiver<Cmd>, push: impl Fn(State)) {
    let daemon = Daemon::new(cfg.socket.clone(), cfg.explicit_socket);
    let layout = &daemon.layout;
    let mut st = State { launch_at_login: ltx_service::manage::tray_login_enabled(layout), ..Default::default() };
    let mut reported = false;
    loop {
        if !st.stopped_by_user {
            match session(&cfg, &daemon, &mut st, &mut rx, &push).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    // Once per outage (a lost connection, or the first failed attempt), not every retry.
                    if st.connected || !reported {
                        eprintln!("ltx-tray: daemon connection: {e}");
                    }
                    reported = true;
                }
            }
        }
        st.connected = false;
        st.running = None;
        st.components.clear();
        push(st.clone());
        let wait = tokio::time::sleep(Duration::from_secs(2));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait, if !st.stopped_by_user => break,
                cmd = rx.recv() => match cmd {
                    None | Some(Cmd::Quit) => return,
                    Some(Cmd::StartDaemon) => {
                        st.stopped_by_user = false;
                        if let Err(e) = daemon::start(&daemon).await {
                            st.error = Some(e.to_string());
                        }
                        break;
                    }
                    Some(Cmd::SetLaunchAtLogin(on)) => {
                        set_login(layout, on, &mut st);
                        push(st.clone());
                    }
                    Some(_) => {
                        st.error = Some("the daemon is not running".into());
                        push(st.clone());
                    }
                },
            }
        }
    }
}

fn set_login(layout: &ltx_service::Layout, on: bool, st: &mut State) {
    if on && !layout.tray().is_file() {
        st.error = Some(format!("install first (`ltxctl service install`): {} is missing", layout.tray().display()));
    } else if let Err(e) = ltx_service::manage::set_tray_login(layout, on) {
        st.error = Some(e.to_string());
    }
    st.launch_at_login = ltx_service::manage::tray_login_enabled(layout);
}

/// One connected session; `Ok(true)` = quit, `Ok(false)` = the connection ended.
async fn session(
    cfg: &Config,
    daemon: &Daemon,
    st: &mut State,
    rx: &mut mpsc::Receiver<Cmd>,
    push: &impl Fn(State),
) -> Result<bool, ClientError> {
    let mut events = Client::connect(&cfg.socket, "ltx-tray").await?;
    if cfg.notifications {
        events.shows_notifications().await?;
    }
    let mut events = events.subscribe(None, false).await?;
    let mut ctl = Client::connect(&cfg.socket, "ltx-tray").await?;
    // The frame reader is not cancel-safe: events are read by their own task and arrive over a channel.
    let (etx, mut erx) = mpsc::channel(256);
    let reader = tokio::spawn(async move {
        loop {
            let ev = events.next().await.and_then(|e| e.ok_or(ClientError::Closed));
            let end = ev.is_err();
            if etx.send(ev).await.is_err() || end {
                return;
            }
        }
    });
    let _abort = AbortOnDrop(reader);
    st.connected = true;
    refresh(&mut ctl, st).await?;
    push(st.clone());
    loop {
        tokio::select! {
            ev = erx.recv() => {
                let ev = match ev {
                    Some(Ok(ev)) => ev,
                    Some(Err(e)) => return Err(e),
                    None => return Ok(false),
                };
                let mut need_refresh = true;
                match ev.kind {
                    EventKind::Started => st.error = None,
                    EventKind::Stage { stage, elapsed_ms, eta } => {
                        if let Some(r) = st.running.as_mut().filter(|r| r.id == ev.job) {
                            r.update(&stage, 0, 0, elapsed_ms, eta);
                            need_refresh = false;
                        }
                    }
                    EventKind::Step { stage, step, total, elapsed_ms, eta } => {
                        if let Some(r) = st.running.as_mut().filter(|r| r.id == ev.job) {
                            r.update(&stage, step, total, elapsed_ms, eta);
                            need_refresh = false;
                        }
                    }
                    EventKind::Completed { output, duration_ms, .. } if cfg.notifications => {
                        let prompt = prompt_of(&mut ctl, ev.job).await;
                        let note = ltx_service::desktop::completed(&prompt, duration_ms, &output);
                        super::notes::post(note, Some(output));
                    }
                    EventKind::Failed { message, .. } => {
                        if cfg.notifications {
                            let prompt = prompt_of(&mut ctl, ev.job).await;
                            super::notes::post(ltx_service::desktop::failed(&prompt, &message), None);
                        }
                        st.error = Some(message);
                    }
                    EventKind::Preview { .. } => need_refresh = false,
                    _ => {}
                }
                if need_refresh {
                    refresh(&mut ctl, st).await?;
                }
                push(st.clone());
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return Ok(true) };
                match command(daemon, &mut ctl, st, cmd).await {
                    Ok(true) => return Ok(true),
                    Ok(false) => {}
                    Err(ClientError::Daemon(e)) => st.error = Some(e.to_string()),
                    Err(e) => return Err(e),
                }
                if st.stopped_by_user {
                    return Ok(false);
                }
                refresh(&mut ctl, st).await?;
                push(st.clone());
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn prompt_of(ctl: &mut Client, job: u64) -> String {
    ctl.job(job).await.map(|r| r.request.prompt).unwrap_or_default()
}

/// Runs one command; `Ok(true)` = quit.
async fn command(daemon: &Daemon, ctl: &mut Client, st: &mut State, cmd: Cmd) -> Result<bool, ClientError> {
    match cmd {
        Cmd::Quit => return Ok(true),
        Cmd::Cancel => {
            if let Some(r) = &st.running {
                ctl.cancel(r.id).await?;
            }
        }
        Cmd::Pause => ctl.pause().await?,
        Cmd::Resume => ctl.resume().await?,
        Cmd::Submit(req) => {
            st.error = None;
            ctl.submit(*req).await?;
        }
        Cmd::UnloadAll => ctl.unload(None).await?,
        Cmd::Pull(variant) => drop(ctl.models_pull(variant, None).await?),
        Cmd::SetModelsDir(path) => {
            let d = ctl.models_dir(Some(path)).await?;
            if d.restart_needed {
                st.error = Some(format!("models folder set to {}: restart the daemon to use it", d.path.display()));
            }
        }
        Cmd::StartDaemon => {}
        Cmd::StopDaemon => match daemon::stop(daemon).await {
            Ok(_) => st.stopped_by_user = true,
            Err(e) => st.error = Some(e.to_string()),
        },
        Cmd::SetLaunchAtLogin(on) => set_login(&daemon.layout, on, st),
    }
    Ok(false)
}

/// Re-reads status, queue, history, loaded components and models.
async fn refresh(ctl: &mut Client, st: &mut State) -> Result<(), ClientError> {
    let status = ctl.status().await?;
    st.outputs_dir = Some(status.outputs_dir);
    st.decision = Some(status.decision.variant);
    let q = ctl.queue().await?;
    st.paused = q.paused;
    st.pending = q.pending.len() as u32;
    let progress = q.progress;
    st.running = q.running.map(|r| match st.running.take() {
        Some(old) if old.id == r.id => old,
        _ => {
            let mut new = Running { id: r.id, prompt: r.request.prompt, ..Default::default() };
            if let Some(p) = progress {
                new.update(&p.stage, p.step, p.total, p.elapsed_ms, p.eta);
            }
            new
        }
    });
    st.recent = ctl
        .history(50)
        .await?
        .into_iter()
        .filter(|r| r.state == JobState::Completed)
        .filter_map(|r| Some(Recent { id: r.id, prompt: r.request.prompt, output: r.output? }))
        .take(RECENT)
        .collect();
    st.components = ctl.ps().await?;
    // A daemon without model management answers with an error: the Models submenu then says "unknown".
    st.models = match ctl.models_list().await {
        Ok(m) => Some(m),
        Err(ClientError::Daemon(_) | ClientError::Unexpected(_)) => None,
        Err(e) => return Err(e),
    };
    Ok(())
}
