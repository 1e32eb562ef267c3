//! Parity of the prompt-encoding port with the references (goldens from
//! `engine/goldens/text_goldens.py`): HF transformers 4.57 `Gemma3TextModel` (tiny random config with
//! 5 sliding-window layers (window 4 < 16 tokens) and 1 global layer, left-padded prompt, eager
//! attention), ltx-core 1.0.0 `FeatureExtractorV1`, `Embeddings1DConnector` and
//! `EmbeddingsProcessor.process_hidden_states`, at 16 tokens and at the production 1024. f32 on CPU,
//! weights through the real loaders.
//!
//! Error measure: `rel = max|got - want| / max|want|`. Tolerances: 1e-4 for every f32 comparison
//! (observed ≤ ~1e-6). Quantised Gemma (MLX affine, group 32 on these narrow rows) is measured by the
//! worst layer's relative L2 error `‖got − want‖ / ‖want‖`: 8-bit ≤ 3e-2, 4-bit ≤ 4e-1 (random weights
//! quantise worse than trained ones); 8-bit must exceed 1e-4 and 4-bit must exceed 8-bit.
//! bf16 compute (the GPU path, run here on the CPU): hidden states relative L2 ≤ 3e-2, contexts rel ≤ 5e-2.
mod backend;

use std::{collections::HashMap, path::PathBuf};

use ltx_engine::{
    checkpoint::{prefix, Checkpoint, LoadOptions},
    text::{
        connector::ConnectorConfig, Connector, EncoderOptions, FeatureExtractor, Gemma, GemmaPrecision, Negative,
        PromptEncoder, PromptTokenizer,
    },
};
use mlx_rs::{ops, Array, Dtype};

const TOL: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text").join(name)
}

fn goldens() -> HashMap<String, Array> {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    Checkpoint::open(fixture("goldens.safetensors")).expect("goldens").tensors_with_prefix("").expect("tensors")
}

fn values(a: &Array) -> Vec<f32> {
    let a = ops::reshape(a.as_dtype(Dtype::Float32).expect("cast"), &[-1]).expect("flat");
    a.eval().expect("eval");
    a.as_slice::<f32>().to_vec()
}

fn rel_err(got: &Array, want: &Array) -> f64 {
    assert_eq!(got.shape(), want.shape(), "shape");
    let (g, w) = (values(got), values(want));
    assert!(g.iter().all(|v| v.is_finite()), "non-finite output");
    let num = g.iter().zip(&w).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
    num / w.iter().map(|b| b.abs() as f64).fold(0.0, f64::max)
}

fn check(got: &Array, want: &Array, tol: f64, what: &str) -> f64 {
    let tol = backend::tol(tol);
    let e = rel_err(got, want);
    eprintln!("{what}: rel err {e:.2e}");
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
    e
}

fn ints(a: &Array) -> Vec<i32> {
    let a = a.as_dtype(Dtype::Int32).expect("cast").reshape(&[-1]).expect("flat");
    a.eval().expect("eval");
    a.as_slice::<i32>().to_vec()
}

/// Worst relative error over all hidden states of `tag`'s prompt; with `l2`, the relative L2 error
/// `‖got − want‖ / ‖want‖` of the worst layer instead.
fn hidden_err(gemma: &Gemma, g: &HashMap<String, Array>, tag: &str, l2: bool, dtype: Dtype) -> f64 {
    let ids = &g[&format!("{tag}.input_ids")];
    let mask = &g[&format!("{tag}.attention_mask")];
    let want = &g[&format!("{tag}.hidden_states")];
    let got = gemma.hidden_states(ids, mask, dtype).expect("forward");
    assert_eq!(got.len() as i32, want.shape()[0], "number of hidden states");
    got.iter()
        .enumerate()
        .map(|(l, h)| {
            let want = want.take_axis(Array::from_int(l as i32), 0).expect("layer");
            if l2 {
                let (g, w) = (values(h), values(&want));
                let d: f64 = g.iter().zip(&w).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
                let e = (d / w.iter().map(|b| (*b as f64).powi(2)).sum::<f64>()).sqrt();
                e
            } else {
                rel_err(h, &want)
            }
        })
        .fold(0.0, f64::max)
}

#[test]
fn gemma_hidden_states_match_transformers() {
    let g = goldens();
    let gemma = Gemma::load(&fixture("gemma"), Dtype::Float32, GemmaPrecision::Bf16).expect("load");
    assert!((0..5).all(|i| gemma.config.is_local(i)) && !gemma.config.is_local(5));
    let mask = ints(&g["prompt.attention_mask"]);
    assert!(mask.contains(&0) && mask.contains(&1), "the golden prompt must be left-padded");
    for tag in ["prompt", "negative"] {
        let e = hidden_err(&gemma, &g, tag, false, Dtype::Float32);
        eprintln!("{tag}: all hidden states, rel err {e:.2e}");
        assert!(e <= backend::tol(TOL), "{tag}: hidden states rel err {e:e} > {:e}", backend::tol(TOL));
    }
}

#[test]
fn quantised_gemma_stays_close() {
    let g = goldens();
    let mut errs = Vec::new();
    for (precision, tol) in [(GemmaPrecision::Int8, 3e-2), (GemmaPrecision::Int4, 4e-1)] {
        let gemma = Gemma::load(&fixture("gemma"), Dtype::Float32, precision).expect("load");
        assert!(gemma.layers[0].mlp.up_proj.quant.is_some(), "weights were not quantised");
        let e = hidden_err(&gemma, &g, "prompt", true, Dtype::Float32);
        eprintln!("{precision:?}: hidden states, worst layer relative L2 error {e:.2e}");
        assert!(e <= tol, "{precision:?}: rel err {e:e} > {tol:e}");
        errs.push(e);
    }
    assert!(errs[0] > 1e-4 && errs[1] > errs[0], "4-bit must be coarser than 8-bit: {errs:?}");
}

fn ltx() -> Checkpoint {
    Checkpoint::open(fixture("tiny_ltx_text.safetensors")).expect("tiny ltx")
}

#[test]
fn feature_extractor_matches_ltx_core() {
    let g = goldens();
    let ck = ltx();
    let mut fe = FeatureExtractor::new(32 * 7, 12).expect("new");
    let opts = LoadOptions { dtype: Some(Dtype::Float32), ..Default::default() };
    ck.load_into(&mut fe, prefix::TEXT_PROJECTION, &opts).expect("load");
    for tag in ["prompt", "negative"] {
        let hs = &g[&format!("{tag}.hidden_states")];
        let hidden: Vec<Array> = (0..7).map(|l| hs.take_axis(Array::from_int(l), 0).expect("layer")).collect();
        let (got, _) = fe.forward(&hidden, &g[&format!("{tag}.attention_mask")]).expect("forward");
        check(&got, &g[&format!("{tag}.features")], TOL, &format!("{tag} features"));
    }
}

#[test]
fn connectors_match_ltx_core() {
    let g = goldens();
    let ck = ltx();
    let config: ConnectorConfig = ck.config().expect("config").section("transformer").expect("section");
    for (name, audio) in [("video", false), ("audio", true)] {
        let mut c = Connector::new(&config, audio).expect("new");
        c.load(&ck, &format!("model.diffusion_model.{name}_embeddings_connector."), Dtype::Float32).expect("load");
        for tag in ["prompt", "negative"] {
            let mask = ints(&g[&format!("{tag}.attention_mask")]);
            let got = c.forward(&g[&format!("{tag}.features")], &mask).expect("forward");
            check(&got, &g[&format!("{tag}.{name}")], TOL, &format!("{tag} {name} connector"));
        }
    }
}

#[test]
fn prompt_to_contexts_matches_reference() {
    let g = goldens();
    let options = EncoderOptions { max_length: 16, dtype: Dtype::Float32, ..Default::default() };
    let mut enc = PromptEncoder::load(&fixture("gemma"), &ltx(), options).expect("encoder");
    let tok = PromptTokenizer::from_file(&fixture("gemma/tokenizer.json"), 16).expect("tokenizer");
    let prompt = "  a cat walks on the beach ";
    assert_eq!(tok.encode(prompt).expect("tokens").ids, ints(&g["prompt.input_ids"]));
    let out = enc.encode(prompt, Negative::Default).expect("encode");
    assert!(!out.cache_hit);
    assert_eq!(out.warnings.len(), 1, "the default negative prompt is truncated at 16 tokens: {:?}", out.warnings);
    let neg = out.negative.expect("negative contexts");
    check(&out.positive.video, &g["prompt.video"], TOL, "prompt video context");
    check(&out.positive.audio, &g["prompt.audio"], TOL, "prompt audio context");
    check(&neg.video, &g["negative.video"], TOL, "negative video context");
    check(&neg.audio, &g["negative.audio"], TOL, "negative audio context");
}

/// The GPU path computes in bf16: the same goldens within bf16 rounding (relative L2 ≤ 3e-2 for the hidden
/// states, rel ≤ 5e-2 for the contexts), and int4 on bf16 weights loads and runs.
#[test]
fn bf16_compute_stays_close() {
    let g = goldens();
    let gemma = Gemma::load(&fixture("gemma"), Dtype::Bfloat16, GemmaPrecision::Bf16).expect("load");
    let ids = &g["prompt.input_ids"];
    let mask = &g["prompt.attention_mask"];
    let got = gemma.hidden_states(ids, mask, Dtype::Bfloat16).expect("forward");
    assert!(got.iter().all(|h| h.dtype() == Dtype::Bfloat16));
    let e = hidden_err(&gemma, &g, "prompt", true, Dtype::Bfloat16);
    eprintln!("bf16 hidden states: worst layer relative L2 {e:.2e}");
    assert!(e <= 3e-2, "bf16 hidden states: {e:e}");
    let int4 = Gemma::load(&fixture("gemma"), Dtype::Bfloat16, GemmaPrecision::Int4).expect("int4");
    assert!(int4.layers[5].self_attn.q_proj.quant == Some((ltx_engine::quant::QuantMode::Q4, 32)));
    let e4 = hidden_err(&int4, &g, "prompt", true, Dtype::Bfloat16);
    eprintln!("bf16 int4 hidden states: worst layer relative L2 {e4:.2e}");
    assert!(e4 <= 4e-1, "bf16 int4: {e4:e}");

    let options = EncoderOptions { max_length: 16, dtype: Dtype::Bfloat16, ..Default::default() };
    let mut enc = PromptEncoder::load(&fixture("gemma"), &ltx(), options).expect("encoder");
    let out = enc.encode("  a cat walks on the beach ", Negative::None).expect("encode");
    check(&out.positive.video, &g["prompt.video"], 5e-2, "bf16 prompt video context");
    check(&out.positive.audio, &g["prompt.audio"], 5e-2, "bf16 prompt audio context");
}

/// The production length: 1024 tokens (positions up to 1023 on both RoPE kinds, 682 left-padding
/// tokens whose query rows are fully masked, 128 register tilings), f32 tolerance 1e-4.
#[test]
fn production_length_matches_reference() {
    let g = goldens();
    let mask = ints(&g["long.attention_mask"]);
    assert_eq!(mask.len(), 1024);
    assert!(mask.iter().filter(|&&m| m == 0).count() > 512, "the long golden must be mostly padding");
    let gemma = Gemma::load(&fixture("gemma"), Dtype::Float32, GemmaPrecision::Bf16).expect("load");
    let e = hidden_err(&gemma, &g, "long", false, Dtype::Float32);
    eprintln!("1024 tokens: all hidden states, rel err {e:.2e}");
    assert!(e <= backend::tol(TOL), "1024 tokens: hidden states rel err {e:e} > {:e}", backend::tol(TOL));

    let options = EncoderOptions { max_length: 1024, dtype: Dtype::Float32, ..Default::default() };
    let mut enc = PromptEncoder::load(&fixture("gemma"), &ltx(), options).expect("encoder");
    let out = enc.encode(ltx_engine::text::DEFAULT_NEGATIVE_PROMPT, Negative::None).expect("encode");
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    check(&out.positive.video, &g["long.video"], TOL, "1024 tokens video context");
    check(&out.positive.audio, &g["long.audio"], TOL, "1024 tokens audio context");
}
