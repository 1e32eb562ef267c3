//! `torch.nn.Linear` with optional FP8 or quantised storage. A weight read from the file as `F8_E4M3`
//! arrives as `uint8` (MLX has no fp8 dtype) and is decoded with its per-tensor `weight_scale` at use, one
//! layer at a time, so an FP8 checkpoint stays FP8 in memory. A quantised weight ([`crate::quant`]) is the
//! packed `uint32` `weight` with its `scales` (and affine `biases`), keys as MLX's `QuantizedLinear`, and runs
//! through `quantized_matmul`.

use mlx_rs::macros::ModuleParameters;
use mlx_rs::{module::Param, ops, Array, Dtype};

use super::Result;
use crate::quant::{self, Packed, QuantMode};

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
    /// Group scales of a quantised weight (its `weight` then holds the packed words).
    #[param]
    pub scales: Param<Option<Array>>,
    /// Group biases of an affine-quantised weight.
    #[param]
    pub biases: Param<Option<Array>>,
    /// (mode, group size) of a quantised weight.
    pub quant: Option<(QuantMode, i32)>,
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
            scales: Param::new(None),
            biases: Param::new(None),
            quant: None,
            lora: None,
        })
    }

    /// The packed weight of a quantised layer.
    fn packed(&self) -> Option<Packed> {
        let ((mode, group), scales) = (self.quant?, (*self.scales).clone()?);
        Some(Packed { weight: (*self.weight).clone(), scales, biases: (*self.biases).clone(), mode, group })
    }

    fn set_packed(&mut self, p: Packed) {
        self.quant = Some((p.mode, p.group));
        *self.weight = p.weight;
        *self.scales = Some(p.scales);
        *self.biases = p.biases;
        *self.weight_scale = Array::from_f32(1.0);
    }

    /// Quantises the weight (dense or FP8, dequantised to `dtype` first, one layer at a time) in `mode`; a
    /// layer whose rows the mode cannot group stays as it is. Lazy: evaluate to free the dense weight.
    pub fn quantize(&mut self, mode: QuantMode, dtype: Dtype) -> Result<()> {
        if self.quant.is_some() {
            return Ok(());
        }
        if let Some(p) = quant::quantize(&self.dense_weight(dtype)?, mode)? {
            self.set_packed(p);
        }
        Ok(())
    }

    /// Turns the placeholder into the packed placeholders of `mode` (what a quantised file loads into).
    pub fn quantized_placeholder(&mut self, mode: QuantMode, dtype: Dtype) -> Result<()> {
        let (o, i) = (self.weight.shape()[0], self.weight.shape()[1]);
        if let Some(p) = quant::placeholder(o, i, dtype, mode)? {
            self.set_packed(p);
        }
        Ok(())
    }

    pub fn is_quantized(&self) -> bool {
        self.quant.is_some()
    }

    pub fn is_fp8(&self) -> bool {
        self.weight.dtype() == Dtype::Uint8
    }

    /// The weight in `dtype`, dequantised when stored as FP8 or quantised.
    pub fn dense_weight(&self, dtype: Dtype) -> Result<Array> {
        if let Some(p) = self.packed() {
            Ok(p.dequantize(dtype)?)
        } else if self.is_fp8() {
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
        let y = match self.packed() {
            Some(p) => {
                let y = p.matmul(x)?;
                match self.bias.as_ref() {
                    Some(b) => y.add(b)?,
                    None => y,
                }
            }
            None => {
                let w = self.dense_weight(x.dtype())?;
                // Bias folded into the GEMM (as mlx.nn.Linear does): one pass over the output, not two.
                match self.bias.as_ref() {
                    Some(b) => ops::addmm(b, x, w.t(), None, None)?,
                    None => ops::matmul(x, w.t())?,
                }
            }
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
