//! The preflight's decision: the loading plan a job runs with, or its refusal with the numbers and what
//! would fit; the memory settings a pipeline runs with; and the preflight of one validated request.
use std::fmt;

use ltx_protocol::{catalogue, sysmem, FailureCode, ModelVariant};

use super::{estimate, Estimate, JobShape, LoadingPlan, PlanOptions};
use crate::{device::Backend, job::EngineError, pipeline::models::ModelSet, text::GemmaPrecision};

const GB: f64 = 1e9;

/// The preflight's decision for one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Preflight {
    pub plan: LoadingPlan,
    pub estimate: Estimate,
    pub peak: u64,
    pub budget: u64,
}

impl fmt::Display for Preflight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} plan, estimated peak {:.2} GB (weights {:.2} GB) of a {:.2} GB budget",
            self.plan.name(),
            self.peak as f64 / GB,
            self.estimate.weight_total() as f64 / GB,
            self.budget as f64 / GB
        )
    }
}

/// Picks the plan for a job, or refuses it with the reason and what would fit.
pub fn preflight(models: &ModelSet, job: &JobShape, o: &PlanOptions) -> Result<Preflight, EngineError> {
    let estimate = estimate(models, job, o)?;
    let (all, low) = (estimate.all_resident(), estimate.low_memory());
    let plan = if !o.low_memory && all <= o.budget { LoadingPlan::AllResident } else { LoadingPlan::LowMemory };
    let peak = estimate.peak(plan);
    if peak <= o.budget {
        return Ok(Preflight { plan, estimate, peak, budget: o.budget });
    }
    Err(EngineError::failed(FailureCode::InsufficientMemory, refusal(models, job, o, &estimate, low)))
}

fn refusal(models: &ModelSet, job: &JobShape, o: &PlanOptions, e: &Estimate, low: u64) -> String {
    let gb = |b: u64| b as f64 / GB;
    let mut ways = Vec::new();
    // The sizes and frame counts the pipeline takes (the rule table's).
    let limits = ltx_protocol::rules::Limits::new(models.variant.generation(), job.two_stage.then_some(job.upscale));
    let fits =
        |j: &JobShape| estimate(models, j, &PlanOptions { low_memory: true, ..*o }).map(|e| e.low_memory() <= o.budget);
    // The largest size of about the same aspect that fits with the sequential plan.
    let smaller = (1..8).map(|k| 8 - k).find_map(|k| {
        let side = |v: u32| limits.sides.floor((u64::from(v) * k / 8) as u32);
        let j = JobShape { width: side(job.width)?, height: side(job.height)?, ..*job };
        fits(&j).unwrap_or(false).then_some(j)
    });
    if let Some(j) = smaller {
        ways.push(format!("a smaller size ({}x{})", j.width, j.height));
    }
    if let Some(frames) = limits.frames.ceil(job.frames / 2).filter(|f| *f < job.frames) {
        let j = JobShape { frames, ..*job };
        if fits(&j).unwrap_or(false) {
            ways.push(format!("fewer frames ({})", j.frames));
        }
    }
    if models.variant != ModelVariant::DistilledFp8 {
        ways.push("the distilled-fp8 variant (FP8 transformer weights, half the bytes)".into());
    }
    if o.gemma != GemmaPrecision::Int4 {
        ways.push("a smaller memory profile (Gemma int4)".into());
    }
    if !o.low_memory {
        ways.push("--low-memory".into());
    }
    let heaviest = e
        .weights
        .iter()
        .max_by_key(|(_, b)| **b)
        .map_or(String::new(), |(n, b)| format!("; the largest component, {n}, alone is {:.2} GB", gb(*b)));
    format!(
        "not enough memory for {}x{}x{} frames: the estimated peak is {:.2} GB even with the low-memory \
         sequential plan (weights {:.2} GB{heaviest}), and {:.2} GB is available. Try {}",
        job.width,
        job.height,
        job.frames,
        gb(low),
        gb(e.weight_total()),
        gb(o.budget),
        if ways.is_empty() { "a machine with more memory".to_string() } else { ways.join(", or ") }
    )
}

/// A pipeline's memory settings: the profile it runs with and a fixed budget overriding the machine's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemorySettings {
    pub profile: Option<crate::pipeline::profile::MemoryProfile>,
    /// Bytes a job may use at its peak (config `memory_budget`); `None`: what the machine has.
    pub budget: Option<u64>,
}

impl MemorySettings {
    /// Gemma's precision on `backend`: the profile's, except on MLX CUDA, whose quantised matmul gave
    /// 1.07 (int8) / 1.22 (int4) relative L2 error on the tiny model's encode and is unverified at Gemma's
    /// real shapes (BENCHMARKS.md, GPU): there Gemma runs in bf16 (the plan can still drop it after encoding).
    pub fn gemma(&self, backend: Backend) -> GemmaPrecision {
        match self.profile {
            Some(_) if backend == Backend::Cuda => GemmaPrecision::Bf16,
            Some(p) => p.gemma,
            None => GemmaPrecision::Bf16,
        }
    }

    /// The budget now: the fixed one, else the memory available ([`sysmem::system`]) plus what MLX
    /// already holds in this process (resident components are reused or freed before the job), capped by
    /// the profile.
    pub fn budget_now(&self) -> u64 {
        self.budget.unwrap_or_else(|| {
            let held = crate::memory::MemoryReport::now();
            let available = sysmem::system().available + (held.mlx_active + held.mlx_cache) as u64;
            self.profile.map_or(available, |p| available.min(p.peak_budget))
        })
    }
}

/// The preflight of one request; the same refusal as the submit check when its files are missing.
pub fn for_request(
    models: &ModelSet,
    r: &ltx_protocol::ValidRequest,
    compute: crate::Compute,
    max_length: usize,
    memory: &MemorySettings,
    low_memory: bool,
    decode_budget: Option<usize>,
) -> Result<Preflight, EngineError> {
    models.check(r.pipeline)?;
    let job = JobShape {
        width: r.width,
        height: r.height,
        frames: r.frames,
        fps: r.fps as f64,
        audio: r.audio,
        image: r.image.is_some(),
        two_stage: r.pipeline.rules().two_stage,
        upscale: r.upscale,
        lora: catalogue::components(r.variant, r.pipeline)
            .iter()
            .any(|c| matches!(c, catalogue::Component::DistilledLora(_))),
    };
    let options = PlanOptions {
        backend: compute.backend,
        dtype: compute.dtype,
        max_length,
        gemma: memory.gemma(compute.backend),
        low_memory,
        decode_budget,
        budget: memory.budget_now(),
    };
    let flight = preflight(models, &job, &options)?;
    tracing::info!(variant = models.variant.name(), "preflight: {flight}");
    Ok(flight)
}
