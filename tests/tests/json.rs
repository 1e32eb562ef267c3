//! `ltxctl --json` end to end (`docs/json.md`): every document versioned, `load`/`unload` included, failures as an
//! error document with the exit code, flat event tags, and a sidecar with one spelling per value.
use ltx_e2e::*;
use serde_json::Value;
use std::process::Output;

/// Every stdout line of `o` as JSON.
fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} in {o:?}")))
        .collect()
}

/// The one document `o` printed.
fn doc(o: &Output) -> Value {
    let mut v = lines(o);
    assert_eq!(v.len(), 1, "{o:?}");
    v.remove(0)
}

/// A command that fails: its exit code, the error document on stdout (its `exit` the same), its message on
/// stderr.
fn refused(o: &Output, exit: i32, code: &str) -> Value {
    assert_eq!(o.status.code(), Some(exit), "{o:?}");
    let e = doc(o);
    assert_eq!((&e["schema"], &e["exit"], &e["error"]["code"]), (&1.into(), &exit.into(), &code.into()), "{e}");
    let message = e["error"]["message"].as_str().expect("message");
    assert!(String::from_utf8_lossy(&o.stderr).contains(message), "{o:?}");
    e
}

#[test]
fn json_documents_errors_events_and_the_sidecar() {
    // The 128gb profile: a submit naming no variant runs distilled whatever this machine has.
    let d = Daemon::with(bins!(), Opts { extra_config: "memory_profile = \"128gb\"".into(), ..Opts::default() });
    let ctl = |args: &[&str]| d.ctl(&[&["--json"], args].concat());

    // load / unload say what they did, as documents.
    let o = ctl(&["load", "--variant", "dev", "--keep-alive", "5m"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(doc(&o), serde_json::json!({"schema": 1, "loaded": "dev", "keep_alive": 300}));
    let ps = doc(&ctl(&["ps"]));
    assert_eq!((&ps["components"][0]["variant"], &ps["components"][0]["name"]), (&"dev".into(), &"transformer".into()));
    assert_eq!(doc(&ctl(&["unload"])), serde_json::json!({"schema": 1, "unloaded": null}));

    // Failures: the error document with the exit code, whichever side refused.
    let e = refused(&ctl(&["submit", "x", "--frames", "10"]), 4, "invalid_request");
    assert_eq!(e["error"]["reason"], "frames", "{e}");
    refused(&ctl(&["show", "999"]), 4, "not_found");
    refused(&ctl(&["submit", "x", "--no-such-flag"]), 4, "usage");
    let o = std::process::Command::new(&d.bins.ctl)
        .args(["--json", "--socket", "/nonexistent/ltxd.sock", "status"])
        .output()
        .expect("ltxctl");
    refused(&o, 3, "unavailable");

    // Events: flat, tagged by "event", versioned; the first line is the submit's own document.
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("first.png");
    image::RgbImage::from_pixel(32, 32, image::Rgb([200, 40, 40])).save(&png).expect("png");
    let args = ["submit", "a red fox steps=2", "--size", "256x256", "--frames", "9", "--seed", "7"];
    let more = ["--image", png.to_str().expect("utf-8"), "--strength", "0.7", "--rescale", "0.7", "--wait"];
    let o = ctl(&[&args[..], &more].concat());
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    let out = lines(&o);
    let job = out[0]["job"].as_u64().expect("job id");
    assert_eq!((&out[0]["seed"], out[0].get("event")), (&7.into(), None), "{}", out[0]);
    let events = &out[1..];
    assert!(events.iter().all(|e| e["schema"] == 1 && e["job"] == job && e["event"].is_string()), "{events:?}");
    assert!(events.iter().all(|e| e.get("kind").is_none()), "{events:?}");
    // (The job may be past its first events when the subscription starts: the last step is always seen.)
    let step = events.iter().rfind(|e| e["event"] == "step").expect("a step");
    let fields = ["stage", "denoising_stage", "step", "total"].map(|k| step[k].clone());
    assert_eq!(fields, [Value::from("denoising"), 1.into(), 2.into(), 2.into()], "{step}");
    assert!(events.iter().any(|e| e["event"] == "stage" && e["stage"] == "decoding_video"), "{events:?}");
    let done = events.last().expect("events");
    assert_eq!((&done["event"], &done["seed"]), (&"completed".into(), &7.into()), "{done}");

    // The sidecar: the job as `show` prints it, one spelling per value, decimals as given.
    let video = std::path::PathBuf::from(done["output"].as_str().expect("output"));
    let text = std::fs::read_to_string(video.with_extension("json")).expect("sidecar");
    let sidecar: Value = serde_json::from_str(&text).expect("sidecar JSON");
    let shown = doc(&ctl(&["show", &job.to_string()]));
    for key in ["schema", "id", "state", "request", "seed", "created_ms", "started_ms", "output", "timings_ms"] {
        assert_eq!(sidecar[key], shown[key], "{key}: {sidecar} vs {shown}");
    }
    assert_eq!((&sidecar["state"], &sidecar["request"]["variant"]), (&"completed".into(), &"ltx-2.3-distilled".into()));
    assert_eq!(sidecar["memory"]["variant"], "ltx-2.3-distilled", "the memory decision it ran under: {sidecar}");
    assert!(!text.contains("Distilled") && !text.contains("\"bytes\""), "{text}");
    assert!(
        text.contains("\"strength\": 0.7") && text.contains("\"rescale\": 0.7,") && !text.contains("0.69"),
        "{text}"
    );
    assert_eq!(sidecar["protocol_version"], ltx_protocol::PROTOCOL_VERSION);
}
