//! Preview decoder (TAELTX, `engine/src/preview`) time and peak memory on CPU (f32), at the real layout with
//! placeholder weights (cost does not depend on the values): the per-step preview (the first frame of a
//! 768×512 latent, 16×24 cells) and the whole 768×512×121 video (latent (1, 128, 16, 16, 24)), decoded
//! `chunk` latent frames at a time. Each mode runs in a fresh child process so MLX's peak is its own.
//! Output: `mode seconds mlx_peak_mib`. `LTX_BENCH_PREVIEW_CHUNKS` (default `2,4`): the chunk sizes.
use std::{process::Command, time::Instant};

use ltx_engine::{
    memory::{materialize, reset_peak, MemoryReport},
    preview::TaeDecoder,
};
use ltx_protocol::rules::Generation;
use mlx_rs::{random, Array};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1]);
    }
    let exe = std::env::current_exe().expect("exe");
    let chunks = std::env::var("LTX_BENCH_PREVIEW_CHUNKS").unwrap_or_else(|_| "2,4".into());
    println!("# mode seconds mlx_peak_mib (768x512, latent 16x24, 128 channels)");
    let modes = std::iter::once("first_frame".to_string()).chain(chunks.split(',').map(|c| format!("video_chunk_{c}")));
    for mode in modes {
        let out = Command::new(&exe).args(["--child", &mode]).output().expect("child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn child(mode: &str) {
    let rules = Generation::Ltx2.preview().expect("rules");
    let decoder = TaeDecoder::new(rules).expect("decoder");
    materialize(&decoder).expect("weights");
    let frames = if mode == "first_frame" { 1 } else { 16 };
    let latent =
        random::normal::<f32>(&[1, 128, frames, 16, 24], None, None, &random::key(0).expect("key")).expect("latent");
    latent.eval().expect("eval");
    reset_peak();
    let start = Instant::now();
    let mut decoded = 0;
    if mode == "first_frame" {
        let frame = decoder.first_frame(&latent).expect("decode");
        frame.eval().expect("eval");
        decoded = frame.shape()[1];
    } else {
        let chunk: i32 = mode.trim_start_matches("video_chunk_").parse().expect("chunk size");
        decoder
            .decode_chunked(&latent, chunk, |frames: Array| {
                decoded += frames.shape()[1];
                Ok(())
            })
            .expect("decode");
    }
    let peak = MemoryReport::now().mlx_peak as f64 / (1 << 20) as f64;
    println!("{mode} {:.2} {peak:.0} ({decoded} frames)", start.elapsed().as_secs_f64());
}
