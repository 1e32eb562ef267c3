//! The job database under a real daemon: rows damaged while it was stopped, a damaged file, the WAL at
//! shutdown, first-frame images kept by hash outside the rows.
use ltx_e2e::*;
use ltx_protocol::{EventKind, ImageInput, JobState, Reply, Request};
use rusqlite::Connection;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn db_path(d: &Daemon) -> PathBuf {
    d.dir.path().join("state/jobs.db")
}

/// SIGTERM and a clean exit.
fn stop(d: &mut Daemon) {
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(Duration::from_secs(10)), Some(0), "{}", d.stderr());
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o:?}"))
}

/// Rows damaged while the daemon was stopped — a request that is not JSON, an unknown state, a result that is
/// not the timings — come back failed `corrupt_record`; the good pending job and new ones run, and `queue`,
/// `history`, `show` and `cancel --all` work.
#[tokio::test]
async fn unreadable_rows_are_failed_corrupt_record_and_everything_else_goes_on() {
    let mut d = Daemon::start(bins!());
    let mut c = d.client().await;
    let done = submit(&mut c, req("finished before")).await;
    assert!(matches!(events(&mut c, done).await.last().unwrap().kind, EventKind::Completed { .. }));
    assert_eq!(c.request(Request::Pause).await.unwrap(), Reply::Ok);
    let bad_json = submit(&mut c, req("bad json")).await;
    let bad_state = submit(&mut c, req("bad state")).await;
    let good = submit(&mut c, req("still good")).await;
    drop(c);
    stop(&mut d);
    let db = Connection::open(db_path(&d)).unwrap();
    let damage = |sql: &str, id: u64| assert_eq!(db.execute(sql, [id as i64]).unwrap(), 1);
    damage("UPDATE jobs SET request = '{\"prompt\": \"half' WHERE id = ?1", bad_json);
    damage("UPDATE jobs SET state = 'exploded' WHERE id = ?1", bad_state);
    damage("UPDATE jobs SET result = '{\"timings\": 3}' WHERE id = ?1", done);
    drop(db);
    d.spawn();
    d.wait_ready();

    let queue = json(&d.ctl(&["--json", "queue"]));
    let pending: Vec<_> = queue["pending"].as_array().unwrap().iter().map(|j| j["id"].as_u64().unwrap()).collect();
    assert!(!pending.contains(&bad_json), "{queue}");
    let history = json(&d.ctl(&["--json", "history", "--limit", "10"]));
    let by_id = |id: u64| history["jobs"].as_array().unwrap().iter().find(|j| j["id"] == id).cloned();
    for (id, what) in
        [(bad_json, "request: EOF while parsing"), (bad_state, "unknown state \"exploded\""), (done, "result: ")]
    {
        let j = by_id(id).unwrap_or_else(|| panic!("job {id} not in {history}"));
        assert_eq!((j["state"].as_str(), j["error_code"].as_str()), (Some("failed"), Some("corrupt_record")), "{j}");
        let message = j["message"].as_str().unwrap();
        assert!(message.starts_with("the stored job cannot be read: ") && message.contains(what), "{message}");
    }
    let show = d.ctl(&["show", &bad_json.to_string()]);
    assert_eq!(show.status.code(), Some(0), "{show:?}");
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains("failed") && shown.contains("the stored job cannot be read: request"), "{shown}");

    let mut c = d.client().await;
    let after = submit(&mut c, req("submitted after")).await;
    for job in [good, after] {
        let evs = events(&mut c, job).await;
        assert!(matches!(evs.last().unwrap().kind, EventKind::Completed { .. }), "job {job}: {evs:?}");
    }
    let evs = events(&mut c, bad_json).await;
    assert!(matches!(&evs[..], [e] if matches!(&e.kind, EventKind::Failed { code, .. } if code == "corrupt_record")));

    let gate = d.gate("never");
    let held = submit(&mut c, req(&format!("held gate={}", gate.display()))).await;
    let later = submit(&mut c, req("later")).await;
    let cancel = d.ctl(&["cancel", "--all"]);
    assert_eq!(cancel.status.code(), Some(0), "{cancel:?}");
    assert_eq!(record(&mut c, later).await.state, JobState::Cancelled);
    let evs = events(&mut c, held).await;
    assert!(matches!(evs.last().unwrap().kind, EventKind::Cancelled), "{evs:?}");
    let stderr = d.stderr();
    assert!(!stderr.contains("ERROR"), "{stderr}");
    assert!(stderr.contains(&format!("job={bad_json}")) && stderr.contains("set aside"), "{stderr}");
}

/// A pending row damaged while the daemon runs: the scheduler's pick sets it aside (its followers get the
/// failure) and runs the next job.
#[tokio::test]
async fn a_row_damaged_while_the_daemon_runs_is_set_aside_when_picked() {
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    assert_eq!(c.request(Request::Pause).await.unwrap(), Reply::Ok);
    let bad = submit(&mut c, req("damaged while queued")).await;
    let next = submit(&mut c, req("next in line")).await;
    let mut follow = d.client().await;
    assert_eq!(
        follow.request(Request::Subscribe { job: Some(bad), previews: false }).await.unwrap(),
        Reply::Subscribed
    );
    assert!(matches!(follow.next_event().await.unwrap().kind, EventKind::Queued { .. }));
    let db = Connection::open(db_path(&d)).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(db.execute("UPDATE jobs SET request = 'not json' WHERE id = ?1", [bad as i64]).unwrap(), 1);
    drop(db);
    assert_eq!(c.request(Request::Resume).await.unwrap(), Reply::Ok);
    let last = wait_for(&mut follow, bad, EventKind::is_final).await;
    let EventKind::Failed { code, message } = last else { panic!("{last:?}") };
    assert_eq!(code, "corrupt_record");
    assert!(message.starts_with("the stored job cannot be read: request: "), "{message}");
    let evs = events(&mut c, next).await;
    assert!(matches!(evs.last().unwrap().kind, EventKind::Completed { .. }), "{evs:?}");
    assert!(!d.stderr().contains("ERROR"), "{}", d.stderr());
}

/// A file whose pages are damaged: `ltxd` refuses to start, naming the file and the way out.
#[test]
fn a_damaged_database_is_refused_at_start_with_its_path_and_a_way_out() {
    let mut d = Daemon::with(bins!(), Opts { start: false, ..Opts::default() });
    let path = db_path(&d);
    let state = path.parent().unwrap();
    std::fs::create_dir_all(state).unwrap();
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700)).unwrap();
    {
        let db = Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, state TEXT NOT NULL,
                 request TEXT NOT NULL, image BLOB, seed INTEGER NOT NULL, created_ms INTEGER NOT NULL,
                 started_ms INTEGER, finished_ms INTEGER, output TEXT, error_code TEXT, message TEXT, result TEXT);
             CREATE INDEX jobs_state_seq ON jobs(state, seq);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        let request = serde_json::to_string(&req(&"a long prompt ".repeat(250))).unwrap();
        for seq in 0..40 {
            db.execute(
                "INSERT INTO jobs (seq, state, request, seed, created_ms) VALUES (?1, 'completed', ?2, 1, 1)",
                rusqlite::params![seq, request],
            )
            .unwrap();
        }
    }
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8 * 4096, "{}", bytes.len());
    bytes[4096..3 * 4096].fill(0x5a);
    std::fs::write(&path, &bytes).unwrap();
    d.spawn();
    let code = d.wait_exit(Duration::from_secs(20));
    let stderr = d.stderr();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("the job database {} is damaged", path.display())), "{stderr}");
    assert!(stderr.contains("-wal") && stderr.contains("restore them from a backup"), "{stderr}");
}

/// After a clean shutdown `jobs.db` alone (a backup of that one file) holds every job: the WAL was folded in.
#[tokio::test]
async fn a_clean_shutdown_leaves_every_job_in_jobs_db_alone() {
    let mut d = Daemon::start(bins!());
    let mut c = d.client().await;
    assert_eq!(c.request(Request::Pause).await.unwrap(), Reply::Ok);
    for i in 0..60 {
        submit(&mut c, req(&format!("job {i}"))).await;
    }
    drop(c);
    stop(&mut d);
    let copy = d.dir.path().join("copy.db");
    std::fs::copy(db_path(&d), &copy).unwrap();
    let count = Connection::open(&copy)
        .and_then(|db| db.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get::<_, u32>(0)))
        .map_err(|e| e.to_string());
    assert_eq!(count, Ok(60));
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A first-frame image lives in `state/inputs/<sha256>` (0600 in a 0700 directory); the row holds the hash.
#[tokio::test]
async fn a_first_frame_image_is_kept_by_its_hash_outside_the_row() {
    let d = Daemon::start(bins!());
    let mut png = Vec::new();
    image::RgbImage::from_fn(48, 36, |x, y| image::Rgb([(x * 5) as u8, (y * 7) as u8, 90]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut r = req("from an image");
    r.image = Some(ImageInput { name: "first.png".into(), bytes: png.clone(), strength: 1.0 });
    let mut c = d.client().await;
    let job = submit(&mut c, r).await;
    let evs = events(&mut c, job).await;
    assert!(matches!(evs.last().unwrap().kind, EventKind::Completed { .. }), "{evs:?}");
    let hash = sha256_hex(&png);
    let inputs = d.dir.path().join("state/inputs");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(std::fs::read(inputs.join(&hash)).unwrap(), png);
    assert_eq!((mode(&inputs), mode(&inputs.join(&hash))), (0o700, 0o600));
    let db = Connection::open_with_flags(db_path(&d), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let (input, blob): (Option<String>, Option<Vec<u8>>) = db
        .query_row("SELECT input, image FROM jobs WHERE id = ?1", [job as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((input.as_deref(), blob), (Some(hash.as_str()), None));
}
