//! The Gemma 3 text model (HF transformers 4.57 `Gemma3TextModel`), run only for its hidden states:
//! scaled embeddings, decoder layers with pre/post norms around attention and the GeGLU MLP, per-head
//! q/k norms, RoPE with θ=`rope_local_base_freq` on sliding-window (local) layers and θ=`rope_theta` with
//! linear scaling on global layers, `query_pre_attn_scalar`, and a final norm. Gemma's RMSNorm is
//! `x · (1 + w)`. Masks are additive and finite (the dtype's lowest value), so an all-padding query
//! row attends uniformly instead of producing NaN. Weights come from the HF sharded layout
//! (`model.safetensors.index.json` + shards, keys `language_model.model.*`; the vision tower is not
//! read), the configuration from `config.json` (its `text_config`, HF defaults for absent keys).

use std::{collections::BTreeSet, path::Path};

use mlx_rs::{fast, macros::ModuleParameters, module::ModuleParameters, module::Param, ops, Array, Dtype};
use serde::Deserialize;

use super::{quantized::GemmaPrecision, quantized::QuantWeight, read_json, Result, TextError};
use crate::checkpoint::{Checkpoint, LoadError, LoadOptions};
use crate::transformer::feed_forward::gelu_tanh;

pub const KEY_PREFIX: &str = "language_model.model.";

#[derive(Debug, Clone, Deserialize)]
pub struct RopeScaling {
    pub rope_type: String,
    #[serde(default = "one")]
    pub factor: f64,
}

/// `Gemma3TextConfig` (defaults as transformers' for keys a `config.json` leaves out).
#[derive(Debug, Clone, Deserialize)]
pub struct GemmaConfig {
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
    #[serde(default = "d_hidden")]
    pub hidden_size: usize,
    #[serde(default = "d_intermediate")]
    pub intermediate_size: usize,
    #[serde(default = "d_layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d_heads")]
    pub num_attention_heads: usize,
    #[serde(default = "d_kv_heads")]
    pub num_key_value_heads: usize,
    #[serde(default = "d_head_dim")]
    pub head_dim: usize,
    #[serde(default = "d_head_dim")]
    pub query_pre_attn_scalar: usize,
    #[serde(default = "d_eps")]
    pub rms_norm_eps: f32,
    #[serde(default = "d_theta")]
    pub rope_theta: f64,
    #[serde(default = "d_local_theta")]
    pub rope_local_base_freq: f64,
    pub rope_scaling: Option<RopeScaling>,
    #[serde(default = "d_window")]
    pub sliding_window: usize,
    #[serde(default = "d_pattern")]
    pub sliding_window_pattern: usize,
    /// Per layer `"sliding_attention"` / `"full_attention"`; derived from the pattern when absent.
    pub layer_types: Option<Vec<String>>,
    #[serde(default = "d_act")]
    pub hidden_activation: String,
    pub attn_logit_softcapping: Option<f64>,
}

fn one() -> f64 {
    1.0
}
fn d_vocab() -> usize {
    262_208
}
fn d_hidden() -> usize {
    2304
}
fn d_intermediate() -> usize {
    9216
}
fn d_layers() -> usize {
    26
}
fn d_heads() -> usize {
    8
}
fn d_kv_heads() -> usize {
    4
}
fn d_head_dim() -> usize {
    256
}
fn d_eps() -> f32 {
    1e-6
}
fn d_theta() -> f64 {
    1e6
}
fn d_local_theta() -> f64 {
    1e4
}
fn d_window() -> usize {
    4096
}
fn d_pattern() -> usize {
    6
}
fn d_act() -> String {
    "gelu_pytorch_tanh".into()
}

impl GemmaConfig {
    /// Reads `config.json`: a `Gemma3ForConditionalGeneration` config (its `text_config`) or a bare
    /// `gemma3_text` one.
    pub fn from_file(path: &Path) -> Result<Self> {
        let root: serde_json::Value = read_json(path)?;
        let text = root.get("text_config").cloned().unwrap_or(root);
        let cfg: Self = serde_json::from_value(text).map_err(|e| TextError::file(path, e))?;
        cfg.validate().map_err(|e| TextError::file(path, e))?;
        Ok(cfg)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.hidden_activation != "gelu_pytorch_tanh" {
            return Err(format!("hidden_activation {:?} is not supported", self.hidden_activation));
        }
        if self.attn_logit_softcapping.is_some() {
            return Err("attn_logit_softcapping is not supported (Gemma 3 has none)".into());
        }
        if let Some(s) = &self.rope_scaling {
            if !matches!(s.rope_type.as_str(), "linear" | "default") {
                return Err(format!("rope_scaling type {:?} is not supported", s.rope_type));
            }
        }
        if self.num_key_value_heads == 0 || self.num_attention_heads % self.num_key_value_heads != 0 {
            return Err("num_attention_heads must be a multiple of num_key_value_heads".into());
        }
        match &self.layer_types {
            Some(t) if t.len() != self.num_hidden_layers => {
                Err("layer_types length differs from num_hidden_layers".into())
            }
            Some(t) if t.iter().any(|l| l != "sliding_attention" && l != "full_attention") => {
                Err(format!("unknown layer type in {t:?}"))
            }
            _ => Ok(()),
        }
    }

    /// Whether layer `i` is a sliding-window (local) layer.
    pub fn is_local(&self, i: usize) -> bool {
        match &self.layer_types {
            Some(t) => t[i] == "sliding_attention",
            None => (i + 1) % self.sliding_window_pattern.max(1) != 0,
        }
    }

    /// Linear RoPE scaling factor of the global layers.
    pub fn global_rope_factor(&self) -> f64 {
        match &self.rope_scaling {
            Some(s) if s.rope_type == "linear" => s.factor,
            _ => 1.0,
        }
    }
}

/// Gemma's RMSNorm: `x / rms(x) · (1 + w)`.
#[derive(Debug, Clone, ModuleParameters)]
pub struct GemmaNorm {
    #[param]
    pub weight: Param<Array>,
}

impl GemmaNorm {
    fn new(dim: usize) -> Result<Self> {
        Ok(Self { weight: Param::new(Array::zeros::<f32>(&[dim as i32])?) })
    }
    /// In f32 whatever the compute dtype, cast back at the end (as transformers does).
    fn forward(&self, x: &Array, eps: f32) -> Result<Array> {
        let w = self.weight.as_dtype(Dtype::Float32)?.add(Array::from_f32(1.0))?;
        Ok(fast::rms_norm(x.as_dtype(Dtype::Float32)?, Some(&w), eps)?.as_dtype(x.dtype())?)
    }
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct SelfAttention {
    #[param]
    pub q_proj: QuantWeight,
    #[param]
    pub k_proj: QuantWeight,
    #[param]
    pub v_proj: QuantWeight,
    #[param]
    pub o_proj: QuantWeight,
    #[param]
    pub q_norm: GemmaNorm,
    #[param]
    pub k_norm: GemmaNorm,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct Mlp {
    #[param]
    pub gate_proj: QuantWeight,
    #[param]
    pub up_proj: QuantWeight,
    #[param]
    pub down_proj: QuantWeight,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct DecoderLayer {
    #[param]
    pub input_layernorm: GemmaNorm,
    #[param]
    pub self_attn: SelfAttention,
    #[param]
    pub post_attention_layernorm: GemmaNorm,
    #[param]
    pub pre_feedforward_layernorm: GemmaNorm,
    #[param]
    pub mlp: Mlp,
    #[param]
    pub post_feedforward_layernorm: GemmaNorm,
}

/// `Gemma3TextModel`; parameter names equal the checkpoint keys below `language_model.model.`.
#[derive(Debug, Clone, ModuleParameters)]
pub struct Gemma {
    /// The embedding table (key `embed_tokens.weight`), tied to the LM head (not run here).
    #[param]
    pub embed_tokens: QuantWeight,
    #[param]
    pub layers: Vec<DecoderLayer>,
    #[param]
    pub norm: GemmaNorm,
    pub config: GemmaConfig,
    pub precision: GemmaPrecision,
}

/// Rotary settings of one layer kind: `fast::rope` base and position scale.
struct RopeKind {
    base: f32,
    scale: f32,
}

impl Gemma {
    /// The parameter tree with placeholder (lazy, unallocated) weights.
    pub fn new(config: GemmaConfig) -> Result<Self> {
        let c = &config;
        let (h, hd) = (c.hidden_size, c.head_dim);
        let lin = |o: usize, i: usize| QuantWeight::new(o, i);
        let layer = || -> Result<DecoderLayer> {
            Ok(DecoderLayer {
                input_layernorm: GemmaNorm::new(h)?,
                self_attn: SelfAttention {
                    q_proj: lin(c.num_attention_heads * hd, h)?,
                    k_proj: lin(c.num_key_value_heads * hd, h)?,
                    v_proj: lin(c.num_key_value_heads * hd, h)?,
                    o_proj: lin(h, c.num_attention_heads * hd)?,
                    q_norm: GemmaNorm::new(hd)?,
                    k_norm: GemmaNorm::new(hd)?,
                },
                post_attention_layernorm: GemmaNorm::new(h)?,
                pre_feedforward_layernorm: GemmaNorm::new(h)?,
                mlp: Mlp {
                    gate_proj: lin(c.intermediate_size, h)?,
                    up_proj: lin(c.intermediate_size, h)?,
                    down_proj: lin(h, c.intermediate_size)?,
                },
                post_feedforward_layernorm: GemmaNorm::new(h)?,
            })
        };
        Ok(Self {
            embed_tokens: lin(c.vocab_size, h)?,
            layers: (0..c.num_hidden_layers).map(|_| layer()).collect::<Result<_>>()?,
            norm: GemmaNorm::new(h)?,
            config,
            precision: GemmaPrecision::Bf16,
        })
    }

    /// Loads `dir/config.json` and the weights of `dir` (sharded with `model.safetensors.index.json`,
    /// or a single `model.safetensors`) in `dtype`, then quantises the linears and the embedding table
    /// layer by layer when `precision` asks for it.
    pub fn load(dir: &Path, dtype: Dtype, precision: GemmaPrecision) -> Result<Self> {
        let mut model = Self::new(GemmaConfig::from_file(&dir.join("config.json"))?)?;
        let mut loaded = BTreeSet::new();
        let options = LoadOptions { dtype: Some(dtype), ..Default::default() };
        for shard in shard_files(dir)? {
            let ck = Checkpoint::open(&shard)?;
            match ck.load_into(&mut model, KEY_PREFIX, &options) {
                Ok(_) => {}
                // A shard holds part of the model: only tensors it lacks may be reported.
                Err(LoadError::Mismatch { report, .. })
                    if report.unexpected.is_empty() && report.misshaped.is_empty() => {}
                Err(e) => return Err(e.into()),
            }
            loaded.extend(ck.names().filter_map(|n| n.strip_prefix(KEY_PREFIX)).map(str::to_string));
        }
        let missing: Vec<String> = model
            .parameters()
            .flatten()
            .keys()
            .filter(|k| !loaded.contains(k.as_ref()))
            .map(|k| k.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(TextError::file(dir, format!("Gemma weights missing from the shards: {}", missing.join(", "))));
        }
        model.quantize(precision)?;
        Ok(model)
    }

    /// Affine-quantises every linear and the embedding table (no-op for `Bf16`).
    pub fn quantize(&mut self, precision: GemmaPrecision) -> Result<()> {
        let Some(mode) = precision.mode() else { return Ok(()) };
        self.embed_tokens.quantize(mode)?;
        for l in &mut self.layers {
            let (a, m) = (&mut l.self_attn, &mut l.mlp);
            for w in [
                &mut a.q_proj,
                &mut a.k_proj,
                &mut a.v_proj,
                &mut a.o_proj,
                &mut m.gate_proj,
                &mut m.up_proj,
                &mut m.down_proj,
            ] {
                w.quantize(mode)?;
            }
        }
        self.precision = precision;
        Ok(())
    }

    /// All hidden states, `num_hidden_layers + 1` arrays (B, T, hidden) in `dtype`: the scaled
    /// embeddings, every layer's output, the last one after the final norm (HF convention).
    /// `ids`, `mask`: (B, T) int32, mask 1 = token, 0 = padding; positions are `0..T` for every row.
    pub fn hidden_states(&self, ids: &Array, mask: &Array, dtype: Dtype) -> Result<Vec<Array>> {
        let c = &self.config;
        let t = ids.shape()[1];
        let scale = Array::from_f32((c.hidden_size as f32).sqrt()).as_dtype(dtype)?;
        let mut x = self.embed_tokens.rows(ids, dtype)?.multiply(&scale)?;
        let global_mask = attention_mask(mask, t, None, dtype)?;
        let local_mask = attention_mask(mask, t, Some(c.sliding_window), dtype)?;
        let global = RopeKind { base: c.rope_theta as f32, scale: (1.0 / c.global_rope_factor()) as f32 };
        let local = RopeKind { base: c.rope_local_base_freq as f32, scale: 1.0 };
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        for (i, layer) in self.layers.iter().enumerate() {
            states.push(x.clone());
            let (m, rope) = if c.is_local(i) { (&local_mask, &local) } else { (&global_mask, &global) };
            x = layer.forward(&x, m, rope, c)?;
        }
        states.push(self.norm.forward(&x, c.rms_norm_eps)?);
        Ok(states)
    }
}

impl DecoderLayer {
    fn forward(&self, x: &Array, mask: &Array, rope: &RopeKind, c: &GemmaConfig) -> Result<Array> {
        let eps = c.rms_norm_eps;
        let h = self.self_attn.forward(&self.input_layernorm.forward(x, eps)?, mask, rope, c)?;
        let x = x.add(self.post_attention_layernorm.forward(&h, eps)?)?;
        let h = self.mlp.forward(&self.pre_feedforward_layernorm.forward(&x, eps)?)?;
        Ok(x.add(self.post_feedforward_layernorm.forward(&h, eps)?)?)
    }
}

impl SelfAttention {
    fn forward(&self, x: &Array, mask: &Array, rope: &RopeKind, c: &GemmaConfig) -> Result<Array> {
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let hd = c.head_dim as i32;
        // (B, T, H·D) -> per-head norm -> (B, H, T, D) -> RoPE (rotate-half, positions 0..T)
        let heads = |proj: &QuantWeight, norm: &GemmaNorm, n: usize| -> Result<Array> {
            let y = proj.linear(x)?.reshape(&[b, t, n as i32, hd])?;
            let y = norm.forward(&y, c.rms_norm_eps)?.swap_axes(1, 2)?;
            Ok(fast::rope(&y, hd, false, rope.base, rope.scale, 0, None)?)
        };
        let q = heads(&self.q_proj, &self.q_norm, c.num_attention_heads)?;
        let k = heads(&self.k_proj, &self.k_norm, c.num_key_value_heads)?;
        let v = self.v_proj.linear(x)?.reshape(&[b, t, c.num_key_value_heads as i32, hd])?.swap_axes(1, 2)?;
        let scale = (c.query_pre_attn_scalar as f32).powf(-0.5);
        let o = fast::scaled_dot_product_attention(&q, &k, &v, scale, mask, None)?;
        let o = o.swap_axes(1, 2)?.reshape(&[b, t, -1])?;
        self.o_proj.linear(&o)
    }
}

impl Mlp {
    fn forward(&self, x: &Array) -> Result<Array> {
        let h = gelu_tanh(&self.gate_proj.linear(x)?)?.multiply(self.up_proj.linear(x)?)?;
        self.down_proj.linear(&h)
    }
}

/// The lowest finite value of `dtype` (HF's `torch.finfo(dtype).min` mask value).
pub fn finite_min(dtype: Dtype) -> f32 {
    match dtype {
        Dtype::Bfloat16 => -3.389_531_4e38,
        Dtype::Float16 => -65504.0,
        _ => f32::MIN,
    }
}

/// Additive (B, 1, T, T) mask: 0 where query `i` may see key `j` (causal, key not padding, and
/// `i - j < window` on local layers), the dtype's lowest finite value elsewhere, but at most -1e30: the
/// softmax is the same as HF's (exp underflows to 0; a fully masked padding row averages every key), and
/// cuDNN's fused attention (bf16 on CUDA) matches it; with bf16's -3.39e38 its hidden states were off by
/// 0.69 relative L2 (presumably the fully masked rows overflowing to -inf in its f32 scaling).
pub fn attention_mask(mask: &Array, t: i32, window: Option<usize>, dtype: Dtype) -> Result<Array> {
    let q = ops::arange::<_, i32>(0, t, 1)?.reshape(&[t, 1])?;
    let k = ops::arange::<_, i32>(0, t, 1)?.reshape(&[1, t])?;
    let mut allowed = k.le(&q)?;
    if let Some(w) = window {
        allowed = allowed.logical_and(&q.subtract(&k)?.lt(Array::from_int(w as i32))?)?;
    }
    let b = mask.shape()[0];
    let key_valid = mask.ne(Array::from_int(0))?.reshape(&[b, 1, 1, t])?;
    let allowed = allowed.reshape(&[1, 1, t, t])?.logical_and(&key_valid)?;
    let zero = Array::from_f32(0.0).as_dtype(dtype)?;
    let low = Array::from_f32(finite_min(dtype).max(-1e30)).as_dtype(dtype)?;
    Ok(ops::select(&allowed, &zero, &low)?)
}

/// The safetensors files of a Gemma directory, from `model.safetensors.index.json` (every shard it
/// names must exist) or a single `model.safetensors`.
pub fn shard_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        #[derive(Deserialize)]
        struct Index {
            weight_map: std::collections::BTreeMap<String, String>,
        }
        let idx: Index = read_json(&index)?;
        let files: BTreeSet<&String> = idx.weight_map.values().collect();
        return files
            .into_iter()
            .map(|f| {
                let p = dir.join(f);
                if p.is_file() {
                    Ok(p)
                } else {
                    Err(TextError::file(&p, format!("Gemma shard named by {} not found", index.display())))
                }
            })
            .collect();
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        Ok(vec![single])
    } else {
        Err(TextError::file(&index, "Gemma weights not found (no index and no model.safetensors)"))
    }
}
