//! One generation without the daemon, and the bundled tiny model set.
//!
//! ```text
//! ltx-generate --models DIR --prompt TEXT [--width 768] [--height 512] [--frames 121] [--fps 24]
//!              [--seed 0] [--out out.mp4] [--no-audio] [--variant distilled|distilled-fp8|dev|ltx-2.3-distilled|ltx-2.3-dev]
//!              [--pipeline distilled|one-stage|two-stage] [--upscale 2|1.5] [--steps N] [--guidance CFG] [--image FILE]
//!              [--low-memory]
//! ltx-generate bundle-tiny DIR
//! ```
use std::{path::PathBuf, process::ExitCode, time::Instant};

use ltx_engine::{
    job::{CancelToken, Generator, Job, ProgressSink},
    pipeline::{tiny::bundle_tiny, Pipeline},
    Compute,
};
use ltx_protocol::{fsutil, validate, FsCheck, GenerationRequest, ModelVariant, Pipeline as Kind, Stage};

const USAGE: &str =
    "usage:\n  ltx-generate --models DIR --prompt TEXT [--width W] [--height H] [--frames N] [--fps F] \
                     [--seed S] [--out FILE.mp4] [--no-audio] [--variant distilled|distilled-fp8|dev|ltx-2.3-distilled|ltx-2.3-dev] \
                     [--pipeline distilled|one-stage|two-stage] [--upscale 2|1.5] [--steps N] [--guidance CFG] [--image FILE] \
                     [--low-memory]\n  ltx-generate bundle-tiny DIR";

struct Printer;

impl ProgressSink for Printer {
    fn stage(&mut self, stage: Stage) {
        eprintln!("{stage}");
    }
    fn step(&mut self, stage: Stage, step: u32, total: u32) {
        eprintln!("  {stage}: step {step}/{total}");
    }
    fn wants_preview(&self) -> bool {
        false
    }
    fn preview(&mut self, _: u32, _: Vec<u8>) {}
}

fn run(args: Vec<String>) -> Result<(), String> {
    if args.first().map(String::as_str) == Some("bundle-tiny") {
        let dir = args.get(1).ok_or(USAGE)?;
        let set = bundle_tiny(&PathBuf::from(dir)).map_err(|e| format!("{dir}: {e}"))?;
        println!("tiny model set written to {dir} ({})", set.checkpoint.display());
        return Ok(());
    }
    let mut request = GenerationRequest::new("");
    let (mut variant, mut pipeline, mut steps, mut guidance) = (None, None, None, None);
    let (mut models, mut seed, mut out, mut low_memory) = (None, 0u64, PathBuf::from("out.mp4"), false);
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--models" => models = Some(PathBuf::from(value()?)),
            "--prompt" => request.prompt = value()?,
            "--width" => request.width = num(value()?)? as u32,
            "--height" => request.height = num(value()?)? as u32,
            "--frames" => request.frames = num(value()?)? as u32,
            "--fps" => request.fps = num(value()?)? as u32,
            "--seed" => seed = num(value()?)?,
            "--out" => out = PathBuf::from(value()?),
            "--no-audio" => request.audio = false,
            "--variant" => {
                let v = value()?;
                variant = Some(ModelVariant::parse(&v).ok_or_else(|| format!("unknown variant {v}\n{USAGE}"))?);
            }
            "--pipeline" => {
                let v = value()?;
                pipeline = Some(Kind::parse(&v).ok_or_else(|| format!("unknown pipeline {v}\n{USAGE}"))?);
            }
            "--steps" => steps = Some(num(value()?)? as u32),
            "--guidance" => {
                let v = value()?;
                guidance = Some(v.parse().map_err(|e| format!("{flag} {v}: {e}"))?);
            }
            "--image" => {
                let path = PathBuf::from(value()?);
                request.image = Some(ltx_protocol::validate::load_image(&path, 1.0).map_err(|e| e.to_string())?);
            }
            "--low-memory" => low_memory = true,
            "--upscale" => {
                let v = value()?;
                request.upscale = ltx_protocol::Upscale::parse(&v)
                    .ok_or_else(|| format!("--upscale is 2 or 1.5, not {v}\n{USAGE}"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    // The pipeline and variant the flags name, and the table's defaults for what they leave out.
    request.pipeline = pipeline.unwrap_or_else(|| variant.unwrap_or(request.variant).default_pipeline());
    request.variant = variant.unwrap_or_else(|| ModelVariant::default_for(request.pipeline));
    let defaults = request.pipeline.defaults(request.variant);
    request.steps = steps.unwrap_or(defaults.steps);
    request.guidance_scale = guidance.unwrap_or(defaults.guidance_scale);
    let request = validate(request, FsCheck::Skip).map_err(|e| e.to_string())?;
    let models = models.ok_or_else(|| format!("--models is required\n{USAGE}"))?;
    let compute = Compute::detect();
    let mut pipeline = Pipeline::from_dir(models, compute).with_low_memory(low_memory);
    // The engine writes a fresh temporary file next to `--out`, which then replaces it (never through a link).
    let (dir, name) = fsutil::Dir::of(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let tmp = fsutil::random_name(&format!(".{}.", name.to_string_lossy()), fsutil::TEMP_SUFFIX);
    let job = Job { id: 1, request: &request, seed, output: &dir.join(&tmp) };
    let start = Instant::now();
    let result = pipeline.generate(&job, &mut Printer, &CancelToken::new());
    let placed = result.map_err(|e| e.to_string()).and_then(|r| {
        let f = dir.open_own(&tmp).map_err(|e| e.to_string())?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644)).map_err(|e| e.to_string())?;
        dir.rename(&tmp, &name).map_err(|e| format!("{}: {e}", out.display()))?;
        Ok(r)
    });
    let _ = dir.remove(&tmp);
    let result = placed?;
    for (name, ms) in &result.timings {
        eprintln!("{name}: {ms} ms");
    }
    println!("{} ({:.2} s on {})", out.display(), start.elapsed().as_secs_f64(), compute.backend);
    Ok(())
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ltx-generate: {e}");
            ExitCode::FAILURE
        }
    }
}
