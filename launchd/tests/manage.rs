//! `install | uninstall | status | restart` against a recording fake of `launchctl` / `systemctl`: the exact
//! commands, their order, idempotence and the retries after an asynchronous `bootout`.
use ltx_protocol::paths::{Env, Os};
use ltx_service::manage::{self, Output, Runner};
use ltx_service::{Layout, Sources};
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// Records every command and answers from a small model of the service manager.
#[derive(Default)]
struct Fake {
    calls: Vec<String>,
    /// systemd: enabled and active units; launchd: whether the job is loaded.
    enabled: HashSet<String>,
    active: HashSet<String>,
    loaded: bool,
    /// launchd: `print` calls that still see the job after a bootout (bootout is asynchronous).
    lingering: u32,
    /// launchd: `bootstrap` calls that fail with "5: Input/output error" first.
    bootstrap_failures: u32,
    slept: Vec<Duration>,
}

fn ok(stdout: &str) -> Output {
    Output { code: 0, stdout: stdout.into(), stderr: String::new() }
}

fn err(code: i32, stderr: &str) -> Output {
    Output { code, stdout: String::new(), stderr: stderr.into() }
}

impl Runner for Fake {
    fn run(&mut self, argv: &[String]) -> std::io::Result<Output> {
        self.calls.push(argv.join(" "));
        let a: Vec<&str> = argv.iter().map(String::as_str).collect();
        Ok(match a.as_slice() {
            ["systemctl", "--user", "is-enabled", u] => {
                if self.enabled.contains(*u) {
                    ok("enabled\n")
                } else {
                    Output { code: 1, stdout: "disabled\n".into(), stderr: String::new() }
                }
            }
            ["systemctl", "--user", "is-active", u] => {
                if self.active.contains(*u) {
                    ok("active\n")
                } else {
                    Output { code: 3, stdout: "inactive\n".into(), stderr: String::new() }
                }
            }
            ["systemctl", "--user", "enable", units @ ..] => {
                self.enabled.extend(units.iter().map(|u| u.to_string()));
                ok("")
            }
            ["systemctl", "--user", "start" | "restart", u] => {
                self.active.insert(u.to_string());
                ok("")
            }
            ["systemctl", "--user", "stop", units @ ..] => {
                for u in units {
                    self.active.remove(*u);
                }
                ok("")
            }
            ["systemctl", "--user", "disable", "--now", units @ ..] => {
                for u in units {
                    self.enabled.remove(*u);
                    self.active.remove(*u);
                }
                ok("")
            }
            ["systemctl", "--user", "daemon-reload"] => ok(""),
            ["systemctl", "--user", "show", "--property=MainPID", "--value", "ltxd.service"] => ok("4242\n"),
            ["launchctl", "print", _] => {
                if self.lingering > 0 {
                    self.lingering -= 1;
                    ok("state = running\n")
                } else if self.loaded {
                    ok("gui/501/com.ltx.ltxd = {\n\tactive count = 1\n\tstate = running\n\tpid = 777\n}\n")
                } else {
                    err(113, "Could not find service \"com.ltx.ltxd\" in domain for user gui: 501\n")
                }
            }
            ["launchctl", "bootout", _] => {
                self.loaded = false;
                self.lingering = 2;
                ok("")
            }
            ["launchctl", "bootstrap", "gui/501", _] => {
                if self.lingering > 0 || self.bootstrap_failures > 0 {
                    self.bootstrap_failures = self.bootstrap_failures.saturating_sub(1);
                    err(5, "Bootstrap failed: 5: Input/output error\n")
                } else {
                    self.loaded = true;
                    ok("")
                }
            }
            ["launchctl", "kickstart", ..] => ok(""),
            _ => err(64, "unexpected command"),
        })
    }
    fn sleep(&mut self, d: Duration) {
        self.slept.push(d);
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    layout: Layout,
    sources: Sources,
}

fn setup(os: Os) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let h = home.clone();
    let f = move |k: &str| (k == "HOME").then(|| OsString::from(&h));
    let socket = home.join("run/ltx/ltxd.sock");
    let layout = Layout::new(os, &Env(&f), 501, socket);
    let build = tmp.path().join("build");
    std::fs::create_dir_all(build.join("runtime/mlx/lib")).unwrap();
    for b in ["ltxd", "ltxctl", "ltx-tray"] {
        write_exec(&build.join(b), b"#!/bin/sh\n");
    }
    std::fs::write(build.join("runtime/mlx/lib/libmlx.so"), b"mlx").unwrap();
    let sources = Sources { bin_dir: build.clone(), runtime: Some(build.join("runtime")), version: "0.1.0".into() };
    Setup { _tmp: tmp, layout, sources }
}

fn write_exec(p: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(p, bytes).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn calls(f: &mut Fake) -> Vec<String> {
    std::mem::take(&mut f.calls)
}

#[test]
fn systemd_install_is_idempotent_and_reports_changes() {
    let s = setup(Os::Linux);
    let l = &s.layout;
    let mut f = Fake::default();
    let report = manage::install(l, &s.sources, &mut f).unwrap();
    let bin = l.bin_dir.display().to_string();
    let units = l.unit_dir.display().to_string();
    let home = l.bin_dir.parent().unwrap().parent().unwrap().parent().unwrap().parent().unwrap();
    assert_eq!(
        report,
        [
            format!("installed {bin}/ltxd"),
            format!("installed {bin}/ltxctl"),
            format!("installed {bin}/mlx/lib/libmlx.so"),
            format!("installed {bin}/ltx-tray"),
            format!("wrote {units}/ltxd.socket"),
            format!("wrote {units}/ltxd.service"),
            format!("wrote {}/.config/autostart/ltx-tray.desktop (the tray starts at login)", home.display()),
            "reloaded the systemd user manager (daemon-reload)".into(),
            "enabled ltxd.socket, ltxd.service (started at login)".into(),
            "started ltxd.socket".into(),
            "started ltxd.service".into(),
        ]
    );
    assert_eq!(
        calls(&mut f),
        [
            "systemctl --user daemon-reload",
            "systemctl --user is-enabled ltxd.socket",
            "systemctl --user is-enabled ltxd.service",
            "systemctl --user enable ltxd.socket ltxd.service",
            "systemctl --user is-active ltxd.socket",
            "systemctl --user start ltxd.socket",
            "systemctl --user is-active ltxd.service",
            "systemctl --user start ltxd.service",
        ]
    );
    let unit = std::fs::read_to_string(l.unit_dir.join("ltxd.service")).unwrap();
    assert!(unit.contains(&format!("ExecStart=\"{bin}/ltxd\"")), "{unit}");
    // Again: nothing to do, only queries.
    assert!(manage::install(l, &s.sources, &mut f).unwrap().is_empty());
    assert_eq!(
        calls(&mut f),
        [
            "systemctl --user is-enabled ltxd.socket",
            "systemctl --user is-enabled ltxd.service",
            "systemctl --user is-active ltxd.socket",
            "systemctl --user is-active ltxd.service",
        ]
    );
    // A new ltxd: copied, and the running service restarted.
    write_exec(&s.sources.bin_dir.join("ltxd"), b"#!/bin/sh\n# v2\n");
    let report = manage::install(l, &s.sources, &mut f).unwrap();
    assert_eq!(report, [format!("installed {bin}/ltxd"), "restarted ltxd.service (new files)".to_string()]);
    assert_eq!(calls(&mut f).last().unwrap(), "systemctl --user restart ltxd.service");
    let st = manage::status(l, &mut f).unwrap();
    assert!(st.installed && st.enabled && st.running && st.tray_login_item);
    assert_eq!(st.pid, Some(4242));
    assert_eq!(st.detail, ["ltxd.socket: enabled, active", "ltxd.service: enabled, active"]);
    calls(&mut f);
    assert_eq!(manage::restart(l, &mut f).unwrap(), ["restarted ltxd.service"]);
    assert_eq!(calls(&mut f), ["systemctl --user restart ltxd.service"]);
    let report = manage::uninstall(l, &mut f).unwrap();
    assert_eq!(report[0], "stopped and disabled ltxd.socket, ltxd.service");
    assert_eq!(report[1], format!("removed {units}/ltxd.socket"));
    assert_eq!(report.last().unwrap(), &format!("removed {bin}"));
    assert_eq!(
        calls(&mut f),
        ["systemctl --user disable --now ltxd.socket ltxd.service", "systemctl --user daemon-reload"]
    );
    assert!(!l.bin_dir.exists() && !l.tray_login_item.exists() && !l.unit_dir.join("ltxd.socket").exists());
    assert!(manage::uninstall(l, &mut f).unwrap().is_empty());
    assert!(calls(&mut f).is_empty());
    assert!(matches!(manage::restart(l, &mut f), Err(ltx_service::ServiceError::NotInstalled)));
}

#[test]
fn launchd_install_bootout_wait_and_bootstrap_retries() {
    let s = setup(Os::Mac);
    let l = &s.layout;
    let plist = l.unit_files()[0].display().to_string();
    let mut f = Fake::default();
    let report = manage::install(l, &s.sources, &mut f).unwrap();
    assert!(report.contains(&format!("wrote {plist}")), "{report:?}");
    assert!(report.contains(&format!("installed {}", l.app_bundle.join("Contents/Info.plist").display())));
    assert!(report.contains(&format!("created {}", l.socket.parent().unwrap().display())));
    assert!(report.ends_with(&[
        "loaded com.ltx.ltxd into gui/501 (launchctl bootstrap)".to_string(),
        "started com.ltx.ltxd (launchctl kickstart)".to_string()
    ]));
    assert_eq!(
        calls(&mut f),
        [
            "launchctl print gui/501/com.ltx.ltxd".to_string(),
            format!("launchctl bootstrap gui/501 {plist}"),
            "launchctl kickstart gui/501/com.ltx.ltxd".to_string(),
        ]
    );
    // The socket folder exists with 0700 (launchd creates no parent folder).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(l.socket.parent().unwrap()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    // Unchanged: only the check that it is loaded.
    assert!(manage::install(l, &s.sources, &mut f).unwrap().is_empty());
    assert_eq!(calls(&mut f), ["launchctl print gui/501/com.ltx.ltxd"]);
    // Changed binary: bootout, wait until launchctl print no longer finds it, bootstrap (retried after
    // "5: Input/output error"), kickstart.
    write_exec(&s.sources.bin_dir.join("ltxd"), b"#!/bin/sh\n# v2\n");
    f.bootstrap_failures = 2;
    manage::install(l, &s.sources, &mut f).unwrap();
    assert_eq!(
        calls(&mut f),
        [
            "launchctl print gui/501/com.ltx.ltxd".to_string(),
            "launchctl bootout gui/501/com.ltx.ltxd".to_string(),
            "launchctl print gui/501/com.ltx.ltxd".to_string(),
            "launchctl print gui/501/com.ltx.ltxd".to_string(),
            "launchctl print gui/501/com.ltx.ltxd".to_string(),
            format!("launchctl bootstrap gui/501 {plist}"),
            format!("launchctl bootstrap gui/501 {plist}"),
            format!("launchctl bootstrap gui/501 {plist}"),
            "launchctl kickstart gui/501/com.ltx.ltxd".to_string(),
        ]
    );
    assert_eq!(
        f.slept,
        [Duration::from_millis(200), Duration::from_millis(200), Duration::from_secs(1), Duration::from_secs(1)]
    );
    let st = manage::status(l, &mut f).unwrap();
    assert!(st.installed && st.enabled && st.running);
    assert_eq!(st.pid, Some(777));
    calls(&mut f);
    manage::restart(l, &mut f).unwrap();
    assert_eq!(calls(&mut f), ["launchctl print gui/501/com.ltx.ltxd", "launchctl kickstart -k gui/501/com.ltx.ltxd"]);
    let report = manage::uninstall(l, &mut f).unwrap();
    assert_eq!(report[0], "stopped and unloaded com.ltx.ltxd (launchctl bootout)");
    assert!(report.contains(&format!("removed {plist}")));
    assert!(report.contains(&format!("removed {}", l.app_bundle.display())));
    assert!(!l.app_bundle.exists() && !l.tray_login_item.exists());
    // Bootstrap failing every time ends with its error.
    let s2 = setup(Os::Mac);
    let mut f2 = Fake { bootstrap_failures: 99, ..Default::default() };
    let e = manage::install(&s2.layout, &s2.sources, &mut f2).unwrap_err().to_string();
    assert!(e.contains("5: Input/output error") && e.contains("launchctl bootstrap gui/501"), "{e}");
    assert_eq!(f2.calls.iter().filter(|c| c.contains("bootstrap")).count(), 5);
}

#[test]
fn missing_binary_is_a_clear_error_and_changes_nothing() {
    let s = setup(Os::Linux);
    std::fs::remove_file(s.sources.bin_dir.join("ltxd")).unwrap();
    let mut f = Fake::default();
    let e = manage::install(&s.layout, &s.sources, &mut f).unwrap_err().to_string();
    assert!(e.contains("ltxd not found next to ltxctl"), "{e}");
    assert!(f.calls.is_empty() && !s.layout.bin_dir.exists());
}

/// `ltxctl daemon start|stop` with the service installed: the exact service-manager calls (these argv builders
/// lived in protocol/src/paths.rs as `service_command` / `service_kick`).
#[test]
fn daemon_start_and_stop_through_the_service_manager() {
    let s = setup(Os::Linux);
    let mut f = Fake::default();
    // `daemon start|stop` go through the service manager while the service definition exists.
    assert!(!s.layout.service_installed());
    std::fs::create_dir_all(&s.layout.unit_dir).unwrap();
    std::fs::write(s.layout.service_unit(), "[Service]\n").unwrap();
    assert!(s.layout.service_installed());
    manage::start(&s.layout, &mut f).unwrap();
    assert_eq!(calls(&mut f), ["systemctl --user start ltxd.service"]);
    assert!(f.active.contains("ltxd.service"));
    manage::stop(&s.layout, &mut f).unwrap();
    // The socket too: otherwise the next connection would socket-activate the daemon again.
    assert_eq!(calls(&mut f), ["systemctl --user stop ltxd.socket ltxd.service"]);
    assert!(f.active.is_empty());

    let m = setup(Os::Mac);
    let plist = m.layout.service_unit();
    let mut f = Fake { loaded: true, ..Fake::default() };
    // An already loaded agent: bootstrap fails harmlessly, kickstart starts it.
    f.bootstrap_failures = 1;
    manage::start(&m.layout, &mut f).unwrap();
    assert_eq!(
        calls(&mut f),
        [format!("launchctl bootstrap gui/501 {}", plist.display()), "launchctl kickstart gui/501/com.ltx.ltxd".into()]
    );
    manage::stop(&m.layout, &mut f).unwrap();
    assert_eq!(calls(&mut f), ["launchctl bootout gui/501/com.ltx.ltxd"]);
    assert!(!f.loaded);
}
