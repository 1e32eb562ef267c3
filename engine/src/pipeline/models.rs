//! Where a variant's weights live, resolved through the catalogue ([`ltx_protocol::catalogue`], the one table
//! of file names): the single checkpoint (transformer, text connectors, video VAE, audio VAE and vocoder), the
//! Gemma directory with `tokenizer.json`, the spatial upscaler, the distilled LoRA and the generation's preview
//! decoder.
use std::path::{Path, PathBuf};

use ltx_protocol::{
    catalogue::{self, CheckError, Component},
    FailureCode, MissingModels, ModelVariant, Pipeline, Upscale,
};

use crate::job::EngineError;

/// Paths of every file a variant's pipelines read, in a models directory's standard layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSet {
    pub variant: ModelVariant,
    /// The models directory everything below is in.
    pub dir: PathBuf,
    /// The checkpoint: transformer, text embedding projection, both embeddings connectors, video VAE, audio
    /// VAE and vocoder.
    pub checkpoint: PathBuf,
    /// `config.json`, `tokenizer.json` and the safetensors shards of Gemma 3.
    pub text_encoder: PathBuf,
    /// The ×2 spatial upscaler (the two-stage pipelines' default).
    pub upscaler: PathBuf,
    /// LTX-2.3's ×1.5 spatial upscaler (`--upscale 1.5`); `None` where the generation has none.
    pub upscaler_x1_5: Option<PathBuf>,
    /// The distilled LoRA (the two-stage pipeline's stage 2 on dev weights).
    pub distilled_lora: PathBuf,
    /// The generation's preview decoder (optional: previews use the video VAE without it).
    pub preview_decoder: PathBuf,
}

impl ModelSet {
    pub fn in_dir(dir: &Path, variant: ModelVariant) -> Self {
        let file = |c| dir.join(catalogue::file_of(c).map_or("", |f| f.local));
        let generation = variant.rules().generation;
        Self {
            variant,
            dir: dir.to_path_buf(),
            checkpoint: file(Component::Checkpoint(variant)),
            text_encoder: dir.join(catalogue::GEMMA_DIR),
            upscaler: file(Component::SpatialUpscaler(generation, Upscale::X2)),
            upscaler_x1_5: generation
                .rules()
                .upscales
                .contains(&Upscale::X1_5)
                .then(|| file(Component::SpatialUpscaler(generation, Upscale::X1_5))),
            distilled_lora: file(Component::DistilledLora(generation)),
            preview_decoder: file(Component::PreviewDecoder(generation)),
        }
    }

    /// The spatial upscaler for `upscale` (validation refuses an upscale the generation has not).
    pub fn upscaler_for(&self, upscale: Upscale) -> &Path {
        match (upscale, &self.upscaler_x1_5) {
            (Upscale::X1_5, Some(p)) => p,
            _ => &self.upscaler,
        }
    }

    /// The Gemma tokenizer file.
    pub fn tokenizer(&self) -> PathBuf {
        self.text_encoder.join("tokenizer.json")
    }

    /// The refusal naming every file `pipeline` needs that is missing.
    pub fn check(&self, pipeline: Pipeline) -> Result<(), EngineError> {
        let needs = catalogue::components(self.variant, pipeline);
        MissingModels::check(&self.dir, self.variant, pipeline, &needs).map_err(refused)
    }

    /// The same for what `load` warms ([`catalogue::warm_components`]).
    pub fn check_warm(&self) -> Result<(), EngineError> {
        let (v, needs) = (self.variant, catalogue::warm_components(self.variant));
        MissingModels::check(&self.dir, v, v.default_pipeline(), &needs).map_err(refused)
    }
}

/// Missing files are `ModelNotInstalled`; files that cannot be looked at a load failure with the cause.
fn refused(e: CheckError) -> EngineError {
    match e {
        CheckError::Missing(m) => EngineError::ModelNotInstalled(m),
        e @ CheckError::Unreadable { .. } => EngineError::caused(FailureCode::LoadFailed, e),
    }
}
