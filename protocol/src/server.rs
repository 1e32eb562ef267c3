//! Server side helpers: binding the socket safely and the handshake.
use crate::connection::{FrameReader, FrameWriter};
use crate::error::DaemonError;
use crate::frame::FrameError;
use crate::message::*;
use crate::{PROTOCOL_VERSION, VERSION};
use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::traits::StreamCommon as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncWrite};

pub const CAPABILITIES: &[&str] = &["previews", "pause", "keep-alive"];

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another ltxd is already running and listening on {0}")]
    AlreadyRunning(PathBuf),
    #[error("socket path {path} is {len} bytes; the limit is {max}")]
    PathTooLong { path: PathBuf, len: usize, max: usize },
    #[error("cannot listen on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Creates `dir` and any missing parents with mode 0700. An existing directory is left as it is (the socket
/// path may be configured into a shared directory); see [`dir_is_private`].
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Whether only the owner can enter `dir` (the real guard where the socket mode cannot be set before bind).
pub fn dir_is_private(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

/// Creates the socket directory (0700), replaces a stale socket from a crash, refuses to replace a live
/// daemon's socket, and listens with mode 0600. The socket file is removed when the listener drops.
pub fn bind(path: &Path) -> Result<Listener, BindError> {
    let io = |source| BindError::Io { path: path.into(), source };
    let max = crate::paths::max_socket_path(crate::paths::Os::current());
    let len = path.as_os_str().len();
    if len > max {
        return Err(BindError::PathTooLong { path: path.into(), len, max });
    }
    if let Some(dir) = path.parent() {
        private_dir(dir).map_err(io)?;
    }
    if path.symlink_metadata().is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(BindError::AlreadyRunning(path.into()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let name = || path.to_fs_name::<GenericFilePath>();
    let listener = match ListenerOptions::new().name(name().map_err(io)?).mode(0o600).create_tokio() {
        // macOS cannot set the mode before bind: the 0700 directory is the guard, then chmod.
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
            ListenerOptions::new().name(name().map_err(io)?).create_tokio().map_err(io)?
        }
        other => other.map_err(io)?,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// The uid of this process: the daemon serves only its own user.
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Peer check: only the daemon's own user may talk to it. `None` = the OS gave no credentials: refuse.
pub fn peer_allowed(peer_uid: Option<u32>, own_uid: u32) -> bool {
    peer_uid == Some(own_uid)
}

/// The effective uid of the peer, if the OS reports it.
pub fn peer_uid(stream: &Stream) -> Option<u32> {
    stream.peer_creds().ok()?.euid()
}

/// Reads `Hello`, checks the version, answers `Welcome` (or the error, which is also returned).
pub async fn handshake<R, W>(reader: &mut FrameReader<R>, writer: &mut FrameWriter<W>) -> Result<Hello, HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let err = match reader.read::<ClientMsg>().await {
        Ok(Some(ClientMsg::Hello(h))) if h.protocol_version == PROTOCOL_VERSION => {
            let welcome = Welcome {
                protocol_version: PROTOCOL_VERSION,
                daemon_version: VERSION.into(),
                capabilities: CAPABILITIES.iter().map(|s| s.to_string()).collect(),
            };
            writer.write(&ServerMsg::Welcome(welcome)).await?;
            return Ok(h);
        }
        Ok(Some(ClientMsg::Hello(h))) => DaemonError::VersionMismatch {
            client: h.protocol_version,
            daemon: PROTOCOL_VERSION,
            daemon_version: VERSION.into(),
        },
        Ok(Some(ClientMsg::Request(_))) => DaemonError::HandshakeRequired,
        Ok(None) => return Err(HandshakeError::Closed),
        Err(FrameError::Io(e)) => return Err(HandshakeError::Frame(FrameError::Io(e))),
        Err(e) => DaemonError::BadFrame(e.to_string()),
    };
    let _ = writer.write(&ServerMsg::Error(err.clone())).await;
    Err(HandshakeError::Refused(err))
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("client closed the connection before Hello")]
    Closed,
    #[error("handshake refused: {0}")]
    Refused(DaemonError),
    #[error("{0}")]
    Frame(#[from] FrameError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers() {
        assert!(peer_allowed(Some(501), 501));
        assert!(!peer_allowed(Some(0), 501));
        assert!(!peer_allowed(None, 501));
    }

    #[tokio::test]
    async fn bind_dirs_stale_and_live_sockets() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("a/b/ltxd.sock");
        let l = bind(&sock).unwrap();
        assert!(dir_is_private(sock.parent().unwrap()) && dir_is_private(&tmp.path().join("a")));
        assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(matches!(bind(&sock), Err(BindError::AlreadyRunning(_))));
        drop(l);
        // A stale socket file (no listener) is replaced.
        let _stale = std::os::unix::net::UnixListener::bind(tmp.path().join("s.sock")).map(drop);
        assert!(tmp.path().join("s.sock").exists());
        drop(bind(&tmp.path().join("s.sock")).unwrap());
        // An existing shared directory keeps its mode.
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        drop(bind(&shared.join("x.sock")).unwrap());
        assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777, 0o1777);
        let long = tmp.path().join("x".repeat(120));
        assert!(matches!(bind(&long), Err(BindError::PathTooLong { .. })));
    }
}
