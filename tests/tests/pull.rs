//! `ltxctl models pull` as people run it, end to end (real daemon, socket and CLI, a local Hub): no route to
//! the Hub fails in seconds, `models cancel` stops a download, the output without a terminal, the free-space
//! warning.
mod common;

use common::have;
use common::models::*;
use ltx_e2e::hub::{self, HubFile};
use ltx_e2e::*;
use ltx_protocol::catalogue::{self, GEMMA_REPO, LTX_REPO};
use ltx_protocol::ModelVariant;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn distilled_files() -> Vec<&'static catalogue::ModelFile> {
    catalogue::needs(ModelVariant::Distilled, ModelVariant::Distilled.default_pipeline())
}

/// A local port whose connections are never answered, as a Hub behind a network that drops packets: its
/// listener's accept queue (of one) is full, and Linux drops the SYNs then. Keep both alive while it is used.
fn silent_port() -> (std::net::TcpListener, std::net::TcpStream, String) {
    use std::os::fd::AsRawFd;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) again on our own listening socket only changes its backlog.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let addr = l.local_addr().unwrap();
    let filler = std::net::TcpStream::connect(addr).unwrap();
    let probe = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500));
    assert!(probe.is_err_and(|e| e.kind() == std::io::ErrorKind::TimedOut), "the port answers");
    (l, filler, format!("http://{addr}"))
}

#[test]
fn no_route_to_the_hub_fails_fast_with_the_endpoint() {
    let silent = silent_port();
    // Nobody listens on port 1; `.invalid` never resolves (RFC 6761); the silent port never answers.
    for endpoint in ["http://127.0.0.1:1", "http://nonexistent.invalid", silent.2.as_str()] {
        let (hub, d) = setup(MB, &[("HF_TOKEN", "hf_test"), ("HF_ENDPOINT", endpoint)], true);
        let t = Instant::now();
        let o = d.ctl(&["models", "pull", "distilled", "-y"]);
        let took = t.elapsed();
        eprintln!("{endpoint}: the pull failed after {took:?}");
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        let err = stderr(&o);
        assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
        assert!(err.contains(&format!("cannot reach the Hub at {endpoint} (")) && err.contains("HF_ENDPOINT"), "{err}");
        if endpoint == silent.2 {
            assert!(err.contains("(no answer within 6s)"), "{err}");
        }
        // Every file failed for that one reason, said once.
        let n = distilled_files().len();
        assert!(err.contains(&format!("{n} files (")), "{err}");
        assert_eq!(err.matches("cannot reach").count(), 1, "{err}");
        let out = stdout(&o);
        assert!(!out.contains("retry"), "{out}");
        assert_eq!(out.matches(": FAILED: cannot reach the Hub").count(), n, "{out}");
        // Nothing is left retrying in the daemon, and the local Hub was never asked.
        let l = list_json(&d);
        assert!(l["files"].as_array().unwrap().iter().all(|f| f["state"] == "missing"), "{l}");
        assert_eq!(hub.log(), Vec::<String>::new());
    }
}

#[test]
fn cancel_stops_downloads_and_keeps_the_partial() {
    let (hub, d) = setup(4 * MB, token(), true);
    // Both download slots busy for seconds (64 KiB per 100 ms): the other files wait their turn.
    let up = HubFile { body: hub::bytes(77, 2 * MB), lfs: true, ..HubFile::default() };
    hub.add(LTX_REPO, UPSCALER, up);
    hub.faults(|f| f.throttle = Some(Duration::from_millis(100)));
    let pull = d.ctl_cmd(&["models", "pull", "distilled", "-y"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let pull = pull.unwrap();
    wait_until("a partial checkpoint", Duration::from_secs(30), || part_len(&d, CHECKPOINT) > 0);
    // The files waiting for a slot are queued, not "downloading 0%", and the variant is downloading, not "to fetch".
    let text = stdout(&d.ctl(&["models", "list"]));
    let shard = format!("{}/model-00005-of-00005.safetensors", catalogue::GEMMA_DIR);
    let line = text.lines().find(|l| l.starts_with(&shard)).unwrap_or_else(|| panic!("{text}"));
    assert!(line.ends_with("  queued"), "{text}");
    let n = distilled_files().len();
    let line = text.lines().find(|l| l.starts_with("distilled ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with(&format!("distilled      downloading: {n} file(s) left (≈")), "{text}");
    assert!(line.ends_with("— `ltxctl models cancel` stops it"), "{text}");
    // distilled-fp8 shares all but its checkpoint: to fetch still, some of it downloading.
    assert!(
        text.contains(&format!("distilled-fp8  {n} file(s) to fetch (")) && text.contains(" of them downloading)"),
        "{text}"
    );

    let o = d.ctl(&["models", "cancel"]);
    let t = Instant::now();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert_eq!(out.lines().filter(|l| l.starts_with("cancelled ")).count(), n, "{out}");
    assert!(out.contains(&format!("cancelled {CHECKPOINT}\n")) && out.contains("resumes them"), "{out}");
    let p = pull.wait_with_output().unwrap();
    eprintln!("the pull ended {:?} after `models cancel`", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(p.status.code(), Some(1), "{p:?}");
    let err = stderr(&p);
    assert!(err.contains(CHECKPOINT) && err.contains("cancelled by `ltxctl models cancel` at "), "{err}");
    let kept = part_len(&d, CHECKPOINT);
    assert!(kept > 0 && kept < 4 * MB as u64, "the partial is kept: {kept}");
    assert!(!models(&d).join(CHECKPOINT).exists());
    let l = list_json(&d);
    assert_eq!(
        (&file_state(&l, CHECKPOINT)["state"], file_state(&l, CHECKPOINT)["bytes"].as_u64()),
        (&"partial".into(), Some(kept)),
        "{l}"
    );
    let states = l["files"].as_array().unwrap().iter().map(|f| f["state"].as_str().unwrap_or_default().to_string());
    assert!(states.into_iter().all(|s| s != "downloading" && s != "queued"), "{l}");
    assert!(stdout(&d.ctl(&["models", "cancel"])).contains("no download is running"));

    // A pull resumes it.
    hub.faults(|f| f.throttle = None);
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    assert_installed(&hub, &d);
    assert!(hub.log().iter().any(|l| l.ends_with(&format!("bytes={kept}-"))), "{:?}", hub.log());
}

#[test]
fn without_a_terminal_each_file_event_is_one_line() {
    // No token: the gated Gemma files fail, the others download.
    let (hub, d) = setup(3 * MB, &[], true);
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let out = stdout(&o);
    let mut lines: Vec<&str> = out.lines().collect();
    assert!(lines.remove(0).starts_with("downloading 11 file(s) in ltxd"), "{out}");
    for f in distilled_files() {
        // Full names (Gemma's directory included), nothing cut.
        let mine: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with(&format!("{}: ", f.local))).collect();
        let size = hub.body(f.repo, f.remote).len() as u64;
        if f.repo == GEMMA_REPO {
            assert_eq!(mine.len(), 1, "{}: {mine:?}", f.local);
            assert!(mine[0].contains(": FAILED: ") && mine[0].contains("is gated"), "{mine:?}");
        } else {
            let sha = hub::sha256_hex(&hub.body(f.repo, f.remote));
            let human = ltx_protocol::models::human_bytes(size);
            let want = [
                format!("{}: started, {human}", f.local),
                format!("{}: done, {human} (sha256 {sha} verified)", f.local),
            ];
            assert_eq!(mine, want, "{out}");
        }
    }
    assert_eq!(lines.len(), distilled_files().len() + 2, "one line per file event, nothing else:\n{out}");
}

/// The catalogue's (published) size of the distilled variant: what a pull says it will download.
fn distilled_published() -> u64 {
    distilled_files().iter().map(|f| f.size).sum()
}

#[test]
fn a_pull_that_leaves_the_disk_nearly_full_warns() {
    let gb = 1_000_000_000;
    let free = |d: &mut Daemon, bytes: u64| {
        d.kill9();
        d.env.retain(|(k, _)| k != "LTX_TEST_DISK_FREE");
        d.env.push(("LTX_TEST_DISK_FREE".into(), bytes.to_string()));
        d.spawn();
        d.wait_ready();
    };
    let (hub, mut d) = setup(MB, token(), false);
    // Room for the download and 100 GB more: no warning (and without -y or a terminal, no download either).
    free(&mut d, distilled_published() + 100 * gb);
    let o = d.ctl(&["models", "pull", "distilled"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    // 1.5 GB would be left.
    free(&mut d, distilled_published() + 1_500_000_000);
    let o = d.ctl(&["models", "pull", "distilled"]);
    let err = stderr(&o);
    let dir = models(&d).display().to_string();
    assert!(err.contains(&format!("warning: this leaves only ≈1.5 GB free in {dir} (keep 10.0 GB or more")), "{err}");
    assert!(err.contains("ltxctl models dir PATH") && err.contains("pass -y"), "{err}");
    // Less than the download: said before it starts; with -y the pull still runs (the real files are small).
    free(&mut d, distilled_published() - 5 * gb);
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("warning: this needs ≈{}", ltx_protocol::models::human_bytes(distilled_published()))),
        "{err}"
    );
    assert!(err.contains("the download stops when the disk is full"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_installed(&hub, &d);
}

#[test]
fn on_a_terminal_every_file_has_a_bar_under_its_full_name() {
    if !have("script", "--version") {
        return eprintln!("no `script` (util-linux) to run the pull on a terminal: skipped");
    }
    let (hub, d) = setup(2 * MB, token(), true);
    hub.faults(|f| f.throttle = Some(Duration::from_millis(30)));
    let cmd = format!("{} --socket {} models pull distilled -y", d.bins.ctl.display(), d.socket.display());
    let o = std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]).env("HOME", d.dir.path()).output();
    let o = o.unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    for f in distilled_files() {
        // From the start (queued ones too), under the whole name, then verified.
        let name = drawn_lines(&out, f.local);
        assert!(name.iter().any(|l| l.ends_with(" queued")), "{}: {name:?}", f.local);
        assert!(name.iter().any(|l| l.ends_with(" verified")), "{}: {name:?}", f.local);
    }
    // No bar drawn before its size is known (it would read full at 0 of 0 bytes).
    assert!(!out.contains("0 B/0 B"), "{out}");
    assert_installed(&hub, &d);
}

/// The drawn lines of a terminal recording that start with `name` (escape sequences and carriage returns dropped).
fn drawn_lines(out: &str, name: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = out.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters final-byte.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            '\r' => plain.push('\n'),
            c => plain.push(c),
        }
    }
    plain.lines().map(str::trim_end).filter(|l| l.starts_with(name)).map(str::to_string).collect()
}
