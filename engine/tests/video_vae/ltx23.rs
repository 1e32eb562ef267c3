//! LTX-2.3's video VAE against ltx-core 1.0.0 (goldens from `engine/goldens/decoders23_goldens.py`: the
//! published 2.3 block lists with one layer per `res_x`, 4 latent channels, decoder base channels 2, zero
//! spatial padding, no timestep conditioning), through the real loader. Parity: max abs error ≤ 1e-4
//! (f32 goldens; `parity::assert_close`).
use ltx_engine::{
    checkpoint::{Checkpoint, LoadError},
    config::{parse, VaeConfig},
    video_vae::{
        ops::{to_channels_first, to_channels_last, PerChannelStatistics},
        DecodeOptions, VaeError, VideoDecoder, VideoEncoder,
    },
};
use mlx_rs::{Array, Dtype};
use serde_json::Value;

use crate::parity::{
    assert_close, assert_differs, assert_same_tree, fixture, perturbed, read_manifest, rewritten, tensor, torch_tree,
};

const TOL: f64 = 1e-4;
const WEIGHTS: &str = "video_vae/tiny_vae23.safetensors";

fn golden(name: &str) -> Array {
    tensor("video_vae/goldens23.safetensors", name)
}

fn published() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("video_vae/ltx23_vae_config.json")).unwrap()).unwrap()
}

fn decoder(path: &std::path::Path) -> Result<VideoDecoder, VaeError> {
    VideoDecoder::from_checkpoint(&Checkpoint::open(path).unwrap(), Dtype::Float32)
}

fn encoder(path: &std::path::Path) -> Result<VideoEncoder, VaeError> {
    VideoEncoder::from_checkpoint(&Checkpoint::open(path).unwrap(), Dtype::Float32)
}

fn decode(decoder: &VideoDecoder) -> Array {
    to_channels_first(&decoder.forward(&golden("decode.latent"), &DecodeOptions::default()).unwrap()).unwrap()
}

fn encode(encoder: &VideoEncoder) -> Array {
    encoder.forward(&to_channels_last(&golden("encode.video")).unwrap()).unwrap()
}

#[test]
fn tiny_config_sets_every_2_3_switch_to_its_published_value() {
    let ck = Checkpoint::open(fixture(WEIGHTS)).unwrap();
    let tiny: Value = serde_json::from_str(&ck.metadata()["config"]).unwrap();
    let (tiny, real) = (&tiny["vae"], &published()["vae"]);
    for key in ["spatial_padding_mode", "timestep_conditioning", "causal_decoder", "patch_size", "latent_log_var"] {
        assert!(!real[key].is_null() && tiny[key] == real[key], "{key}: tiny {}, published {}", tiny[key], real[key]);
    }
    // The block lists: the same blocks in the same order with the same multipliers (fewer layers per res_x).
    for list in ["encoder_blocks", "decoder_blocks"] {
        let shape = |v: &Value| -> Vec<(Value, Value)> {
            v[list].as_array().unwrap().iter().map(|b| (b[0].clone(), b[1]["multiplier"].clone())).collect()
        };
        assert_eq!(shape(tiny), shape(real), "{list}");
    }
    let multipliers: Vec<_> = real["decoder_blocks"].as_array().unwrap().iter().map(|b| &b[1]["multiplier"]).collect();
    assert!(multipliers.contains(&&Value::from(1)) && multipliers.contains(&&Value::from(2)));
    let config: VaeConfig = parse("vae", tiny.clone()).unwrap();
    assert_eq!((config.encoder_padding(), config.decoder_padding()), ("zeros", "zeros"));
    // decoder_base_channels 2 (the code default is 128): conv_in widens the 8 latent channels to 2·8.
    let d = decoder(&fixture(WEIGHTS)).unwrap();
    assert_eq!(d.conv_in.conv.weight.shape(), &[16, 3, 3, 3, 8]);
    assert!(d.timestep_scale_multiplier.is_none() && d.last_time_embedder.is_none(), "no timestep conditioning");
}

#[test]
fn decoder_matches_ltx_core() {
    let video = decode(&decoder(&fixture(WEIGHTS)).unwrap());
    assert_eq!(video.shape(), &[1, 3, 9, 64, 64]);
    assert_close(&video, &golden("decode.video"), TOL, "2.3 decode");
}

#[test]
fn encoder_matches_ltx_core() {
    assert_close(&encode(&encoder(&fixture(WEIGHTS)).unwrap()), &golden("encode.latent"), TOL, "2.3 encode");
}

#[test]
fn a_perturbed_weight_fails_parity() {
    let dir = tempfile::tempdir().unwrap();
    // The compress_all blocks of multiplier 1: the decoder's 4th up block, the encoder's 8th down block.
    let d = decoder(&perturbed(dir.path(), WEIGHTS, "vae.decoder.up_blocks.3.conv.conv.bias", 0.01)).unwrap();
    assert_differs(&decode(&d), &golden("decode.video"), TOL, "decoder up_blocks.3 bias + 0.01");
    let e = encoder(&perturbed(dir.path(), WEIGHTS, "vae.encoder.down_blocks.7.conv.conv.bias", 0.1)).unwrap();
    assert_differs(&encode(&e), &golden("encode.latent"), TOL, "encoder down_blocks.7 bias + 0.1");
}

#[test]
fn reflect_padding_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let reflect = rewritten(dir.path(), WEIGHTS, |_| {}, |c| c["vae"]["spatial_padding_mode"] = "reflect".into());
    assert_differs(&decode(&decoder(&reflect).unwrap()), &golden("decode.video"), TOL, "decoder, reflect padding");
    assert_differs(&encode(&encoder(&reflect).unwrap()), &golden("encode.latent"), TOL, "encoder, reflect padding");
    // Without the key, ltx-core's defaults: the decoder pads by reflection (no match), the encoder with zeros.
    let dir = tempfile::tempdir().unwrap();
    let unset = rewritten(
        dir.path(),
        WEIGHTS,
        |_| {},
        |c| {
            c["vae"].as_object_mut().unwrap().remove("spatial_padding_mode");
        },
    );
    assert_differs(&decode(&decoder(&unset).unwrap()), &golden("decode.video"), TOL, "decoder, default padding");
    assert_close(&encode(&encoder(&unset).unwrap()), &golden("encode.latent"), TOL, "encoder, default padding");
}

#[test]
fn ignoring_the_multiplier_does_not_match_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = rewritten(
        dir.path(),
        WEIGHTS,
        |_| {},
        |c| {
            for list in ["encoder_blocks", "decoder_blocks"] {
                for block in c["vae"][list].as_array_mut().unwrap() {
                    block[1].as_object_mut().unwrap().remove("multiplier");
                }
            }
        },
    );
    // Without it every compress block keeps its width (decoder default 1) or doubles it (encoder default 2):
    // a different module tree, which the 2.3 weights do not fit.
    for (what, result) in [("decoder", decoder(&path).map(drop)), ("encoder", encoder(&path).map(drop))] {
        let Err(VaeError::Load(e)) = result else { panic!("{what}: loaded without the multipliers") };
        let LoadError::Mismatch { report, .. } = *e else { panic!("{what}: {e}") };
        eprintln!(
            "{what} without multipliers: {} tensors misshaped, first {:?}",
            report.misshaped.len(),
            report.misshaped[0]
        );
        assert!(!report.misshaped.is_empty(), "{what}: {report}");
    }
}

#[test]
fn parameter_tree_matches_the_published_2_3_manifest() {
    let config: VaeConfig = parse("vae", published()["vae"].clone()).unwrap();
    let (encoder, decoder) = (VideoEncoder::new(&config).unwrap(), VideoDecoder::new(&config).unwrap());
    let mut ours = torch_tree(&encoder, "vae.encoder.", |_| false);
    ours.extend(torch_tree(&decoder, "vae.decoder.", |_| false));
    for name in PerChannelStatistics::NAMES {
        ours.insert(format!("vae.per_channel_statistics.{name}"), vec![config.latent_channels as i32]);
    }
    assert_same_tree(&ours, &read_manifest("video_vae/ltx23_vae_manifest.txt"), "LTX-2.3 video VAE");
}
