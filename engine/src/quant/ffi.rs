//! mlx-c's quantisation calls with a `mode` (mlx-rs 0.33 passes `affine` only).
use std::sync::Once;

use mlx_rs::{error::Exception, Array, Stream};

use super::{Packed, QuantMode, Result};

/// mlx-c reports errors through a handler that mlx-rs installs on its first checked op; without it a failing
/// call would end the process. One checked op makes sure it is installed before ours run.
fn ensure_error_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = Array::from_f32(0.0).abs();
    });
}

fn int(v: i32) -> mlx_sys::mlx_optional_int {
    mlx_sys::mlx_optional_int { value: v, has_value: true }
}

fn check(status: i32, what: &str, mode: QuantMode) -> Result<()> {
    if status == 0 {
        Ok(())
    } else {
        Err(Exception::custom(format!("mlx {what} ({mode}) failed")))
    }
}

/// An owned empty array (what mlx-c's out-parameters and "may be null" arguments take).
fn empty() -> Array {
    // SAFETY: a fresh empty mlx_array, owned by the returned Array (freed on drop).
    unsafe { Array::from_ptr(mlx_sys::mlx_array_new()) }
}

/// `mlx.core.quantize(w, group, bits, mode)`: `[weight, scales(, biases)]`.
pub fn quantize(w: &Array, group: i32, mode: QuantMode) -> Result<Vec<Array>> {
    ensure_error_handler();
    let stream = Stream::thread_local_or_default();
    let global_scale = empty();
    // SAFETY: every handle passed is a live mlx object; the vector is freed below after its arrays were
    // copied out (each `get` returns a new reference).
    unsafe {
        let mut res = mlx_sys::mlx_vector_array_new();
        let status = mlx_sys::mlx_quantize(
            &mut res,
            w.as_ptr(),
            int(group),
            int(mode.bits()),
            mode.mlx_mode().as_ptr(),
            global_scale.as_ptr(),
            stream.as_ptr(),
        );
        let mut out = Vec::new();
        if status == 0 {
            for i in 0..mlx_sys::mlx_vector_array_size(res) {
                let mut a = mlx_sys::mlx_array_new();
                mlx_sys::mlx_vector_array_get(&mut a, res, i);
                out.push(Array::from_ptr(a));
            }
        }
        mlx_sys::mlx_vector_array_free(res);
        check(status, "quantize", mode)?;
        Ok(out)
    }
}

/// `x @ dequantize(p).T` without materialising the dense weight.
pub fn quantized_matmul(x: &Array, p: &Packed) -> Result<Array> {
    ensure_error_handler();
    let stream = Stream::thread_local_or_default();
    let none = empty();
    // SAFETY: live handles; the result is owned by the Array made from it.
    let (status, res) = unsafe {
        let mut raw = mlx_sys::mlx_array_new();
        let s = mlx_sys::mlx_quantized_matmul(
            &mut raw,
            x.as_ptr(),
            p.weight.as_ptr(),
            p.scales.as_ptr(),
            p.biases.as_ref().map_or(none.as_ptr(), Array::as_ptr),
            true,
            int(p.group),
            int(p.mode.bits()),
            p.mode.mlx_mode().as_ptr(),
            stream.as_ptr(),
        );
        (s, Array::from_ptr(raw))
    };
    check(status, "quantized_matmul", p.mode)?;
    Ok(res)
}

/// `mlx.core.dequantize` in the scales' dtype (affine) or float32 (microscaling).
pub fn dequantize(w: &Array, scales: &Array, biases: Option<&Array>, group: i32, mode: QuantMode) -> Result<Array> {
    ensure_error_handler();
    let stream = Stream::thread_local_or_default();
    let none = empty();
    let global_scale = empty();
    let no_dtype = mlx_sys::mlx_optional_dtype { value: mlx_sys::mlx_dtype__MLX_FLOAT32, has_value: false };
    // SAFETY: live handles; the result is owned by the Array made from it.
    let (status, res) = unsafe {
        let mut raw = mlx_sys::mlx_array_new();
        let s = mlx_sys::mlx_dequantize(
            &mut raw,
            w.as_ptr(),
            scales.as_ptr(),
            biases.map_or(none.as_ptr(), Array::as_ptr),
            int(group),
            int(mode.bits()),
            mode.mlx_mode().as_ptr(),
            global_scale.as_ptr(),
            no_dtype,
            stream.as_ptr(),
        );
        (s, Array::from_ptr(raw))
    };
    check(status, "dequantize", mode)?;
    Ok(res)
}
