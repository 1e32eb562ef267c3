//! Gemma weights in full precision or MLX affine 8/4-bit (quantised at load, [`crate::quant`]). A bias-free
//! linear and the embedding table hold either a dense weight or `(packed weight, scales, biases)`; the forward
//! uses `quantized_matmul` / a gathered `dequantize`, so a quantised model never holds dense copies.

use mlx_rs::{macros::ModuleParameters, module::Param, ops, Array, Dtype};

use super::Result;
use crate::quant::{self, Packed, QuantMode};

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
    /// The quantisation of its matrices (`None`: dense).
    pub fn mode(self) -> Option<QuantMode> {
        match self {
            Self::Bf16 => None,
            Self::Int8 => Some(QuantMode::Q8),
            Self::Int4 => Some(QuantMode::Q4),
        }
    }

    pub fn bits(self) -> Option<i32> {
        self.mode().map(QuantMode::bits)
    }

    /// Bytes per weight element including the bf16 scale and bias of each group (group 64).
    pub fn bytes_per_weight(self) -> f64 {
        self.mode().map_or(2.0, |m| m.bytes_per_weight(2))
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Bf16 => "bf16",
            Self::Int8 => "int8",
            Self::Int4 => "int4",
        }
    }
}

/// A weight `(rows, in)` stored dense or quantised along `in` ([`crate::quant`], the transformer's mechanism).
#[derive(Debug, Clone, ModuleParameters)]
pub struct QuantWeight {
    #[param]
    pub weight: Param<Array>,
    #[param]
    pub scales: Param<Option<Array>>,
    #[param]
    pub biases: Param<Option<Array>>,
    /// (mode, group size) once quantised.
    pub quant: Option<(QuantMode, i32)>,
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

    /// Quantises the dense weight in place and evaluates it, so the dense copy is freed (a row too narrow for
    /// the mode stays dense).
    pub fn quantize(&mut self, mode: QuantMode) -> Result<()> {
        if self.quant.is_some() {
            return Ok(()); // already packed: never quantise twice
        }
        let Some(p) = quant::quantize(&self.weight, mode)? else { return Ok(()) };
        mlx_rs::transforms::eval([&p.weight, &p.scales].into_iter().chain(p.biases.as_ref()))?;
        self.quant = Some((p.mode, p.group));
        *self.weight = p.weight;
        *self.scales = Some(p.scales);
        *self.biases = p.biases;
        Ok(())
    }

    fn packed(&self) -> Option<Packed> {
        let ((mode, group), scales) = (self.quant?, (*self.scales).clone()?);
        let (weight, biases) = ((*self.weight).clone(), (*self.biases).clone());
        Some(Packed { weight, scales, biases, mode, group })
    }

    /// `x @ W.T` (a bias-free `nn.Linear`).
    pub fn linear(&self, x: &Array) -> Result<Array> {
        Ok(match self.packed() {
            Some(p) => p.matmul(x)?,
            None => ops::matmul(x, self.weight.as_dtype(x.dtype())?.t())?,
        })
    }

    /// Rows `ids` of the table (an `nn.Embedding` lookup), in `dtype`.
    pub fn rows(&self, ids: &Array, dtype: Dtype) -> Result<Array> {
        Ok(match self.packed() {
            Some(p) => p.rows(ids, dtype)?,
            None => self.weight.take_axis(ids, 0)?.as_dtype(dtype)?,
        })
    }
}
