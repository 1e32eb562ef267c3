//! LTX-2.3's vocoder (BigVGAN v2 + bandwidth extension to 48 kHz) against ltx-core 1.0.0's
//! `VocoderWithBWE` (goldens from `engine/goldens/decoders23_goldens.py`: tiny generators of 32 and 16
//! channels with every 2.3 switch at its published value, STFT of 64 points / hop 16), through the real
//! loader (`vocoder.{vocoder,bwe_generator,mel_stft}.*`). Parity: max abs error ≤ 1e-4 (f32 goldens of
//! magnitude ≤ ~2, see `parity::assert_close`).
use ltx_engine::{
    audio_vae::{bwe::VocoderWithBwe, Vocoder},
    checkpoint::Checkpoint,
    config::{LtxConfig, VocoderSection},
};
use mlx_rs::{ops, Array, Dtype};
use serde_json::Value;

use crate::parity::{
    assert_close, assert_differs, assert_same_tree, fixture, perturbed, read_manifest, tensor, torch_tree,
};

const TOL: f64 = 1e-4;
const WEIGHTS: &str = "audio_vae/tiny_vocoder23.safetensors";

fn golden(name: &str) -> Array {
    tensor("audio_vae/goldens23.safetensors", name)
}

fn load(path: &std::path::Path) -> Vocoder {
    Vocoder::from_checkpoint(&Checkpoint::open(path).expect("open"), Dtype::Float32).expect("vocoder")
}

fn bwe(vocoder: &Vocoder) -> &VocoderWithBwe {
    match vocoder {
        Vocoder::WithBwe(v) => v,
        Vocoder::Plain(_) => panic!("a `bwe` section builds the bandwidth-extension vocoder"),
    }
}

/// (B, 2, T) -> (B, T, 2) padded with zeros to whole hops, as `VocoderWithBWE.forward` pads.
fn padded(wave: &Array, hop: i32) -> Array {
    let t = wave.shape()[2];
    let x = wave.transpose_axes(&[0, 2, 1]).unwrap();
    ops::pad(&x, &[(0, 0), (0, (hop - t % hop) % hop), (0, 0)][..], None, None).unwrap()
}

fn section(config: &Value) -> VocoderSection {
    let meta = [("config".to_string(), config.to_string())].into_iter().collect();
    LtxConfig::from_metadata(&meta).expect("config").vocoder().expect("vocoder section")
}

#[test]
fn tiny_config_sets_every_2_3_switch_to_its_published_value() {
    let ck = Checkpoint::open(fixture(WEIGHTS)).unwrap();
    let tiny: Value = serde_json::from_str(&ck.metadata()["config"]).unwrap();
    let real: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("audio_vae/ltx23_vocoder_config.json")).unwrap())
            .unwrap();
    for generator in ["vocoder", "bwe"] {
        for key in ["resblock", "activation", "stereo", "use_tanh_at_final", "use_bias_at_final"] {
            let (t, r) = (&tiny["vocoder"][generator][key], &real["vocoder"][generator][key]);
            assert!(!r.is_null() && t == r, "{generator}.{key}: tiny {t}, published {r}");
        }
    }
    for key in ["input_sampling_rate", "output_sampling_rate", "num_mels", "apply_final_activation"] {
        assert_eq!(tiny["vocoder"]["bwe"][key], real["vocoder"]["bwe"][key], "bwe.{key}");
    }
    let vocoder = load(&fixture(WEIGHTS));
    assert_eq!(vocoder.sample_rate(), 48_000, "the MP4 carries the bandwidth extension's rate");
    let v = bwe(&vocoder);
    assert_eq!((v.input_sampling_rate, v.resampler.ratio), (16_000, 3));
    assert!(v.vocoder.act_post.is_some() && v.vocoder.conv_post.bias.is_none(), "BigVGAN v2, bias-free conv_post");
    assert_eq!(bwe_of(&real).sample_rate(), 48_000, "the published section");
}

fn bwe_of(config: &Value) -> Vocoder {
    Vocoder::new(&section(config)).expect("2.3 vocoder")
}

#[test]
fn vocoder_with_bwe_matches_ltx_core() {
    let vocoder = load(&fixture(WEIGHTS));
    let v = bwe(&vocoder);
    let mel = golden("mel");
    let wave16k = v.vocoder.forward(&mel).unwrap();
    assert_close(&wave16k, &golden("wave16k"), TOL, "BigVGAN v2 at 16 kHz");
    // Each stage on the reference's own input, so that an error is located.
    let x = padded(&golden("wave16k"), v.hop);
    let log_mel = v.mel(&x).unwrap().transpose_axes(&[0, 1, 3, 2]).unwrap();
    assert_close(&log_mel, &golden("bwe.mel"), TOL, "causal STFT log-mel");
    let skip = v.resampler.forward(&x).unwrap().transpose_axes(&[0, 2, 1]).unwrap();
    assert_close(&skip, &golden("bwe.skip"), TOL, "Hann-sinc x3 resampler");
    let wave = vocoder.forward(&mel).unwrap();
    assert_eq!(wave.shape(), &[1, 2, 7 * 10 * 3], "70 samples at 16 kHz -> 210 at 48 kHz");
    assert_close(&wave, &golden("wave48k"), TOL, "VocoderWithBWE (48 kHz)");
}

#[test]
fn a_perturbed_weight_fails_parity() {
    let dir = tempfile::tempdir().unwrap();
    let mel = golden("mel");
    for (name, delta) in [
        ("vocoder.vocoder.resblocks.1.acts2.0.act.beta", 0.1),
        ("vocoder.bwe_generator.ups.1.weight", 0.01),
        ("vocoder.mel_stft.mel_basis", 0.01),
    ] {
        let wave = load(&perturbed(dir.path(), WEIGHTS, name, delta)).forward(&mel).unwrap();
        assert_differs(&wave, &golden("wave48k"), TOL, &format!("{name} + {delta}"));
    }
}

#[test]
fn without_the_bandwidth_extension_the_output_does_not_match() {
    let vocoder = load(&fixture(WEIGHTS));
    let v = bwe(&vocoder);
    let mel = golden("mel");
    // The same 16 kHz waveform resampled to 48 kHz, without the extension generator's residual.
    let x = padded(&v.vocoder.forward(&mel).unwrap(), v.hop);
    let plain = ops::clip(v.resampler.forward(&x).unwrap(), (-1.0f32, 1.0f32)).unwrap();
    let plain = plain.transpose_axes(&[0, 2, 1]).unwrap();
    let n = golden("wave48k").shape()[2];
    let plain = plain.take_axis(Array::arange::<_, i32>(0, n, None).unwrap(), 2).unwrap();
    assert_differs(&plain, &golden("wave48k"), TOL, "BWE residual off");
}

#[test]
fn parameter_tree_matches_the_published_2_3_manifest() {
    let real: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("audio_vae/ltx23_vocoder_config.json")).unwrap())
            .unwrap();
    let vocoder = bwe_of(&real);
    let ours = torch_tree(&vocoder, "vocoder.", |k| k.split('.').any(|p| p == "ups"));
    assert_same_tree(&ours, &read_manifest("audio_vae/ltx23_vocoder_manifest.txt"), "LTX-2.3 vocoder");
}

#[test]
fn crafted_bwe_sections_are_refused() {
    let real: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("audio_vae/ltx23_vocoder_config.json")).unwrap())
            .unwrap();
    let with = |path: &[&str], value: Value| {
        let mut v = real.clone();
        let mut at = &mut v["vocoder"];
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        Vocoder::new(&section(&v)).map(drop).map_err(|e| e.to_string())
    };
    assert!(with(&["bwe", "hop_length"], 80.into()).is_ok());
    for (path, value, why) in [
        (&["bwe", "hop_length"][..], Value::from(81), "×240 per frame for hop 81"),
        (&["bwe", "output_sampling_rate"], 44_100.into(), "16000 -> 44100"),
        (&["bwe", "num_mels"], 80.into(), "80 mel bands"),
        (&["vocoder", "activation"], "snake".into(), "activation `snake`"),
        (&["bwe", "resblock"], "1".into(), "resblock `1`"),
    ] {
        let e = with(path, value).expect_err(why);
        assert!(e.contains(why), "{why}: {e}");
    }
    let mut v = real.clone();
    v["vocoder"]["bwe"].as_object_mut().unwrap().remove("n_fft");
    let meta = [("config".to_string(), v.to_string())].into_iter().collect();
    let e = LtxConfig::from_metadata(&meta).unwrap().vocoder().unwrap_err();
    assert!(e.to_string().contains("vocoder.bwe") && e.to_string().contains("n_fft"), "{e}");
}
