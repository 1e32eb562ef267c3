//! `ltxctl service install | uninstall | status | restart`: the same verbs on launchd and systemd, idempotent,
//! each returning the list of what it changed (empty = nothing to do); and [`start`] / [`stop`], what
//! `ltxctl daemon start|stop` (and the tray) do while the service is installed. This module is the only place that
//! builds `launchctl` / `systemctl` command lines. Commands go through a [`Runner`] so tests record the exact calls
//! and script their answers.
use crate::layout::{self, Layout, BINARIES, TRAY_BINARY};
use crate::SERVICE_LABEL;
use crate::{launchd, systemd};
use ltx_protocol::paths::Os;
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs service-manager commands (and waits between retries).
pub trait Runner {
    fn run(&mut self, argv: &[String]) -> io::Result<Output>;
    fn sleep(&mut self, d: Duration);
}

/// The real thing: child processes and `thread::sleep`.
pub struct System;

impl Runner for System {
    fn run(&mut self, argv: &[String]) -> io::Result<Output> {
        let (prog, args) = argv.split_first().ok_or_else(|| io::Error::other("empty command"))?;
        let out = std::process::Command::new(prog)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {prog}: {e}")))?;
        Ok(Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("`{cmd}` failed (exit {code}): {stderr}")]
    Command { cmd: String, code: i32, stderr: String },
    #[error("cannot run `{cmd}`: {source}")]
    Spawn { cmd: String, source: io::Error },
    #[error("{0} not found next to ltxctl (build it, or point --from at the folder holding it)")]
    MissingBinary(PathBuf),
    #[error("the ltxd service is not installed (`ltxctl service install`)")]
    NotInstalled,
    #[error("{0}")]
    Other(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ServiceError + '_ {
    move |source| ServiceError::Io { path: path.to_path_buf(), source }
}

/// Where the files to install come from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Folder holding the built `ltxd`, `ltxctl` and (optionally) `ltx-tray`.
    pub bin_dir: PathBuf,
    /// The MLX runtime root (`mlx/lib/libmlx.*` inside); `None` when `ltxd` needs none.
    pub runtime: Option<PathBuf>,
    /// Version written into the tray's Info.plist.
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    /// Every service definition file is present.
    pub installed: bool,
    pub files: Vec<PathBuf>,
    /// Enabled at login (systemd `is-enabled`; launchd: loaded in `gui/<uid>`).
    pub enabled: bool,
    pub running: bool,
    pub pid: Option<u32>,
    /// The tray starts at login.
    pub tray_login_item: bool,
    /// Service-manager states, e.g. `ltxd.socket: active`.
    pub detail: Vec<String>,
}

fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn call(r: &mut dyn Runner, cmd: &[String]) -> Result<Output, ServiceError> {
    r.run(cmd).map_err(|source| ServiceError::Spawn { cmd: cmd.join(" "), source })
}

fn check(r: &mut dyn Runner, cmd: &[String]) -> Result<Output, ServiceError> {
    let out = call(r, cmd)?;
    if out.code != 0 {
        return Err(ServiceError::Command { cmd: cmd.join(" "), code: out.code, stderr: out.stderr.trim().into() });
    }
    Ok(out)
}

fn systemctl(args: &[&str]) -> Vec<String> {
    let mut v = argv(&["systemctl", "--user"]);
    v.extend(argv(args));
    v
}

const UNITS: [&str; 2] = ["ltxd.socket", "ltxd.service"];

/// Copies the binaries, the MLX runtime and the tray; returns the changed files.
fn install_files(l: &Layout, src: &Sources) -> Result<Vec<PathBuf>, ServiceError> {
    let mut changed = Vec::new();
    for b in BINARIES {
        let from = src.bin_dir.join(b);
        if !from.is_file() {
            return Err(ServiceError::MissingBinary(from));
        }
        let to = l.bin_dir.join(b);
        if layout::sync_file(&from, &to).map_err(io_err(&to))? {
            changed.push(to);
        }
    }
    if let Some(root) = &src.runtime {
        for part in layout::runtime_parts(root).map_err(io_err(root))? {
            let to = l.bin_dir.join(&part);
            changed.extend(layout::sync_tree(&root.join(&part), &to).map_err(io_err(&to))?);
        }
    }
    let tray = src.bin_dir.join(TRAY_BINARY);
    if tray.is_file() {
        let to = l.tray();
        if layout::sync_file(&tray, &to).map_err(io_err(&to))? {
            changed.push(to);
        }
        if l.os == Os::Mac {
            let info = l.app_bundle.join("Contents/Info.plist");
            let xml = launchd::to_xml(&launchd::tray_info_plist(&src.version))
                .map_err(|e| ServiceError::Other(format!("Info.plist: {e}")))?;
            if layout::sync_bytes(&xml, &info, 0o644).map_err(io_err(&info))? {
                changed.push(info);
            }
        }
    }
    Ok(changed)
}

/// The service definition files and their contents for this platform.
fn definitions(l: &Layout) -> Result<Vec<(PathBuf, Vec<u8>)>, ServiceError> {
    let files = l.unit_files();
    Ok(match l.os {
        Os::Linux => vec![
            (files[0].clone(), systemd::socket_unit(l).into_bytes()),
            (files[1].clone(), systemd::service_unit(l).into_bytes()),
        ],
        Os::Mac => vec![(
            files[0].clone(),
            launchd::to_xml(&launchd::daemon_agent(l)).map_err(|e| ServiceError::Other(format!("plist: {e}")))?,
        )],
    })
}

fn tray_login_bytes(l: &Layout) -> Result<Vec<u8>, ServiceError> {
    match l.os {
        Os::Linux => Ok(systemd::tray_autostart(l).into_bytes()),
        Os::Mac => launchd::to_xml(&launchd::tray_agent(l)).map_err(|e| ServiceError::Other(format!("plist: {e}"))),
    }
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// Installs (or brings up to date) the binaries, the service and the tray's login item, and starts the service.
pub fn install(l: &Layout, src: &Sources, r: &mut dyn Runner) -> Result<Vec<String>, ServiceError> {
    let mut report = Vec::new();
    let files = install_files(l, src)?;
    report.extend(files.iter().map(|f| format!("installed {}", show(f))));
    let mut defs_changed = false;
    for (path, bytes) in definitions(l)? {
        if layout::sync_bytes(&bytes, &path, 0o644).map_err(io_err(&path))? {
            defs_changed = true;
            report.push(format!("wrote {}", show(&path)));
        }
    }
    if l.tray().is_file() && !l.tray_login_item.exists() {
        report.extend(set_tray_login(l, true)?);
    }
    let changed = defs_changed || !files.is_empty();
    match l.os {
        Os::Linux => install_systemd(r, defs_changed, changed, &mut report)?,
        Os::Mac => install_launchd(l, r, changed, &mut report)?,
    }
    Ok(report)
}

fn install_systemd(
    r: &mut dyn Runner,
    defs_changed: bool,
    changed: bool,
    report: &mut Vec<String>,
) -> Result<(), ServiceError> {
    if defs_changed {
        check(r, &systemctl(&["daemon-reload"]))?;
        report.push("reloaded the systemd user manager (daemon-reload)".into());
    }
    let mut to_enable = Vec::new();
    for u in UNITS {
        if call(r, &systemctl(&["is-enabled", u]))?.stdout.trim() != "enabled" {
            to_enable.push(u);
        }
    }
    if !to_enable.is_empty() {
        let mut cmd = systemctl(&["enable"]);
        cmd.extend(argv(&to_enable));
        check(r, &cmd)?;
        report.push(format!("enabled {} (started at login)", to_enable.join(", ")));
    }
    if call(r, &systemctl(&["is-active", "ltxd.socket"]))?.stdout.trim() != "active" {
        check(r, &systemctl(&["start", "ltxd.socket"]))?;
        report.push("started ltxd.socket".into());
    }
    if call(r, &systemctl(&["is-active", "ltxd.service"]))?.stdout.trim() == "active" {
        if changed {
            check(r, &systemctl(&["restart", "ltxd.service"]))?;
            report.push("restarted ltxd.service (new files)".into());
        }
    } else {
        check(r, &systemctl(&["start", "ltxd.service"]))?;
        report.push("started ltxd.service".into());
    }
    Ok(())
}

fn domain(l: &Layout) -> String {
    format!("gui/{}", l.uid)
}

fn target(l: &Layout) -> String {
    format!("gui/{}/{SERVICE_LABEL}", l.uid)
}

fn launchd_loaded(l: &Layout, r: &mut dyn Runner) -> Result<Option<Output>, ServiceError> {
    let out = call(r, &argv(&["launchctl", "print", &target(l)]))?;
    Ok((out.code == 0).then_some(out))
}

fn bootout_cmd(l: &Layout) -> Vec<String> {
    argv(&["launchctl", "bootout", &target(l)])
}

fn bootstrap_cmd(l: &Layout, plist: &Path) -> Vec<String> {
    argv(&["launchctl", "bootstrap", &domain(l), &show(plist)])
}

fn kickstart_cmd(l: &Layout) -> Vec<String> {
    argv(&["launchctl", "kickstart", &target(l)])
}

/// `bootout` returns before the job is gone: poll `launchctl print` until it fails (10 s at most).
fn bootout(l: &Layout, r: &mut dyn Runner) -> Result<(), ServiceError> {
    let cmd = bootout_cmd(l);
    let out = call(r, &cmd)?;
    // 3 / 113: "No such process" / "Could not find service": already gone.
    if out.code != 0 && launchd_loaded(l, r)?.is_some() {
        return Err(ServiceError::Command { cmd: cmd.join(" "), code: out.code, stderr: out.stderr.trim().into() });
    }
    for _ in 0..50 {
        if launchd_loaded(l, r)?.is_none() {
            return Ok(());
        }
        r.sleep(Duration::from_millis(200));
    }
    Err(ServiceError::Other(format!("{SERVICE_LABEL} was still loaded 10 s after `launchctl bootout`")))
}

/// `bootstrap` right after an asynchronous `bootout` fails with "5: Input/output error": retry, 5 tries.
fn bootstrap(l: &Layout, plist: &Path, r: &mut dyn Runner) -> Result<(), ServiceError> {
    let cmd = bootstrap_cmd(l, plist);
    let mut last = Output::default();
    for attempt in 0..5 {
        if attempt > 0 {
            r.sleep(Duration::from_secs(1));
        }
        last = call(r, &cmd)?;
        if last.code == 0 {
            return Ok(());
        }
    }
    Err(ServiceError::Command { cmd: cmd.join(" "), code: last.code, stderr: last.stderr.trim().into() })
}

fn install_launchd(
    l: &Layout,
    r: &mut dyn Runner,
    changed: bool,
    report: &mut Vec<String>,
) -> Result<(), ServiceError> {
    // launchd creates neither the socket's folder nor the log folder.
    for dir in [l.socket.parent(), Some(l.log_dir.as_path())].into_iter().flatten() {
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))?;
            report.push(format!("created {}", show(dir)));
        }
    }
    let mut loaded = launchd_loaded(l, r)?.is_some();
    if loaded && changed {
        bootout(l, r)?;
        report.push(format!("unloaded {SERVICE_LABEL} to load the new files (launchctl bootout)"));
        loaded = false;
    }
    if !loaded {
        bootstrap(l, &l.unit_files()[0], r)?;
        report.push(format!("loaded {SERVICE_LABEL} into {} (launchctl bootstrap)", domain(l)));
        // RunAtLoad does not reliably fire on a re-bootstrap.
        check(r, &kickstart_cmd(l))?;
        report.push(format!("started {SERVICE_LABEL} (launchctl kickstart)"));
    }
    Ok(())
}

/// Stops and removes the service, the tray's login item and the installed files.
pub fn uninstall(l: &Layout, r: &mut dyn Runner) -> Result<Vec<String>, ServiceError> {
    let mut report = Vec::new();
    let units: Vec<PathBuf> = l.unit_files().into_iter().filter(|p| p.exists()).collect();
    match l.os {
        Os::Linux => {
            if !units.is_empty() {
                let mut cmd = systemctl(&["disable", "--now"]);
                cmd.extend(argv(&UNITS));
                check(r, &cmd)?;
                report.push(format!("stopped and disabled {}", UNITS.join(", ")));
            }
        }
        Os::Mac => {
            if launchd_loaded(l, r)?.is_some() {
                bootout(l, r)?;
                report.push(format!("stopped and unloaded {SERVICE_LABEL} (launchctl bootout)"));
            }
        }
    }
    for u in &units {
        std::fs::remove_file(u).map_err(io_err(u))?;
        report.push(format!("removed {}", show(u)));
    }
    if l.os == Os::Linux && !units.is_empty() {
        check(r, &systemctl(&["daemon-reload"]))?;
        report.push("reloaded the systemd user manager (daemon-reload)".into());
    }
    report.extend(set_tray_login(l, false)?);
    for dir in [&l.bin_dir, &l.app_bundle] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
            report.push(format!("removed {}", show(dir)));
        }
    }
    Ok(report)
}

pub fn status(l: &Layout, r: &mut dyn Runner) -> Result<ServiceStatus, ServiceError> {
    let files = l.unit_files();
    let mut s = ServiceStatus {
        installed: files.iter().all(|f| f.is_file()),
        files,
        tray_login_item: tray_login_enabled(l),
        ..Default::default()
    };
    match l.os {
        Os::Linux => {
            let mut states = Vec::new();
            for u in UNITS {
                let enabled = call(r, &systemctl(&["is-enabled", u]))?.stdout.trim().to_string();
                let active = call(r, &systemctl(&["is-active", u]))?.stdout.trim().to_string();
                s.detail.push(format!("{u}: {}, {}", or_unknown(&enabled), or_unknown(&active)));
                states.push((enabled, active));
            }
            s.enabled = states.iter().all(|(e, _)| e == "enabled");
            s.running = states[1].1 == "active";
            if s.running {
                let out = call(r, &systemctl(&["show", "--property=MainPID", "--value", "ltxd.service"]))?;
                s.pid = out.stdout.trim().parse().ok().filter(|p| *p != 0);
            }
        }
        Os::Mac => {
            if let Some(out) = launchd_loaded(l, r)? {
                s.enabled = true;
                let field = |k: &str| {
                    out.stdout.lines().find_map(|line| line.trim().strip_prefix(k).map(|v| v.trim().to_string()))
                };
                let state = field("state = ").unwrap_or_else(|| "unknown".into());
                s.running = state == "running";
                s.pid = field("pid = ").and_then(|p| p.parse().ok());
                s.detail.push(format!("{SERVICE_LABEL}: loaded, {state}"));
            } else {
                s.detail.push(format!("{SERVICE_LABEL}: not loaded"));
            }
        }
    }
    Ok(s)
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

pub fn restart(l: &Layout, r: &mut dyn Runner) -> Result<Vec<String>, ServiceError> {
    if !l.unit_files().iter().all(|f| f.is_file()) {
        return Err(ServiceError::NotInstalled);
    }
    match l.os {
        Os::Linux => {
            check(r, &systemctl(&["restart", "ltxd.service"]))?;
            Ok(vec!["restarted ltxd.service".into()])
        }
        Os::Mac => {
            if launchd_loaded(l, r)?.is_none() {
                bootstrap(l, &l.unit_files()[0], r)?;
            }
            check(r, &argv(&["launchctl", "kickstart", "-k", &target(l)]))?;
            Ok(vec![format!("restarted {SERVICE_LABEL} (launchctl kickstart -k)")])
        }
    }
}

/// Starts the installed service (`ltxctl daemon start`): `systemctl --user start ltxd.service`, or a
/// `launchctl bootstrap` (failing harmlessly when the agent is already loaded) and a `kickstart`, since RunAtLoad does
/// not reliably fire.
pub fn start(l: &Layout, r: &mut dyn Runner) -> Result<(), ServiceError> {
    match l.os {
        Os::Linux => check(r, &systemctl(&["start", "ltxd.service"]))?,
        Os::Mac => {
            call(r, &bootstrap_cmd(l, &l.service_unit()))?;
            check(r, &kickstart_cmd(l))?
        }
    };
    Ok(())
}

/// Stops the installed service (`ltxctl daemon stop`): on Linux the socket too, otherwise the next connection would
/// socket-activate the daemon again; on macOS `launchctl bootout`.
pub fn stop(l: &Layout, r: &mut dyn Runner) -> Result<(), ServiceError> {
    match l.os {
        Os::Linux => check(r, &systemctl(&["stop", "ltxd.socket", "ltxd.service"]))?,
        Os::Mac => check(r, &bootout_cmd(l))?,
    };
    Ok(())
}

pub fn tray_login_enabled(l: &Layout) -> bool {
    l.tray_login_item.is_file()
}

/// Adds or removes the tray's login item (an XDG autostart entry, or a LaunchAgent that launchd loads at the next
/// login); returns what changed.
pub fn set_tray_login(l: &Layout, enabled: bool) -> Result<Vec<String>, ServiceError> {
    let item = &l.tray_login_item;
    if enabled {
        let bytes = tray_login_bytes(l)?;
        Ok(if layout::sync_bytes(&bytes, item, 0o644).map_err(io_err(item))? {
            vec![format!("wrote {} (the tray starts at login)", show(item))]
        } else {
            Vec::new()
        })
    } else if item.exists() {
        std::fs::remove_file(item).map_err(io_err(item))?;
        Ok(vec![format!("removed {}", show(item))])
    } else {
        Ok(Vec::new())
    }
}
