//! The distilled pipeline end to end on the bundled tiny model set: MP4 checked with ffprobe (frames,
//! fps, audio stream present or not), seed reproducibility to the byte, cancellation at a step
//! boundary, progress order, per-component residency, missing files, and the latent layout helpers.
mod backend;

use backend::held;
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use ltx_engine::{
    job::{CancelToken, EngineError, Generator, Job, ProgressSink},
    pipeline::{
        latents::{
            patchify_audio, patchify_video, round_half_even, unpatchify_audio, unpatchify_video, AudioLatentShape,
            AudioLayout, VideoLatentShape,
        },
        tiny::{bundle_tiny, tiny_checkpoint},
        ModelSet, Pipeline,
    },
    Backend, Compute,
};
use ltx_protocol::{FsCheck, GenerationRequest, MissingModels, ModelVariant, Part, Stage, ValidRequest};
use mlx_rs::{random, Array};

#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    cancel_at: Option<(u8, u32, CancelToken)>,
    want_previews: bool,
    previews: Vec<(u32, Vec<u8>)>,
}

impl ProgressSink for Recorder {
    fn stage(&mut self, stage: Stage) {
        self.events.push(format!("{stage}"));
    }
    fn step(&mut self, stage: Stage, step: u32, total: u32) {
        self.events.push(format!("{stage} {step}/{total}"));
        if let (Stage::Denoising(s), Some((at_stage, at_step, token))) = (&stage, &self.cancel_at) {
            if s == at_stage && step == *at_step {
                token.cancel();
            }
        }
    }
    fn wants_preview(&self) -> bool {
        self.want_previews
    }
    fn preview(&mut self, step: u32, jpeg: Vec<u8>) {
        self.previews.push((step, jpeg));
    }
}

/// The bundled tiny set and its LTX-2 distilled variant (`pipeline_parity.rs` covers LTX-2.3).
fn tiny() -> (tempfile::TempDir, ModelSet) {
    let dir = tempfile::tempdir().expect("tmp");
    bundle_tiny(&dir.path().join("models")).expect("bundle");
    let set = ModelSet::in_dir(&dir.path().join("models"), ModelVariant::Distilled);
    (dir, set)
}

fn pipeline(dir: &Path) -> Pipeline {
    Pipeline::from_dir(dir.join("models"), Compute::on(Backend::Cpu))
}

fn request(audio: bool) -> GenerationRequest {
    GenerationRequest {
        width: 128,
        height: 128,
        frames: 9,
        fps: 24,
        audio,
        ..GenerationRequest::new("a cat playing the piano")
    }
}

/// The request as the daemon hands it over: validated once.
fn valid(r: &GenerationRequest) -> ValidRequest {
    ltx_protocol::validate(r.clone(), FsCheck::Skip).expect("a valid request")
}

fn run(p: &mut Pipeline, r: &GenerationRequest, seed: u64, out: &Path, sink: &mut Recorder) -> Result<(), EngineError> {
    generate(p, r, seed, out, sink).map(|_| ())
}

/// Runs a job; the names of its timings and the components it used.
fn generate(
    p: &mut Pipeline,
    r: &GenerationRequest,
    seed: u64,
    out: &Path,
    sink: &mut Recorder,
) -> Result<(Vec<String>, Vec<String>), EngineError> {
    let cancel = sink.cancel_at.as_ref().map(|c| c.2.clone()).unwrap_or_default();
    let r = valid(r);
    // The engine writes a new file, never over an existing one: a test reusing a name removes the last run's.
    let _ = std::fs::remove_file(out);
    let job = Job { id: 1, request: &r, seed, output: out };
    // In name order, as the assertions list them.
    let used = |o: &ltx_engine::job::GenerationOutput| {
        let mut names: Vec<String> = o.used.iter().map(|p| p.name().to_string()).collect();
        names.sort();
        names
    };
    p.generate(&job, sink, &cancel)
        .map(|o| (used(&o), o.timings.into_iter().map(|t| t.0).collect()))
        .map(|(u, t)| (t, u))
}

/// `ffprobe` stream lines `codec_type,nb_frames,r_frame_rate`.
fn probe(path: &Path) -> Vec<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,nb_frames,r_frame_rate", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn expected_events(audio: bool) -> Vec<String> {
    let mut e = vec!["loading text_encoder".to_string(), "encoding prompt".into(), "loading transformer".into()];
    e.push("denoising (stage 1)".into());
    e.extend((1..=8).map(|i| format!("denoising (stage 1) {i}/8")));
    e.extend(["upscaling".into(), "loading upscaler".into(), "denoising (stage 2)".into()]);
    e.extend((1..=3).map(|i| format!("denoising (stage 2) {i}/3")));
    e.extend(["loading video_decoder".into(), "decoding video".into()]);
    if audio {
        e.extend(["loading audio_decoder".into(), "loading vocoder".into(), "decoding audio".into()]);
    }
    e.push("writing file".into());
    e
}

#[test]
fn tiny_generation_writes_a_playable_mp4_with_audio() {
    let (dir, _) = tiny();
    let mut p = pipeline(dir.path());
    let out = dir.path().join("a.mp4");
    let mut sink = Recorder::default();
    let start = Instant::now();
    let (timings, used) = generate(&mut p, &request(true), 7, &out, &mut sink).expect("generate");
    eprintln!("tiny 128x128x9 generation with audio: {:.2} s", start.elapsed().as_secs_f64());
    assert!(timings.contains(&"encode_prompt".to_string()), "{timings:?}");
    assert_eq!(probe(&out), ["video,24/1,9", "audio,0/0,9"]);
    assert_eq!(sink.events, expected_events(true));
    let components = p.components();
    let mut names: Vec<&str> = components.iter().map(|c| c.name.name()).collect();
    names.sort();
    assert_eq!(names, ["audio_decoder", "text_encoder", "transformer", "upscaler", "video_decoder", "vocoder"]);
    assert!(components.iter().all(|c| c.bytes > 0 && c.variant == ModelVariant::Distilled), "{components:?}");

    // Warm: nothing loads again; the audio switch drops the audio stream and its stage.
    let mut sink = Recorder::default();
    let (timings, used_warm) = generate(&mut p, &request(false), 7, &out, &mut sink).expect("generate");
    assert!(timings.contains(&"encode_prompt_cached".to_string()), "same prompt: a cache hit, {timings:?}");
    // What each job used, for keep-alive: the first all six, the one without audio not the audio stream's.
    assert_eq!(used, names);
    assert_eq!(used_warm, ["text_encoder", "transformer", "upscaler", "video_decoder"]);
    assert_eq!(probe(&out), ["video,24/1,9"]);
    let cold = expected_events(false);
    let warm: Vec<String> = cold.into_iter().filter(|e| !e.starts_with("loading")).collect();
    assert_eq!(sink.events, warm);
    p.unload(None);
    assert!(p.components().is_empty());
}

#[test]
fn same_request_and_seed_give_identical_bytes() {
    let (dir, _) = tiny();
    let r = request(true);
    let mut warm = pipeline(dir.path());
    let files: Vec<PathBuf> = (0..4).map(|i| dir.path().join(format!("{i}.mp4"))).collect();
    run(&mut warm, &r, 42, &files[0], &mut Recorder::default()).expect("run 0");
    run(&mut warm, &r, 42, &files[1], &mut Recorder::default()).expect("run 1");
    run(&mut pipeline(dir.path()), &r, 42, &files[2], &mut Recorder::default()).expect("cold run");
    run(&mut warm, &r, 43, &files[3], &mut Recorder::default()).expect("other seed");
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).expect("read")).collect();
    assert_eq!(bytes[0], bytes[1], "same pipeline, same seed");
    assert_eq!(bytes[0], bytes[2], "fresh pipeline, same seed");
    assert_ne!(bytes[0], bytes[3], "another seed");

    // The FP8 variant: its own checkpoint, swapped in for the bf16 one, reproducible too.
    let fp8 = GenerationRequest { variant: ModelVariant::DistilledFp8, ..r.clone() };
    let out: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("fp8-{i}.mp4"))).collect();
    run(&mut warm, &fp8, 42, &out[0], &mut Recorder::default()).expect("fp8");
    assert!(warm.components().iter().all(|c| c.variant == ModelVariant::DistilledFp8));
    run(&mut warm, &fp8, 42, &out[1], &mut Recorder::default()).expect("fp8 again");
    assert_eq!(probe(&out[0]), ["video,24/1,9", "audio,0/0,9"]);
    let (a, b) = (std::fs::read(&out[0]).expect("read"), std::fs::read(&out[1]).expect("read"));
    assert_eq!(a, b);
    assert_ne!(a, bytes[0], "fp8 weights differ from the f32 ones");
}

#[test]
fn cancellation_stops_at_the_next_step_boundary() {
    let (dir, _) = tiny();
    let mut p = pipeline(dir.path());
    let out = dir.path().join("c.mp4");
    let mut sink = Recorder { cancel_at: Some((1, 2, CancelToken::new())), ..Default::default() };
    let start = Instant::now();
    assert_eq!(run(&mut p, &request(true), 1, &out, &mut sink), Err(EngineError::Cancelled));
    assert!(start.elapsed().as_secs() < 10);
    assert_eq!(sink.events.last().map(String::as_str), Some("denoising (stage 1) 2/8"));
    assert!(!out.exists());
    // Cancelled before anything runs, and the pipeline still works afterwards.
    let token = CancelToken::new();
    token.cancel();
    let job = Job { id: 2, request: &valid(&request(false)), seed: 1, output: &out };
    assert_eq!(p.generate(&job, &mut Recorder::default(), &token).err(), Some(EngineError::Cancelled));
    run(&mut p, &request(false), 1, &out, &mut Recorder::default()).expect("after cancel");
}

#[test]
fn missing_files_are_model_not_installed_with_the_path() {
    let (dir, set) = tiny();
    let models = dir.path().join("models");
    std::fs::remove_file(&set.upscaler).expect("rm");
    let mut p = pipeline(dir.path());
    let out = dir.path().join("m.mp4");
    let refusal = |dir: &Path, missing: &[&str]| {
        EngineError::ModelNotInstalled(MissingModels {
            dir: dir.to_path_buf(),
            missing: missing.iter().map(|m| m.to_string()).collect(),
            command: "ltxctl models pull distilled".into(),
        })
    };
    let upscaler = ltx_protocol::catalogue::file_of(ltx_protocol::catalogue::Component::SpatialUpscaler(
        ltx_protocol::Generation::Ltx2,
        ltx_protocol::Upscale::X2,
    ))
    .unwrap()
    .local;
    let want = refusal(&models, &[upscaler]);
    assert_eq!(run(&mut p, &request(true), 1, &out, &mut Recorder::default()), Err(want.clone()));
    assert_eq!(p.load(ModelVariant::Distilled), Err(want.clone()));
    // The preflight gives the same refusal (it used to skip its estimate silently).
    assert_eq!(p.preflight(&valid(&request(true))).err(), Some(want));
    std::fs::remove_file(set.tokenizer()).expect("rm");
    let tokenizer = format!("{}/tokenizer.json", ltx_protocol::catalogue::GEMMA_DIR);
    let want = refusal(&models, &[upscaler, &tokenizer]);
    assert_eq!(run(&mut p, &request(true), 1, &out, &mut Recorder::default()), Err(want));
    let nowhere = dir.path().join("nowhere");
    let mut empty = Pipeline::from_dir(&nowhere, Compute::on(Backend::Cpu));
    let err = run(&mut empty, &request(true), 1, &out, &mut Recorder::default()).unwrap_err();
    let EngineError::ModelNotInstalled(m) = &err else { panic!("{err:?}") };
    assert_eq!(
        (m.dir.as_path(), m.missing[0].as_str()),
        (nowhere.as_path(), ltx_protocol::catalogue::checkpoint(ModelVariant::Distilled))
    );
    assert_eq!(
        m.missing.len(),
        ltx_protocol::catalogue::needs(ModelVariant::Distilled, ltx_protocol::Pipeline::Distilled).len()
    );
    assert_eq!(err.code(), "model_not_installed");
}

#[test]
fn invalid_requests_cannot_reach_the_engine() {
    // The engine takes only a `ValidRequest`: what it refused itself before is refused by the one validation.
    for r in [GenerationRequest { width: 96, ..request(true) }, GenerationRequest { frames: 10, ..request(true) }] {
        assert!(ltx_protocol::validate(r, FsCheck::Skip).is_err());
    }
    let dev = GenerationRequest { variant: ModelVariant::Dev, ..request(true) };
    let err = ltx_protocol::validate(dev, FsCheck::Skip).unwrap_err();
    assert!(
        err.to_string().contains("distilled pipeline runs the distilled weights (variant distilled or distilled-fp8)"),
        "{err}"
    );
    let guided = GenerationRequest { pipeline: ltx_protocol::Pipeline::TwoStage, ..request(true) };
    let err = ltx_protocol::validate(guided, FsCheck::Skip).unwrap_err();
    assert!(
        err.to_string().contains("two-stage pipeline runs the dev weights (guided sampling); distilled is"),
        "{err}"
    );
}

/// A small PNG (a gradient) as a client would send it.
fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("png");
    out.into_inner()
}

/// Every pipeline with each variant it runs, text- and image-to-video, audio on and off: a playable MP4
/// with the right streams, the expected step counts per stage, and JPEG previews while wanted.
#[test]
fn every_pipeline_and_variant_writes_a_playable_mp4() {
    use ltx_protocol::{ImageInput, Pipeline as Kind};
    let (dir, _) = tiny();
    let mut p = pipeline(dir.path());
    let image = Some(ImageInput { name: "first.png".into(), bytes: png(50, 40), strength: 1.0 });
    let cases = [
        (Kind::Distilled, ModelVariant::Distilled, 8, None, true),
        (Kind::Distilled, ModelVariant::DistilledFp8, 8, image.clone(), false),
        (Kind::OneStage, ModelVariant::Dev, 2, None, true),
        (Kind::OneStage, ModelVariant::Dev, 2, image.clone(), true),
        (Kind::TwoStage, ModelVariant::Dev, 3, image.clone(), false),
    ];
    for (i, (pipeline, variant, steps, image, audio)) in cases.into_iter().enumerate() {
        let what = format!("{} / {} / image {} / audio {audio}", pipeline.name(), variant.name(), image.is_some());
        let guided = pipeline != Kind::Distilled;
        let r = GenerationRequest {
            pipeline,
            variant,
            steps,
            guidance_scale: if guided { 3.0 } else { 1.0 },
            image: image.clone(),
            ..request(audio)
        };
        let out = dir.path().join(format!("case{i}.mp4"));
        let mut rec = Recorder { want_previews: i == 0, ..Recorder::default() };
        run(&mut p, &r, 7, &out, &mut rec).unwrap_or_else(|e| panic!("{what}: {e}"));
        let streams = probe(&out);
        assert_eq!(streams.iter().any(|s| s.starts_with("audio")), audio, "{what}: {streams:?}");
        assert!(streams.iter().any(|s| s == "video,24/1,9"), "{what}: {streams:?}");
        let last_step = |stage: u8| {
            rec.events.iter().rev().find(|e| e.starts_with(&format!("denoising (stage {stage}) "))).cloned()
        };
        assert_eq!(last_step(1), Some(format!("denoising (stage 1) {steps}/{steps}")), "{what}");
        let two_stage = pipeline != Kind::OneStage;
        assert_eq!(last_step(2), two_stage.then(|| "denoising (stage 2) 3/3".to_string()), "{what}");
        assert_eq!(rec.events.iter().any(|e| e == "encoding image"), image.is_some(), "{what}");
        if i == 0 {
            assert_eq!(rec.previews.len(), 8 + 3, "one preview per step");
            assert!(rec.previews.iter().all(|(_, j)| j.starts_with(&[0xff, 0xd8, 0xff])), "JPEG previews");
            let img = image::load_from_memory(&rec.previews[10].1).expect("decodable");
            assert_eq!((img.width(), img.height()), (128, 128), "stage-2 previews at full size");
        } else {
            assert!(rec.previews.is_empty());
        }
    }
    // Image bytes that are not an image (a PNG header of 64x64, which the submit check reads, then nothing
    // decodable): a clear error, nothing loaded beyond what was resident.
    let bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x40\0\0\0\x40not really".to_vec();
    let bad =
        GenerationRequest { image: Some(ImageInput { name: "x.png".into(), bytes, strength: 1.0 }), ..request(false) };
    let err = run(&mut p, &bad, 1, &dir.path().join("bad.mp4"), &mut Recorder::default()).unwrap_err();
    assert_eq!(err.code(), "invalid_image", "{err}");
}

#[test]
fn ltx_generate_bundles_and_generates() {
    let dir = tempfile::tempdir().expect("tmp");
    let exe = env!("CARGO_BIN_EXE_ltx-generate");
    let models = dir.path().join("models");
    let ok = Command::new(exe).arg("bundle-tiny").arg(&models).output().expect("bundle-tiny");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let out = dir.path().join("g.mp4");
    let status = Command::new(exe)
        .args(["--prompt", "waves", "--width", "64", "--height", "128", "--frames", "17", "--fps", "25", "--seed", "3"])
        .arg("--models")
        .arg(&models)
        .arg("--out")
        .arg(&out)
        .arg("--no-audio")
        .env("LTX_DEVICE", "cpu")
        .output()
        .expect("generate");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(probe(&out), ["video,25/1,17"]);
    let bad = Command::new(exe).args(["--models", "/nonexistent", "--prompt", "x"]).output().expect("run");
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("model files missing from /nonexistent: ltx-2-19b-distilled.safetensors, "), "{stderr}");
}

#[test]
fn load_makes_every_component_resident() {
    let (dir, _) = tiny();
    let mut p = pipeline(dir.path());
    p.load(ModelVariant::Distilled).expect("load");
    assert_eq!(p.components().len(), 6);
    p.unload(Some(ModelVariant::Dev));
    assert_eq!(p.components().len(), 6);
    // One component at a time; the variant goes with its last one.
    p.unload_component(ModelVariant::Distilled, Part::Vocoder);
    p.unload_component(ModelVariant::Dev, Part::Transformer);
    let parts: Vec<Part> = p.components().into_iter().map(|c| c.name).collect();
    let mut names: Vec<&str> = parts.iter().map(|p| p.name()).collect();
    names.sort();
    assert_eq!(names, ["audio_decoder", "text_encoder", "transformer", "upscaler", "video_decoder"]);
    for part in parts {
        p.unload_component(ModelVariant::Distilled, part);
    }
    assert!(p.components().is_empty());
    p.load(ModelVariant::Distilled).expect("load");
    p.unload(Some(ModelVariant::Distilled));
    assert!(p.components().is_empty());
}

#[test]
fn tiny_bundle_is_deterministic_and_self_consistent() {
    for v in [ModelVariant::Distilled, ModelVariant::DistilledFp8] {
        assert_eq!(tiny_checkpoint(v).expect("a"), tiny_checkpoint(v).expect("b"));
    }
    let (_dir, set) = tiny();
    let ck = ltx_engine::Checkpoint::open(&set.checkpoint).expect("open");
    let config = ck.config().expect("config");
    let audio = AudioLayout::from_config(&config.audio_vae().expect("audio"));
    let raw = config.raw("transformer").expect("transformer");
    assert_eq!(raw["in_channels"].as_u64(), Some(config.vae().expect("vae").latent_channels as u64));
    assert_eq!(raw["audio_in_channels"].as_u64(), Some((audio.channels * audio.mel_bins) as u64));
}

#[test]
fn latent_layout_matches_ltx_core() {
    // AudioLatentShape.from_video_pixel_shape: Python's round (half to even) of frames / fps · 25.
    assert_eq!(
        [round_half_even(2.5), round_half_even(3.5), round_half_even(-0.5), round_half_even(1.4)],
        [2.0, 4.0, -0.0, 1.0]
    );
    let ltx2 = AudioLayout { channels: 8, mel_bins: 16, latents_per_second: 25.0 };
    assert_eq!(ltx2.shape(121, 24.0), AudioLatentShape { channels: 8, frames: 126, mel_bins: 16 });
    // (frames, fps) -> latent frames as ltx-core 1.0.0 computes them.
    for (frames, fps, want) in [
        (121, 24, 126),
        (9, 24, 9),
        (1, 50, 0),
        (3, 50, 2),
        (97, 25, 97),
        (121, 30, 101),
        (161, 24, 168),
        (49, 12, 102),
    ] {
        assert_eq!(ltx2.shape(frames, fps as f64).frames, want, "{frames} frames at {fps} fps");
    }
    assert_eq!(
        VideoLatentShape::from_pixels(128, 121, 512, 768),
        VideoLatentShape { channels: 128, frames: 16, height: 16, width: 24 }
    );

    // Patchifiers: `b c f h w -> b (f h w) c` and `b c t f -> b t (c f)`, and back.
    let v = VideoLatentShape { channels: 3, frames: 2, height: 2, width: 3 };
    let x = random::normal::<f32>(&v.dims(), None, None, &random::key(0).expect("key")).expect("randn");
    let t = patchify_video(&x).expect("patchify");
    assert_eq!(t.shape(), [1, 12, 3]);
    let at = |a: &Array, i: &[i32]| -> f32 {
        let mut s = a.clone();
        for &k in i {
            s = s.take_axis(Array::from_int(k), 0).expect("take");
        }
        s.item_exact::<f32>()
    };
    // token (f=1, h=0, w=2) = 1·6 + 0·3 + 2 = 8, channel 2.
    assert_eq!(at(&t, &[0, 8, 2]), at(&x, &[0, 2, 1, 0, 2]));
    assert_eq!(unpatchify_video(&t, &v).expect("un").contiguous().expect("c").as_slice::<f32>(), x.as_slice::<f32>());
    let a = AudioLatentShape { channels: 2, frames: 3, mel_bins: 4 };
    let y = random::normal::<f32>(&a.dims(), None, None, &random::key(1).expect("key")).expect("randn");
    let ty = patchify_audio(&y).expect("patchify");
    assert_eq!(ty.shape(), [1, 3, 8]);
    assert_eq!(at(&ty, &[0, 2, 5]), at(&y, &[0, 1, 2, 1]));
    assert_eq!(unpatchify_audio(&ty, &a).expect("un").contiguous().expect("c").as_slice::<f32>(), y.as_slice::<f32>());
}

#[test]
fn low_memory_plan_gives_the_same_bytes_and_tiled_decode_streams_every_frame() {
    let (dir, _) = tiny();
    let r = request(true);
    let files: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("lm-{i}.mp4"))).collect();
    run(&mut pipeline(dir.path()), &r, 5, &files[0], &mut Recorder::default()).expect("normal");
    let mut low = pipeline(dir.path()).with_low_memory(true);
    run(&mut low, &r, 5, &files[1], &mut Recorder::default()).expect("low memory");
    assert_eq!(std::fs::read(&files[0]).expect("a"), std::fs::read(&files[1]).expect("b"));
    let mut names: Vec<&str> = low.components().into_iter().map(|c| c.name.name()).collect();
    names.sort();
    assert_eq!(names, ["audio_decoder", "text_encoder", "video_decoder", "vocoder"], "denoisers dropped");
    let mut tiled = pipeline(dir.path()).with_decode_budget(Some(1));
    run(&mut tiled, &r, 5, &files[2], &mut Recorder::default()).expect("tiled");
    assert_eq!(probe(&files[2]), ["video,24/1,9", "audio,0/0,9"]);
}

#[test]
fn bundle_tiny_replaces_a_planted_link_instead_of_writing_through_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").expect("victim");
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).expect("models");
    let checkpoint = ModelSet::in_dir(&models, ModelVariant::Distilled).checkpoint;
    std::os::unix::fs::symlink(&victim, &checkpoint).expect("plant");
    bundle_tiny(&models).expect("bundle");
    assert_eq!(held(&victim), "precious", "bundle_tiny wrote through the link");
    assert!(std::fs::symlink_metadata(&checkpoint).expect("checkpoint").is_file());
}
