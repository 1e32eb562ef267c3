//! Generation pipelines (ltx-pipelines 1.0.0), one concern per file: latent shapes, patchifiers and
//! seeded noise ([`latents`]), the model files of a variant ([`models`]), per-component residency
//! ([`components`]), the denoising stages of every pipeline ([`sample`]), one job end to end ([`run`]),
//! image-to-video preprocessing ([`conditioning`]), step previews ([`preview`]), the daemon's
//! [`crate::job::Generator`] ([`generator`]) and the bundled tiny model set ([`tiny`]).
pub mod components;
pub mod conditioning;
pub mod decision;
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
use ltx_protocol::FailureCode;

/// Maps any error into `EngineError::Failed` with its code, keeping the error as the cause.
pub(crate) trait Fail<T> {
    fn fail(self, code: FailureCode) -> Result<T, EngineError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Fail<T> for Result<T, E> {
    fn fail(self, code: FailureCode) -> Result<T, EngineError> {
        self.map_err(|e| EngineError::caused(code, e))
    }
}
