//! Rotary position embeddings (`rope.py`). The frequency grid is computed on the host in float64
//! (`frequencies_precision = "float64"`, numpy in ltx-core) and rounded to f32; angles, cos and sin
//! follow ltx-core's f32 arithmetic. Tables are kept token-major, one value per rotated pair:
//! (B, T, H, head_dim/2), so RoPE applies to q/k in the projection's own (B, T, H, head_dim) layout and
//! the attention's head-first view of the result stays a free transpose.

use mlx_rs::{ops::indexing::IndexOp, ops::indexing::IntoStrideBy, Array, Dtype};

use super::{config::RopeType, fused, Result, TransformerError};

/// cos/sin per rotated pair (B, T, H, head_dim/2); `sign` (-1, +1) for [`fused::rotate`], shaped for the
/// pair axis of `kind` ((2, 1) split halves, (2,) interleaved pairs).
#[derive(Debug, Clone)]
pub struct Rope {
    pub kind: RopeType,
    pub cos: Array,
    pub sin: Array,
    pub sign: Array,
}

/// `theta ** linspace(0, 1, dim // (2 n_axes)) * pi/2`, in f64 (or f32 when not double precision).
pub fn freq_grid(theta: f64, n_axes: usize, dim: usize, double_precision: bool) -> Vec<f32> {
    let n = dim / (2 * n_axes);
    (0..n)
        .map(|i| {
            let x = if n == 1 { 0.0 } else { i as f64 / (n - 1) as f64 };
            if double_precision {
                (theta.powf(x) * std::f64::consts::PI / 2.0) as f32
            } else {
                let x = x as f32;
                (theta as f32).powf(x) * (std::f32::consts::PI / 2.0)
            }
        })
        .collect()
}

/// Positions and the geometry of one RoPE table.
#[derive(Debug, Clone, Copy)]
pub struct RopeSpec<'a> {
    /// (B, n_axes, T, 2) `[start, end)` bounds, f32.
    pub positions: &'a [f32],
    pub batch: usize,
    pub n_axes: usize,
    pub tokens: usize,
    pub dim: usize,
    pub heads: usize,
    pub max_pos: &'a [f64],
    pub theta: f64,
    pub use_middle: bool,
    pub double_precision: bool,
    pub kind: RopeType,
}

/// `precompute_freqs_cis`: angles `freq * (2 * pos / max_pos - 1)` ordered (freq, axis), padded at
/// the front with cos=1/sin=0, one value per rotated pair, split across heads (token-major).
pub fn precompute(spec: &RopeSpec, dtype: Dtype) -> Result<Rope> {
    let RopeSpec { positions, batch, n_axes, tokens, dim, heads, .. } = *spec;
    if positions.len() != batch * n_axes * tokens * 2 || spec.max_pos.len() != n_axes || dim % (2 * heads) != 0 {
        return Err(TransformerError::Input(format!(
            "RoPE: {} positions for B={batch} axes={n_axes} T={tokens}, max_pos {:?}, dim {dim}, heads {heads}",
            positions.len(),
            spec.max_pos
        )));
    }
    let freqs = freq_grid(spec.theta, n_axes, dim, spec.double_precision);
    let nf = freqs.len() * n_axes;
    // Split: pair (i, i + head_dim/2) of each head; interleaved: pair (2i, 2i+1). Either way dim/2 pairs,
    // padded at the front (interleaved ltx-core pads dim % (2 n_axes) values = half as many pairs).
    let width = dim / 2;
    let pad = match spec.kind {
        RopeType::Split => width - nf,
        RopeType::Interleaved => (dim % (2 * n_axes)) / 2,
    };
    let mut cos = vec![1f32; batch * tokens * width];
    let mut sin = vec![0f32; batch * tokens * width];
    for b in 0..batch {
        for t in 0..tokens {
            let row = (b * tokens + t) * width + pad;
            for a in 0..n_axes {
                let at = |k: usize| positions[((b * n_axes + a) * tokens + t) * 2 + k];
                let pos = if spec.use_middle { (at(0) + at(1)) / 2.0 } else { at(0) };
                let scaled = (pos / spec.max_pos[a] as f32) * 2.0 - 1.0;
                for (f, freq) in freqs.iter().enumerate() {
                    let angle = (freq * scaled) as f64;
                    cos[row + f * n_axes + a] = angle.cos() as f32;
                    sin[row + f * n_axes + a] = angle.sin() as f32;
                }
            }
        }
    }
    let (b, t, h) = (batch as i32, tokens as i32, heads as i32);
    let to_heads =
        |v: Vec<f32>| -> Result<Array> { Ok(Array::from_slice(&v, &[b, t, h, width as i32 / h]).as_dtype(dtype)?) };
    let sign = Array::from_slice(&[-1f32, 1.0], &[2]).as_dtype(dtype)?;
    let sign = if spec.kind == RopeType::Split { sign.reshape(&[2, 1])? } else { sign };
    Ok(Rope { kind: spec.kind, cos: to_heads(cos)?, sin: to_heads(sin)?, sign })
}

/// Apply to `x` in token-major layout (B, T, H, head_dim): split rotates (x[i], x[i + head_dim/2]) of each
/// head, interleaved (x[2i], x[2i+1]); one fused kernel on a GPU.
pub fn apply(x: &Array, rope: &Rope) -> Result<Array> {
    let shape = x.shape().to_vec();
    let [b, t, h, d] = shape[..] else {
        return Err(TransformerError::Input(format!("RoPE: x must be (B, T, H, D), got {shape:?}")));
    };
    let (pairs, cos, sin) = match rope.kind {
        RopeType::Split => {
            let half = [b, t, h, 1, d / 2];
            (x.reshape(&[b, t, h, 2, d / 2])?, rope.cos.reshape(&half)?, rope.sin.reshape(&half)?)
        }
        RopeType::Interleaved => {
            let half = [b, t, h, d / 2, 1];
            (x.reshape(&[b, t, h, d / 2, 2])?, rope.cos.reshape(&half)?, rope.sin.reshape(&half)?)
        }
    };
    // The pair partner: the pair axis read backwards (a strided view).
    let partner = match rope.kind {
        RopeType::Split => pairs.index((.., .., .., (..).stride_by(-1), ..)),
        RopeType::Interleaved => pairs.index((.., .., .., .., (..).stride_by(-1))),
    };
    Ok(fused::rotate(&pairs, &partner, &cos, &sin, &rope.sign)?.reshape(&shape)?)
}

/// Tables of the last few position sets: positions are fixed for a whole generation, so each denoising
/// step (up to 4 guided passes) reuses them instead of recomputing cos/sin on the host.
#[derive(Debug, Clone, Default)]
pub struct RopeCache(std::cell::RefCell<Vec<(Vec<f32>, String, Rope)>>);

impl RopeCache {
    const ENTRIES: usize = 8;

    pub fn get(&self, spec: &RopeSpec, dtype: Dtype) -> Result<Rope> {
        let key = format!(
            "{} {} {} {} {} {:?} {} {} {} {:?} {:?}",
            spec.batch,
            spec.n_axes,
            spec.tokens,
            spec.dim,
            spec.heads,
            spec.max_pos,
            spec.theta,
            spec.use_middle,
            spec.double_precision,
            spec.kind,
            dtype
        );
        let mut entries = self.0.borrow_mut();
        if let Some((_, _, rope)) = entries.iter().find(|(p, k, _)| *k == key && p.as_slice() == spec.positions) {
            return Ok(rope.clone());
        }
        let rope = precompute(spec, dtype)?;
        if entries.len() == Self::ENTRIES {
            entries.remove(0);
        }
        entries.push((spec.positions.to_vec(), key, rope.clone()));
        Ok(rope)
    }
}
