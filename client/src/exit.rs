//! `ltxctl`'s exit codes and the failure every command returns: a message for a person and its code.
use crate::daemon::ControlError;
use ltx_protocol::client::ClientError;
use ltx_protocol::{DaemonError, ValidationError, PROTOCOL_VERSION, VERSION};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_CANCELLED: u8 = 2;
pub const EXIT_UNAVAILABLE: u8 = 3;
pub const EXIT_INVALID: u8 = 4;
/// Following stopped before the job ended (Ctrl-C, detach): the job keeps running.
pub const EXIT_DETACHED: u8 = 5;

/// The command that restarts the daemon, through the service manager when one runs it.
pub const RESTART_COMMAND: &str = "ltxctl daemon stop && ltxctl daemon start";

/// A command's failure: the exit code, the stable machine code (`--json`'s error object, `docs/json.md`) and the
/// message for a person.
#[derive(Debug)]
pub struct Failure {
    pub exit: u8,
    pub code: &'static str,
    /// For an invalid request: the validation refusal's code.
    pub reason: Option<&'static str>,
    pub message: String,
}

impl Failure {
    /// A failure of ltxctl itself, its code following its exit code.
    pub fn new(exit: u8, message: impl Into<String>) -> Self {
        Failure { exit, code: exit_code_name(exit), reason: None, message: message.into() }
    }

    /// `--json`'s document of this failure: the error object and the exit code (`docs/json.md`).
    pub fn json(&self) -> serde_json::Value {
        let error = ltx_protocol::json::error_json(self.code, self.reason, &self.message);
        serde_json::json!({ "error": error, "exit": self.exit })
    }
}

/// The code of a failure that has no more specific one.
fn exit_code_name(exit: u8) -> &'static str {
    match exit {
        EXIT_CANCELLED => "cancelled",
        EXIT_UNAVAILABLE => "unavailable",
        EXIT_INVALID => "invalid_request",
        _ => "failed",
    }
}

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
        let reason = if let ClientError::Daemon(d) = &e { d.reason() } else { None };
        Failure { exit: code, code: e.code(), reason, message: msg }
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
        Failure {
            exit: EXIT_INVALID,
            code: "invalid_request",
            reason: Some(e.code()),
            message: format!("invalid request: {e}"),
        }
    }
}

impl ControlError {
    /// The stable machine spelling of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Spawn { .. } => "daemon_spawn",
            Self::ExitedAtStart(_) => "daemon_exited",
            Self::NotUp | Self::ServiceNotUp => "daemon_not_up",
            Self::StartFailed(_) => "service_start_failed",
            Self::StopFailed(_) => "service_stop_failed",
            Self::StillRunning => "daemon_still_running",
            Self::Signal { .. } => "daemon_signal",
            Self::Client(e) => e.code(),
        }
    }
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Client(e) => e.into(),
            e @ (ControlError::StillRunning | ControlError::StopFailed(_)) => {
                Failure { code: e.code(), ..Failure::new(EXIT_FAILED, e.to_string()) }
            }
            e => Failure { code: e.code(), ..Failure::new(EXIT_UNAVAILABLE, e.to_string()) },
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
        let Failure { exit: code, message: msg, .. } = older.into();
        assert_eq!(code, EXIT_UNAVAILABLE);
        assert!(msg.contains(&format!("ltxd 0.0.1 speaks protocol v{}", PROTOCOL_VERSION - 1)), "{msg}");
        assert!(msg.contains(&format!("ltxctl {VERSION} speaks protocol v{PROTOCOL_VERSION}")), "{msg}");
        assert!(msg.contains("older") && msg.contains(RESTART_COMMAND), "{msg}");
        let newer = ClientError::Daemon(DaemonError::VersionMismatch {
            client: PROTOCOL_VERSION,
            daemon: PROTOCOL_VERSION + 1,
            daemon_version: "9.0.0".into(),
        });
        let Failure { message: msg, .. } = newer.into();
        assert!(msg.contains("newer: update ltxctl"), "{msg}");
    }

    #[test]
    fn failures_carry_a_stable_code() {
        let invalid = ClientError::Daemon(DaemonError::Invalid(ValidationError::PromptEmpty));
        let f = Failure::from(invalid);
        assert_eq!((f.exit, f.code, f.reason), (EXIT_INVALID, "invalid_request", Some("prompt_empty")));
        let j = f.json();
        assert_eq!(j["exit"], 4);
        assert_eq!(j["error"]["code"], "invalid_request");
        assert_eq!(j["error"]["reason"], "prompt_empty");
        let f = Failure::from(ValidationError::PromptEmpty);
        assert_eq!((f.code, f.reason), ("invalid_request", Some("prompt_empty")));
        assert_eq!(Failure::new(EXIT_FAILED, "x").code, "failed");
        assert_eq!(Failure::from(ClientError::Closed).code, "closed");
    }

    #[test]
    fn daemon_control_errors_exit_unavailable_or_failed() {
        let spawn = ControlError::Spawn { bin: "/no/ltxd".into(), source: std::io::ErrorKind::NotFound.into() };
        let Failure { exit: code, message: msg, code: name, .. } = spawn.into();
        assert_eq!(name, "daemon_spawn");
        assert_eq!(code, EXIT_UNAVAILABLE);
        assert!(msg.starts_with("cannot start /no/ltxd"), "{msg}");
        assert_eq!(Failure::from(ControlError::NotUp).exit, EXIT_UNAVAILABLE);
        assert_eq!(Failure::from(ControlError::StillRunning).exit, EXIT_FAILED);
        assert_eq!(Failure::from(ControlError::Client(ClientError::Closed)).exit, EXIT_FAILED);
    }
}
