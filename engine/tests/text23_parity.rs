//! Parity of the LTX-2.3 text side with ltx-core 1.0.0 (goldens from `engine/goldens/ltx23_goldens.py`):
//! `FeatureExtractorV2` (per-token RMS over every layer, √(out/D) rescale, separate biased video/audio
//! projections) and the gated connectors, on the tiny Gemma of `text_goldens.py`, end to end from the prompt
//! through `PromptEncoder` (the real loaders). f32 on the CPU; `max|got - want| / max|want|` ≤ 1e-4.
mod backend;

use std::{collections::BTreeMap, path::PathBuf};

use backend::{check, check_fails, Goldens};
use ltx_engine::{
    checkpoint::{prefix, Checkpoint, LoadOptions},
    text::{connector::ConnectorConfig, Connector, EncoderOptions, FeatureExtractor, Negative, PromptEncoder},
};
use mlx_rs::{module::ModuleParameters, Array, Dtype};

const TOL: f64 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text").join(name)
}

fn ltx23() -> Checkpoint {
    Checkpoint::open(fixture("tiny_ltx_text23.safetensors")).expect("tiny 2.3 text side")
}

fn encoder() -> PromptEncoder {
    let options = EncoderOptions { max_length: 16, dtype: Dtype::Float32, ..Default::default() };
    PromptEncoder::load(&fixture("gemma"), &ltx23(), options).expect("encoder")
}

fn extractor() -> FeatureExtractor {
    let mut fe = FeatureExtractor::new_v2(32, 7, 16, 8).expect("new");
    let opts =
        LoadOptions { dtype: Some(Dtype::Float32), optional: &|k| k.ends_with(".weight_scale"), ..Default::default() };
    ltx23().load_into(&mut fe, prefix::TEXT_PROJECTION, &opts).expect("load");
    fe
}

fn hidden(g: &Goldens, tag: &str) -> Vec<Array> {
    let hs = g.get(&format!("{tag}.hidden_states"));
    (0..7).map(|l| hs.take_axis(Array::from_int(l), 0).expect("layer")).collect()
}

#[test]
fn feature_extractor_v2_matches() {
    let v1 = Goldens::open(&fixture("goldens.safetensors"));
    let g = Goldens::open(&fixture("goldens23.safetensors"));
    let fe = extractor();
    for tag in ["prompt", "negative"] {
        let (video, audio) = fe.forward(&hidden(&v1, tag), v1.get(&format!("{tag}.attention_mask"))).expect("forward");
        check(&video, g.get(&format!("{tag}.video_features")), TOL, &format!("{tag} V2 video features"));
        check(&audio, g.get(&format!("{tag}.audio_features")), TOL, &format!("{tag} V2 audio features"));
    }
}

#[test]
fn prompt_to_contexts_matches_reference() {
    let g = Goldens::open(&fixture("goldens23.safetensors"));
    let out = encoder().encode("  a cat walks on the beach ", Negative::Default).expect("encode");
    let neg = out.negative.expect("negative contexts");
    assert_eq!(out.positive.video.shape(), &[1, 16, 16], "the video context is at the transformer's inner dim");
    assert_eq!(out.positive.audio.shape(), &[1, 16, 8]);
    check(&out.positive.video, g.get("prompt.video"), TOL, "2.3 prompt video context");
    check(&out.positive.audio, g.get("prompt.audio"), TOL, "2.3 prompt audio context");
    check(&neg.video, g.get("negative.video"), TOL, "2.3 negative video context");
    check(&neg.audio, g.get("negative.audio"), TOL, "2.3 negative audio context");
}

#[test]
fn a_perturbed_weight_and_each_23_path_off_fail() {
    let v1 = Goldens::open(&fixture("goldens.safetensors"));
    let g = Goldens::open(&fixture("goldens23.safetensors"));
    let (h, mask) = (hidden(&v1, "prompt"), v1.get("prompt.attention_mask"));
    let ck = ltx23();
    let config: ConnectorConfig = ck.config().expect("config").section("transformer").expect("section");
    let connector = |gated: bool| {
        let config = ConnectorConfig { connector_apply_gated_attention: gated, ..config.clone() };
        let mut c = Connector::new(&config, false).expect("new");
        let prefix = "model.diffusion_model.video_embeddings_connector.";
        if gated {
            c.load(&ck, prefix, Dtype::Float32).expect("load");
        } else {
            let options = LoadOptions {
                dtype: Some(Dtype::Float32),
                optional: &|k| k.ends_with(".weight_scale"),
                ignore: &|k| k.contains("to_gate_logits"),
                ..Default::default()
            };
            ck.load_into(&mut c, prefix, &options).expect("load without the gates");
        }
        c
    };
    let tokens: Vec<i32> = backend::values(mask).iter().map(|&m| m as i32).collect();
    let (features, _) = extractor().forward(&h, mask).expect("features");
    check(&connector(true).forward(&features, &tokens).expect("fwd"), g.get("prompt.video"), TOL, "gated connector");
    check_fails(&connector(false).forward(&features, &tokens).expect("fwd"), g.get("prompt.video"), TOL, "gates off");

    // V1's normalisation on the V2 weights (no per-token RMS, no rescale, no bias).
    let mut fe = extractor();
    let weight = fe.video_aggregate_embed.as_ref().expect("v2").weight.clone();
    let v1_style = FeatureExtractor::new(32 * 7, 16).expect("v1");
    fe.aggregate_embed = v1_style.aggregate_embed;
    if let Some(a) = fe.aggregate_embed.as_mut() {
        *a.weight = (*weight).clone();
    }
    fe.video_aggregate_embed = None;
    fe.audio_aggregate_embed = None;
    let (v, _) = fe.forward(&h, mask).expect("v1 path");
    check_fails(&v, g.get("prompt.video_features"), TOL, "V1 normalisation instead of V2");

    let mut fe = extractor();
    if let Some(l) = fe.audio_aggregate_embed.as_mut() {
        *l.weight = l.weight.add(Array::from_f32(0.01)).expect("nudge");
    }
    check_fails(&fe.forward(&h, mask).expect("fwd").1, g.get("prompt.audio_features"), TOL, "nudged weight");
}

#[test]
fn the_22b_text_side_matches_the_manifest() {
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("../transformer/ltx23_22b_config.json")).expect("22B config"),
    )
    .expect("json");
    let config: ConnectorConfig = serde_json::from_value(meta["transformer"].clone()).expect("connector keys");
    let tree = |prefix: &str, m: &dyn ModuleParameters| -> Vec<(String, Vec<i32>)> {
        let params = m.parameters().flatten();
        let mut v: Vec<_> = params
            .iter()
            .filter(|(k, _)| !k.ends_with(".weight_scale"))
            .map(|(k, a)| (format!("{prefix}{k}"), a.shape().to_vec()))
            .collect();
        v.sort();
        v
    };
    let mut got = BTreeMap::new();
    got.extend(tree("text_embedding_projection.", &FeatureExtractor::new_v2(3840, 49, 4096, 2048).expect("v2")));
    for (name, audio) in [("video", false), ("audio", true)] {
        let c = Connector::new(&config, audio).expect("connector");
        got.extend(tree(&format!("model.diffusion_model.{name}_embeddings_connector."), &c));
    }
    let want: BTreeMap<String, Vec<i32>> = std::fs::read_to_string(fixture("ltx23_22b_text_manifest.txt"))
        .expect("manifest")
        .lines()
        .map(|l| {
            let (k, s) = l.split_once(' ').expect("line");
            let dims = s.trim_matches(['[', ']']).split(", ").map(|d| d.parse().expect("dim")).collect();
            (k.to_string(), dims)
        })
        .collect();
    assert_eq!(got, want);
}
