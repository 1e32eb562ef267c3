//! Socket permissions and the peer-uid check.
use ltx_e2e::*;
use ltx_protocol::client::{Client, ClientError};
use ltx_protocol::DaemonError;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

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
