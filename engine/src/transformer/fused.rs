//! The elementwise chains of a block, each one kernel on a GPU: MLX `compile` traces the chain once per
//! input shape and fuses it into a single kernel (one read of the inputs, one write of the result)
//! instead of one pass over the activations per operation. The arithmetic runs in f32 inside the kernel
//! and the result is rounded once to the activations' dtype.
//!
//! On the CPU backend the same functions run uncompiled (MLX's CPU `compile` needs a C++ compiler at run
//! time); the math is identical, so the CPU parity suites check it. `LTX_NO_FUSE=1` runs them uncompiled
//! on a GPU too (a diagnostic switch).

use std::{
    cell::RefCell,
    collections::HashMap,
    sync::atomic::{AtomicU8, Ordering},
};

use mlx_rs::{error::Exception, transforms::compile::compile, Array, Device, DeviceType, Dtype};

use super::{Result, TransformerError};

type Chain = fn(&[Array]) -> std::result::Result<Array, Exception>;
type Compiled = Box<dyn FnMut(&[Array]) -> std::result::Result<Vec<Array>, Exception>>;

thread_local! {
    /// One compiled function per chain for this thread (MLX caches the traced graphs per input shapes).
    static COMPILED: RefCell<HashMap<&'static str, Compiled>> = RefCell::new(HashMap::new());
}

/// 0: not decided yet (`LTX_NO_FUSE` is read on first use), 1: fuse on a GPU, 2: never fuse.
static FUSION: AtomicU8 = AtomicU8::new(0);

/// Turns the GPU fusion on or off for the whole process (benchmarks compare both; the default is on).
pub fn set_fusion(enabled: bool) {
    FUSION.store(if enabled { 1 } else { 2 }, Ordering::Relaxed);
}

fn fusion() -> bool {
    match FUSION.load(Ordering::Relaxed) {
        0 => {
            let on = !std::env::var("LTX_NO_FUSE").is_ok_and(|v| v == "1");
            set_fusion(on);
            on
        }
        v => v == 1,
    }
}

fn on_gpu() -> bool {
    fusion() && Device::try_default().and_then(|d| d.get_type()).is_ok_and(|t| matches!(t, DeviceType::Gpu))
}

fn run(name: &'static str, chain: Chain, args: &[Array]) -> Result<Array> {
    if on_gpu() {
        run_compiled(name, chain, args)
    } else {
        Ok(chain(args)?)
    }
}

fn run_compiled(name: &'static str, chain: Chain, args: &[Array]) -> Result<Array> {
    COMPILED.with(|c| {
        let mut cache = c.borrow_mut();
        let f = cache.entry(name).or_insert_with(|| {
            let mut compiled = compile(move |a: &[Array]| chain(a).map(|o| vec![o]), false);
            Box::new(move |a: &[Array]| compiled(a))
        });
        f(args)?.pop().ok_or_else(|| TransformerError::Input(format!("fused {name}: no output")))
    })
}

fn f32(a: &Array) -> std::result::Result<Array, Exception> {
    a.as_dtype(Dtype::Float32)
}

fn modulate_chain(a: &[Array]) -> std::result::Result<Array, Exception> {
    let scale = f32(&a[1])?.add(f32(&a[2])?)?.add(Array::from_f32(1.0))?;
    let shift = f32(&a[3])?.add(f32(&a[4])?)?;
    f32(&a[0])?.multiply(scale)?.add(shift)?.as_dtype(a[0].dtype())
}

fn gated_add_chain(a: &[Array]) -> std::result::Result<Array, Exception> {
    let gate = f32(&a[2])?.add(f32(&a[3])?)?;
    f32(&a[0])?.add(f32(&a[1])?.multiply(gate)?)?.as_dtype(a[0].dtype())
}

fn gelu_tanh_chain(a: &[Array]) -> std::result::Result<Array, Exception> {
    let x = f32(&a[0])?;
    let c = Array::from_f32((2.0 / std::f64::consts::PI).sqrt() as f32);
    let inner = x.add(Array::from_f32(0.044715).multiply(x.multiply(&x)?.multiply(&x)?)?)?;
    let t = mlx_rs::ops::tanh(&c.multiply(inner)?)?;
    Array::from_f32(0.5).multiply(&x)?.multiply(Array::from_f32(1.0).add(t)?)?.as_dtype(a[0].dtype())
}

fn rotate_chain(a: &[Array]) -> std::result::Result<Array, Exception> {
    let rotated = f32(&a[1])?.multiply(f32(&a[3])?)?.multiply(f32(&a[4])?)?;
    f32(&a[0])?.multiply(f32(&a[2])?)?.add(rotated)?.as_dtype(a[0].dtype())
}

/// `x * (1 + scale_a + scale_b) + (shift_a + shift_b)`: AdaLN modulation, each of scale and shift given as
/// the table row and the timestep row (their sum is the modulation value).
pub fn modulate(x: &Array, scale: (&Array, &Array), shift: (&Array, &Array)) -> Result<Array> {
    let args = [x.clone(), scale.0.clone(), scale.1.clone(), shift.0.clone(), shift.1.clone()];
    run("modulate", modulate_chain, &args)
}

/// `x + y * (gate_a + gate_b)`: a gated residual, the gate given as table row and timestep row.
pub fn gated_add(x: &Array, y: &Array, gate: (&Array, &Array)) -> Result<Array> {
    run("gated_add", gated_add_chain, &[x.clone(), y.clone(), gate.0.clone(), gate.1.clone()])
}

/// `gelu(x, approximate="tanh")` = `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
pub fn gelu_tanh(x: &Array) -> Result<Array> {
    run("gelu_tanh", gelu_tanh_chain, std::slice::from_ref(x))
}

/// RoPE on pairs: `x * cos + partner(x) * sin * sign`, where `partner` is `x` with the two members of
/// every rotated pair swapped (a strided view, no copy) and `sign` (-1, +1) orders the rotation.
/// `pairs`/`partner` and `cos`/`sin` must broadcast together.
pub fn rotate(pairs: &Array, partner: &Array, cos: &Array, sin: &Array, sign: &Array) -> Result<Array> {
    run("rotate", rotate_chain, &[pairs.clone(), partner.clone(), cos.clone(), sin.clone(), sign.clone()])
}

#[cfg(test)]
mod tests {
    use mlx_rs::{ops::indexing::IndexOp, ops::indexing::IntoStrideBy, random, Array, Dtype};

    use super::*;

    fn rand(shape: &[i32], seed: u64, dtype: Dtype) -> Array {
        let key = random::key(seed).expect("key");
        random::normal::<f32>(shape, None, None, &key).and_then(|a| a.as_dtype(dtype)).expect("normal")
    }

    fn max_rel(a: &Array, b: &Array) -> f32 {
        let (a, b) = (a.as_dtype(Dtype::Float32).expect("f32"), b.as_dtype(Dtype::Float32).expect("f32"));
        let diff = mlx_rs::ops::abs(a.subtract(&b).expect("sub")).and_then(|d| d.max(None)).expect("max");
        let range = mlx_rs::ops::abs(&b).and_then(|d| d.max(None)).expect("max");
        diff.item_cast::<f32>() / range.item_cast::<f32>()
    }

    /// The compiled (fused) form of every chain computes what the op-by-op form does (MLX's CPU backend
    /// compiles too, with the system C++ compiler), in f32 and bf16, with rows broadcast against tokens and
    /// RoPE's reversed-stride partner view as an input.
    #[test]
    fn compiled_chains_match_op_by_op() {
        for dtype in [Dtype::Float32, Dtype::Bfloat16] {
            let r = |shape: &[i32], seed| rand(shape, seed, dtype);
            let (x, y) = (r(&[1, 6, 16], 1), r(&[1, 6, 16], 2));
            let (row, tok) = (r(&[1, 1, 16], 3), r(&[1, 6, 16], 4));
            let pairs = r(&[1, 6, 2, 2, 4], 5);
            let partner = pairs.index((.., .., .., (..).stride_by(-1), ..));
            let (cos, sin) = (r(&[1, 6, 2, 1, 4], 6), r(&[1, 6, 2, 1, 4], 7));
            let sign = Array::from_slice(&[-1f32, 1.0], &[2, 1]).as_dtype(dtype).expect("sign");
            let cases: [(&'static str, Chain, Vec<Array>); 4] = [
                ("modulate", modulate_chain, vec![x.clone(), row.clone(), tok.clone(), tok.clone(), row.clone()]),
                ("gated_add", gated_add_chain, vec![x.clone(), y.clone(), row.clone(), tok.clone()]),
                ("gelu_tanh", gelu_tanh_chain, vec![x.clone()]),
                ("rotate", rotate_chain, vec![pairs.clone(), partner, cos, sin, sign]),
            ];
            for (name, chain, args) in cases {
                let fused = run_compiled(name, chain, &args).expect("compiled");
                let eager = chain(&args).expect("op by op");
                assert_eq!((fused.dtype(), fused.shape()), (dtype, eager.shape()), "{name}");
                let e = max_rel(&fused, &eager);
                // bf16: both round the same f32 value once, but a 1-ulp tie can fall either way.
                let tol = if dtype == Dtype::Float32 { 1e-6 } else { 8e-3 };
                assert!(e <= tol, "{name} {dtype:?}: compiled vs op by op {e:e}");
            }
        }
        // The partner view really is the pair-swapped tensor.
        let p = Array::from_slice(&[1f32, 2.0, 3.0, 4.0], &[1, 1, 1, 2, 2]);
        let swapped = p.index((.., .., .., (..).stride_by(-1), ..)).reshape(&[-1]).expect("flat");
        assert_eq!(swapped.as_slice::<f32>(), &[3.0, 4.0, 1.0, 2.0]);
    }
}
