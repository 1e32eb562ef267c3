//! A real generation end to end: the daemon library with the shipped LTX-2 pipeline (not the test double), the
//! bundled tiny model set in its models directory, the real CLI over the real socket, an MP4 on disk.
use ltx_e2e::*;
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
    let done = &events.last().expect("events")["kind"]["Completed"];
    let video = PathBuf::from(done["output"].as_str().expect("output path"));
    assert_eq!(done["seed"].as_u64(), Some(3));
    assert!(events.iter().any(|e| e["kind"]["Step"].is_object()), "no step progress: {out}");

    let bytes = std::fs::read(&video).expect("the video");
    assert_eq!(&bytes[4..8], b"ftyp", "not an MP4");
    assert!(video.starts_with(d.outputs()));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(video.with_extension("json")).expect("sidecar")).expect("sidecar json");
    assert_eq!(sidecar["seed"].as_u64(), Some(3), "{sidecar}");
}
