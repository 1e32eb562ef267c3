//! The prompt → (video context, audio context) API the pipelines call: tokenizer, Gemma 3 (loaded on
//! first need, optionally 8/4-bit, optionally dropped right after encoding), feature extractor, both
//! connectors, the negative prompt for CFG, and the prompt cache (a hit skips Gemma entirely).

use std::{
    io::Read,
    path::{Path, PathBuf},
    time::Instant,
};

use mlx_rs::{Array, Dtype};

use crate::transformer::config::CaptionPlacement;

use super::{
    cache::{cache_key, Entry, PromptCache},
    connector::{Connector, ConnectorConfig},
    feature_extractor::FeatureExtractor,
    gemma::{shard_files, Gemma, GemmaConfig},
    quantized::GemmaPrecision,
    tokenizer::{PromptTokenizer, Tokens},
    Result, TextError,
};
use crate::checkpoint::{prefix, Checkpoint, LoadOptions};

/// ltx-pipelines 1.0.0 `DEFAULT_NEGATIVE_PROMPT`.
pub const DEFAULT_NEGATIVE_PROMPT: &str = "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive noise, grainy texture, poor lighting, flickering, motion blur, distorted proportions, unnatural skin tones, deformed facial features, asymmetrical face, missing facial features, extra limbs, disfigured hands, wrong hand count, artifacts around text, inconsistent perspective, camera shake, incorrect depth of field, background too sharp, background clutter, distracting reflections, harsh shadows, inconsistent lighting direction, color banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny valley effect, incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, mismatched lip sync, silent or muted audio, distorted voice, robotic voice, echo, background noise, off-sync audio, incorrect dialogue, added dialogue, repetitive speech, jittery movement, awkward pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted camera, flat lighting, inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts.";

/// The negative prompt of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negative<'a> {
    /// No CFG (distilled pipelines): nothing is encoded.
    None,
    /// CFG with the reference's [`DEFAULT_NEGATIVE_PROMPT`].
    Default,
    /// CFG with this text.
    Text(&'a str),
}

impl<'a> Negative<'a> {
    /// CFG pipelines: the user's negative prompt, or the default one when none was given.
    pub fn for_cfg(text: Option<&'a str>) -> Self {
        text.map_or(Self::Default, Self::Text)
    }
    pub fn text(self) -> Option<&'a str> {
        match self {
            Self::None => None,
            Self::Default => Some(DEFAULT_NEGATIVE_PROMPT),
            Self::Text(t) => Some(t),
        }
    }
}

/// Memory and cache choices (the model manager's).
#[derive(Debug, Clone)]
pub struct EncoderOptions {
    pub precision: GemmaPrecision,
    /// Keep Gemma in memory between prompts; `false` (low-memory mode) drops it after each encode.
    pub keep_loaded: bool,
    /// Token length every prompt is padded/truncated to (1024 for LTX-2).
    pub max_length: usize,
    /// Compute dtype (f32 on CPU, bf16 on GPU: [`crate::Compute`]).
    pub dtype: Dtype,
    /// Directory of the on-disk prompt cache; `None` keeps the cache in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Entries of the in-memory LRU (one CFG entry of LTX-2 is 4 × 1024 × 3840 values: 31 MB in bf16).
    pub memory_cache_entries: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            precision: GemmaPrecision::Bf16,
            keep_loaded: true,
            max_length: 1024,
            dtype: Dtype::Bfloat16,
            cache_dir: None,
            memory_cache_entries: 4,
        }
    }
}

impl EncoderOptions {
    /// Defaults computing in `compute`'s dtype (f32 on CPU, bf16 on GPU).
    pub fn on(compute: crate::Compute) -> Self {
        Self { dtype: compute.dtype, ..Self::default() }
    }
}

/// The text conditioning of one modality pair: each (1, max_length, C), every position attended.
#[derive(Debug, Clone)]
pub struct Contexts {
    pub video: Array,
    pub audio: Array,
}

#[derive(Debug, Clone)]
pub struct EncodedPrompt {
    pub positive: Contexts,
    /// Present when a negative prompt was asked for.
    pub negative: Option<Contexts>,
    /// Served from the prompt cache (Gemma did not run).
    pub cache_hit: bool,
    /// For the job's events, e.g. truncation.
    pub warnings: Vec<String>,
    pub seconds: f64,
}

pub struct PromptEncoder {
    gemma_dir: PathBuf,
    gemma_config: GemmaConfig,
    tokenizer: PromptTokenizer,
    gemma: Option<Gemma>,
    extractor: FeatureExtractor,
    video: Connector,
    audio: Connector,
    options: EncoderOptions,
    identity: String,
    cache: PromptCache,
}

const VIDEO_CONNECTOR: &str = "model.diffusion_model.video_embeddings_connector.";
const AUDIO_CONNECTOR: &str = "model.diffusion_model.audio_embeddings_connector.";

impl PromptEncoder {
    /// `gemma_dir`: `tokenizer.json`, `config.json`, the safetensors shards (checked now, loaded on
    /// first need); `ltx`: the LTX checkpoint holding the feature extractor and the connectors.
    pub fn load(gemma_dir: &Path, ltx: &Checkpoint, options: EncoderOptions) -> Result<Self> {
        let tokenizer = PromptTokenizer::from_file(&gemma_dir.join("tokenizer.json"), options.max_length)?;
        let gemma_config = GemmaConfig::from_file(&gemma_dir.join("config.json"))?;
        let shards = shard_files(gemma_dir)?;
        let config: ConnectorConfig =
            ltx.config()?.section("transformer").map_err(|e| TextError::file(ltx.path(), e))?;
        let load = LoadOptions {
            dtype: Some(options.dtype),
            optional: &|k| k.ends_with(".weight_scale"),
            ..Default::default()
        };
        let mut video = Connector::new(&config, false)?;
        let mut audio = Connector::new(&config, true)?;
        let layers = gemma_config.num_hidden_layers + 1;
        let placement: CaptionPlacement =
            ltx.config()?.section("transformer").map_err(|e| TextError::file(ltx.path(), e))?;
        let mut extractor = match placement.text_encoder_dims()? {
            Some((v, a)) => FeatureExtractor::new_v2(gemma_config.hidden_size, layers, v, a)?,
            None => FeatureExtractor::new(gemma_config.hidden_size * layers, video.heads * video.head_dim)?,
        };
        ltx.load_into(&mut extractor, prefix::TEXT_PROJECTION, &load)?;
        video.load(ltx, VIDEO_CONNECTOR, options.dtype)?;
        audio.load(ltx, AUDIO_CONNECTOR, options.dtype)?;
        let mut files: Vec<PathBuf> = vec![gemma_dir.join("config.json"), gemma_dir.join("tokenizer.json")];
        files.extend(shards);
        files.push(ltx.path().to_path_buf());
        let identity = files_identity(&files)?;
        let cache = PromptCache::new(options.cache_dir.clone(), options.memory_cache_entries);
        Ok(Self {
            gemma_dir: gemma_dir.into(),
            gemma_config,
            tokenizer,
            gemma: None,
            extractor,
            video,
            audio,
            options,
            identity,
            cache,
        })
    }

    pub fn options(&self) -> &EncoderOptions {
        &self.options
    }

    pub fn gemma_loaded(&self) -> bool {
        self.gemma.is_some()
    }

    /// Frees Gemma now (the model manager's hook under memory pressure).
    pub fn unload_gemma(&mut self) {
        self.gemma = None;
        let _ = mlx_rs::memory::clear_cache();
    }

    /// The cache key: prompt, negative prompt, weights' identity and every setting that changes the result.
    pub fn cache_key(&self, prompt: &str, negative: Negative) -> String {
        let settings =
            format!("{}|{}|{:?}", self.options.precision.name(), self.options.max_length, self.options.dtype);
        let neg = negative.text().map_or_else(|| "\u{0}none".to_string(), str::to_string);
        cache_key(&["ltx-text-v1", prompt, &neg, &self.identity, &settings])
    }

    pub fn encode(&mut self, prompt: &str, negative: Negative) -> Result<EncodedPrompt> {
        let start = Instant::now();
        let tokens = self.tokenizer.encode(prompt)?;
        let neg_tokens = negative.text().map(|t| self.tokenizer.encode(t)).transpose()?;
        let mut warnings = Vec::new();
        for (what, t) in [("prompt", Some(&tokens)), ("negative prompt", neg_tokens.as_ref())] {
            if t.is_some_and(|t| t.truncated) {
                let w = format!("{what} is longer than {} tokens and was truncated", self.options.max_length);
                tracing::warn!("{w}");
                warnings.push(w);
            }
        }
        let key = self.cache_key(prompt, negative);
        let (entry, cache_hit) = match self.cache.get(&key) {
            Some(entry) => (entry, true),
            None => {
                // Gemma first for every prompt, so low-memory mode frees it before the connectors run.
                let prompts: Vec<(&str, &Tokens)> = [("", Some(&tokens)), ("negative.", neg_tokens.as_ref())]
                    .into_iter()
                    .filter_map(|(n, t)| Some((n, t?)))
                    .collect();
                let mut hidden = Vec::new();
                for (_, t) in &prompts {
                    let h = self.hidden_states(t)?;
                    mlx_rs::transforms::eval(h.iter())?;
                    hidden.push(h);
                }
                if !self.options.keep_loaded {
                    self.unload_gemma();
                }
                let mut entry = Entry::new();
                for ((name, t), h) in prompts.into_iter().zip(hidden) {
                    let c = self.contexts(&h, t)?;
                    entry.insert(format!("{name}video"), c.video);
                    entry.insert(format!("{name}audio"), c.audio);
                }
                if let Err(e) = self.cache.put(&key, entry.clone()) {
                    let w = format!("prompt cache not written: {e}");
                    tracing::warn!("{w}");
                    warnings.push(w);
                }
                (entry, false)
            }
        };
        let get = |k: &str| {
            entry.get(k).cloned().ok_or_else(|| TextError::Input(format!("prompt cache entry without `{k}`")))
        };
        let positive = Contexts { video: get("video")?, audio: get("audio")? };
        let negative = match negative {
            Negative::None => None,
            _ => Some(Contexts { video: get("negative.video")?, audio: get("negative.audio")? }),
        };
        Ok(EncodedPrompt { positive, negative, cache_hit, warnings, seconds: start.elapsed().as_secs_f64() })
    }

    /// Feature extractor → connectors for one prompt's hidden states (evaluated).
    pub fn contexts(&self, hidden: &[Array], tokens: &Tokens) -> Result<Contexts> {
        let mask = Array::from_slice(&tokens.mask, &[1, tokens.mask.len() as i32]);
        let (video_features, audio_features) = self.extractor.forward(hidden, &mask)?;
        let video = self.video.forward(&video_features, &tokens.mask)?;
        let audio = self.audio.forward(&audio_features, &tokens.mask)?;
        mlx_rs::transforms::eval([&video, &audio])?;
        Ok(Contexts { video, audio })
    }

    /// Gemma's hidden states for one tokenised prompt (loads Gemma if needed).
    pub fn hidden_states(&mut self, tokens: &Tokens) -> Result<Vec<Array>> {
        if self.gemma.is_none() {
            let gemma = Gemma::load(&self.gemma_dir, self.options.dtype, self.options.precision)?;
            if gemma.config.hidden_size != self.gemma_config.hidden_size {
                return Err(TextError::Config("Gemma config changed while loading".into()));
            }
            self.gemma = Some(gemma);
        }
        let gemma = self.gemma.as_ref().ok_or_else(|| TextError::Config("Gemma not loaded".into()))?;
        let t = tokens.ids.len() as i32;
        let ids = Array::from_slice(&tokens.ids, &[1, t]);
        let mask = Array::from_slice(&tokens.mask, &[1, t]);
        gemma.hidden_states(&ids, &mask, self.options.dtype)
    }
}

/// Identity of the weights: file name, size, modification time and the first 64 KiB (the safetensors
/// header with every tensor's name, dtype, shape and offsets) of each file.
fn files_identity(files: &[PathBuf]) -> Result<String> {
    let mut parts = Vec::new();
    for f in files {
        let meta = std::fs::metadata(f).map_err(|e| TextError::file(f, e))?;
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        let mut head = Vec::new();
        std::fs::File::open(f)
            .and_then(|file| file.take(64 * 1024).read_to_end(&mut head))
            .map_err(|e| TextError::file(f, e))?;
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        parts.push(format!(
            "{name}|{}|{:?}|{}",
            meta.len(),
            mtime.map(|d| d.as_secs()),
            cache_key(&[&String::from_utf8_lossy(&head)])
        ));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(cache_key(&refs))
}
