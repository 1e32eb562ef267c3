//! [`Pipeline`]: the daemon's [`Generator`] over the LTX-2 pipelines. One variant's components are
//! resident at a time; a job for another variant unloads them first.
use std::path::PathBuf;

use ltx_protocol::{ComponentStatus, ModelVariant, Part, ValidRequest};

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

pub struct Pipeline {
    /// The models directory, in the catalogue's standard layout ([`ModelSet::in_dir`]).
    dir: PathBuf,
    compute: Compute,
    max_length: usize,
    low_memory: bool,
    decode_budget: Option<usize>,
    loaded: Option<Components>,
    /// Memory profile and budget for the preflight ([`super::plan`]).
    memory: super::plan::MemorySettings,
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
    /// A models directory in the standard layout.
    pub fn from_dir(dir: impl Into<PathBuf>, compute: Compute) -> Self {
        Self {
            dir: dir.into(),
            compute,
            max_length: 1024,
            low_memory: false,
            decode_budget: None,
            loaded: None,
            memory: Default::default(),
        }
    }

    /// The memory profile (Gemma quantisation, forced low-memory plan, decode tiling, peak budget) and a
    /// fixed budget that replaces what the machine has.
    pub fn with_memory(mut self, memory: super::plan::MemorySettings) -> Self {
        self.memory = memory;
        self
    }

    /// Estimates the request's peak and picks its loading plan, or refuses it ([`super::plan`]).
    pub fn plan(&self, r: &ValidRequest) -> Result<super::plan::Preflight, EngineError> {
        let models = self.models(r.variant);
        // The profile's plan is what its machine size ends up with for the real weights; the estimate decides
        // per job, so a job that fits (a small size, the tiny model) stays warm.
        let low_memory = self.low_memory || r.low_memory;
        let decode = self.decode_budget.or(self.memory.profile.map(|p| p.decode_budget as usize));
        super::plan::for_request(&models, r, self.compute, self.max_length, &self.memory, low_memory, decode)
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
    pub fn models(&self, variant: ModelVariant) -> ModelSet {
        ModelSet::in_dir(&self.dir, variant)
    }

    /// The components of `variant`, swapping out another variant's, set up for `plan` (`None`: a load).
    fn resident_for(
        &mut self,
        variant: ModelVariant,
        plan: Option<super::plan::LoadingPlan>,
    ) -> Result<&mut Components, EngineError> {
        if self.loaded.as_ref().is_some_and(|c| c.models.variant != variant) {
            self.unload(None);
        }
        let low_memory = self.low_memory || plan == Some(super::plan::LoadingPlan::LowMemory);
        let gemma = self.memory.gemma(self.compute.backend);
        let decode_budget = self.decode_budget.or(self.memory.profile.map(|p| p.decode_budget as usize));
        let (dir, compute, max_length) = (&self.dir, self.compute, self.max_length);
        let c = self.loaded.get_or_insert_with(|| {
            let mut c = Components::new(ModelSet::in_dir(dir, variant), compute, max_length);
            c.decode_budget = decode_budget;
            c
        });
        c.set_memory(low_memory, gemma);
        Ok(c)
    }
}

/// The pipeline settings of a validated request: the generation's multi-modal guidance with the request's
/// overrides (`guidance_scale` is the video CFG scale).
pub fn settings(r: &ValidRequest, seed: u64) -> Settings {
    let g = r.guidance.clone().unwrap_or_default();
    let defaults = r.variant.generation().guidance;
    let mut video = GuiderParams::video(&defaults);
    let mut audio = GuiderParams::audio(&defaults);
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
    Settings {
        upscale: r.upscale,
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
    }
}

impl Generator for Pipeline {
    fn generate(
        &mut self,
        job: &Job<'_>,
        progress: &mut dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<GenerationOutput, EngineError> {
        let r = job.request;
        let flight = self.plan(r)?;
        let settings = settings(r, job.seed);
        self.compute.activate();
        let components = self.resident_for(r.variant, Some(flight.plan))?;
        components.take_used();
        let mut out = generate(components, &settings, job.output, progress, cancel)?;
        out.used = components.take_used();
        Ok(out)
    }

    /// The submit-time check: the same estimate against the models' headers, nothing loaded.
    fn preflight(&self, request: &ValidRequest) -> Result<(), EngineError> {
        self.plan(request).map(drop)
    }

    fn load(&mut self, variant: ModelVariant) -> Result<(), EngineError> {
        self.compute.activate();
        let c = self.resident_for(variant, None)?;
        c.models.check_warm()?;
        let mut quiet = Quiet;
        c.layouts()?;
        c.ensure_text(&mut quiet)?;
        c.ensure_transformer(&mut quiet)?;
        c.ensure_upsampler(ltx_protocol::Upscale::X2, &mut quiet)?;
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
        if self.dir != dir {
            self.dir = dir.to_path_buf();
            // An engine that holds nothing does not touch MLX (the daemon's submit-time copy, on another thread).
            if self.loaded.is_some() {
                self.unload(None);
            }
        }
    }

    fn unload_component(&mut self, variant: ModelVariant, name: Part) {
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
                    name,
                    variant: c.models.variant,
                    bytes,
                    expires_ms: None,
                })
            })
            .collect()
    }
}
