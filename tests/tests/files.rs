//! The files a job leaves: never written through a link another user planted, fsynced before the job is
//! recorded, repaired after a crash at any step of placing them (the test daemon's `LTX_TEST_FAULT` stops or
//! fails it there), never a video without its sidecar; and a config or token file others can write refused.
use ltx_e2e::*;
use ltx_protocol::{EventKind, JobState};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Names in `dir` starting with a dot (temporary files).
fn hidden(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with('.')).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn faulty(point_action: &str) -> Daemon {
    Daemon::with(bins!(), Opts { env: vec![("LTX_TEST_FAULT".into(), point_action.into())], ..Opts::default() })
}

/// Waits for `d` to stop itself at its fault point (killed: no exit code).
fn stopped(d: &mut Daemon) {
    let code = d.wait_exit(Duration::from_secs(20));
    assert!(d.child.is_none() && code.is_none(), "the daemon did not stop at the fault point ({code:?})");
}

/// Restarts `d` (which stopped itself at a fault point) without the fault.
fn restart(d: &mut Daemon) {
    if d.child.is_some() {
        stopped(d);
    }
    d.env.retain(|(k, _)| k != "LTX_TEST_FAULT");
    d.spawn();
    d.wait_ready();
}

#[tokio::test]
async fn links_planted_at_the_temporary_names_are_never_followed() {
    let d = Daemon::start(bins!());
    // A shared output directory where another local user planted links at the names the temporary files
    // used to have (`.<name>.<job>.part`, `.<name>.json.part`), pointing at files of the daemon's user.
    let shared = d.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (victim_video, victim_sidecar) = (d.dir.path().join("victim-a"), d.dir.path().join("victim-b"));
    for v in [&victim_video, &victim_sidecar] {
        std::fs::write(v, b"precious").unwrap();
    }
    std::os::unix::fs::symlink(&victim_video, shared.join(".x.mp4.1.part")).unwrap();
    std::os::unix::fs::symlink(&victim_sidecar, shared.join(".x.json.part")).unwrap();
    let mut c = d.client().await;
    let mut r = req("a fox");
    r.output = Some(shared.join("x.mp4"));
    let job = submit(&mut c, r).await;
    assert_eq!(job, 1, "the planted names assume the first job");
    let evs = events(&mut c, job).await;
    assert_eq!(held(&victim_video), "precious", "the video was written through a link");
    assert_eq!(held(&victim_sidecar), "precious", "the sidecar was written through a link");
    let EventKind::Completed { output, .. } = &evs.last().unwrap().kind else { panic!("{evs:?}") };
    assert_eq!(output, &shared.join("x.mp4"));
    let meta = std::fs::symlink_metadata(output).unwrap();
    assert!(meta.is_file(), "the output is a file, not a link");
    assert!(std::fs::read_to_string(output).unwrap().starts_with("ltx test video: job 1"));
    let sidecar: serde_json::Value = serde_json::from_slice(&std::fs::read(shared.join("x.json")).unwrap()).unwrap();
    assert_eq!(sidecar["id"], job);
    assert_eq!((mode(output), mode(&shared.join("x.json"))), (0o644, 0o644));
    // Only the planted links are left among the hidden names.
    assert_eq!(hidden(&shared), [".x.json.part", ".x.mp4.1.part"]);
}

/// Kills the daemon at `point` of placing a job's output, restarts it, and returns the job's record.
async fn crash_at(point: &str) -> (Daemon, ltx_protocol::JobRecord) {
    let mut d = faulty(&format!("{point}:kill"));
    let mut c = d.client().await;
    let mut r = req("a crash");
    r.seed = Some(5);
    let job = submit(&mut c, r).await;
    restart(&mut d);
    let rec = record(&mut d.client().await, job).await;
    (d, rec)
}

#[tokio::test]
async fn a_crash_after_the_video_is_placed_completes_the_job_at_the_next_start() {
    for point in ["output-linked", "output-placed"] {
        let (d, rec) = crash_at(point).await;
        assert_eq!(rec.state, JobState::Completed, "crash at {point}: {rec:?}\n{}", d.stderr());
        let output = rec.output.clone().expect("the output is recorded");
        assert_eq!(output.parent(), Some(d.outputs().as_path()));
        assert!(std::fs::read_to_string(&output).unwrap().contains("seed 5"), "{point}");
        let sidecar: serde_json::Value =
            serde_json::from_slice(&std::fs::read(output.with_extension("json")).unwrap()).expect("sidecar");
        assert_eq!((sidecar["id"].as_u64(), sidecar["seed"].as_u64()), (Some(rec.id), Some(5)), "{point}");
        assert_eq!(hidden(&d.outputs()), Vec::<String>::new(), "crash at {point}: temporary files left");
        assert_eq!(names(&d.outputs()).len(), 2, "{point}: {:?}", names(&d.outputs()));
    }
}

#[tokio::test]
async fn a_crash_before_the_video_is_placed_leaves_no_temporary_file() {
    let mut d = faulty("output-written:kill");
    let mut c = d.client().await;
    let job = submit(&mut c, req("a crash")).await;
    stopped(&mut d);
    let out = d.outputs();
    assert_eq!(hidden(&out).len(), 1, "the engine's file is there: {:?}", hidden(&out));
    // Temporary files that are not this daemon's: another daemon's (other tag), another program's.
    let theirs = [".y.mp4.ltx00000000-1.0123456789abcdef.part", ".y.mp4.part"];
    for n in theirs {
        std::fs::write(out.join(n), b"theirs").unwrap();
    }
    // The crash could as well have come in the middle of rewriting the config or the verified-models record.
    let config_orphan = d.dir.path().join(".config.toml.0123456789abcdef.part");
    let seal_orphan = d.dir.path().join("state/.models-verified.json.0123456789abcdef.part");
    for p in [&config_orphan, &seal_orphan] {
        std::fs::write(p, b"half").unwrap();
    }
    restart(&mut d);
    let rec = record(&mut d.client().await, job).await;
    assert_eq!(rec.state, JobState::Interrupted, "{rec:?}");
    assert_eq!(hidden(&out), theirs, "only this daemon's orphan is removed");
    assert!(!config_orphan.exists() && !seal_orphan.exists(), "config/record orphans left: {}", d.stderr());
    assert_eq!(names(&out).len(), 2, "{:?}", names(&out));
}

#[tokio::test]
async fn a_sidecar_that_cannot_be_written_fails_the_job_and_leaves_nothing() {
    let d = faulty("sidecar-write:enospc");
    let mut c = d.client().await;
    let job = submit(&mut c, req("no room")).await;
    let evs = events(&mut c, job).await;
    let EventKind::Failed { code, message } = &evs.last().unwrap().kind else { panic!("{evs:?}") };
    assert_eq!(code, "output_write");
    assert!(message.contains("sidecar") && message.contains("No space left"), "{message}");
    assert_eq!(record(&mut c, job).await.state, JobState::Failed);
    assert_eq!(names(&d.outputs()), Vec::<String>::new(), "no video without its sidecar, no 0-byte temporary");
}

fn check_config(d: &Daemon) -> (Option<i32>, String) {
    let o =
        d.command().arg("--check-config").stderr(std::process::Stdio::piped()).output().expect("ltxd --check-config");
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_config_or_token_file_others_can_write_is_refused() {
    let d = Daemon::with(bins!(), Opts { start: false, ..Opts::default() });
    assert_eq!(check_config(&d).0, Some(0));
    std::fs::set_permissions(&d.config, std::fs::Permissions::from_mode(0o646)).unwrap();
    let (code, err) = check_config(&d);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("chmod go-w {}", d.config.display())), "{err}");
    std::fs::set_permissions(&d.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    // `huggingface-cli login`'s token file (HOME is the test directory).
    let token: PathBuf = d.dir.path().join(".cache/huggingface/token");
    std::fs::create_dir_all(token.parent().unwrap()).unwrap();
    std::fs::write(&token, "hf_secret\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, err) = check_config(&d);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("chmod go-w {}", token.display())), "{err}");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(check_config(&d).0, Some(0));
}
