//! Where a variant's weights live: the single LTX-2 checkpoint (transformer, text connectors, video
//! VAE, audio VAE and vocoder), the Gemma directory with `tokenizer.json`, and the spatial upscaler.
use std::path::{Path, PathBuf};

use ltx_protocol::ModelVariant;

use crate::job::EngineError;

/// The Gemma directory's name in a models directory.
pub const GEMMA_DIR: &str = "gemma-3-12b-it-qat-q4_0-unquantized";
/// The spatial ×2 upscaler's file name.
pub const UPSCALER_FILE: &str = "ltx-2-spatial-upscaler-x2-1.0.safetensors";
/// The distilled LoRA the two-stage pipeline's stage 2 applies to the dev transformer (strength 1).
pub const DISTILLED_LORA_FILE: &str = "ltx-2-19b-distilled-lora-384.safetensors";

/// Paths of every file a variant's pipeline reads. In production `video_vae`, `audio_vae` and
/// `vocoder` are the transformer checkpoint itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSet {
    pub variant: ModelVariant,
    /// Transformer + text embedding projection + both embeddings connectors.
    pub transformer: PathBuf,
    /// `config.json`, `tokenizer.json` and the safetensors shards of Gemma 3.
    pub text_encoder: PathBuf,
    pub video_vae: PathBuf,
    pub audio_vae: PathBuf,
    pub vocoder: PathBuf,
    pub upscaler: PathBuf,
    /// The distilled LoRA (two-stage pipeline only).
    pub distilled_lora: PathBuf,
}

impl ModelSet {
    /// The standard layout of a models directory: `<variant checkpoint>`, [`GEMMA_DIR`]/, [`UPSCALER_FILE`].
    pub fn in_dir(dir: &Path, variant: ModelVariant) -> Self {
        let checkpoint = dir.join(variant.checkpoint());
        Self {
            variant,
            transformer: checkpoint.clone(),
            text_encoder: dir.join(GEMMA_DIR),
            video_vae: checkpoint.clone(),
            audio_vae: checkpoint.clone(),
            vocoder: checkpoint,
            upscaler: dir.join(UPSCALER_FILE),
            distilled_lora: dir.join(DISTILLED_LORA_FILE),
        }
    }

    /// The Gemma tokenizer file.
    pub fn tokenizer(&self) -> PathBuf {
        self.text_encoder.join("tokenizer.json")
    }

    /// Every file that must exist, in the order they are checked.
    pub fn required_files(&self, audio: bool) -> Vec<PathBuf> {
        let mut files = vec![
            self.transformer.clone(),
            self.text_encoder.join("config.json"),
            self.tokenizer(),
            self.video_vae.clone(),
            self.upscaler.clone(),
        ];
        if audio {
            files.push(self.audio_vae.clone());
            files.push(self.vocoder.clone());
        }
        files.dedup();
        files
    }

    /// `ModelNotInstalled` naming the first missing file (Gemma's shards are checked when it loads);
    /// `lora`: the pipeline also needs the distilled LoRA.
    pub fn check(&self, audio: bool, lora: bool) -> Result<(), EngineError> {
        let lora = lora.then(|| self.distilled_lora.clone());
        match self.required_files(audio).into_iter().chain(lora).find(|f| !f.is_file()) {
            Some(expected) => Err(EngineError::ModelNotInstalled { variant: self.variant, expected }),
            None => Ok(()),
        }
    }
}
