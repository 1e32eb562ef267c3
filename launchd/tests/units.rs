//! The generated systemd units pass `systemd-analyze --user verify` with nothing on stderr (unknown keys and
//! bad values only warn there, with exit 0).
use ltx_protocol::paths::{Env, Os};
use ltx_service::{systemd, Layout};
use std::ffi::OsString;
use std::process::Command;

#[test]
fn systemd_analyze_verify_is_clean() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        // scripts/setup.sh installs systemd on Linux CI; only a machine without it skips.
        eprintln!("SKIP systemd_analyze_verify_is_clean: systemd-analyze is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home dir");
    let h = home.clone();
    let f = move |k: &str| (k == "HOME").then(|| OsString::from(&h));
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let l = Layout::new(Os::Linux, &Env(&f), 1000, run.join("ltx/ltxd.sock"));
    // ExecStart must name an existing executable for verify to pass.
    std::fs::create_dir_all(&l.bin_dir).unwrap();
    std::fs::copy("/bin/true", l.daemon()).unwrap();
    let units = tmp.path().join("units");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(units.join("ltxd.socket"), systemd::socket_unit(&l)).unwrap();
    std::fs::write(units.join("ltxd.service"), systemd::service_unit(&l)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify", "ltxd.socket", "ltxd.service"])
        .current_dir(&units)
        .env("XDG_RUNTIME_DIR", &run)
        .env("HOME", &home)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}: {stderr}", out.status);
    assert_eq!(stderr, "", "systemd-analyze complained");
    // A broken unit is caught by the same check (the test can fail).
    std::fs::write(units.join("ltxd.service"), systemd::service_unit(&l).replace("Type=simple", "Type=bogus")).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify", "ltxd.socket", "ltxd.service"])
        .current_dir(&units)
        .env("XDG_RUNTIME_DIR", &run)
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(!out.stderr.is_empty());
}

/// A second, independent plist reader (Python's plistlib, as strict as `plutil -lint` about the XML) reads the
/// generated LaunchAgents and Info.plist back with the same values.
#[test]
fn plistlib_reads_the_generated_plists() {
    use ltx_service::launchd;
    let probe = Command::new("python3").args(["-c", "import plistlib"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP plistlib_reads_the_generated_plists: python3 is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let f = |k: &str| (k == "HOME").then(|| OsString::from("/Users/a&b"));
    let l = Layout::new(Os::Mac, &Env(&f), 501, "/Users/a&b/Library/Application Support/ltx/ltxd.sock".into());
    let files = [
        ("daemon.plist", launchd::to_xml(&launchd::daemon_agent(&l)).unwrap()),
        ("tray.plist", launchd::to_xml(&launchd::tray_agent(&l)).unwrap()),
        ("Info.plist", launchd::to_xml(&launchd::tray_info_plist("0.1.0")).unwrap()),
    ];
    for (name, bytes) in &files {
        std::fs::write(tmp.path().join(name), bytes).unwrap();
    }
    let script = "import json, plistlib, sys\nprint(json.dumps([plistlib.load(open(p, 'rb')) for p in sys.argv[1:]]))";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(files.iter().map(|(n, _)| tmp.path().join(n)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["Label"], "com.ltx.ltxd");
    assert_eq!(v[0]["ProgramArguments"], serde_json::json!(["/Users/a&b/Library/Application Support/ltx/bin/ltxd"]));
    assert_eq!(v[0]["KeepAlive"], serde_json::json!({"SuccessfulExit": false, "Crashed": true}));
    assert_eq!(v[0]["Sockets"]["Listener"]["SockPathMode"], 384);
    assert_eq!(v[0]["ProcessType"], "Interactive");
    assert_eq!(v[1]["Label"], "com.ltx.tray");
    assert_eq!(v[1]["RunAtLoad"], true);
    assert_eq!(v[2]["CFBundleIdentifier"], "com.ltx.tray");
    assert_eq!(v[2]["LSUIElement"], true);
}
