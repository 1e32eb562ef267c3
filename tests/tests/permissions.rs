//! Socket and log permissions, the peer-uid check, user text in log lines.
use ltx_e2e::*;
use ltx_protocol::client::{Client, ClientError};
use ltx_protocol::DaemonError;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

#[tokio::test]
async fn socket_is_0600_in_a_0700_directory() {
    let d = Daemon::start(bins!());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.socket), 0o600);
    assert_eq!(mode(d.socket.parent().unwrap()), 0o700);
    assert_eq!(std::fs::metadata(&d.socket).unwrap().uid(), ltx_protocol::server::current_uid());
}

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

#[tokio::test]
async fn a_client_of_another_uid_is_refused_even_root() {
    let setpriv = Path::new("/usr/bin/setpriv");
    if ltx_protocol::server::current_uid() != 0 || !setpriv.exists() {
        println!("SKIPPED: needs root and setpriv to run the daemon as `nobody`");
        return;
    }
    let opts = Opts {
        prefix: ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"].map(String::from).to_vec(),
        start: false,
        ..Opts::default()
    };
    let mut d = Daemon::with(bins!(), opts);
    chown_tree(d.dir.path(), 65534, 65534);
    d.spawn();
    d.wait_ready();
    assert_eq!(std::fs::metadata(&d.socket).unwrap().uid(), 65534);
    // Root passes the file modes, so only the daemon's uid check stands in the way.
    let err = Client::connect(&d.socket, "intruder").await.err().expect("root must be refused");
    assert!(
        matches!(err, ClientError::Daemon(DaemonError::PermissionDenied { peer_uid: 0, daemon_uid: 65534 })),
        "{err:?}"
    );
    assert!(err.to_string().contains("uid 65534") && err.to_string().contains("uid 0"), "{err}");
    let out = d.ctl(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
    assert!(d.stderr().contains("refused a client of another user"), "{}", d.stderr());
}

/// The log directory is 0700 and its files 0600 (they hold every prompt), tightened at start for ones made
/// before; a prompt with a newline cannot forge a log line of its own: it is escaped, on the job's line.
#[tokio::test]
async fn logs_are_private_and_user_text_cannot_forge_a_line() {
    let mut d = Daemon::with(bins!(), Opts { start: false, ..Opts::default() });
    let logs = d.dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = logs.join("ltxd.err.log");
    std::fs::write(&old, b"written by launchd\n").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    d.spawn();
    d.wait_ready();
    let mut c = d.client().await;
    let prompt = "a fox\n2026-01-01 ERROR forged\r\u{1b}[2J";
    let job = submit(&mut c, req(prompt)).await;
    events(&mut c, job).await;
    let escaped = r"a fox\n2026-01-01 ERROR forged\r\u{1b}[2J";
    let file = || {
        std::fs::read_dir(&logs)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("ltxd.2"))
    };
    let t = Instant::now();
    let text = loop {
        let text = file().map(|p| std::fs::read_to_string(p).unwrap()).unwrap_or_default();
        if text.contains(escaped) || t.elapsed() > Duration::from_secs(10) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for (name, text) in [("log file", text), ("stderr", d.stderr())] {
        assert!(!text.lines().any(|l| l.starts_with("2026-01-01")), "{name}: a forged line:\n{text}");
        assert!(!text.contains('\u{1b}'), "{name}: a raw escape:\n{text}");
        let line = text.lines().find(|l| l.contains(escaped)).unwrap_or_else(|| panic!("{name}:\n{text}"));
        assert!(line.contains("started") && line.contains(&format!("job{{id={job}}}")), "{name}: {line}");
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&logs), 0o700);
    assert_eq!(mode(&file().unwrap()), 0o600);
    assert_eq!(mode(&old), 0o600);
}
