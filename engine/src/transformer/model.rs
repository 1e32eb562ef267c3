//! The AV transformer (`model.py::LTXModel` + `transformer_args.py` preprocessing + `X0Model`).

use std::{
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
};

use crate::checkpoint::{Checkpoint, LoadOptions};
use crate::quant::QuantMode;

use mlx_rs::{
    fast,
    macros::ModuleParameters,
    module::{ModuleParameters, Param},
    ops::indexing::IndexOp,
    Array, Dtype,
};

use super::{
    adaln::AdaLayerNormSingle,
    block::{ada_rows, AdaValues, AvBlock, BlockDims, StreamArgs},
    caption::CaptionProjection,
    config::TransformerConfig,
    fused,
    linear::Linear,
    perturbation::Perturbations,
    rope::{RopeCache, RopeSpec},
    Result, TransformerError,
};

/// Whether [`LtxModel::forward`] starts evaluating each block while it builds the next (default on). On an
/// H200 it hid 1-8 % of the 768x512x121 step (more on a slower host CPU) at +5 GiB peak there
/// (BENCHMARKS.md, GPU).
static BLOCK_PIPELINING: AtomicBool = AtomicBool::new(true);

/// Turns the per-block pipelining of [`LtxModel::forward`] on or off for the process (benchmarks compare).
pub fn set_block_pipelining(enabled: bool) {
    BLOCK_PIPELINING.store(enabled, Ordering::Relaxed);
}

/// Key prefix of the transformer in the single-file checkpoints.
pub const CHECKPOINT_PREFIX: &str = "model.diffusion_model.";

/// One modality's input to a forward pass (`Modality`), batch of one.
#[derive(Debug, Clone)]
pub struct Modality {
    /// Patchified latent tokens (1, T, C).
    pub latent: Array,
    /// The step's sigma (drives the other modality's cross-attention AdaLN).
    pub sigma: f32,
    /// Per-token timestep `denoise_mask * sigma`, length T.
    pub timesteps: Vec<f32>,
    /// (1, n_axes, T, 2) `[start, end)` bounds (3 axes video, 1 audio).
    pub positions: Vec<f32>,
    /// Text context: before the caption projection (1, S, caption_channels) on LTX-2; at the stream's
    /// inner dimension (the projection is the text encoder's) on LTX-2.3.
    pub context: Array,
    pub enabled: bool,
}

impl Modality {
    /// `timesteps_from_mask`: t = mask * sigma per token (mask None = all ones).
    pub fn new(latent: Array, sigma: f32, mask: Option<&[f32]>, positions: Vec<f32>, context: Array) -> Self {
        let tokens = latent.shape().get(1).copied().unwrap_or(0) as usize;
        let timesteps = match mask {
            Some(m) => m.iter().map(|m| m * sigma).collect(),
            None => vec![sigma; tokens],
        };
        Self { latent, sigma, timesteps, positions, context, enabled: true }
    }
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct LtxModel {
    #[param]
    pub patchify_proj: Linear,
    #[param]
    pub audio_patchify_proj: Linear,
    #[param]
    pub adaln_single: AdaLayerNormSingle,
    #[param]
    pub audio_adaln_single: AdaLayerNormSingle,
    #[param]
    pub av_ca_video_scale_shift_adaln_single: AdaLayerNormSingle,
    #[param]
    pub av_ca_audio_scale_shift_adaln_single: AdaLayerNormSingle,
    #[param]
    pub av_ca_a2v_gate_adaln_single: AdaLayerNormSingle,
    #[param]
    pub av_ca_v2a_gate_adaln_single: AdaLayerNormSingle,
    /// LTX-2 only: LTX-2.3 projects in the text encoder (`caption_proj_before_connector`).
    #[param]
    pub caption_projection: Option<CaptionProjection>,
    #[param]
    pub audio_caption_projection: Option<CaptionProjection>,
    /// LTX-2.3 `cross_attention_adaln`: the prompt key/value modulation from the step's sigma.
    #[param]
    pub prompt_adaln_single: Option<AdaLayerNormSingle>,
    #[param]
    pub audio_prompt_adaln_single: Option<AdaLayerNormSingle>,
    #[param]
    pub transformer_blocks: Vec<AvBlock>,
    #[param]
    pub scale_shift_table: Param<Array>,
    #[param]
    pub audio_scale_shift_table: Param<Array>,
    #[param]
    pub proj_out: Linear,
    #[param]
    pub audio_proj_out: Linear,
    pub config: TransformerConfig,
    /// Compute dtype: f32 on the CPU backend, bf16 on GPUs.
    pub dtype: Dtype,
    pub rope_cache: RopeCache,
}

impl LtxModel {
    /// Build the parameter tree for `config` (lazy placeholders; nothing is allocated).
    pub fn new(config: TransformerConfig, dtype: Dtype) -> Result<Self> {
        let c = &config;
        let (vd, ad) = (c.video_inner_dim(), c.audio_inner_dim());
        let dims = block_dims(c);
        let rows = ada_rows(c.cross_adaln());
        let in_transformer = !c.caption_projection_in_text_encoder();
        let caption = |d: usize| -> Result<Option<CaptionProjection>> {
            in_transformer.then(|| CaptionProjection::new(c.caption_channels, d)).transpose()
        };
        let prompt = |d: usize| -> Result<Option<AdaLayerNormSingle>> {
            c.cross_adaln().then(|| AdaLayerNormSingle::new(d, 2)).transpose()
        };
        let table = |d: usize| -> Result<Param<Array>> { Ok(Param::new(Array::zeros::<f32>(&[2, d as i32])?)) };
        Ok(Self {
            patchify_proj: Linear::new(c.in_channels, vd, true)?,
            audio_patchify_proj: Linear::new(c.audio_in(), ad, true)?,
            adaln_single: AdaLayerNormSingle::new(vd, rows)?,
            audio_adaln_single: AdaLayerNormSingle::new(ad, rows)?,
            av_ca_video_scale_shift_adaln_single: AdaLayerNormSingle::new(vd, 4)?,
            av_ca_audio_scale_shift_adaln_single: AdaLayerNormSingle::new(ad, 4)?,
            av_ca_a2v_gate_adaln_single: AdaLayerNormSingle::new(vd, 1)?,
            av_ca_v2a_gate_adaln_single: AdaLayerNormSingle::new(ad, 1)?,
            caption_projection: caption(vd)?,
            audio_caption_projection: caption(ad)?,
            prompt_adaln_single: prompt(vd)?,
            audio_prompt_adaln_single: prompt(ad)?,
            transformer_blocks: (0..c.num_layers).map(|i| AvBlock::new(i, &dims)).collect::<Result<_>>()?,
            scale_shift_table: table(vd)?,
            audio_scale_shift_table: table(ad)?,
            proj_out: Linear::new(vd, c.out_channels, true)?,
            audio_proj_out: Linear::new(ad, c.audio_out_channels, true)?,
            config,
            dtype,
            rope_cache: RopeCache::default(),
        })
    }

    /// Config from the checkpoint metadata, then the weights under `model.diffusion_model.`.
    pub fn from_checkpoint(path: &Path, dtype: Dtype) -> Result<Self> {
        let ck = Checkpoint::open(path)?;
        let mut model = Self::new(TransformerConfig::from_ltx(&ck.config()?)?, dtype)?;
        model.load(&ck)?;
        Ok(model)
    }

    /// Parameter names and shapes of the tree (FP8 `weight_scale` slots excluded: they are optional).
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<i32>)> {
        let mut v: Vec<_> = self
            .parameters()
            .flatten()
            .into_iter()
            .filter(|(k, _)| !k.ends_with(".weight_scale"))
            .map(|(k, a)| (k.to_string(), a.shape().to_vec()))
            .collect();
        v.sort();
        v
    }

    /// Fills the tree from the tensors under `model.diffusion_model.` (floats cast to the compute dtype, FP8
    /// weights kept FP8) and evaluates them, so a bad file fails here and not mid-denoise. The text connectors
    /// under the same prefix belong to the prompt encoder, FP8 `input_scale`s (static activation scales) are not
    /// used, and the `weight_scale` slots are only in FP8 files.
    pub fn load(&mut self, ck: &Checkpoint) -> Result<()> {
        ck.load_into(self, CHECKPOINT_PREFIX, &load_options(self.dtype, &not_transformer))?;
        mlx_rs::transforms::eval(self.parameters().flatten().values().copied())?;
        Ok(())
    }

    /// A placeholder of block `idx` (lazy; [`Self::load_block`] fills it).
    pub fn new_block(&self, idx: usize) -> Result<AvBlock> {
        AvBlock::new(idx, &block_dims(&self.config))
    }

    /// Block `idx`'s weights from `ck` (packed placeholders first when `quant` names the file's mode), evaluated.
    pub fn load_block(&self, ck: &Checkpoint, idx: usize, quant: Option<QuantMode>) -> Result<AvBlock> {
        let mut block = self.new_block(idx)?;
        if let Some(mode) = quant {
            block.quantized_placeholders(mode, self.dtype)?;
        }
        let prefix = format!("{CHECKPOINT_PREFIX}transformer_blocks.{idx}.");
        ck.load_into(&mut block, &prefix, &load_options(self.dtype, &not_transformer))?;
        mlx_rs::transforms::eval(block.parameters().flatten().values().copied())?;
        Ok(block)
    }

    /// Everything but the blocks from `ck` (the blocks stay placeholders: a streamed model loads them per
    /// step), evaluated.
    pub fn load_globals(&mut self, ck: &Checkpoint) -> Result<()> {
        self.transformer_blocks.clear();
        let skip = |k: &str| not_transformer(k) || k.starts_with("transformer_blocks.");
        ck.load_into(self, CHECKPOINT_PREFIX, &load_options(self.dtype, &skip))?;
        mlx_rs::transforms::eval(self.parameters().flatten().values().copied())?;
        Ok(())
    }

    /// Seeded random weights (benchmarks and tests): uniform(-1, 1)/sqrt(fan_in) for matrices,
    /// uniform(-0.1, 0.1) for biases and tables, 1 for norm weights.
    pub fn init_random(&mut self, seed: u64) -> Result<()> {
        let mut key = mlx_rs::random::key(seed)?;
        let dtype = self.dtype;
        let mut params: Vec<_> = self.parameters_mut().flatten().into_iter().collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, p) in params {
            if name.ends_with("weight_scale") {
                continue;
            }
            if name.ends_with("norm.weight") {
                *p = Array::ones::<f32>(p.shape())?.as_dtype(dtype)?;
                continue;
            }
            let (next, k) = mlx_rs::random::split(&key, 2)?;
            key = next;
            let matrix = p.ndim() == 2 && !name.contains("table");
            let bound = if matrix { 1.0 / (p.shape()[1] as f32).sqrt() } else { 0.1 };
            let shape = p.shape().to_vec();
            *p = mlx_rs::random::uniform::<_, f32>(-bound, bound, &shape[..], &k)?.as_dtype(dtype)?;
        }
        mlx_rs::transforms::eval(self.parameters().flatten().values().copied())?;
        Ok(())
    }

    /// Store every linear of the blocks in FP8 (ltx-core's `fp8-cast`-style memory saving).
    pub fn quantize_blocks_fp8(&mut self) -> Result<()> {
        for block in &mut self.transformer_blocks {
            for l in block.linears_mut() {
                let w = (*l.weight).clone();
                l.set_fp8(&w)?;
            }
        }
        mlx_rs::transforms::eval(self.parameters().flatten().values().copied())?;
        Ok(())
    }

    /// Quantises the blocks' linears in `mode` ([`AvBlock::linears_mut`]), block by block (evaluated, so
    /// at most one block's dense copies exist at a time).
    pub fn quantize_blocks(&mut self, mode: QuantMode) -> Result<()> {
        let dtype = self.dtype;
        for block in &mut self.transformer_blocks {
            block.quantize(mode, dtype)?;
            mlx_rs::transforms::eval(block.parameters().flatten().values().copied())?;
        }
        Ok(())
    }

    /// AdaLN of the distinct values of `timesteps`, broadcast back per token.
    fn per_token_adaln(&self, adaln: &AdaLayerNormSingle, timesteps: &[f32]) -> Result<(AdaValues, AdaValues)> {
        let mult = self.config.timestep_scale_multiplier as f32;
        let mut unique: Vec<f32> = Vec::new();
        let index: Vec<i32> = timesteps
            .iter()
            .map(|t| match unique.iter().position(|u| u.to_bits() == t.to_bits()) {
                Some(i) => i as i32,
                None => {
                    unique.push(*t);
                    unique.len() as i32 - 1
                }
            })
            .collect();
        let scaled: Vec<f32> = unique.iter().map(|t| t * mult).collect();
        let (m, e) = adaln.forward(&Array::from_slice(&scaled, &[scaled.len() as i32]), self.dtype)?;
        let index = (unique.len() > 1).then(|| Array::from_slice(&index, &[1, index.len() as i32]));
        Ok((AdaValues { rows: m, index: index.clone() }, AdaValues { rows: e, index }))
    }

    /// `MultiModalTransformerArgsPreprocessor.prepare(modality, other)`.
    fn prepare(&self, m: &Modality, other: &Modality, audio: bool) -> Result<StreamArgs> {
        let c = &self.config;
        let (proj, adaln, caption, prompt_adaln, ss_adaln, gate_adaln) = if audio {
            (
                &self.audio_patchify_proj,
                &self.audio_adaln_single,
                &self.audio_caption_projection,
                &self.audio_prompt_adaln_single,
                &self.av_ca_audio_scale_shift_adaln_single,
                &self.av_ca_v2a_gate_adaln_single,
            )
        } else {
            (
                &self.patchify_proj,
                &self.adaln_single,
                &self.caption_projection,
                &self.prompt_adaln_single,
                &self.av_ca_video_scale_shift_adaln_single,
                &self.av_ca_a2v_gate_adaln_single,
            )
        };
        let (dim, heads, max_pos) = if audio {
            (c.audio_inner_dim(), c.audio_num_attention_heads, &c.audio_positional_embedding_max_pos)
        } else {
            (c.video_inner_dim(), c.num_attention_heads, &c.positional_embedding_max_pos)
        };
        let shape = m.latent.shape();
        let (batch, tokens) = (shape[0] as usize, shape[1] as usize);
        let n_axes = max_pos.len();
        if batch != 1 || m.timesteps.len() != tokens || m.positions.len() != n_axes * tokens * 2 {
            return Err(TransformerError::Input(format!(
                "{} modality: batch {batch} (must be 1), {tokens} tokens, {} timesteps, {} position values",
                if audio { "audio" } else { "video" },
                m.timesteps.len(),
                m.positions.len()
            )));
        }
        let x = proj.forward(&m.latent.as_dtype(self.dtype)?)?;
        let (timesteps, embedded_timestep) = self.per_token_adaln(adaln, &m.timesteps)?;
        let context = m.context.as_dtype(self.dtype)?;
        let context = match caption {
            Some(caption) => caption.forward(&context)?,
            None => context,
        };
        if context.ndim() != 3 || context.shape()[2] as usize != dim {
            return Err(TransformerError::Input(format!(
                "{} context is {:?}, the blocks need (1, S, {dim})",
                if audio { "audio" } else { "video" },
                context.shape()
            )));
        }
        let t_self = m.sigma * c.timestep_scale_multiplier as f32;
        let prompt_timestep = match prompt_adaln {
            Some(p) => Some(p.forward(&Array::from_slice(&[t_self], &[1]), self.dtype)?.0.reshape(&[1, 1, -1])?),
            None => None,
        };
        let spec = RopeSpec {
            positions: &m.positions,
            batch,
            n_axes,
            tokens,
            dim,
            heads,
            max_pos,
            theta: c.positional_embedding_theta,
            use_middle: c.use_middle_indices_grid,
            double_precision: c.double_precision_rope(),
            kind: c.rope_type,
        };
        let pe = self.rope_cache.get(&spec, self.dtype)?;
        // A/V cross-attention: time axis only, `audio_cross_attention_dim` wide, always middle-of-bounds.
        let cross_max = [c.cross_pe_max_pos()];
        let cross = RopeSpec {
            positions: &m.positions[..tokens * 2],
            n_axes: 1,
            dim: c.audio_cross_attention_dim,
            max_pos: &cross_max,
            use_middle: true,
            ..spec
        };
        let cross_pe = self.rope_cache.get(&cross, self.dtype)?;
        // Cross-modal AdaLN (ltx-core 1.2.0): scale/shift from this modality's own per-token timesteps, the
        // gate from the OTHER modality's sigma.
        let (cross_scale_shift, _) = self.per_token_adaln(ss_adaln, &m.timesteps)?;
        let t_other = other.sigma * c.timestep_scale_multiplier as f32;
        let gate_factor = (c.av_ca_timestep_scale_multiplier / c.timestep_scale_multiplier) as f32;
        let (gate, _) = gate_adaln.forward(&Array::from_slice(&[t_other * gate_factor], &[1]), self.dtype)?;
        Ok(StreamArgs {
            x,
            context,
            timesteps,
            embedded_timestep,
            pe,
            cross_pe,
            cross_scale_shift,
            cross_gate: gate.reshape(&[1, 1, -1])?,
            prompt_timestep,
            enabled: m.enabled,
        })
    }

    /// `_process_output`: LayerNorm (no affine) modulated by (shift, scale) rows, then `proj_out`.
    fn output(&self, s: &StreamArgs, audio: bool) -> Result<Array> {
        let (table, proj) = if audio {
            (&*self.audio_scale_shift_table, &self.audio_proj_out)
        } else {
            (&*self.scale_shift_table, &self.proj_out)
        };
        let emb = s.embedded_timestep.row(0, 1)?;
        let (shift, scale) = (table.index(0).reshape(&[1, 1, -1])?, table.index(1).reshape(&[1, 1, -1])?);
        let x = fast::layer_norm(&s.x, None, None, self.config.norm_eps)?;
        proj.forward(&fused::modulate(&x, (&scale, &emb), (&shift, &emb))?)
    }

    /// Velocity predictions (video (1, T, C), audio (1, Ta, Ca)) in the compute dtype.
    pub fn forward(&self, video: &Modality, audio: &Modality, p: &Perturbations) -> Result<(Array, Array)> {
        let (mut v, mut a) = (self.prepare(video, audio, false)?, self.prepare(audio, video, true)?);
        let pipeline = BLOCK_PIPELINING.load(Ordering::Relaxed);
        for block in &self.transformer_blocks {
            block.forward(&mut v, &mut a, p)?;
            if pipeline {
                // Start computing what is built so far while the next block's graph is built (no host sync).
                mlx_rs::transforms::async_eval([&v.x, &a.x])?;
            }
        }
        Ok((self.output(&v, false)?, self.output(&a, true)?))
    }

    /// Run only the preprocessing and block `idx`, returning the streams' x (for parity tests).
    pub fn forward_blocks(
        &self,
        video: &Modality,
        audio: &Modality,
        p: &Perturbations,
        n: usize,
    ) -> Result<(Array, Array)> {
        let (mut v, mut a) = (self.prepare(video, audio, false)?, self.prepare(audio, video, true)?);
        for block in self.transformer_blocks.iter().take(n) {
            block.forward(&mut v, &mut a, p)?;
        }
        Ok((v.x, a.x))
    }

    /// `X0Model`: denoised = latent - velocity * t_token, in f32.
    pub fn denoise(&self, video: &Modality, audio: &Modality, p: &Perturbations) -> Result<(Array, Array)> {
        let (vv, va) = self.forward(video, audio, p)?;
        Ok((to_denoised(&video.latent, &vv, &video.timesteps)?, to_denoised(&audio.latent, &va, &audio.timesteps)?))
    }
}

/// The geometry of every block of `c`.
fn block_dims(c: &TransformerConfig) -> BlockDims {
    BlockDims {
        v_dim: c.video_inner_dim(),
        v_heads: c.num_attention_heads,
        v_head_dim: c.attention_head_dim,
        v_context: c.cross_attention_dim,
        a_dim: c.audio_inner_dim(),
        a_heads: c.audio_num_attention_heads,
        a_head_dim: c.audio_attention_head_dim,
        a_context: c.audio_cross_attention_dim,
        eps: c.norm_eps,
        gated: c.gated_attention(),
        cross_adaln: c.cross_adaln(),
    }
}

/// Tensors under the transformer's prefix that are not its own: the text connectors belong to the prompt
/// encoder, and FP8 `input_scale`s (static activation scales) are not used.
fn not_transformer(k: &str) -> bool {
    k.ends_with(".input_scale")
        || k.starts_with("video_embeddings_connector.")
        || k.starts_with("audio_embeddings_connector.")
}

/// How the transformer's tensors load: floats cast to the compute dtype, FP8 weights kept FP8, `ignore` left
/// out; the `weight_scale` slots are only in FP8 files.
fn load_options<'a>(dtype: Dtype, ignore: &'a dyn Fn(&str) -> bool) -> LoadOptions<'a> {
    LoadOptions { dtype: Some(dtype), ignore, optional: &|k| k.ends_with(".weight_scale"), ..LoadOptions::default() }
}

/// `latent - velocity * t` per token, f32.
pub fn to_denoised(latent: &Array, velocity: &Array, timesteps: &[f32]) -> Result<Array> {
    let t = Array::from_slice(timesteps, &[1, timesteps.len() as i32, 1]);
    let v = velocity.as_dtype(Dtype::Float32)?;
    Ok(latent.as_dtype(Dtype::Float32)?.subtract(v.multiply(t)?)?)
}
