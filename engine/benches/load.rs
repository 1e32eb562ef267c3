//! Checkpoint loading: the engine's memory-mapped loader against MLX's own safetensors reader
//! (`Array::load_safetensors`), on a generated file of `LTX_BENCH_LOAD_MIB` MiB (default 512) of bf16
//! tensors. Each side runs in a fresh child process so RSS and MLX's peak are its own.
//! Output: `loader seconds mlx_peak_mib rss_mib` lines.
use std::{collections::HashMap, process::Command, time::Instant};

use ltx_engine::{memory::MemoryReport, Checkpoint};
use mlx_rs::Array;

fn main() {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--child"), Some(which)) => {
            let path = args.next().expect("path");
            child(&which, &path);
        }
        _ => parent(),
    }
}

fn parent() {
    let mib: usize = std::env::var("LTX_BENCH_LOAD_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(512);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.safetensors");
    // 64 bf16 tensors of equal size
    let per = mib * 1024 * 1024 / 64 / 2;
    let data: Vec<u8> = (0..per * 2).map(|i| (i % 251) as u8 & 0x3f).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = (0..64)
        .map(|i| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::BF16, vec![per], &data).expect("view");
            (format!("blocks.{i}.weight"), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).expect("write");
    let exe = std::env::current_exe().expect("exe");
    println!("# {mib} MiB bf16 file, 64 tensors; page cache warm after the first read");
    for which in ["warmup", "mmap", "mlx", "mmap", "mlx"] {
        let out = Command::new(&exe).args(["--child", which, path.to_str().expect("utf8")]).output().expect("child");
        if which != "warmup" {
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
    }
}

fn child(which: &str, path: &str) {
    let t = Instant::now();
    let arrays: HashMap<String, Array> = match which {
        "mlx" => Array::load_safetensors(path).expect("mlx load"),
        _ => Checkpoint::open(path).expect("open").tensors_with_prefix("").expect("tensors"),
    };
    mlx_rs::transforms::eval(arrays.values()).expect("eval");
    let secs = t.elapsed().as_secs_f64();
    let m = MemoryReport::now();
    let mib = |b: usize| b as f64 / 1048576.0;
    if which != "warmup" {
        println!("{which} {secs:.3} {:.0} {:.0}", mib(m.mlx_peak), mib(m.rss));
    }
}
