//! The MLX operations the engine is built from, on this build's backend, checked against plain Rust
//! reference implementations (f64 loops) on small random inputs. Tolerances are stated per test.
mod backend;

use mlx_rs::{
    builder::Builder,
    fast,
    module::Module,
    nn::{GroupNorm, GroupNormBuilder},
    ops, Array, Dtype,
};

/// Deterministic inputs in [-1, 1) (xorshift), so failures reproduce.
fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn array(data: &[f32], shape: &[i32]) -> Array {
    Array::from_slice(data, shape)
}

fn values(a: &Array) -> Vec<f32> {
    a.as_dtype(Dtype::Float32).and_then(|a| a.eval().map(|_| a)).expect("eval").as_slice::<f32>().to_vec()
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    let tol = backend::tol(tol);
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got.iter().zip(want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
    assert!(worst <= tol, "{what}: max abs error {worst:e} > {tol:e}");
}

#[test]
fn matmul_matches_reference() {
    let (m, k, n) = (33, 70, 45);
    let a = rand_vec(m * k, 1);
    let b = rand_vec(k * n, 2);
    let got = values(&ops::matmul(array(&a, &[m as i32, k as i32]), array(&b, &[k as i32, n as i32])).unwrap());
    let mut want = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            want[i * n + j] = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
        }
    }
    assert_close(&got, &want, 1e-4, "f32 matmul");
}

#[test]
fn conv3d_channels_last_matches_reference() {
    // x (N=1, D, H, W, Cin), w (Cout, kd, kh, kw, Cin), padding 1, stride 1.
    let (d, h, w, ci, co, k) = (4usize, 5usize, 6usize, 3usize, 2usize, 3usize);
    let x = rand_vec(d * h * w * ci, 3);
    let wt = rand_vec(co * k * k * k * ci, 4);
    let out = ops::conv3d(
        array(&x, &[1, d as i32, h as i32, w as i32, ci as i32]),
        array(&wt, &[co as i32, k as i32, k as i32, k as i32, ci as i32]),
        (1, 1, 1),
        (1, 1, 1),
        None,
        None,
    )
    .unwrap();
    assert_eq!(out.shape(), &[1, d as i32, h as i32, w as i32, co as i32]);
    let at = |z: isize, y: isize, xx: isize, c: usize| -> f64 {
        if z < 0 || y < 0 || xx < 0 || z >= d as isize || y >= h as isize || xx >= w as isize {
            0.0
        } else {
            x[((z as usize * h + y as usize) * w + xx as usize) * ci + c] as f64
        }
    };
    let mut want = Vec::with_capacity(d * h * w * co);
    for z in 0..d as isize {
        for y in 0..h as isize {
            for xx in 0..w as isize {
                for o in 0..co {
                    let mut acc = 0.0;
                    for (a, b, c) in itertools3(k) {
                        for cin in 0..ci {
                            let wv = wt[(((o * k + a) * k + b) * k + c) * ci + cin] as f64;
                            acc += wv * at(z + a as isize - 1, y + b as isize - 1, xx + c as isize - 1, cin);
                        }
                    }
                    want.push(acc);
                }
            }
        }
    }
    assert_close(&values(&out), &want, 1e-4, "conv3d");
}

fn itertools3(k: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    (0..k).flat_map(move |a| (0..k).flat_map(move |b| (0..k).map(move |c| (a, b, c))))
}

#[test]
fn sdpa_matches_softmax_attention() {
    let (heads, lq, lk, dh) = (2usize, 7usize, 11usize, 8usize);
    let q = rand_vec(heads * lq * dh, 5);
    let k = rand_vec(heads * lk * dh, 6);
    let v = rand_vec(heads * lk * dh, 7);
    let scale = 1.0 / (dh as f32).sqrt();
    let sh = |l: usize| [1, heads as i32, l as i32, dh as i32];
    let out = fast::scaled_dot_product_attention(
        array(&q, &sh(lq)),
        array(&k, &sh(lk)),
        array(&v, &sh(lk)),
        scale,
        None,
        None,
    )
    .unwrap();
    let mut want = vec![0f64; heads * lq * dh];
    for hd in 0..heads {
        for i in 0..lq {
            let logits: Vec<f64> = (0..lk)
                .map(|j| {
                    (0..dh).map(|e| q[(hd * lq + i) * dh + e] as f64 * k[(hd * lk + j) * dh + e] as f64).sum::<f64>()
                        * scale as f64
                })
                .collect();
            let max = logits.iter().cloned().fold(f64::MIN, f64::max);
            let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
            let total: f64 = exps.iter().sum();
            for e in 0..dh {
                want[(hd * lq + i) * dh + e] =
                    (0..lk).map(|j| exps[j] / total * v[(hd * lk + j) * dh + e] as f64).sum();
            }
        }
    }
    assert_close(&values(&out), &want, 1e-5, "sdpa");
}

#[test]
fn fast_rope_split_halves_matches_reference() {
    // Non-traditional RoPE rotates (x[i], x[i + d/2]) by pos * base^(-2i/d).
    let (l, dh) = (5usize, 8usize);
    let x = rand_vec(l * dh, 8);
    let base = 10_000f32;
    let out = fast::rope(array(&x, &[1, 1, l as i32, dh as i32]), dh as i32, false, base, 1.0, 0, None).unwrap();
    let half = dh / 2;
    let mut want = vec![0f64; l * dh];
    for p in 0..l {
        for i in 0..half {
            let theta = p as f64 * (base as f64).powf(-(2.0 * i as f64) / dh as f64);
            let (a, b) = (x[p * dh + i] as f64, x[p * dh + i + half] as f64);
            want[p * dh + i] = a * theta.cos() - b * theta.sin();
            want[p * dh + i + half] = a * theta.sin() + b * theta.cos();
        }
    }
    assert_close(&values(&out), &want, 1e-5, "rope");
}

#[test]
fn rms_and_layer_norm_match_reference() {
    let (rows, dim) = (3usize, 16usize);
    let x = rand_vec(rows * dim, 9);
    let wt = rand_vec(dim, 10);
    let bias = rand_vec(dim, 11);
    let eps = 1e-6;
    let xa = array(&x, &[rows as i32, dim as i32]);
    let rms = fast::rms_norm(&xa, Some(&array(&wt, &[dim as i32])), eps).unwrap();
    let ln = fast::layer_norm(&xa, &array(&wt, &[dim as i32]), &array(&bias, &[dim as i32]), eps).unwrap();
    let (mut want_rms, mut want_ln) = (vec![], vec![]);
    for r in x.chunks(dim) {
        let ms = r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / dim as f64;
        let mean = r.iter().map(|v| *v as f64).sum::<f64>() / dim as f64;
        let var = r.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / dim as f64;
        for (i, v) in r.iter().enumerate() {
            want_rms.push(*v as f64 / (ms + eps as f64).sqrt() * wt[i] as f64);
            want_ln.push((*v as f64 - mean) / (var + eps as f64).sqrt() * wt[i] as f64 + bias[i] as f64);
        }
    }
    assert_close(&values(&rms), &want_rms, 1e-5, "rms_norm");
    assert_close(&values(&ln), &want_ln, 1e-5, "layer_norm");
}

#[test]
fn group_norm_pytorch_grouping_matches_reference() {
    // channels-last (N, T, H, W, C) with PyTorch's contiguous channel groups.
    let (t, c, groups) = (6usize, 8usize, 2usize);
    let x = rand_vec(t * c, 12);
    let mut gn: GroupNorm =
        GroupNormBuilder::new(groups as i32, c as i32).pytorch_compatible(true).eps(1e-5).build().unwrap();
    let out = gn.forward(&array(&x, &[1, t as i32, c as i32])).unwrap();
    let per = c / groups;
    let mut want = vec![0f64; t * c];
    for g in 0..groups {
        let idx: Vec<usize> = (0..t).flat_map(|i| (0..per).map(move |j| i * c + g * per + j)).collect();
        let mean = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / idx.len() as f64;
        let var = idx.iter().map(|&i| (x[i] as f64 - mean).powi(2)).sum::<f64>() / idx.len() as f64;
        for &i in &idx {
            want[i] = (x[i] as f64 - mean) / (var + 1e-5).sqrt();
        }
    }
    assert_close(&values(&out), &want, 1e-5, "group_norm");
}

/// IEEE-style E4M3FN decode: 1 sign, 4 exponent (bias 7), 3 mantissa bits; 0x7f/0xff are NaN, no infinities.
fn e4m3(byte: u8) -> f64 {
    let sign = if byte & 0x80 != 0 { -1.0 } else { 1.0 };
    let exp = ((byte >> 3) & 0x0f) as i32;
    let man = (byte & 0x07) as f64;
    if byte & 0x7f == 0x7f {
        return f64::NAN;
    }
    if exp == 0 {
        sign * man / 8.0 * 2f64.powi(-6)
    } else {
        sign * (1.0 + man / 8.0) * 2f64.powi(exp - 7)
    }
}

#[test]
fn fp8_e4m3_decode_covers_every_byte() {
    let bytes: Vec<u8> = (0..=255).collect();
    let got = values(&Array::from_slice(&bytes, &[256]).from_fp8(Dtype::Float32).unwrap());
    for (b, g) in bytes.iter().zip(&got) {
        let want = e4m3(*b);
        // MLX 0.32.2 decodes the two NaN codes (0x7f, 0xff) as ±480; checkpoints hold finite weights only.
        if !want.is_nan() {
            assert_eq!(*g as f64, want, "byte {b:#04x}");
        }
    }
    // the extremes: largest normal 448, smallest subnormal 2^-9
    assert_eq!(e4m3(0x7e), 448.0);
    assert_eq!(e4m3(0x01), 2f64.powi(-9));
}

#[test]
fn bf16_and_f16_casts_round_trip_exactly_representable_values() {
    let v: Vec<f32> = vec![0.0, 1.0, -2.5, 0.15625, 1024.0, -0.0078125];
    for dtype in [Dtype::Bfloat16, Dtype::Float16] {
        let back = values(&array(&v, &[v.len() as i32]).as_dtype(dtype).unwrap());
        assert_eq!(back, v, "{dtype:?}");
    }
}
