//! Auto-start and service management for `ltxd`, as plain functions of the platform so Linux tests cover the
//! macOS branches (`cargo check --target aarch64-apple-darwin -p ltx-service` type-checks the rest):
//!
//! - [`launchd`]: the LaunchAgent plists (daemon and tray login item) and the tray's `.app` Info.plist;
//! - [`systemd`]: the `ltxd.socket` / `ltxd.service` user units and the tray's XDG autostart entry;
//! - [`layout`]: where things are installed and the copy of binaries + the MLX runtime into one folder;
//! - [`manage`]: `install | uninstall | status | restart` and the daemon's `start | stop` over a
//!   [`manage::Runner`] (launchctl / systemctl): the one place that builds their command lines;
//! - [`activation`]: the listening socket handed over by systemd (`LISTEN_FDS`) or launchd;
//! - [`desktop`]: the text of completion and failure notifications (daemon and tray say the same).
pub mod activation;
pub mod desktop;
pub mod launchd;
pub mod layout;
pub mod manage;
pub mod systemd;

pub use layout::Layout;
pub use manage::{Runner, ServiceError, ServiceStatus, Sources, System};

/// The uid of this process: the `gui/<uid>` launchd domain and the owner of the [`Layout`].
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// launchd label of the daemon's LaunchAgent.
pub const SERVICE_LABEL: &str = "com.ltx.ltxd";
/// launchd label of the tray's login item; also its bundle identifier.
pub const TRAY_LABEL: &str = "com.ltx.tray";
/// Socket name in the LaunchAgent's `Sockets` dictionary (what `launch_activate_socket` asks for).
pub const LAUNCHD_SOCKET_NAME: &str = "Listener";
