//! Sampling parity with ltx-core / ltx-pipelines 1.0.0 (goldens from
//! `engine/goldens/transformer_goldens.py`): sigma schedules, the Euler loop over the distilled sigmas
//! with injected noise and an i2v mask, and one fully guided step (CFG + STG + modality + rescale).
//! Error: `max|got - want| / max|want|`; tolerance 1e-4 unless stated.
mod backend;

use std::{collections::HashMap, ops::ControlFlow, path::PathBuf};

use ltx_engine::{
    checkpoint::Checkpoint,
    sampling::{
        euler_loop, guidance::Contexts, guided_denoise, ltx2_sigmas, GuiderParams, LatentState, LoopEnd,
        DISTILLED_SIGMAS, STAGE_2_DISTILLED_SIGMAS,
    },
    transformer::{LtxModel, Modality, Perturbations},
};
use mlx_rs::{ops, Array, Dtype};

const TOL: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transformer").join(name)
}

fn goldens() -> HashMap<String, Array> {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    Checkpoint::open(fixture("goldens.safetensors")).and_then(|c| c.tensors_with_prefix("")).expect("goldens")
}

fn values(a: &Array) -> Vec<f32> {
    let a = ops::reshape(a.as_dtype(Dtype::Float32).expect("cast"), &[-1]).expect("flat");
    a.eval().expect("eval");
    a.as_slice::<f32>().to_vec()
}

fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "length");
    let num = got.iter().zip(want).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
    num / want.iter().map(|b| b.abs() as f64).fold(0.0, f64::max)
}

fn check(got: &Array, want: &Array, tol: f64, what: &str) {
    let tol = backend::tol(tol);
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let e = rel_err(&values(got), &values(want));
    eprintln!("{what}: rel err {e:.2e}");
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
}

fn model() -> LtxModel {
    LtxModel::from_checkpoint(&fixture("tiny_av.safetensors"), Dtype::Float32).expect("tiny checkpoint")
}

#[test]
fn schedules_match() {
    let g = goldens();
    assert_eq!(DISTILLED_SIGMAS.to_vec(), values(&g["sigmas_distilled"]));
    assert_eq!(STAGE_2_DISTILLED_SIGMAS.to_vec(), values(&g["sigmas_stage2"]));
    // Same f32 formula as torch; exp/division rounding may differ by an ulp => 1e-6.
    for n in [8, 30, 40] {
        let e = rel_err(&ltx2_sigmas(n, None), &values(&g[&format!("sigmas_ltx2_{n}")]));
        assert!(e <= 1e-6, "LTX2Scheduler({n}): {e:e}");
    }
    let s = ltx2_sigmas(8, None);
    assert_eq!((s[0], s[8]), (1.0, 0.0));
    assert!((s[7] - 0.1).abs() < 1e-6, "stretched to 0.1: {}", s[7]);
}

fn states(g: &HashMap<String, Array>) -> (LatentState, LatentState) {
    let mask = values(&g["i2v_video_mask"]);
    let m = Array::from_slice(&mask, &[1, mask.len() as i32, 1]);
    let keep = Array::from_f32(1.0).subtract(&m).expect("1-m");
    let clean = g["video_latent"].clone();
    let noised = g["euler_noise_video"].multiply(&m).and_then(|a| a.add(clean.multiply(&keep)?)).expect("noise");
    let video = LatentState {
        latent: noised,
        denoise_mask: mask,
        clean_latent: clean,
        positions: values(&g["video_positions"]),
    };
    let audio = LatentState {
        latent: g["euler_noise_audio"].clone(),
        denoise_mask: vec![1.0; 5],
        clean_latent: g["audio_latent"].clone(),
        positions: values(&g["audio_positions"]),
    };
    (video, audio)
}

#[test]
fn euler_over_distilled_sigmas_matches() {
    let g = goldens();
    let m = model();
    let (mut video, mut audio) = states(&g);
    let (vc, ac) = (g["video_context"].clone(), g["audio_context"].clone());
    let mut reported = Vec::new();
    let end = euler_loop(
        &DISTILLED_SIGMAS,
        &mut video,
        &mut audio,
        |v, a, sigmas, step| {
            let s = sigmas[step];
            let mv = Modality::new(v.latent.clone(), s, Some(&v.denoise_mask), v.positions.clone(), vc.clone());
            let ma = Modality::new(a.latent.clone(), s, Some(&a.denoise_mask), a.positions.clone(), ac.clone());
            m.denoise(&mv, &ma, &Perturbations::none())
        },
        |p| {
            reported.push(p.step);
            ControlFlow::Continue(())
        },
    )
    .expect("loop");
    assert_eq!(end, LoopEnd::Finished);
    assert_eq!(reported, (1..=8).collect::<Vec<_>>());
    check(&video.latent, &g["euler_video"], TOL, "Euler video (8 steps)");
    check(&audio.latent, &g["euler_audio"], TOL, "Euler audio (8 steps)");
}

#[test]
fn loop_stops_at_a_step_boundary_when_cancelled() {
    let g = goldens();
    let (mut video, mut audio) = states(&g);
    let mut calls = 0;
    let end = euler_loop(
        &DISTILLED_SIGMAS,
        &mut video,
        &mut audio,
        |v, a, _, _| {
            calls += 1;
            Ok((v.latent.clone(), a.latent.clone()))
        },
        |p| {
            if p.step == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .expect("loop");
    assert_eq!(end, LoopEnd::Cancelled { after_steps: 3 });
    assert_eq!(calls, 3);
}

#[test]
fn guided_step_matches() {
    let g = goldens();
    let m = model();
    let (mut video, mut audio) = states(&g);
    video.latent = g["video_latent"].clone();
    video.denoise_mask = vec![1.0; 12];
    audio.latent = g["audio_latent"].clone();
    let vg = GuiderParams { stg_blocks: vec![1], ..GuiderParams::ltx2_video() };
    let ag = GuiderParams { stg_blocks: vec![1], ..GuiderParams::ltx2_audio() };
    assert_eq!(
        values(&g["guider_video_params"]),
        vec![vg.cfg_scale, vg.stg_scale, vg.modality_scale, vg.rescale_scale]
    );
    assert_eq!(
        values(&g["guider_audio_params"]),
        vec![ag.cfg_scale, ag.stg_scale, ag.modality_scale, ag.rescale_scale]
    );
    let ctx = Contexts {
        video: &g["video_context"],
        audio: &g["audio_context"],
        video_negative: &g["video_context_neg"],
        audio_negative: &g["audio_context_neg"],
    };
    let sigma = values(&g["sigma"])[0];
    let mut last = None;
    let (v, a) = guided_denoise(&m, &video, &audio, sigma, 0, &ctx, &vg, &ag, &mut last).expect("guided");
    check(&v, &g["guided_video"], TOL, "guided video");
    check(&a, &g["guided_audio"], TOL, "guided audio");
    // skip_step: step 1 of skip_step=1 reuses the previous x0.
    let skip = GuiderParams { skip_step: 1, ..vg.clone() };
    assert!(skip.skips(1) && !skip.skips(2));
    let (v2, _) =
        guided_denoise(&m, &video, &audio, sigma, 1, &ctx, &skip, &GuiderParams { skip_step: 1, ..ag }, &mut last)
            .expect("skipped");
    assert_eq!(values(&v2), values(&v));
}
