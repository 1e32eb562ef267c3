//! Reading a row into a [`JobRecord`] without trusting it: the database is a file, and one row that cannot be
//! read must not stop the queue or the listings. Every column that cannot be read is named in the record's
//! problems; such a record reads as failed `corrupt_record`, and the store quarantines its row
//! ([`super::Store::quarantine`], [`super::Store::claim_next`]).
use ltx_protocol::{FailureCode, GenerationRequest, JobRecord, JobState};
use rusqlite::types::FromSql;
use rusqlite::Row;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The columns [`decode`] reads, in its order.
pub(super) const COLS: &str =
    "id, state, request, seed, created_ms, started_ms, finished_ms, output, error_code, message, result";
/// Index of the column after [`COLS`].
pub(super) const AFTER_COLS: usize = 11;

/// What the `result` column holds for a completed job (JSON): the engine's timings, and the stage timeline the
/// daemon saw, which the ETA learns from (absent in rows written before it was kept).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub timings: Vec<(String, u64)>,
    #[serde(default)]
    pub stages: Vec<crate::eta::StageTime>,
}

/// A row as read: the record, and what could not be read of it (empty for a sound row).
pub(super) struct Decoded {
    pub rec: JobRecord,
    pub problems: Vec<String>,
}

impl Decoded {
    /// Marks the record failed `corrupt_record`, its message naming every problem. No-op for a sound row.
    pub fn set_aside(&mut self) {
        if let Some(message) = corrupt_message(&self.problems) {
            self.rec.state = JobState::Failed;
            self.rec.error_code = Some(FailureCode::CorruptRecord.name().into());
            self.rec.message = Some(message);
            self.rec.timings.clear();
        }
    }
}

/// The failure message of a row with these problems; `None` when there are none.
pub(super) fn corrupt_message(problems: &[String]) -> Option<String> {
    (!problems.is_empty()).then(|| format!("the stored job cannot be read: {}", problems.join("; ")))
}

/// At most this many characters of a stored value are quoted in a problem.
const QUOTE_MAX: usize = 40;

fn quote(s: &str) -> String {
    let short: String = s.chars().take(QUOTE_MAX).collect();
    let more = if short.len() < s.len() { "…" } else { "" };
    format!("{short:?}{more}")
}

/// Reads column `i` (`name`), recording a problem instead of failing.
pub(super) fn column<T: FromSql>(row: &Row, i: usize, name: &str, problems: &mut Vec<String>) -> Option<T> {
    row.get(i).map_err(|e| problems.push(format!("{name}: {e}"))).ok()
}

fn unsigned(v: Option<i64>) -> Option<u64> {
    v.map(|v| v as u64)
}

/// Reads a row of [`COLS`]. Only a row without an integer id is an error (the id is the rowid: it always is);
/// anything else unreadable is a problem of the returned record, which [`Decoded::set_aside`] marks failed.
pub(super) fn decode(row: &Row) -> rusqlite::Result<Decoded> {
    let id: i64 = row.get(0)?;
    let mut p = Vec::new();
    let state = column::<String>(row, 1, "state", &mut p).and_then(|s| {
        let state = JobState::parse(&s);
        if state.is_none() {
            p.push(format!("state: unknown state {}", quote(&s)));
        }
        state
    });
    let request = column::<String>(row, 2, "request", &mut p)
        .and_then(|r| serde_json::from_str::<GenerationRequest>(&r).map_err(|e| p.push(format!("request: {e}"))).ok());
    let seed = column::<i64>(row, 3, "seed", &mut p);
    let created_ms = column::<i64>(row, 4, "created_ms", &mut p);
    let started_ms = column::<Option<i64>>(row, 5, "started_ms", &mut p).flatten();
    let finished_ms = column::<Option<i64>>(row, 6, "finished_ms", &mut p).flatten();
    let output = column::<Option<String>>(row, 7, "output", &mut p).flatten();
    let error_code = column::<Option<String>>(row, 8, "error_code", &mut p).flatten();
    let message = column::<Option<String>>(row, 9, "message", &mut p).flatten();
    let result = column::<Option<String>>(row, 10, "result", &mut p)
        .flatten()
        .and_then(|r| serde_json::from_str::<Outcome>(&r).map_err(|e| p.push(format!("result: {e}"))).ok());
    let mut decoded = Decoded {
        rec: JobRecord {
            id: id as u64,
            state: state.unwrap_or(JobState::Failed),
            request: request.unwrap_or_else(|| GenerationRequest::new("")),
            seed: unsigned(seed).unwrap_or(0),
            created_ms: unsigned(created_ms).unwrap_or(0),
            started_ms: unsigned(started_ms),
            finished_ms: unsigned(finished_ms),
            output: output.map(PathBuf::from),
            error_code,
            message,
            timings: result.map(|r| r.timings).unwrap_or_default(),
        },
        problems: p,
    };
    decoded.set_aside();
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_is_short_and_escaped() {
        assert_eq!(quote("bogus"), "\"bogus\"");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        let long = "x".repeat(100);
        assert_eq!(quote(&long), format!("\"{}\"…", "x".repeat(QUOTE_MAX)));
    }

    #[test]
    fn message_names_every_problem() {
        assert_eq!(corrupt_message(&[]), None);
        let m = corrupt_message(&["state: unknown state \"x\"".into(), "seed: bad".into()]).unwrap();
        assert_eq!(m, "the stored job cannot be read: state: unknown state \"x\"; seed: bad");
    }
}
