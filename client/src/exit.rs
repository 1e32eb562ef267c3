//! `ltxctl`'s exit codes and the failure every command returns: a message for a person and its code.
use crate::daemon::ControlError;
use ltx_protocol::client::ClientError;
use ltx_protocol::{DaemonError, ValidationError, PROTOCOL_VERSION, VERSION};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_CANCELLED: u8 = 2;
pub const EXIT_UNAVAILABLE: u8 = 3;
pub const EXIT_INVALID: u8 = 4;

/// The command that restarts the daemon, through the service manager when one runs it.
pub const RESTART_COMMAND: &str = "ltxctl daemon stop && ltxctl daemon start";

/// A command's failure: the message for a person and the exit code.
pub struct Failure(pub u8, pub String);

pub type Res = Result<u8, Failure>;

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Unavailable { .. }
            | ClientError::Daemon(DaemonError::VersionMismatch { .. })
            | ClientError::Daemon(DaemonError::PermissionDenied { .. })
            | ClientError::Daemon(DaemonError::ShuttingDown) => EXIT_UNAVAILABLE,
            ClientError::Daemon(
                DaemonError::Busy { .. }
                | DaemonError::Invalid(_)
                | DaemonError::NotFound(_)
                | DaemonError::NotCancellable { .. }
                | DaemonError::ModelsMissing { .. }
                | DaemonError::InsufficientMemory(_),
            ) => EXIT_INVALID,
            _ => EXIT_FAILED,
        };
        let msg = match &e {
            ClientError::Daemon(DaemonError::VersionMismatch { client, daemon, daemon_version }) => {
                version_mismatch(*client, *daemon, daemon_version)
            }
            e => e.to_string(),
        };
        Failure(code, msg)
    }
}

/// The daemon refused this client's protocol: both sides' versions and what to do (the running daemon is older:
/// restart it; newer: update ltxctl).
fn version_mismatch(client: u32, daemon: u32, daemon_version: &str) -> String {
    let this = if client == PROTOCOL_VERSION {
        format!("ltxctl {VERSION} speaks protocol v{client}")
    } else {
        format!("this client speaks protocol v{client}")
    };
    let fix = if daemon < client {
        format!("the running daemon is older than ltxctl: restart it (`{RESTART_COMMAND}`)")
    } else {
        format!("the running daemon is newer: update ltxctl, or restart the daemon (`{RESTART_COMMAND}`)")
    };
    format!("protocol version mismatch: ltxd {daemon_version} speaks protocol v{daemon}, {this} — {fix}")
}

impl From<ValidationError> for Failure {
    fn from(e: ValidationError) -> Self {
        Failure(EXIT_INVALID, format!("invalid request: {e}"))
    }
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Client(e) => e.into(),
            e @ (ControlError::StillRunning | ControlError::StopFailed(_)) => Failure(EXIT_FAILED, e.to_string()),
            e => Failure(EXIT_UNAVAILABLE, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_mismatch_names_both_versions_and_the_fix() {
        let older = ClientError::Daemon(DaemonError::VersionMismatch {
            client: PROTOCOL_VERSION,
            daemon: PROTOCOL_VERSION - 1,
            daemon_version: "0.0.1".into(),
        });
        let Failure(code, msg) = older.into();
        assert_eq!(code, EXIT_UNAVAILABLE);
        assert!(msg.contains(&format!("ltxd 0.0.1 speaks protocol v{}", PROTOCOL_VERSION - 1)), "{msg}");
        assert!(msg.contains(&format!("ltxctl {VERSION} speaks protocol v{PROTOCOL_VERSION}")), "{msg}");
        assert!(msg.contains("older") && msg.contains(RESTART_COMMAND), "{msg}");
        let newer = ClientError::Daemon(DaemonError::VersionMismatch {
            client: PROTOCOL_VERSION,
            daemon: PROTOCOL_VERSION + 1,
            daemon_version: "9.0.0".into(),
        });
        let Failure(_, msg) = newer.into();
        assert!(msg.contains("newer: update ltxctl"), "{msg}");
    }

    #[test]
    fn daemon_control_errors_exit_unavailable_or_failed() {
        let spawn = ControlError::Spawn { bin: "/no/ltxd".into(), source: std::io::ErrorKind::NotFound.into() };
        let Failure(code, msg) = spawn.into();
        assert_eq!(code, EXIT_UNAVAILABLE);
        assert!(msg.starts_with("cannot start /no/ltxd"), "{msg}");
        assert_eq!(Failure::from(ControlError::NotUp).0, EXIT_UNAVAILABLE);
        assert_eq!(Failure::from(ControlError::StillRunning).0, EXIT_FAILED);
        assert_eq!(Failure::from(ControlError::Client(ClientError::Closed)).0, EXIT_FAILED);
    }
}
