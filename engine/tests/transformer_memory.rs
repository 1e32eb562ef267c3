//! FP8 weights stay FP8: a forward pass dequantises one layer at a time. Own test binary so that no
//! other test allocates MLX memory while this one measures it.
use ltx_engine::transformer::{LtxModel, Modality, Perturbations, TransformerConfig};
use mlx_rs::{memory, module::ModuleParameters, Array, Dtype};

fn mid_config() -> TransformerConfig {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/transformer/ltx2_19b_config.json");
    let text = std::fs::read_to_string(path).expect("config");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let t = &mut v["transformer"];
    for (k, n) in [
        ("num_layers", 4),
        ("num_attention_heads", 8),
        ("attention_head_dim", 64),
        ("audio_num_attention_heads", 8),
        ("audio_attention_head_dim", 32),
        ("cross_attention_dim", 512),
        ("audio_cross_attention_dim", 256),
        ("caption_channels", 256),
    ] {
        t[k] = n.into();
    }
    TransformerConfig::from_value(t.clone()).expect("mid config")
}

fn param_bytes(m: &LtxModel) -> usize {
    m.parameters().flatten().values().map(|a| a.nbytes()).sum()
}

/// Working memory of one forward (peak above what was active before it) and what stays active after.
fn forward_memory(m: &LtxModel) -> (usize, usize) {
    let (f, h, w, ta) = (4, 8, 8, 32);
    let ones = |shape: &[i32]| Array::ones::<f32>(shape).expect("ones");
    let video = Modality::new(
        ones(&[1, f * h * w, 128]),
        0.7,
        None,
        ltx_engine::transformer::positions::video_positions(f as usize, h as usize, w as usize, 24.0),
        ones(&[1, 64, 256]),
    );
    let audio = Modality::new(
        ones(&[1, ta, 128]),
        0.7,
        None,
        ltx_engine::transformer::positions::audio_positions(ta as usize),
        ones(&[1, 64, 256]),
    );
    memory::clear_cache().expect("clear");
    let before = memory::active_memory().expect("active");
    memory::reset_peak_memory().expect("reset");
    {
        let (v, a) = m.forward(&video, &audio, &Perturbations::none()).expect("forward");
        mlx_rs::transforms::eval([&v, &a]).expect("eval");
    }
    let peak = memory::peak_memory().expect("peak");
    memory::clear_cache().expect("clear");
    let after = memory::active_memory().expect("active");
    (peak.saturating_sub(before), after.saturating_sub(before))
}

#[test]
fn fp8_forward_dequantises_one_layer_at_a_time() {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    let mut m = LtxModel::new(mid_config(), Dtype::Float32).expect("model");
    m.init_random(7).expect("init");
    let dense_bytes = param_bytes(&m);
    let (dense_work, _) = forward_memory(&m);
    // Largest block linear, dense in the compute dtype (f32 on CPU): the video FF projection.
    let layer = m.transformer_blocks[0].ff.net.gelu.proj.weight.nbytes();
    m.quantize_blocks_fp8().expect("fp8");
    memory::clear_cache().expect("clear");
    let fp8_bytes = param_bytes(&m);
    assert!(m.transformer_blocks[3].ff.net.out.is_fp8());
    let (fp8_work, kept) = forward_memory(&m);
    eprintln!(
        "params dense {dense_bytes} B, fp8 {fp8_bytes} B; forward work dense {dense_work} B, fp8 {fp8_work} B; layer {layer} B; kept {kept} B"
    );
    // Block linears shrink 4x; globals (AdaLN, caption, patchify, proj_out) stay in the compute dtype.
    assert!(fp8_bytes * 2 < dense_bytes, "FP8 model holds {fp8_bytes} B vs dense {dense_bytes} B");
    // Decoding one layer needs the fp8->f32 decode and the scaled copy: 2 dense layers at most.
    assert!(fp8_work <= dense_work + 2 * layer, "FP8 forward used {fp8_work} B, dense {dense_work} B + 2 x {layer} B");
    // Nothing dequantised outlives the forward pass.
    assert!(kept < layer, "{kept} B stayed active after the forward pass");
}
