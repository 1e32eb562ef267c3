//! [`Pipeline`]: the daemon's [`Generator`] over the LTX-2 pipelines. One variant's components are
//! resident at a time; a job for another variant unloads them first.
use std::path::PathBuf;

use ltx_protocol::{ComponentStatus, ModelVariant, Pipeline as PipelineKind};

use super::{
    components::Components,
    models::ModelSet,
    run::{generate, Image, Settings},
};
use crate::{
    device::Compute,
    job::{CancelToken, EngineError, GenerationOutput, Generator, Job, ProgressSink},
    sampling::GuiderParams,
};

/// Where each variant's files are.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// The standard layout of a models directory ([`ModelSet::in_dir`]).
    Dir(PathBuf),
    /// Explicit sets (tests, the tiny model).
    Sets(Vec<ModelSet>),
}

pub struct Pipeline {
    source: ModelSource,
    compute: Compute,
    max_length: usize,
    low_memory: bool,
    decode_budget: Option<usize>,
    loaded: Option<Components>,
    /// Memory profile and budget for the preflight ([`super::plan`]).
    memory: super::plan::MemorySettings,
    /// The plan the last preflight chose (applied to the components the job runs with).
    planned: Option<super::plan::LoadingPlan>,
}

/// A sink that drops everything (loading outside a job).
struct Quiet;

impl ProgressSink for Quiet {
    fn stage(&mut self, _: ltx_protocol::Stage) {}
    fn step(&mut self, _: ltx_protocol::Stage, _: u32, _: u32) {}
    fn wants_preview(&self) -> bool {
        false
    }
    fn preview(&mut self, _: u32, _: Vec<u8>) {}
}

impl Pipeline {
    pub fn new(source: ModelSource, compute: Compute) -> Self {
        Self {
            source,
            compute,
            max_length: 1024,
            low_memory: false,
            decode_budget: None,
            loaded: None,
            memory: Default::default(),
            planned: None,
        }
    }

    /// The memory profile (Gemma quantisation, forced low-memory plan, decode tiling, peak budget) and a
    /// fixed budget that replaces what the machine has.
    pub fn with_memory(mut self, memory: super::plan::MemorySettings) -> Self {
        self.memory = memory;
        self
    }

    /// Estimates the request's peak and picks its loading plan, or refuses it ([`super::plan`]).
    pub fn preflight(&mut self, r: &ltx_protocol::GenerationRequest) -> Result<(), EngineError> {
        let models = self.models(r.variant)?;
        // The profile's plan is what its machine size ends up with for the real weights; the estimate decides
        // per job, so a job that fits (a small size, the tiny model) stays warm.
        let low_memory = self.low_memory || r.low_memory;
        let decode = self.decode_budget.or(self.memory.profile.map(|p| p.decode_budget as usize));
        let flight =
            super::plan::for_request(&models, r, self.compute, self.max_length, &self.memory, low_memory, decode)?;
        self.planned = flight.map(|f| f.plan);
        Ok(())
    }

    /// A models directory in the standard layout.
    pub fn from_dir(dir: impl Into<PathBuf>, compute: Compute) -> Self {
        Self::new(ModelSource::Dir(dir.into()), compute)
    }

    /// Prompt token length (1024, LTX-2's; smaller only for tests).
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// Low-memory plan (Gemma dropped after encoding, transformer + upscaler before decoding).
    pub fn with_low_memory(mut self, low_memory: bool) -> Self {
        self.low_memory = low_memory;
        self
    }

    /// A fixed decode memory budget for the tiling choice (default: half the free memory).
    pub fn with_decode_budget(mut self, bytes: Option<usize>) -> Self {
        self.decode_budget = bytes;
        self
    }

    /// The files of `variant`.
    pub fn models(&self, variant: ModelVariant) -> Result<ModelSet, EngineError> {
        match &self.source {
            ModelSource::Dir(dir) => Ok(ModelSet::in_dir(dir, variant)),
            ModelSource::Sets(sets) => sets.iter().find(|s| s.variant == variant).cloned().ok_or_else(|| {
                EngineError::ModelNotInstalled { variant, expected: PathBuf::from(variant.checkpoint()) }
            }),
        }
    }

    /// The components of `variant`, swapping out another variant's.
    fn resident_for(&mut self, variant: ModelVariant) -> Result<&mut Components, EngineError> {
        if self.loaded.as_ref().is_some_and(|c| c.models.variant != variant) {
            self.unload(None);
        }
        if self.loaded.is_none() {
            let models = self.models(variant)?;
            let mut c = Components::new(models, self.compute, self.max_length);
            c.decode_budget = self.decode_budget.or(self.memory.profile.map(|p| p.decode_budget as usize));
            self.loaded = Some(c);
        }
        let plan = self.planned.take();
        let low_memory = self.low_memory || plan == Some(super::plan::LoadingPlan::LowMemory);
        let c = self.loaded.as_mut().ok_or_else(|| unreachable!())?;
        c.set_memory(low_memory, self.memory.gemma(self.compute.backend));
        Ok(c)
    }
}

/// The pipeline settings of a request: the variant each pipeline runs, and the guidance (LTX-2's
/// multi-modal defaults with the request's overrides; `guidance_scale` is the video CFG scale).
pub fn settings(r: &ltx_protocol::GenerationRequest, seed: u64) -> Result<Settings, EngineError> {
    let unsupported = |message: String| Err(EngineError::Failed { code: "invalid_request".into(), message });
    match (r.pipeline, r.variant) {
        (PipelineKind::Distilled, ModelVariant::Dev) => {
            return unsupported("the distilled pipeline runs the distilled or distilled-fp8 weights, not dev".into())
        }
        (PipelineKind::OneStage | PipelineKind::TwoStage, v) if v != ModelVariant::Dev => {
            return unsupported(format!("the {} pipeline runs the dev weights, not {}", r.pipeline.name(), v.name()))
        }
        _ => {}
    }
    let g = r.guidance.clone().unwrap_or_default();
    let mut video = GuiderParams::ltx2_video();
    let mut audio = GuiderParams::ltx2_audio();
    video.cfg_scale = r.guidance_scale;
    if let Some(v) = g.audio_cfg {
        audio.cfg_scale = v;
    }
    for p in [&mut video, &mut audio] {
        if let Some(v) = g.stg {
            p.stg_scale = v;
        }
        if let Some(v) = g.rescale {
            p.rescale_scale = v;
        }
        if let Some(v) = g.modality {
            p.modality_scale = v;
        }
        if let Some(blocks) = &g.stg_blocks {
            p.stg_blocks = blocks.iter().map(|b| *b as usize).collect();
        }
    }
    Ok(Settings {
        pipeline: r.pipeline,
        prompt: r.prompt.clone(),
        negative: r.negative_prompt.clone(),
        width: r.width,
        height: r.height,
        frames: r.frames,
        fps: r.fps as f64,
        seed,
        audio: r.audio,
        steps: r.steps,
        video_guider: video,
        audio_guider: audio,
        image: r.image.as_ref().map(|i| Image { bytes: i.bytes.clone(), strength: i.strength }),
    })
}

impl Generator for Pipeline {
    fn generate(
        &mut self,
        job: &Job<'_>,
        progress: &mut dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<GenerationOutput, EngineError> {
        let r = job.request;
        self.preflight(r)?;
        let settings = settings(r, job.seed)?;
        self.compute.activate();
        let components = self.resident_for(r.variant)?;
        components.take_used();
        let mut out = generate(components, &settings, job.output, progress, cancel)?;
        out.used = components.take_used().into_iter().map(String::from).collect();
        Ok(out)
    }

    fn load(&mut self, variant: ModelVariant) -> Result<(), EngineError> {
        self.compute.activate();
        let c = self.resident_for(variant)?;
        c.models.check(true, false)?;
        let mut quiet = Quiet;
        c.layouts()?;
        c.ensure_text(&mut quiet)?;
        c.ensure_transformer(&mut quiet)?;
        c.ensure_upsampler(&mut quiet)?;
        c.ensure_video_decoder(&mut quiet)?;
        c.ensure_audio(&mut quiet)?;
        Ok(())
    }

    fn unload(&mut self, variant: Option<ModelVariant>) {
        if variant.is_none() || self.loaded.as_ref().is_some_and(|c| Some(c.models.variant) == variant) {
            self.loaded = None;
            let _ = mlx_rs::memory::clear_cache();
        }
    }

    fn set_models_dir(&mut self, dir: &std::path::Path) {
        if let ModelSource::Dir(current) = &mut self.source {
            if current != dir {
                *current = dir.to_path_buf();
                self.unload(None);
            }
        }
    }

    fn unload_component(&mut self, variant: ModelVariant, name: &str) {
        if let Some(c) = self.loaded.as_mut().filter(|c| c.models.variant == variant) {
            c.drop_component(name);
            if c.resident().is_empty() {
                self.loaded = None;
            }
        }
    }

    fn components(&self) -> Vec<ComponentStatus> {
        self.loaded
            .iter()
            .flat_map(|c| {
                c.resident().into_iter().map(|(name, bytes)| ComponentStatus {
                    name: name.to_string(),
                    variant: c.models.variant,
                    bytes,
                    expires_ms: None,
                })
            })
            .collect()
    }
}
