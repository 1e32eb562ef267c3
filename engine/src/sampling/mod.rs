//! Sampling: sigma schedules, the flow-matching Euler loop on x0 predictions, and multi-modal
//! guidance (ltx-core 1.0.0 `components/*`, ltx-pipelines 1.0.0 `utils/*`).

pub mod euler;
pub mod guidance;
pub mod schedules;

pub use euler::{euler_loop, LatentState, LoopEnd, StepProgress};
pub use guidance::{guided_denoise, GuiderParams};
pub use schedules::{ltx2_sigmas, DISTILLED_SIGMAS, STAGE_2_DISTILLED_SIGMAS};
