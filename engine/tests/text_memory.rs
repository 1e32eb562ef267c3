//! Memory of the Gemma choices (bf16 / int8 / int4, keep vs drop), for BENCHMARKS.md
//! `## Prompt encoding`. The fast test measures the tiny model (weights after load, shrinking with
//! the bit width; Gemma freed in low-memory mode) and prints the Gemma-3-12B weight bytes computed from
//! the committed manifest. The ignored test runs one decoder layer at the real width (3840, 1024
//! tokens, f32 on CPU) to measure the activation overhead of a forward:
//! `OPENBLAS_NUM_THREADS=1 cargo test -p ltx-engine --test text_memory -- --ignored --nocapture`.
use std::{path::PathBuf, time::Instant};

use ltx_engine::{
    memory::{reset_peak, MemoryReport},
    text::{Gemma, GemmaConfig, GemmaPrecision},
};
use mlx_rs::{module::ModuleParameters, Array, Dtype};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text").join(name)
}

const MIB: f64 = 1024.0 * 1024.0;
const GB: f64 = 1e9;

fn weight_bytes(model: &Gemma) -> usize {
    let params = model.parameters().flatten();
    mlx_rs::transforms::eval(params.values().copied()).expect("eval");
    params.values().map(|a| a.nbytes()).sum()
}

#[test]
fn quantised_gemma_is_smaller_and_12b_sizes() {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    let sizes: Vec<usize> = [GemmaPrecision::Bf16, GemmaPrecision::Int8, GemmaPrecision::Int4]
        .iter()
        .map(|&p| weight_bytes(&Gemma::load(&fixture("gemma"), Dtype::Float32, p).expect("load")))
        .collect();
    eprintln!("tiny Gemma weights (f32 compute): f32 {} B, int8 {} B, int4 {} B", sizes[0], sizes[1], sizes[2]);
    // The norms stay dense, so the ratios are a little above 8/32 + 4/32 and 4/32 + 4/32 (f32 scales).
    assert!(sizes[1] * 10 < sizes[0] * 4 && sizes[2] * 10 < sizes[1] * 7, "{sizes:?}");

    // Gemma-3-12B from the manifest: matrices (linears + embedding table) vs vectors (norms).
    let text = std::fs::read_to_string(fixture("gemma3_12b_text_manifest.txt")).expect("manifest");
    let (mut matrices, mut vectors) = (0f64, 0f64);
    for line in text.lines() {
        let (_, shape) = line.split_once(' ').expect("line");
        let shape: Vec<f64> = serde_json::from_str(shape).expect("shape");
        let n: f64 = shape.iter().product();
        if shape.len() == 2 {
            matrices += n;
        } else {
            vectors += n;
        }
    }
    for p in [GemmaPrecision::Bf16, GemmaPrecision::Int8, GemmaPrecision::Int4] {
        let bytes = matrices * p.bytes_per_weight() + vectors * 2.0;
        eprintln!("Gemma-3-12B text weights, {}: {:.2} GB", p.name(), bytes / GB);
    }
    assert!((matrices + vectors - 11_766_034_176.0).abs() < 1.0);
}

/// One real-width decoder layer (vocab cut to 4096: the table is accounted analytically).
fn real_width_layer() -> GemmaConfig {
    let json = r#"{"hidden_size": 3840, "intermediate_size": 15360, "num_attention_heads": 16,
        "num_hidden_layers": 1, "num_key_value_heads": 8, "vocab_size": 4096, "sliding_window": 1024,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"}}"#;
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("config.json"), json).expect("write");
    GemmaConfig::from_file(&dir.path().join("config.json")).expect("config")
}

#[test]
#[ignore = "real-width layer: ~1 GB and tens of seconds on CPU"]
fn real_width_forward_overhead() {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    let t = 1024;
    // Activations do not depend on the weight format, and MLX's CPU quantized matmul is far slower than
    // OpenBLAS, so only the dense layer is run here; the tiny test covers the quantised paths.
    for precision in [GemmaPrecision::Bf16] {
        let mut model = Gemma::new(real_width_layer()).expect("tree");
        let mut key = mlx_rs::random::key(0).expect("key");
        for p in model.parameters_mut().flatten().values_mut() {
            let (next, k) = mlx_rs::random::split(&key, 2).expect("split");
            key = next;
            **p = mlx_rs::random::normal::<f32>(p.shape(), 0.0, 0.02, &k).expect("normal");
        }
        model.quantize(precision).expect("quantize");
        let weights = weight_bytes(&model);
        let _ = mlx_rs::memory::clear_cache();
        reset_peak();
        let before = MemoryReport::now();
        let ids = Array::from_slice(&vec![7i32; t], &[1, t as i32]);
        let mask: Vec<i32> = (0..t).map(|i| i32::from(i >= 24)).collect();
        let mask = Array::from_slice(&mask, &[1, t as i32]);
        let start = Instant::now();
        let states = model.hidden_states(&ids, &mask, Dtype::Float32).expect("forward");
        mlx_rs::transforms::eval(states.iter()).expect("eval");
        let secs = start.elapsed().as_secs_f64();
        let after = MemoryReport::now();
        eprintln!(
            "{}: weights {:.1} MiB, forward peak over weights {:.1} MiB (2 hidden states kept = {:.1} MiB), {:.1} s/layer",
            precision.name(),
            weights as f64 / MIB,
            (after.mlx_peak - before.mlx_active) as f64 / MIB,
            (2 * t * 3840 * 4) as f64 / MIB,
            secs
        );
    }
}

#[test]
#[ignore = "real-size feature normalisation: ~3 GB on CPU"]
fn real_size_feature_extractor_overhead() {
    use ltx_engine::text::FeatureExtractor;
    let (t, d, l) = (1024, 3840, 49);
    // The 188160 -> 3840 projection is cut to 16 outputs: its weight is accounted analytically.
    let fe = FeatureExtractor::new(d * l, 16).expect("new");
    let hidden: Vec<Array> = (0..l)
        .map(|i| {
            let k = mlx_rs::random::key(i as u64).expect("key");
            mlx_rs::random::normal::<f32>(&[1, t as i32, d as i32][..], 0.0, 1.0, &k).expect("normal")
        })
        .collect();
    mlx_rs::transforms::eval(hidden.iter()).expect("eval");
    let mask: Vec<i32> = (0..t).map(|i| i32::from(i >= 24)).collect();
    let mask = Array::from_slice(&mask, &[1, t as i32]);
    let _ = mlx_rs::memory::clear_cache();
    reset_peak();
    let before = MemoryReport::now();
    let (out, _) = fe.forward(&hidden, &mask).expect("forward");
    out.eval().expect("eval");
    let after = MemoryReport::now();
    eprintln!(
        "feature extractor (f32): {:.1} MiB of hidden states in, peak over them {:.1} MiB",
        (t * d * l * 4) as f64 / MIB,
        (after.mlx_peak - before.mlx_active) as f64 / MIB
    );
}
