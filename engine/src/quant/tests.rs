use mlx_rs::{ops, transforms::eval, Array, Dtype};

use super::*;

fn rel_l2(a: &Array, b: &Array) -> f32 {
    let d = a.subtract(b).unwrap();
    let n = |x: &Array| x.square().unwrap().sum(None).unwrap().sqrt().unwrap().item_cast::<f32>();
    n(&d) / n(b).max(1e-30)
}

fn random(shape: &[i32], seed: u64) -> Array {
    let key = mlx_rs::random::key(seed).unwrap();
    let bound = 1.0 / (shape[shape.len() - 1] as f32).sqrt();
    mlx_rs::random::uniform::<_, f32>(-bound, bound, shape, &key).unwrap()
}

/// The block linears' real shapes (out, in) of LTX-2 19B / LTX-2.3 22B: video attention and feed-forward
/// (4096, 4× 4096), audio (2048, 4× 2048), the audio-to-video queries and the gate logits (heads × dim).
const REAL: [(i32, i32); 6] = [(4096, 4096), (16384, 4096), (4096, 16384), (8192, 2048), (2048, 4096), (32, 4096)];

#[test]
fn quantized_matmul_equals_the_dequantised_weight_at_real_shapes() {
    for mode in QuantMode::ALL {
        for (i, &(rows, cols)) in REAL.iter().enumerate() {
            let w = random(&[rows, cols], i as u64);
            let x = random(&[1, 16, cols], 100 + i as u64);
            let p = quantize(&w, mode).unwrap().expect("real shapes quantise");
            let dense = p.dequantize(Dtype::Float32).unwrap();
            let (y, reference) = (p.matmul(&x).unwrap(), ops::matmul(&x, dense.t()).unwrap());
            eval([&y, &reference, &dense]).unwrap();
            assert_eq!(y.shape(), &[1, 16, rows]);
            // The kernel against its own dequantised weight: f32 accumulation order only.
            let err = rel_l2(&y, &reference);
            assert!(err < 1e-5, "{mode} {rows}x{cols}: kernel vs dequantised rel L2 {err}");
            // And the quantisation error itself, per mode (uniform weights: no outliers).
            let q = rel_l2(&dense, &w);
            let bound = match mode {
                QuantMode::Q8 => 0.005,
                QuantMode::Q4 => 0.09,
                QuantMode::Mxfp8 => 0.04,
                QuantMode::Mxfp4 => 0.2,
            };
            assert!(q < bound && q > 0.0, "{mode} {rows}x{cols}: weight rel L2 {q} (bound {bound})");
        }
    }
}

#[test]
fn placeholders_have_the_packed_shapes_and_dtypes() {
    for mode in QuantMode::ALL {
        let w = random(&[128, 256], 7);
        let real = quantize(&w, mode).unwrap().unwrap();
        let ph = placeholder(128, 256, Dtype::Float32, mode).unwrap().unwrap();
        assert_eq!(real.weight.shape(), ph.weight.shape(), "{mode}");
        assert_eq!(real.weight.dtype(), ph.weight.dtype(), "{mode}");
        assert_eq!(real.scales.shape(), ph.scales.shape(), "{mode}");
        assert_eq!(real.scales.dtype(), ph.scales.dtype(), "{mode}");
        assert_eq!(real.biases.as_ref().map(|b| b.shape().to_vec()), ph.biases.as_ref().map(|b| b.shape().to_vec()));
        assert_eq!(real.group, ph.group);
        let bytes = real.nbytes() as f64 / (128.0 * 256.0);
        assert!((bytes - mode.bytes_per_weight(4)).abs() < 1e-9, "{mode}: {bytes}");
    }
    // Rows too narrow for the mode stay dense; affine falls back to groups of 32.
    assert!(quantize(&random(&[4, 48], 1), QuantMode::Mxfp4).unwrap().is_none());
    assert_eq!(quantize(&random(&[4, 96], 1), QuantMode::Q4).unwrap().map(|p| p.group), Some(32));
    assert_eq!(QuantMode::parse("MXFP4"), Some(QuantMode::Mxfp4));
    assert_eq!(QuantMode::parse("q3"), None);
}

#[test]
fn table_rows_dequantise_like_the_whole_table() {
    let table = random(&[64, 128], 3);
    for mode in QuantMode::ALL {
        let p = quantize(&table, mode).unwrap().unwrap();
        let ids = Array::from_slice(&[5i32, 0, 63], &[3]);
        let rows = p.rows(&ids, Dtype::Float32).unwrap();
        let all = p.dequantize(Dtype::Float32).unwrap().take_axis(&ids, 0).unwrap();
        assert_eq!(rel_l2(&rows, &all), 0.0, "{mode}");
    }
}
