//! The transformer's quantised modes ([`ltx_engine::quant`]): which layers are quantised, and the forward of a
//! mid-size random model in q8/q4/mxfp8/mxfp4 against the same model dense (f32 on the CPU). Random uniform
//! weights have no outliers, so the errors bound the arithmetic of each mode, not the visual quality. Measured
//! (video / audio rel L2): q8 7.4e-4 / 8.8e-4, mxfp8 5.0e-3 / 5.4e-3, q4 1.4e-2 / 1.4e-2, mxfp4 2.2e-2 / 2.5e-2;
//! the bounds are 3-4x those.
use ltx_engine::quant::QuantMode;
use ltx_engine::transformer::{LtxModel, Modality, Perturbations, TransformerConfig};
use mlx_rs::{module::ModuleParameters, Array, Dtype};

/// The transformer section of a mid-size LTX-2 config (the 19B's, narrower and 3 blocks deep).
fn mid_section() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/transformer/ltx2_19b_config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("config")).expect("json");
    let t = &mut v["transformer"];
    for (k, n) in [
        ("num_layers", 3),
        ("num_attention_heads", 4),
        ("attention_head_dim", 64),
        ("audio_num_attention_heads", 4),
        ("audio_attention_head_dim", 32),
        ("cross_attention_dim", 256),
        ("audio_cross_attention_dim", 128),
        ("caption_channels", 128),
    ] {
        t[k] = n.into();
    }
    t.clone()
}

fn mid_config() -> TransformerConfig {
    TransformerConfig::from_value(mid_section()).expect("mid config")
}

fn inputs() -> (Modality, Modality) {
    let key = mlx_rs::random::key(11).expect("key");
    let keys = mlx_rs::random::split(&key, 4).expect("split");
    let r = |shape: &[i32], k: &Array| mlx_rs::random::normal::<f32>(shape, None, None, k).expect("normal");
    let (f, h, w, ta) = (2, 4, 4, 16);
    let video = Modality::new(
        r(&[1, f * h * w, 128], &keys.0),
        0.6,
        None,
        ltx_engine::transformer::positions::video_positions(f as usize, h as usize, w as usize, 24.0),
        r(&[1, 16, 128], &keys.1),
    );
    let audio = Modality::new(
        r(&[1, ta, 128], &keys.1),
        0.6,
        None,
        ltx_engine::transformer::positions::audio_positions(ta as usize),
        r(&[1, 16, 128], &keys.0),
    );
    (video, audio)
}

fn rel_l2_and_cosine(a: &Array, b: &Array) -> (f32, f32) {
    let s = |x: &Array| x.sum(None).expect("sum").item_cast::<f32>();
    let dot = s(&a.multiply(b).expect("mul"));
    let (na, nb) = (s(&a.square().expect("sq")).sqrt(), s(&b.square().expect("sq")).sqrt());
    (s(&a.subtract(b).expect("sub").square().expect("sq")).sqrt() / nb, dot / (na * nb))
}

fn model() -> LtxModel {
    let mut m = LtxModel::new(mid_config(), Dtype::Float32).expect("model");
    m.init_random(3).expect("init");
    m
}

#[test]
fn only_the_block_linears_are_quantised() {
    let dense = model();
    for mode in QuantMode::ALL {
        let mut m = dense.clone();
        m.quantize_blocks(mode).expect("quantize");
        let params = m.parameters().flatten();
        let mut packed = 0;
        for (k, a) in &params {
            let block_linear = k.starts_with("transformer_blocks.")
                && ["to_q.", "to_k.", "to_v.", "to_out.0.", "to_gate_logits.", "net.0.proj.", "net.2."]
                    .iter()
                    .any(|l| k.contains(l));
            if k.ends_with(".weight") && block_linear {
                assert_eq!(a.dtype(), Dtype::Uint32, "{mode}: {k} is not packed");
                packed += 1;
            } else if k.ends_with(".scales") {
                assert!(block_linear, "{mode}: {k} outside the block linears");
            } else if !k.ends_with(".biases") {
                // Norms, AdaLN, tables, patchify/caption/output projections and the linears' biases.
                assert!(a.dtype().is_float(), "{mode}: {k} is {:?}", a.dtype());
            }
        }
        // 3 blocks × (6 attentions × 4 linears + 2 feed-forwards × 2).
        assert_eq!(packed, 3 * (6 * 4 + 2 * 2), "{mode}");
        for k in ["patchify_proj.weight", "proj_out.weight", "adaln_single.linear.weight", "scale_shift_table"] {
            assert_eq!(params[k].dtype(), Dtype::Float32, "{mode}: {k}");
        }
    }
}

#[test]
fn quantised_forward_against_the_dense_model() {
    let dense = model();
    let (video, audio) = inputs();
    let (v0, a0) = dense.forward(&video, &audio, &Perturbations::none()).expect("dense forward");
    for (mode, bound) in
        [(QuantMode::Q8, 3e-3), (QuantMode::Mxfp8, 1.5e-2), (QuantMode::Q4, 4.5e-2), (QuantMode::Mxfp4, 7e-2)]
    {
        let mut m = dense.clone();
        m.quantize_blocks(mode).expect("quantize");
        let (v, a) = m.forward(&video, &audio, &Perturbations::none()).expect("forward");
        let ((ev, cv), (ea, ca)) = (rel_l2_and_cosine(&v, &v0), rel_l2_and_cosine(&a, &a0));
        eprintln!("{mode}: video rel L2 {ev:.2e} cosine {cv:.6}; audio rel L2 {ea:.2e} cosine {ca:.6}");
        assert!(ev < bound && ea < bound, "{mode}: rel L2 video {ev}, audio {ea} (bound {bound})");
        assert!(ev > 0.0, "{mode}: identical to dense — not quantised?");
    }
}

/// The mid-size random model as a single-file checkpoint (its config in the metadata, as the real files), with
/// FP8 block weights when `fp8`.
fn mid_checkpoint(dir: &std::path::Path, fp8: bool) -> std::path::PathBuf {
    let mut m = model();
    if fp8 {
        m.quantize_blocks_fp8().expect("fp8");
    }
    let path = dir.join(if fp8 { "mid-fp8.safetensors" } else { "mid.safetensors" });
    let params = m.parameters().flatten();
    let arrays: Vec<(String, &Array)> = params
        .iter()
        .filter(|(k, a)| !(k.ends_with(".weight_scale") && a.dtype() == Dtype::Float32 && a.ndim() == 0 && !fp8))
        .map(|(k, a)| (format!("model.diffusion_model.{k}"), *a))
        .collect();
    let config = serde_json::json!({ "transformer": mid_section() });
    let meta = std::collections::HashMap::from([("config".to_string(), config.to_string())]);
    Array::save_safetensors(arrays.iter().map(|(k, a)| (k.as_str(), *a)), Some(&meta), &path).expect("save");
    path
}

fn forward(m: &LtxModel) -> (Vec<f32>, Vec<f32>) {
    let (video, audio) = inputs();
    let (v, a) = m.forward(&video, &audio, &Perturbations::none()).expect("forward");
    (v.as_slice::<f32>().to_vec(), a.as_slice::<f32>().to_vec())
}

#[test]
fn the_cached_file_loads_as_quantising_in_memory_is_reused_and_rejected_when_its_source_changes() {
    use ltx_engine::{quant::cache, transformer::quantized_file, Checkpoint};
    let dir = tempfile::tempdir().expect("tempdir");
    for (fp8, mode) in [(false, QuantMode::Q4), (true, QuantMode::Mxfp8)] {
        let source = mid_checkpoint(dir.path(), fp8);
        let file = source.file_name().expect("name").to_string_lossy().into_owned();
        let mut calls = 0;
        let (ck, made) = quantized_file::ensure(&source, mode, Dtype::Float32, &mut |_, _| {
            calls += 1;
            true
        })
        .expect("quantise");
        assert!(made && calls > 0, "{file}: made {made}, {calls} progress calls");
        assert_eq!(ck.path(), cache::path_for(&source, mode));
        assert_eq!(ck.metadata()[cache::key::MODE], mode.name());
        // Loaded from the file = quantised in memory from the same source (f32 both: bit for bit).
        let cached = LtxModel::from_quantized(&ck, mode, Dtype::Float32).expect("load cached");
        let mut direct = LtxModel::from_checkpoint(&source, Dtype::Float32).expect("load source");
        direct.quantize_blocks(mode).expect("quantize");
        assert_eq!(forward(&cached), forward(&direct), "{file}: cached vs in-memory");
        for b in &cached.transformer_blocks {
            assert!(b.attn1.to_q.is_quantized() && b.audio_ff.net.out.is_quantized() && !b.attn1.to_q.is_fp8());
        }

        // Reused: no second quantisation, the file untouched.
        let stamp = std::fs::metadata(ck.path()).and_then(|m| m.modified()).expect("mtime");
        let (_, made) =
            quantized_file::ensure(&source, mode, Dtype::Float32, &mut |_, _| panic!("requantised")).expect("reuse");
        assert!(!made);
        assert_eq!(std::fs::metadata(ck.path()).and_then(|m| m.modified()).expect("mtime"), stamp);
        // Another mode is another file.
        assert!(quantized_file::open_cached(&source, QuantMode::Mxfp4).expect("open").is_none());

        // The source replaced (a re-download: same name, new bytes): the cache is stale and made again.
        let bytes = std::fs::read(&source).expect("read");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&source, &bytes).expect("rewrite");
        assert!(quantized_file::open_cached(&source, mode).expect("open").is_none(), "{file}: stale cache used");
        let (_, made) = quantized_file::ensure(&source, mode, Dtype::Float32, &mut |_, _| true).expect("remake");
        assert!(made);
        assert_eq!(cache::existing(&source), vec![cache::path_for(&source, mode)]);
        // A cancelled quantisation leaves no file behind.
        std::fs::remove_file(cache::path_for(&source, mode)).expect("rm");
        let cancelled = quantized_file::write(&source, mode, Dtype::Float32, &mut |_, _| false);
        assert!(matches!(cancelled, Err(cache::CacheError::Cancelled)), "{cancelled:?}");
        assert!(cache::existing(&source).is_empty());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
        assert_eq!(leftovers.len(), if fp8 { 2 } else { 1 }, "{leftovers:?}");
        let _ = Checkpoint::open(&source).expect("source intact");
    }
}
