//! Reaching, starting and stopping `ltxd`, as library calls: `ltxctl daemon start|stop` and the tray both use
//! [`start`] and [`stop`]. With the per-user service installed they go through the service manager
//! ([`ltx_service::manage::start`] / [`stop`](ltx_service::manage::stop)); otherwise `start` spawns `ltxd` and
//! `stop` asks it to shut down.
use crate::platform;
use ltx_protocol::client::{Client, ClientError};
use ltx_protocol::paths::Env;
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
    Stopped,
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

/// Stops the daemon (through the service manager when the service is installed) and waits until it is gone.
pub async fn stop(d: &Daemon) -> Result<Stopped, ControlError> {
    if d.layout.service_installed() {
        service(&d.layout, ltx_service::manage::stop).await.map_err(ControlError::StopFailed)?;
    } else {
        match connect(&d.socket).await {
            Ok(mut c) => c.shutdown().await?,
            Err(ClientError::Unavailable { .. }) => return Ok(Stopped::NotRunning),
            Err(e) => return Err(e.into()),
        }
    }
    if wait_down(&d.socket, STOP_TIMEOUT).await {
        Ok(Stopped::Stopped)
    } else {
        Err(ControlError::StillRunning)
    }
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
