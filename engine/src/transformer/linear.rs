//! `torch.nn.Linear` with optional FP8 storage: a weight read from the file as `F8_E4M3` arrives as
//! `uint8` (MLX has no fp8 dtype) and is decoded with its per-tensor `weight_scale` at use, one layer
//! at a time, so an FP8 checkpoint stays FP8 in memory.

use mlx_rs::macros::ModuleParameters;
use mlx_rs::{module::Param, ops, Array, Dtype};

use super::Result;

/// Largest finite float8_e4m3fn value.
pub const FP8_E4M3_MAX: f32 = 448.0;

#[derive(Debug, Clone, ModuleParameters)]
pub struct Linear {
    /// (out, in) as in PyTorch; `uint8` holds float8_e4m3fn bits.
    #[param]
    pub weight: Param<Array>,
    #[param]
    pub bias: Param<Option<Array>>,
    /// Per-tensor dequantisation scale of an FP8 weight; 1 (and absent from the file) otherwise.
    #[param]
    pub weight_scale: Param<Array>,
    /// A LoRA applied at run time as `x·Aᵀ·(s·B)ᵀ` (A: (r, in), s·B: (out, r), in the compute dtype):
    /// the same product as the reference's fused `W + s·B·A`, with the resident weights left exact
    /// (see `lora::attach_lora`).
    pub lora: Option<(Array, Array)>,
}

impl Linear {
    /// Placeholder parameters of the right shape (lazy zeros: nothing is allocated until loaded).
    pub fn new(in_features: usize, out_features: usize, bias: bool) -> Result<Self> {
        let (i, o) = (in_features as i32, out_features as i32);
        Ok(Self {
            weight: Param::new(Array::zeros::<f32>(&[o, i])?),
            bias: Param::new(if bias { Some(Array::zeros::<f32>(&[o])?) } else { None }),
            weight_scale: Param::new(Array::from_f32(1.0)),
            lora: None,
        })
    }

    pub fn is_fp8(&self) -> bool {
        self.weight.dtype() == Dtype::Uint8
    }

    /// The weight in `dtype`, dequantised when stored as FP8.
    pub fn dense_weight(&self, dtype: Dtype) -> Result<Array> {
        if self.is_fp8() {
            let w = ops::from_fp8(&*self.weight, Dtype::Float32)?.multiply(&*self.weight_scale)?;
            Ok(w.as_dtype(dtype)?)
        } else if self.weight.dtype() != dtype {
            Ok(self.weight.as_dtype(dtype)?)
        } else {
            Ok((*self.weight).clone())
        }
    }

    /// Store `weight` in FP8 (see [`quantize_fp8`]).
    pub fn set_fp8(&mut self, weight: &Array) -> Result<()> {
        let (q, scale) = quantize_fp8(weight)?;
        *self.weight = q;
        *self.weight_scale = scale;
        Ok(())
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        let w = self.dense_weight(x.dtype())?;
        // Bias folded into the GEMM (as mlx.nn.Linear does): one pass over the output, not two.
        let y = match self.bias.as_ref() {
            Some(b) => ops::addmm(b, x, w.t(), None, None)?,
            None => ops::matmul(x, w.t())?,
        };
        Ok(match &self.lora {
            Some((a, b)) => y.add(ops::matmul(&ops::matmul(x, a.t())?, b.t())?)?,
            None => y,
        })
    }
}

/// Per-tensor FP8 (E4M3) quantisation as ltx-core's `quantize_weight_to_fp8_per_tensor`:
/// returns (`fp8(clip(w * 448 / max|w|))` as uint8, `weight_scale = max|w| / 448`).
pub fn quantize_fp8(weight: &Array) -> Result<(Array, Array)> {
    let w = weight.as_dtype(Dtype::Float32)?;
    let scale = Array::from_f32(FP8_E4M3_MAX).divide(ops::abs(&w)?.max(None)?)?;
    let q = ops::clip(w.multiply(&scale)?, (-FP8_E4M3_MAX, FP8_E4M3_MAX))?;
    Ok((ops::to_fp8(&q)?, ops::reciprocal(&scale)?))
}
