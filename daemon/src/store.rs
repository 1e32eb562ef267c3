//! The job queue and history in SQLite (WAL). A job is acknowledged only after its row is committed. The schema
//! is versioned ([`migrations`]). The database is a file: it is checked at open (`PRAGMA quick_check`), a row
//! that cannot be read is set aside as failed `corrupt_record` instead of stopping the queue ([`record`]), and
//! job inputs live by content hash next to it ([`inputs`]).
use ltx_protocol::{FailureCode, GenerationRequest, JobId, JobRecord, JobState};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

mod inputs;
mod migrations;
mod record;
pub use inputs::{InputCap, InputError, Pruned};
pub use migrations::LATEST as SCHEMA_VERSION;
pub use record::Outcome;
use record::{corrupt_message, decode, AFTER_COLS, COLS};

pub type DbResult<T> = Result<T, DbError>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("job inputs in {}: {source}", dir.display())]
    Input { dir: PathBuf, source: std::io::Error },
    #[error("the WAL checkpoint could not finish: another connection is reading the database")]
    CheckpointBusy,
}

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
    #[error(
        "the job database {} is damaged ({detail}); ltxd will not run on it. Move it aside together with its -wal \
         and -shm files (e.g. `mkdir {}/damaged && mv {}* {}/damaged/`) and start ltxd again to begin with an \
         empty queue and history, or restore them from a backup",
        path.display(),
        path.parent().unwrap_or(Path::new(".")).display(),
        path.display(),
        path.parent().unwrap_or(Path::new(".")).display()
    )]
    Damaged { path: PathBuf, detail: String },
}

impl StoreError {
    /// A damaged or foreign file reads as [`StoreError::Damaged`]; any other error as it is.
    fn at(path: &Path, e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, DatabaseCorrupt | NotADatabase) => {
                Self::Damaged { path: path.into(), detail: e.to_string() }
            }
            _ => Self::Db(e),
        }
    }
}

pub struct Store {
    db: Connection,
    inputs: inputs::Inputs,
    cap: InputCap,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Outcome of an insert attempt.
pub enum Insert {
    Queued { id: JobId, position: u32 },
    Full,
}

/// What [`Store::claim_next`] found: the job to run, and the pending rows it set aside on the way (id, message).
#[derive(Debug, Default)]
pub struct Claim {
    pub job: Option<JobRecord>,
    pub quarantined: Vec<(JobId, String)>,
}

/// Sets a row aside: failed `corrupt_record` with `message`; the unreadable columns stay as they are.
fn quarantine(db: &Connection, id: JobId, message: &str) -> DbResult<()> {
    let n = db.execute(
        "UPDATE jobs SET state = 'failed', error_code = ?2, message = ?3,
             finished_ms = CASE WHEN typeof(finished_ms) = 'integer' THEN finished_ms ELSE ?4 END
         WHERE id = ?1",
        params![id as i64, FailureCode::CorruptRecord.name(), message, now_ms() as i64],
    )?;
    if n != 1 {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    }
    Ok(())
}

/// `PRAGMA quick_check`: the b-trees and pages are sound (read-only; a few seconds at most on a large file).
fn quick_check(db: &Connection, path: &Path) -> Result<(), StoreError> {
    let rows = (|| -> rusqlite::Result<Vec<String>> {
        db.prepare("PRAGMA quick_check(8)")?.query_map([], |r| r.get(0))?.collect()
    })()
    .map_err(|e| StoreError::at(path, e))?;
    if rows == ["ok"] {
        return Ok(());
    }
    let lines = rows.iter().flat_map(|r| r.lines()).map(str::trim);
    let detail = lines.filter(|l| !l.is_empty() && !l.starts_with("***")).collect::<Vec<_>>().join("; ");
    Err(StoreError::Damaged { path: path.into(), detail })
}

impl Store {
    /// Opens (creating it if needed), checks and migrates the database to [`SCHEMA_VERSION`]; one written by a
    /// newer ltxd is refused ([`StoreError::TooNew`]) and a damaged one ([`StoreError::Damaged`]) before anything
    /// is written to it. Inputs live in `inputs/` next to the database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut db = Connection::open(path).map_err(|e| StoreError::at(path, e))?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        // Read-only checks first: switching a newer database to WAL would already write to it.
        let found: u32 =
            db.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| StoreError::at(path, e))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found, latest: SCHEMA_VERSION });
        }
        quick_check(&db, path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        let found = migrations::migrate(&mut db).map_err(|e| match e {
            StoreError::Db(e) => StoreError::at(path, e),
            e => e,
        })?;
        if found != SCHEMA_VERSION {
            tracing::info!("job database schema migrated from version {found} to {SCHEMA_VERSION}");
        }
        let dir = path.parent().unwrap_or(Path::new(".")).join("inputs");
        let mut store = Self { db, inputs: inputs::Inputs::new(dir), cap: InputCap::default() };
        match store.move_blobs_out() {
            Ok(0) => {}
            Ok(n) => tracing::info!("moved the first-frame images of {n} jobs into {}", store.inputs.dir().display()),
            Err(e) => tracing::warn!("first-frame images stay in the database for now: {e}"),
        }
        Ok(store)
    }

    /// The cap [`Store::prune_inputs`] keeps the inputs under (default [`InputCap::default`]).
    pub fn with_input_cap(mut self, cap: InputCap) -> Self {
        self.cap = cap;
        self
    }

    /// Rows from before schema 2 hold their first-frame image in the `image` column: each moves into the
    /// inputs directory (file first, then the row, in one transaction). Idempotent; until it succeeds the
    /// blobs are read where they are.
    fn move_blobs_out(&mut self) -> DbResult<usize> {
        let ids: Vec<i64> = self
            .db
            .prepare("SELECT id FROM jobs WHERE typeof(image) = 'blob'")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let tx = self.db.transaction()?;
        for &id in &ids {
            let bytes: Vec<u8> = tx.query_row("SELECT image FROM jobs WHERE id = ?1", [id], |r| r.get(0))?;
            let hash =
                self.inputs.put(&bytes).map_err(|source| DbError::Input { dir: self.inputs.dir().into(), source })?;
            tx.execute("UPDATE jobs SET input = ?2, image = NULL WHERE id = ?1", params![id, hash])?;
        }
        tx.commit()?;
        Ok(ids.len())
    }

    /// At start: a job that was running when the daemon died is marked `interrupted`; returns their ids.
    pub fn recover(&mut self, reason: &str) -> DbResult<Vec<JobId>> {
        let tx = self.db.transaction()?;
        let ids = tx
            .prepare("SELECT id FROM jobs WHERE state = 'running'")?
            .query_map([], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        tx.execute(
            "UPDATE jobs SET state = 'interrupted', error_code = 'interrupted', message = ?1, finished_ms = ?2
             WHERE state = 'running'",
            params![reason, now_ms() as i64],
        )?;
        tx.commit()?;
        Ok(ids.into_iter().map(|i| i as u64).collect())
    }

    /// At start: every row that cannot be read (and is not set aside yet) is marked failed `corrupt_record`, so
    /// the queue moves past it and the listings show it as failed. Returns the ids and messages.
    pub fn quarantine(&mut self) -> DbResult<Vec<(JobId, String)>> {
        let tx = self.db.transaction()?;
        let mut bad = Vec::new();
        {
            let sql = format!(
                "SELECT {COLS} FROM jobs WHERE NOT (state IS 'failed' AND error_code IS '{}')",
                FailureCode::CorruptRecord.name()
            );
            let mut stmt = tx.prepare(&sql)?;
            for d in stmt.query_map([], decode)? {
                let d = d?;
                if let Some(message) = corrupt_message(&d.problems) {
                    bad.push((d.rec.id, message));
                }
            }
        }
        for (id, message) in &bad {
            quarantine(&tx, *id, message)?;
        }
        tx.commit()?;
        Ok(bad)
    }

    /// Inserts a pending job unless `capacity` jobs are already waiting. `front` puts it before all others. A
    /// first-frame image goes to the inputs directory; the row holds its hash.
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
        let input = image
            .map(|bytes| self.inputs.put(&bytes))
            .transpose()
            .map_err(|source| DbError::Input { dir: self.inputs.dir().into(), source })?;
        let seq = if front { min.or(max).unwrap_or(0) - 1 } else { max.unwrap_or(0) + 1 };
        tx.execute(
            "INSERT INTO jobs (seq, state, request, input, seed, created_ms) VALUES (?1, 'pending', ?2, ?3, ?4, ?5)",
            params![seq, json, input, seed as i64, now_ms() as i64],
        )?;
        let id = tx.last_insert_rowid() as u64;
        tx.commit()?;
        if input.is_some() {
            self.prune_logged();
        }
        let position = if front { 1 } else { pending + 1 };
        Ok(Insert::Queued { id, position })
    }

    /// 1-based position among pending jobs.
    pub fn position(&self, id: JobId) -> DbResult<u32> {
        Ok(self.db.query_row(
            "SELECT COUNT(*) FROM jobs WHERE state = 'pending' AND seq <= (SELECT seq FROM jobs WHERE id = ?1)",
            [id as i64],
            |r| r.get(0),
        )?)
    }

    pub fn pending_count(&self) -> DbResult<u32> {
        Ok(self.db.query_row("SELECT COUNT(*) FROM jobs WHERE state = 'pending'", [], |r| r.get(0))?)
    }

    /// Claims the next pending job (marks it running) and returns it with its image bytes. A pending row that
    /// cannot be read, or whose input is missing or damaged, is set aside (failed `corrupt_record`) and the next
    /// one is tried.
    pub fn claim_next(&mut self) -> DbResult<Claim> {
        let mut claim = Claim::default();
        let sql = format!("SELECT {COLS}, input, image FROM jobs WHERE state = 'pending' ORDER BY seq LIMIT 1");
        loop {
            let tx = self.db.transaction()?;
            let row = tx
                .query_row(&sql, [], |r| {
                    let mut d = decode(r)?;
                    let input = record::column::<Option<String>>(r, AFTER_COLS, "input", &mut d.problems);
                    let blob = record::column::<Option<Vec<u8>>>(r, AFTER_COLS + 1, "image", &mut d.problems);
                    Ok((d, input.flatten(), blob.flatten()))
                })
                .optional()?;
            let Some((mut d, input, blob)) = row else { return Ok(claim) };
            if let Some(img) = d.rec.request.image.as_mut() {
                match (blob, input) {
                    (Some(bytes), _) => img.bytes = bytes,
                    (None, Some(hash)) => match self.inputs.get(&hash) {
                        Ok(bytes) => img.bytes = bytes,
                        Err(e) => d.problems.push(format!("first-frame image: {e}")),
                    },
                    (None, None) => d.problems.push("first-frame image: not stored".into()),
                }
            }
            let id = d.rec.id;
            if let Some(message) = corrupt_message(&d.problems) {
                quarantine(&tx, id, &message)?;
                tx.commit()?;
                claim.quarantined.push((id, message));
                continue;
            }
            let now = now_ms();
            tx.execute(
                "UPDATE jobs SET state = 'running', started_ms = ?2 WHERE id = ?1",
                params![id as i64, now as i64],
            )?;
            tx.commit()?;
            d.rec.state = JobState::Running;
            d.rec.started_ms = Some(now);
            claim.job = Some(d.rec);
            return Ok(claim);
        }
    }

    /// Records how a running job ended (`outcome`: a completed job's timings and stage timeline). A job already
    /// marked `interrupted` (by shutdown) only changes to `completed`: the file exists, so say so.
    pub fn finish(
        &mut self,
        id: JobId,
        state: JobState,
        output: Option<&Path>,
        error: Option<(&str, &str)>,
        outcome: Option<&Outcome>,
    ) -> DbResult<bool> {
        let result = outcome
            .map(serde_json::to_string)
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
        if n > 0 {
            self.prune_logged();
        }
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

    /// One job; a row that cannot be read comes back failed `corrupt_record`.
    pub fn get(&self, id: JobId) -> DbResult<Option<JobRecord>> {
        let sql = format!("SELECT {COLS} FROM jobs WHERE id = ?1");
        Ok(self.db.query_row(&sql, [id as i64], |r| decode(r).map(|d| d.rec)).optional()?)
    }

    fn query(&self, sql: &str, params: impl rusqlite::Params) -> DbResult<Vec<JobRecord>> {
        let mut stmt = self.db.prepare(sql)?;
        let rows = stmt.query_map(params, |r| decode(r).map(|d| d.rec))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn pending(&self) -> DbResult<Vec<JobRecord>> {
        self.query(&format!("SELECT {COLS} FROM jobs WHERE state = 'pending' ORDER BY seq"), [])
    }

    pub fn running(&self) -> DbResult<Option<JobRecord>> {
        Ok(self.query(&format!("SELECT {COLS} FROM jobs WHERE state = 'running'"), [])?.pop())
    }

    /// The latest `limit` completed jobs with a stage timeline, newest first: what the ETA learns from. A row
    /// that cannot be read is left out (it is listed as `corrupt_record` elsewhere).
    pub fn samples(&self, limit: u32) -> DbResult<Vec<crate::eta::Sample>> {
        let mut stmt = self.db.prepare(
            "SELECT request, result FROM jobs WHERE state = 'completed' AND typeof(request) = 'text'
             AND typeof(result) = 'text' AND json_valid(result) AND json_array_length(result, '$.stages') > 0
             ORDER BY finished_ms DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (request, result) = row?;
            let request = serde_json::from_str::<GenerationRequest>(&request);
            let outcome = serde_json::from_str::<Outcome>(&result);
            if let (Ok(request), Ok(Outcome { stages, .. })) = (request, outcome) {
                out.push(crate::eta::Sample::new(&request, stages));
            }
        }
        Ok(out)
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

    /// Keeps the inputs directory under the cap: removes the oldest inputs no pending or running job needs.
    pub fn prune_inputs(&mut self) -> DbResult<Pruned> {
        let mut keep = HashSet::new();
        let mut last_use = HashMap::new();
        let mut stmt = self.db.prepare(
            "SELECT input, MAX(CASE WHEN typeof(created_ms) = 'integer' THEN created_ms END),
                    MAX(state IN ('pending', 'running'))
             FROM jobs WHERE typeof(input) = 'text' GROUP BY input",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get(2)?)))?;
        for row in rows {
            let (hash, created, needed): (String, Option<i64>, bool) = row?;
            if let Some(ms) = created {
                last_use.insert(hash.clone(), ms as u64);
            }
            if needed {
                keep.insert(hash);
            }
        }
        let dir = || self.inputs.dir().to_path_buf();
        self.inputs.prune(&keep, &last_use, self.cap, now_ms()).map_err(|source| DbError::Input { dir: dir(), source })
    }

    /// [`Store::prune_inputs`], logging what it did; a failure only warns (the job itself is recorded).
    fn prune_logged(&mut self) {
        match self.prune_inputs() {
            Ok(p) if p.removed > 0 => {
                tracing::info!(removed = p.removed, freed = p.freed, kept = p.kept, "pruned old job inputs")
            }
            Ok(p) if p.kept > self.cap.max_bytes => tracing::warn!(
                kept = p.kept,
                cap = self.cap.max_bytes,
                "the inputs of pending jobs exceed inputs_max_bytes; they are kept until their jobs end"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot prune job inputs: {e}"),
        }
    }

    /// Folds the WAL into the database file and truncates it (at shutdown): a copy of `jobs.db` alone then
    /// holds every job.
    pub fn checkpoint(&mut self) -> DbResult<()> {
        let busy: i64 = self.db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Err(DbError::CheckpointBusy);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
