//! `config.transformer` from the checkpoint's safetensors metadata. Every key of the published 19B
//! metadata is known: the ones the model uses are required, the ones ltx-core only checks are
//! validated against the value it requires, and a key nobody knows is a load error.

use serde::Deserialize;
use serde_json::Value;

use super::{Result, TransformerError};

/// RoPE layout (`LTXRopeType`): 19B uses `split`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeType {
    Split,
    Interleaved,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // informational keys are parsed (so they are known) but not read
pub struct TransformerConfig {
    // --- used by the model (required) ---
    pub num_layers: usize,
    pub num_attention_heads: usize,
    pub attention_head_dim: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub cross_attention_dim: usize,
    pub caption_channels: usize,
    pub audio_num_attention_heads: usize,
    pub audio_attention_head_dim: usize,
    pub audio_out_channels: usize,
    pub audio_cross_attention_dim: usize,
    pub norm_eps: f32,
    pub positional_embedding_theta: f64,
    pub positional_embedding_max_pos: Vec<f64>,
    pub audio_positional_embedding_max_pos: Vec<f64>,
    pub timestep_scale_multiplier: f64,
    pub av_ca_timestep_scale_multiplier: f64,
    pub rope_type: RopeType,
    pub frequencies_precision: String,
    pub use_middle_indices_grid: bool,
    /// Absent from the 19B metadata: ltx-core's `LTXModelConfigurator` then uses 128 (8 ch x 16 mel).
    pub audio_in_channels: Option<usize>,
    // --- LTX-2.3 switches: absent (false) on 19B ---
    pub apply_gated_attention: Option<bool>,
    pub cross_attention_adaln: Option<bool>,
    /// True: the caption projection is the text encoder's (`FeatureExtractorV2`), the contexts arrive at
    /// the streams' inner dims. ltx-core accepts it only with the three keys below all false.
    pub caption_proj_before_connector: Option<bool>,
    caption_projection_first_linear: Option<bool>,
    caption_proj_input_norm: Option<bool>,
    caption_projection_second_linear: Option<bool>,
    // --- checked by ltx-core (`check_config_value`), validated in `validate` ---
    activation_fn: Option<String>,
    attention_bias: Option<bool>,
    qk_norm: Option<String>,
    standardization_norm: Option<String>,
    norm_elementwise_affine: Option<bool>,
    positional_embedding_type: Option<String>,
    use_audio_video_cross_attention: Option<bool>,
    share_ff: Option<bool>,
    av_cross_ada_norm: Option<bool>,
    dropout: Option<f64>,
    num_embeds_ada_norm: Option<i64>,
    num_vector_embeds: Option<Value>,
    use_linear_projection: Option<bool>,
    only_cross_attention: Option<bool>,
    cross_attention_norm: Option<bool>,
    double_self_attention: Option<bool>,
    upcast_attention: Option<bool>,
    // --- informational, or read by other components (text connectors, VAE) ---
    #[serde(rename = "_class_name")]
    _class_name: Option<Value>,
    #[serde(rename = "_diffusers_version")]
    _diffusers_version: Option<Value>,
    attention_type: Option<Value>,
    causal_temporal_positioning: Option<Value>,
    norm_num_groups: Option<Value>,
    use_embeddings_connector: Option<Value>,
    connector_attention_head_dim: Option<Value>,
    connector_norm_output: Option<Value>,
    connector_num_attention_heads: Option<Value>,
    connector_num_layers: Option<Value>,
    connector_num_learnable_registers: Option<Value>,
    connector_positional_embedding_max_pos: Option<Value>,
    connector_apply_gated_attention: Option<Value>,
    audio_connector_attention_head_dim: Option<Value>,
    audio_connector_num_attention_heads: Option<Value>,
    audio_connector_num_layers: Option<Value>,
}

/// `_create_feature_extractor`'s rule: the four caption-projection keys (`caption_proj_before_connector`,
/// `caption_projection_first_linear`, `caption_proj_input_norm`, `caption_projection_second_linear`) come as
/// a set with the values (true, false, false, false) — the projection is then the text encoder's
/// (`FeatureExtractorV2`, `Ok(true)`) — or not at all (`Ok(false)`).
pub fn caption_keys_v2(values: [Option<bool>; 4]) -> Result<bool> {
    const KEYS: [(&str, bool); 4] = [
        ("caption_proj_before_connector", true),
        ("caption_projection_first_linear", false),
        ("caption_proj_input_norm", false),
        ("caption_projection_second_linear", false),
    ];
    if values.iter().all(Option::is_none) {
        return Ok(false);
    }
    for ((key, expected), value) in KEYS.iter().zip(values) {
        match value {
            None => return Err(TransformerError::Config(format!("partial caption-projection config: no `{key}`"))),
            Some(v) if v != *expected => {
                return Err(TransformerError::Config(format!("`{key}` is {v}, ltx-core supports only {expected}")))
            }
            _ => {}
        }
    }
    Ok(true)
}

/// The keys of `config.transformer` the text encoder reads to place the caption projection.
#[derive(Debug, Clone, Deserialize)]
pub struct CaptionPlacement {
    caption_proj_before_connector: Option<bool>,
    caption_projection_first_linear: Option<bool>,
    caption_proj_input_norm: Option<bool>,
    caption_projection_second_linear: Option<bool>,
    num_attention_heads: Option<usize>,
    attention_head_dim: Option<usize>,
    audio_num_attention_heads: Option<usize>,
    audio_attention_head_dim: Option<usize>,
}

impl CaptionPlacement {
    /// `Some((video, audio))` inner dims when the text encoder projects (`FeatureExtractorV2`), None on LTX-2.
    pub fn text_encoder_dims(&self) -> Result<Option<(usize, usize)>> {
        let v2 = caption_keys_v2([
            self.caption_proj_before_connector,
            self.caption_projection_first_linear,
            self.caption_proj_input_norm,
            self.caption_projection_second_linear,
        ])?;
        if !v2 {
            return Ok(None);
        }
        let dims = [
            self.num_attention_heads,
            self.attention_head_dim,
            self.audio_num_attention_heads,
            self.audio_attention_head_dim,
        ];
        match dims {
            [Some(h), Some(d), Some(ah), Some(ad)] if h * d * ah * ad > 0 => Ok(Some((h * d, ah * ad))),
            _ => Err(TransformerError::Config(format!(
                "the text encoder's projections need the transformer's heads and head dims; got {dims:?}"
            ))),
        }
    }
}

impl TransformerConfig {
    /// Parse the whole metadata `config` JSON string and take its `transformer` section.
    pub fn from_metadata_json(config_json: &str) -> Result<Self> {
        let root: Value = serde_json::from_str(config_json)
            .map_err(|e| TransformerError::Config(format!("metadata `config` is not JSON: {e}")))?;
        let section = root
            .get("transformer")
            .ok_or_else(|| TransformerError::Config("metadata `config` has no `transformer` section".into()))?;
        Self::from_value(section.clone())
    }

    /// The `transformer` section of a checkpoint's parsed `config` metadata (what the loader and the
    /// preflight's estimate both read).
    pub fn from_ltx(config: &crate::config::LtxConfig) -> Result<Self> {
        let section = config.raw("transformer").cloned();
        Self::from_value(
            section.ok_or_else(|| TransformerError::Config("the checkpoint has no `transformer` config".into()))?,
        )
    }

    pub fn from_value(section: Value) -> Result<Self> {
        let cfg: Self = serde_json::from_value(section).map_err(|e| TransformerError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        fn want<T: PartialEq + std::fmt::Debug>(key: &str, got: &Option<T>, expected: T) -> Result<()> {
            match got {
                Some(v) if *v != expected => {
                    Err(TransformerError::Config(format!("`{key}` is {v:?}, ltx-core requires {expected:?}")))
                }
                _ => Ok(()),
            }
        }
        want("activation_fn", &self.activation_fn, "gelu-approximate".to_string())?;
        want("attention_bias", &self.attention_bias, true)?;
        want("qk_norm", &self.qk_norm, "rms_norm".to_string())?;
        want("standardization_norm", &self.standardization_norm, "rms_norm".to_string())?;
        want("norm_elementwise_affine", &self.norm_elementwise_affine, false)?;
        want("positional_embedding_type", &self.positional_embedding_type, "rope".to_string())?;
        want("use_audio_video_cross_attention", &self.use_audio_video_cross_attention, true)?;
        want("share_ff", &self.share_ff, false)?;
        want("av_cross_ada_norm", &self.av_cross_ada_norm, true)?;
        want("dropout", &self.dropout, 0.0)?;
        want("num_embeds_ada_norm", &self.num_embeds_ada_norm, 1000)?;
        want("num_vector_embeds", &self.num_vector_embeds, Value::Null)?;
        want("use_linear_projection", &self.use_linear_projection, false)?;
        want("only_cross_attention", &self.only_cross_attention, false)?;
        want("cross_attention_norm", &self.cross_attention_norm, true)?;
        want("double_self_attention", &self.double_self_attention, false)?;
        want("upcast_attention", &self.upcast_attention, false)?;
        caption_keys_v2([
            self.caption_proj_before_connector,
            self.caption_projection_first_linear,
            self.caption_proj_input_norm,
            self.caption_projection_second_linear,
        ])?;
        if !matches!(self.frequencies_precision.as_str(), "float64" | "float32") {
            return Err(TransformerError::Config(format!(
                "`frequencies_precision` is {:?}, expected \"float64\" or \"float32\"",
                self.frequencies_precision
            )));
        }
        if self.positional_embedding_max_pos.len() != 3 || self.audio_positional_embedding_max_pos.len() != 1 {
            return Err(TransformerError::Config(
                "positional_embedding_max_pos must have 3 entries and the audio one 1".into(),
            ));
        }
        let dims = [
            self.num_attention_heads,
            self.attention_head_dim,
            self.audio_num_attention_heads,
            self.audio_attention_head_dim,
        ];
        if dims.contains(&0) {
            return Err(TransformerError::Config(format!(
                "attention heads and head dimensions must be positive; got video {}x{}, audio {}x{}",
                dims[0], dims[1], dims[2], dims[3]
            )));
        }
        if self.num_attention_heads != self.audio_num_attention_heads {
            // The A/V cross-attention PE reshapes the video time axis with the video head count.
            return Err(TransformerError::Config("video and audio head counts must match".into()));
        }
        Ok(())
    }

    /// `apply_gated_attention` (LTX-2.3).
    pub fn gated_attention(&self) -> bool {
        self.apply_gated_attention.unwrap_or(false)
    }
    /// `cross_attention_adaln` (LTX-2.3).
    pub fn cross_adaln(&self) -> bool {
        self.cross_attention_adaln.unwrap_or(false)
    }
    /// `caption_proj_before_connector` (LTX-2.3): the text encoder projects the captions.
    pub fn caption_projection_in_text_encoder(&self) -> bool {
        self.caption_proj_before_connector.unwrap_or(false)
    }

    pub fn video_inner_dim(&self) -> usize {
        self.num_attention_heads * self.attention_head_dim
    }
    pub fn audio_inner_dim(&self) -> usize {
        self.audio_num_attention_heads * self.audio_attention_head_dim
    }
    pub fn audio_in(&self) -> usize {
        self.audio_in_channels.unwrap_or(128)
    }
    pub fn double_precision_rope(&self) -> bool {
        self.frequencies_precision == "float64"
    }
    /// max(video max_pos[0], audio max_pos[0]) — the time span of the A/V cross-attention RoPE.
    pub fn cross_pe_max_pos(&self) -> f64 {
        self.positional_embedding_max_pos[0].max(self.audio_positional_embedding_max_pos[0])
    }
}
