//! The product's rules, each stated once: the model generations and their variants, which pipeline a variant
//! runs, and every pipeline's defaults and requirements — among them the sizes, frame counts and ranges a
//! generation × pipeline takes ([`Limits`]). The validation ([`crate::validate`]), the model
//! catalogue ([`crate::catalogue`]), the engine, the daemon, `ltxctl` and the tray all read these tables; a new
//! generation is a row in [`GENERATIONS`], its variants rows in [`VARIANTS`], its files rows in
//! [`crate::catalogue::FILES`].
use crate::job::{ModelVariant, Pipeline, Upscale};
use serde::{Deserialize, Serialize};

/// A model generation: variants of one generation share the text encoder, VAEs, upscaler and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Generation {
    /// LTX-2 (19B): Gemma 3 12B text encoder.
    Ltx2,
    /// LTX-2.3 (22B): gated attention, cross-attention AdaLN, the caption projection in the text encoder,
    /// BigVGAN v2 + bandwidth extension to 48 kHz; Gemma 3 12B shared with LTX-2.
    Ltx23,
}

/// What a checkpoint's denoiser was trained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// Step-distilled: a fixed short schedule, no guidance.
    Distilled,
    /// The full model: any step count, guided sampling.
    Dev,
}

/// The multi-modal guidance of the guided pipelines (`LTX_2_PARAMS`): per modality CFG, STG on the given
/// blocks, rescale and audio↔video modality guidance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GuidanceDefaults {
    pub video_cfg: f32,
    pub audio_cfg: f32,
    pub stg: f32,
    pub stg_blocks: &'static [u32],
    pub rescale: f32,
    pub modality: f32,
}

/// What a generation's models take: the shape of a video (from the VAEs' compression and the upscaler) and the
/// ranges of the sampling settings. A pipeline's [`Limits`] follow from these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeRules {
    /// Pixels per latent cell along each side (the video VAE's spatial compression).
    pub spatial_compression: u32,
    /// Frames per latent frame after the first: frame counts are k × this + 1.
    pub temporal_compression: u32,
    pub min_side: u32,
    pub max_side: u32,
    pub min_frames: u32,
    pub max_frames: u32,
    pub max_fps: u32,
    pub max_steps: u32,
    pub max_guidance: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationRules {
    pub generation: Generation,
    pub name: &'static str,
    /// The short name (`--model`, listings).
    pub id: &'static str,
    /// A checkpoint's `model_version` metadata starts with this (ltx-pipelines' `detect_params`); empty: the
    /// generation of files that carry none.
    pub model_version_prefix: &'static str,
    pub shape: ShapeRules,
    /// The two-stage pipelines' spatial upscales (the first is the default).
    pub upscales: &'static [Upscale],
    /// Stage-1 steps of the guided pipelines when none are asked for.
    pub guided_steps: u32,
    /// The length of the distilled stage-1 sigma schedule (fixed).
    pub distilled_steps: u32,
    pub guidance: GuidanceDefaults,
    /// A request's shape when none is asked for.
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub fps: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VariantRules {
    pub variant: ModelVariant,
    /// The name on the wire's human side, unique over every generation: CLI arguments, listings, config files.
    pub name: &'static str,
    /// The name within its generation (`--model ltx-2.3 --variant distilled`).
    pub short: &'static str,
    pub generation: Generation,
    pub weights: Weights,
    /// The pipeline run when none is named.
    pub default_pipeline: Pipeline,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineRules {
    pub pipeline: Pipeline,
    pub name: &'static str,
    /// The weights it runs.
    pub weights: Weights,
    /// Stage 1 at half size, ×2 latent upscale, stage-2 refinement (width and height ÷64, else ÷32).
    pub two_stage: bool,
    /// The distilled LoRA refines stage 2 when the pipeline runs dev weights.
    pub lora_on_dev: bool,
    /// One line for help texts.
    pub summary: &'static str,
}

/// LTX-2's shape limits (LTX-2.3 keeps its VAE's compression and the same ranges).
const LTX2_SHAPE: ShapeRules = ShapeRules {
    spatial_compression: 32,
    temporal_compression: 8,
    min_side: 64,
    max_side: 2048,
    min_frames: 9,
    max_frames: 257,
    max_fps: 60,
    max_steps: 100,
    max_guidance: 20.0,
};

/// `LTX_2_PARAMS`' guider parameters (LTX-2.3 moves only the STG block).
const LTX2_GUIDANCE: GuidanceDefaults =
    GuidanceDefaults { video_cfg: 3.0, audio_cfg: 7.0, stg: 1.0, stg_blocks: &[29], rescale: 0.7, modality: 3.0 };

/// Defaults from ltx-pipelines 1.0.0's `LTX_2_PARAMS` / `LTX_2_3_PARAMS` (`utils/constants.py`).
pub const GENERATIONS: &[GenerationRules] = &[
    GenerationRules {
        generation: Generation::Ltx2,
        name: "LTX-2 (19B)",
        id: "ltx-2",
        model_version_prefix: "",
        upscales: &[Upscale::X2],
        shape: LTX2_SHAPE,
        guided_steps: 40,
        distilled_steps: 8,
        guidance: LTX2_GUIDANCE,
        width: 768,
        height: 512,
        frames: 97,
        fps: 24,
    },
    GenerationRules {
        generation: Generation::Ltx23,
        name: "LTX-2.3 (22B)",
        id: "ltx-2.3",
        model_version_prefix: "2.3",
        upscales: &[Upscale::X2, Upscale::X1_5],
        shape: LTX2_SHAPE,
        guided_steps: 30,
        distilled_steps: 8,
        guidance: GuidanceDefaults { stg_blocks: &[28], ..LTX2_GUIDANCE },
        width: 768,
        height: 512,
        frames: 97,
        fps: 24,
    },
];

pub const VARIANTS: &[VariantRules] = &[
    VariantRules {
        variant: ModelVariant::Distilled,
        name: "distilled",
        short: "distilled",
        generation: Generation::Ltx2,
        weights: Weights::Distilled,
        default_pipeline: Pipeline::Distilled,
    },
    VariantRules {
        variant: ModelVariant::DistilledFp8,
        name: "distilled-fp8",
        short: "distilled-fp8",
        generation: Generation::Ltx2,
        weights: Weights::Distilled,
        default_pipeline: Pipeline::Distilled,
    },
    VariantRules {
        variant: ModelVariant::Dev,
        name: "dev",
        short: "dev",
        generation: Generation::Ltx2,
        weights: Weights::Dev,
        default_pipeline: Pipeline::TwoStage,
    },
    VariantRules {
        variant: ModelVariant::Ltx23Distilled,
        name: "ltx-2.3-distilled",
        short: "distilled",
        generation: Generation::Ltx23,
        weights: Weights::Distilled,
        default_pipeline: Pipeline::Distilled,
    },
    VariantRules {
        variant: ModelVariant::Ltx23Dev,
        name: "ltx-2.3-dev",
        short: "dev",
        generation: Generation::Ltx23,
        weights: Weights::Dev,
        default_pipeline: Pipeline::TwoStage,
    },
];

pub const PIPELINES: &[PipelineRules] = &[
    PipelineRules {
        pipeline: Pipeline::Distilled,
        name: "distilled",
        weights: Weights::Distilled,
        two_stage: true,
        lora_on_dev: false,
        summary: "fixed steps, no guidance, two stages (fast)",
    },
    PipelineRules {
        pipeline: Pipeline::OneStage,
        name: "one-stage",
        weights: Weights::Dev,
        two_stage: false,
        lora_on_dev: false,
        summary: "full size, guided",
    },
    PipelineRules {
        pipeline: Pipeline::TwoStage,
        name: "two-stage",
        weights: Weights::Dev,
        two_stage: true,
        lora_on_dev: true,
        summary: "guided at half size, ×2 upscale, refined with the distilled LoRA",
    },
];

impl Generation {
    pub const ALL: [Generation; 2] = [Self::Ltx2, Self::Ltx23];
    pub fn rules(self) -> &'static GenerationRules {
        GENERATIONS.iter().find(|g| g.generation == self).unwrap_or(&GENERATIONS[0])
    }
    pub fn id(self) -> &'static str {
        self.rules().id
    }
    pub fn parse(id: &str) -> Option<Self> {
        GENERATIONS.iter().find(|g| g.id == id).map(|g| g.generation)
    }
    /// The generation a checkpoint's `model_version` names: the longest matching prefix (`Some("")` or
    /// `None` → the generation of files without one); `Err` with the version for one no row knows.
    pub fn from_model_version(version: Option<&str>) -> Result<Self, String> {
        let v = version.unwrap_or("");
        GENERATIONS
            .iter()
            .filter(|g| v.starts_with(g.model_version_prefix))
            .max_by_key(|g| g.model_version_prefix.len())
            .filter(|g| !g.model_version_prefix.is_empty() || v.is_empty())
            .map(|g| g.generation)
            .ok_or_else(|| v.to_string())
    }
}

impl ModelVariant {
    pub fn rules(self) -> &'static VariantRules {
        VARIANTS.iter().find(|v| v.variant == self).unwrap_or(&VARIANTS[0])
    }
    pub fn name(self) -> &'static str {
        self.rules().name
    }
    pub fn parse(name: &str) -> Option<Self> {
        VARIANTS.iter().find(|v| v.name == name).map(|v| v.variant)
    }
    pub fn generation(self) -> &'static GenerationRules {
        self.rules().generation.rules()
    }
    /// The variant of `generation` called `short` there (`distilled`, `dev`, …).
    pub fn find(generation: Generation, short: &str) -> Option<Self> {
        VARIANTS.iter().find(|v| v.generation == generation && v.short == short).map(|v| v.variant)
    }
    /// `generation`'s variants, in table order.
    pub fn of(generation: Generation) -> impl Iterator<Item = Self> {
        VARIANTS.iter().filter(move |v| v.generation == generation).map(|v| v.variant)
    }
    /// The pipeline run when none is named.
    pub fn default_pipeline(self) -> Pipeline {
        self.rules().default_pipeline
    }
    /// The variant a pipeline runs when none is named: the first of its weights in the table.
    pub fn default_for(pipeline: Pipeline) -> Self {
        let weights = pipeline.rules().weights;
        VARIANTS.iter().find(|v| v.weights == weights).map_or(VARIANTS[0].variant, |v| v.variant)
    }
    /// The same within `generation` (`None` if it has no weights of that kind).
    pub fn default_in(generation: Generation, pipeline: Pipeline) -> Option<Self> {
        let weights = pipeline.rules().weights;
        VARIANTS.iter().find(|v| v.generation == generation && v.weights == weights).map(|v| v.variant)
    }
}

impl Pipeline {
    pub const ALL: [Pipeline; 3] = [Self::Distilled, Self::OneStage, Self::TwoStage];
    pub fn rules(self) -> &'static PipelineRules {
        PIPELINES.iter().find(|p| p.pipeline == self).unwrap_or(&PIPELINES[0])
    }
    pub fn name(self) -> &'static str {
        self.rules().name
    }
    pub fn parse(name: &str) -> Option<Self> {
        PIPELINES.iter().find(|p| p.name == name).map(|p| p.pipeline)
    }
    /// Guided sampling (negative prompt, multi-modal guidance).
    pub fn guided(self) -> bool {
        self.rules().weights == Weights::Dev
    }
    /// The sizes, frame counts and ranges this pipeline takes on `variant`'s generation.
    pub fn limits(self, variant: ModelVariant) -> Limits {
        self.limits_with(variant, Upscale::X2)
    }
    /// The same with the two-stage pipelines' upscale `upscale` (a one-stage pipeline ignores it).
    pub fn limits_with(self, variant: ModelVariant, upscale: Upscale) -> Limits {
        Limits::new(variant.generation(), self.rules().two_stage.then_some(upscale))
    }
    /// Whether it runs `variant`'s weights.
    pub fn runs(self, variant: ModelVariant) -> bool {
        self.rules().weights == variant.rules().weights
    }
    /// The steps and video guidance scale a request gets when it names none.
    pub fn defaults(self, variant: ModelVariant) -> Defaults {
        let g = variant.generation();
        if self.guided() {
            Defaults { steps: g.guided_steps, guidance_scale: g.guidance.video_cfg, fixed: false }
        } else {
            Defaults { steps: g.distilled_steps, guidance_scale: 1.0, fixed: true }
        }
    }
}

/// The values `min`, `min + step`, … up to `max` (which is on the progression): a pipeline's sides, its frame
/// counts. Made by [`Progression::from`] or [`Progression::multiples`], which keep `step` ≥ 1 and `max` ≥ `min`
/// on it (the methods rely on both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progression {
    pub min: u32,
    pub max: u32,
    pub step: u32,
}

impl Progression {
    /// The progression from the first multiple of `step` at or above `from` … up to `to` (`step` ≥ 1).
    pub fn multiples(step: u32, from: u32, to: u32) -> Self {
        let step = step.max(1);
        Self::from(from.div_ceil(step) * step, step, to)
    }

    /// `min`, `min + step`, … up to `to`.
    pub fn from(min: u32, step: u32, to: u32) -> Self {
        let step = step.max(1);
        Self { min, max: min + to.saturating_sub(min) / step * step, step }
    }

    pub fn contains(&self, v: u32) -> bool {
        (self.min..=self.max).contains(&v) && (v - self.min) % self.step == 0
    }

    /// The largest value at or below `v`.
    pub fn floor(&self, v: u32) -> Option<u32> {
        (v >= self.min).then(|| self.min + (v.min(self.max) - self.min) / self.step * self.step)
    }

    /// The smallest value at or above `v`.
    pub fn ceil(&self, v: u32) -> Option<u32> {
        (v <= self.max).then(|| self.min + v.saturating_sub(self.min).div_ceil(self.step) * self.step)
    }

    /// `v` itself when it is one, else the one or two values around it: what to suggest instead.
    pub fn nearest(&self, v: u32) -> Vec<u32> {
        let mut out: Vec<u32> = [self.floor(v), self.ceil(v)].into_iter().flatten().collect();
        out.dedup();
        out
    }

    /// `256 or 320`.
    pub fn suggest(&self, v: u32) -> String {
        self.nearest(v).iter().map(u32::to_string).collect::<Vec<_>>().join(" or ")
    }
}

/// What one generation × pipeline takes: width and height, frame counts, and the ranges of fps, steps and the
/// guidance scales. [`crate::validate`] checks requests against it; `ltxctl`'s help and the tray's presets
/// read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Width and height: multiples of the VAE's compression (× the upscaler's factor for two-stage pipelines).
    pub sides: Progression,
    /// Frame counts: k × the VAE's temporal compression + 1.
    pub frames: Progression,
    pub max_fps: u32,
    pub max_steps: u32,
    pub max_guidance: f32,
}

impl Limits {
    /// `upscale`: the two-stage pipelines' (None: one stage at full size).
    pub fn new(g: &GenerationRules, upscale: Option<Upscale>) -> Self {
        let s = g.shape;
        let multiple = s.spatial_compression * upscale.map_or(1, |u| u.ratio().0);
        Self {
            sides: Progression::multiples(multiple, s.min_side, s.max_side),
            frames: Progression::from(s.min_frames, s.temporal_compression, s.max_frames),
            max_fps: s.max_fps,
            max_steps: s.max_steps,
            max_guidance: s.max_guidance,
        }
    }
}

/// The first-frame strength when none is given: the first frame is the image.
pub const IMAGE_STRENGTH: f32 = 1.0;

/// A pipeline's request defaults on one variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    pub steps: u32,
    /// Video CFG scale (1: no guidance).
    pub guidance_scale: f32,
    /// The steps and scale are the pipeline's own and cannot be changed.
    pub fixed: bool,
}

/// Why `pipeline` does not run `variant` with these settings, as the end of "the <pipeline> pipeline …".
pub fn refusal(variant: ModelVariant, pipeline: Pipeline, steps: u32, guidance_scale: f32) -> Option<String> {
    // The same generation's variants: a request never switches generation by accident.
    let generation = variant.rules().generation;
    let names = |w: Weights| {
        VARIANTS.iter().filter(|v| v.weights == w && v.generation == generation).map(|v| v.name).collect::<Vec<_>>()
    };
    let pipelines =
        |w: Weights| PIPELINES.iter().filter(|p| p.weights == w).map(|p| p.name).collect::<Vec<_>>().join(" or ");
    if !pipeline.runs(variant) {
        return Some(match pipeline.rules().weights {
            Weights::Distilled => format!(
                "runs the distilled weights (variant {}), not {}; use --pipeline {} for {}",
                names(Weights::Distilled).join(" or "),
                variant.name(),
                pipelines(Weights::Dev),
                variant.name()
            ),
            Weights::Dev => format!(
                "runs the dev weights (guided sampling); {} is for --pipeline {}",
                variant.name(),
                pipelines(Weights::Distilled)
            ),
        });
    }
    let d = pipeline.defaults(variant);
    if d.fixed && steps != d.steps {
        return Some(format!("has a fixed {}-step schedule; got {steps} steps", d.steps));
    }
    if d.fixed && guidance_scale != d.guidance_scale {
        return Some(format!("runs without guidance (scale {}); got {guidance_scale}", d.guidance_scale));
    }
    None
}

/// Why `pipeline` cannot upscale by `upscale` on `variant`'s generation, as the end of "the <pipeline> pipeline …".
pub fn upscale_refusal(variant: ModelVariant, pipeline: Pipeline, upscale: Upscale) -> Option<String> {
    if upscale == Upscale::X2 {
        return None;
    }
    let g = variant.generation();
    if !pipeline.rules().two_stage {
        return Some(format!(
            "has one stage and no upscale; --upscale {} is for the two-stage pipelines",
            upscale.name()
        ));
    }
    if !g.upscales.contains(&upscale) {
        let have: Vec<_> = g.upscales.iter().map(|u| u.name()).collect();
        return Some(format!("on {} upscales by {} only; got --upscale {}", g.name, have.join(" or "), upscale.name()));
    }
    None
}

/// The pipelines of `g` by the size multiple they take: `[(64, "distilled, two-stage"), (32, "one-stage")]`.
fn multiples(g: &GenerationRules) -> Vec<(Progression, String)> {
    let mut out: Vec<(Progression, Vec<&str>)> = Vec::new();
    for p in PIPELINES {
        let sides = Limits::new(g, p.two_stage.then_some(Upscale::X2)).sides;
        match out.iter_mut().find(|(s, _)| *s == sides) {
            Some((_, names)) => names.push(p.name),
            None => out.push((sides, vec![p.name])),
        }
    }
    out.into_iter().map(|(s, names)| (s, names.join(", "))).collect()
}

/// `--size`'s help, from the table: each generation's multiples per pipeline and the range.
pub fn size_help() -> String {
    let lines: Vec<_> = GENERATIONS
        .iter()
        .map(|g| {
            let m = multiples(g);
            let each: Vec<_> = m.iter().map(|(s, names)| format!("of {} for {names}", s.step)).collect();
            let (lo, hi) = (g.shape.min_side, g.shape.max_side);
            format!("{}: multiples {}, from {lo} to {hi}", g.name, each.join(", "))
        })
        .collect();
    format!("WIDTHxHEIGHT. {}", lines.join("; "))
}

/// `--frames`'s help, from the table.
pub fn frames_help() -> String {
    let lines: Vec<_> = GENERATIONS
        .iter()
        .map(|g| {
            let f = Limits::new(g, None).frames;
            let secs = g.frames as f32 / g.fps as f32;
            format!(
                "{}: {}k+1 from {} to {} ({}, {}, …, {}; {} is {secs:.0} s at {} fps)",
                g.name,
                f.step,
                f.min,
                f.max,
                f.min,
                f.min + f.step,
                f.max,
                g.frames,
                g.fps
            )
        })
        .collect();
    format!("Frames. {}", lines.join("; "))
}

/// `--fps`'s help, from the table.
pub fn fps_help() -> String {
    let g = GENERATIONS[0];
    format!("Frames per second of the video, 1 to {} (default {})", g.shape.max_fps, g.fps)
}

/// `--steps`'s help, from the table.
pub fn steps_help() -> String {
    let g = GENERATIONS[0];
    format!(
        "Denoising steps (distilled: its fixed {}; otherwise default {}, 15–40 is the useful range)",
        g.distilled_steps, g.guided_steps
    )
}

/// `--guidance`'s help, from the table.
pub fn guidance_help() -> String {
    let g = GENERATIONS[0].guidance;
    format!("Video CFG scale (distilled: 1, no guidance; otherwise default {}, 3–5 is the useful range)", g.video_cfg)
}

/// The tiny decoder a generation's latents are previewed through while they denoise: TAEHV's TAELTX
/// (github.com/madebyollin/taehv, `taeltx_2` for LTX-2, `taeltx2_3` for LTX-2.3), its file in
/// [`crate::catalogue::FILES`] as `Component::PreviewDecoder(generation)`. Its weights file carries no
/// config: the layout the reference builds for it (`TAEHV(…)` when the name holds `taeltx`) is this row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewRules {
    pub generation: Generation,
    /// Channels of the latent it decodes (the generation's normalised video latent).
    pub latent_channels: u32,
    /// Its output's pixel shuffle: 3·p² channels become p×p RGB pixels.
    pub patch_size: u32,
    /// Whether each of its three stages doubles the frames (`TGrow` stride 2); the first
    /// 2^(doublings) − 1 decoded frames are dropped, so F latent frames give 8(F − 1) + 1 with all three.
    pub time_upscale: [bool; 3],
}

/// One row per generation that has a preview decoder.
pub const PREVIEWS: &[PreviewRules] = &[
    PreviewRules { generation: Generation::Ltx2, latent_channels: 128, patch_size: 4, time_upscale: [true; 3] },
    PreviewRules { generation: Generation::Ltx23, latent_channels: 128, patch_size: 4, time_upscale: [true; 3] },
];

impl Generation {
    /// Its preview decoder's layout, where it has one.
    pub fn preview(self) -> Option<&'static PreviewRules> {
        PREVIEWS.iter().find(|p| p.generation == self)
    }
}

#[cfg(test)]
mod tests;
