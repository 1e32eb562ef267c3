//! `FeatureExtractorV1` (19B): per item and per layer, over the valid tokens and all channels,
//! `8 · (x − mean) / (max − min + 1e-6)`; padding set to 0; flattened with the layer index fastest
//! (`d · L + l`); projected by the bias-free `aggregate_embed` (`text_embedding_projection.` in the
//! LTX checkpoint). The AV model feeds the same features to both connectors.

use mlx_rs::{macros::ModuleParameters, module::Param, ops, Array};

use super::Result;

#[derive(Debug, Clone, ModuleParameters)]
pub struct AggregateEmbed {
    /// (out, D·L), PyTorch layout.
    #[param]
    pub weight: Param<Array>,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct FeatureExtractor {
    #[param]
    pub aggregate_embed: AggregateEmbed,
}

impl FeatureExtractor {
    /// `hidden`: the model's hidden states, each (B, T, D); `mask`: (B, T) int32, 1 = token.
    pub fn new(flat_dim: usize, out_dim: usize) -> Result<Self> {
        let weight = Array::zeros::<f32>(&[out_dim as i32, flat_dim as i32])?;
        Ok(Self { aggregate_embed: AggregateEmbed { weight: Param::new(weight) } })
    }

    pub fn forward(&self, hidden: &[Array], mask: &Array) -> Result<Array> {
        let x = ops::stack(hidden, -1)?; // (B, T, D, L)
        let (b, t, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let dtype = x.dtype();
        let valid = mask.ne(Array::from_int(0))?.reshape(&[b, t, 1, 1])?;
        let lengths = mask.sum_axis(-1, None)?.as_dtype(dtype)?.reshape(&[b, 1, 1, 1])?;
        let scalar = |v: f32| Array::from_f32(v).as_dtype(dtype);
        let masked = ops::select(&valid, &x, scalar(0.0)?)?;
        let denom = lengths.multiply(scalar(d as f32)?)?.add(scalar(1e-6)?)?;
        let mean = masked.sum_axes(&[1, 2], true)?.divide(&denom)?;
        let x_min = ops::select(&valid, &x, scalar(f32::INFINITY)?)?.min_axes(&[1, 2], true)?;
        let x_max = ops::select(&valid, &x, scalar(f32::NEG_INFINITY)?)?.max_axes(&[1, 2], true)?;
        let range = x_max.subtract(&x_min)?;
        let normed = scalar(8.0)?.multiply(x.subtract(&mean)?)?.divide(range.add(scalar(1e-6)?)?)?;
        let normed = normed.reshape(&[b, t, -1])?;
        let normed = ops::select(&valid.reshape(&[b, t, 1])?, &normed, scalar(0.0)?)?;
        let w = self.aggregate_embed.weight.as_dtype(dtype)?;
        Ok(ops::matmul(&normed, w.t())?)
    }
}
