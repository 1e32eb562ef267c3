//! Where a variant's weights live, resolved through the catalogue ([`ltx_protocol::catalogue`], the one table
//! of file names): the single checkpoint (transformer, text connectors, video VAE, audio VAE and vocoder), the
//! Gemma directory with `tokenizer.json`, the spatial upscaler, the distilled LoRA and the generation's preview
//! decoder.
use std::path::{Path, PathBuf};

use ltx_protocol::{
    catalogue::{self, CheckError, Component},
    FailureCode, MissingModels, ModelVariant, Pipeline,
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
    pub upscaler: PathBuf,
    /// The distilled LoRA (the two-stage pipeline's stage 2 on dev weights).
    pub distilled_lora: PathBuf,
    /// The generation's preview decoder (optional: previews use the video VAE without it).
    pub preview_decoder: PathBuf,
}

impl ModelSet {
    pub fn in_dir(dir: &Path, variant: ModelVariant) -> Self {
        let file = |c| dir.join(catalogue::file_of(c).map_or("", |f| f.local));
        Self {
            variant,
            dir: dir.to_path_buf(),
            checkpoint: file(Component::Checkpoint(variant)),
            text_encoder: dir.join(catalogue::GEMMA_DIR),
            upscaler: file(Component::SpatialUpscaler),
            distilled_lora: file(Component::DistilledLora),
            preview_decoder: file(Component::PreviewDecoder(variant.rules().generation)),
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
