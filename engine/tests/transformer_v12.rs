//! The A<->V cross-attention AdaLN of ltx-core 1.2.0, which the engine follows for every generation: scale and
//! shift from each modality's own per-token timesteps, the gate from the other modality's sigma (1.0.0 used
//! the other's sigma for both). Goldens from `engine/goldens/v12_goldens.py` (ltx-core 1.2.0) for the cases
//! where the two differ — i2v tokens at timestep 0, and different sigmas per modality — on the tiny LTX-2 and
//! LTX-2.3 checkpoints; the uniform case agrees with the 1.0.0 goldens (asserted by the script, and by
//! `transformer_parity` / `transformer23_parity`). f32, tolerance 1e-4 (`max|got - want| / max|want|`).
mod backend;

use std::path::PathBuf;

use backend::{check, check_fails, Goldens};
use ltx_engine::transformer::{LtxModel, Modality, Perturbations};
use mlx_rs::Dtype;

const TOL: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transformer").join(name)
}

/// (weights, the 1.0.0 goldens holding its inputs) per generation.
fn generation(tag: &str) -> (LtxModel, Goldens) {
    let (weights, inputs) = match tag {
        "ltx2" => ("tiny_av.safetensors", "goldens.safetensors"),
        _ => ("tiny_av23.safetensors", "goldens23.safetensors"),
    };
    let m = LtxModel::from_checkpoint(&fixture(weights), Dtype::Float32).expect("tiny checkpoint");
    (m, Goldens::open(&fixture(inputs)))
}

fn run(
    m: &LtxModel,
    g: &Goldens,
    video_sigma: f32,
    audio_sigma: f32,
    mask: Option<&[f32]>,
) -> (mlx_rs::Array, mlx_rs::Array) {
    let v = Modality::new(
        g.get("video_latent").clone(),
        video_sigma,
        mask,
        g.vec("video_positions"),
        g.get("video_context").clone(),
    );
    let a = Modality::new(
        g.get("audio_latent").clone(),
        audio_sigma,
        None,
        g.vec("audio_positions"),
        g.get("audio_context").clone(),
    );
    m.forward(&v, &a, &Perturbations::none()).expect("forward")
}

#[test]
fn i2v_tokens_match_ltx_core_1_2() {
    let v12 = Goldens::open(&fixture("goldens_v12.safetensors"));
    let mask = Goldens::open(&fixture("goldens.safetensors")).vec("i2v_video_mask");
    for tag in ["ltx2", "ltx23"] {
        let (m, g) = generation(tag);
        let (v, a) = run(&m, &g, 0.6, 0.6, Some(&mask));
        check(&v, v12.get(&format!("{tag}_i2v_video")), TOL, &format!("{tag} i2v video"));
        check(&a, v12.get(&format!("{tag}_i2v_audio")), TOL, &format!("{tag} i2v audio"));
    }
}

#[test]
fn per_modality_sigmas_match_ltx_core_1_2() {
    let v12 = Goldens::open(&fixture("goldens_v12.safetensors"));
    for tag in ["ltx2", "ltx23"] {
        let (m, g) = generation(tag);
        let (v, a) = run(&m, &g, 0.6, 0.3, None);
        check(&v, v12.get(&format!("{tag}_sigmas_video")), TOL, &format!("{tag} per-modality sigmas video"));
        check(&a, v12.get(&format!("{tag}_sigmas_audio")), TOL, &format!("{tag} per-modality sigmas audio"));
    }
}

#[test]
fn the_1_0_behaviour_is_not_what_the_engine_does() {
    // The 1.0.0 i2v golden (other modality's sigma for the scale/shift) is 7e-2 away: the comparison can tell.
    let g = Goldens::open(&fixture("goldens.safetensors"));
    let (m, _) = generation("ltx2");
    let (v, _) = run(&m, &g, 0.6, 0.6, Some(&g.vec("i2v_video_mask")));
    check_fails(&v, g.get("i2v_v10_video"), TOL, "1.0.0 i2v golden");
}
