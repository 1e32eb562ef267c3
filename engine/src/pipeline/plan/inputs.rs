//! What the estimate reads of a job's files: tensor headers and the typed configs the loaders build the
//! models from, parsed from the same metadata by the same parsers (a header read: no tensor is touched),
//! so a default lives in one place: [`TransformerConfig::from_ltx`], [`crate::config::LtxConfig`]'s
//! `vae` / `audio_vae` / `vocoder`, [`UpsamplerConfig::from_metadata`] and [`GemmaConfig::from_file`]. A
//! config the loader would refuse fails the estimate the same way (`load_failed`), before anything loads.
use std::{fmt::Display, path::Path};

use ltx_protocol::FailureCode;

use super::JobShape;
use crate::{
    checkpoint::Header,
    config::{AudioVaeConfig, UpsamplerConfig, VaeConfig, VocoderSection},
    job::EngineError,
    pipeline::{models::ModelSet, Fail},
    text::gemma::{self, GemmaConfig},
    transformer::TransformerConfig,
};

/// The typed configs the estimate reads (the loaders' parsers on the same metadata).
#[derive(Debug, Clone)]
pub struct Configs {
    pub gemma: GemmaConfig,
    pub transformer: TransformerConfig,
    pub vae: VaeConfig,
    pub audio_vae: AudioVaeConfig,
    /// Audio jobs only.
    pub vocoder: Option<VocoderSection>,
    /// Two-stage jobs only.
    pub upscaler: Option<UpsamplerConfig>,
}

/// What the estimate reads of a job's files: headers and configs.
#[derive(Debug, Clone)]
pub struct Files {
    pub checkpoint: Header,
    /// Two-stage jobs only.
    pub upscaler: Option<Header>,
    /// Jobs with the distilled LoRA, when its file is there.
    pub lora: Option<Header>,
    pub gemma: Vec<Header>,
    pub configs: Configs,
}

/// Reads the headers and configs of the files `job` uses (no tensor is read).
pub fn read(models: &ModelSet, job: &JobShape) -> Result<Files, EngineError> {
    fn at<E: Display>(path: &Path) -> impl FnOnce(E) -> EngineError + '_ {
        move |e| EngineError::failed(FailureCode::LoadFailed, format!("{}: {e}", path.display()))
    }
    let header = |path: &Path| Header::read(path).fail(FailureCode::LoadFailed);
    let checkpoint = header(&models.checkpoint)?;
    let ltx = checkpoint.config().fail(FailureCode::LoadFailed)?;
    let path = models.checkpoint.as_path();
    let upscaler = if job.two_stage { Some(header(models.upscaler_for(job.upscale))?) } else { None };
    let upscaler_config = match &upscaler {
        Some(h) => Some(UpsamplerConfig::from_metadata(h.metadata()).map_err(at(h.path()))?),
        None => None,
    };
    let lora = if job.lora && models.distilled_lora.is_file() { Some(header(&models.distilled_lora)?) } else { None };
    let shards = gemma::shard_files(&models.text_encoder).fail(FailureCode::LoadFailed)?;
    let gemma = shards.iter().map(|f| header(f)).collect::<Result<Vec<_>, _>>()?;
    let configs = Configs {
        gemma: GemmaConfig::from_file(&models.text_encoder.join("config.json")).fail(FailureCode::LoadFailed)?,
        transformer: TransformerConfig::from_ltx(&ltx).map_err(at(path))?,
        vae: ltx.vae().map_err(at(path))?,
        audio_vae: ltx.audio_vae().map_err(at(path))?,
        vocoder: if job.audio { Some(ltx.vocoder().map_err(at(path))?) } else { None },
        upscaler: upscaler_config,
    };
    Ok(Files { checkpoint, upscaler, lora, gemma, configs })
}
