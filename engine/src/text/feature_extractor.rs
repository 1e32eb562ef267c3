//! The feature extractors (`feature_extractor.py`), under `text_embedding_projection.` in the LTX checkpoint.
//!
//! `FeatureExtractorV1` (LTX-2): per item and per layer, over the valid tokens and all channels,
//! `8 · (x − mean) / (max − min + 1e-6)`; padding set to 0; flattened with the layer index fastest
//! (`d · L + l`); projected by the bias-free `aggregate_embed`. Both connectors get the same features.
//!
//! `FeatureExtractorV2` (LTX-2.3, `caption_proj_before_connector`): per token and per layer an RMS norm over
//! the hidden dim (eps 1e-6), padding set to 0, flattened the same way; then for each stream
//! `·√(out/D)` and its own biased projection (`video_aggregate_embed` → the video inner dim,
//! `audio_aggregate_embed` → the audio one).

use mlx_rs::{macros::ModuleParameters, module::Param, ops, Array, Dtype};

use super::{Result, TextError};
use crate::transformer::linear::Linear;

#[derive(Debug, Clone, ModuleParameters)]
pub struct AggregateEmbed {
    /// (out, D·L), PyTorch layout.
    #[param]
    pub weight: Param<Array>,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct FeatureExtractor {
    /// V1 only.
    #[param]
    pub aggregate_embed: Option<AggregateEmbed>,
    /// V2 only.
    #[param]
    pub video_aggregate_embed: Option<Linear>,
    #[param]
    pub audio_aggregate_embed: Option<Linear>,
    /// Gemma's hidden size (V2's rescale).
    pub embedding_dim: usize,
}

impl FeatureExtractor {
    /// V1: `flat_dim` = D·L → `out_dim`.
    pub fn new(flat_dim: usize, out_dim: usize) -> Result<Self> {
        let weight = Array::zeros::<f32>(&[out_dim as i32, flat_dim as i32])?;
        Ok(Self {
            aggregate_embed: Some(AggregateEmbed { weight: Param::new(weight) }),
            video_aggregate_embed: None,
            audio_aggregate_embed: None,
            embedding_dim: 0,
        })
    }

    /// V2: D·L → the video and audio inner dims, `embedding_dim` = D.
    pub fn new_v2(embedding_dim: usize, layers: usize, video_dim: usize, audio_dim: usize) -> Result<Self> {
        let flat = embedding_dim * layers;
        Ok(Self {
            aggregate_embed: None,
            video_aggregate_embed: Some(Linear::new(flat, video_dim, true)?),
            audio_aggregate_embed: Some(Linear::new(flat, audio_dim, true)?),
            embedding_dim,
        })
    }

    /// `hidden`: the model's hidden states, each (B, T, D); `mask`: (B, T) int32, 1 = token.
    /// Returns the (video, audio) features.
    pub fn forward(&self, hidden: &[Array], mask: &Array) -> Result<(Array, Array)> {
        let (b, t, d) = match hidden.first().map(Array::shape) {
            Some(&[b, t, d]) => (b, t, d),
            _ => return Err(TextError::Input("feature extractor: no (B, T, D) hidden states".into())),
        };
        let valid = mask.ne(Array::from_int(0))?.reshape(&[b, t, 1])?;
        match (&self.aggregate_embed, &self.video_aggregate_embed, &self.audio_aggregate_embed) {
            (Some(embed), None, None) => {
                let features = v1(hidden, mask, &valid, d, embed)?;
                Ok((features.clone(), features))
            }
            (None, Some(video), Some(audio)) => {
                let flat = per_token_rms(hidden, &valid)?;
                let project = |embed: &Linear| -> Result<Array> {
                    let out = embed.weight.shape()[0] as f32;
                    let scale = Array::from_f32((out / self.embedding_dim as f32).sqrt()).as_dtype(flat.dtype())?;
                    Ok(embed.forward(&flat.multiply(&scale)?)?)
                };
                Ok((project(video)?, project(audio)?))
            }
            _ => Err(TextError::Config("feature extractor: neither the V1 nor the V2 projections".into())),
        }
    }
}

/// One layer at a time (the same maths as normalising the stacked `[B, T, D, L]` tensor, without its
/// full-size temporaries). Dtypes follow the reference: sums, min and max in the compute dtype, the mean and
/// the normalisation in f32, cast back before the projection.
fn v1(hidden: &[Array], mask: &Array, valid: &Array, d: i32, embed: &AggregateEmbed) -> Result<Array> {
    let (b, t) = (valid.shape()[0], valid.shape()[1]);
    let dtype = hidden[0].dtype();
    let c = |v: f32| Array::from_f32(v);
    let lengths = mask.sum_axis(-1, None)?.as_dtype(Dtype::Float32)?.reshape(&[b, 1, 1])?;
    let denom = lengths.multiply(c(d as f32))?.add(c(1e-6))?;
    let normed = hidden
        .iter()
        .map(|x| -> Result<Array> {
            let fill = |v: f32| -> Result<Array> { Ok(ops::select(valid, x, c(v).as_dtype(dtype)?)?) };
            let mean = fill(0.0)?.sum_axes(&[1, 2], true)?.as_dtype(Dtype::Float32)?.divide(&denom)?;
            let x_min = fill(f32::INFINITY)?.min_axes(&[1, 2], true)?;
            let x_max = fill(f32::NEG_INFINITY)?.max_axes(&[1, 2], true)?;
            let range = x_max.subtract(&x_min)?.add(c(1e-6).as_dtype(dtype)?)?.as_dtype(Dtype::Float32)?;
            let n = c(8.0).multiply(x.as_dtype(Dtype::Float32)?.subtract(&mean)?)?.divide(&range)?;
            Ok(ops::select(valid, &n, c(0.0))?.as_dtype(dtype)?)
        })
        .collect::<Result<Vec<_>>>()?;
    // Layer index fastest: flat index d·L + l.
    let flat = ops::stack(&normed, -1)?.reshape(&[b, t, -1])?;
    let w = embed.weight.as_dtype(dtype)?;
    Ok(ops::matmul(&flat, w.t())?)
}

/// `norm_and_concat_per_token_rms`: `x · rsqrt(mean(x², D) + 1e-6)` per token and layer, padding 0, layer
/// index fastest; in the hidden states' dtype.
fn per_token_rms(hidden: &[Array], valid: &Array) -> Result<Array> {
    let (b, t) = (valid.shape()[0], valid.shape()[1]);
    let dtype = hidden[0].dtype();
    let zero = Array::from_f32(0.0).as_dtype(dtype)?;
    let normed = hidden
        .iter()
        .map(|x| -> Result<Array> {
            let variance = x.multiply(x)?.mean_axis(-1, true)?;
            let n = x.multiply(ops::rsqrt(&variance.add(Array::from_f32(1e-6).as_dtype(dtype)?)?)?)?;
            Ok(ops::select(valid, &n, &zero)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ops::stack(&normed, -1)?.reshape(&[b, t, -1])?)
}
