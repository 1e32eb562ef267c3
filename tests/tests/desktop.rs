//! Desktop integration end to end: socket activation the way systemd does it, daemon notifications on a fake
//! notification server, and the real `ltx-tray` under Xvfb with a D-Bus session — its StatusNotifierItem, its
//! menu read and clicked over D-Bus (com.canonical.dbusmenu), its notifications, and the quick-generate dialog
//! typed into with xdotool. `ltxctl service install` runs against a recording fake `systemctl`.
//!
//! The display tests need Xvfb, dbus-daemon, gdbus, xdotool and python3-dbus/python3-gi (scripts/setup.sh installs
//! them); where one is genuinely missing they print why and skip.
use ltx_e2e::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TRAY: &str = env!("CARGO_BIN_EXE_ltx-tray-e2e");

fn have(prog: &str, arg: &str) -> bool {
    Command::new(prog).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

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

/// Polls `f` until it answers; the generous timeouts are for a loaded 2-core CI machine running tests in parallel.
fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Child processes killed when the test ends (pass or fail).
#[derive(Default)]
struct Procs(Vec<Child>);

impl Procs {
    fn add(&mut self, c: Child) -> &mut Child {
        self.0.push(c);
        self.0.last_mut().expect("just pushed")
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
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

fn job_id(out: &std::process::Output) -> u64 {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("job id")
}

fn job_state(d: &Daemon, id: u64) -> serde_json::Value {
    let out = d.ctl(&["--json", "show", &id.to_string()]);
    serde_json::from_slice(&out.stdout).expect("show --json")
}

fn wait_state(d: &Daemon, id: u64, state: &str) -> serde_json::Value {
    wait_until(&format!("job {id} to be {state}"), Duration::from_secs(30), || {
        let j = job_state(d, id);
        (j["state"].as_str().map(str::to_lowercase).as_deref() == Some(state)).then_some(j)
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
    let items = layout(desk, sender, menu);
    let id = items
        .iter()
        .find(|(_, l)| l.trim_start_matches('_').starts_with(label))
        .unwrap_or_else(|| panic!("no menu item {label:?} in {items:?}"))
        .0;
    desk.gdbus(&[
        "-d",
        sender,
        "-o",
        menu,
        "-m",
        "com.canonical.dbusmenu.Event",
        "--",
        &id.to_string(),
        "clicked",
        "<int32 0>",
        "0",
    ]);
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
        h.as_array()?
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
    click(&desk, &sender, &menu, "Quit");
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
