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

/// Every Linear of the transformer blocks with its key path (`transformer_blocks.3.attn1.to_q`).
fn block_linears(model: &mut LtxModel) -> Vec<(String, &mut super::linear::Linear)> {
    let mut out = Vec::new();
    for (i, b) in model.transformer_blocks.iter_mut().enumerate() {
        let attns = [
            ("attn1", &mut b.attn1),
            ("attn2", &mut b.attn2),
            ("audio_attn1", &mut b.audio_attn1),
            ("audio_attn2", &mut b.audio_attn2),
            ("audio_to_video_attn", &mut b.audio_to_video_attn),
            ("video_to_audio_attn", &mut b.video_to_audio_attn),
        ];
        for (name, a) in attns {
            out.push((format!("transformer_blocks.{i}.{name}.to_q"), &mut a.to_q));
            out.push((format!("transformer_blocks.{i}.{name}.to_k"), &mut a.to_k));
            out.push((format!("transformer_blocks.{i}.{name}.to_v"), &mut a.to_v));
            for (j, o) in a.to_out.iter_mut().enumerate() {
                out.push((format!("transformer_blocks.{i}.{name}.to_out.{j}"), o));
            }
            if let Some(g) = a.to_gate_logits.as_mut() {
                out.push((format!("transformer_blocks.{i}.{name}.to_gate_logits"), g));
            }
        }
        for (name, f) in [("ff", &mut b.ff), ("audio_ff", &mut b.audio_ff)] {
            out.push((format!("transformer_blocks.{i}.{name}.net.0.proj"), &mut f.net.gelu.proj));
            out.push((format!("transformer_blocks.{i}.{name}.net.2"), &mut f.net.out));
        }
    }
    out
}

/// Attaches one LoRA at `strength` as run-time adapters on the blocks' Linears (replacing any attached
/// before); returns how many Linears got one. Equivalent to [`fuse_lora`] without changing the weights, so
/// the same resident model serves the un-adapted stage 1 of the next job ([`detach_lora`]). A LoRA key for
/// a module outside the blocks, half a pair or a shape mismatch is an error and nothing is attached.
pub fn attach_lora(model: &mut LtxModel, lora: &HashMap<String, Array>, strength: f32) -> Result<usize> {
    let dtype = model.dtype;
    let mut pairs = HashMap::new();
    for key in lora.keys() {
        let Some(module) = key.strip_prefix(LORA_PREFIX).unwrap_or(key).strip_suffix(".lora_A.weight") else {
            continue;
        };
        let b = lora
            .get(&key.replace(".lora_A.weight", ".lora_B.weight"))
            .ok_or_else(|| TransformerError::Input(format!("LoRA {module}: lora_B missing")))?;
        let (a, b) = (lora[key].as_dtype(dtype)?, b.multiply(Array::from_f32(strength))?.as_dtype(dtype)?);
        pairs.insert(module.to_string(), (a, b));
    }
    if lora.keys().filter(|k| k.ends_with(".lora_B.weight")).count() != pairs.len() {
        return Err(TransformerError::Input("LoRA: a lora_B weight without its lora_A".into()));
    }
    let mut linears = block_linears(model);
    let mut plan = Vec::with_capacity(pairs.len());
    for (module, (a, b)) in pairs {
        let Some(idx) = linears.iter().position(|(k, _)| *k == module) else {
            return Err(TransformerError::Input(format!("LoRA targets {module}, which the model does not have")));
        };
        let w = linears[idx].1.weight.shape().to_vec();
        if a.ndim() != 2 || b.ndim() != 2 || b.shape()[1] != a.shape()[0] || [b.shape()[0], a.shape()[1]] != w[..] {
            return Err(TransformerError::Input(format!(
                "LoRA {module}: B {:?} · A {:?} does not match the weight {w:?}",
                b.shape(),
                a.shape()
            )));
        }
        plan.push((idx, a, b));
    }
    mlx_rs::transforms::eval(plan.iter().flat_map(|(_, a, b)| [a, b]))?;
    for (_, l) in linears.iter_mut() {
        l.lora = None;
    }
    let n = plan.len();
    for (idx, a, b) in plan {
        linears[idx].1.lora = Some((a, b));
    }
    Ok(n)
}

/// Removes every adapter [`attach_lora`] put on.
pub fn detach_lora(model: &mut LtxModel) {
    for (_, l) in block_linears(model) {
        l.lora = None;
    }
}
