//! Typed configs from a checkpoint's safetensors metadata.
//!
//! LTX-2 single-file checkpoints carry `__metadata__["config"]`, a JSON object with one section per
//! component (`transformer`, `vae`, `audio_vae`, `vocoder`, optionally `scheduler`); the spatial upscaler
//! file carries its own config at the top level. The structs here follow ltx-core 1.0.0's configurators:
//! a key the configurator reads with a default has the same default here; the transformer's config, whose
//! keys are all required, lives with the transformer. Keys these structs do not know are logged, so that a
//! newer checkpoint still loads while its differences stay visible.
use std::collections::HashMap;

use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{Map, Value};

/// A config problem, named by component and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("not an LTX-2 checkpoint: {0}")]
    NotLtx(String),
    #[error("config section `{section}` is missing from the checkpoint metadata")]
    MissingSection { section: &'static str },
    #[error("config section `{section}` is invalid: {source}")]
    Invalid {
        section: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// The `config` metadata of an LTX-2 checkpoint, split into its sections.
#[derive(Debug, Clone)]
pub struct LtxConfig {
    sections: Map<String, Value>,
}

impl LtxConfig {
    /// Sections an LTX-2 single-file checkpoint may carry; at least one of the model sections must be there.
    const MODEL_SECTIONS: [&'static str; 4] = ["transformer", "vae", "audio_vae", "vocoder"];

    /// Parses `metadata["config"]`. A file without it, or whose config names no LTX-2 component, is not an
    /// LTX-2 checkpoint.
    pub fn from_metadata(metadata: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let text = metadata
            .get("config")
            .ok_or_else(|| ConfigError::NotLtx("its safetensors metadata has no `config` entry".into()))?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::NotLtx(format!("its `config` metadata is not JSON ({e})")))?;
        let Value::Object(sections) = value else {
            return Err(ConfigError::NotLtx("its `config` metadata is not a JSON object".into()));
        };
        if !Self::MODEL_SECTIONS.iter().any(|s| sections.contains_key(*s)) {
            let found: Vec<&str> = sections.keys().map(String::as_str).collect();
            return Err(ConfigError::NotLtx(format!(
                "its config has none of the sections {:?} (found {found:?})",
                Self::MODEL_SECTIONS
            )));
        }
        Ok(Self { sections })
    }

    pub fn has(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// The raw JSON of one section.
    pub fn raw(&self, section: &str) -> Option<&Value> {
        self.sections.get(section)
    }

    /// One section deserialised into `T`.
    pub fn section<T: DeserializeOwned>(&self, section: &'static str) -> Result<T, ConfigError> {
        let value = self.sections.get(section).ok_or(ConfigError::MissingSection { section })?;
        parse(section, value.clone())
    }

    pub fn vae(&self) -> Result<VaeConfig, ConfigError> {
        self.section("vae")
    }

    pub fn audio_vae(&self) -> Result<AudioVaeConfig, ConfigError> {
        self.section("audio_vae")
    }

    /// `config.vocoder`: LTX-2's flat HiFi-GAN config, or (LTX-2.3, a `bwe` key present) the nested
    /// `vocoder` + `bwe` sections of the BigVGAN v2 vocoder with bandwidth extension, read as ltx-core's
    /// `VocoderConfigurator` reads them.
    pub fn vocoder(&self) -> Result<VocoderSection, ConfigError> {
        let section = self.sections.get("vocoder").ok_or(ConfigError::MissingSection { section: "vocoder" })?;
        let Some(bwe) = section.get("bwe") else {
            return Ok(VocoderSection::Plain(parse("vocoder", section.clone())?));
        };
        let main = section.get("vocoder").cloned().unwrap_or_else(|| Value::Object(Map::new()));
        Ok(VocoderSection::WithBwe(BweSection {
            vocoder: parse("vocoder.vocoder", main)?,
            bwe_generator: parse("vocoder.bwe", bwe.clone())?,
            bwe: parse("vocoder.bwe", bwe.clone())?,
        }))
    }
}

/// Deserialises a config value; keys the target does not know are logged, not fatal.
pub fn parse<T: DeserializeOwned>(section: &'static str, value: Value) -> Result<T, ConfigError> {
    let mut unused = Vec::new();
    let parsed = serde_ignored::deserialize(value, |path| unused.push(path.to_string()))
        .map_err(|source| ConfigError::Invalid { section, source })?;
    if !unused.is_empty() {
        tracing::debug!(section, ?unused, "config keys this engine does not use");
    }
    Ok(parsed)
}

/// One entry of `encoder_blocks` / `decoder_blocks`: `[name, params]`, where params is an object or,
/// in older files, a bare layer count.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "(String, Value)")]
pub struct VaeBlock {
    pub name: String,
    pub params: Map<String, Value>,
}

impl From<(String, Value)> for VaeBlock {
    fn from((name, params): (String, Value)) -> Self {
        let params = match params {
            Value::Object(map) => map,
            other => Map::from_iter([("num_layers".to_string(), other)]),
        };
        Self { name, params }
    }
}

impl VaeBlock {
    pub fn int(&self, key: &str) -> Option<i64> {
        self.params.get(key).and_then(Value::as_i64)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.params.get(key).and_then(Value::as_bool)
    }
}

/// `config.vae` (ltx-core `VideoEncoderConfigurator` / `VideoDecoderConfigurator`).
#[derive(Debug, Clone, Deserialize)]
pub struct VaeConfig {
    #[serde(default = "d::three")]
    pub dims: u32,
    #[serde(default = "d::three")]
    pub in_channels: u32,
    #[serde(default = "d::three")]
    pub out_channels: u32,
    #[serde(default = "d::c128")]
    pub latent_channels: u32,
    #[serde(default)]
    pub encoder_blocks: Vec<VaeBlock>,
    #[serde(default)]
    pub decoder_blocks: Vec<VaeBlock>,
    #[serde(default = "d::four")]
    pub patch_size: u32,
    #[serde(default = "d::pixel_norm")]
    pub norm_layer: String,
    #[serde(default = "d::uniform")]
    pub latent_log_var: String,
    /// One key, two defaults in ltx-core: `zeros` for the encoder, `reflect` for the decoder.
    #[serde(default)]
    pub spatial_padding_mode: Option<String>,
    #[serde(default)]
    pub causal_decoder: bool,
    #[serde(default = "d::yes")]
    pub timestep_conditioning: bool,
    #[serde(default = "d::c128")]
    pub decoder_base_channels: u32,
}

impl VaeConfig {
    pub fn encoder_padding(&self) -> &str {
        self.spatial_padding_mode.as_deref().unwrap_or("zeros")
    }

    pub fn decoder_padding(&self) -> &str {
        self.spatial_padding_mode.as_deref().unwrap_or("reflect")
    }
}

/// `config.audio_vae` (ltx-core `AudioDecoderConfigurator`): `model.params.ddconfig` plus preprocessing.
#[derive(Debug, Clone, Deserialize)]
pub struct AudioVaeConfig {
    #[serde(default)]
    pub model: AudioVaeModel,
    #[serde(default)]
    pub preprocessing: AudioPreprocessing,
    #[serde(default)]
    pub variables: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AudioVaeModel {
    #[serde(default)]
    pub params: AudioVaeParams,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AudioVaeParams {
    #[serde(default)]
    pub ddconfig: DdConfig,
    #[serde(default = "d::sr16k")]
    pub sampling_rate: u32,
}

impl Default for AudioVaeParams {
    fn default() -> Self {
        Self { ddconfig: DdConfig::default(), sampling_rate: d::sr16k() }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DdConfig {
    #[serde(default = "d::c128")]
    pub ch: u32,
    #[serde(default = "d::two")]
    pub out_ch: u32,
    #[serde(default = "d::ch_mult")]
    pub ch_mult: Vec<u32>,
    #[serde(default = "d::two")]
    pub num_res_blocks: u32,
    #[serde(default = "d::attn_resolutions")]
    pub attn_resolutions: Vec<u32>,
    #[serde(default = "d::c256")]
    pub resolution: u32,
    #[serde(default = "d::eight")]
    pub z_channels: u32,
    #[serde(default = "d::two")]
    pub in_channels: u32,
    #[serde(default = "d::pixel")]
    pub norm_type: String,
    #[serde(default = "d::height")]
    pub causality_axis: String,
    #[serde(default = "d::yes")]
    pub mid_block_add_attention: bool,
    #[serde(default)]
    pub mel_bins: Option<u32>,
}

impl Default for DdConfig {
    fn default() -> Self {
        // Same defaults as deserialising `{}`.
        serde_json::from_value(Value::Object(Map::new())).unwrap_or_else(|_| unreachable!())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AudioPreprocessing {
    #[serde(default)]
    pub stft: Map<String, Value>,
    #[serde(default)]
    pub mel: Map<String, Value>,
}

impl AudioVaeConfig {
    pub fn ddconfig(&self) -> &DdConfig {
        &self.model.params.ddconfig
    }

    /// ltx-core: `ddconfig.mel_bins or preprocessing.mel.n_mel_channels or variables.mel_bins`.
    pub fn mel_bins(&self) -> Option<u32> {
        let from = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_u64).map(|v| v as u32);
        self.ddconfig()
            .mel_bins
            .or_else(|| from(&self.preprocessing.mel, "n_mel_channels"))
            .or_else(|| from(&self.variables, "mel_bins"))
    }

    /// [`Self::mel_bins`], or 64 where no key names them (the latent layout and the preflight's estimate).
    pub fn mel_bins_or_default(&self) -> u32 {
        self.mel_bins().unwrap_or(64)
    }

    pub fn mel_hop_length(&self) -> u32 {
        self.preprocessing.stft.get("hop_length").and_then(Value::as_u64).map_or(160, |v| v as u32)
    }
}

/// One generator's config (ltx-core `_vocoder_from_config`): LTX-2's HiFi-GAN (`resblock` "1") or a
/// BigVGAN v2 generator of LTX-2.3 (`resblock` "AMP1", `activation` "snakebeta").
#[derive(Debug, Clone, Deserialize)]
pub struct VocoderConfig {
    #[serde(default = "d::resblock_kernels")]
    pub resblock_kernel_sizes: Vec<u32>,
    #[serde(default = "d::upsample_rates")]
    pub upsample_rates: Vec<u32>,
    #[serde(default = "d::upsample_kernels")]
    pub upsample_kernel_sizes: Vec<u32>,
    #[serde(default = "d::dilations")]
    pub resblock_dilation_sizes: Vec<Vec<u32>>,
    #[serde(default = "d::c1024")]
    pub upsample_initial_channel: u32,
    #[serde(default = "d::one_str")]
    pub resblock: String,
    #[serde(default = "d::sr24k")]
    pub output_sampling_rate: u32,
    #[serde(default = "d::yes")]
    pub stereo: bool,
    #[serde(default = "d::yes")]
    pub use_tanh_at_final: bool,
    #[serde(default = "d::yes")]
    pub use_bias_at_final: bool,
    /// AMP blocks' activation ("snake" by default in ltx-core; LTX-2.3 uses "snakebeta").
    #[serde(default = "d::snake")]
    pub activation: String,
}

/// `config.vocoder` as ltx-core's `VocoderConfigurator` dispatches on it.
#[derive(Debug, Clone)]
pub enum VocoderSection {
    /// LTX-2: the flat section is one HiFi-GAN generator.
    Plain(VocoderConfig),
    /// LTX-2.3: `vocoder.vocoder` (mel -> waveform at the input rate) and `vocoder.bwe` (the bandwidth
    /// extension generator and its STFT / rates).
    WithBwe(BweSection),
}

#[derive(Debug, Clone)]
pub struct BweSection {
    pub vocoder: VocoderConfig,
    pub bwe_generator: VocoderConfig,
    pub bwe: BweConfig,
}

/// The bandwidth extension's own keys of `config.vocoder.bwe` (all required by ltx-core).
#[derive(Debug, Clone, Deserialize)]
pub struct BweConfig {
    pub input_sampling_rate: u32,
    pub output_sampling_rate: u32,
    pub hop_length: u32,
    /// FFT size and window length of the causal STFT.
    pub n_fft: u32,
    pub num_mels: u32,
}

/// A latent upscaler's top-level config (ltx-core `LatentUpsamplerConfigurator`): spatial ×2 / ×1.5 or temporal ×2.
#[derive(Debug, Clone, Deserialize)]
pub struct UpsamplerConfig {
    #[serde(default = "d::c128")]
    pub in_channels: u32,
    #[serde(default = "d::c512")]
    pub mid_channels: u32,
    #[serde(default = "d::four")]
    pub num_blocks_per_stage: u32,
    #[serde(default = "d::three")]
    pub dims: u32,
    #[serde(default = "d::yes")]
    pub spatial_upsample: bool,
    #[serde(default)]
    pub temporal_upsample: bool,
    #[serde(default = "d::scale2")]
    pub spatial_scale: f64,
    #[serde(default)]
    pub rational_resampler: bool,
}

impl UpsamplerConfig {
    /// The upscaler file's `config` metadata (top level, not sectioned).
    pub fn from_metadata(metadata: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let text = metadata
            .get("config")
            .ok_or_else(|| ConfigError::NotLtx("the upscaler file has no `config` metadata".into()))?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::NotLtx(format!("the upscaler's `config` metadata is not JSON ({e})")))?;
        if !value.get("mid_channels").is_some_and(Value::is_number) {
            return Err(ConfigError::NotLtx("the config names no `mid_channels`: not an LTX-2 latent upscaler".into()));
        }
        parse("upsampler", value)
    }
}

/// serde default functions (ltx-core's configurator defaults).
mod d {
    pub fn yes() -> bool {
        true
    }
    pub fn two() -> u32 {
        2
    }
    pub fn three() -> u32 {
        3
    }
    pub fn four() -> u32 {
        4
    }
    pub fn eight() -> u32 {
        8
    }
    pub fn c128() -> u32 {
        128
    }
    pub fn c256() -> u32 {
        256
    }
    pub fn c512() -> u32 {
        512
    }
    pub fn c1024() -> u32 {
        1024
    }
    pub fn sr16k() -> u32 {
        16_000
    }
    pub fn sr24k() -> u32 {
        24_000
    }
    pub fn scale2() -> f64 {
        2.0
    }
    pub fn pixel_norm() -> String {
        "pixel_norm".into()
    }
    pub fn pixel() -> String {
        "pixel".into()
    }
    pub fn uniform() -> String {
        "uniform".into()
    }
    pub fn height() -> String {
        "height".into()
    }
    pub fn one_str() -> String {
        "1".into()
    }
    pub fn snake() -> String {
        "snake".into()
    }
    pub fn ch_mult() -> Vec<u32> {
        vec![1, 2, 4]
    }
    pub fn attn_resolutions() -> Vec<u32> {
        vec![8, 16, 32]
    }
    pub fn resblock_kernels() -> Vec<u32> {
        vec![3, 7, 11]
    }
    pub fn upsample_rates() -> Vec<u32> {
        vec![6, 5, 2, 2, 2]
    }
    pub fn upsample_kernels() -> Vec<u32> {
        vec![16, 15, 8, 4, 4]
    }
    pub fn dilations() -> Vec<Vec<u32>> {
        vec![vec![1, 3, 5]; 3]
    }
}
