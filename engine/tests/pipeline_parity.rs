//! The pipelines' sampling against ltx-pipelines 1.0.0 on the bundled tiny model set, for every generation:
//! LTX-2 (`goldens.safetensors`, `guided.safetensors`) and LTX-2.3 (`goldens23`, `guided23`: the gated
//! transformer with cross-attention AdaLN, contexts at the streams' widths). Goldens from
//! `engine/goldens/pipeline_goldens.py` and `pipelines_goldens.py` (the A/V AdaLN of ltx-core 1.2.0 grafted,
//! see `engine/goldens/README.md`) with recorded noise and contexts. Tolerance: 1e-4 of the largest value.
use std::path::PathBuf;

use ltx_engine::{
    job::{CancelToken, ProgressSink},
    pipeline::{
        conditioning::{encode_first_frame, Pixels},
        latents::{AudioLatentShape, Noiser, VideoLatentShape},
        sample::{sample_one_stage, sample_two_stage, FirstFrame, Guided, Sampling, Shapes, Stage1},
        tiny::bundle_tiny,
        Components, ModelSet,
    },
    sampling::{ltx2_sigmas, GuiderParams, DISTILLED_SIGMAS},
    Backend, Compute,
};
use ltx_protocol::{ModelVariant, Stage};
use mlx_rs::Array;

/// (goldens suffix, distilled variant, dev variant) per generation.
const GENERATIONS: [(&str, ModelVariant, ModelVariant); 2] =
    [("", ModelVariant::Distilled, ModelVariant::Dev), ("23", ModelVariant::Ltx23Distilled, ModelVariant::Ltx23Dev)];

fn goldens(name: &str) -> std::collections::HashMap<String, Array> {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/pipeline/{name}.safetensors"));
    Array::load_safetensors(&path).expect("goldens")
}

fn tiny() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    bundle_tiny(&dir.path().join("models")).expect("bundle");
    dir
}

/// A recorder that keeps the events' text.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
}

impl ProgressSink for Recorder {
    fn stage(&mut self, stage: Stage) {
        self.events.push(format!("{stage}"));
    }
    fn step(&mut self, stage: Stage, step: u32, total: u32) {
        self.events.push(format!("{stage} {step}/{total}"));
    }
    fn wants_preview(&self) -> bool {
        false
    }
    fn preview(&mut self, _step: u32, _jpeg: Vec<u8>) {}
}

fn assert_close(got: &Array, want: &Array, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let got = got.contiguous().expect("contiguous");
    let (got, want) = (got.as_slice::<f32>().to_vec(), want.as_slice::<f32>());
    let err = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
    eprintln!("{what}: max |Δ| {err:.2e} of max |x| {scale:.2}");
    assert!(err <= 1e-4 * scale.max(1.0), "{what}: max |Δ| {err} vs {scale}");
}

fn tiny_shapes(one_stage: bool) -> Shapes {
    let full = VideoLatentShape::from_pixels(8, 9, 128, 128);
    Shapes {
        upscale: ltx_protocol::Upscale::X2,
        stage1: if one_stage { full } else { VideoLatentShape::from_pixels(8, 9, 64, 64) },
        stage2: full,
        audio: AudioLatentShape { channels: 1, frames: 9, mel_bins: 16 },
        fps: 24.0,
    }
}

/// Goldens from `engine/goldens/pipeline_goldens.py`: ltx-pipelines' two-stage distilled sampling on
/// the bundled tiny model set with recorded noise and contexts. Tolerance: 1e-4 of the largest value.
#[test]
fn two_stage_sampling_matches_ltx_pipelines() {
    for (suffix, distilled, _) in GENERATIONS {
        two_stage_sampling(suffix, distilled);
    }
}

fn two_stage_sampling(suffix: &str, variant: ModelVariant) {
    two_stage_sampling_with(suffix, variant, tiny_shapes(false));
}

/// LTX-2.3's ×1.5 upscaler between the stages: stage 1 at 2×2 latent cells (64 px), stage 2 at 3×3 (96 px).
#[test]
fn two_stage_sampling_with_the_x1_5_upscaler_matches() {
    let shapes = Shapes {
        upscale: ltx_protocol::Upscale::X1_5,
        stage1: VideoLatentShape::from_pixels(8, 9, 64, 64),
        stage2: VideoLatentShape::from_pixels(8, 9, 96, 96),
        ..tiny_shapes(false)
    };
    two_stage_sampling_with("23_x15", ModelVariant::Ltx23Distilled, shapes);
}

fn two_stage_sampling_with(suffix: &str, variant: ModelVariant, shapes: Shapes) {
    let g = goldens(&format!("goldens{suffix}"));
    let dir = tiny();
    let set = ModelSet::in_dir(&dir.path().join("models"), variant);
    let mut c = Components::new(set, Compute::on(Backend::Cpu), 16);
    let noise = ["noise_video_1", "noise_audio_1", "noise_video_2", "noise_audio_2"].map(|k| g[k].clone()).to_vec();
    let mut noiser = Noiser::given(0, noise);
    let s = Sampling {
        shapes,
        contexts: (&g["video_context"], &g["audio_context"]),
        stage1: Stage1 { sigmas: DISTILLED_SIGMAS.to_vec(), guided: None },
        first_frame: [None, None],
    };
    let mut rec = Recorder::default();
    let (video, audio) =
        sample_two_stage(&mut c, &s, false, &mut noiser, &mut rec, &CancelToken::new(), &mut Vec::new(), None)
            .expect("sample");
    assert_close(&video, &g["video"], &format!("{} video", variant.name()));
    assert_close(&audio, &g["audio"], &format!("{} audio", variant.name()));
}

/// Goldens from `engine/goldens/pipelines_goldens.py` (ltx-pipelines 1.0.0 on the tiny model set, recorded
/// noise and contexts): the one-stage guided sampling (CFG, STG on block 1, rescale, modality guidance), the
/// two-stage dev flow (guided stage 1, upscale, stage 2 with the distilled LoRA — the reference fuses it,
/// the engine attaches it at run time), and image-to-video (first-frame image resized, cropped and encoded
/// here, strength 0.8, both stages). Tolerance: 1e-4 of the largest value.
#[test]
fn guided_pipelines_and_image_to_video_match_ltx_pipelines() {
    for (suffix, _, dev) in GENERATIONS {
        guided_and_image_to_video(suffix, dev);
    }
}

fn guided_and_image_to_video(suffix: &str, variant: ModelVariant) {
    let g = goldens(&format!("guided{suffix}"));
    let dir = tiny();
    let set = ModelSet::in_dir(&dir.path().join("models"), variant);
    let mut c = Components::new(set, Compute::on(Backend::Cpu), 16);
    let noise = |run: &str, stages: usize| {
        let keys = ["noise_video_1", "noise_audio_1", "noise_video_2", "noise_audio_2"];
        Noiser::given(0, keys[..2 * stages].iter().map(|k| g[&format!("{run}.{k}")].clone()).collect())
    };
    let guided = || {
        let (mut video, mut audio) = (GuiderParams::ltx2_video(), GuiderParams::ltx2_audio());
        (video.stg_blocks, audio.stg_blocks) = (vec![1], vec![1]);
        Some(Guided { video_negative: &g["video_negative"], audio_negative: &g["audio_negative"], video, audio })
    };
    let contexts = (&g["video_context"], &g["audio_context"]);
    let cancel = CancelToken::new();

    let mut rec = Recorder::default();
    let s = Sampling {
        shapes: tiny_shapes(true),
        contexts,
        stage1: Stage1 { sigmas: ltx2_sigmas(3, None), guided: guided() },
        first_frame: [None, None],
    };
    let (v, a) = sample_one_stage(&mut c, &s, &mut noise("one_stage", 1), &mut rec, &cancel, &mut Vec::new(), None)
        .expect("one-stage");
    assert_close(&v, &g["one_stage.video"], &format!("{} one-stage video", variant.name()));
    assert_close(&a, &g["one_stage.audio"], &format!("{} one-stage audio", variant.name()));
    let steps: Vec<_> = rec.events.iter().filter(|e| e.starts_with("denoising")).cloned().collect();
    assert_eq!(
        steps,
        ["denoising (stage 1)", "denoising (stage 1) 1/3", "denoising (stage 1) 2/3", "denoising (stage 1) 3/3"]
    );

    let s =
        Sampling { shapes: tiny_shapes(false), stage1: Stage1 { sigmas: ltx2_sigmas(3, None), guided: guided() }, ..s };
    let mut noiser = noise("two_stage", 2);
    let (v, a) =
        sample_two_stage(&mut c, &s, true, &mut noiser, &mut rec, &cancel, &mut Vec::new(), None).expect("two-stage");
    assert_close(&v, &g["two_stage.video"], &format!("{} two-stage video", variant.name()));
    assert_close(&a, &g["two_stage.audio"], &format!("{} two-stage audio", variant.name()));
    let model = c.transformer.as_ref().expect("resident");
    let attached =
        model.transformer_blocks.iter().flat_map(|b| [&b.attn1.to_q, &b.ff.net.out]).any(|l| l.lora.is_some());
    assert!(!attached, "the LoRA must be detached after stage 2");

    let image = g["image"].as_dtype(mlx_rs::Dtype::Uint8).expect("u8");
    let pixels = Pixels { width: 70, height: 50, rgb: image.as_slice::<u8>().to_vec() };
    let encoder = c.ensure_video_encoder(&mut rec).expect("encoder").clone();
    let first = |size: usize| FirstFrame {
        latent: encode_first_frame(&encoder, &pixels, size, size).expect("encode"),
        strength: 0.8,
    };
    let s = Sampling {
        stage1: Stage1 { sigmas: DISTILLED_SIGMAS.to_vec(), guided: None },
        first_frame: [Some(first(64)), Some(first(128))],
        ..s
    };
    let (v, a) = sample_two_stage(&mut c, &s, false, &mut noise("i2v", 2), &mut rec, &cancel, &mut Vec::new(), None)
        .expect("i2v");
    assert_close(&v, &g["i2v.video"], &format!("{} image-to-video video", variant.name()));
    assert_close(&a, &g["i2v.audio"], &format!("{} image-to-video audio", variant.name()));
}
