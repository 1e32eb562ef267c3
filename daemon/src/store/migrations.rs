//! Schema versions of the job database, kept in `PRAGMA user_version`. `MIGRATIONS[i]` takes a database from
//! version `i` to `i + 1`; each runs in one transaction with the `user_version` bump, so a crash leaves the
//! database at the old version or the new one, never in between. Append only: a released migration is never
//! edited, a schema change is a new entry.
use super::StoreError;
use rusqlite::{Connection, TransactionBehavior};

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the schema from before versioning. `IF NOT EXISTS`: a version-0 database that already has the table
    // (written by an ltxd without migrations) is only stamped.
    "CREATE TABLE IF NOT EXISTS jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        seq INTEGER NOT NULL,
        state TEXT NOT NULL,
        request TEXT NOT NULL,
        image BLOB,
        seed INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        started_ms INTEGER,
        finished_ms INTEGER,
        output TEXT,
        error_code TEXT,
        message TEXT,
        result TEXT
    );
    CREATE INDEX IF NOT EXISTS jobs_state_seq ON jobs(state, seq);",
    // 2: job inputs by content. `input` holds the sha256 of the first-frame image, whose bytes live in
    // `<state dir>/inputs/<sha256>`; new rows leave `image` NULL. The blobs of older rows are moved out by
    // `Store::open` (files need more than SQL; it is idempotent and, until it succeeds, the blob is read).
    "ALTER TABLE jobs ADD COLUMN input TEXT;",
];

/// The schema version this code writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// Brings the database to [`LATEST`]; refuses one newer than that. Returns the version it found.
pub(super) fn migrate(db: &mut Connection) -> Result<u32, StoreError> {
    apply(db, MIGRATIONS)
}

fn apply(db: &mut Connection, migrations: &[&str]) -> Result<u32, StoreError> {
    let latest = migrations.len() as u32;
    let mut found = None;
    loop {
        // IMMEDIATE: the version is read under the write lock, so two openers cannot both apply a step.
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let first = *found.get_or_insert(version);
        if version > latest {
            return Err(StoreError::TooNew { found: version, latest });
        }
        let Some(sql) = migrations.get(version as usize) else { return Ok(first) };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Insert, Store};
    use super::*;
    use ltx_protocol::{GenerationRequest, JobState};
    use std::path::{Path, PathBuf};

    fn version(path: &Path) -> u32 {
        let db = Connection::open(path).unwrap();
        db.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
    }

    /// The committed database written by the Store before schema versions existed (user_version 0).
    fn v0_copy(dir: &Path) -> PathBuf {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jobs-v0.db");
        let path = dir.join("jobs.db");
        std::fs::copy(&fixture, &path).unwrap();
        assert_eq!(version(&path), 0);
        path
    }

    #[test]
    fn v0_fixture_is_stamped_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = v0_copy(dir.path());
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.db.pragma_query_value(None, "user_version", |r| r.get::<_, u32>(0)).unwrap(), LATEST);

        let history = s.history(10).unwrap();
        let summary: Vec<_> =
            history.iter().map(|r| (r.id, r.state, r.error_code.as_deref(), r.message.as_deref())).collect();
        let interrupted = "the daemon stopped while this job was running (crash, kill or power loss)";
        assert_eq!(
            summary,
            [
                (4, JobState::Interrupted, Some("interrupted"), Some(interrupted)),
                (3, JobState::Cancelled, None, None),
                (
                    2,
                    JobState::Failed,
                    Some("model_missing"),
                    Some("ltx-2-19b-distilled.safetensors is not in the models directory")
                ),
                (1, JobState::Completed, None, None),
            ]
        );
        let done = s.get(1).unwrap().unwrap();
        assert_eq!(done.output.as_deref(), Some(Path::new("/tmp/ltx-out/job-1.mp4")));
        assert_eq!((done.seed, done.request.prompt.as_str()), (42, "a lighthouse in a storm"));
        let timings: Vec<(String, u64)> =
            [("encode_prompt", 812), ("denoise", 20431), ("decode_video", 3120), ("total", 24510)]
                .map(|(n, ms)| (n.to_string(), ms))
                .into();
        assert_eq!(done.timings, timings);
        assert!(history[..3].iter().all(|r| r.timings.is_empty()));

        assert_eq!(s.pending().unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [5]);
        // Schema 2: the pending job's image moved out of its row into the inputs directory, by its hash.
        let png = b"\x89PNG\r\n\x1a\nfixture";
        let (input, blob): (Option<String>, Option<Vec<u8>>) =
            s.db.query_row("SELECT input, image FROM jobs WHERE id = 5", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((input.as_deref(), blob), (Some(super::super::inputs::hash(png).as_str()), None));
        assert_eq!(std::fs::read(dir.path().join("inputs").join(input.unwrap())).unwrap(), png);
        let next = s.claim_next().unwrap().job.unwrap();
        let image = next.request.image.unwrap();
        assert_eq!((next.id, image.name.as_str(), &image.bytes[..]), (5, "first.png", &png[..]));
        drop(s);
        // Opening again is a no-op migration; the ids continue after the fixture's.
        let mut s = Store::open(&path).unwrap();
        assert!(matches!(s.insert(&GenerationRequest::new("b"), 6, false, 8).unwrap(), Insert::Queued { id: 6, .. }));
        drop(s);
        assert_eq!(version(&path), LATEST);
    }

    #[test]
    fn fresh_database_is_created_at_latest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let mut db = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 0);
        assert_eq!(migrate(&mut db).unwrap(), LATEST);
        drop(db);
        assert_eq!(version(&path), LATEST);
        assert!(Store::open(&path).unwrap().pending().unwrap().is_empty());
    }

    #[test]
    fn newer_database_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let db = Connection::open(&path).unwrap();
        db.pragma_update(None, "user_version", LATEST + 1).unwrap();
        drop(db);
        match Store::open(&path) {
            Err(e @ StoreError::TooNew { found, latest }) => {
                assert_eq!((found, latest), (LATEST + 1, LATEST));
                assert!(e.to_string().contains(&format!("version {}", LATEST + 1)), "{e}");
            }
            other => panic!("expected TooNew, got {:?}", other.err()),
        }
        assert_eq!(version(&path), LATEST + 1);
        let mut db = Connection::open(&path).unwrap();
        // The check inside the migration transaction refuses it too (another opener may have raced ahead).
        assert!(matches!(migrate(&mut db), Err(StoreError::TooNew { found, .. }) if found == LATEST + 1));
        let tables: u32 = db.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0)).unwrap();
        assert_eq!(tables, 0, "a refused database must not be written");
    }

    #[test]
    fn failed_migration_rolls_back_with_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let mut db = Connection::open(&path).unwrap();
        let steps = ["CREATE TABLE a (x)", "CREATE TABLE b (x); INSERT INTO nowhere VALUES (1)"];
        assert!(matches!(apply(&mut db, &steps), Err(StoreError::Db(_))));
        assert_eq!(db.pragma_query_value(None, "user_version", |r| r.get::<_, u32>(0)).unwrap(), 1);
        let b: u32 = db.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'", [], |r| r.get(0)).unwrap();
        assert_eq!(b, 0);
    }
}
