//! Parity of the preview decoder (`engine/src/preview`) with TAEHV's reference `TAEHV.decode_video` at the real
//! TAELTX configuration (goldens from `engine/goldens/taeltx_goldens.py`, f32 on CPU). The ~10M weights are not
//! committed: both sides fill every tensor from splitmix64 by the committed recipe (`taeltx_weights.json`),
//! and the test writes them as a safetensors file in PyTorch's layout so that they go through the real
//! loader (`TaeDecoder::from_file`: conv layout conversion, the encoder's tensors skipped).
//!
//! Error measure: max |got − want| on pixels in [0, 1]; tolerance 1e-4.
mod backend;
mod parity;

use std::{collections::HashMap, path::Path};

use ltx_engine::{
    preview::{to_rgb24, DecoderMemory, TaeDecoder},
    video_vae::ops::slice_axis,
};
use ltx_protocol::rules::Generation;
use mlx_rs::{ops, Array, Dtype};
use serde_json::Value;

const TOL: f64 = 1e-4;

fn splitmix64(seed: u64, n: usize) -> impl Iterator<Item = u64> {
    (1..=n as u64).map(move |i| {
        let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// `offset + scale·(2u − 1)` in f32, as the goldens script computes it.
fn uniform(seed: u64, n: usize, scale: f32, offset: f32) -> Vec<f32> {
    splitmix64(seed, n).map(|z| (2.0 * ((z >> 40) as f32 * 2f32.powi(-24)) - 1.0) * scale + offset).collect()
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(parity::fixture("preview/taeltx_weights.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest json")
}

/// The recipe's tensors (PyTorch layout), plus one encoder tensor the loader must skip.
fn weights() -> HashMap<String, Array> {
    let mut out = HashMap::new();
    for row in manifest()["tensors"].as_array().expect("tensors") {
        let name = row[0].as_str().expect("name");
        let shape: Vec<i32> =
            row[1].as_array().expect("shape").iter().map(|d| d.as_i64().expect("dim") as i32).collect();
        let (scale, offset, seed) = (
            row[2].as_f64().expect("scale") as f32,
            row[3].as_f64().expect("offset") as f32,
            row[4].as_u64().expect("seed"),
        );
        let n = shape.iter().product::<i32>() as usize;
        out.insert(name.to_string(), Array::from_slice(&uniform(seed, n, scale, offset), &shape));
    }
    out.insert("encoder.0.weight".into(), Array::from_slice(&uniform(1, 64 * 48 * 9, 0.1, 0.0), &[64, 48, 3, 3]));
    out
}

fn write(dir: &Path, tensors: &HashMap<String, Array>) -> std::path::PathBuf {
    let path = dir.join("taeltx_2.safetensors");
    Array::save_safetensors(tensors, &HashMap::new(), &path).expect("save");
    path
}

fn decoder(path: &Path) -> TaeDecoder {
    let rules = Generation::Ltx2.preview().expect("LTX-2 has a preview decoder");
    TaeDecoder::from_file(path, rules, Dtype::Float32).expect("load")
}

fn golden(name: &str) -> Array {
    parity::tensor("preview/taeltx_goldens.safetensors", name)
}

#[test]
fn rules_rows_are_the_references_taeltx_configuration() {
    let config = &manifest()["config"];
    for g in Generation::ALL {
        let rules = g.preview().expect("every generation has a preview decoder");
        let doublings = rules.time_upscale.iter().filter(|t| **t).count() as u32;
        assert_eq!(rules.patch_size as i64, config["patch_size"].as_i64().expect("patch"), "{g:?}");
        assert_eq!(rules.latent_channels as i64, config["latent_channels"].as_i64().expect("channels"), "{g:?}");
        assert_eq!(2i64.pow(doublings), config["t_upscale"].as_i64().expect("t_upscale"), "{g:?}");
        let decoder = TaeDecoder::new(rules).expect("decoder");
        assert_eq!(decoder.trim as i64, config["frames_to_trim"].as_i64().expect("trim"), "{g:?}");
    }
}

#[test]
fn decoder_matches_taehv() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = decoder(&write(dir.path(), &weights()));
    let (latent, want) = (golden("latent"), golden("video"));
    assert_eq!(want.shape(), &[1, 9, 64, 96, 3], "2 latent frames of 2×3 → 9 frames of 64×96");
    parity::assert_close(&d.decode(&latent).expect("decode"), &want, TOL, "decode_video");

    // One latent frame at a time, carrying the memory blocks' last frames: the same video.
    let mut chunks = Vec::new();
    d.decode_chunked(&latent, 1, |c| {
        chunks.push(c);
        Ok(())
    })
    .expect("chunked");
    assert_eq!(chunks.iter().map(|c| c.shape()[1]).collect::<Vec<_>>(), [1, 8], "7 start-up frames trimmed");
    let chunked = ops::concatenate(&chunks.iter().collect::<Vec<_>>(), 1).expect("concat");
    parity::assert_close(&chunked, &want, TOL, "chunked decode");

    // The preview's frame: the first latent frame alone.
    let first = slice_axis(&want, 1, 0, 1).expect("slice");
    parity::assert_close(&d.first_frame(&latent).expect("first"), &first, TOL, "first frame");

    // Explicit memory: a second call continues the video instead of starting it again.
    let mut memory = DecoderMemory::default();
    let frame = |i| slice_axis(&latent, 2, i, i + 1).expect("slice");
    assert_eq!(d.decode_chunk(&frame(0), &mut memory).expect("chunk 0").shape()[1], 1);
    assert_eq!(d.decode_chunk(&frame(1), &mut memory).expect("chunk 1").shape()[1], 8);

    let rgb = to_rgb24(&first).expect("rgb");
    assert_eq!(rgb.len(), 64 * 96 * 3);
    let want_rgb: Vec<u8> = backend::values(&first).iter().map(|v| (v * 255.0).round() as u8).collect();
    let off = rgb.iter().zip(&want_rgb).filter(|(a, b)| a.abs_diff(**b) > 1).count();
    assert_eq!(off, 0, "RGB bytes within 1 of the golden's");
}

#[test]
fn a_perturbed_weight_fails_parity() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut w = weights();
    let name = "decoder.10.conv.2.weight";
    let t = &w[name];
    let changed = t.add(Array::from_f32(1e-3)).expect("add");
    w.insert(name.into(), changed);
    let d = decoder(&write(dir.path(), &w));
    parity::assert_differs(&d.decode(&golden("latent")).expect("decode"), &golden("video"), TOL, "perturbed");
}

#[test]
fn a_file_of_another_layout_is_refused_naming_the_tensors() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut w = weights();
    w.remove("decoder.7.conv.weight");
    // A TGrow without time upscaling (the reference's cheaper preview layout): (256, 256, 1, 1).
    w.insert("decoder.13.conv.weight".into(), Array::zeros::<f32>(&[128, 128, 1, 1]).expect("zeros"));
    let rules = Generation::Ltx2.preview().expect("rules");
    let e = TaeDecoder::from_file(write(dir.path(), &w), rules, Dtype::Float32).expect_err("refused").to_string();
    assert!(e.contains("decoder.7.conv.weight") && e.contains("decoder.13.conv.weight"), "{e}");
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"\x10\0\0\0\0\0\0\0{not json}      ").expect("write");
    assert!(TaeDecoder::from_file(&garbage, rules, Dtype::Float32).is_err());
}

/// Previews while wanted, counted.
#[derive(Default)]
struct Watcher {
    previews: usize,
}

impl ltx_engine::job::ProgressSink for Watcher {
    fn stage(&mut self, _: ltx_protocol::Stage) {}
    fn step(&mut self, _: ltx_protocol::Stage, _: u32, _: u32) {}
    fn wants_preview(&self) -> bool {
        true
    }
    fn preview(&mut self, _: u32, jpeg: Vec<u8>) {
        assert!(jpeg.starts_with(&[0xff, 0xd8, 0xff]), "a JPEG");
        self.previews += 1;
    }
}

/// The bundled tiny model's latent has 8 channels, not TAELTX's 128: an installed preview decoder is left
/// unloaded and the previews come from the video VAE, the job unharmed.
#[test]
fn a_preview_decoder_for_another_latent_is_not_used() {
    use ltx_engine::{
        job::{Generator, Job},
        pipeline::{tiny::bundle_tiny, Pipeline},
        Backend, Compute,
    };
    let dir = tempfile::tempdir().expect("tmp");
    let set = bundle_tiny(&dir.path().join("models")).expect("bundle");
    std::fs::create_dir_all(set.preview_decoder.parent().expect("parent")).expect("dir");
    let written = write(dir.path(), &weights());
    std::fs::rename(written, &set.preview_decoder).expect("install");
    let mut p = Pipeline::from_dir(dir.path().join("models"), Compute::on(Backend::Cpu));
    let request = ltx_protocol::GenerationRequest {
        width: 128,
        height: 128,
        frames: 9,
        ..ltx_protocol::GenerationRequest::new("a cat")
    };
    let request = ltx_protocol::validate(request, ltx_protocol::FsCheck::Skip).expect("valid");
    let out = dir.path().join("a.mp4");
    let mut watcher = Watcher::default();
    let job = Job { id: 1, request: &request, seed: 7, output: &out };
    let done = p.generate(&job, &mut watcher, &Default::default()).expect("generated");
    assert_eq!(watcher.previews, 8 + 3, "a preview per step");
    assert!(!done.used.contains(&ltx_protocol::Part::PreviewDecoder), "{:?}", done.used);
    assert!(done.used.contains(&ltx_protocol::Part::VideoDecoder));
}
