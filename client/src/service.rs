//! Platform plumbing for `ltxctl daemon …` and `open`, as plain functions (type-checked for macOS here).
use crate::Failure;
use ltx_protocol::paths::{self, Env, Os, ServiceAction};
use std::path::{Path, PathBuf};

/// The service-manager commands to run when the per-user service is installed, else `None`.
pub fn managed_commands(os: Os, env: &Env, action: ServiceAction, uid: u32) -> Option<Vec<Vec<String>>> {
    let unit = paths::service_unit(os, env);
    if !unit.is_file() {
        return None;
    }
    let mut cmds = vec![paths::service_command(os, action, uid, &unit)];
    if action == ServiceAction::Start {
        cmds.extend(paths::service_kick(os, uid));
    }
    Some(cmds)
}

/// The command that opens a file with the user's default application.
pub fn open_command(os: Os, file: &Path) -> Vec<String> {
    let prog = if os == Os::Mac { "open" } else { "xdg-open" };
    vec![prog.into(), file.display().to_string()]
}

/// The `ltxd` to spawn: `$LTXD_BIN`, else next to this executable, else `ltxd` on `PATH`.
pub fn daemon_binary(env: &Env, current_exe: Option<&Path>) -> PathBuf {
    if let Some(p) = (env.0)("LTXD_BIN") {
        return p.into();
    }
    current_exe
        .and_then(Path::parent)
        .map(|d| d.join("ltxd"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("ltxd"))
}

#[derive(Debug, clap::Subcommand)]
pub enum ServiceCmd {
    /// Copy ltxd, ltxctl, ltx-tray and the MLX runtime into one folder, write and start the service (socket
    /// activated) and the tray's login item. Idempotent: prints exactly what it changed.
    Install {
        /// Folder holding the built binaries (default: the folder of this ltxctl).
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Stop and remove the service, the tray's login item and the installed files.
    Uninstall,
    /// Whether the service is installed, enabled and running.
    Status,
    /// Restart the daemon through the service manager.
    Restart,
}

fn layout(socket: &Path) -> ltx_service::Layout {
    ltx_service::Layout::new(Os::current(), &Env::process(), paths::current_uid(), socket.to_path_buf())
}

/// The MLX runtime `ltxd` loads: `$LTX_MLX_RUNTIME`, else found with `ldd` (Linux) or `otool -l` (macOS).
fn mlx_runtime(ltxd: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LTX_MLX_RUNTIME").filter(|v| !v.is_empty()) {
        return Some(p.into());
    }
    let (prog, args): (&str, &[&str]) = match Os::current() {
        Os::Linux => ("ldd", &[]),
        Os::Mac => ("otool", &["-l"]),
    };
    let out = std::process::Command::new(prog).args(args).arg(ltxd).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    match Os::current() {
        Os::Linux => ltx_service::layout::runtime_from_ldd(&text),
        Os::Mac => ltx_service::layout::runtime_from_otool(&text, |p| p.is_file()),
    }
}

fn fail(e: ltx_service::ServiceError) -> Failure {
    Failure(crate::EXIT_FAILED, e.to_string())
}

fn report(changes: &[String], none: &str, json: bool) {
    if json {
        crate::print_json(&serde_json::json!({ "changed": changes }));
    } else if changes.is_empty() {
        println!("{none}");
    } else {
        changes.iter().for_each(|c| println!("{c}"));
    }
}

/// `ltxctl service …`.
pub async fn command(action: ServiceCmd, socket: &Path, json: bool) -> crate::Res {
    let l = layout(socket);
    let mut sys = ltx_service::System;
    match action {
        ServiceCmd::Install { from } => {
            let bin_dir = match from {
                Some(d) => d,
                None => std::env::current_exe()
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .ok_or_else(|| Failure(crate::EXIT_FAILED, "cannot find this executable's folder".into()))?,
            };
            let runtime = mlx_runtime(&bin_dir.join("ltxd"));
            let sources = ltx_service::Sources { bin_dir, runtime, version: ltx_protocol::VERSION.into() };
            let mut changes = Vec::new();
            // A daemon started by hand holds the socket the service manager is about to own: stop it first.
            let managed = ltx_service::manage::status(&l, &mut sys).map_err(fail)?.running;
            if !managed {
                if let Ok(mut c) = crate::connect(socket).await {
                    let pid = match c.request(ltx_protocol::Request::Status).await {
                        Ok(ltx_protocol::Reply::Status(s)) => s.pid.to_string(),
                        _ => "?".into(),
                    };
                    c.request(ltx_protocol::Request::Shutdown).await?;
                    if !crate::wait_until(socket, false, std::time::Duration::from_secs(30)).await {
                        return Err(Failure(crate::EXIT_FAILED, "the running ltxd did not stop within 30 s".into()));
                    }
                    changes.push(format!("stopped the ltxd started outside the service (pid {pid})"));
                }
            }
            changes.extend(ltx_service::manage::install(&l, &sources, &mut sys).map_err(fail)?);
            report(&changes, "the ltxd service is already installed and up to date; nothing changed", json);
        }
        ServiceCmd::Uninstall => {
            let changes = ltx_service::manage::uninstall(&l, &mut sys).map_err(fail)?;
            report(&changes, "the ltxd service is not installed; nothing changed", json);
        }
        ServiceCmd::Restart => {
            let changes = ltx_service::manage::restart(&l, &mut sys).map_err(fail)?;
            report(&changes, "", json);
        }
        ServiceCmd::Status => {
            let s = ltx_service::manage::status(&l, &mut sys).map_err(fail)?;
            if json {
                crate::print_json(&s);
            } else {
                let yes = |b: bool| if b { "yes" } else { "no" };
                println!("installed:  {}", yes(s.installed));
                println!("enabled:    {}", yes(s.enabled));
                let pid = s.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                println!("running:    {}{pid}", yes(s.running));
                println!("tray login: {}", yes(s.tray_login_item));
                s.files.iter().for_each(|f| println!("file:       {}", f.display()));
                s.detail.iter().for_each(|d| println!("state:      {d}"));
            }
        }
    }
    Ok(crate::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn service_detection() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path().to_path_buf();
        let f = move |k: &str| (k == "HOME").then(|| OsString::from(&h));
        let env = Env(&f);
        assert!(managed_commands(Os::Linux, &env, ServiceAction::Start, 1000).is_none());
        let unit = home.path().join(".config/systemd/user/ltxd.service");
        std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
        std::fs::write(&unit, "[Service]\n").unwrap();
        let cmds = managed_commands(Os::Linux, &env, ServiceAction::Start, 1000).unwrap();
        assert_eq!(cmds, [["systemctl", "--user", "start", "ltxd.service"]]);
        let plist = home.path().join("Library/LaunchAgents/com.ltx.ltxd.plist");
        std::fs::create_dir_all(plist.parent().unwrap()).unwrap();
        std::fs::write(&plist, "").unwrap();
        let cmds = managed_commands(Os::Mac, &env, ServiceAction::Start, 501).unwrap();
        assert_eq!(cmds[0][..3], ["launchctl", "bootstrap", "gui/501"]);
        assert_eq!(cmds[1], ["launchctl", "kickstart", "gui/501/com.ltx.ltxd"]);
        assert_eq!(open_command(Os::Mac, Path::new("/a.mp4")), ["open", "/a.mp4"]);
        assert_eq!(daemon_binary(&env, None), PathBuf::from("ltxd"));
    }
}
