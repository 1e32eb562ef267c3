//! The MLX operations the engine leans on, timed from Rust. `bench/mlx_ops.sh` runs this beside the same
//! operations from Python `mlx` on the same wheel and reports the ratio (binding overhead).
//! Output: one `name median_wall_ms median_cpu_ms` line per operation (median of `LTX_BENCH_ITERS`, default 10,
//! after warm-up). CPU time (all threads of the process) is the steadier figure on a shared machine.
use std::time::Instant;

use mlx_rs::{fast, ops, random, Array};

/// Process CPU time in milliseconds (all threads).
fn cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: plain out-parameter call.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(name: &str, iters: usize, f: impl Fn() -> Array) {
    f().eval().expect("warm-up");
    let (wall, cpu): (Vec<f64>, Vec<f64>) = (0..iters)
        .map(|_| {
            let (t, c) = (Instant::now(), cpu_ms());
            f().eval().expect("eval");
            (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c)
        })
        .unzip();
    println!("{name} {:.3} {:.3}", median(wall), median(cpu));
}

fn normal(shape: &[i32]) -> Array {
    let a = random::normal::<f32>(shape, None, None, None).expect("random");
    a.eval().expect("eval");
    a
}

fn main() {
    let iters = std::env::var("LTX_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let a = normal(&[2048, 2048]);
    let b = normal(&[2048, 2048]);
    time("matmul_f32_2048", iters, || ops::matmul(&a, &b).expect("matmul"));

    let (q, k, v) = (normal(&[1, 4, 4096, 64]), normal(&[1, 4, 4096, 64]), normal(&[1, 4, 4096, 64]));
    time("sdpa_f32_4096x4x64", iters, || {
        fast::scaled_dot_product_attention(&q, &k, &v, 0.125, None, None).expect("sdpa")
    });

    let x = normal(&[1, 8, 32, 32, 128]);
    let w = normal(&[128, 3, 3, 3, 128]);
    time("conv3d_f32_8x32x32x128_k3", iters, || ops::conv3d(&x, &w, None, (1, 1, 1), None, None).expect("conv3d"));
}
