//! One dual-stream audio-video block (`transformer.py::BasicAVTransformerBlock`), in the exact
//! order of ltx-core: video self-attn, video text cross-attn, audio self-attn, audio text
//! cross-attn, A<->V cross-attention from norms taken once before either update, then the FFNs.
//! LTX-2.3 (`cross_attention_adaln`): the tables have 9 rows, rows 6-8 modulate the text cross-attention's
//! query and gate its output, and the context (keys/values) is modulated by the per-block prompt table
//! plus the prompt AdaLN of the step's sigma. The A<->V scale/shift rows come from each modality's own
//! per-token timesteps and the gates from the other modality's sigma (ltx-core 1.2.0).

use mlx_rs::{fast, macros::ModuleParameters, module::Param, ops::indexing::IndexOp, Array, Dtype};

use super::{
    attention::Attention, feed_forward::FeedForward, fused, linear::Linear, perturbation::Perturbations, rope::Rope,
    Result,
};
use crate::quant::QuantMode;

/// Per-token AdaLN values: `rows` (U, n*D) computed once for each of the U distinct timesteps and
/// `index` (B, T) picking a row per token (None: one row for every token).
#[derive(Debug, Clone)]
pub struct AdaValues {
    pub rows: Array,
    pub index: Option<Array>,
}

impl AdaValues {
    /// Row `r` of the (n, D) view, broadcastable against (B, T, D).
    pub fn row(&self, r: usize, n: usize) -> Result<Array> {
        let u = self.rows.shape()[0];
        let row = self.rows.reshape(&[u, n as i32, -1])?.index((.., r as i32, ..));
        Ok(match &self.index {
            Some(index) => row.take_axis(index, 0)?,
            None => row.reshape(&[1, u, -1])?,
        })
    }
}

/// Everything one modality carries through the blocks (`TransformerArgs`).
#[derive(Debug, Clone)]
pub struct StreamArgs {
    pub x: Array,
    pub context: Array,
    pub timesteps: AdaValues,
    pub embedded_timestep: AdaValues,
    pub pe: Rope,
    pub cross_pe: Rope,
    /// 4 rows per token from this modality's own timesteps (`av_ca_*_scale_shift_adaln_single`).
    pub cross_scale_shift: AdaValues,
    /// (B, 1, D) from the other modality's sigma times the A/V gate factor.
    pub cross_gate: Array,
    /// (B, 1, 2D) prompt AdaLN of this modality's sigma (LTX-2.3 `cross_attention_adaln`).
    pub prompt_timestep: Option<Array>,
    pub enabled: bool,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct AvBlock {
    #[param]
    pub attn1: Attention,
    #[param]
    pub attn2: Attention,
    #[param]
    pub ff: FeedForward,
    #[param]
    pub scale_shift_table: Param<Array>,
    #[param]
    pub audio_attn1: Attention,
    #[param]
    pub audio_attn2: Attention,
    #[param]
    pub audio_ff: FeedForward,
    #[param]
    pub audio_scale_shift_table: Param<Array>,
    #[param]
    pub audio_to_video_attn: Attention,
    #[param]
    pub video_to_audio_attn: Attention,
    #[param]
    pub scale_shift_table_a2v_ca_audio: Param<Array>,
    #[param]
    pub scale_shift_table_a2v_ca_video: Param<Array>,
    /// (2, D) key/value shift and scale of the text cross-attention (LTX-2.3).
    #[param]
    pub prompt_scale_shift_table: Param<Option<Array>>,
    #[param]
    pub audio_prompt_scale_shift_table: Param<Option<Array>>,
    pub idx: usize,
    pub eps: f32,
}

/// Geometry of one block (video `v_*`, audio `a_*`).
pub struct BlockDims {
    pub v_dim: usize,
    pub v_heads: usize,
    pub v_head_dim: usize,
    pub v_context: usize,
    pub a_dim: usize,
    pub a_heads: usize,
    pub a_head_dim: usize,
    pub a_context: usize,
    pub eps: f32,
    /// `apply_gated_attention`: a per-head gate on all six attentions.
    pub gated: bool,
    /// `cross_attention_adaln`: modulated text cross-attention (9-row tables, prompt tables).
    pub cross_adaln: bool,
}

/// Rows of a block's `scale_shift_table` (`adaln_embedding_coefficient`).
pub fn ada_rows(cross_adaln: bool) -> usize {
    if cross_adaln {
        9
    } else {
        6
    }
}

fn table(rows: usize, dim: usize) -> Result<Param<Array>> {
    Ok(Param::new(Array::zeros::<f32>(&[rows as i32, dim as i32])?))
}

/// `table[r]` (1, 1, D)
fn table_row(t: &Array, r: usize) -> Result<Array> {
    Ok(t.index(r as i32).reshape(&[1, 1, -1])?)
}

impl AvBlock {
    pub fn new(idx: usize, d: &BlockDims) -> Result<Self> {
        let (e, g) = (d.eps, d.gated);
        let rows = ada_rows(d.cross_adaln);
        let prompt = |dim: usize| -> Result<Param<Option<Array>>> {
            Ok(Param::new(if d.cross_adaln { Some(Array::zeros::<f32>(&[2, dim as i32])?) } else { None }))
        };
        Ok(Self {
            attn1: Attention::new(d.v_dim, d.v_dim, d.v_heads, d.v_head_dim, e, g)?,
            attn2: Attention::new(d.v_dim, d.v_context, d.v_heads, d.v_head_dim, e, g)?,
            ff: FeedForward::new(d.v_dim, d.v_dim)?,
            scale_shift_table: table(rows, d.v_dim)?,
            audio_attn1: Attention::new(d.a_dim, d.a_dim, d.a_heads, d.a_head_dim, e, g)?,
            audio_attn2: Attention::new(d.a_dim, d.a_context, d.a_heads, d.a_head_dim, e, g)?,
            audio_ff: FeedForward::new(d.a_dim, d.a_dim)?,
            audio_scale_shift_table: table(rows, d.a_dim)?,
            audio_to_video_attn: Attention::new(d.v_dim, d.a_dim, d.a_heads, d.a_head_dim, e, g)?,
            video_to_audio_attn: Attention::new(d.a_dim, d.v_dim, d.a_heads, d.a_head_dim, e, g)?,
            scale_shift_table_a2v_ca_audio: table(5, d.a_dim)?,
            scale_shift_table_a2v_ca_video: table(5, d.v_dim)?,
            prompt_scale_shift_table: prompt(d.v_dim)?,
            audio_prompt_scale_shift_table: prompt(d.a_dim)?,
            idx,
            eps: e,
        })
    }

    /// The linears that FP8 and the quantised modes store compactly: every attention's projections and gate
    /// logits and both feed-forwards, about all of a block's bytes. Its AdaLN tables and the q/k norms stay
    /// dense, as do the model's patchify and output projections, AdaLN and caption projections
    /// ([`super::LtxModel`] keeps those outside the blocks).
    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let attns = [
            &mut self.attn1,
            &mut self.attn2,
            &mut self.audio_attn1,
            &mut self.audio_attn2,
            &mut self.audio_to_video_attn,
            &mut self.video_to_audio_attn,
        ];
        let mut linears: Vec<&mut Linear> = Vec::new();
        for a in attns {
            linears.extend([&mut a.to_q, &mut a.to_k, &mut a.to_v]);
            linears.extend(a.to_out.iter_mut());
            linears.extend(a.to_gate_logits.as_mut());
        }
        for ff in [&mut self.ff, &mut self.audio_ff] {
            linears.extend([&mut ff.net.gelu.proj, &mut ff.net.out]);
        }
        linears
    }

    /// Quantises [`Self::linears_mut`] in `mode` (lazy).
    pub fn quantize(&mut self, mode: QuantMode, dtype: Dtype) -> Result<()> {
        self.linears_mut().into_iter().try_for_each(|l| l.quantize(mode, dtype))
    }

    /// The packed placeholders of `mode` for [`Self::linears_mut`] (what a quantised file loads into).
    pub fn quantized_placeholders(&mut self, mode: QuantMode, dtype: Dtype) -> Result<()> {
        self.linears_mut().into_iter().try_for_each(|l| l.quantized_placeholder(mode, dtype))
    }

    fn rms(&self, x: &Array) -> Result<Array> {
        Ok(fast::rms_norm(x, None, self.eps)?)
    }

    /// `get_ada_values(table(n, D), timesteps, row)` as its two terms (table row, timestep row): the fused
    /// kernels that consume it add them.
    fn ada(&self, t: &Array, ts: &AdaValues, r: usize) -> Result<(Array, Array)> {
        Ok((table_row(t, r)?, ts.row(r, t.shape()[0] as usize)?))
    }

    /// Cross-modal (scale, shift) terms of rows `r, r+1` of a (5, D) table, from the 4-row timestep.
    fn av_scale_shift(t: &Array, ss: &AdaValues, r: usize) -> Result<((Array, Array), (Array, Array))> {
        let p = |i: usize| -> Result<(Array, Array)> { Ok((table_row(t, i)?, ss.row(i, 4)?)) };
        Ok((p(r)?, p(r + 1)?))
    }

    /// `rms_norm(x) * (1 + scale) + shift`
    fn norm_modulate(&self, x: &Array, scale: &(Array, Array), shift: &(Array, Array)) -> Result<Array> {
        fused::modulate(&self.rms(x)?, (&scale.0, &scale.1), (&shift.0, &shift.1))
    }

    fn self_and_text(&self, s: &StreamArgs, audio: bool, skip_self: bool) -> Result<Array> {
        let (t, attn1, attn2, prompt) = if audio {
            (
                &*self.audio_scale_shift_table,
                &self.audio_attn1,
                &self.audio_attn2,
                &*self.audio_prompt_scale_shift_table,
            )
        } else {
            (&*self.scale_shift_table, &self.attn1, &self.attn2, &*self.prompt_scale_shift_table)
        };
        let (shift, scale, gate) =
            (self.ada(t, &s.timesteps, 0)?, self.ada(t, &s.timesteps, 1)?, self.ada(t, &s.timesteps, 2)?);
        let normed = self.norm_modulate(&s.x, &scale, &shift)?;
        let h = attn1.forward(&normed, None, Some(&s.pe), None, skip_self)?;
        let x = fused::gated_add(&s.x, &h, (&gate.0, &gate.1))?;
        match (prompt, &s.prompt_timestep) {
            (Some(prompt), Some(prompt_timestep)) => {
                // `apply_cross_attention_adaln`
                let (shift_q, scale_q, gate_q) =
                    (self.ada(t, &s.timesteps, 6)?, self.ada(t, &s.timesteps, 7)?, self.ada(t, &s.timesteps, 8)?);
                let q = self.norm_modulate(&x, &scale_q, &shift_q)?;
                let kv_rows = prompt_timestep.reshape(&[1, 1, 2, -1])?;
                let kv_row = |i: usize| -> Result<(Array, Array)> {
                    Ok((table_row(prompt, i)?, kv_rows.index((.., .., i as i32, ..))))
                };
                let ((shift_kv, shift_kv_t), (scale_kv, scale_kv_t)) = (kv_row(0)?, kv_row(1)?);
                let kv = fused::modulate(&s.context, (&scale_kv, &scale_kv_t), (&shift_kv, &shift_kv_t))?;
                let o = attn2.forward(&q, Some(&kv), None, None, false)?;
                fused::gated_add(&x, &o, (&gate_q.0, &gate_q.1))
            }
            _ => Ok(x.add(attn2.forward(&self.rms(&x)?, Some(&s.context), None, None, false)?)?),
        }
    }

    fn feed_forward(&self, s: &StreamArgs, x: &Array, audio: bool) -> Result<Array> {
        let (t, ff) =
            if audio { (&*self.audio_scale_shift_table, &self.audio_ff) } else { (&*self.scale_shift_table, &self.ff) };
        let (shift, scale, gate) =
            (self.ada(t, &s.timesteps, 3)?, self.ada(t, &s.timesteps, 4)?, self.ada(t, &s.timesteps, 5)?);
        let h = ff.forward(&self.norm_modulate(x, &scale, &shift)?)?;
        fused::gated_add(x, &h, (&gate.0, &gate.1))
    }

    pub fn forward(&self, video: &mut StreamArgs, audio: &mut StreamArgs, p: &Perturbations) -> Result<()> {
        let i = self.idx;
        let run_v = video.enabled && video.x.size() > 0;
        let run_a = audio.enabled && audio.x.size() > 0;
        if run_v {
            video.x = self.self_and_text(video, false, p.skip_video_self_attn.contains(i))?;
        }
        if run_a {
            audio.x = self.self_and_text(audio, true, p.skip_audio_self_attn.contains(i))?;
        }
        let run_a2v = run_v && audio.x.size() > 0 && !p.skip_a2v_cross_attn.contains(i);
        let run_v2a = run_a && video.x.size() > 0 && !p.skip_v2a_cross_attn.contains(i);
        if run_a2v || run_v2a {
            let (vn, an) = (self.rms(&video.x)?, self.rms(&audio.x)?);
            let (tv, ta) = (&*self.scale_shift_table_a2v_ca_video, &*self.scale_shift_table_a2v_ca_audio);
            if run_a2v {
                let (sv, hv) = Self::av_scale_shift(tv, &video.cross_scale_shift, 0)?;
                let (sa, ha) = Self::av_scale_shift(ta, &audio.cross_scale_shift, 0)?;
                let q = fused::modulate(&vn, (&sv.0, &sv.1), (&hv.0, &hv.1))?;
                let kv = fused::modulate(&an, (&sa.0, &sa.1), (&ha.0, &ha.1))?;
                let o = self.audio_to_video_attn.forward(
                    &q,
                    Some(&kv),
                    Some(&video.cross_pe),
                    Some(&audio.cross_pe),
                    false,
                )?;
                video.x = fused::gated_add(&video.x, &o, (&table_row(tv, 4)?, &video.cross_gate))?;
            }
            if run_v2a {
                let (sa, ha) = Self::av_scale_shift(ta, &audio.cross_scale_shift, 2)?;
                let (sv, hv) = Self::av_scale_shift(tv, &video.cross_scale_shift, 2)?;
                let q = fused::modulate(&an, (&sa.0, &sa.1), (&ha.0, &ha.1))?;
                let kv = fused::modulate(&vn, (&sv.0, &sv.1), (&hv.0, &hv.1))?;
                let o = self.video_to_audio_attn.forward(
                    &q,
                    Some(&kv),
                    Some(&audio.cross_pe),
                    Some(&video.cross_pe),
                    false,
                )?;
                audio.x = fused::gated_add(&audio.x, &o, (&table_row(ta, 4)?, &audio.cross_gate))?;
            }
        }
        if run_v {
            video.x = self.feed_forward(video, &video.x, false)?;
        }
        if run_a {
            audio.x = self.feed_forward(audio, &audio.x, true)?;
        }
        Ok(())
    }
}
