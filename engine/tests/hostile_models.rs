//! A crafted checkpoint (its `config` metadata, its tensors' ranks) or an edge-case request is refused with an
//! error, never a panic: the daemon's worker survives a panic, but the job should say what was wrong.
use ltx_engine::audio_vae::{AudioDecoder, Vocoder};
use ltx_engine::config::{parse, AudioVaeConfig, VocoderConfig, VocoderSection};
use ltx_engine::media::Audio;
use ltx_engine::pipeline::latents::AudioLayout;
use ltx_engine::transformer::config::TransformerConfig;
use ltx_engine::video_vae::convolution::Padding;
use ltx_engine::video_vae::ops::{group_norm, patchify, unpatchify};
use ltx_engine::video_vae::sampling::{depth_to_space, space_to_depth, DepthToSpaceUpsample, SpaceToDepthDownsample};
use mlx_rs::Array;
use serde_json::json;

#[test]
fn an_empty_waveform_is_an_error() {
    let e = Audio::from_planar(&[], 2, 24_000).unwrap_err();
    assert!(e.to_string().contains("no samples"), "{e}");
    assert!(Audio::from_planar(&[0.0; 3], 2, 24_000).is_err());
    assert_eq!(Audio::from_planar(&[0.0; 4], 2, 24_000).unwrap().len(), 2);
}

#[test]
fn tensors_of_the_wrong_rank_or_zero_sizes_are_errors() {
    let four_d = Array::zeros::<f32>(&[1, 2, 4, 4]).unwrap();
    let five_d = Array::zeros::<f32>(&[1, 1, 4, 4, 8]).unwrap();
    for e in [
        patchify(&four_d, 2).unwrap_err(),
        unpatchify(&four_d, 2).unwrap_err(),
        depth_to_space(&four_d, [1, 2, 2]).unwrap_err(),
        space_to_depth(&four_d, [1, 2, 2]).unwrap_err(),
    ] {
        assert!(e.to_string().contains("must be 5-D, got [1, 2, 4, 4]"), "{e}");
    }
    assert!(patchify(&five_d, 0).is_err() && unpatchify(&five_d, 0).is_err() && unpatchify(&five_d, 3).is_err());
    let (w, b) = (Array::ones::<f32>(&[8]).unwrap(), Array::zeros::<f32>(&[8]).unwrap());
    assert!(group_norm(&five_d, 0, 1e-5, &w, &b).is_err());
    assert!(group_norm(&five_d, 3, 1e-5, &w, &b).is_err());
    assert!(group_norm(&five_d, 4, 1e-5, &w, &b).is_ok());
    // A decoder block's `multiplier` of 0, an encoder block's output of 0 channels.
    assert!(DepthToSpaceUpsample::new(8, [2, 2, 2], true, 0, Padding::Zeros).is_err());
    assert!(SpaceToDepthDownsample::new(8, 0, [1, 2, 2], Padding::Zeros).is_err());
    assert!(DepthToSpaceUpsample::new(8, [2, 2, 2], true, 2, Padding::Zeros).is_ok());
}

#[test]
fn crafted_configs_are_refused() {
    let vocoder = |v: serde_json::Value| {
        parse::<VocoderConfig>("vocoder", v).map(|c| Vocoder::new(&VocoderSection::Plain(c)).is_ok())
    };
    assert!(vocoder(json!({})).unwrap());
    for bad in [
        json!({ "upsample_rates": [], "upsample_kernel_sizes": [] }),
        json!({ "upsample_initial_channel": 2 }),
        json!({ "upsample_rates": vec![2; 40], "upsample_kernel_sizes": vec![4; 40] }),
    ] {
        assert!(!vocoder(bad.clone()).unwrap(), "{bad}");
    }
    // The audio decoder's levels: LTX-2's three, none, and more than a shift can take.
    let audio = |mults: serde_json::Value| {
        let dd = json!({ "ch_mult": mults, "norm_type": "pixel", "mid_block_add_attention": false });
        let c: AudioVaeConfig = parse("audio_vae", json!({ "model": { "params": { "ddconfig": dd } } })).unwrap();
        (AudioDecoder::new(&c).map(drop).map_err(|e| e.to_string()), AudioLayout::from_config(&c).mel_bins)
    };
    assert_eq!(audio(json!([1, 2, 4])), (Ok(()), 16));
    let (e, _) = audio(json!([]));
    assert!(e.unwrap_err().contains("audio decoder of 0 levels"));
    let (e, mel_bins) = audio(json!(vec![1; 100]));
    assert!(e.unwrap_err().contains("audio decoder of 100 levels"));
    assert_eq!(mel_bins, 0, "the layout does not overflow its shift either");

    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transformer/ltx2_19b_config.json"),
    )
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["transformer"]["num_attention_heads"] = 0.into();
    v["transformer"]["audio_num_attention_heads"] = 0.into();
    let e = TransformerConfig::from_metadata_json(&v.to_string()).unwrap_err();
    assert!(e.to_string().contains("heads and head dimensions must be positive"), "{e}");
}
