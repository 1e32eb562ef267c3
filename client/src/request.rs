//! The [`GenerationRequest`] `ltxctl submit` sends, built from its arguments and validated here first (the same
//! validation the daemon runs).
use crate::cli::{defaults, SubmitArgs};
use crate::exit::{Failure, EXIT_FAILED};
use ltx_protocol::*;

/// Builds the request from the command line (the image is read here: the daemon may not read user folders).
/// `installed`: the generation to run when neither `--model` nor `--variant` names one (the newest installed).
pub fn build_request(a: &SubmitArgs, installed: Generation) -> Result<GenerationRequest, Failure> {
    let variant = resolve_variant(a.model, a.variant)?;
    let generation = a.model.or(variant.map(|v| v.rules().generation)).unwrap_or(installed);
    // The pipeline and variant asked for, each defaulting through the other ([`ltx_protocol::rules`]).
    let pipeline = a.pipeline.unwrap_or_else(|| {
        variant.map_or_else(
            || ModelVariant::of(generation).next().map_or(defaults().pipeline, ModelVariant::default_pipeline),
            ModelVariant::default_pipeline,
        )
    });
    let variant = match variant {
        Some(v) => v,
        None => ModelVariant::default_in(generation, pipeline).ok_or_else(|| {
            Failure::new(
                crate::exit::EXIT_INVALID,
                format!("{} has no weights for the {} pipeline", generation.rules().name, pipeline.name()),
            )
        })?,
    };
    let mut req = GenerationRequest::for_pipeline(a.prompt.clone(), variant, pipeline);
    let guidance = ltx_protocol::Guidance {
        audio_cfg: a.audio_guidance,
        stg: a.stg,
        rescale: a.rescale,
        modality: a.modality_guidance,
        stg_blocks: a.stg_blocks.clone(),
    };
    let output = match &a.output {
        Some(p) if p.is_relative() => {
            Some(std::env::current_dir().map_err(|e| Failure::new(EXIT_FAILED, e.to_string()))?.join(p))
        }
        other => other.clone(),
    };
    req.negative_prompt = a.negative.clone();
    (req.width, req.height, req.frames, req.fps) = (a.size.0, a.size.1, a.frames, a.fps);
    req.steps = a.steps.unwrap_or(req.steps);
    req.guidance_scale = a.guidance.unwrap_or(req.guidance_scale);
    req.seed = a.seed;
    let strength = a.strength.unwrap_or(rules::IMAGE_STRENGTH);
    req.image = a.image.as_deref().map(|p| validate::load_image(p, strength)).transpose()?;
    req.audio = !a.no_audio;
    req.output = output;
    req.front = a.front;
    req.keep_alive = a.keep_alive;
    req.guidance = (guidance != ltx_protocol::Guidance::default()).then_some(guidance);
    req.low_memory = a.low_memory;
    req.upscale = a.upscale;
    Ok(validate(req, FsCheck::Probe)?.into_inner())
}

/// `--variant` within `--model`: a variant of another generation is taken by its name there
/// (`--model ltx-2.3 --variant dev` is `ltx-2.3-dev`).
pub fn resolve_variant(
    model: Option<Generation>,
    variant: Option<ModelVariant>,
) -> Result<Option<ModelVariant>, Failure> {
    let (Some(g), Some(v)) = (model, variant) else { return Ok(variant) };
    if v.rules().generation == g {
        return Ok(Some(v));
    }
    ModelVariant::find(g, v.rules().short).map(Some).ok_or_else(|| {
        let names: Vec<_> = ModelVariant::of(g).map(|v| v.rules().short).collect();
        Failure::new(
            crate::exit::EXIT_INVALID,
            format!("{} has no {} weights (it has {})", g.rules().name, v.rules().short, names.join(", ")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Cmd};
    use crate::exit::EXIT_INVALID;
    use clap::Parser;

    fn build(args: &[&str]) -> Result<GenerationRequest, Failure> {
        let cli = Cli::try_parse_from([&["ltxctl", "submit", "a fox"][..], args].concat()).expect("parses");
        let Cmd::Submit(a) = cli.cmd else { panic!("not a submit") };
        build_request(&a, Generation::Ltx2)
    }

    fn ok(args: &[&str]) -> GenerationRequest {
        build(args).unwrap_or_else(|f| panic!("{args:?}: {}", f.message))
    }

    #[test]
    fn variant_and_pipeline_default_through_each_other() {
        let r = ok(&[]);
        assert_eq!((r.variant, r.pipeline), (defaults().variant, defaults().pipeline));
        assert_eq!((r.steps, r.width, r.height, r.frames), (8, 768, 512, 97));
        let r = ok(&["--variant", "dev"]);
        assert_eq!((r.pipeline, r.steps, r.guidance_scale), (Pipeline::TwoStage, 40, 3.0));
        let r = ok(&["--pipeline", "one-stage", "--steps", "20"]);
        assert_eq!((r.variant, r.steps), (ModelVariant::Dev, 20));
        let r = ok(&["--output", "out.mp4", "--seed", "5", "--stg", "0"]);
        assert_eq!(r.output, Some(std::env::current_dir().unwrap().join("out.mp4")));
        assert_eq!((r.seed, r.guidance.map(|g| g.stg)), (Some(5), Some(Some(0.0))));
        // The same validation as the daemon's, before anything is sent.
        let Err(Failure { exit: code, message: msg, .. }) = build(&["--variant", "distilled", "--steps", "3"]) else {
            panic!("accepted")
        };
        assert_eq!(code, EXIT_INVALID);
        assert!(msg.contains("fixed 8-step schedule"), "{msg}");
        // A strength means nothing without the image it applies to.
        let e = Cli::try_parse_from(["ltxctl", "submit", "a fox", "--strength", "0.5"]).expect_err("accepted");
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--image"), "{e}");
    }
}
