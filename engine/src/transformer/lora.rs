//! LoRA fusion (`loader/fuse_loras.py`): `W += strength * B @ A` for every `<module>.lora_A/B.weight`
//! pair (keys prefixed `diffusion_model.`), no alpha scaling. An FP8 target is dequantised, fused and
//! re-quantised per tensor like ltx-core's `_fuse_delta_with_scaled_fp8`, so it stays FP8.

use std::collections::HashMap;

use mlx_rs::{module::ModuleParameters, ops, Array, Dtype};

use super::{linear::quantize_fp8, model::LtxModel, Result, TransformerError};

/// Key prefix of LoRA files (ComfyUI layout).
pub const LORA_PREFIX: &str = "diffusion_model.";

/// Fuse one LoRA at `strength`; returns how many weights changed. A LoRA module with no matching
/// weight, or half a pair, is an error.
pub fn fuse_lora(model: &mut LtxModel, lora: &HashMap<String, Array>, strength: f32) -> Result<usize> {
    let dtype = model.dtype;
    let mut targets: Vec<&str> =
        lora.keys().filter_map(|k| k.strip_prefix(LORA_PREFIX).unwrap_or(k).strip_suffix(".lora_A.weight")).collect();
    targets.sort();
    let mut params = model.parameters_mut().flatten();
    for module in &targets {
        let get = |part: &str| {
            let key = format!("{LORA_PREFIX}{module}.{part}.weight");
            lora.get(&key).or_else(|| lora.get(key.trim_start_matches(LORA_PREFIX)))
        };
        let (Some(a), Some(b)) = (get("lora_A"), get("lora_B")) else {
            return Err(TransformerError::Input(format!("LoRA {module}: lora_B missing")));
        };
        let scale_key = format!("{module}.weight_scale");
        let scale = params.get(scale_key.as_str()).map(|s| (**s).clone());
        let Some(weight) = params.get_mut(format!("{module}.weight").as_str()) else {
            return Err(TransformerError::Input(format!("LoRA targets {module}, which the model does not have")));
        };
        let delta =
            b.as_dtype(Dtype::Float32)?.multiply(Array::from_f32(strength))?.matmul(a.as_dtype(Dtype::Float32)?)?;
        if delta.shape() != weight.shape() {
            return Err(TransformerError::Input(format!(
                "LoRA {module}: delta {:?} vs weight {:?}",
                delta.shape(),
                weight.shape()
            )));
        }
        if weight.dtype() == Dtype::Uint8 {
            let scale = scale.unwrap_or_else(|| Array::from_f32(1.0));
            let fused = ops::from_fp8(&**weight, Dtype::Float32)?.multiply(&scale)?.add(&delta)?;
            let (q, new_scale) = quantize_fp8(&fused)?;
            **weight = q;
            if let Some(s) = params.get_mut(scale_key.as_str()) {
                **s = new_scale;
            }
        } else {
            **weight = weight.as_dtype(Dtype::Float32)?.add(&delta)?.as_dtype(dtype)?;
        }
    }
    mlx_rs::transforms::eval(model.parameters().flatten().values().copied())?;
    Ok(targets.len())
}
