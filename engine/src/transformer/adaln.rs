//! Timestep embedding + AdaLN-single (`timestep_embedding.py`, `adaln.py`): sinusoid(256) of the
//! scaled timestep -> `emb.timestep_embedder` (Linear, SiLU, Linear) = "embedded timestep" ->
//! SiLU -> `linear` (D -> k*D) = the modulation rows.

use mlx_rs::{macros::ModuleParameters, nn, ops, Array, Dtype};

use super::{linear::Linear, Result};

const SINUSOID_DIM: usize = 256;

/// `get_timestep_embedding(t, 256, flip_sin_to_cos=True, downscale_freq_shift=0)`: [cos, sin], f32.
pub fn sinusoid(t: &Array) -> Result<Array> {
    let half = (SINUSOID_DIM / 2) as i32;
    let exponent = Array::arange::<_, f32>(None, half, None)?
        .multiply(Array::from_f32(-(10000f64.ln()) as f32))?
        .divide(Array::from_f32(half as f32))?;
    let freqs = ops::exp(&exponent)?;
    let args = t.as_dtype(Dtype::Float32)?.reshape(&[-1, 1])?.multiply(freqs.reshape(&[1, half])?)?;
    Ok(ops::concatenate(&[ops::cos(&args)?, ops::sin(&args)?], -1)?)
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct TimestepEmbedding {
    #[param]
    pub linear_1: Linear,
    #[param]
    pub linear_2: Linear,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct CombinedTimestepEmbeddings {
    #[param]
    pub timestep_embedder: TimestepEmbedding,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct AdaLayerNormSingle {
    #[param]
    pub emb: CombinedTimestepEmbeddings,
    #[param]
    pub linear: Linear,
}

impl AdaLayerNormSingle {
    pub fn new(dim: usize, coefficient: usize) -> Result<Self> {
        let timestep_embedder = TimestepEmbedding {
            linear_1: Linear::new(SINUSOID_DIM, dim, true)?,
            linear_2: Linear::new(dim, dim, true)?,
        };
        Ok(Self {
            emb: CombinedTimestepEmbeddings { timestep_embedder },
            linear: Linear::new(dim, coefficient * dim, true)?,
        })
    }

    /// `t_scaled` (N,) already multiplied by the timestep scale; returns (modulation (N, k*D),
    /// embedded timestep (N, D)) in `dtype`.
    pub fn forward(&self, t_scaled: &Array, dtype: Dtype) -> Result<(Array, Array)> {
        let te = &self.emb.timestep_embedder;
        let h = te.linear_1.forward(&sinusoid(t_scaled)?.as_dtype(dtype)?)?;
        let embedded = te.linear_2.forward(&nn::silu(&h)?)?;
        let modulation = self.linear.forward(&nn::silu(&embedded)?)?;
        Ok((modulation, embedded))
    }
}
