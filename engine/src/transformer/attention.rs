//! Attention (`attention.py`): biased q/k/v projections, q/k RMSNorm over the whole inner dim (all
//! heads together, learnable weight), RoPE on q and k, fast SDPA with scale 1/sqrt(head_dim),
//! `to_out.0`. STG's perturbed self-attention passes the value projection through (`to_out(to_v(x))`).
//! LTX-2.3 (`apply_gated_attention`): `to_gate_logits` (query_dim -> heads) scales each head's output by
//! `2·sigmoid(logits)` before `to_out`, on the pass-through path too.

use mlx_rs::{fast, macros::ModuleParameters, module::Param, ops, Array};

use super::{linear::Linear, rope, rope::Rope, Result};

#[derive(Debug, Clone, ModuleParameters)]
pub struct RmsNorm {
    #[param]
    pub weight: Param<Array>,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct Attention {
    #[param]
    pub to_q: Linear,
    #[param]
    pub to_k: Linear,
    #[param]
    pub to_v: Linear,
    #[param]
    pub q_norm: RmsNorm,
    #[param]
    pub k_norm: RmsNorm,
    /// `Sequential(Linear, Identity)`: key `to_out.0`.
    #[param]
    pub to_out: Vec<Linear>,
    /// Per-head gate (LTX-2.3); absent on LTX-2.
    #[param]
    pub to_gate_logits: Option<Linear>,
    pub heads: usize,
    pub head_dim: usize,
    pub eps: f32,
}

impl Attention {
    pub fn new(
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        head_dim: usize,
        eps: f32,
        gated: bool,
    ) -> Result<Self> {
        let inner = heads * head_dim;
        let norm = || -> Result<RmsNorm> { Ok(RmsNorm { weight: Param::new(Array::ones::<f32>(&[inner as i32])?) }) };
        Ok(Self {
            to_q: Linear::new(query_dim, inner, true)?,
            to_k: Linear::new(context_dim, inner, true)?,
            to_v: Linear::new(context_dim, inner, true)?,
            q_norm: norm()?,
            k_norm: norm()?,
            to_out: vec![Linear::new(inner, query_dim, true)?],
            to_gate_logits: if gated { Some(Linear::new(query_dim, heads, true)?) } else { None },
            heads,
            head_dim,
            eps,
        })
    }

    /// `context` None = self-attention. `pe` rotates q (and k unless `k_pe` is given).
    /// `value_only` = STG pass-through.
    pub fn forward(
        &self,
        x: &Array,
        context: Option<&Array>,
        pe: Option<&Rope>,
        k_pe: Option<&Rope>,
        value_only: bool,
    ) -> Result<Array> {
        let context = context.unwrap_or(x);
        let v = self.to_v.forward(context)?;
        let out = if value_only {
            v
        } else {
            let q = fast::rms_norm(self.to_q.forward(x)?, Some(&self.q_norm.weight), self.eps)?;
            let k = fast::rms_norm(self.to_k.forward(context)?, Some(&self.k_norm.weight), self.eps)?;
            // RoPE in the projections' (B, T, H, D) layout; SDPA reads the head-first views as they are
            // (only the last axis must be contiguous) and writes its output in q's layout, so the merge of
            // the heads back to (B, T, H*D) is a view too: no transposing copies.
            let (mut q, mut k, v) = (self.split_heads(&q)?, self.split_heads(&k)?, self.split_heads(&v)?);
            if let Some(pe) = pe {
                q = rope::apply(&q, pe)?;
                k = rope::apply(&k, k_pe.unwrap_or(pe))?;
            }
            let scale = 1.0 / (self.head_dim as f32).sqrt();
            let (q, k, v) = (q.swap_axes(1, 2)?, k.swap_axes(1, 2)?, v.swap_axes(1, 2)?);
            let o = fast::scaled_dot_product_attention(&q, &k, &v, scale, None, None)?;
            let s = x.shape();
            o.swap_axes(1, 2)?.reshape(&[s[0], s[1], (self.heads * self.head_dim) as i32])?
        };
        let out = match &self.to_gate_logits {
            Some(gate) => {
                let gates = ops::sigmoid(&gate.forward(x)?)?.multiply(Array::from_f32(2.0))?;
                let heads = self.split_heads(&out)?.multiply(gates.expand_dims(-1)?)?;
                heads.reshape(out.shape())?
            }
            None => out,
        };
        self.to_out[0].forward(&out)
    }

    /// (B, T, H*D) -> (B, T, H, D)
    fn split_heads(&self, t: &Array) -> Result<Array> {
        let s = t.shape();
        Ok(t.reshape(&[s[0], s[1], self.heads as i32, self.head_dim as i32])?)
    }
}
