//! `FeatureExtractorV1` (19B): per item and per layer, over the valid tokens and all channels,
//! `8 · (x − mean) / (max − min + 1e-6)`; padding set to 0; flattened with the layer index fastest
//! (`d · L + l`); projected by the bias-free `aggregate_embed` (`text_embedding_projection.` in the
//! LTX checkpoint). The AV model feeds the same features to both connectors.

use mlx_rs::{macros::ModuleParameters, module::Param, ops, Array, Dtype};

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
    pub fn new(flat_dim: usize, out_dim: usize) -> Result<Self> {
        let weight = Array::zeros::<f32>(&[out_dim as i32, flat_dim as i32])?;
        Ok(Self { aggregate_embed: AggregateEmbed { weight: Param::new(weight) } })
    }

    /// `hidden`: the model's hidden states, each (B, T, D); `mask`: (B, T) int32, 1 = token.
    /// One layer at a time (the same maths as normalising the stacked `[B, T, D, L]` tensor, without
    /// its full-size temporaries). Dtypes follow the reference: sums, min and max in the compute dtype,
    /// the mean and the normalisation in f32, cast back before the projection.
    pub fn forward(&self, hidden: &[Array], mask: &Array) -> Result<Array> {
        let (b, t, d) = match hidden.first().map(Array::shape) {
            Some(&[b, t, d]) => (b, t, d),
            _ => return Err(super::TextError::Input("feature extractor: no (B, T, D) hidden states".into())),
        };
        let dtype = hidden[0].dtype();
        let c = |v: f32| Array::from_f32(v);
        let valid = mask.ne(Array::from_int(0))?.reshape(&[b, t, 1])?;
        let lengths = mask.sum_axis(-1, None)?.as_dtype(Dtype::Float32)?.reshape(&[b, 1, 1])?;
        let denom = lengths.multiply(c(d as f32))?.add(c(1e-6))?;
        let normed = hidden
            .iter()
            .map(|x| -> Result<Array> {
                let fill = |v: f32| -> Result<Array> { Ok(ops::select(&valid, x, c(v).as_dtype(dtype)?)?) };
                let mean = fill(0.0)?.sum_axes(&[1, 2], true)?.as_dtype(Dtype::Float32)?.divide(&denom)?;
                let x_min = fill(f32::INFINITY)?.min_axes(&[1, 2], true)?;
                let x_max = fill(f32::NEG_INFINITY)?.max_axes(&[1, 2], true)?;
                let range = x_max.subtract(&x_min)?.add(c(1e-6).as_dtype(dtype)?)?.as_dtype(Dtype::Float32)?;
                let n = c(8.0).multiply(x.as_dtype(Dtype::Float32)?.subtract(&mean)?)?.divide(&range)?;
                Ok(ops::select(&valid, &n, c(0.0))?.as_dtype(dtype)?)
            })
            .collect::<Result<Vec<_>>>()?;
        // Layer index fastest: flat index d·L + l.
        let flat = ops::stack(&normed, -1)?.reshape(&[b, t, -1])?;
        let w = self.aggregate_embed.weight.as_dtype(dtype)?;
        Ok(ops::matmul(&flat, w.t())?)
    }
}
