//! The LTX-2 engine on MLX: checkpoint loading, the model components and the generation pipelines.
pub mod audio_vae;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod generation;
pub mod job;
pub mod media;
pub mod memory;
pub mod pipeline;
pub mod preview;
pub mod quant;
pub mod sampling;
pub mod text;
pub mod transformer;
pub mod upsampler;
pub mod video_vae;

pub use checkpoint::{Checkpoint, LoadError, LoadOptions, LoadReport};
pub use device::{Backend, Compute};
pub use pipeline::{plan::MemorySettings, profile::MemoryProfile};
