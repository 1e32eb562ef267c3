use super::*;
use ltx_protocol::{GenerationRequest, ModelVariant, Pipeline};

/// A made-up machine: ms per token × step of stage 1 and stage 2, per token of video decode, a prompt and a
/// transformer load.
struct Machine {
    step: f64,
    step2: f64,
    decode: f64,
    prompt: u64,
    load: u64,
}

const M: Machine = Machine { step: 0.5, step2: 0.8, decode: 1.5, prompt: 300, load: 2000 };

fn request(pipeline: Pipeline, w: u32, h: u32, frames: u32, steps: u32) -> GenerationRequest {
    let variant = ModelVariant::default_for(pipeline);
    let mut r = GenerationRequest::for_pipeline("x", variant, pipeline);
    (r.width, r.height, r.frames, r.steps, r.audio) = (w, h, frames, steps, false);
    r
}

/// What the job's events are on machine `m`, with the transformer loaded first when `cold`: (event, time).
fn timeline(m: &Machine, r: &GenerationRequest, cold: bool) -> (Vec<(Stage, u32, u32, u64)>, u64) {
    let s = Shape::of(r);
    let mut t = 0u64;
    let mut ev = Vec::new();
    if cold {
        ev.push((Stage::LoadingComponent("transformer".into()), 0, 0, t));
        t += m.load;
    }
    ev.push((Stage::EncodingPrompt, 0, 0, t));
    t += m.prompt;
    let stage = |n: u8, steps: u32, ms: f64, ev: &mut Vec<_>, t: &mut u64| {
        ev.push((Stage::Denoising(n), 0, 0, *t));
        for k in 1..=steps {
            *t += ms.round() as u64;
            ev.push((Stage::Denoising(n), k, steps, *t));
        }
    };
    stage(1, s.steps1, m.step * s.stage1, &mut ev, &mut t);
    if s.steps2 > 0 {
        ev.push((Stage::Upscaling, 0, 0, t));
        t += (0.2 * s.stage1) as u64;
        stage(2, s.steps2, m.step2 * s.full, &mut ev, &mut t);
    }
    ev.push((Stage::DecodingVideo, 0, 0, t));
    t += (m.decode * s.full) as u64;
    ev.push((Stage::WritingFile, 0, 0, t));
    t += (0.1 * s.full) as u64;
    (ev, t)
}

/// Runs a job through a tracker: each event's ETA beside the real time left, and the stage timeline.
fn drive(tr: &mut Tracker, ev: &[(Stage, u32, u32, u64)], end: u64) -> Vec<(Stage, u32, Option<Eta>, u64)> {
    ev.iter()
        .map(|(stage, step, total, t)| {
            let eta = if *total == 0 { tr.stage(stage, *t) } else { tr.step(stage, *step, *total, *t) };
            (stage.clone(), *step, eta, end - t)
        })
        .collect()
}

fn sample(m: &Machine, r: GenerationRequest, cold: bool) -> Sample {
    let (ev, end) = timeline(m, &r, cold);
    let mut tr = Tracker::new(&r, &[], &[]);
    drive(&mut tr, &ev, end);
    let stages = tr.finish(end);
    Sample::new(&r, stages)
}

fn error(eta: &Eta, real: u64) -> f64 {
    (eta.remaining_ms as f64 - real as f64).abs() / real as f64
}

#[test]
fn the_timeline_is_each_stage_until_the_next_with_its_steps() {
    let r = request(Pipeline::OneStage, 256, 256, 9, 3);
    let s = sample(&M, r, true);
    let history = History::new(vec![s.clone(); HISTORY as usize + 5]);
    history.add(s.clone());
    assert_eq!(history.samples().len(), HISTORY as usize, "the newest kept");
    let names: Vec<_> = s.stages.iter().map(|s| (s.stage.as_str(), s.steps)).collect();
    assert_eq!(
        names,
        [
            ("loading:transformer", 0),
            ("encoding_prompt", 0),
            ("denoising:1", 3),
            ("decoding_video", 0),
            ("writing_file", 0)
        ]
    );
    // 256×256×9: 2 latent frames × 8 × 8 = 128 tokens; 3 steps of 64 ms.
    assert_eq!(s.stages[2].ms, 192);
    assert_eq!(s.stages.iter().map(|s| s.ms).sum::<u64>(), 2000 + 300 + 192 + 192 + 12);
}

#[test]
fn with_an_empty_history_the_own_steps_give_the_eta_and_the_prior_the_rest() {
    let r = request(Pipeline::OneStage, 512, 384, 49, 20);
    let (ev, end) = timeline(&M, &r, false);
    let mut tr = Tracker::new(&r, &[], &[]);
    let seen = drive(&mut tr, &ev, end);
    // Nothing to go by before the first step.
    assert!(seen.iter().take_while(|(_, step, ..)| *step == 0).all(|(_, _, eta, _)| eta.is_none()), "{seen:?}");
    let first = seen.iter().find(|(_, step, ..)| *step == 1).and_then(|s| s.2).expect("an ETA at step 1");
    assert!(first.remaining_ms > 0 && !first.measured, "{first:?}");
    let second = seen.iter().find(|(_, step, ..)| *step == 2).and_then(|s| s.2).expect("an ETA at step 2");
    assert!(second.measured, "two steps confirm it");
    // From step 3 on the ETA is within 25 % (the made-up machine decodes in 3 steps' time, the prior says 3.5).
    let from_step_3 = seen.iter().filter(|(s, step, ..)| matches!(s, Stage::Denoising(_)) && *step >= 3);
    for (stage, step, eta, real) in from_step_3 {
        let eta = eta.unwrap_or_else(|| panic!("{stage} {step}: no ETA"));
        assert!(error(&eta, *real) < 0.25, "{stage} {step}: {eta:?} vs {real} ms");
    }
}

#[test]
fn a_size_and_step_count_never_seen_are_scaled_from_the_history() {
    let history: Vec<Sample> = [(256, 256, 9, 8), (512, 256, 17, 12), (384, 256, 25, 30)]
        .into_iter()
        .map(|(w, h, f, s)| sample(&M, request(Pipeline::OneStage, w, h, f, s), false))
        .collect();
    let r = request(Pipeline::OneStage, 640, 384, 33, 18);
    let (ev, end) = timeline(&M, &r, false);
    let mut tr = Tracker::new(&r, &history, &[]);
    let seen = drive(&mut tr, &ev, end);
    for (stage, step, eta, real) in &seen {
        let eta = eta.unwrap_or_else(|| panic!("{stage} {step}: no ETA with a history"));
        assert_eq!(
            eta.measured,
            *step >= 2 || !matches!(stage, Stage::Denoising(_) | Stage::EncodingPrompt),
            "{stage} {step}"
        );
        if *real > 0 {
            // The made-up machine is linear in tokens and steps: only rounding is left.
            assert!(error(&eta, *real) < 0.05, "{stage} {step}: {eta:?} vs {real} ms");
        }
    }
}

#[test]
fn the_two_stage_pipeline_counts_both_stages_and_the_upscale() {
    let history = vec![sample(&M, request(Pipeline::Distilled, 512, 512, 25, 8), false)];
    let r = request(Pipeline::Distilled, 768, 512, 49, 8);
    let (ev, end) = timeline(&M, &r, false);
    let mut tr = Tracker::new(&r, &history, &[]);
    let seen = drive(&mut tr, &ev, end);
    let before = seen[0].2.expect("an estimate before any step");
    assert!(!before.measured && error(&before, seen[0].3) < 0.02, "{before:?} vs {}", seen[0].3);
    let stage2 = seen.iter().find(|(s, step, ..)| *s == Stage::Denoising(2) && *step == 1).expect("stage 2");
    assert!(error(&stage2.2.expect("ETA"), stage2.3) < 0.02, "{stage2:?}");
}

#[test]
fn a_load_counts_only_when_the_component_is_not_resident() {
    let history = vec![sample(&M, request(Pipeline::OneStage, 256, 256, 9, 8), true)];
    let r = request(Pipeline::OneStage, 256, 256, 9, 8);
    let cold = Tracker::new(&r, &history, &[]).stage(&Stage::LoadingComponent("transformer".into()), 0);
    let warm = Tracker::new(&r, &history, &["transformer"]).stage(&Stage::EncodingPrompt, 0);
    let (cold, warm) = (cold.expect("ETA").remaining_ms, warm.expect("ETA").remaining_ms);
    assert_eq!(cold - warm, 2000, "the load");
}

#[test]
fn jobs_alike_count_before_others() {
    // The same size on a variant twice as slow, and a few alike jobs.
    let slow = Machine { step: 1.0, ..M };
    let mut history = vec![sample(&slow, request(Pipeline::Distilled, 512, 512, 25, 8), false)];
    history.push(sample(&M, request(Pipeline::OneStage, 512, 512, 25, 8), false));
    let r = request(Pipeline::OneStage, 512, 512, 25, 10);
    let (ev, end) = timeline(&M, &r, false);
    let seen = drive(&mut Tracker::new(&r, &history, &[]), &ev, end);
    assert!(error(&seen[0].2.expect("ETA"), seen[0].3) < 0.02, "{:?}", seen[0]);
}

#[test]
fn stored_stage_times_read_back() {
    let st = StageTime { stage: "denoising:1".into(), ms: 12, steps: 3 };
    let text = serde_json::to_string(&st).unwrap();
    assert_eq!(text, r#"{"stage":"denoising:1","ms":12,"steps":3}"#);
    let old: StageTime = serde_json::from_str(r#"{"stage":"upscaling","ms":5}"#).unwrap();
    assert_eq!(old.steps, 0);
}
