//! Preflight: before a job touches a weight, estimate its peak memory and pick a loading plan.
//!
//! Weights come from the safetensors headers alone (no tensor is read): bytes per component after
//! loading, i.e. floating tensors in the compute dtype, FP8 tensors kept as one byte, Gemma's matrices
//! at the chosen quantisation. Activations follow the job's shape: Gemma's pass over the padded prompt,
//! the transformer's widest step (tokens × width, attention scores on backends without a fused
//! attention kernel), the upscaler, the video decode tile (the same budget rule the decode uses) and
//! the audio decode. The two plans differ in what is resident when each phase peaks:
//!
//! - all resident: every weight plus the largest phase's activations;
//! - low-memory sequential: encode with Gemma, drop it, denoise, drop the transformer and upscaler,
//!   decode tiled: the largest of the three phases.
//!
//! When even the sequential plan exceeds the budget the job is refused with the numbers and a way out
//! (a smaller size, fewer frames, the FP8 variant, Gemma int4, the low-memory switch).
//!
//! Three parts: [`inputs`] reads the job's tensor headers and the typed configs the loaders build the
//! models from ([`crate::config`], [`crate::transformer::TransformerConfig`], [`crate::text::GemmaConfig`]);
//! [`estimate`] is the arithmetic over them, pure functions; [`preflight`] picks the plan or refuses, and
//! holds the memory settings a pipeline runs with. The system's memory comes from [`ltx_protocol::sysmem`].
//!
//! The activation constants were fitted to MLX's measured peak on the CPU backend (f32) with the tiny
//! model set, at two job sizes (`engine/tests/preflight.rs` checks both stay within ±25 %).
pub mod estimate;
pub mod inputs;
pub mod preflight;

use mlx_rs::Dtype;

pub use estimate::{estimate, Estimate};
pub use preflight::{for_request, preflight, MemorySettings, Preflight};

use crate::{device::Backend, text::GemmaPrecision};

/// What the estimate needs from a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobShape {
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub fps: f64,
    pub audio: bool,
    pub image: bool,
    /// Stage 1 at 1/`upscale` of the size then the upscaler (the distilled and two-stage pipelines).
    pub two_stage: bool,
    /// The two-stage pipelines' upscale.
    pub upscale: ltx_protocol::Upscale,
    /// The distilled LoRA on stage 2 (the two-stage pipeline).
    pub lora: bool,
}

/// How the engine will run and what it may use.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    pub backend: Backend,
    pub dtype: Dtype,
    /// Prompt tokens (1024 for LTX-2).
    pub max_length: usize,
    pub gemma: GemmaPrecision,
    /// Run the low-memory plan even when everything would fit.
    pub low_memory: bool,
    /// The decode's tiling budget (`None`: half of what the system has free, as the decode does).
    pub decode_budget: Option<usize>,
    /// Bytes the job may use at its peak.
    pub budget: u64,
}

/// The loading plan a job runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadingPlan {
    /// Every component stays loaded.
    AllResident,
    /// Encode → drop Gemma → denoise → drop transformer and upscaler → decode tiled.
    LowMemory,
}

impl LoadingPlan {
    pub fn name(self) -> &'static str {
        match self {
            Self::AllResident => "all resident",
            Self::LowMemory => "low-memory sequential",
        }
    }
}
