//! Desktop integration end to end: socket activation the way systemd does it, daemon notifications on a fake
//! notification server, and the real `ltx-tray` under Xvfb with a D-Bus session — its StatusNotifierItem, its
//! menu read and clicked over D-Bus (com.canonical.dbusmenu), its notifications, and the quick-generate dialog
//! typed into with xdotool. Service management is in `service.rs`.
//!
//! The display tests need Xvfb, dbus-daemon, gdbus, xdotool and python3-dbus/python3-gi (scripts/setup.sh installs
//! them); where one is genuinely missing they print why and skip.
mod common;

use common::*;
use ltx_e2e::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The tools a display test needs, or the first one missing.
fn display_tools() -> Result<(), String> {
    for (prog, arg) in [("Xvfb", "-help"), ("dbus-daemon", "--version"), ("gdbus", "help"), ("xdotool", "version")] {
        if !have(prog, arg) {
            return Err(format!("{prog} is not installed"));
        }
    }
    let py = Command::new("/usr/bin/python3").args(["-c", "import dbus, gi"]).output();
    match py {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("/usr/bin/python3 with python3-dbus and python3-gi is not installed".into()),
    }
}

macro_rules! need_display {
    ($name:expr) => {
        if let Err(why) = display_tools() {
            eprintln!("SKIP {}: {why}", $name);
            return;
        }
    };
}

/// A private D-Bus session bus, an Xvfb display, a fake StatusNotifierWatcher, a fake notification server that
/// clicks "open", and a fake `xdg-open` that records what it was asked to open.
struct Desktop {
    _procs: Procs,
    dir: tempfile::TempDir,
    bus: String,
    display: String,
}

fn first_line(c: &mut Child) -> String {
    let out = c.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read first line");
    line.trim().to_string()
}

impl Desktop {
    fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("ltx-desktop-").tempdir().expect("tempdir");
        let mut procs = Procs::default();
        let bus = first_line(
            procs.add(
                Command::new("dbus-daemon")
                    .args(["--session", "--nofork", "--print-address=1"])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("dbus-daemon"),
            ),
        );
        assert!(bus.starts_with("unix:"), "dbus-daemon said {bus:?}");
        let display = first_line(
            procs.add(
                Command::new("Xvfb")
                    .args(["-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("Xvfb"),
            ),
        );
        let display = format!(":{display}");
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("desktop");
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).map(Stdio::from).expect("log file");
        procs.add(
            Command::new(scripts.join("sni_watcher.py"))
                .env("DBUS_SESSION_BUS_ADDRESS", &bus)
                .stdout(log("watcher.log"))
                .spawn()
                .expect("sni_watcher.py"),
        );
        procs.add(
            Command::new(scripts.join("fake_notifyd.py"))
                .arg(dir.path().join("notifications.jsonl"))
                .args(["--invoke", "open"])
                .env("DBUS_SESSION_BUS_ADDRESS", &bus)
                .stdout(log("notifyd.log"))
                .spawn()
                .expect("fake_notifyd.py"),
        );
        let d = Desktop { _procs: procs, dir, bus, display };
        wait_until("the fake watcher and notification server", Duration::from_secs(30), || {
            (d.file("watcher.log").contains("READY") && d.file("notifyd.log").contains("READY")).then_some(())
        });
        // The video opener: records its argument.
        let bin = d.dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        let opener = bin.join("xdg-open");
        let script = format!("#!/bin/sh\necho \"$1\" >> '{}'\n", d.dir.path().join("opened.log").display());
        std::fs::write(&opener, script).expect("fake xdg-open");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        d
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn notifications(&self) -> Vec<serde_json::Value> {
        self.file("notifications.jsonl").lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    fn path_env(&self) -> String {
        format!("{}:{}", self.dir.path().join("bin").display(), std::env::var("PATH").unwrap_or_default())
    }

    /// Environment for the daemon and the tray.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.clone()),
            ("DISPLAY".into(), self.display.clone()),
            ("NO_AT_BRIDGE".into(), "1".into()),
            ("PATH".into(), self.path_env()),
        ]
    }

    fn gdbus(&self, args: &[&str]) -> String {
        let out = Command::new("gdbus")
            .arg("call")
            .arg("--session")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .output()
            .expect("gdbus");
        assert!(out.status.success(), "gdbus {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new("xdotool").args(args).env("DISPLAY", &self.display).output().expect("xdotool");
        assert!(out.status.success(), "xdotool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn job_state(d: &Daemon, id: u64) -> serde_json::Value {
    let out = d.ctl(&["--json", "show", &id.to_string()]);
    serde_json::from_slice(&out.stdout).expect("show --json")
}

fn wait_state(d: &Daemon, id: u64, state: &str) -> serde_json::Value {
    wait_until(&format!("job {id} to be {state}"), Duration::from_secs(30), || {
        let j = job_state(d, id);
        (j["state"].as_str() == Some(state)).then_some(j)
    })
}

#[test]
fn daemon_notifies_completion_and_failure_and_opens_the_video() {
    need_display!("daemon_notifies_completion_and_failure_and_opens_the_video");
    let desk = Desktop::start();
    let d = Daemon::with(bins!(), Opts { env: desk.env(), ..Default::default() });
    // Not followed: the daemon posts, and the fake server's click on "open" runs the opener on the video.
    let done = job_id(&d.ctl(&["submit", "a red fox in the snow steps=2"]));
    let rec = wait_state(&d, done, "completed");
    let output = rec["output"].as_str().expect("output").to_string();
    let n =
        wait_until("the completion notification", Duration::from_secs(30), || desk.notifications().into_iter().next());
    assert_eq!(n["app"], "ltx");
    assert_eq!(n["summary"], "Video ready");
    let body = n["body"].as_str().unwrap();
    assert!(body.starts_with("“a red fox in the snow steps=2” in "), "{body}");
    let file = Path::new(&output).file_name().unwrap().to_string_lossy().into_owned();
    assert!(body.ends_with(&format!(" — {file}")), "{body}");
    assert_eq!(n["actions"], serde_json::json!(["default", "Open", "open", "Open video"]));
    let opened =
        wait_until("the opener", Duration::from_secs(30), || Some(desk.file("opened.log")).filter(|s| !s.is_empty()));
    assert_eq!(opened.trim(), output);
    // Failure: its message.
    let failed = job_id(&d.ctl(&["submit", "a storm fail"]));
    wait_state(&d, failed, "failed");
    let n = wait_until("the failure notification", Duration::from_secs(30), || desk.notifications().get(1).cloned());
    assert_eq!(n["summary"], "Generation failed");
    assert_eq!(n["body"], "“a storm fail”: the test engine was asked to fail");
    assert_eq!(n["actions"], serde_json::json!([]));
    // Followed to the end in a terminal: no notification (the default `unfollowed` mode).
    let out = d.ctl(&["submit", "--wait", "a followed heron steps=2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(desk.notifications().len(), 2, "{:?}", desk.notifications());
}

#[test]
fn notifications_off_in_the_config_posts_nothing() {
    need_display!("notifications_off_in_the_config_posts_nothing");
    let desk = Desktop::start();
    let d = Daemon::with(
        bins!(),
        Opts { env: desk.env(), extra_config: "notifications = \"off\"".into(), ..Default::default() },
    );
    let id = job_id(&d.ctl(&["submit", "quiet steps=1"]));
    wait_state(&d, id, "completed");
    std::thread::sleep(Duration::from_millis(700));
    assert!(desk.notifications().is_empty());
    let bad = Daemon::with(
        bins!(),
        Opts { extra_config: "notifications = \"sometimes\"".into(), start: false, ..Default::default() },
    );
    let out = bad.command().output().expect("run ltxd-test");
    assert_eq!(out.status.code(), Some(2));
    assert!(bad.stderr().contains("use \"unfollowed\" (default), \"always\" or \"off\""), "{}", bad.stderr());
}

/// The tray's menu as (id, label) pairs from `com.canonical.dbusmenu.GetLayout`.
fn layout(desk: &Desktop, sender: &str, menu: &str) -> Vec<(u32, String)> {
    let text =
        desk.gdbus(&["-d", sender, "-o", menu, "-m", "com.canonical.dbusmenu.GetLayout", "--", "0", "-1", "@as []"]);
    let mut items = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find('(') {
        rest = &rest[i + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(id) = digits.parse() else { continue };
        let Some(start) = rest.find('{') else { break };
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
        let props = &rest[start..end];
        if let Some(l) = props.find("'label': <'") {
            let label = &props[l + 11..];
            let label = &label[..label.find("'>").unwrap_or(label.len())];
            items.push((id, label.replace("\\'", "'")));
        }
    }
    items
}

fn click(desk: &Desktop, sender: &str, menu: &str, label: &str) {
    let args = click_args(desk, sender, menu, label);
    desk.gdbus(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// "Quit" ends the tray, which may leave the bus before it answers the click: that is no failure.
fn click_quit(desk: &Desktop, sender: &str, menu: &str) {
    let args = click_args(desk, sender, menu, "Quit");
    let out = Command::new("gdbus")
        .arg("call")
        .arg("--session")
        .args(&args)
        .env("DBUS_SESSION_BUS_ADDRESS", &desk.bus)
        .output()
        .expect("gdbus");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() || err.contains("NoReply"), "gdbus {args:?}: {err}");
}

fn click_args(desk: &Desktop, sender: &str, menu: &str, label: &str) -> Vec<String> {
    let items = layout(desk, sender, menu);
    let id = items
        .iter()
        .find(|(_, l)| l.trim_start_matches('_').starts_with(label))
        .unwrap_or_else(|| panic!("no menu item {label:?} in {items:?}"))
        .0;
    ["-d", sender, "-o", menu, "-m", "com.canonical.dbusmenu.Event", "--", &id.to_string(), "clicked", "<int32 0>", "0"]
        .map(String::from)
        .to_vec()
}

/// The tray's StatusNotifierItem once it registered with the watcher: (bus name, object path).
fn registered_item(desk: &Desktop) -> (String, String) {
    wait_until("the tray to register", Duration::from_secs(30), || {
        let log = desk.file("watcher.log");
        let line = log.lines().find(|l| l.starts_with("REGISTERED "))?.to_string();
        let mut parts = line.split_whitespace().skip(1);
        Some((parts.next()?.to_string(), parts.next()?.to_string()))
    })
}

/// One StatusNotifierItem property of the tray, as gdbus prints it.
fn item_prop(desk: &Desktop, sender: &str, item: &str, name: &str) -> String {
    desk.gdbus(&[
        "-d",
        sender,
        "-o",
        item,
        "-m",
        "org.freedesktop.DBus.Properties.Get",
        "org.kde.StatusNotifierItem",
        name,
    ])
}

fn has_label(items: &[(u32, String)], prefix: &str) -> bool {
    items.iter().any(|(_, l)| l.trim_start_matches('_').starts_with(prefix))
}

#[test]
fn tray_menu_over_dbus_drives_a_real_daemon() {
    need_display!("tray_menu_over_dbus_drives_a_real_daemon");
    let desk = Desktop::start();
    let d = Daemon::with(bins!(), Opts { env: desk.env(), ..Default::default() });
    let mut procs = Procs::default();
    let mut tray = Command::new(TRAY);
    tray.arg("--socket")
        .arg(&d.socket)
        .envs(desk.env())
        .env("HOME", d.dir.path())
        .env("LTX_CONFIG", &d.config)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(desk.dir.path().join("tray.err")).map(Stdio::from).expect("log"));
    procs.add(tray.spawn().expect("spawn ltx-tray"));
    // Registered with the StatusNotifierWatcher: sender and object path.
    let (sender, item) = registered_item(&desk);
    assert!(item.starts_with('/'), "{item}");
    let prop = |name: &str| item_prop(&desk, &sender, &item, name);
    let menu_prop = prop("Menu");
    let menu = menu_prop.split('\'').nth(1).expect("menu object path").to_string();
    // Connected: the headline says idle; the whole menu is there.
    let items = wait_until("the tray to connect", Duration::from_secs(30), || {
        Some(layout(&desk, &sender, &menu)).filter(|i| has_label(i, "LTX: idle"))
    });
    for label in [
        "No job running",
        "Queue: 0 waiting",
        "Pause queue",
        "Quick generate",
        "Generate from clipboard",
        "Presets",
        "Variant",
        "distilled-fp8",
        "Recent outputs",
        "Open outputs folder",
        "Models",
        "Unload all",
        "Choose models folder",
        "Stop daemon",
        "Launch at login",
        "Quit",
    ] {
        assert!(has_label(&items, label), "{label:?} missing from {items:?}");
    }
    // Pause from the menu: the daemon's queue is paused and the menu offers Resume.
    click(&desk, &sender, &menu, "Pause queue");
    wait_until("the queue to pause", Duration::from_secs(30), || {
        let s: serde_json::Value = serde_json::from_slice(&d.ctl(&["--json", "status"]).stdout).ok()?;
        (s["paused"] == true).then_some(())
    });
    wait_until("Resume in the menu", Duration::from_secs(30), || {
        let i = layout(&desk, &sender, &menu);
        (has_label(&i, "Resume queue") && has_label(&i, "LTX: paused, 0 waiting")).then_some(())
    });
    click(&desk, &sender, &menu, "Resume queue");
    wait_until("the queue to resume", Duration::from_secs(30), || {
        let s: serde_json::Value = serde_json::from_slice(&d.ctl(&["--json", "status"]).stdout).ok()?;
        (s["paused"] == false).then_some(())
    });
    // A running job: headline, job line, the title next to the icon; Cancel from the menu cancels it.
    let gate = d.gate("hold");
    let held = job_id(&d.ctl(&["submit", &format!("a held lynx gate={}", gate.display())]));
    let items = wait_until("the running job in the menu", Duration::from_secs(30), || {
        Some(layout(&desk, &sender, &menu)).filter(|i| has_label(i, "Cancel current job"))
    });
    assert!(has_label(&items, "LTX: generating 0% — a held lynx"), "{items:?}");
    assert!(has_label(&items, &format!("Job {held}: a held lynx")), "{items:?}");
    let label = prop("XAyatanaLabel");
    assert!(label.contains("'0%'"), "{label}");
    click(&desk, &sender, &menu, "Cancel current job");
    wait_state(&d, held, "cancelled");
    wait_until("the menu to go idle", Duration::from_secs(30), || {
        has_label(&layout(&desk, &sender, &menu), "No job running").then_some(())
    });
    // With the tray up the tray notifies, the daemon does not: exactly one notification, from "LTX".
    let before = desk.notifications().len();
    let done = job_id(&d.ctl(&["submit", "an owl at dusk steps=1"]));
    wait_state(&d, done, "completed");
    let n =
        wait_until("the tray's notification", Duration::from_secs(30), || desk.notifications().get(before).cloned());
    assert_eq!(n["app"], "LTX");
    assert_eq!(n["summary"], "Video ready");
    assert!(n["body"].as_str().unwrap().starts_with("“an owl at dusk steps=1” in "), "{n}");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(desk.notifications().len(), before + 1, "{:?}", desk.notifications());
    // Its "open" action opens the video (through the same opener).
    let out = job_state(&d, done)["output"].as_str().unwrap().to_string();
    wait_until("the tray to open the video", Duration::from_secs(30), || {
        desk.file("opened.log").lines().any(|l| l == out).then_some(())
    });
    // Recent outputs lists it.
    wait_until("recent outputs", Duration::from_secs(30), || {
        has_label(&layout(&desk, &sender, &menu), &format!("{done}: an owl at dusk")).then_some(())
    });
    // Open outputs folder: the opener gets the daemon's outputs folder.
    click(&desk, &sender, &menu, "Open outputs folder");
    let outputs = d.outputs().display().to_string();
    wait_until("the outputs folder to open", Duration::from_secs(30), || {
        desk.file("opened.log").lines().any(|l| l == outputs).then_some(())
    });
    // Quick generate: a real GTK dialog; type a prompt and press Return.
    click(&desk, &sender, &menu, "Quick generate");
    let win = wait_until("the quick-generate dialog", Duration::from_secs(30), || {
        let out = Command::new("xdotool")
            .args(["search", "--onlyvisible", "--name", "Quick generate"])
            .env("DISPLAY", &desk.display)
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string)
    });
    // The window can be found a moment before it is viewable (X refuses to focus it then: BadMatch).
    wait_until("the dialog to take the focus", Duration::from_secs(30), || {
        let out = Command::new("xdotool")
            .args(["windowfocus", "--sync", &win])
            .env("DISPLAY", &desk.display)
            .output()
            .ok()?;
        out.status.success().then_some(())
    });
    desk.xdotool(&["type", "--delay", "10", "a heron from the tray steps=1"]);
    desk.xdotool(&["key", "Return"]);
    wait_until("the typed job", Duration::from_secs(30), || {
        let h: serde_json::Value = serde_json::from_slice(&d.ctl(&["--json", "history"]).stdout).ok()?;
        h["jobs"]
            .as_array()?
            .iter()
            .any(|r| r["request"]["prompt"] == "a heron from the tray steps=1" && r["request"]["width"] == 768)
            .then_some(())
    });
    // Launch at login: writes the tray's XDG autostart entry for the installed tray, and removes it again.
    let installed_tray = d.dir.path().join(".local/share/ltx/bin/ltx-tray");
    std::fs::create_dir_all(installed_tray.parent().unwrap()).unwrap();
    std::fs::copy(TRAY, &installed_tray).unwrap();
    let autostart = d.dir.path().join(".config/autostart/ltx-tray.desktop");
    click(&desk, &sender, &menu, "Launch at login");
    let entry = wait_until("the autostart entry", Duration::from_secs(30), || std::fs::read_to_string(&autostart).ok());
    assert!(entry.contains(&format!("Exec=\"{}\"", installed_tray.display())), "{entry}");
    click(&desk, &sender, &menu, "Launch at login");
    wait_until("the autostart entry to go", Duration::from_secs(30), || (!autostart.exists()).then_some(()));
    // Quit from the menu ends the tray.
    click_quit(&desk, &sender, &menu);
    let tray = &mut procs.0[0];
    let status = wait_until("the tray to quit", Duration::from_secs(30), || tray.try_wait().ok().flatten());
    assert!(status.success(), "{status}: {}", desk.file("tray.err"));
}

#[test]
fn tray_shows_daemon_not_running_and_reconnects() {
    need_display!("tray_shows_daemon_not_running_and_reconnects");
    let desk = Desktop::start();
    let mut d = Daemon::with(bins!(), Opts { env: desk.env(), start: false, ..Default::default() });
    let mut procs = Procs::default();
    procs.add(
        Command::new(TRAY)
            .arg("--socket")
            .arg(&d.socket)
            .envs(desk.env())
            .env("HOME", d.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ltx-tray"),
    );
    let (sender, item) = registered_item(&desk);
    let menu_prop = item_prop(&desk, &sender, &item, "Menu");
    let menu = menu_prop.split('\'').nth(1).expect("menu path").to_string();
    wait_until("'not running'", Duration::from_secs(30), || {
        let i = layout(&desk, &sender, &menu);
        (has_label(&i, "LTX: daemon not running") && has_label(&i, "Start daemon")).then_some(())
    });
    d.spawn();
    d.wait_ready();
    wait_until("the tray to reconnect", Duration::from_secs(30), || {
        has_label(&layout(&desk, &sender, &menu), "LTX: idle").then_some(())
    });
    d.kill9();
    wait_until("'not running' again", Duration::from_secs(30), || {
        has_label(&layout(&desk, &sender, &menu), "LTX: daemon not running").then_some(())
    });
}

/// "Start daemon" and "Stop daemon" are the library calls of `ltxctl daemon start|stop` (the tray used to run
/// `ltxctl` and read its stderr): the tray spawns `$LTXD_BIN` on its socket, shows it idle, stops it and then stays
/// "not running" without reconnecting.
#[test]
fn tray_starts_and_stops_the_daemon() {
    need_display!("tray_starts_and_stops_the_daemon");
    let desk = Desktop::start();
    let d = Daemon::with(bins!(), Opts { env: desk.env(), start: false, ..Default::default() });
    /// Stops what the tray started, pass or fail (it runs in its own process group, outside `Procs`).
    struct StopAtEnd<'a>(&'a Daemon);
    impl Drop for StopAtEnd<'_> {
        fn drop(&mut self) {
            let _ = self.0.ctl(&["daemon", "stop"]);
        }
    }
    let _stop = StopAtEnd(&d);
    let mut procs = Procs::default();
    procs.add(
        Command::new(TRAY)
            .arg("--socket")
            .arg(&d.socket)
            .envs(desk.env())
            .env("HOME", d.dir.path())
            .env("LTXD_BIN", &d.bins.daemon)
            .env("LTX_CONFIG", &d.config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(desk.dir.path().join("tray.err")).map(Stdio::from).expect("log"))
            .spawn()
            .expect("spawn ltx-tray"),
    );
    let (sender, item) = registered_item(&desk);
    let menu_prop = item_prop(&desk, &sender, &item, "Menu");
    let menu = menu_prop.split('\'').nth(1).expect("menu path").to_string();
    wait_until("'Start daemon'", Duration::from_secs(30), || {
        has_label(&layout(&desk, &sender, &menu), "Start daemon").then_some(())
    });
    click(&desk, &sender, &menu, "Start daemon");
    wait_until("the started daemon", Duration::from_secs(30), || {
        has_label(&layout(&desk, &sender, &menu), "LTX: idle").then_some(())
    });
    let status = d.ctl(&["--json", "status"]);
    assert!(status.status.success(), "{status:?}\n{}", desk.file("tray.err"));
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert!(s["pid"].as_u64().is_some_and(|p| p != u64::from(std::process::id())), "{s}");
    click(&desk, &sender, &menu, "Stop daemon");
    wait_until("the daemon to stop", Duration::from_secs(30), || {
        (has_label(&layout(&desk, &sender, &menu), "LTX: daemon stopped") && !d.socket.exists()).then_some(())
    });
    // Stopped by the person: no reconnect (the tray retries every 2 s otherwise).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.ctl(&["status"]).status.code(), Some(3));
    let items = layout(&desk, &sender, &menu);
    assert!(has_label(&items, "LTX: daemon stopped") && has_label(&items, "Start daemon"), "{items:?}");
}
