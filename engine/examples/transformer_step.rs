//! One AV transformer forward (one denoising step without guidance) at a mid-size config, timed in
//! f32 and bf16 on this build's MLX backend. `bench/transformer_step.sh` runs it beside the Python MLX
//! peer (`mlx-video-with-audio`) on the same weights and inputs and reports the ratio.
//!
//! Writes `<dir>/weights.safetensors` (ltx-core key layout + `config` metadata) and
//! `<dir>/io.safetensors` (inputs and the f32 velocities) for the peer; prints `name median_ms`.
//! Env: `LTX_BENCH_DIR` (default `target/bench-transformer`), `LTX_BENCH_ITERS` (default 3),
//! `LTX_BENCH_F32_ONLY` (skip bf16).
use std::{collections::HashMap, path::PathBuf, time::Instant};

use ltx_engine::transformer::{
    model::CHECKPOINT_PREFIX, positions, LtxModel, Modality, Perturbations, TransformerConfig,
};
use mlx_rs::{module::ModuleParameters, random, Array, Dtype};

/// 4 layers, 32 heads (video 32 x 32, audio 32 x 16), 1024 video + 40 audio tokens, 256 context tokens.
const GRID: (usize, usize, usize) = (4, 16, 16);
const AUDIO_TOKENS: usize = 40;
const CONTEXT: i32 = 256;

fn config() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/transformer/ltx2_19b_config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("19B config")).expect("json");
    for (k, n) in [
        ("num_layers", 4),
        ("attention_head_dim", 32),
        ("audio_attention_head_dim", 16),
        ("cross_attention_dim", 1024),
        ("audio_cross_attention_dim", 512),
    ] {
        v["transformer"][k] = n.into();
    }
    v
}

fn time(name: &str, iters: usize, mut f: impl FnMut() -> (Array, Array)) -> (Array, Array) {
    let out = f();
    mlx_rs::transforms::eval([&out.0, &out.1]).expect("warm-up");
    let mut ms: Vec<f64> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            let (v, a) = f();
            mlx_rs::transforms::eval([&v, &a]).expect("eval");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!("{name} {:.1}", ms[ms.len() / 2]);
    out
}

fn main() {
    let dir = PathBuf::from(std::env::var("LTX_BENCH_DIR").unwrap_or_else(|_| "target/bench-transformer".into()));
    let iters = std::env::var("LTX_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let cfg_json = config();
    let cfg = TransformerConfig::from_value(cfg_json["transformer"].clone()).expect("config");
    let mut model = LtxModel::new(cfg.clone(), Dtype::Float32).expect("model");
    model.init_random(11).expect("init");
    let weights_path = dir.join("weights.safetensors");
    let params: HashMap<String, Array> = model
        .parameters()
        .flatten()
        .into_iter()
        .filter(|(k, _)| !k.ends_with("weight_scale"))
        .map(|(k, a)| (format!("{CHECKPOINT_PREFIX}{k}"), a.clone()))
        .collect();
    let meta = HashMap::from([("config".to_string(), cfg_json.to_string())]);
    Array::save_safetensors(&params, &meta, &weights_path).expect("save weights");

    let (f, h, w) = GRID;
    let key = random::key(5).expect("key");
    let normal = |shape: &[i32], i: i32| {
        let k = random::split(&key, i + 2).expect("split").1;
        random::normal::<f32>(shape, None, None, &k).expect("normal")
    };
    let vt = (f * h * w) as i32;
    let inputs = HashMap::from([
        ("video_latent".to_string(), normal(&[1, vt, 128], 0)),
        ("audio_latent".to_string(), normal(&[1, AUDIO_TOKENS as i32, 128], 1)),
        ("video_context".to_string(), normal(&[1, CONTEXT, 3840], 2)),
        ("audio_context".to_string(), normal(&[1, CONTEXT, 3840], 3)),
    ]);
    let sigma = 0.7;
    let video = Modality::new(
        inputs["video_latent"].clone(),
        sigma,
        None,
        positions::video_positions(f, h, w, 24.0),
        inputs["video_context"].clone(),
    );
    let audio = Modality::new(
        inputs["audio_latent"].clone(),
        sigma,
        None,
        positions::audio_positions(AUDIO_TOKENS),
        inputs["audio_context"].clone(),
    );
    let none = Perturbations::none();
    let (v32, a32) = time("transformer_step_f32", iters, || model.forward(&video, &audio, &none).expect("forward"));
    let mut io = inputs.clone();
    io.insert("video_velocity_f32".into(), v32);
    io.insert("audio_velocity_f32".into(), a32);
    let pos = |name: &str, p: Vec<f32>, axes: i32| {
        (name.to_string(), Array::from_slice(&p, &[1, axes, p.len() as i32 / axes / 2, 2]))
    };
    io.extend([
        pos("video_positions", positions::video_positions(f, h, w, 24.0), 3),
        pos("audio_positions", positions::audio_positions(AUDIO_TOKENS), 1),
    ]);
    Array::save_safetensors(&io, None, dir.join("io.safetensors")).expect("save io");
    drop(model);

    if std::env::var_os("LTX_BENCH_F32_ONLY").is_some() {
        return;
    }
    let bf16 = LtxModel::from_checkpoint(&weights_path, Dtype::Bfloat16).expect("bf16 model");
    time("transformer_step_bf16", iters, || bf16.forward(&video, &audio, &none).expect("forward"));
}
