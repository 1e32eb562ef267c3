//! Per-component residency of one variant: each component loads on first need (reporting
//! `LoadingComponent`), is materialised, and is charged the memory it took (MLX's active bytes after
//! minus before, or its parameters' bytes where those point into the mapped checkpoint).
use std::collections::BTreeMap;

use mlx_rs::module::ModuleParameters;

use super::{latents::AudioLayout, models::ModelSet, Fail};
use crate::{
    audio_vae::{AudioDecoder, Vocoder},
    checkpoint::{prefix, Checkpoint},
    config::VaeConfig,
    device::Compute,
    job::{EngineError, ProgressSink},
    memory::MemoryReport,
    text::{EncoderOptions, PromptEncoder},
    transformer::LtxModel,
    upsampler::LatentUpsampler,
    video_vae::{encoder::VideoEncoder, ops::PerChannelStatistics, VideoDecoder},
};
use ltx_protocol::Stage;

pub const TEXT_ENCODER: &str = "text_encoder";
pub const TRANSFORMER: &str = "transformer";
pub const UPSCALER: &str = "upscaler";
pub const VIDEO_DECODER: &str = "video_decoder";
pub const VIDEO_ENCODER: &str = "video_encoder";
pub const AUDIO_DECODER: &str = "audio_decoder";
pub const VOCODER: &str = "vocoder";
pub const DISTILLED_LORA: &str = "distilled_lora";

/// Latent layouts read from the checkpoint's configs (header only).
#[derive(Debug, Clone)]
pub struct Layouts {
    pub vae: VaeConfig,
    pub audio: AudioLayout,
}

/// The loaded components of one [`ModelSet`].
pub struct Components {
    pub models: ModelSet,
    pub compute: Compute,
    /// Prompt token length (1024 for LTX-2).
    pub max_length: usize,
    /// Low-memory plan: Gemma is dropped after each encode, the transformer and upscaler before the
    /// decoders run (the next job loads them again).
    pub low_memory: bool,
    /// Gemma's weights: the compute dtype, or int8/int4 (the memory profile's choice).
    pub gemma: crate::text::GemmaPrecision,
    /// Decode budget in bytes for the tiling choice; `None`: half the memory the system has free.
    pub decode_budget: Option<usize>,
    pub text: Option<PromptEncoder>,
    pub transformer: Option<LtxModel>,
    pub upsampler: Option<(LatentUpsampler, PerChannelStatistics)>,
    pub video_decoder: Option<VideoDecoder>,
    /// Image-to-video only: encodes the first-frame image.
    pub video_encoder: Option<VideoEncoder>,
    pub audio_decoder: Option<AudioDecoder>,
    pub vocoder: Option<Vocoder>,
    /// The distilled LoRA's tensors (two-stage stage 2), attached to the transformer while it runs.
    pub lora: Option<std::collections::HashMap<String, mlx_rs::Array>>,
    layouts: Option<Layouts>,
    bytes: BTreeMap<&'static str, u64>,
}

fn param_bytes<M: ModuleParameters + ?Sized>(m: &M) -> u64 {
    m.parameters().flatten().values().map(|a| a.nbytes() as u64).sum()
}

/// The transformer of a single-file checkpoint (its text connectors are left to the prompt encoder).
pub fn load_transformer(path: &std::path::Path, dtype: mlx_rs::Dtype) -> crate::transformer::Result<LtxModel> {
    LtxModel::from_checkpoint(path, dtype)
}

fn open(path: &std::path::Path) -> Result<Checkpoint, EngineError> {
    Checkpoint::open(path).fail("load_failed")
}

impl Components {
    pub fn new(models: ModelSet, compute: Compute, max_length: usize) -> Self {
        Self {
            models,
            compute,
            max_length,
            low_memory: false,
            gemma: Default::default(),
            decode_budget: None,
            text: None,
            transformer: None,
            upsampler: None,
            video_decoder: None,
            video_encoder: None,
            audio_decoder: None,
            vocoder: None,
            lora: None,
            layouts: None,
            bytes: BTreeMap::new(),
        }
    }

    /// Bytes charged to each resident component.
    pub fn resident(&self) -> Vec<(&'static str, u64)> {
        self.bytes.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Latent layouts from the VAE and audio VAE configs.
    pub fn layouts(&mut self) -> Result<Layouts, EngineError> {
        if self.layouts.is_none() {
            let vae = open(&self.models.video_vae)?.config().fail("load_failed")?.vae().fail("load_failed")?;
            let audio = open(&self.models.audio_vae)?.config().fail("load_failed")?.audio_vae().fail("load_failed")?;
            self.layouts = Some(Layouts { vae, audio: AudioLayout::from_config(&audio) });
        }
        self.layouts.clone().ok_or_else(|| EngineError::Failed { code: "load_failed".into(), message: "".into() })
    }

    /// Runs `load` for component `name` unless resident, charging it the memory it took.
    fn charge<T>(
        bytes: &mut BTreeMap<&'static str, u64>,
        name: &'static str,
        progress: &mut dyn ProgressSink,
        load: impl FnOnce() -> Result<(T, u64), EngineError>,
    ) -> Result<T, EngineError> {
        progress.stage(Stage::LoadingComponent(name.to_string()));
        let before = MemoryReport::now();
        let (value, params) = load()?;
        let after = MemoryReport::now();
        let measured = after.mlx_active.saturating_sub(before.mlx_active) as u64;
        bytes.insert(name, measured.max(params));
        tracing::info!(component = name, bytes = measured.max(params), "loaded ({after})");
        Ok(value)
    }

    pub fn ensure_text(&mut self, progress: &mut dyn ProgressSink) -> Result<&mut PromptEncoder, EngineError> {
        if self.text.is_none() {
            let (models, compute, max_length, low_memory, gemma) =
                (&self.models, self.compute, self.max_length, self.low_memory, self.gemma);
            let enc = Self::charge(&mut self.bytes, TEXT_ENCODER, progress, || {
                let ltx = open(&models.transformer)?;
                let options = EncoderOptions {
                    max_length,
                    keep_loaded: !low_memory,
                    precision: gemma,
                    ..EncoderOptions::on(compute)
                };
                Ok((PromptEncoder::load(&models.text_encoder, &ltx, options).fail("load_failed")?, 0))
            })?;
            self.text = Some(enc);
        }
        self.text.as_mut().ok_or_else(|| unreachable!())
    }

    /// After an encode: Gemma loads on the first prompt, so charge what it took then (at least its
    /// weights' size on disk: MLX's counters are process-wide, other threads' frees can hide it).
    pub fn charge_text(&mut self, measured: u64) {
        if self.text.as_ref().is_some_and(|t| !t.gemma_loaded()) {
            return;
        }
        let on_disk: u64 = crate::text::gemma::shard_files(&self.models.text_encoder)
            .map(|files| files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        *self.bytes.entry(TEXT_ENCODER).or_default() += measured.max(on_disk);
    }

    /// The plan of the next job: a prompt encoder loaded for the other plan, or with another Gemma
    /// precision, is dropped so that it loads again as asked.
    pub fn set_memory(&mut self, low_memory: bool, gemma: crate::text::GemmaPrecision) {
        let stale =
            self.text.as_ref().is_some_and(|t| t.options().keep_loaded == low_memory || t.options().precision != gemma);
        if stale {
            self.text = None;
            self.bytes.remove(TEXT_ENCODER);
            let _ = mlx_rs::memory::clear_cache();
        }
        self.low_memory = low_memory;
        self.gemma = gemma;
    }

    /// Low-memory plan: frees the transformer and the upscaler (before decoding).
    pub fn drop_denoisers(&mut self) {
        self.transformer = None;
        self.upsampler = None;
        self.lora = None;
        self.bytes.remove(TRANSFORMER);
        self.bytes.remove(UPSCALER);
        self.bytes.remove(DISTILLED_LORA);
        let _ = mlx_rs::memory::clear_cache();
    }

    pub fn ensure_transformer(&mut self, progress: &mut dyn ProgressSink) -> Result<&LtxModel, EngineError> {
        if self.transformer.is_none() {
            let (path, dtype) = (self.models.transformer.clone(), self.compute.dtype);
            let model = Self::charge(&mut self.bytes, TRANSFORMER, progress, || {
                let model = load_transformer(&path, dtype).fail("load_failed")?;
                crate::memory::materialize(&model).fail("load_failed")?;
                let b = param_bytes(&model);
                Ok((model, b))
            })?;
            self.transformer = Some(model);
        }
        self.transformer.as_ref().ok_or_else(|| unreachable!())
    }

    pub fn ensure_lora(
        &mut self,
        progress: &mut dyn ProgressSink,
    ) -> Result<&std::collections::HashMap<String, mlx_rs::Array>, EngineError> {
        if self.lora.is_none() {
            let path = self.models.distilled_lora.clone();
            let lora = Self::charge(&mut self.bytes, DISTILLED_LORA, progress, || {
                let lora = super::sample::load_lora(&path)?;
                mlx_rs::transforms::eval(lora.values()).fail("load_failed")?;
                let b = lora.values().map(|a| a.nbytes() as u64).sum();
                Ok((lora, b))
            })?;
            self.lora = Some(lora);
        }
        self.lora.as_ref().ok_or_else(|| unreachable!())
    }

    pub fn ensure_upsampler(
        &mut self,
        progress: &mut dyn ProgressSink,
    ) -> Result<&(LatentUpsampler, PerChannelStatistics), EngineError> {
        if self.upsampler.is_none() {
            let (models, dtype) = (&self.models, self.compute.dtype);
            let up = Self::charge(&mut self.bytes, UPSCALER, progress, || {
                let up = LatentUpsampler::from_file(&models.upscaler, dtype).fail("load_failed")?;
                let stats = PerChannelStatistics::load(&open(&models.video_vae)?, prefix::VIDEO_VAE, dtype)
                    .fail("load_failed")?;
                crate::memory::materialize(&up).fail("load_failed")?;
                mlx_rs::transforms::eval([&stats.mean, &stats.std]).fail("load_failed")?;
                let b = param_bytes(&up);
                Ok(((up, stats), b))
            })?;
            self.upsampler = Some(up);
        }
        self.upsampler.as_ref().ok_or_else(|| unreachable!())
    }

    pub fn ensure_video_decoder(&mut self, progress: &mut dyn ProgressSink) -> Result<&VideoDecoder, EngineError> {
        if self.video_decoder.is_none() {
            let (path, dtype) = (self.models.video_vae.clone(), self.compute.dtype);
            let d = Self::charge(&mut self.bytes, VIDEO_DECODER, progress, || {
                let d = VideoDecoder::from_checkpoint(&open(&path)?, dtype).fail("load_failed")?;
                crate::memory::materialize(&d).fail("load_failed")?;
                let b = param_bytes(&d);
                Ok((d, b))
            })?;
            self.video_decoder = Some(d);
        }
        self.video_decoder.as_ref().ok_or_else(|| unreachable!())
    }

    pub fn ensure_video_encoder(&mut self, progress: &mut dyn ProgressSink) -> Result<&VideoEncoder, EngineError> {
        if self.video_encoder.is_none() {
            let (path, dtype) = (self.models.video_vae.clone(), self.compute.dtype);
            let e = Self::charge(&mut self.bytes, VIDEO_ENCODER, progress, || {
                let e = VideoEncoder::from_checkpoint(&open(&path)?, dtype).fail("load_failed")?;
                crate::memory::materialize(&e).fail("load_failed")?;
                let b = param_bytes(&e);
                Ok((e, b))
            })?;
            self.video_encoder = Some(e);
        }
        self.video_encoder.as_ref().ok_or_else(|| unreachable!())
    }

    pub fn ensure_audio(&mut self, progress: &mut dyn ProgressSink) -> Result<(&AudioDecoder, &Vocoder), EngineError> {
        let dtype = self.compute.dtype;
        if self.audio_decoder.is_none() {
            let path = self.models.audio_vae.clone();
            let d = Self::charge(&mut self.bytes, AUDIO_DECODER, progress, || {
                let d = AudioDecoder::from_checkpoint(&open(&path)?, dtype).fail("load_failed")?;
                crate::memory::materialize(&d).fail("load_failed")?;
                let b = param_bytes(&d);
                Ok((d, b))
            })?;
            self.audio_decoder = Some(d);
        }
        if self.vocoder.is_none() {
            let path = self.models.vocoder.clone();
            let v = Self::charge(&mut self.bytes, VOCODER, progress, || {
                let v = Vocoder::from_checkpoint(&open(&path)?, dtype).fail("load_failed")?;
                crate::memory::materialize(&v).fail("load_failed")?;
                let b = param_bytes(&v);
                Ok((v, b))
            })?;
            self.vocoder = Some(v);
        }
        match (&self.audio_decoder, &self.vocoder) {
            (Some(d), Some(v)) => Ok((d, v)),
            _ => unreachable!("loaded above"),
        }
    }
}
