//! The job queue and history in SQLite (WAL). A job is acknowledged only after its row is committed. The schema
//! is versioned ([`migrations`]).
use ltx_protocol::{GenerationRequest, JobId, JobRecord, JobState};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod migrations;
pub use migrations::LATEST as SCHEMA_VERSION;

pub type DbResult<T> = Result<T, rusqlite::Error>;

/// Why the job database cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] rusqlite::Error),
    #[error(
        "the job database has schema version {found}, newer than this ltxd knows (up to {latest}): it was written \
         by a newer ltxd; run that one, or move the database aside"
    )]
    TooNew { found: u32, latest: u32 },
}

pub struct Store {
    db: Connection,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Outcome of an insert attempt.
pub enum Insert {
    Queued { id: JobId, position: u32 },
    Full,
}

const COLS: &str = "id, state, request, seed, created_ms, started_ms, finished_ms, output, error_code, message, result";
/// Index of the column after [`COLS`].
const AFTER_COLS: usize = 11;

/// What the `result` column holds for a completed job (JSON).
#[derive(Serialize, Deserialize)]
struct StoredResult {
    timings: Vec<(String, u64)>,
}

fn record(row: &Row) -> DbResult<JobRecord> {
    let state: String = row.get(1)?;
    let request: String = row.get(2)?;
    let result: Option<String> = row.get(10)?;
    let bad =
        |col: usize, e: String| rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, e.into());
    let result = result
        .map(|r| serde_json::from_str::<StoredResult>(&r).map_err(|e| bad(10, format!("result: {e}"))))
        .transpose()?;
    Ok(JobRecord {
        id: row.get::<_, i64>(0)? as u64,
        state: JobState::parse(&state).ok_or_else(|| bad(1, format!("unknown state {state}")))?,
        request: serde_json::from_str(&request).map_err(|e| bad(2, e.to_string()))?,
        seed: row.get::<_, i64>(3)? as u64,
        created_ms: row.get::<_, i64>(4)? as u64,
        started_ms: row.get::<_, Option<i64>>(5)?.map(|v| v as u64),
        finished_ms: row.get::<_, Option<i64>>(6)?.map(|v| v as u64),
        output: row.get::<_, Option<String>>(7)?.map(PathBuf::from),
        error_code: row.get(8)?,
        message: row.get(9)?,
        timings: result.map(|r| r.timings).unwrap_or_default(),
    })
}

impl Store {
    /// Opens (creating it if needed) and migrates the database to [`SCHEMA_VERSION`]; one written by a newer
    /// ltxd is refused ([`StoreError::TooNew`]) before anything is written to it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut db = Connection::open(path)?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        // Read-only check first: switching a newer database to WAL would already write to it.
        let found: u32 = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found, latest: SCHEMA_VERSION });
        }
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        let found = migrations::migrate(&mut db)?;
        if found != SCHEMA_VERSION {
            tracing::info!("job database schema migrated from version {found} to {SCHEMA_VERSION}");
        }
        Ok(Self { db })
    }

    /// At start: a job that was running when the daemon died is marked `interrupted`; returns their ids.
    pub fn recover(&mut self, reason: &str) -> DbResult<Vec<JobId>> {
        let tx = self.db.transaction()?;
        let ids = tx
            .prepare("SELECT id FROM jobs WHERE state = 'running'")?
            .query_map([], |r| r.get::<_, i64>(0))?
            .collect::<DbResult<Vec<_>>>()?;
        tx.execute(
            "UPDATE jobs SET state = 'interrupted', error_code = 'interrupted', message = ?1, finished_ms = ?2
             WHERE state = 'running'",
            params![reason, now_ms() as i64],
        )?;
        tx.commit()?;
        Ok(ids.into_iter().map(|i| i as u64).collect())
    }

    /// Inserts a pending job unless `capacity` jobs are already waiting. `front` puts it before all others.
    pub fn insert(&mut self, req: &GenerationRequest, seed: u64, front: bool, capacity: u32) -> DbResult<Insert> {
        let mut stored = req.clone();
        let image = stored.image.as_mut().map(|i| std::mem::take(&mut i.bytes));
        let json = serde_json::to_string(&stored).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
        let tx = self.db.transaction()?;
        let (pending, min, max): (u32, Option<i64>, Option<i64>) = tx.query_row(
            "SELECT COUNT(*), MIN(seq), (SELECT MAX(seq) FROM jobs) FROM jobs WHERE state = 'pending'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if pending >= capacity {
            return Ok(Insert::Full);
        }
        let seq = if front { min.or(max).unwrap_or(0) - 1 } else { max.unwrap_or(0) + 1 };
        tx.execute(
            "INSERT INTO jobs (seq, state, request, image, seed, created_ms) VALUES (?1, 'pending', ?2, ?3, ?4, ?5)",
            params![seq, json, image, seed as i64, now_ms() as i64],
        )?;
        let id = tx.last_insert_rowid() as u64;
        tx.commit()?;
        let position = if front { 1 } else { pending + 1 };
        Ok(Insert::Queued { id, position })
    }

    /// 1-based position among pending jobs.
    pub fn position(&self, id: JobId) -> DbResult<u32> {
        self.db.query_row(
            "SELECT COUNT(*) FROM jobs WHERE state = 'pending' AND seq <= (SELECT seq FROM jobs WHERE id = ?1)",
            [id as i64],
            |r| r.get(0),
        )
    }

    pub fn pending_count(&self) -> DbResult<u32> {
        self.db.query_row("SELECT COUNT(*) FROM jobs WHERE state = 'pending'", [], |r| r.get(0))
    }

    /// Claims the next pending job (marks it running) and returns it with its image bytes.
    pub fn claim_next(&mut self) -> DbResult<Option<JobRecord>> {
        let tx = self.db.transaction()?;
        let row = tx
            .query_row(
                &format!("SELECT {COLS}, image FROM jobs WHERE state = 'pending' ORDER BY seq LIMIT 1"),
                [],
                |r| Ok((record(r)?, r.get::<_, Option<Vec<u8>>>(AFTER_COLS)?)),
            )
            .optional()?;
        let Some((mut rec, image)) = row else { return Ok(None) };
        let now = now_ms();
        tx.execute(
            "UPDATE jobs SET state = 'running', started_ms = ?2 WHERE id = ?1",
            params![rec.id as i64, now as i64],
        )?;
        tx.commit()?;
        if let (Some(img), Some(bytes)) = (rec.request.image.as_mut(), image) {
            img.bytes = bytes;
        }
        rec.state = JobState::Running;
        rec.started_ms = Some(now);
        Ok(Some(rec))
    }

    /// Records how a running job ended (`timings`: a completed job's, per stage). A job already marked
    /// `interrupted` (by shutdown) only changes to `completed`: the file exists, so say so.
    pub fn finish(
        &mut self,
        id: JobId,
        state: JobState,
        output: Option<&Path>,
        error: Option<(&str, &str)>,
        timings: Option<&[(String, u64)]>,
    ) -> DbResult<bool> {
        let result = timings
            .map(|t| serde_json::to_string(&StoredResult { timings: t.to_vec() }))
            .transpose()
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
        let n = self.db.execute(
            "UPDATE jobs SET state = ?2, finished_ms = ?3, output = ?4, error_code = ?5, message = ?6, result = ?7
             WHERE id = ?1 AND (state = 'running' OR (state = 'interrupted' AND ?2 = 'completed'))",
            params![
                id as i64,
                state.name(),
                now_ms() as i64,
                output.map(|p| p.to_string_lossy().into_owned()),
                error.map(|e| e.0),
                error.map(|e| e.1),
                result
            ],
        )?;
        Ok(n > 0)
    }

    /// Marks a running job interrupted right away (shutdown).
    pub fn interrupt(&mut self, id: JobId, reason: &str) -> DbResult<bool> {
        let n = self.db.execute(
            "UPDATE jobs SET state = 'interrupted', error_code = 'interrupted', message = ?2, finished_ms = ?3
             WHERE id = ?1 AND state = 'running'",
            params![id as i64, reason, now_ms() as i64],
        )?;
        Ok(n > 0)
    }

    pub fn cancel_pending(&mut self, id: JobId) -> DbResult<bool> {
        let n = self.db.execute(
            "UPDATE jobs SET state = 'cancelled', finished_ms = ?2 WHERE id = ?1 AND state = 'pending'",
            params![id as i64, now_ms() as i64],
        )?;
        Ok(n > 0)
    }

    pub fn get(&self, id: JobId) -> DbResult<Option<JobRecord>> {
        self.db.query_row(&format!("SELECT {COLS} FROM jobs WHERE id = ?1"), [id as i64], record).optional()
    }

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> DbResult<Vec<JobRecord>> {
        self.db.prepare(sql)?.query_map(params, record)?.collect()
    }

    pub fn pending(&self) -> DbResult<Vec<JobRecord>> {
        self.query(&format!("SELECT {COLS} FROM jobs WHERE state = 'pending' ORDER BY seq"), [])
    }

    pub fn running(&self) -> DbResult<Option<JobRecord>> {
        Ok(self.query(&format!("SELECT {COLS} FROM jobs WHERE state = 'running'"), [])?.pop())
    }

    /// Finished jobs, newest first.
    pub fn history(&self, limit: u32) -> DbResult<Vec<JobRecord>> {
        self.query(
            &format!(
                "SELECT {COLS} FROM jobs WHERE state NOT IN ('pending', 'running') ORDER BY finished_ms DESC, id DESC
                 LIMIT ?1"
            ),
            [limit as i64],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_order_capacity_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let mut s = Store::open(&path).unwrap();
        let req = GenerationRequest::new("a");
        let id = |i: Insert| match i {
            Insert::Queued { id, .. } => id,
            Insert::Full => panic!("full"),
        };
        let a = id(s.insert(&req, 1, false, 3).unwrap());
        let b = id(s.insert(&req, 2, false, 3).unwrap());
        let c = id(s.insert(&req, 3, true, 3).unwrap());
        assert!(matches!(s.insert(&req, 4, false, 3).unwrap(), Insert::Full));
        assert_eq!(s.pending().unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [c, a, b]);
        assert_eq!(s.position(b).unwrap(), 3);
        assert_eq!(s.claim_next().unwrap().unwrap().id, c);
        assert!(s.cancel_pending(b).unwrap());
        drop(s);
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.recover("crash").unwrap(), [c]);
        let rec = s.get(c).unwrap().unwrap();
        assert_eq!((rec.state, rec.message.as_deref()), (JobState::Interrupted, Some("crash")));
        assert!(!s.finish(c, JobState::Failed, None, None, None).unwrap());
        assert_eq!(s.pending().unwrap().len(), 1);
        assert_eq!(s.history(10).unwrap().len(), 2);
    }

    #[test]
    fn completed_timings_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("jobs.db")).unwrap();
        let req = GenerationRequest::new("a");
        let timings = vec![("denoise".to_string(), 1200), ("total".to_string(), 1500)];
        for _ in 0..3 {
            assert!(matches!(s.insert(&req, 1, false, 8).unwrap(), Insert::Queued { .. }));
        }
        let done = s.claim_next().unwrap().unwrap().id;
        assert!(s.finish(done, JobState::Completed, Some(Path::new("/o/a.mp4")), None, Some(&timings)).unwrap());
        let failed = s.claim_next().unwrap().unwrap().id;
        assert!(s.finish(failed, JobState::Failed, None, Some(("oom", "out of memory")), None).unwrap());
        // Completed after a shutdown marked it interrupted: the timings are kept too.
        let late = s.claim_next().unwrap().unwrap().id;
        assert!(s.interrupt(late, "shutdown").unwrap());
        assert!(s.finish(late, JobState::Completed, Some(Path::new("/o/b.mp4")), None, Some(&timings[1..])).unwrap());
        assert_eq!(s.get(done).unwrap().unwrap().timings, timings);
        assert_eq!(s.get(failed).unwrap().unwrap().timings, []);
        assert_eq!(s.get(late).unwrap().unwrap().timings, timings[1..]);
        let history: Vec<_> = s.history(10).unwrap().into_iter().map(|r| (r.id, r.timings.len())).collect();
        assert_eq!(history, [(late, 1), (failed, 0), (done, 2)]);
    }

    #[test]
    fn malformed_result_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("jobs.db")).unwrap();
        let Insert::Queued { id, .. } = s.insert(&GenerationRequest::new("a"), 1, false, 8).unwrap() else {
            panic!("full")
        };
        s.db.execute("UPDATE jobs SET result = '{\"timings\": 3}' WHERE id = ?1", [id as i64]).unwrap();
        let e = s.get(id).unwrap_err();
        assert!(
            matches!(e, rusqlite::Error::FromSqlConversionFailure(10, ..)) && e.to_string().contains("result"),
            "{e}"
        );
    }
}
