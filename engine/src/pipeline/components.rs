//! Per-component residency of one variant: each component loads on first need (reporting
//! `LoadingComponent`), is materialised, and is charged the memory it took (MLX's active bytes after
//! minus before, or its parameters' bytes where those point into the mapped checkpoint). Each one can be
//! dropped on its own (its keep-alive passed, or the low-memory plan), and a job reports which it used.
use std::collections::{BTreeMap, BTreeSet};

use mlx_rs::module::ModuleParameters;

use super::{latents::AudioLayout, models::ModelSet, Fail};
use crate::{
    audio_vae::{AudioDecoder, Vocoder},
    checkpoint::{prefix, Checkpoint},
    config::VaeConfig,
    device::Compute,
    job::{EngineError, ProgressSink},
    memory::MemoryReport,
    preview::TaeDecoder,
    text::{EncoderOptions, PromptEncoder},
    transformer::LtxModel,
    upsampler::LatentUpsampler,
    video_vae::{encoder::VideoEncoder, ops::PerChannelStatistics, VideoDecoder},
};
use ltx_protocol::{FailureCode, Part, Stage};

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
    /// Which upscale the resident upsampler is.
    upsampler_upscale: Option<ltx_protocol::Upscale>,
    pub video_decoder: Option<VideoDecoder>,
    /// Image-to-video only: encodes the first-frame image.
    pub video_encoder: Option<VideoEncoder>,
    pub audio_decoder: Option<AudioDecoder>,
    pub vocoder: Option<Vocoder>,
    /// The distilled LoRA's tensors (two-stage stage 2), attached to the transformer while it runs.
    pub lora: Option<std::collections::HashMap<String, mlx_rs::Array>>,
    pub preview_decoder: Option<TaeDecoder>,
    layouts: Option<Layouts>,
    ledger: Ledger,
}

fn param_bytes<M: ModuleParameters + ?Sized>(m: &M) -> u64 {
    m.parameters().flatten().values().map(|a| a.nbytes() as u64).sum()
}

/// The transformer of a single-file checkpoint (its text connectors are left to the prompt encoder); a file
/// of a generation this engine does not run, or whose version and config disagree, is refused first.
pub fn load_transformer(path: &std::path::Path, dtype: mlx_rs::Dtype) -> Result<LtxModel, EngineError> {
    let ck = open(path)?;
    crate::generation::detect(&ck).fail(FailureCode::LoadFailed)?;
    let config = crate::transformer::TransformerConfig::from_ltx(&ck.config().fail(FailureCode::LoadFailed)?)
        .fail(FailureCode::LoadFailed)?;
    let mut model = LtxModel::new(config, dtype).fail(FailureCode::LoadFailed)?;
    model.load(&ck).fail(FailureCode::LoadFailed)?;
    Ok(model)
}

fn open(path: &std::path::Path) -> Result<Checkpoint, EngineError> {
    Checkpoint::open(path).fail(FailureCode::LoadFailed)
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
            upsampler_upscale: None,
            video_decoder: None,
            video_encoder: None,
            audio_decoder: None,
            vocoder: None,
            lora: None,
            preview_decoder: None,
            layouts: None,
            ledger: Ledger::default(),
        }
    }

    /// Bytes charged to each resident component.
    pub fn resident(&self) -> Vec<(Part, u64)> {
        self.ledger.bytes.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Latent layouts from the VAE and audio VAE configs.
    pub fn layouts(&mut self) -> Result<Layouts, EngineError> {
        if self.layouts.is_none() {
            let vae = open(&self.models.checkpoint)?
                .config()
                .fail(FailureCode::LoadFailed)?
                .vae()
                .fail(FailureCode::LoadFailed)?;
            let audio = open(&self.models.checkpoint)?
                .config()
                .fail(FailureCode::LoadFailed)?
                .audio_vae()
                .fail(FailureCode::LoadFailed)?;
            self.layouts = Some(Layouts { vae, audio: AudioLayout::from_config(&audio) });
        }
        self.layouts
            .clone()
            .ok_or_else(|| EngineError::failed(FailureCode::LoadFailed, "the checkpoint layouts are not read"))
    }

    pub fn ensure_text(&mut self, progress: &mut dyn ProgressSink) -> Result<&mut PromptEncoder, EngineError> {
        let (models, compute, max_length, low_memory, gemma) =
            (&self.models, self.compute, self.max_length, self.low_memory, self.gemma);
        self.ledger.ensure(&mut self.text, Part::TextEncoder, progress, || {
            let ltx = open(&models.checkpoint)?;
            let options = EncoderOptions {
                max_length,
                keep_loaded: !low_memory,
                precision: gemma,
                ..EncoderOptions::on(compute)
            };
            // Charged after its first encode (`charge_text`): Gemma loads on the first prompt.
            Ok((PromptEncoder::load(&models.text_encoder, &ltx, options).fail(FailureCode::LoadFailed)?, 0))
        })
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
        *self.ledger.bytes.entry(Part::TextEncoder).or_default() += measured.max(on_disk);
    }

    /// The plan of the next job: a prompt encoder loaded for the other plan, or with another Gemma
    /// precision, is dropped so that it loads again as asked.
    pub fn set_memory(&mut self, low_memory: bool, gemma: crate::text::GemmaPrecision) {
        let stale =
            self.text.as_ref().is_some_and(|t| t.options().keep_loaded == low_memory || t.options().precision != gemma);
        if stale {
            self.drop_component(Part::TextEncoder);
        }
        self.low_memory = low_memory;
        self.gemma = gemma;
    }

    /// Low-memory plan: frees the transformer and the upscaler (before decoding).
    pub fn drop_denoisers(&mut self) {
        for name in [Part::Transformer, Part::Upscaler, Part::DistilledLora] {
            self.drop_component(name);
        }
    }

    pub fn ensure_transformer(&mut self, progress: &mut dyn ProgressSink) -> Result<&LtxModel, EngineError> {
        let (path, dtype) = (&self.models.checkpoint, self.compute.dtype);
        let model = self.ledger.ensure(&mut self.transformer, Part::Transformer, progress, || {
            materialized(load_transformer(path, dtype)?)
        })?;
        Ok(model)
    }

    pub fn ensure_lora(
        &mut self,
        progress: &mut dyn ProgressSink,
    ) -> Result<&std::collections::HashMap<String, mlx_rs::Array>, EngineError> {
        let path = &self.models.distilled_lora;
        let lora = self.ledger.ensure(&mut self.lora, Part::DistilledLora, progress, || {
            let lora = mlx_rs::Array::load_safetensors(path).fail(FailureCode::LoadFailed)?;
            mlx_rs::transforms::eval(lora.values()).fail(FailureCode::LoadFailed)?;
            let b = lora.values().map(|a| a.nbytes() as u64).sum();
            Ok((lora, b))
        })?;
        Ok(lora)
    }

    /// The spatial upsampler for `upscale` (a resident one for another upscale is replaced).
    pub fn ensure_upsampler(
        &mut self,
        upscale: ltx_protocol::Upscale,
        progress: &mut dyn ProgressSink,
    ) -> Result<&(LatentUpsampler, PerChannelStatistics), EngineError> {
        if self.upsampler.is_some() && self.upsampler_upscale != Some(upscale) {
            self.drop_component(Part::Upscaler);
        }
        self.upsampler_upscale = Some(upscale);
        let (models, dtype) = (&self.models, self.compute.dtype);
        let up = self.ledger.ensure(&mut self.upsampler, Part::Upscaler, progress, || {
            let file = models.upscaler_for(upscale);
            let (up, b) = materialized(LatentUpsampler::from_file(file, dtype).fail(FailureCode::LoadFailed)?)?;
            let stats = PerChannelStatistics::load(&open(&models.checkpoint)?, prefix::VIDEO_VAE, dtype)
                .fail(FailureCode::LoadFailed)?;
            mlx_rs::transforms::eval([&stats.mean, &stats.std]).fail(FailureCode::LoadFailed)?;
            Ok(((up, stats), b))
        })?;
        Ok(up)
    }

    pub fn ensure_video_decoder(&mut self, progress: &mut dyn ProgressSink) -> Result<&VideoDecoder, EngineError> {
        let (path, dtype) = (&self.models.checkpoint, self.compute.dtype);
        let d = self.ledger.ensure(&mut self.video_decoder, Part::VideoDecoder, progress, || {
            materialized(VideoDecoder::from_checkpoint(&open(path)?, dtype).fail(FailureCode::LoadFailed)?)
        })?;
        Ok(d)
    }

    pub fn ensure_video_encoder(&mut self, progress: &mut dyn ProgressSink) -> Result<&VideoEncoder, EngineError> {
        let (path, dtype) = (&self.models.checkpoint, self.compute.dtype);
        let e = self.ledger.ensure(&mut self.video_encoder, Part::VideoEncoder, progress, || {
            materialized(VideoEncoder::from_checkpoint(&open(path)?, dtype).fail(FailureCode::LoadFailed)?)
        })?;
        Ok(e)
    }

    pub fn ensure_audio(&mut self, progress: &mut dyn ProgressSink) -> Result<(&AudioDecoder, &Vocoder), EngineError> {
        let (models, dtype) = (&self.models, self.compute.dtype);
        let d = self.ledger.ensure(&mut self.audio_decoder, Part::AudioDecoder, progress, || {
            materialized(
                AudioDecoder::from_checkpoint(&open(&models.checkpoint)?, dtype).fail(FailureCode::LoadFailed)?,
            )
        })?;
        let v = self.ledger.ensure(&mut self.vocoder, Part::Vocoder, progress, || {
            materialized(Vocoder::from_checkpoint(&open(&models.checkpoint)?, dtype).fail(FailureCode::LoadFailed)?)
        })?;
        Ok((d, v))
    }

    /// The generation's preview decoder, `None` where its file is not installed or does not decode this
    /// checkpoint's latent (its channels are not the video VAE's): previews then come from the VAE.
    pub fn ensure_preview_decoder(
        &mut self,
        progress: &mut dyn ProgressSink,
    ) -> Result<Option<&TaeDecoder>, EngineError> {
        let Some(rules) = self.models.variant.rules().generation.preview() else { return Ok(None) };
        if self.preview_decoder.is_none() && !self.models.preview_decoder.is_file() {
            return Ok(None);
        }
        let channels = self.layouts()?.vae.latent_channels;
        let path = &self.models.preview_decoder;
        if rules.latent_channels != channels {
            tracing::warn!(file = %path.display(), channels, "the preview decoder takes {} latent channels: not used", rules.latent_channels);
            return Ok(None);
        }
        let dtype = self.compute.dtype;
        let d = self.ledger.ensure(&mut self.preview_decoder, Part::PreviewDecoder, progress, || {
            materialized(TaeDecoder::from_file(path, rules, dtype).fail(FailureCode::LoadFailed)?)
        })?;
        Ok(Some(d))
    }

    /// Frees one component (its keep-alive passed); `false` when it was not resident.
    pub fn drop_component(&mut self, name: Part) -> bool {
        let dropped = match name {
            Part::TextEncoder => self.text.take().is_some(),
            Part::Transformer => self.transformer.take().is_some(),
            Part::Upscaler => self.upsampler.take().is_some(),
            Part::VideoDecoder => self.video_decoder.take().is_some(),
            Part::VideoEncoder => self.video_encoder.take().is_some(),
            Part::AudioDecoder => self.audio_decoder.take().is_some(),
            Part::Vocoder => self.vocoder.take().is_some(),
            Part::DistilledLora => self.lora.take().is_some(),
            Part::PreviewDecoder => self.preview_decoder.take().is_some(),
        };
        self.ledger.bytes.remove(&name);
        let _ = mlx_rs::memory::clear_cache();
        dropped
    }

    /// The components used since the last call (loaded or already resident), in name order.
    pub fn take_used(&mut self) -> Vec<Part> {
        std::mem::take(&mut self.ledger.used).into_iter().collect()
    }
}

/// A materialised module and its parameters' bytes.
fn materialized<M: ModuleParameters>(m: M) -> Result<(M, u64), EngineError> {
    crate::memory::materialize(&m).fail(FailureCode::LoadFailed)?;
    let b = param_bytes(&m);
    Ok((m, b))
}

/// What each resident component was charged, and which ones the running job used.
#[derive(Default)]
struct Ledger {
    bytes: BTreeMap<Part, u64>,
    used: BTreeSet<Part>,
}

impl Ledger {
    /// Runs `load` into `slot` unless the component is resident (reporting `LoadingComponent` and
    /// charging it the memory it took: MLX's active bytes after minus before, or the bytes `load` reports
    /// where those are more), and marks it used.
    fn ensure<'a, T>(
        &mut self,
        slot: &'a mut Option<T>,
        name: Part,
        progress: &mut dyn ProgressSink,
        load: impl FnOnce() -> Result<(T, u64), EngineError>,
    ) -> Result<&'a mut T, EngineError> {
        self.used.insert(name);
        let value = match slot.take() {
            Some(v) => v,
            None => {
                progress.stage(Stage::LoadingComponent(name.name().to_string()));
                let before = MemoryReport::now();
                let (value, reported) = load()?;
                let after = MemoryReport::now();
                let measured = after.mlx_active.saturating_sub(before.mlx_active) as u64;
                self.bytes.insert(name, measured.max(reported));
                tracing::info!(component = name.name(), bytes = measured.max(reported), "loaded ({after})");
                value
            }
        };
        Ok(slot.insert(value))
    }
}
