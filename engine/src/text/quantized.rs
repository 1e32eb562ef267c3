//! Gemma weights in full precision or MLX affine 8/4-bit (quantised at load). A bias-free linear and
//! the embedding table hold either a dense weight or `(packed weight, scales, biases)`; the forward uses
//! `quantized_matmul` / a gathered `dequantize`, so a quantised model never holds dense copies.

use mlx_rs::{macros::ModuleParameters, module::Param, ops, Array, Dtype};

use super::Result;

/// How the Gemma text model is held in memory (the model manager's choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GemmaPrecision {
    /// The compute dtype (bf16 on GPU, f32 on CPU).
    #[default]
    Bf16,
    /// MLX affine 8-bit, group 64.
    Int8,
    /// MLX affine 4-bit, group 64.
    Int4,
}

impl GemmaPrecision {
    pub fn bits(self) -> Option<i32> {
        match self {
            Self::Bf16 => None,
            Self::Int8 => Some(8),
            Self::Int4 => Some(4),
        }
    }

    /// Bytes per weight element including the bf16 scale and bias of each group (group 64).
    pub fn bytes_per_weight(self) -> f64 {
        match self.bits() {
            None => 2.0,
            Some(b) => b as f64 / 8.0 + 4.0 / 64.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Bf16 => "bf16",
            Self::Int8 => "int8",
            Self::Int4 => "int4",
        }
    }
}

/// Group size: 64 (MLX's default), or 32 for rows too narrow for it (tiny test models).
fn group_size(in_features: i32) -> i32 {
    if in_features % 64 == 0 {
        64
    } else {
        32
    }
}

/// A weight `(rows, in)` stored dense or affine-quantised along `in`.
#[derive(Debug, Clone, ModuleParameters)]
pub struct QuantWeight {
    #[param]
    pub weight: Param<Array>,
    #[param]
    pub scales: Param<Option<Array>>,
    #[param]
    pub biases: Param<Option<Array>>,
    /// (group size, bits) once quantised.
    pub quant: Option<(i32, i32)>,
}

impl QuantWeight {
    /// Placeholder of the right shape (lazy zeros, nothing allocated until loaded).
    pub fn new(rows: usize, cols: usize) -> Result<Self> {
        Ok(Self {
            weight: Param::new(Array::zeros::<f32>(&[rows as i32, cols as i32])?),
            scales: Param::new(None),
            biases: Param::new(None),
            quant: None,
        })
    }

    /// Quantises the dense weight in place (`bits` 8 or 4) and evaluates it, so the dense copy is freed.
    pub fn quantize(&mut self, bits: i32) -> Result<()> {
        if self.quant.is_some() {
            return Ok(()); // already packed: never quantise twice
        }
        let group = group_size(*self.weight.shape().last().unwrap_or(&0));
        let (w, s, b) = ops::quantize(&*self.weight, group, bits)?;
        mlx_rs::transforms::eval([&w, &s, &b])?;
        *self.weight = w;
        *self.scales = Some(s);
        *self.biases = Some(b);
        self.quant = Some((group, bits));
        Ok(())
    }

    /// `x @ W.T` (a bias-free `nn.Linear`).
    pub fn linear(&self, x: &Array) -> Result<Array> {
        Ok(match (self.quant, self.scales.as_ref(), self.biases.as_ref()) {
            (Some((g, bits)), Some(s), Some(b)) => ops::quantized_matmul(x, &*self.weight, s, b, true, g, bits)?,
            _ => ops::matmul(x, self.weight.as_dtype(x.dtype())?.t())?,
        })
    }

    /// Rows `ids` of the table (an `nn.Embedding` lookup), in `dtype`.
    pub fn rows(&self, ids: &Array, dtype: Dtype) -> Result<Array> {
        Ok(match (self.quant, self.scales.as_ref(), self.biases.as_ref()) {
            (Some((g, bits)), Some(s), Some(b)) => {
                let take = |a: &Array| a.take_axis(ids, 0);
                ops::dequantize(take(&self.weight)?, take(s)?, &take(b)?, g, bits)?.as_dtype(dtype)?
            }
            _ => self.weight.take_axis(ids, 0)?.as_dtype(dtype)?,
        })
    }
}
