//! Reaching, starting and stopping `ltxd`, as library calls: `ltxctl daemon start|stop` and the tray both use
//! [`start`] and [`stop`]. With the per-user service installed they go through the service manager
//! ([`ltx_service::manage::start`] / [`stop`](ltx_service::manage::stop)); otherwise `start` spawns `ltxd` and
//! `stop` asks it to shut down.
use crate::platform;
use ltx_protocol::client::{Client, ClientError};
use ltx_protocol::paths::Env;
use ltx_protocol::{DaemonError, JobId};
use ltx_service::{Layout, ServiceError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a start may take to answer, and a stop to go quiet.
const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects as `ltxctl` (handshake included).
pub async fn connect(socket: &Path) -> Result<Client, ClientError> {
    Client::connect(socket, "ltxctl").await
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// Started now: spawned, or brought up by the service manager.
    Started { pid: u32, by_service: bool },
    /// A daemon already answered on the socket.
    AlreadyRunning { daemon_version: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The daemon has exited (its process is gone, not only its socket).
    Stopped {
        pid: Option<u32>,
        /// The job that was running: the daemon marked it interrupted.
        interrupted: Option<JobId>,
    },
    /// Nothing answered on the socket (and no service manager runs it).
    NotRunning,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot start {bin}: {source}")]
    Spawn { bin: PathBuf, source: std::io::Error },
    #[error("ltxd exited at start ({0}); see its log")]
    ExitedAtStart(std::process::ExitStatus),
    #[error("ltxd did not come up within {} s", START_TIMEOUT.as_secs())]
    NotUp,
    #[error("the service manager did not bring ltxd up within {} s", START_TIMEOUT.as_secs())]
    ServiceNotUp,
    #[error("{0}")]
    StartFailed(ServiceError),
    #[error("{0}")]
    StopFailed(ServiceError),
    #[error("ltxd is still running after {} s", STOP_TIMEOUT.as_secs())]
    StillRunning,
    #[error("cannot stop ltxd (pid {pid}): {source}")]
    Signal { pid: u32, source: std::io::Error },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Where the daemon is and how to start it.
pub struct Daemon {
    pub socket: PathBuf,
    /// The socket was named on the command line: a spawned `ltxd` gets it as `--socket`.
    pub explicit_socket: bool,
    /// This user's service layout (installed service, installed binaries).
    pub layout: Layout,
    /// The `ltxd` spawned when no service is installed.
    pub binary: PathBuf,
}

impl Daemon {
    pub fn new(socket: PathBuf, explicit_socket: bool) -> Self {
        let layout = Layout::current(socket.clone());
        let exe = std::env::current_exe().ok();
        let binary = platform::daemon_binary(&Env::process(), exe.as_deref(), &layout.daemon());
        Self { socket, explicit_socket, layout, binary }
    }
}

/// Whether the daemon answers within 2 s: a socket held by a service manager accepts with no daemon behind it.
async fn answers(socket: &Path) -> Option<Client> {
    tokio::time::timeout(Duration::from_secs(2), connect(socket)).await.ok()?.ok()
}

/// Polls until the daemon answers; the connection that answered.
pub async fn wait_up(socket: &Path, timeout: Duration) -> Option<Client> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(c) = answers(socket).await {
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Polls until the daemon stops answering; `false` if it still does after `timeout`.
pub async fn wait_down(socket: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if answers(socket).await.is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Runs a blocking service-manager call off the async thread (the tray's runtime has only one).
async fn service(
    layout: &Layout,
    f: fn(&Layout, &mut dyn ltx_service::Runner) -> Result<(), ServiceError>,
) -> Result<(), ServiceError> {
    let l = layout.clone();
    tokio::task::spawn_blocking(move || f(&l, &mut ltx_service::System))
        .await
        .unwrap_or_else(|e| Err(ServiceError::Other(e.to_string())))
}

/// Starts the daemon unless one answers already.
pub async fn start(d: &Daemon) -> Result<Started, ControlError> {
    match connect(&d.socket).await {
        Ok(c) => return Ok(Started::AlreadyRunning { daemon_version: c.welcome.daemon_version }),
        // A daemon answered and refused (an older protocol, another user): a second one could not bind the socket.
        Err(e @ ClientError::Daemon(_)) => return Err(e.into()),
        Err(_) => {}
    }
    if d.layout.service_installed() {
        service(&d.layout, ltx_service::manage::start).await.map_err(ControlError::StartFailed)?;
        let Some(mut c) = wait_up(&d.socket, START_TIMEOUT).await else {
            return Err(ControlError::ServiceNotUp);
        };
        return Ok(Started::Started { pid: c.status().await?.pid, by_service: true });
    }
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(&d.binary);
    if d.explicit_socket {
        cmd.arg("--socket").arg(&d.socket);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|source| ControlError::Spawn { bin: d.binary.clone(), source })?;
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if connect(&d.socket).await.is_ok() {
            let pid = child.id();
            // Reaped when it exits, however long this process lives (the tray outlives the daemons it starts).
            std::thread::spawn(move || child.wait());
            return Ok(Started::Started { pid, by_service: false });
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ControlError::ExitedAtStart(status));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(ControlError::NotUp)
}

/// Stops the daemon (through the service manager when the service is installed) and returns once its process
/// has exited, so a `start` right after finds the state directory free. A daemon that refuses this client's
/// protocol version (an older `ltxd` left running) is stopped with SIGTERM, once the socket's peer is checked to
/// be an `ltxd` of this user.
pub async fn stop(d: &Daemon) -> Result<Stopped, ControlError> {
    let peer = peer_daemon(&d.socket).await;
    let interrupted = match connect(&d.socket).await {
        Ok(mut c) => {
            let running = c.status().await.ok().and_then(|s| s.running);
            if !d.layout.service_installed() {
                c.shutdown().await?;
            }
            running
        }
        Err(ClientError::Unavailable { .. }) if !d.layout.service_installed() => return Ok(Stopped::NotRunning),
        Err(e @ ClientError::Daemon(DaemonError::VersionMismatch { .. })) if !d.layout.service_installed() => {
            // Not provably an ltxd of this user: say what refused, stop nothing.
            let pid = peer.ok_or(ControlError::Client(e))?;
            terminate(pid)?;
            None
        }
        Err(ClientError::Unavailable { .. }) => None,
        Err(e) if !d.layout.service_installed() => return Err(e.into()),
        Err(_) => None,
    };
    if d.layout.service_installed() {
        service(&d.layout, ltx_service::manage::stop).await.map_err(ControlError::StopFailed)?;
    }
    let gone = match peer {
        Some(pid) => wait_exit(pid, STOP_TIMEOUT).await,
        None => wait_down(&d.socket, STOP_TIMEOUT).await,
    };
    if gone {
        Ok(Stopped::Stopped { pid: peer, interrupted })
    } else {
        Err(ControlError::StillRunning)
    }
}

/// Stops the daemon if it runs, then starts it.
pub async fn restart(d: &Daemon) -> Result<(Stopped, Started), ControlError> {
    let stopped = stop(d).await?;
    Ok((stopped, start(d).await?))
}

/// The pid behind the socket when it is an `ltxd` (or `ltxd-…` test build) of this user: never a socket
/// activator holding the socket for it, never another user's process.
async fn peer_daemon(socket: &Path) -> Option<u32> {
    let (pid, uid) = ltx_protocol::client::peer_process(socket).await?;
    let own = uid == ltx_protocol::server::current_uid();
    (own && process_name(pid).is_some_and(|n| n == "ltxd" || n.starts_with("ltxd-"))).then_some(pid)
}

/// The process's command name.
fn process_name(pid: u32) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim().to_string())
    }
    #[cfg(target_os = "macos")]
    {
        let mut buf = [0u8; 256];
        // SAFETY: proc_name writes at most `buf.len()` bytes into `buf` and returns how many.
        let n = unsafe { libc::proc_name(pid as i32, buf.as_mut_ptr().cast(), buf.len() as u32) };
        (n > 0).then(|| String::from_utf8_lossy(&buf[..n as usize]).into_owned())
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = pid;
        None
    }
}

fn terminate(pid: u32) -> Result<(), ControlError> {
    // SAFETY: kill with a pid checked to be this user's ltxd.
    if unsafe { libc::kill(pid as i32, libc::SIGTERM) } != 0 {
        return Err(ControlError::Signal { pid, source: std::io::Error::last_os_error() });
    }
    Ok(())
}

/// Polls until process `pid` is gone; `false` if it still runs after `timeout`.
async fn wait_exit(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        // SAFETY: signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid as i32, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltx_protocol::paths::Os;
    use std::ffi::OsString;

    #[tokio::test]
    async fn nothing_to_stop_and_a_missing_binary() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path().to_path_buf();
        let f = move |k: &str| (k == "HOME").then(|| OsString::from(&h));
        let socket = home.path().join("run/ltxd.sock");
        let d = Daemon {
            socket: socket.clone(),
            explicit_socket: true,
            layout: Layout::new(Os::current(), &Env(&f), 1000, socket),
            binary: home.path().join("no/ltxd"),
        };
        assert!(!d.layout.service_installed());
        assert_eq!(stop(&d).await.unwrap(), Stopped::NotRunning);
        let e = start(&d).await.unwrap_err();
        assert!(matches!(e, ControlError::Spawn { .. }), "{e:?}");
        assert!(e.to_string().starts_with(&format!("cannot start {}", d.binary.display())), "{e}");
    }
}
