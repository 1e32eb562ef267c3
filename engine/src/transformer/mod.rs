//! The LTX-2 19B audio-video diffusion transformer (ltx-core 1.0.0 `model/transformer/*`), one
//! component per file. Module field names equal the checkpoint key segments, so weights load from
//! the real single-file layout (`model.diffusion_model.` prefix) without a mapping table.

pub mod adaln;
pub mod attention;
pub mod block;
pub mod caption;
pub mod config;
pub mod feed_forward;
pub mod fused;
pub mod linear;
pub mod lora;
pub mod model;
pub mod perturbation;
pub mod positions;
pub mod quantized_file;
pub mod rope;

pub use config::TransformerConfig;
pub use model::{LtxModel, Modality};
pub use perturbation::{BlockSet, Perturbations};

/// Errors of the transformer port.
#[derive(Debug, thiserror::Error)]
pub enum TransformerError {
    #[error("MLX: {0}")]
    Mlx(#[from] mlx_rs::error::Exception),
    #[error(transparent)]
    Load(#[from] crate::checkpoint::LoadError),
    #[error("transformer config: {0}")]
    Config(String),
    #[error("invalid input: {0}")]
    Input(String),
}

pub type Result<T> = std::result::Result<T, TransformerError>;
