//! The engine the shipped `ltxd` uses until the LTX-2 pipeline lands: it generates nothing and fails every
//! job with a clear, typed error (no fake output).
use ltx_engine::job::{CancelToken, EngineError, GenerationOutput, Generator, Job, ProgressSink};
use ltx_protocol::{ComponentStatus, KeepAlive, ModelVariant};
use std::path::PathBuf;

pub struct NoEngine {
    pub models_dir: PathBuf,
}

impl NoEngine {
    fn check(&self, variant: ModelVariant) -> Result<(), EngineError> {
        let expected = self.models_dir.join(variant.checkpoint());
        if !expected.is_file() {
            return Err(EngineError::ModelNotInstalled { variant, expected });
        }
        Err(EngineError::Failed {
            code: "engine_unavailable".into(),
            message: "this build of ltxd does not include the LTX-2 engine yet".into(),
        })
    }
}

impl Generator for NoEngine {
    fn generate(
        &mut self,
        job: &Job<'_>,
        _: &mut dyn ProgressSink,
        _: &CancelToken,
    ) -> Result<GenerationOutput, EngineError> {
        self.check(job.request.variant).map(|_| GenerationOutput::default())
    }
    fn load(&mut self, variant: ModelVariant, _: KeepAlive) -> Result<(), EngineError> {
        self.check(variant)
    }
    fn unload(&mut self, _: Option<ModelVariant>) {}
    fn components(&self) -> Vec<ComponentStatus> {
        Vec::new()
    }
}
