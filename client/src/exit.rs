//! `ltxctl`'s exit codes and the failure every command returns: a message for a person and its code.
use crate::daemon::ControlError;
use ltx_protocol::client::ClientError;
use ltx_protocol::{DaemonError, ValidationError};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_CANCELLED: u8 = 2;
pub const EXIT_UNAVAILABLE: u8 = 3;
pub const EXIT_INVALID: u8 = 4;

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
                | DaemonError::ModelsMissing { .. },
            ) => EXIT_INVALID,
            _ => EXIT_FAILED,
        };
        Failure(code, e.to_string())
    }
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
