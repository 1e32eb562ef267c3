//! `ltxctl service install | uninstall | status | restart`: the per-user service, through [`ltx_service::manage`].
use crate::cli::ServiceCmd;
use crate::daemon::{connect, wait_down};
use crate::exit::{Failure, Res, EXIT_FAILED, EXIT_OK};
use crate::{json, print};
use ltx_protocol::paths::Os;
use std::path::{Path, PathBuf};

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
    Failure::new(EXIT_FAILED, e.to_string())
}

fn report(changes: &[String], none: &str, json: bool) {
    if json {
        print::json(json::service_changes(changes));
    } else if changes.is_empty() {
        println!("{none}");
    } else {
        changes.iter().for_each(|c| println!("{c}"));
    }
}

/// `ltxctl service …`.
pub async fn command(action: ServiceCmd, socket: &Path, json: bool) -> Res {
    let l = ltx_service::Layout::current(socket.to_path_buf());
    let mut sys = ltx_service::System;
    match action {
        ServiceCmd::Install { from } => {
            let bin_dir = match from {
                Some(d) => d,
                None => std::env::current_exe()
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .ok_or_else(|| Failure::new(EXIT_FAILED, "cannot find this executable's folder"))?,
            };
            let runtime = mlx_runtime(&bin_dir.join("ltxd"));
            let sources = ltx_service::Sources { bin_dir, runtime, version: ltx_protocol::VERSION.into() };
            let mut changes = Vec::new();
            // A daemon started by hand holds the socket the service manager is about to own: stop it first.
            let managed = ltx_service::manage::status(&l, &mut sys).map_err(fail)?.running;
            if !managed {
                if let Ok(mut c) = connect(socket).await {
                    let pid = c.status().await.map_or("?".into(), |s| s.pid.to_string());
                    c.shutdown().await?;
                    if !wait_down(socket, std::time::Duration::from_secs(30)).await {
                        return Err(Failure::new(EXIT_FAILED, "the running ltxd did not stop within 30 s"));
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
                print::json(json::service_status(&s));
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
    Ok(EXIT_OK)
}
