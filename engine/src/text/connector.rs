//! `Embeddings1DConnector` (one for video, one for audio): the valid tokens move to the front (order
//! kept), the tail is filled with the learnable registers tiled over the sequence (`registers[p % R]`),
//! then every position is attended: split RoPE over positions `0..T` (max position from the config,
//! 4096 on 19B), `num_layers` blocks of `h += attn1(rms(h)); h += ff(rms(h))`, and a final weightless
//! RMS norm. Attention and feed-forward are the transformer's (same ltx-core modules and keys).

use mlx_rs::{fast, macros::ModuleParameters, module::Param, ops, Array, Dtype};
use serde::Deserialize;

use super::{Result, TextError};
use crate::checkpoint::{Checkpoint, LoadOptions};
use crate::transformer::{
    attention::Attention,
    config::RopeType,
    feed_forward::FeedForward,
    rope::{self, RopeSpec},
};

const EPS: f32 = 1e-6;
const THETA: f64 = 10_000.0;

/// The connector keys of `config.transformer` (defaults as ltx-core's configurators).
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectorConfig {
    #[serde(default = "d_heads")]
    pub connector_num_attention_heads: usize,
    #[serde(default = "d_head_dim")]
    pub connector_attention_head_dim: usize,
    #[serde(default = "d_layers")]
    pub connector_num_layers: usize,
    #[serde(default = "d_max_pos")]
    pub connector_positional_embedding_max_pos: Vec<f64>,
    /// ltx-core always builds 128 registers; the 19B metadata says the same.
    #[serde(default = "d_registers")]
    pub connector_num_learnable_registers: usize,
    #[serde(default = "d_rope")]
    pub rope_type: RopeType,
    pub frequencies_precision: Option<String>,
    pub audio_connector_num_attention_heads: Option<usize>,
    pub audio_connector_attention_head_dim: Option<usize>,
    pub audio_connector_num_layers: Option<usize>,
    /// LTX-2.3: gated attention in both connectors.
    #[serde(default)]
    pub connector_apply_gated_attention: bool,
}

fn d_heads() -> usize {
    30
}
fn d_head_dim() -> usize {
    128
}
fn d_layers() -> usize {
    2
}
fn d_max_pos() -> Vec<f64> {
    vec![1.0]
}
fn d_registers() -> usize {
    128
}
fn d_rope() -> RopeType {
    RopeType::Interleaved
}

impl ConnectorConfig {
    /// (heads, head_dim, layers) of the video or audio connector.
    pub fn dims(&self, audio: bool) -> (usize, usize, usize) {
        let (h, d, l) =
            (self.connector_num_attention_heads, self.connector_attention_head_dim, self.connector_num_layers);
        if audio {
            (
                self.audio_connector_num_attention_heads.unwrap_or(h),
                self.audio_connector_attention_head_dim.unwrap_or(d),
                self.audio_connector_num_layers.unwrap_or(l),
            )
        } else {
            (h, d, l)
        }
    }
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct Block1D {
    #[param]
    pub attn1: Attention,
    #[param]
    pub ff: FeedForward,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct Connector {
    #[param]
    pub learnable_registers: Param<Array>,
    #[param]
    pub transformer_1d_blocks: Vec<Block1D>,
    pub heads: usize,
    pub head_dim: usize,
    pub max_pos: Vec<f64>,
    pub rope_type: RopeType,
    pub double_precision: bool,
}

impl Connector {
    pub fn new(config: &ConnectorConfig, audio: bool) -> Result<Self> {
        let (heads, head_dim, layers) = config.dims(audio);
        let dim = heads * head_dim;
        let block = || -> Result<Block1D> {
            let gated = config.connector_apply_gated_attention;
            Ok(Block1D {
                attn1: Attention::new(dim, dim, heads, head_dim, EPS, gated)?,
                ff: FeedForward::new(dim, dim)?,
            })
        };
        let registers = Array::zeros::<f32>(&[config.connector_num_learnable_registers as i32, dim as i32])?;
        Ok(Self {
            learnable_registers: Param::new(registers),
            transformer_1d_blocks: (0..layers).map(|_| block()).collect::<Result<_>>()?,
            heads,
            head_dim,
            max_pos: config.connector_positional_embedding_max_pos.clone(),
            rope_type: config.rope_type,
            double_precision: config.frequencies_precision.as_deref() == Some("float64"),
        })
    }

    /// Loads the connector under `prefix` of an LTX checkpoint. The transformer's linears carry an
    /// optional FP8 `weight_scale` slot, absent from bf16 files: only those may be missing.
    pub fn load(&mut self, ck: &Checkpoint, prefix: &str, dtype: Dtype) -> Result<()> {
        let options =
            LoadOptions { dtype: Some(dtype), optional: &|k| k.ends_with(".weight_scale"), ..Default::default() };
        ck.load_into(self, prefix, &options)?;
        Ok(())
    }

    /// `features`: (1, T, C) from the feature extractor; `mask`: the T token flags (1 = token).
    /// Returns (1, T, C); every output position is attended downstream.
    pub fn forward(&self, features: &Array, mask: &[i32]) -> Result<Array> {
        let t = features.shape()[1];
        let dtype = features.dtype();
        let h = self.replace_padding_with_registers(features, mask)?;
        let positions: Vec<f32> = (0..t).flat_map(|p| [p as f32, p as f32]).collect();
        let spec = RopeSpec {
            positions: &positions,
            batch: 1,
            n_axes: 1,
            tokens: t as usize,
            dim: self.heads * self.head_dim,
            heads: self.heads,
            max_pos: &self.max_pos,
            theta: THETA,
            use_middle: false,
            double_precision: self.double_precision,
            kind: self.rope_type,
        };
        let pe = rope::precompute(&spec, dtype)?;
        let mut h = h;
        for block in &self.transformer_1d_blocks {
            h = h.add(block.attn1.forward(&fast::rms_norm(&h, None, EPS)?, None, Some(&pe), None, false)?)?;
            h = h.add(block.ff.forward(&fast::rms_norm(&h, None, EPS)?)?)?;
        }
        Ok(fast::rms_norm(&h, None, EPS)?)
    }

    /// Valid tokens first (order kept), then `registers[p % R]` for positions `p` in `[n_valid, T)`.
    fn replace_padding_with_registers(&self, features: &Array, mask: &[i32]) -> Result<Array> {
        let t = features.shape()[1];
        let r = self.learnable_registers.shape()[0];
        if features.shape()[0] != 1 || mask.len() != t as usize || r == 0 || t % r != 0 {
            return Err(TextError::Input(format!(
                "connector: batch {} / mask {} / sequence {t} (must be batch 1 and a multiple of {r} registers)",
                features.shape()[0],
                mask.len()
            )));
        }
        let valid: Vec<i32> = (0..t).filter(|&i| mask[i as usize] != 0).collect();
        let n = valid.len() as i32;
        let tokens = features.take_axis(Array::from_slice(&valid, &[n]), 1)?;
        if n == t {
            return Ok(tokens);
        }
        let tail: Vec<i32> = (n..t).map(|p| p % r).collect();
        let registers = self
            .learnable_registers
            .take_axis(Array::from_slice(&tail, &[t - n]), 0)?
            .as_dtype(features.dtype())?
            .expand_dims(0)?;
        Ok(ops::concatenate(&[tokens, registers], 1)?)
    }
}
