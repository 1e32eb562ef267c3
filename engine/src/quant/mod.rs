//! MLX's own weight quantisation, one mechanism for every linear the engine quantises (the transformer's
//! block linears, Gemma's matrices): `quantize` / `quantized_matmul` / `dequantize` in MLX 0.32.2's modes.
//!
//! - `q8`, `q4`: `affine`, group 64 (32 for rows narrower than 64, the tiny test models), a scale and a bias
//!   per group in the weight's dtype;
//! - `mxfp8`, `mxfp4`: OCP microscaling (E4M3 / E2M1 elements), group 32, one E8M0 scale byte per group,
//!   no bias; a row whose width is not a multiple of 32 stays dense.
//!
//! mlx-rs 0.33 only binds the `affine` mode, so the calls go to mlx-c directly ([`ffi`]).
mod ffi;

pub mod cache;

use mlx_rs::{Array, Dtype};

pub type Result<T> = std::result::Result<T, mlx_rs::error::Exception>;

/// A quantisation of linear weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuantMode {
    /// Affine 8-bit, group 64.
    Q8,
    /// Affine 4-bit, group 64.
    Q4,
    /// Microscaling FP8 (E4M3), group 32.
    Mxfp8,
    /// Microscaling FP4 (E2M1), group 32.
    Mxfp4,
}

impl QuantMode {
    pub const ALL: [Self; 4] = [Self::Q8, Self::Q4, Self::Mxfp8, Self::Mxfp4];

    pub fn name(self) -> &'static str {
        match self {
            Self::Q8 => "q8",
            Self::Q4 => "q4",
            Self::Mxfp8 => "mxfp8",
            Self::Mxfp4 => "mxfp4",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn bits(self) -> i32 {
        match self {
            Self::Q8 | Self::Mxfp8 => 8,
            Self::Q4 | Self::Mxfp4 => 4,
        }
    }

    /// Whether each group has an additive bias (affine) besides its scale.
    pub fn affine(self) -> bool {
        matches!(self, Self::Q8 | Self::Q4)
    }

    fn mlx_mode(self) -> &'static std::ffi::CStr {
        if self.affine() {
            c"affine"
        } else if self == Self::Mxfp8 {
            c"mxfp8"
        } else {
            c"mxfp4"
        }
    }

    /// The group size for rows of `cols` values, `None` when such a row cannot be quantised in this mode.
    pub fn group_for(self, cols: i32) -> Option<i32> {
        let groups: &[i32] = if self.affine() { &[64, 32] } else { &[32] };
        groups.iter().copied().find(|g| cols > 0 && cols % g == 0)
    }

    /// Bytes a quantised weight element takes with its group's scale (and bias), for scales in a dtype of
    /// `scale_bytes` (affine; the microscaling scales are one byte).
    pub fn bytes_per_weight(self, scale_bytes: u64) -> f64 {
        let per_group = if self.affine() { 2 * scale_bytes } else { 1 };
        let group = if self.affine() { 64.0 } else { 32.0 };
        self.bits() as f64 / 8.0 + per_group as f64 / group
    }
}

impl std::fmt::Display for QuantMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A weight `(rows, cols)` in packed form: `uint32` words along `cols`, a scale per group (the weight's
/// dtype for affine, E8M0 bytes for microscaling) and, for affine, a bias per group.
#[derive(Debug, Clone)]
pub struct Packed {
    pub weight: Array,
    pub scales: Array,
    pub biases: Option<Array>,
    pub mode: QuantMode,
    pub group: i32,
}

/// Quantises `w` (2-D, floating) along its last axis; `None` when its rows cannot be (see
/// [`QuantMode::group_for`]). Lazy: nothing is computed until evaluated.
pub fn quantize(w: &Array, mode: QuantMode) -> Result<Option<Packed>> {
    let cols = w.shape().last().copied().unwrap_or(0);
    let Some(group) = mode.group_for(cols) else { return Ok(None) };
    if w.ndim() != 2 || !w.dtype().is_float() {
        return Err(mlx_rs::error::Exception::custom(format!(
            "quantize wants a 2-D floating weight, got {:?} {:?}",
            w.shape(),
            w.dtype()
        )));
    }
    let mut out = ffi::quantize(w, group, mode)?;
    let biases = if mode.affine() { out.pop() } else { None };
    let (scales, weight) = (out.pop(), out.pop());
    match (weight, scales) {
        (Some(weight), Some(scales)) => Ok(Some(Packed { weight, scales, biases, mode, group })),
        _ => Err(mlx_rs::error::Exception::custom("mlx quantize returned too few arrays")),
    }
}

/// The packed parts' shapes and dtypes for a `(rows, cols)` weight in `dtype`, without computing anything:
/// the placeholders a quantised file's tensors are loaded into.
pub fn placeholder(rows: i32, cols: i32, dtype: Dtype, mode: QuantMode) -> Result<Option<Packed>> {
    let Some(group) = mode.group_for(cols) else { return Ok(None) };
    let weight = Array::zeros::<u32>(&[rows, cols * mode.bits() / 32])?;
    let groups = [rows, cols / group];
    let scales =
        if mode.affine() { Array::zeros::<f32>(&groups)?.as_dtype(dtype)? } else { Array::zeros::<u8>(&groups)? };
    let biases = mode.affine().then(|| Array::zeros::<f32>(&groups)?.as_dtype(dtype)).transpose()?;
    Ok(Some(Packed { weight, scales, biases, mode, group }))
}

impl Packed {
    /// `x @ W.T` (a bias-free `nn.Linear`); `x` in the scales' dtype for affine modes.
    pub fn matmul(&self, x: &Array) -> Result<Array> {
        ffi::quantized_matmul(x, self)
    }

    /// The dense weight in `dtype`.
    pub fn dequantize(&self, dtype: Dtype) -> Result<Array> {
        ffi::dequantize(&self.weight, &self.scales, self.biases.as_ref(), self.group, self.mode)?.as_dtype(dtype)
    }

    /// Rows `ids` of the table (an `nn.Embedding` lookup), dequantised into `dtype`.
    pub fn rows(&self, ids: &Array, dtype: Dtype) -> Result<Array> {
        let take = |a: &Array| a.take_axis(ids, 0);
        let biases = self.biases.as_ref().map(take).transpose()?;
        ffi::dequantize(&take(&self.weight)?, &take(&self.scales)?, biases.as_ref(), self.group, self.mode)?
            .as_dtype(dtype)
    }

    pub fn nbytes(&self) -> usize {
        self.weight.nbytes() + self.scales.nbytes() + self.biases.as_ref().map_or(0, Array::nbytes)
    }
}

#[cfg(test)]
mod tests;
