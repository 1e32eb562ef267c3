//! `ltxctl` end to end: output formats, exit codes, Ctrl-C detach, daemon start/stop.
use ltx_e2e::*;
use std::process::{Output, Stdio};
use std::time::Duration;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn submit_wait_plain_and_json_and_listings() {
    let d = Daemon::start(bins!());
    let o = d.ctl(&["submit", "a boat at dusk steps=2", "--size", "256x256", "--frames", "9", "--seed", "5", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    let mut lines = out.lines();
    let id: u64 = lines.next().unwrap().parse().unwrap();
    assert!(out.contains(&format!("job {id}: denoising (stage 1) step 2/2")), "{out}");
    assert!(out.contains("completed: ") && out.contains("seed 5"), "{out}");

    let o = d.ctl(&["--json", "submit", "json please steps=1", "--size", "256x256", "--frames", "9", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let values: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let job = values[0]["job"].as_u64().unwrap();
    assert!(values[1..].iter().all(|v| v["job"] == job));
    assert!(values.iter().all(|v| v["schema"] == 1), "{values:?}");
    let last = values.last().unwrap();
    assert!(last["event"] == "completed" && last["output"].is_string(), "{values:?}");

    let h: serde_json::Value = serde_json::from_slice(&d.ctl(&["--json", "history", "--limit", "1"]).stdout).unwrap();
    let h = h["jobs"].as_array().unwrap();
    assert_eq!((h.len(), h[0]["id"].as_u64()), (1, Some(job)));
    let q: serde_json::Value = serde_json::from_slice(&d.ctl(&["--json", "queue"]).stdout).unwrap();
    assert_eq!(q["pending"].as_array().unwrap().len(), 0);
    let s: serde_json::Value = serde_json::from_slice(&d.ctl(&["--json", "status"]).stdout).unwrap();
    assert_eq!(s["pid"].as_u64(), Some(u64::from(d.pid())));
    // This machine has no GPU: the engine reports MLX's CPU backend computing in f32.
    assert!(s["compute"].as_str().is_some_and(|c| c.starts_with("cpu f32, MLX 0.32.2")), "{s}");
    let show = d.ctl(&["show", &id.to_string()]);
    assert!(stdout(&show).contains("completed") && stdout(&show).contains("seed 5"), "{show:?}");
    assert!(stdout(&show).contains("timings:  total "), "{show:?}");
    let shown: serde_json::Value = serde_json::from_slice(&d.ctl(&["--json", "show", &id.to_string()]).stdout).unwrap();
    assert!(shown["timings_ms"]["total"].is_u64(), "{shown}");
    let ps = d.ctl(&["--json", "ps"]);
    assert_eq!(ps.status.code(), Some(0));
    assert!(d.ctl(&["load", "--variant", "dev", "--keep-alive", "5m"]).status.success());
    assert!(stdout(&d.ctl(&["ps"])).contains("dev"));
    assert!(d.ctl(&["unload"]).status.success());
    let comp = d.ctl(&["completions", "bash"]);
    assert!(comp.status.success() && stdout(&comp).contains("ltxctl"));
}

#[test]
fn exit_codes() {
    let d = Daemon::with(bins!(), Opts { extra_config: "queue_size = 1".into(), ..Opts::default() });
    // 1: the job failed.
    let o = d.ctl(&["submit", "x fail", "--size", "256x256", "--frames", "9", "--wait"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stderr(&o).contains("denoise_failed"));
    // 4: invalid request, caught before sending (same validation as the daemon).
    let o = d.ctl(&["submit", "x", "--frames", "10"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(stderr(&o).contains("frames must be 8k+1 from 9 to 257"), "{}", stderr(&o));
    let o = d.ctl(&["submit", "x", "--image", "/nonexistent.png"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("cannot read the image /nonexistent.png"));
    // 2: cancelled while following.
    let gate = d.gate("g");
    let follower = d
        .ctl_cmd(&["submit", &format!("held gate={}", gate.display()), "--size", "256x256", "--frames", "9", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_running(&d);
    // 4: busy (one running, one pending fills queue_size = 1).
    assert!(d.ctl(&["submit", "p", "--size", "256x256", "--frames", "9"]).status.success());
    let o = d.ctl(&["submit", "q", "--size", "256x256", "--frames", "9"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(stderr(&o).contains("queue is full"));
    assert!(d.ctl(&["cancel", &id.to_string()]).status.success());
    let o = follower.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    // 4: unknown job.
    assert_eq!(d.ctl(&["show", "999"]).status.code(), Some(4));
    // 3: no daemon there.
    let o = std::process::Command::new(&d.bins.ctl)
        .args(["--socket", "/nonexistent/ltxd.sock", "status"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("ltxctl daemon start"));
}

/// Waits until some job is running; returns its id.
fn wait_running(d: &Daemon) -> u64 {
    let t = std::time::Instant::now();
    loop {
        let q: serde_json::Value = serde_json::from_slice(&d.ctl(&["--json", "queue"]).stdout).unwrap();
        if let Some(id) = q["running"]["id"].as_u64() {
            return id;
        }
        assert!(t.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_without_a_terminal_detaches_and_the_job_continues() {
    let d = Daemon::start(bins!());
    let gate = d.gate("g");
    let follower = d
        .ctl_cmd(&["submit", &format!("held gate={}", gate.display()), "--size", "256x256", "--frames", "9", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut follower = follower;
    let id = wait_running(&d);
    // The first progress line is printed after ltxctl has taken over Ctrl-C.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(follower.stdout.take().unwrap()));
    assert!(lines.any(|l| l.unwrap().starts_with(&format!("job {id}: "))));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(follower.id() as i32, libc::SIGINT) };
    let o = follower.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(i32::from(ltx_client::EXIT_DETACHED)), "detaching has its own code: {o:?}");
    assert_eq!(ltx_client::EXIT_DETACHED, 5, "the documented code");
    assert!(stderr(&o).contains("detached"), "{o:?}");
    open_gate(&gate);
    let o = d.ctl(&["follow", &id.to_string()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("completed: "));
}

/// `follow --preview`: with --json the preview events come (previews were asked for); without a terminal that
/// draws images, previews are off, said once, and the follow goes on.
#[test]
fn follow_preview_streams_previews_or_says_they_are_off() {
    let d = Daemon::start(bins!());
    let gate = d.gate("g");
    let o = d.ctl(&["submit", &format!("held steps=4 gate={}", gate.display()), "--size", "256x256", "--frames", "9"]);
    let id = stdout(&o).trim().to_string();
    let mut follower = d
        .ctl_cmd(&["--json", "follow", &id, "--preview"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(follower.stdout.take().unwrap()));
    // The job's state first: the subscription is in place before the job moves.
    assert!(lines.next().unwrap().unwrap().contains(&id));
    let mut plain = d.ctl_cmd(&["follow", &id, "--preview"]);
    let plain = plain.env("TERM", "xterm-kitty").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    open_gate(&gate);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let previews = rest.iter().filter(|l| l.contains("\"preview\"")).count();
    assert_eq!(previews, 2, "steps 2 and 4: {rest:?}");
    assert_eq!(follower.wait().unwrap().code(), Some(0));
    let o = plain.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stderr(&o).contains("previews are off"), "{o:?}");
    assert!(!stdout(&o).contains('\x1b'), "no escape sequences into a pipe: {o:?}");
}

#[test]
fn daemon_start_stop_status() {
    let d = Daemon::with(bins!(), Opts { start: false, ..Opts::default() });
    let run =
        |args: &[&str]| d.ctl_cmd(args).env("LTXD_BIN", &d.bins.daemon).env("LTX_CONFIG", &d.config).output().unwrap();
    let o = run(&["daemon", "status"]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let o = run(&["daemon", "start"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("ltxd started"), "{o:?}");
    let o = run(&["daemon", "start"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("already running"), "{o:?}");
    assert_eq!(run(&["daemon", "status"]).status.code(), Some(0));
    let o = run(&["daemon", "stop"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(!d.socket.exists());
    let o = run(&["daemon", "stop"]);
    assert!(stdout(&o).contains("not running"));
}

/// `submit --wait` on a terminal, as a person runs it.
fn on_a_terminal(d: &Daemon, prompt: &str) -> ltx_e2e::pty::Pty {
    let mut c = d.ctl_cmd(&["submit", prompt, "--size", "256x256", "--frames", "9", "--wait"]);
    c.env("TERM", "xterm-256color");
    ltx_e2e::pty::Pty::spawn(c)
}

const QUESTION: &str = "Ctrl-C: cancel job";

/// Ctrl-C while following on a terminal: the question stays on the screen while the bar's spinner goes on
/// ticking (it was erased by the next redraw at once), "c" cancels the job (exit 2), Enter detaches (exit 5),
/// and a second Ctrl-C detaches (exit 5); a detached job runs on.
#[test]
fn ctrl_c_on_a_terminal_asks_keeps_the_question_and_a_second_ctrl_c_detaches() {
    let d = Daemon::start(bins!());
    let gate = d.gate("g");
    let held = format!("held gate={}", gate.display());
    let long = Duration::from_secs(20);
    let asked = |t: &mut ltx_e2e::pty::Pty| {
        t.wait_screen("the bar", long, |l| l.contains(" job ") && l.contains(": "));
        t.send(b"\x03");
        t.wait_screen("the question", long, |l| l.starts_with(QUESTION));
        // The spinner ticks every 120 ms: a second later the question is still there, whole.
        std::thread::sleep(Duration::from_secs(1));
        let screen = t.screen();
        assert!(
            screen.iter().any(|l| l.starts_with(QUESTION) && l.ends_with("(default; Ctrl-C again):")),
            "the question was drawn over:\n{}",
            screen.join("\n")
        );
    };

    let mut t = on_a_terminal(&d, &held);
    asked(&mut t);
    t.send(b"c\r");
    let code = t.wait(long);
    let screen = t.screen().join("\n");
    assert_eq!(code, Some(2), "cancelled:\n{screen}");
    assert!(screen.contains("cancelling job") && screen.contains("cancelled"), "{screen}");
    assert!(screen.contains(QUESTION), "the question is still on the screen after the answer:\n{screen}");

    let mut t = on_a_terminal(&d, &held);
    asked(&mut t);
    t.send(b"\x03");
    let code = t.wait(long);
    let screen = t.screen().join("\n");
    assert_eq!(code, Some(i32::from(ltx_client::EXIT_DETACHED)), "a second Ctrl-C detaches:\n{screen}");
    assert!(screen.contains("detached; job") && screen.contains(QUESTION), "{screen}");

    let mut t = on_a_terminal(&d, &format!("{held} third"));
    asked(&mut t);
    t.send(b"\r");
    let code = t.wait(long);
    let screen = t.screen().join("\n");
    assert_eq!(code, Some(i32::from(ltx_client::EXIT_DETACHED)), "Enter detaches:\n{screen}");

    // The detached jobs ran on.
    open_gate(&gate);
    // A fresh daemon numbers its jobs from 1: the cancelled one, then the two detached.
    for id in [2, 3] {
        let o = d.ctl(&["follow", &id.to_string()]);
        assert_eq!(o.status.code(), Some(0), "job {id} completes: {o:?}");
    }
}

/// The refusal an older daemon writes, byte by byte, so this test breaks if today's types stop reading it: the
/// frame's length, `ServerMsg::Error` (variant 3), `DaemonError::VersionMismatch` (variant 0: it stays first so
/// every version reads it), the client's and the daemon's protocol versions, the daemon's version string (bincode
/// standard: varints, one byte below 251; a string is its length, then its bytes).
fn old_refusal(client: u32, daemon: u32, daemon_version: &str) -> Vec<u8> {
    assert!(client < 251 && daemon < 251 && daemon_version.len() < 251, "one-byte varints");
    let mut payload = vec![3, 0, client as u8, daemon as u8, daemon_version.len() as u8];
    payload.extend(daemon_version.as_bytes());
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend(payload);
    frame
}

/// An older `ltxd` still running after an update: a fake that speaks the frame format, reads `Hello` and refuses
/// it with the `VersionMismatch` of its older protocol. Every ltxctl command that reaches it says so, with both
/// versions and the command that restarts it, and exits 3 (daemon unavailable); `daemon start` does not spawn a
/// second daemon beside it.
#[test]
fn an_older_running_daemon_is_named_with_both_versions_and_the_restart_command() {
    use ltx_protocol::{frame, ClientMsg, DaemonError, ServerMsg, PROTOCOL_VERSION, VERSION};
    use std::io::{Read, Write};
    const OLD_VERSION: &str = "0.0.9-old";
    let old_protocol = PROTOCOL_VERSION - 1;
    assert_eq!(
        old_refusal(PROTOCOL_VERSION, old_protocol, OLD_VERSION),
        frame::encode(&ServerMsg::Error(DaemonError::VersionMismatch {
            client: PROTOCOL_VERSION,
            daemon: old_protocol,
            daemon_version: OLD_VERSION.into(),
        }))
        .unwrap(),
        "today's types encode an older daemon's refusal differently: older daemons could no longer say why"
    );
    let dir = tempfile::Builder::new().prefix("ltx-e2e-old-").tempdir().unwrap();
    let socket = dir.path().join("ltxd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).is_err() {
                continue;
            }
            let mut payload = vec![0u8; u32::from_le_bytes(len) as usize];
            if s.read_exact(&mut payload).is_err() {
                continue;
            }
            let Ok(ClientMsg::Hello(hello)) = frame::decode_payload::<ClientMsg>(&payload) else { continue };
            let _ = s.write_all(&old_refusal(hello.protocol_version, old_protocol, OLD_VERSION));
        }
    });
    let ctl = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ltxctl-e2e"))
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .env("HOME", dir.path())
            .env_remove("LTX_SOCKET")
            // Were `daemon start` to spawn one, it would fail naming this path.
            .env("LTXD_BIN", "/nonexistent/ltxd")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    assert_eq!(ltx_client::EXIT_UNAVAILABLE, 3, "the documented code: 3 daemon unavailable");
    for args in
        // `daemon stop` too: what answers here is this test process, not an ltxd, so nothing is signalled.
        [
            &["status"][..],
            &["submit", "x", "--size", "256x256", "--frames", "9", "--wait"],
            &["daemon", "start"],
            &["daemon", "stop"],
        ]
    {
        let o = ctl(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {o:?}");
        assert!(err.contains(&format!("ltxd {OLD_VERSION} speaks protocol v{old_protocol}")), "{args:?}: {err}");
        assert!(err.contains(&format!("ltxctl {VERSION} speaks protocol v{PROTOCOL_VERSION}")), "{args:?}: {err}");
        assert!(
            err.contains("older") && err.contains("`ltxctl daemon stop && ltxctl daemon start`"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("/nonexistent/ltxd"), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}: {o:?}");
    }
}

/// `daemon stop` returns once ltxd has exited, not when its socket goes: a running job keeps it up for the
/// shutdown grace, and a `daemon start` right after must find the state directory free. `restart` does both.
#[test]
fn daemon_stop_waits_for_the_exit_and_restart_comes_back() {
    let d = Daemon::with(bins!(), Opts { start: false, ..Opts::default() });
    let run =
        |args: &[&str]| d.ctl_cmd(args).env("LTXD_BIN", &d.bins.daemon).env("LTX_CONFIG", &d.config).output().unwrap();
    assert_eq!(run(&["daemon", "start"]).status.code(), Some(0));
    let gate = d.gate("never");
    let o = run(&["submit", &format!("held gate={}", gate.display()), "--size", "256x256", "--frames", "9"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let id: u64 = stdout(&o).trim().parse().unwrap_or_else(|e| panic!("{e}: {o:?}"));
    wait_running(&d);
    let o = run(&["--json", "daemon", "stop"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stderr(&o).contains(&format!("job {id} is running; stopping ltxd marks it interrupted")), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pid = v["pid"].as_u64().expect("the stopped daemon's pid") as i32;
    assert_eq!(v["interrupted"].as_u64(), Some(id), "{v}");
    // SAFETY: signal 0 only asks whether the process exists.
    assert!(unsafe { libc::kill(pid, 0) } != 0, "ltxd {pid} still runs after `daemon stop` returned");
    let o = run(&["daemon", "start"]);
    assert_eq!(o.status.code(), Some(0), "start right after stop: {o:?}");
    let o = run(&["daemon", "restart"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("ltxd stopped") && stdout(&o).contains("ltxd started"), "{o:?}");
    let o = run(&["--json", "show", &id.to_string()]);
    let rec: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rec["state"], "interrupted", "{rec}");
    assert_eq!(run(&["daemon", "stop"]).status.code(), Some(0));
}

/// Something that accepts on the socket and never answers (a wedged daemon, a socket activator with nothing
/// behind it): ltxctl gives up after its handshake timeout with a message that says so, instead of hanging.
#[test]
fn a_daemon_that_never_answers_times_out_with_a_clear_message() {
    let dir = tempfile::Builder::new().prefix("ltx-e2e-mute-").tempdir().unwrap();
    let socket = dir.path().join("ltxd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // Accepts and holds every connection, reads nothing, writes nothing.
    std::thread::spawn(move || {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept() {
            conns.push(c);
        }
    });
    let t = std::time::Instant::now();
    let o = std::process::Command::new(bins!().ctl)
        .arg("--socket")
        .arg(&socket)
        .arg("status")
        .env("HOME", dir.path())
        .env_remove("LTX_SOCKET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = t.elapsed();
    assert_ne!(o.status.code(), Some(0), "{o:?}");
    let err = stderr(&o);
    assert!(err.contains("did not answer the connection and handshake within 10 s"), "{err}");
    assert!(took >= Duration::from_secs(10) && took < Duration::from_secs(14), "{took:?}");
}

/// A stdout whose reader is gone: the write end of a pipe whose read end is already closed.
fn closed_pipe() -> Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: `pipe` fills both descriptors, each then owned once.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    writer.into()
}

/// Ended by itself (not a signal, not a panic's 101), with 0 and nothing on stderr.
fn assert_quiet(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(0), "{what}: {o:?}");
    assert_eq!(stderr(o), "", "{what}");
}

/// `ltxctl history | head -1` and the like: the reader goes before ltxctl writes (deterministically: the pipe's
/// read end is closed from the start), and once while a followed job still sends events.
#[test]
fn a_reader_closing_stdout_early_ends_the_command_quietly() {
    let d = Daemon::start(bins!());
    for p in ["one steps=1", "two steps=1"] {
        assert!(d.ctl(&["submit", p, "--size", "256x256", "--frames", "9", "--wait"]).status.success());
    }
    assert!(d.ctl(&["load", "--variant", "dev"]).status.success());
    let commands = [
        &["history"][..],
        &["--json", "history"],
        &["completions", "zsh"],
        &["queue"],
        &["status"],
        &["show", "1"],
        &["ps"],
        &["--help"],
        &["follow", "1"],
    ];
    for args in commands {
        let o = d.ctl_cmd(args).stdout(closed_pipe()).stderr(Stdio::piped()).output().unwrap();
        assert_quiet(&o, &args.join(" "));
    }
    // As typed in a shell: the first line, and ltxctl's own exit status 0.
    for args in ["history", "completions zsh", "--json history"] {
        let line = format!(
            "{} --socket {} {args} | head -1; exit ${{PIPESTATUS[0]}}",
            d.bins.ctl.display(),
            d.socket.display()
        );
        let o = std::process::Command::new("bash").args(["-c", &line]).env("HOME", d.dir.path()).output().unwrap();
        assert_quiet(&o, &line);
        assert_eq!(stdout(&o).lines().count(), 1, "{line}: {o:?}");
    }
    // `ltxctl --json follow 7 | head -1`: the reader takes one line and goes; the job's next events find it gone.
    let gate = d.gate("g");
    let o = d.ctl(&["submit", &format!("held gate={}", gate.display()), "--size", "256x256", "--frames", "9"]);
    let id = stdout(&o).trim().to_string();
    let mut follower =
        d.ctl_cmd(&["--json", "follow", &id]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(follower.stdout.take().unwrap()));
    assert!(lines.next().unwrap().unwrap().contains(&id));
    drop(lines);
    open_gate(&gate);
    let o = follower.wait_with_output().unwrap();
    assert_quiet(&o, "--json follow");
}

/// What `submit` refuses is said with the range the rule table gives the pipeline and the nearest values it
/// takes; `--help` says the same ranges; `--strength` needs `--image`; `-o` into a missing directory is refused
/// and the directory is not made.
#[test]
fn validation_messages_come_from_the_rule_table_with_the_nearest_values() {
    let d = Daemon::start(bins!());
    let refused = |args: &[&str], want: &str| {
        let o = d.ctl(&[&["submit", "a fox"], args].concat());
        assert_eq!(o.status.code(), Some(4), "{args:?}: {o:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("8k+1; got") && !stderr(&o).contains("panicked"), "{}", stderr(&o));
    };
    let frames = "frames must be 8k+1 from 9 to 257 (9, 17, …, 257); got";
    refused(&["--frames", "2001"], &format!("{frames} 2001 (nearest: 257)"));
    refused(&["--frames", "1"], &format!("{frames} 1 (nearest: 9)"));
    refused(&["--frames", "96"], &format!("{frames} 96 (nearest: 89 or 97)"));
    refused(
        &["--size", "288x512"],
        "width must be a multiple of 64 from 64 to 2048 for the distilled pipeline; got 288 (nearest: 256 or 320)",
    );
    refused(&["--strength", "0.5"], "--image");
    let missing = d.dir.path().join("no/such/dir");
    refused(
        &["-o", missing.join("x.mp4").to_str().unwrap()],
        &format!("output directory {} does not exist", missing.display()),
    );
    assert!(!d.dir.path().join("no").exists(), "the missing directory was created");
    // The same 288 is a size one-stage takes (÷32), and the help says which pipeline takes which.
    let o =
        d.ctl(&["submit", "a fox", "--pipeline", "one-stage", "--size", "288x512", "--frames", "9", "--steps", "1"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let help = stdout(&d.ctl(&["submit", "--help"]));
    for text in ["multiples of 64 for distilled, two-stage, of 32 for one-stage, from 64 to 2048", "8k+1 from 9 to 257"]
    {
        assert!(help.contains(text), "{text:?} not in {help}");
    }
    assert!(help.contains("--strength") && help.contains("1 to 60"), "{help}");
}
