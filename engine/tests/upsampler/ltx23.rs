//! LTX-2.3's latent upscalers against ltx-core 1.0.0 `upsample_video` (goldens from
//! `engine/goldens/decoders23_goldens.py`: in 4, mid 32, one block per stage, normalised with the tiny
//! 2.3 video VAE's statistics): spatial ×1.5 (rational resampler 3/2 with the blur-downsample) and temporal
//! ×2 (first frame dropped), each from its own file through the real loader; and the parameter trees of
//! the published x2, x1.5 and temporal files. Parity: max abs error ≤ 1e-4 (f32 goldens).
use ltx_engine::{
    checkpoint::Checkpoint,
    config::UpsamplerConfig,
    upsampler::{LatentUpsampler, Upsampler},
    video_vae::ops::PerChannelStatistics,
};
use mlx_rs::{Array, Dtype};
use serde_json::Value;

use crate::parity::{
    assert_close, assert_differs, assert_same_tree, fixture, perturbed, read_manifest, tensor, torch_tree,
};

const TOL: f64 = 1e-4;

fn golden(name: &str) -> Array {
    tensor("upsampler/goldens23.safetensors", name)
}

fn upsample(path: &std::path::Path, name: &str) -> Array {
    let model = LatentUpsampler::from_file(path, Dtype::Float32).unwrap();
    let vae = Checkpoint::open(fixture("video_vae/tiny_vae23.safetensors")).unwrap();
    let stats = PerChannelStatistics::load(&vae, "vae.", Dtype::Float32).unwrap();
    model.upsample(&golden(&format!("{name}.latent")), &stats).unwrap()
}

fn published() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("upsampler/ltx23_upscalers_config.json")).unwrap()).unwrap()
}

#[test]
fn tiny_configs_set_the_published_switches() {
    let real = published();
    for (file, name) in [("tiny_x15", "spatial_x1_5"), ("tiny_temporal", "temporal_x2")] {
        let ck = Checkpoint::open(fixture(&format!("upsampler/{file}.safetensors"))).unwrap();
        let tiny: Value = serde_json::from_str(&ck.metadata()["config"]).unwrap();
        for key in ["spatial_upsample", "temporal_upsample", "spatial_scale", "rational_resampler", "dims"] {
            assert!(!real[name][key].is_null() && tiny[key] == real[name][key], "{file}.{key}");
        }
    }
}

#[test]
fn x1_5_upsampler_matches_ltx_core() {
    let got = upsample(&fixture("upsampler/tiny_x15.safetensors"), "x15");
    assert_eq!(got.shape(), &[1, 8, 2, 5, 6], "3×4 latents -> 9×12 -> blurred ÷2 -> 5×6");
    assert_close(&got, &golden("x15.upsampled"), TOL, "spatial ×1.5");
}

#[test]
fn temporal_upsampler_matches_ltx_core() {
    let got = upsample(&fixture("upsampler/tiny_temporal.safetensors"), "temporal");
    assert_eq!(got.shape(), &[1, 8, 5, 2, 3], "3 latent frames -> 6 -> first dropped");
    assert_close(&got, &golden("temporal.upsampled"), TOL, "temporal ×2");
}

#[test]
fn a_perturbed_weight_fails_parity() {
    let dir = tempfile::tempdir().unwrap();
    for (file, name, key) in [
        ("x15", "x15", "upsampler.conv.bias"),
        ("x15", "x15", "upsampler.blur_down.kernel"),
        ("temporal", "temporal", "upsampler.0.bias"),
    ] {
        let path = perturbed(dir.path(), &format!("upsampler/tiny_{file}.safetensors"), key, 0.01);
        assert_differs(&upsample(&path, name), &golden(&format!("{name}.upsampled")), TOL, &format!("{key} + 0.01"));
    }
}

#[test]
fn parameter_trees_match_the_published_2_3_manifests() {
    let real = published();
    for name in ["spatial_x2", "spatial_x1_5", "temporal_x2"] {
        let config: UpsamplerConfig = serde_json::from_value(real[name].clone()).unwrap();
        let model = LatentUpsampler::new(&config).unwrap();
        assert_eq!(matches!(model.upsampler, Upsampler::Temporal(_)), name.starts_with("temporal"));
        let ours = torch_tree(&model, "", |_| false);
        assert_same_tree(&ours, &read_manifest(&format!("upsampler/ltx23_{name}_manifest.txt")), name);
    }
}
