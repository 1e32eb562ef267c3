//! The preflight's memory estimate against MLX's measured peak, on the bundled tiny model set at a
//! tiny (128×128×9) and a mid-size (384×256×25) job, for both loading plans; and the preflight's
//! decisions: the plan it picks and the refusal, with its reason and suggestions, when a job cannot
//! fit the budget. Own test binary: MLX's peak counter is process-wide, so nothing else may allocate
//! while a job is measured (the tests share one lock).
use std::sync::Mutex;

use ltx_engine::{
    job::{CancelToken, EngineError, Generator, Job, ProgressSink},
    memory::{reset_peak, MemoryReport},
    pipeline::{
        plan::{estimate, preflight, JobShape, LoadingPlan, MemorySettings, PlanOptions},
        tiny::bundle_tiny,
        ModelSet, Pipeline,
    },
    text::GemmaPrecision,
    Backend, Compute,
};
use ltx_protocol::{GenerationRequest, ModelVariant, Stage};

static MLX: Mutex<()> = Mutex::new(());

struct Quiet;

impl ProgressSink for Quiet {
    fn stage(&mut self, _: Stage) {}
    fn step(&mut self, _: Stage, _: u32, _: u32) {}
    fn wants_preview(&self) -> bool {
        false
    }
    fn preview(&mut self, _: u32, _: Vec<u8>) {}
}

fn request(prompt: &str, (width, height, frames): (u32, u32, u32)) -> GenerationRequest {
    request_for(ModelVariant::Distilled, prompt, (width, height, frames))
}

fn request_for(variant: ModelVariant, prompt: &str, (width, height, frames): (u32, u32, u32)) -> GenerationRequest {
    let r = GenerationRequest::for_pipeline(prompt, variant, variant.default_pipeline());
    GenerationRequest { width, height, frames, ..r }
}

fn shape(r: &GenerationRequest) -> JobShape {
    JobShape {
        width: r.width,
        height: r.height,
        frames: r.frames,
        fps: r.fps as f64,
        audio: r.audio,
        image: false,
        two_stage: true,
        upscale: r.upscale,
        lora: false,
    }
}

fn options(low_memory: bool, budget: u64) -> PlanOptions {
    PlanOptions {
        backend: Backend::Cpu,
        dtype: mlx_rs::Dtype::Float32,
        max_length: 1024,
        gemma: GemmaPrecision::Bf16,
        low_memory,
        decode_budget: None,
        budget,
    }
}

/// MLX's peak over a warm job (every component already loaded by a first job with another prompt).
fn measured_peak(dir: &std::path::Path, variant: ModelVariant, size: (u32, u32, u32), low_memory: bool) -> usize {
    let mut p = Pipeline::from_dir(dir, Compute::on(Backend::Cpu)).with_low_memory(low_memory);
    let out = dir.join("out.mp4");
    let run = |p: &mut Pipeline, prompt: &str| {
        let r = ltx_protocol::validate(request_for(variant, prompt, size), ltx_protocol::FsCheck::Skip).expect("valid");
        let _ = std::fs::remove_file(&out); // the engine writes a new file, never over an existing one
        p.generate(&Job { id: 1, request: &r, seed: 1, output: &out }, &mut Quiet, &CancelToken::new())
            .expect("generate");
    };
    run(&mut p, "a cold start");
    let _ = mlx_rs::memory::clear_cache();
    reset_peak();
    run(&mut p, "a red fox in the snow");
    MemoryReport::now().mlx_peak
}

#[test]
fn estimate_is_within_a_quarter_of_the_measured_peak() {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    let _mlx = MLX.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    let models = dir.path().join("models");
    bundle_tiny(&models).expect("bundle");
    let mut worst: f64 = 0.0;
    // LTX-2's set. The estimate models LTX-2's video decoder: on the tiny LTX-2.3 set it gives 0.48 of the
    // measured peak (its decoder's stages are laid out differently), which the memory work has to fix.
    for (variant, size) in [(ModelVariant::Distilled, (128, 128, 9)), (ModelVariant::Distilled, (384, 256, 25))] {
        let set = ModelSet::in_dir(&models, variant);
        for low_memory in [false, true] {
            let measured = measured_peak(&models, variant, size, low_memory);
            let e = estimate(&set, &shape(&request("", size)), &options(low_memory, u64::MAX)).expect("estimate");
            let plan = if low_memory { LoadingPlan::LowMemory } else { LoadingPlan::AllResident };
            let est = e.peak(plan);
            let ratio = est as f64 / measured as f64;
            eprintln!(
                "{} {size:?} {}: estimated {est} B, measured {measured} B ({ratio:.2}); weights {} B, encode {} B, \
                 denoise {} B, upscale {} B, decode {} B / {} B",
                variant.name(),
                plan.name(),
                e.weight_total(),
                e.encode,
                e.denoise,
                e.upscale,
                e.decode_video,
                e.decode_audio
            );
            worst = worst.max((ratio - 1.0).abs());
            assert!((0.75..=1.25).contains(&ratio), "{size:?} {plan:?}: estimate {est} B vs measured {measured} B");
        }
    }
    eprintln!("largest deviation {:.0} %", worst * 100.0);
}

#[test]
fn picks_the_plan_and_refuses_what_cannot_fit() {
    let dir = tempfile::tempdir().expect("tmp");
    let set = bundle_tiny(&dir.path().join("models")).expect("bundle");
    let job = shape(&request("", (384, 256, 25)));
    let e = estimate(&set, &job, &options(false, u64::MAX)).expect("estimate");
    let (all, low) = (e.all_resident(), e.low_memory());
    assert!(low < all, "sequential {low} B vs resident {all} B");
    // Weights come from the headers: FP8 block weights stay one byte, floats load as f32 on the CPU.
    let fp8 = ModelSet::in_dir(&dir.path().join("models"), ModelVariant::DistilledFp8);
    let e8 = estimate(&fp8, &job, &options(false, u64::MAX)).expect("fp8");
    assert!(
        e8.weights[&ltx_protocol::Part::Transformer] < e.weights[&ltx_protocol::Part::Transformer],
        "{:?} vs {:?}",
        e8.weights,
        e.weights
    );
    // Int4 Gemma is smaller than the compute dtype.
    let q = estimate(&set, &job, &PlanOptions { gemma: GemmaPrecision::Int4, ..options(false, u64::MAX) }).expect("q");
    assert!(q.weights[&ltx_protocol::Part::TextEncoder] < e.weights[&ltx_protocol::Part::TextEncoder]);

    let plan = |low_memory, budget| preflight(&set, &job, &options(low_memory, budget));
    assert_eq!(plan(false, all).expect("fits").plan, LoadingPlan::AllResident);
    assert_eq!(plan(true, all).expect("fits").plan, LoadingPlan::LowMemory);
    let squeezed = plan(false, low).expect("fits sequentially");
    assert_eq!((squeezed.plan, squeezed.peak), (LoadingPlan::LowMemory, low));
    let Err(EngineError::Failed { code, message, .. }) = plan(false, low - 1) else { panic!("not refused") };
    assert_eq!(code, ltx_protocol::FailureCode::InsufficientMemory);
    assert!(message.starts_with("not enough memory for 384x256x25 frames"), "{message}");
    assert!(message.contains("low-memory sequential plan") && message.contains("distilled-fp8"), "{message}");
    assert!(message.contains("a smaller size (320x192)") || message.contains("a smaller size"), "{message}");
    assert!(message.contains("fewer frames (17)") || message.contains("a smaller size"), "{message}");
}

#[test]
fn a_one_stage_job_needs_no_upscaler() {
    let dir = tempfile::tempdir().expect("tmp");
    let set = bundle_tiny(&dir.path().join("models")).expect("bundle");
    let job = JobShape { two_stage: false, ..shape(&request("", (128, 128, 9))) };
    let with = estimate(&set, &job, &options(false, u64::MAX)).expect("estimate");
    assert!(!with.weights.contains_key(&ltx_protocol::Part::Upscaler) && with.upscale == 0, "{with:?}");
    // The one-stage pipeline's files do not include the upscaler: its estimate does not read it.
    std::fs::remove_file(&set.upscaler).expect("rm");
    assert_eq!(estimate(&set, &job, &options(false, u64::MAX)).expect("without the upscaler"), with);
    let two = estimate(&set, &JobShape { two_stage: true, ..job }, &options(false, u64::MAX));
    assert!(matches!(two, Err(EngineError::Failed { code: ltx_protocol::FailureCode::LoadFailed, .. })), "{two:?}");
}

#[test]
fn the_pipeline_refuses_before_loading_anything() {
    let _mlx = MLX.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tmp");
    bundle_tiny(&dir.path().join("models")).expect("bundle");
    let memory = MemorySettings { profile: None, budget: Some(1_000_000) };
    let mut p = Pipeline::from_dir(dir.path().join("models"), Compute::on(Backend::Cpu)).with_memory(memory);
    let r = ltx_protocol::validate(request("a red fox", (128, 128, 9)), ltx_protocol::FsCheck::Skip).expect("valid");
    let out = dir.path().join("out.mp4");
    let err = p.generate(&Job { id: 1, request: &r, seed: 1, output: &out }, &mut Quiet, &CancelToken::new());
    assert_eq!(err.as_ref().map_err(|e| e.code()).err(), Some("insufficient_memory"), "{err:?}");
    assert!(p.components().is_empty());
    assert!(!out.exists());
}
