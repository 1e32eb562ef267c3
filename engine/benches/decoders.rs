//! Video decode time and peak memory, untiled vs tiled, on CPU (f32): the LTX-2 decoder layout
//! (res_x ×5 and three residual ×2 upsamplers) at `LTX_BENCH_BASE` base channels (default 64; the
//! real model has 128) with placeholder weights (cost does not depend on the values), latent
//! (1, 128, 3, 8, 8) -> 17 frames of 256×256. Tiled: 128 px tiles / 64 px overlap, 16-frame tiles /
//! 8 frames overlap (3×3×2 tiles). Each mode runs in a fresh child process so MLX's peak is its own.
//! Output: `mode seconds mlx_peak_mib`.
use std::{process::Command, time::Instant};

use ltx_engine::{
    config::VaeConfig,
    memory::{reset_peak, MemoryReport},
    video_vae::{
        ops::PerChannelStatistics,
        tiling::{tiled_decode, TilingConfig},
        DecodeOptions, VideoDecoder,
    },
};
use mlx_rs::{random, Array};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1]);
    }
    let exe = std::env::current_exe().expect("exe");
    println!("# mode seconds mlx_peak_mib (base channels {})", base());
    for mode in ["untiled", "tiled"] {
        let out = Command::new(&exe).args(["--child", mode]).output().expect("child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn base() -> u32 {
    std::env::var("LTX_BENCH_BASE").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn child(mode: &str) {
    let blocks = r#"[["res_x", {"num_layers": 5}], ["compress_all", {"residual": true, "multiplier": 2}],
        ["res_x", {"num_layers": 5}], ["compress_all", {"residual": true, "multiplier": 2}],
        ["res_x", {"num_layers": 5}], ["compress_all", {"residual": true, "multiplier": 2}],
        ["res_x", {"num_layers": 5}]]"#;
    let config: VaeConfig =
        serde_json::from_str(&format!(r#"{{"decoder_blocks": {blocks}, "decoder_base_channels": {}}}"#, base()))
            .expect("config");
    let mut decoder = VideoDecoder::new(&config).expect("decoder");
    decoder.statistics = Some(PerChannelStatistics {
        mean: Array::zeros::<f32>(&[128]).unwrap(),
        std: Array::ones::<f32>(&[128]).unwrap(),
    });
    let latent = random::normal::<f32>(&[1, 128, 3, 8, 8], None, None, &random::key(0).unwrap()).expect("latent");
    latent.eval().expect("eval");
    let options = DecodeOptions::default();
    reset_peak();
    let start = Instant::now();
    match mode {
        "untiled" => decoder.forward(&latent, &options).and_then(|v| Ok(v.eval()?)).expect("decode"),
        _ => {
            let tiles = TilingConfig { spatial: Some((128, 64)), temporal: Some((16, 8)) };
            tiled_decode(&decoder, &latent, &tiles, &options, |chunk| Ok(chunk.eval()?)).expect("tiled decode")
        }
    }
    let peak = MemoryReport::now().mlx_peak as f64 / (1 << 20) as f64;
    println!("{mode} {:.2} {peak:.0}", start.elapsed().as_secs_f64());
}
