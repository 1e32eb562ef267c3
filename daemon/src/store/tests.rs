//! The store against real database files.
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
    assert_eq!(s.claim_next().unwrap().job.unwrap().id, c);
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
    let done = s.claim_next().unwrap().job.unwrap().id;
    assert!(s.finish(done, JobState::Completed, Some(Path::new("/o/a.mp4")), None, Some(&outcome(&timings))).unwrap());
    let failed = s.claim_next().unwrap().job.unwrap().id;
    assert!(s.finish(failed, JobState::Failed, None, Some(("oom", "out of memory")), None).unwrap());
    // Completed after a shutdown marked it interrupted: the timings are kept too.
    let late = s.claim_next().unwrap().job.unwrap().id;
    assert!(s.interrupt(late, "shutdown").unwrap());
    assert!(s
        .finish(late, JobState::Completed, Some(Path::new("/o/b.mp4")), None, Some(&outcome(&timings[1..])))
        .unwrap());
    assert_eq!(s.get(done).unwrap().unwrap().timings, timings);
    assert_eq!(s.get(failed).unwrap().unwrap().timings, []);
    assert_eq!(s.get(late).unwrap().unwrap().timings, timings[1..]);
    let history: Vec<_> = s.history(10).unwrap().into_iter().map(|r| (r.id, r.timings.len())).collect();
    assert_eq!(history, [(late, 1), (failed, 0), (done, 2)]);
}

fn outcome(timings: &[(String, u64)]) -> Outcome {
    Outcome { timings: timings.to_vec(), stages: Vec::new() }
}

#[test]
fn samples_are_the_completed_jobs_with_a_stage_timeline_newest_first() {
    use crate::eta::StageTime;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("jobs.db")).unwrap();
    let sql = |s: &Store, q: &str, id: JobId| s.db.execute(q, [id as i64]).unwrap();
    let stages = |ms| vec![StageTime { stage: "denoising:1".into(), ms, steps: 4 }];
    let mut ids = Vec::new();
    for (i, prompt) in ["old", "a", "b", "failed", "garbled"].into_iter().enumerate() {
        queued(s.insert(&GenerationRequest::new(prompt), i as u64, false, 8).unwrap());
        let id = s.claim_next().unwrap().job.unwrap().id;
        let out = Outcome { timings: vec![], stages: if prompt == "old" { vec![] } else { stages(i as u64) } };
        match prompt {
            "failed" => assert!(s.finish(id, JobState::Failed, None, Some(("x", "y")), None).unwrap()),
            _ => assert!(s.finish(id, JobState::Completed, Some(Path::new("/o/v.mp4")), None, Some(&out)).unwrap()),
        }
        // Finished one after the other, a millisecond apart at least.
        sql(&s, "UPDATE jobs SET finished_ms = ?1 WHERE id = ?1", id);
        ids.push(id);
    }
    sql(&s, "UPDATE jobs SET result = '{\"stages\": 3}' WHERE id = ?1", ids[4]);
    let got: Vec<_> = s.samples(10).unwrap().into_iter().map(|x| x.stages).collect();
    assert_eq!(got, [stages(2), stages(1)]);
    assert_eq!(s.samples(1).unwrap().len(), 1);
}

fn queued(i: Insert) -> JobId {
    match i {
        Insert::Queued { id, .. } => id,
        Insert::Full => panic!("full"),
    }
}

/// A job of each state, each row then damaged in one column the way a bad write or a hand edit would.
#[test]
fn unreadable_rows_are_set_aside_and_never_stop_the_queue_or_the_listings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let mut s = Store::open(&path).unwrap();
    let req = GenerationRequest::new("a");
    let ids: Vec<JobId> = (0..6).map(|i| queued(s.insert(&req, i, false, 8).unwrap())).collect();
    let [bad_json, bad_state, bad_result, bad_seed, done, good] = ids[..] else { unreachable!() };
    let claimed = s.claim_next().unwrap().job.unwrap().id;
    assert_eq!(claimed, bad_json);
    assert!(s
        .finish(claimed, JobState::Completed, Some(Path::new("/o/a.mp4")), None, Some(&Outcome::default()))
        .unwrap());
    let sql = |s: &Store, q: &str, id: JobId| s.db.execute(q, [id as i64]).unwrap();
    // bad_json: back to pending with a request that is not JSON; done: completed, result not the timings.
    sql(&s, "UPDATE jobs SET state = 'pending', request = '{\"prompt\": ' WHERE id = ?1", bad_json);
    sql(&s, "UPDATE jobs SET state = 'exploded\nERROR' WHERE id = ?1", bad_state);
    sql(&s, "UPDATE jobs SET result = '{\"timings\": 3}' WHERE id = ?1", bad_result);
    sql(&s, "UPDATE jobs SET seed = 'many' WHERE id = ?1", bad_seed);
    sql(&s, "UPDATE jobs SET state = 'completed', result = 'nope', finished_ms = 'later' WHERE id = ?1", done);

    // Every listing reads; the unreadable rows read as failed corrupt_record, naming the column.
    let pending: Vec<_> = s.pending().unwrap().into_iter().map(|r| (r.id, r.state)).collect();
    let f = JobState::Failed;
    assert_eq!(pending, [(bad_json, f), (bad_result, f), (bad_seed, f), (good, JobState::Pending)]);
    let history = s.history(10).unwrap();
    assert_eq!(history.iter().map(|r| r.id).collect::<Vec<_>>(), [done, bad_state], "{history:?}");
    let expect = [
        (bad_json, "request: EOF while parsing"),
        (bad_state, "state: unknown state \"exploded\\nERROR\""),
        (bad_result, "result: invalid type: integer `3`"),
        (bad_seed, "seed: Invalid column type Text"),
        (done, "result: expected ident"),
    ];
    for (id, what) in expect {
        let r = s.get(id).unwrap().unwrap();
        assert_eq!((r.state, r.error_code.as_deref()), (f, Some("corrupt_record")), "{r:?}");
        let m = r.message.unwrap();
        assert!(m.starts_with("the stored job cannot be read: ") && m.contains(what), "{id}: {m}");
    }
    assert!(s.get(done).unwrap().unwrap().message.unwrap().contains("finished_ms: Invalid column type Text"));

    // The scheduler's pick sets the unreadable pending rows aside and claims the good one.
    let claim = s.claim_next().unwrap();
    assert_eq!(claim.job.map(|j| j.id), Some(good));
    let set_aside: Vec<_> = claim.quarantined.iter().map(|q| q.0).collect();
    assert_eq!(set_aside, [bad_json, bad_result, bad_seed]);
    assert!(claim.quarantined[0].1.contains("request: EOF while parsing"), "{:?}", claim.quarantined);
    assert!(s.claim_next().unwrap().job.is_none());
    // Persisted: the rows are `failed` now, with the message and a finish time.
    let (state, code, message, finished): (String, String, String, i64) = s
        .db
        .query_row("SELECT state, error_code, message, finished_ms FROM jobs WHERE id = ?1", [bad_json as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!((state.as_str(), code.as_str()), ("failed", "corrupt_record"));
    assert!(message.contains("request") && finished > 0, "{message}");

    // At start: the rows not set aside yet (here the finished ones) are, once.
    let marked: Vec<_> = s.quarantine().unwrap().into_iter().map(|q| q.0).collect();
    assert_eq!(marked, [bad_state, done]);
    assert!(s.quarantine().unwrap().is_empty());
    assert_eq!(s.history(10).unwrap().len(), 5);
}

#[test]
fn a_pending_job_whose_input_is_gone_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("jobs.db")).unwrap();
    let mut req = GenerationRequest::new("a");
    req.image = Some(ltx_protocol::ImageInput { name: "f.png".into(), bytes: b"png bytes".to_vec(), strength: 1.0 });
    let lost = queued(s.insert(&req, 1, false, 8).unwrap());
    req.image.as_mut().unwrap().bytes = b"other".to_vec();
    let kept = queued(s.insert(&req, 2, false, 8).unwrap());
    std::fs::remove_file(dir.path().join("inputs").join(inputs::hash(b"png bytes"))).unwrap();
    let claim = s.claim_next().unwrap();
    let job = claim.job.unwrap();
    assert_eq!((job.id, &job.request.image.unwrap().bytes[..]), (kept, &b"other"[..]));
    assert_eq!(claim.quarantined.len(), 1);
    let (id, message) = &claim.quarantined[0];
    assert_eq!(*id, lost);
    assert!(message.contains("first-frame image: ") && message.contains("missing"), "{message}");
    let r = s.get(lost).unwrap().unwrap();
    assert_eq!((r.state, r.message.as_ref()), (JobState::Failed, Some(message)));
}

#[test]
fn inputs_are_files_by_hash_pruned_oldest_first_but_never_a_pending_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let cap = InputCap { max_bytes: 10, max_age: std::time::Duration::from_secs(3600) };
    let mut s = Store::open(&dir.path().join("jobs.db")).unwrap().with_input_cap(cap);
    let image = |b: &[u8]| {
        let mut r = GenerationRequest::new("a");
        r.image = Some(ltx_protocol::ImageInput { name: "f.png".into(), bytes: b.to_vec(), strength: 1.0 });
        r
    };
    let file = |b: &[u8]| dir.path().join("inputs").join(inputs::hash(b));
    let a = queued(s.insert(&image(b"aaaaaa"), 1, false, 8).unwrap());
    // The row holds the hash, not the bytes; the same image twice is one file.
    let (input, blob): (String, Option<Vec<u8>>) =
        s.db.query_row("SELECT input, image FROM jobs WHERE id = ?1", [a as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
    assert_eq!((input, blob), (inputs::hash(b"aaaaaa"), None));
    let a2 = queued(s.insert(&image(b"aaaaaa"), 2, false, 8).unwrap());
    // Over the cap (12 > 10), but both jobs are pending: nothing goes.
    let b = queued(s.insert(&image(b"bbbbbb"), 3, false, 8).unwrap());
    assert!(file(b"aaaaaa").exists() && file(b"bbbbbb").exists());
    for id in [a, a2] {
        assert_eq!(s.claim_next().unwrap().job.unwrap().id, id);
        assert!(s.finish(id, JobState::Completed, None, None, None).unwrap());
    }
    // a's jobs ended: its input is the oldest one no pending job needs, and it goes.
    assert!(!file(b"aaaaaa").exists());
    assert!(file(b"bbbbbb").exists());
    let job = s.claim_next().unwrap().job.unwrap();
    assert_eq!((job.id, &job.request.image.unwrap().bytes[..]), (b, &b"bbbbbb"[..]));
    // A finished job's input may be gone: its record still reads.
    assert_eq!(s.get(a).unwrap().unwrap().state, JobState::Completed);
}

#[test]
fn a_damaged_file_is_refused_with_its_path_and_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let mut s = Store::open(&path).unwrap();
    let req = GenerationRequest::new("a long prompt ".repeat(200));
    for i in 0..40 {
        queued(s.insert(&req, i, false, 100).unwrap());
    }
    s.checkpoint().unwrap();
    drop(s);
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 8 * page, "{}", bytes.len());
    bytes[page..3 * page].fill(0x5a);
    std::fs::write(&path, &bytes).unwrap();
    let e = Store::open(&path).err().expect("a damaged database must be refused");
    assert!(matches!(e, StoreError::Damaged { .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains(&format!("the job database {} is damaged", path.display())), "{m}");
    assert!(m.contains("backup") && m.contains("-wal"), "{m}");
    // Not a database at all: the same refusal.
    std::fs::write(&path, b"this is not sqlite, just text long enough to have a header of sorts........").unwrap();
    assert!(matches!(Store::open(&path), Err(StoreError::Damaged { .. })));
}

#[test]
fn checkpoint_leaves_every_job_in_the_main_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let mut s = Store::open(&path).unwrap();
    for i in 0..60 {
        queued(s.insert(&GenerationRequest::new("a"), i, false, 100).unwrap());
    }
    s.checkpoint().unwrap();
    assert_eq!(std::fs::metadata(dir.path().join("jobs.db-wal")).unwrap().len(), 0);
    // A copy of the main file alone, as a backup tool would take while the daemon still runs.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let db = Connection::open(&copy).unwrap();
    assert_eq!(db.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get::<_, u32>(0)).unwrap(), 60);
}
