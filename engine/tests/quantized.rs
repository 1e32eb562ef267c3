//! Gemma's int8/int4 linears (`text::quantized::QuantWeight`, MLX affine quantisation) against the same packed
//! weights dequantised and multiplied densely, at Gemma-3-12B's real projection shapes and at the tiny test
//! model's, on whichever backend the suite runs (`bench/gpu/remote.sh` runs it on MLX CUDA).
//!
//! Both sides use the identical quantised weights, so the only difference is the kernel: what is compared is
//! the quantised matmul itself, not the quantisation error. Tolerance (relative L2): f32 1e-4 on the CPU
//! (`backend::tol`: 5e-3 on a GPU, TF32), bf16 1e-2 (bf16 output rounding, 2^-8 ≈ 3.9e-3 per element).
//! bf16 runs on a GPU only, where the engine computes in bf16: MLX's CPU kernel accumulates bf16 in bf16
//! (7e-2 at k = 3840), and the engine computes in f32 on the CPU.
mod backend;

use ltx_engine::{quant::QuantMode, text::quantized::QuantWeight};
use mlx_rs::{ops, random, Array, Dtype};

fn rel_l2(got: &Array, want: &Array) -> f64 {
    let got = got.as_dtype(Dtype::Float32).expect("f32");
    let d = got.subtract(want).expect("sub");
    let norm =
        |a: &Array| f64::from(a.square().expect("sq").sum(None).expect("sum").sqrt().expect("sqrt").item_cast::<f32>());
    norm(&d) / norm(want).max(1e-30)
}

/// Relative L2 error of the quantised linear `x @ W.T` (x: `m × k`, W: `n × k`) in `mode` and `dtype`.
fn error(m: i32, k: i32, n: i32, mode: QuantMode, dtype: Dtype, seed: u64) -> f64 {
    let key = random::key(seed).expect("key");
    let (kw, kx) = random::split(&key, 2).expect("split");
    let w = random::normal::<f32>(&[n, k], 0.0, 0.02, &kw).expect("w").as_dtype(dtype).expect("dtype");
    let x = random::normal::<f32>(&[m, k], None, None, &kx).expect("x").as_dtype(dtype).expect("dtype");
    let mut q = QuantWeight::new(n as usize, k as usize).expect("new");
    *q.weight = w;
    q.quantize(mode).expect("quantize");
    let (m, group) = q.quant.expect("quantised");
    assert_eq!(m, mode);
    let bits = mode.bits();
    let got = q.linear(&x).expect("quantized_matmul");
    let (Some(s), Some(bias)) = (q.scales.as_ref(), q.biases.as_ref()) else { panic!("no scales") };
    let dense =
        ops::dequantize(&*q.weight, s, bias, group, bits).expect("dequantize").as_dtype(Dtype::Float32).expect("f32");
    let want = ops::matmul(x.as_dtype(Dtype::Float32).expect("f32"), dense.t()).expect("matmul");
    rel_l2(&got, &want)
}

#[test]
fn quantized_linears_match_their_dequantized_weights() {
    // (what, m, k, n): Gemma-3-12B (hidden 3840, 16 heads x 256, 8 KV heads, MLP 15360) over a prompt and
    // one row, and the tiny parity model (hidden 32, 2 heads x 16, 1 KV head, MLP 64; group 32 where k = 32).
    let cases = [
        ("gemma q_proj", 64, 3840, 4096),
        ("gemma k/v_proj", 64, 3840, 2048),
        ("gemma o_proj", 64, 4096, 3840),
        ("gemma gate/up_proj", 64, 3840, 15360),
        ("gemma down_proj", 64, 15360, 3840),
        ("gemma q_proj, one row", 1, 3840, 4096),
        ("tiny q_proj", 7, 32, 32),
        ("tiny k/v_proj", 7, 32, 16),
        ("tiny gate/up_proj", 7, 32, 64),
        ("tiny down_proj", 7, 64, 32),
    ];
    let mut failures = Vec::new();
    for (i, (what, m, k, n)) in cases.into_iter().enumerate() {
        // The CPU (CI) checks one Gemma-sized weight: generating and packing the MLP's takes it a minute.
        if !backend::on_gpu() && (m > 1 && k > 64) {
            continue;
        }
        for mode in [QuantMode::Q8, QuantMode::Q4] {
            let bits = mode.bits();
            let dtypes = [(Dtype::Float32, backend::tol(1e-4)), (Dtype::Bfloat16, 1e-2)];
            for (dtype, tol) in dtypes.into_iter().take(if backend::on_gpu() { 2 } else { 1 }) {
                let e = error(m, k, n, mode, dtype, i as u64);
                let verdict = if e <= tol { "ok" } else { "FAIL" };
                eprintln!("{what} {m}x{k}x{n} int{bits} {dtype:?}: rel L2 {e:.2e} (tol {tol:.0e}) {verdict}");
                if e > tol {
                    failures.push(format!("{what} int{bits} {dtype:?}: {e:.2e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
