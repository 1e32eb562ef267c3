//! Helpers of the model-download suites (`models`, `pull`): a local Hub with the distilled files, a daemon
//! pointed at it, and what to read back.
use ltx_e2e::hub::Hub;
use ltx_e2e::*;
use ltx_protocol::catalogue::{self, GEMMA_REPO};
use ltx_protocol::ModelVariant;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

pub const CHECKPOINT: &str = "ltx-2-19b-distilled.safetensors";
pub const UPSCALER: &str = "ltx-2-spatial-upscaler-x2-1.0.safetensors";
pub const MB: usize = 1 << 20;

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A hub serving the distilled files (Gemma gated behind `hf_test`) and a daemon pointed at it (stall timeout:
/// 30 s, or 1 s with `LTX_E2E_STALL`).
pub fn setup(checkpoint: usize, env: &[(&str, &str)], start: bool) -> (Hub, Daemon) {
    let hub = Hub::start();
    hub.add_variant(ModelVariant::Distilled, checkpoint);
    hub.state.lock().unwrap().gated.insert(GEMMA_REPO.into(), "hf_test".into());
    let mut e: Vec<(String, String)> = vec![("HF_ENDPOINT".into(), hub.url.clone())];
    e.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let opts = Opts {
        extra_config: if env.iter().any(|e| e.0 == "LTX_E2E_STALL") { "download_stall_secs = 1" } else { "" }.into(),
        env: e,
        start,
        placeholder_models: false,
        ..Opts::default()
    };
    (hub, Daemon::with(bins!(), opts))
}

pub fn token() -> &'static [(&'static str, &'static str)] {
    &[("HF_TOKEN", "hf_test")]
}

pub fn models(d: &Daemon) -> PathBuf {
    d.dir.path().join("models")
}

pub fn list_json(d: &Daemon) -> serde_json::Value {
    let o = d.ctl(&["--json", "models", "list"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    serde_json::from_slice(&o.stdout).expect("list JSON")
}

pub fn file_state<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["files"].as_array().unwrap().iter().find(|f| f["name"] == name).expect("file in list")
}

pub fn served(hub: &Hub, repo: &str, file: &str) -> u64 {
    let sha = hub::sha256_hex(&hub.body(repo, file));
    hub.state.lock().unwrap().served.get(&format!("/cas/{sha}")).copied().unwrap_or(0)
}

pub fn distilled_bytes(hub: &Hub) -> u64 {
    catalogue::needs(ModelVariant::Distilled, ModelVariant::Distilled.default_pipeline())
        .iter()
        .map(|f| hub.body(f.repo, f.remote).len() as u64)
        .sum()
}

pub fn assert_installed(hub: &Hub, d: &Daemon) {
    for f in catalogue::needs(ModelVariant::Distilled, ModelVariant::Distilled.default_pipeline()) {
        let got = std::fs::read(models(d).join(f.local)).unwrap_or_else(|e| panic!("{}: {e}", f.local));
        assert!(got == hub.body(f.repo, f.remote), "{} differs from the hub's", f.local);
        assert!(!Path::new(&format!("{}.part", models(d).join(f.local).display())).exists());
    }
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn part_len(d: &Daemon, local: &str) -> u64 {
    std::fs::metadata(format!("{}.part", models(d).join(local).display())).map_or(0, |m| m.len())
}
