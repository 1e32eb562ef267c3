//! Parity of the spatial ×2 latent upscaler with ltx-core 1.0.0 `upsample_video` (tiny config: in 8,
//! mid 32, one block per stage, rational resampler; goldens from `engine/goldens/decoders_goldens.py`),
//! loaded from its own file through the real loader, normalised with the tiny video VAE's statistics.
//! Error measure `max|got - want| / max|want|`, tolerance 1e-4 (f32 goldens).
mod backend;
mod parity;

use std::path::PathBuf;

use ltx_engine::{checkpoint::Checkpoint, upsampler::LatentUpsampler, video_vae::ops::PerChannelStatistics};
use mlx_rs::{ops, Array, Dtype};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

fn values(a: &Array) -> Vec<f32> {
    let a = ops::reshape(a.as_dtype(Dtype::Float32).expect("cast"), &[-1]).expect("flat");
    a.eval().expect("eval");
    a.as_slice::<f32>().to_vec()
}

#[test]
fn upsampler_matches_ltx_core() {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    let model = LatentUpsampler::from_file(fixture("upsampler/tiny_upsampler.safetensors"), Dtype::Float32).unwrap();
    let vae = Checkpoint::open(fixture("video_vae/tiny_vae.safetensors")).unwrap();
    let stats = PerChannelStatistics::load(&vae, "vae.", Dtype::Float32).unwrap();
    let goldens = Checkpoint::open(fixture("upsampler/goldens.safetensors")).unwrap();
    let got = model.upsample(&goldens.tensor("latent").unwrap(), &stats).unwrap();
    let want = goldens.tensor("upsampled").unwrap();
    assert_eq!(got.shape(), want.shape());
    let (g, w) = (values(&got), values(&want));
    let err = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
        / w.iter().map(|b| b.abs()).fold(0.0, f32::max);
    eprintln!("upsample: rel err {err:.2e}");
    let tol = backend::tol(1e-4) as f32;
    assert!(err <= tol, "relative error {err:e} > {tol:e}");
}

#[test]
fn upsampler_rejects_other_layouts() {
    let config = |json: &str| -> ltx_engine::config::UpsamplerConfig { serde_json::from_str(json).unwrap() };
    for other in [
        // the spatio-temporal ×2, the plain pixel shuffle, an unknown rational scale, 2-D convolutions
        r#"{"mid_channels": 32, "temporal_upsample": true, "spatial_upsample": true, "rational_resampler": true}"#,
        r#"{"mid_channels": 32, "rational_resampler": false}"#,
        r#"{"mid_channels": 32, "rational_resampler": true, "spatial_scale": 3.0}"#,
        r#"{"mid_channels": 32, "rational_resampler": true, "dims": 2}"#,
    ] {
        assert!(LatentUpsampler::new(&config(other)).is_err(), "{other}");
    }
    let temporal = r#"{"mid_channels": 32, "temporal_upsample": true, "spatial_upsample": false}"#;
    assert!(LatentUpsampler::new(&config(temporal)).is_ok(), "LTX-2.3's temporal ×2");
}

#[path = "upsampler/ltx23.rs"]
mod ltx23;
