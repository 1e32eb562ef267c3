//! `ltxctl` as people expect it (issue 15, friction 9): `queue` and `history` as tables with times, sizes and
//! progress, `history` of finished jobs only, `--limit 0` refused, `ps` sizes, `cancel` naming `--all`,
//! `show`/`open` of the last job, `open` without an opener, `pause`/`resume` saying what they found.
use ltx_e2e::*;
use std::process::Output;
use std::time::Duration;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    stdout(&o)
}

fn json(o: Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).expect("JSON")
}

const SMALL: [&str; 4] = ["--size", "256x256", "--frames", "9"];

fn submit(d: &Daemon, prompt: &str, wait: bool) -> u64 {
    let mut args = vec!["submit", prompt];
    args.extend(SMALL);
    if wait {
        args.push("--wait");
    }
    let o = d.ctl(&args);
    stdout(&o).lines().next().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("{o:?}"))
}

#[test]
fn tables_last_job_defaults_and_what_commands_found() {
    let d = Daemon::start(bins!());
    assert_eq!(ok(d.ctl(&["history"])).trim(), "no finished jobs");
    let done = submit(&d, "a finished fox steps=1", true);
    let failed = submit(&d, "a failing one fail steps=1", true);
    // `show` and `open` without an id: the job that finished last, the last video.
    assert!(ok(d.ctl(&["show"])).starts_with(&format!("job {failed}: failed")));
    let video = json(d.ctl(&["--json", "show", &done.to_string()]))["output"].as_str().expect("video").to_string();
    let bin = d.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // No application to open it with: the path, on stdout.
    let o = d.ctl_cmd(&["open"]).env("PATH", &bin).output().unwrap();
    assert_eq!(ok(o.clone()).trim(), video, "{o:?}");
    assert!(stderr(&o).contains("cannot run"), "{o:?}");
    let o = d.ctl_cmd(&["--json", "open"]).env("PATH", &bin).output().unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(o)).unwrap();
    assert_eq!((v["job"].as_u64(), &v["opened"]), (Some(done), &false.into()), "{v}");
    // An opener there: it gets the video, nothing is printed.
    let opener = bin.join(if cfg!(target_os = "macos") { "open" } else { "xdg-open" });
    let seen = d.dir.path().join("opened");
    std::fs::write(&opener, format!("#!/bin/sh\nprintf '%s' \"$1\" > {}\n", seen.display())).unwrap();
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(ok(d.ctl_cmd(&["open", &done.to_string()]).env("PATH", &bin).output().unwrap()), "");
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), video);
    let o = d.ctl(&["open", &failed.to_string()]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(stderr(&o).contains(&format!("job {failed} has no video (failed)")), "{o:?}");

    // A running job with progress, and one pending behind it.
    let slow = submit(&d, "a slow one steps=400 ms=50", false);
    let pending = submit(&d, "a waiting one steps=1", false);
    let t = std::time::Instant::now();
    while json(d.ctl(&["--json", "queue"]))["progress"]["step"].as_u64().unwrap_or(0) < 2 {
        assert!(t.elapsed() < Duration::from_secs(20), "no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    let q = ok(d.ctl(&["queue"]));
    let lines: Vec<&str> = q.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("SUBMITTED") && lines[0].contains("PROGRESS"), "{q}");
    let row = |id: u64| lines.iter().find(|l| l.starts_with(&format!("{id} "))).unwrap_or_else(|| panic!("{id}: {q}"));
    let running = row(slow);
    assert!(running.contains("running") && running.contains("256x256×9") && running.contains(" s ago"), "{q}");
    assert!(running.contains("denoising (stage 1) ") && running.contains("/400"), "{q}");
    assert!(row(pending).contains("pending") && row(pending).contains("#1 in line"), "{q}");
    assert!(ok(d.ctl(&["show"])).starts_with(&format!("job {slow}: running")), "show: the running job");

    // history: finished jobs only, as a table.
    let h = ok(d.ctl(&["history"]));
    let header = h.lines().next().unwrap();
    for col in ["ID", "STATE", "SUBMITTED", "FINISHED", "TOOK", "SIZE", "PROMPT", "OUTPUT"] {
        assert!(header.contains(col), "{col}: {h}");
    }
    let ids: Vec<u64> = h.lines().skip(1).filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    assert_eq!(ids, [failed, done], "{h}");
    assert!(h.contains("256x256×9") && h.contains(&video) && h.contains("the test engine was asked to fail"), "{h}");
    let o = d.ctl(&["history", "--limit", "0"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(stderr(&o).contains("0 is not in 1..=1000"), "{o:?}");

    // ps: sizes in bytes people read (the test engine's transformer is 1 GiB).
    let ps = ok(d.ctl(&["ps"]));
    assert!(ps.starts_with("NAME") && ps.contains("transformer") && ps.contains("1.1 GB"), "{ps}");
    assert!(!ps.contains("0MB"), "{ps}");

    // cancel without an id names --all.
    let o = d.ctl(&["cancel"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(stderr(&o).contains("--all"), "{o:?}");

    // pause / resume say what they found.
    assert!(ok(d.ctl(&["resume"])).contains("not paused"));
    assert_eq!(
        json(d.ctl(&["--json", "resume"])),
        serde_json::json!({"schema": 1, "paused": false, "was_paused": false})
    );
    assert!(ok(d.ctl(&["pause"])).starts_with("queue paused"));
    assert!(ok(d.ctl(&["pause"])).contains("already paused"));
    assert!(ok(d.ctl(&["resume"])).contains("queue resumed"));
    assert!(ok(d.ctl(&["cancel", "--all"])).contains(&slow.to_string()));
}

/// Every subcommand's help says what each of its options is for.
#[test]
fn help_for_every_flag_people_asked_about() {
    let d = Daemon::start(bins!());
    let help = |args: &[&str]| ok(d.ctl(&[args, &["--help"]].concat()));
    let submit = help(&["submit"]);
    for flag in ["--negative", "--fps", "--strength", "--no-audio"] {
        let line = submit.lines().skip_while(|l| !l.trim_start().starts_with(flag)).nth(1).unwrap_or_default();
        assert!(!line.trim().is_empty() && !line.trim_start().starts_with("--"), "{flag} has no help:\n{submit}");
    }
    assert!(help(&[]).contains("5 detached"), "the exit codes");
    assert!(help(&["resume"]).contains("Run the queue again"));
    assert!(help(&["daemon"]).contains("status") && help(&["daemon", "status"]).contains("Whether ltxd runs"));
    let load = help(&["load"]);
    assert!(load.contains("The weights to load") && load.contains("How long it stays loaded"), "{load}");
}
