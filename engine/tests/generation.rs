//! Model generations detected from a checkpoint's own metadata (`model_version` and the config switches),
//! and the refusals: an unknown version, a version the config contradicts, half the 2.3 switches, a file of
//! another generation than the set's.
use std::{collections::HashMap, path::PathBuf};

use ltx_engine::{
    checkpoint::Checkpoint,
    generation::{detect, require, GenerationError},
};
use ltx_protocol::Generation;
use mlx_rs::Array;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transformer").join(name)
}

/// A copy of `name` with its metadata changed by `edit`.
fn variant(dir: &tempfile::TempDir, name: &str, edit: impl FnOnce(&mut HashMap<String, String>)) -> Checkpoint {
    let ck = Checkpoint::open(fixture(name)).expect("open");
    let tensors = ck.tensors_with_prefix("").expect("tensors");
    let mut meta = ck.metadata().clone();
    edit(&mut meta);
    let n = std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0);
    let path = dir.path().join(format!("edited-{n}.safetensors"));
    Array::save_safetensors(&tensors, &meta, &path).expect("save");
    Checkpoint::open(&path).expect("reopen")
}

fn set_config(meta: &mut HashMap<String, String>, key: &str, value: serde_json::Value) {
    let mut config: serde_json::Value = serde_json::from_str(&meta["config"]).expect("json");
    config["transformer"][key] = value;
    meta.insert("config".into(), config.to_string());
}

#[test]
fn the_tiny_checkpoints_are_their_generations() {
    assert_eq!(
        detect(&Checkpoint::open(fixture("tiny_av.safetensors")).expect("19B")).expect("detect"),
        Generation::Ltx2
    );
    let ck23 = Checkpoint::open(fixture("tiny_av23.safetensors")).expect("2.3");
    assert_eq!(ck23.metadata().get("model_version").map(String::as_str), Some("2.3.0"));
    assert_eq!(detect(&ck23).expect("detect"), Generation::Ltx23);
    require(&ck23, Generation::Ltx23).expect("2.3 set");
}

#[test]
fn without_a_version_the_config_decides() {
    let dir = tempfile::tempdir().expect("tmp");
    let ck = variant(&dir, "tiny_av23.safetensors", |m| {
        m.remove("model_version");
    });
    assert_eq!(detect(&ck).expect("detect"), Generation::Ltx23);
}

#[test]
fn unknown_inconsistent_and_mixed_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tmp");
    let ck = variant(&dir, "tiny_av23.safetensors", |m| {
        m.insert("model_version".into(), "2.5.0".into());
    });
    let e = detect(&ck).expect_err("2.5");
    assert!(matches!(e, GenerationError::Unknown { .. }) && e.to_string().contains("\"2.5.0\""), "{e}");
    assert!(e.to_string().contains("LTX-2.3 (22B)"), "names what it runs: {e}");

    let ck = variant(&dir, "tiny_av.safetensors", |m| {
        m.insert("model_version".into(), "2.3.1".into());
    });
    let e = detect(&ck).expect_err("2.3 label on a 19B config");
    assert!(e.to_string().contains("says LTX-2.3 (22B) but its config is LTX-2 (19B)'s"), "{e}");

    let ck = variant(&dir, "tiny_av23.safetensors", |m| set_config(m, "apply_gated_attention", false.into()));
    let e = detect(&ck).expect_err("half the switches");
    assert!(e.to_string().contains("only some LTX-2.3 switches"), "{e}");

    let e =
        require(&Checkpoint::open(fixture("tiny_av.safetensors")).expect("19B"), Generation::Ltx23).expect_err("mixed");
    assert!(e.to_string().contains("LTX-2 (19B) where the model set is LTX-2.3 (22B)"), "{e}");
}
