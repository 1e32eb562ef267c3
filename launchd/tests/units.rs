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
