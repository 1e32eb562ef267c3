//! Generation pipelines (ltx-pipelines 1.0.0), one concern per file: latent shapes, patchifiers and
//! seeded noise ([`latents`]), the model files of a variant ([`models`]), per-component residency
//! ([`components`]), the denoising stages of every pipeline ([`sample`]), one job end to end ([`run`]),
//! image-to-video preprocessing ([`conditioning`]), step previews ([`preview`]), the daemon's
//! [`crate::job::Generator`] ([`generator`]) and the bundled tiny model set ([`tiny`]).
pub mod components;
pub mod conditioning;
pub mod generator;
pub mod latents;
pub mod models;
pub mod plan;
pub mod preview;
pub mod profile;
pub mod run;
pub mod sample;
pub mod tiny;

pub use components::Components;
pub use generator::Pipeline;
pub use models::ModelSet;
pub use run::{generate, Settings};

use crate::job::EngineError;

/// Maps any error into `EngineError::Failed` with a stable code.
pub(crate) trait Fail<T> {
    fn fail(self, code: &str) -> Result<T, EngineError>;
}

impl<T, E: std::fmt::Display> Fail<T> for Result<T, E> {
    fn fail(self, code: &str) -> Result<T, EngineError> {
        self.map_err(|e| EngineError::Failed { code: code.to_string(), message: e.to_string() })
    }
}
