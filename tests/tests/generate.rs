//! A real generation end to end: the daemon library with the shipped LTX-2 pipeline (not the test double), the
//! bundled tiny model set in its models directory, the real CLI over the real socket, an MP4 on disk.
use ltx_e2e::*;
use ltx_protocol::{EventKind, GenerationRequest, Reply, Request};
use std::path::PathBuf;

#[test]
fn shipped_pipeline_generates_a_video_with_the_tiny_model() {
    let opts = Opts { env: vec![("LTX_TEST_ENGINE".into(), "shipped".into())], start: false, ..Opts::default() };
    let mut d = Daemon::with(bins!(), opts);
    ltx_engine::pipeline::tiny::bundle_tiny(&d.dir.path().join("models")).expect("bundle the tiny model");
    d.spawn();
    d.wait_ready();

    let args = ["--json", "submit", "a red fox in the snow", "--size", "128x128", "--frames", "9", "--seed", "3"];
    let o = d.ctl(&[&args[..], &["--wait"]].concat());
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    let events: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect("NDJSON")).collect();
    let done = events.last().expect("events");
    assert_eq!(done["event"], "completed", "{done}");
    let video = PathBuf::from(done["output"].as_str().expect("output path"));
    assert_eq!(done["seed"].as_u64(), Some(3));
    assert!(events.iter().any(|e| e["event"] == "step"), "no step progress: {out}");

    let bytes = std::fs::read(&video).expect("the video");
    assert_eq!(&bytes[4..8], b"ftyp", "not an MP4");
    assert!(video.starts_with(d.outputs()));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(video.with_extension("json")).expect("sidecar")).expect("sidecar json");
    assert_eq!(sidecar["seed"].as_u64(), Some(3), "{sidecar}");
}

/// A shipped-engine daemon over the bundled tiny model set.
fn tiny_daemon() -> Daemon {
    let opts = Opts { env: vec![("LTX_TEST_ENGINE".into(), "shipped".into())], start: false, ..Opts::default() };
    let mut d = Daemon::with(bins!(), opts);
    ltx_engine::pipeline::tiny::bundle_tiny(&d.dir.path().join("models")).expect("bundle the tiny model");
    d.spawn();
    d.wait_ready();
    d
}

/// `submit --wait --json`: the NDJSON events, the video path on success.
fn submit(d: &Daemon, args: &[&str]) -> (Vec<serde_json::Value>, Option<PathBuf>, i32) {
    let o = d.ctl(&[&["--json", "submit"], args, &["--wait"]].concat());
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let events: Vec<serde_json::Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let video =
        events.last().filter(|e| e["event"] == "completed").and_then(|e| e["output"].as_str()).map(PathBuf::from);
    (events, video, o.status.code().unwrap_or(-1))
}

/// Stream kinds and frame counts (and the audio's sample rate), as ffprobe reads the file.
fn streams(video: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,sample_rate,nb_frames", "-of", "csv=p=0"])
        .arg(video)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// The last step reported for each denoising stage: `[stage 1, stage 2]`.
fn last_steps(events: &[serde_json::Value]) -> [Option<String>; 2] {
    [1, 2].map(|stage| {
        events
            .iter()
            .rev()
            .filter(|e| e["event"] == "step" && e["stage"] == "denoising")
            .find(|s| s["denoising_stage"].as_u64() == Some(stage))
            .map(|s| format!("{}/{}", s["step"], s["total"]))
    })
}

/// Every pipeline with each variant it runs (fp8 included), text- and image-to-video, audio on and off,
/// through the real CLI and daemon: the stream layout of the file and the step counts per stage.
#[test]
fn every_pipeline_variant_and_image_to_video_through_the_daemon() {
    let d = tiny_daemon();
    let png = d.dir.path().join("first.png");
    image::RgbImage::from_fn(48, 36, |x, y| image::Rgb([(x * 5) as u8, (y * 7) as u8, 90])).save(&png).expect("png");
    let png = png.to_str().expect("utf-8 path");
    let base = ["a lighthouse at dusk", "--size", "128x128", "--frames", "9"];
    // (extra arguments, last step of stage 1 and stage 2, audio stream as ffprobe reads it). Without --model the
    // bundle's newest generation runs (LTX-2.3: BigVGAN + bandwidth extension, 48 kHz AAC, 18 frames for 9 video
    // frames at 24 fps); LTX-2's vocoder writes 24 kHz.
    type Case<'a> = (&'a [&'a str], [Option<&'a str>; 2], Option<&'a str>);
    let (ltx23_audio, ltx2_audio) = (Some("audio,48000,18"), Some("audio,24000,9"));
    let cases: [Case; 6] = [
        (&["--variant", "distilled-fp8", "--no-audio", "--image", png], [Some("8/8"), Some("3/3")], None),
        (&["--model", "ltx-2"], [Some("8/8"), Some("3/3")], ltx2_audio),
        (&[], [Some("8/8"), Some("3/3")], ltx23_audio),
        (&["--pipeline", "one-stage", "--steps", "3"], [Some("3/3"), None], ltx23_audio),
        (
            &["--pipeline", "one-stage", "--steps", "2", "--image", png, "--strength", "0.9"],
            [Some("2/2"), None],
            ltx23_audio,
        ),
        (
            &["--pipeline", "two-stage", "--steps", "2", "--image", png, "--stg", "0"],
            [Some("2/2"), Some("3/3")],
            ltx23_audio,
        ),
    ];
    for (extra, steps, audio) in cases {
        let (events, video, code) = submit(&d, &[&base[..], extra].concat());
        assert_eq!(code, 0, "{extra:?}: {events:?}\n{}", d.stderr());
        let video = video.expect("completed");
        let want: Vec<String> = ["video,9"].into_iter().chain(audio).map(str::to_string).collect();
        assert_eq!(streams(&video), want, "{extra:?}");
        assert_eq!(last_steps(&events), steps.map(|s| s.map(str::to_string)), "{extra:?}");
        let image_stage = events.iter().any(|e| e["event"] == "stage" && e["stage"] == "encoding_image");
        assert_eq!(image_stage, extra.contains(&png), "{extra:?}");
    }
    // A pipeline given weights it does not run: refused before queueing, with the fix in the message.
    let refused: Vec<&str> =
        ["submit"].into_iter().chain(base).chain(["--pipeline", "two-stage", "--variant", "distilled"]).collect();
    let o = d.ctl(&refused);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("runs the dev weights"), "{o:?}");
}

/// Same request and seed → the same bytes; a cancel during denoising stops the job at a step boundary.
#[test]
fn seeds_reproduce_and_cancel_stops_mid_denoise() {
    let d = tiny_daemon();
    let args = ["a paper boat", "--size", "128x128", "--frames", "9", "--seed", "11"];
    let (_, a, code_a) = submit(&d, &args);
    let (_, b, code_b) = submit(&d, &args);
    assert_eq!((code_a, code_b), (0, 0), "{}", d.stderr());
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_ne!(a, b, "outputs are never overwritten");
    assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"), "same seed, same bytes");

    // A long guided job (40 steps × 4 passes): cancelled once its first step is reported.
    let o =
        d.ctl(&["--json", "submit", "a slow one", "--pipeline", "one-stage", "--size", "256x256", "--frames", "33"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let job = serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("json")["job"].as_u64().expect("job id");
    let mut follow = d.ctl_cmd(&["--json", "follow", &job.to_string()]);
    let mut child = follow.stdout(std::process::Stdio::piped()).spawn().expect("follow");
    let lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().expect("stdout")));
    let mut cancelled_at = None;
    for line in lines.map_while(Result::ok) {
        let e: serde_json::Value = serde_json::from_str(&line).expect("NDJSON");
        if cancelled_at.is_none() && e["event"] == "step" && e["denoising_stage"].as_u64() == Some(1) {
            cancelled_at = e["step"].as_u64();
            assert_eq!(d.ctl(&["cancel", &job.to_string()]).status.code(), Some(0));
        }
        if e["event"] == "cancelled" {
            break;
        }
    }
    assert_eq!(child.wait().expect("follow exits").code(), Some(2), "follow reports the cancel");
    let shown = d.ctl(&["--json", "show", &job.to_string()]);
    let rec: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(rec["state"], "cancelled", "{rec}");
    assert!(cancelled_at.expect("a step was reported") < 40, "stopped before the end");
}

/// The previews of `job` and its final event, on an existing subscription.
async fn previews_until_done(c: &mut ltx_protocol::client::Client, job: u64) -> (EventKind, Vec<(u32, Vec<u8>)>) {
    let mut jpegs = Vec::new();
    loop {
        let e = tokio::time::timeout(std::time::Duration::from_secs(60), c.next_event())
            .await
            .expect("event timeout")
            .expect("event");
        match e.kind {
            EventKind::Preview { step, jpeg } if e.job == job => jpegs.push((step, jpeg)),
            k if e.job == job && k.is_final() => return (k, jpegs),
            _ => {}
        }
    }
}

/// A client that subscribes with previews gets a JPEG per denoising step (8 + 3 for distilled) at each
/// stage's size; one without previews gets none.
#[tokio::test]
async fn preview_subscribers_get_a_jpeg_per_step() {
    let d = tiny_daemon();
    let (mut watcher, mut plain) = (d.client().await, d.client().await);
    for (c, previews) in [(&mut watcher, true), (&mut plain, false)] {
        let reply = c.request(Request::Subscribe { job: None, previews }).await.expect("subscribe");
        assert_eq!(reply, Reply::Subscribed);
    }
    let mut r = GenerationRequest::new("a kite over the sea");
    (r.width, r.height, r.frames) = (128, 128, 9);
    let job = ltx_e2e::submit(&mut d.client().await, r).await;
    let (done, jpegs) = previews_until_done(&mut watcher, job).await;
    assert!(matches!(done, EventKind::Completed { .. }), "{done:?}");
    assert_eq!(jpegs.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3]);
    let sizes: Vec<_> = jpegs
        .iter()
        .map(|(_, j)| image::load_from_memory(j).map(|i| (i.width(), i.height())).expect("a JPEG"))
        .collect();
    assert_eq!((sizes[0], sizes[10]), ((64, 64), (128, 128)), "stage 1 at half size, stage 2 at full size");
    let (done, jpegs) = previews_until_done(&mut plain, job).await;
    assert!(matches!(done, EventKind::Completed { .. }) && jpegs.is_empty(), "{done:?}");
}
