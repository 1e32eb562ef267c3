//! Prompt encoding (ltx-core 1.0.0 `text_encoders/gemma/*`): the Gemma tokenizer, the Gemma 3 text
//! model (all hidden states), the feature extractor, the video/audio embeddings connectors, the whole
//! prompt → (video, audio) context API with negative prompts and memory options, and the prompt cache.
//! One component per file.

pub mod cache;
pub mod connector;
pub mod encoder;
pub mod feature_extractor;
pub mod gemma;
pub mod quantized;
pub mod tokenizer;

pub use cache::PromptCache;
pub use connector::{Connector, ConnectorConfig};
pub use encoder::{Contexts, EncodedPrompt, EncoderOptions, Negative, PromptEncoder, DEFAULT_NEGATIVE_PROMPT};
pub use feature_extractor::FeatureExtractor;
pub use gemma::{Gemma, GemmaConfig};
pub use quantized::GemmaPrecision;
pub use tokenizer::{py_strip, PromptTokenizer, Tokens};

use std::path::{Path, PathBuf};

/// Errors of prompt encoding. File problems name the file.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("MLX: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Transformer(Box<crate::transformer::TransformerError>),
    #[error(transparent)]
    Load(Box<crate::checkpoint::LoadError>),
    #[error("text encoder config: {0}")]
    Config(String),
    #[error("invalid input: {0}")]
    Input(String),
}

impl TextError {
    pub(crate) fn file(path: &Path, message: impl std::fmt::Display) -> Self {
        Self::File { path: path.to_path_buf(), message: message.to_string() }
    }
}

impl From<crate::checkpoint::LoadError> for TextError {
    fn from(e: crate::checkpoint::LoadError) -> Self {
        Self::Load(Box::new(e))
    }
}

impl From<crate::transformer::TransformerError> for TextError {
    fn from(e: crate::transformer::TransformerError) -> Self {
        Self::Transformer(Box::new(e))
    }
}

pub type Result<T> = std::result::Result<T, TextError>;

/// Reads a JSON file; errors name the file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| TextError::file(path, e))?;
    serde_json::from_str(&text).map_err(|e| TextError::file(path, e))
}
