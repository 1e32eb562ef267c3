//! Service management end to end: socket activation the way systemd does it, and `ltxctl service
//! install|status|uninstall` against a recording fake `systemctl`.
mod common;

use common::*;
use ltx_e2e::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Hands `ltxd-test` a listening socket as fd 3 with `LISTEN_PID`/`LISTEN_FDS`, exactly as systemd's socket
/// activation does (sd_listen_fds(3)); `sh` sets `LISTEN_PID=$$` and `exec`s, so the pid is the daemon's.
#[test]
fn socket_activation_adopts_the_listening_fd() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let d = Daemon::with(bins!(), Opts { start: false, ..Default::default() });
    let path = d.dir.path().join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let fd = listener.as_raw_fd();
    let cmd = d.command();
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c").arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"").arg(prog).args(args);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.stdin(Stdio::null()).stdout(Stdio::null()).stderr(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.dir.path().join("stderr.log"))
            .map(Stdio::from)
            .expect("log"),
    );
    // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
    unsafe {
        sh.pre_exec(move || {
            // fd 3 already: dup2 would be a no-op that keeps close-on-exec, so clear the flag instead.
            let ok = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if ok < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = sh.spawn().expect("spawn");
    // The daemon answers on the inherited socket, not on its configured path.
    // Bounded: a socket nobody accepts on (a daemon that died) would block the handshake forever.
    let ctl = |args: &[&str]| {
        Command::new("timeout")
            .arg("20")
            .arg(&d.bins.ctl)
            .arg("--socket")
            .arg(&path)
            .args(args)
            .env("HOME", d.dir.path())
            .output()
            .expect("ltxctl")
    };
    let status = wait_until("the activated daemon", Duration::from_secs(30), || {
        let out = ctl(&["--json", "status"]);
        out.status.success().then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json"))
    });
    assert_eq!(status["pid"].as_u64(), Some(child.id() as u64));
    assert!(!d.socket.exists(), "the daemon bound its own socket as well");
    let id = job_id(&ctl(&["submit", "activated steps=1"]));
    wait_until("the job", Duration::from_secs(30), || {
        let out = ctl(&["--json", "show", &id.to_string()]);
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (j["state"] == "Completed" || j["state"] == "completed").then_some(())
    });
    assert!(d.stderr().contains("handed over by the service manager"), "{}", d.stderr());
    // Stopping leaves the service manager's socket in place (systemd would activate the next daemon on it).
    assert!(ctl(&["daemon", "stop"]).status.success());
    let st = wait_until("the daemon to exit", Duration::from_secs(30), || child.try_wait().ok().flatten());
    assert!(st.success(), "{st}");
    assert!(path.exists(), "the adopted socket was unlinked");
    drop(listener);
    // Not activated for this pid (LISTEN_PID of another process): the daemon binds its configured socket.
    let mut d2 = Daemon::with(
        bins!(),
        Opts {
            start: false,
            env: vec![("LISTEN_PID".into(), "1".into()), ("LISTEN_FDS".into(), "1".into())],
            ..Default::default()
        },
    );
    d2.spawn();
    d2.wait_ready();
    assert!(d2.socket.exists());
}

/// `ltxctl service install | status | uninstall` on Linux against a recording fake `systemctl`, with the real
/// binaries and MLX runtime copied: the installed `ltxd` resolves libmlx from its own folder.
#[test]
fn service_install_status_uninstall_with_a_fake_systemctl() {
    // A daemon started by hand holds the socket: install stops it first.
    let mut d = Daemon::start(bins!());
    let hand_started = d.pid();
    let mut hand = Procs::default();
    hand.add(d.child.take().expect("daemon child"));
    let home = d.dir.path().join("home");
    let fake = d.dir.path().join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    let state = d.dir.path().join("systemd-state");
    std::fs::create_dir_all(&state).unwrap();
    let log = d.dir.path().join("systemctl.log");
    // A tiny model of systemd: enable/start/disable flip marker files; is-enabled/is-active read them.
    let script = format!(
        r#"#!/bin/sh
echo "$*" >> '{log}'
S='{state}'
[ "$1" = --user ] || exit 64
shift
cmd=$1; shift
case "$cmd" in
  daemon-reload) ;;
  is-enabled) if [ -e "$S/$1.enabled" ]; then echo enabled; else echo disabled; exit 1; fi ;;
  is-active) if [ -e "$S/$1.active" ]; then echo active; else echo inactive; exit 3; fi ;;
  enable) for u in "$@"; do touch "$S/$u.enabled"; done ;;
  start|restart) for u in "$@"; do touch "$S/$u.active"; done ;;
  disable) for u in "$@"; do [ "$u" = --now ] || rm -f "$S/$u.enabled" "$S/$u.active"; done ;;
  show) echo 4242 ;;
  *) echo "unexpected $cmd" >&2; exit 64 ;;
esac
"#,
        log = log.display(),
        state = state.display()
    );
    let systemctl = fake.join("systemctl");
    std::fs::write(&systemctl, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    // What `cargo build` leaves next to ltxctl, under the installed names.
    let from = d.dir.path().join("build");
    std::fs::create_dir_all(&from).unwrap();
    std::fs::copy(&d.bins.daemon, from.join("ltxd")).unwrap();
    std::fs::copy(&d.bins.ctl, from.join("ltxctl")).unwrap();
    std::fs::copy(TRAY, from.join("ltx-tray")).unwrap();
    let ctl = |args: &[&str]| {
        let out = Command::new(&d.bins.ctl)
            .arg("--socket")
            .arg(&d.socket)
            .args(args)
            .env("HOME", &home)
            .env("PATH", format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default()))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("LTX_MLX_RUNTIME")
            .output()
            .expect("ltxctl");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let calls = || -> Vec<String> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        std::fs::remove_file(&log).ok();
        text.lines().map(str::to_string).collect()
    };
    let out = ctl(&["service", "install", "--from", from.to_str().unwrap()]);
    let bin = home.join(".local/share/ltx/bin");
    let units = home.join(".config/systemd/user");
    let st = wait_until("the hand-started daemon to stop", Duration::from_secs(30), || hand.0[0].try_wait().ok()?);
    assert!(st.success(), "{st}");
    for line in [
        format!("stopped the ltxd started outside the service (pid {hand_started})"),
        format!("installed {}", bin.join("ltxd").display()),
        format!("installed {}", bin.join("ltxctl").display()),
        format!("installed {}", bin.join("mlx/lib/libmlx.so").display()),
        format!("installed {}", bin.join("ltx-tray").display()),
        format!("wrote {}", units.join("ltxd.socket").display()),
        format!("wrote {}", units.join("ltxd.service").display()),
        format!("wrote {} (the tray starts at login)", home.join(".config/autostart/ltx-tray.desktop").display()),
        "enabled ltxd.socket, ltxd.service (started at login)".into(),
        "started ltxd.socket".into(),
        "started ltxd.service".into(),
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
    assert_eq!(
        calls(),
        [
            "--user is-enabled ltxd.socket",
            "--user is-active ltxd.socket",
            "--user is-enabled ltxd.service",
            "--user is-active ltxd.service",
            "--user daemon-reload",
            "--user is-enabled ltxd.socket",
            "--user is-enabled ltxd.service",
            "--user enable ltxd.socket ltxd.service",
            "--user is-active ltxd.socket",
            "--user start ltxd.socket",
            "--user is-active ltxd.service",
            "--user start ltxd.service",
        ]
    );
    // The installed ltxd loads the MLX runtime copied beside it ($ORIGIN/mlx/lib), not the build tree's.
    let ldd = Command::new("ldd").arg(bin.join("ltxd")).output().expect("ldd");
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    let mlx = ldd.lines().find(|l| l.contains("libmlx")).unwrap_or_default();
    assert!(mlx.contains(&format!("=> {}", bin.join("mlx/lib/libmlx.so").display())), "{ldd}");
    assert!(!ldd.contains("not found"), "{ldd}");
    let service = std::fs::read_to_string(units.join("ltxd.service")).unwrap();
    assert!(service.contains(&format!("ExecStart=\"{}\"", bin.join("ltxd").display())), "{service}");
    // Idempotent.
    let out = ctl(&["service", "install", "--from", from.to_str().unwrap()]);
    assert_eq!(out.trim(), "the ltxd service is already installed and up to date; nothing changed");
    let status: serde_json::Value = serde_json::from_str(&ctl(&["--json", "service", "status"])).unwrap();
    assert_eq!(status["installed"], true);
    assert_eq!(status["enabled"], true);
    assert_eq!(status["running"], true);
    assert_eq!(status["pid"], 4242);
    calls();
    let out = ctl(&["service", "uninstall"]);
    assert!(out.starts_with("stopped and disabled ltxd.socket, ltxd.service\n"), "{out}");
    assert!(out.contains(&format!("removed {}", bin.display())), "{out}");
    assert_eq!(calls(), ["--user disable --now ltxd.socket ltxd.service", "--user daemon-reload"]);
    assert!(!bin.exists() && !units.join("ltxd.service").exists());
    assert_eq!(ctl(&["service", "uninstall"]).trim(), "the ltxd service is not installed; nothing changed");
}

/// The same through systemd's own tool: `systemd-socket-activate -l PATH ltxd-test …` binds, sets
/// `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES` and execs the daemon, which serves on that socket.
#[test]
fn systemd_socket_activate_runs_the_daemon_on_its_socket() {
    if !have("systemd-socket-activate", "--version") {
        eprintln!("SKIP systemd_socket_activate_runs_the_daemon_on_its_socket: systemd-socket-activate is missing");
        return;
    }
    let d = Daemon::with(bins!(), Opts { start: false, ..Default::default() });
    let path = d.dir.path().join("sd.sock");
    let cmd = d.command();
    let mut sd = Command::new("systemd-socket-activate");
    sd.arg("-l").arg(&path).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sd.env(k, v),
            None => sd.env_remove(k),
        };
    }
    let log = std::fs::OpenOptions::new().create(true).append(true).open(d.dir.path().join("stderr.log"));
    sd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log.map(Stdio::from).expect("log"));
    let mut procs = Procs::default();
    procs.add(sd.spawn().expect("systemd-socket-activate"));
    wait_until("the socket", Duration::from_secs(30), || path.exists().then_some(()));
    // The first connection execs the daemon on the inherited socket.
    let out = wait_until("the activated daemon", Duration::from_secs(30), || {
        let out = Command::new(&d.bins.ctl)
            .arg("--socket")
            .arg(&path)
            .args(["--json", "status"])
            .env("HOME", d.dir.path())
            .output()
            .ok()?;
        out.status.success().then_some(out)
    });
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status["pid"].as_u64(), Some(procs.0[0].id() as u64), "not the exec'd process");
    assert!(d.stderr().contains("handed over by the service manager"), "{}", d.stderr());
    assert!(!d.socket.exists(), "the daemon bound its own socket as well");
}
