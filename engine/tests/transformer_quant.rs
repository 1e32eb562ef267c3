//! The transformer's quantised modes ([`ltx_engine::quant`]): which layers are quantised, and the forward of a
//! mid-size random model in q8/q4/mxfp8/mxfp4 against the same model dense (f32 on the CPU). Random uniform
//! weights have no outliers, so the errors bound the arithmetic of each mode, not the visual quality. Measured
//! (video / audio rel L2): q8 7.4e-4 / 8.8e-4, mxfp8 5.0e-3 / 5.4e-3, q4 1.4e-2 / 1.4e-2, mxfp4 2.2e-2 / 2.5e-2;
//! the bounds are 3-4x those.
use ltx_engine::quant::QuantMode;
use ltx_engine::transformer::{LtxModel, Modality, Perturbations, TransformerConfig};
use mlx_rs::{module::ModuleParameters, Array, Dtype};

fn mid_config() -> TransformerConfig {
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
    TransformerConfig::from_value(t.clone()).expect("mid config")
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
