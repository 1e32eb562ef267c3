//! The bundled tiny model set: the committed real-layout test fixtures (tiny AV transformer, tiny
//! Gemma 3 + tokenizer, text connectors, tiny video VAE, audio VAE + vocoder, upscaler) combined into
//! a models directory in the standard layout ([`ModelSet::in_dir`]), for every variant of both generations —
//! LTX-2 from the 19B fixtures, LTX-2.3 from the 2.3 ones (gated transformer with cross-attention AdaLN,
//! `FeatureExtractorV2` and gated connectors, the 2.3 VAE, BigVGAN + bandwidth extension at 48 kHz) — so a
//! real generation runs end to end in seconds on a CPU. Deterministic: same bytes every time.
//!
//! The tiny audio VAE's latent is 1 channel × 16 mel bins (16 features per token) while the tiny
//! transformer's audio patchify takes 8: the bundle widens `audio_patchify_proj` (input columns
//! repeated, halved) and `audio_proj_out` (output rows repeated) to 16 and says so in the config.
use std::{collections::HashMap, path::Path};

use ltx_protocol::{Generation, ModelVariant};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde_json::Value;

use super::models::ModelSet;

const TRANSFORMER: &[u8] = include_bytes!("../../tests/fixtures/transformer/tiny_av.safetensors");
/// The same transformer with its block linears in FP8 E4M3 + `weight_scale` (the distilled-fp8 variant).
const TRANSFORMER_FP8: &[u8] = include_bytes!("../../tests/fixtures/transformer/tiny_av_fp8.safetensors");
const TEXT: &[u8] = include_bytes!("../../tests/fixtures/text/tiny_ltx_text.safetensors");
const VAE: &[u8] = include_bytes!("../../tests/fixtures/video_vae/tiny_vae.safetensors");
const AUDIO: &[u8] = include_bytes!("../../tests/fixtures/audio_vae/tiny_audio.safetensors");
const UPSCALER: &[u8] = include_bytes!("../../tests/fixtures/upsampler/tiny_upsampler.safetensors");
/// LTX-2.3's ×1.5 (rational 3/2) upscaler.
const UPSCALER_X1_5: &[u8] = include_bytes!("../../tests/fixtures/upsampler/tiny_x15.safetensors");
const TRANSFORMER23: &[u8] = include_bytes!("../../tests/fixtures/transformer/tiny_av23.safetensors");
const TEXT23: &[u8] = include_bytes!("../../tests/fixtures/text/tiny_ltx_text23.safetensors");
const VAE23: &[u8] = include_bytes!("../../tests/fixtures/video_vae/tiny_vae23.safetensors");
/// BigVGAN v2 + bandwidth extension (`vocoder.*`); the audio VAE is LTX-2's (unchanged in 2.3).
const VOCODER23: &[u8] = include_bytes!("../../tests/fixtures/audio_vae/tiny_vocoder23.safetensors");
const GEMMA: [(&str, &[u8]); 6] = [
    ("config.json", include_bytes!("../../tests/fixtures/text/gemma/config.json")),
    ("tokenizer.json", include_bytes!("../../tests/fixtures/text/gemma/tokenizer.json")),
    ("tokenizer_config.json", include_bytes!("../../tests/fixtures/text/gemma/tokenizer_config.json")),
    ("model.safetensors.index.json", include_bytes!("../../tests/fixtures/text/gemma/model.safetensors.index.json")),
    (
        "model-00001-of-00002.safetensors",
        include_bytes!("../../tests/fixtures/text/gemma/model-00001-of-00002.safetensors"),
    ),
    (
        "model-00002-of-00002.safetensors",
        include_bytes!("../../tests/fixtures/text/gemma/model-00002-of-00002.safetensors"),
    ),
];

/// Audio latent features per token of the tiny audio VAE (z_channels 1 × 16 latent mel bins).
const TINY_AUDIO_FEATURES: usize = 16;

type Owned = (Dtype, Vec<usize>, Vec<u8>);

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn config_of(bytes: &[u8]) -> std::io::Result<serde_json::Map<String, Value>> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(io)?;
    let text = meta.metadata().as_ref().and_then(|m| m.get("config").cloned()).ok_or_else(|| io("no config"))?;
    match serde_json::from_str(&text).map_err(io)? {
        Value::Object(m) => Ok(m),
        _ => Err(io("config is not an object")),
    }
}

fn tensors_of(bytes: &[u8], out: &mut Vec<(String, Owned)>) -> std::io::Result<()> {
    let st = SafeTensors::deserialize(bytes).map_err(io)?;
    for (name, view) in st.tensors() {
        out.push((name, (view.dtype(), view.shape().to_vec(), view.data().to_vec())));
    }
    Ok(())
}

fn f32s(data: &[u8]) -> Vec<f32> {
    data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Widens the transformer's audio input/output to `features`.
fn widen_audio(name: &str, t: &mut Owned, features: usize) -> std::io::Result<()> {
    let widened = ["audio_patchify_proj.weight", "audio_proj_out.weight", "audio_proj_out.bias"];
    if !widened.iter().any(|w| name.ends_with(w)) {
        return Ok(());
    }
    let (dtype, shape, data) = t;
    if *dtype != Dtype::F32 {
        return Err(io(format!("{name}: expected f32")));
    }
    let v = f32s(data);
    let (new_shape, new): (Vec<usize>, Vec<f32>) = match name {
        n if n.ends_with("audio_patchify_proj.weight") => {
            let (rows, cols) = (shape[0], shape[1]);
            let w =
                (0..rows).flat_map(|r| (0..features).map(move |j| (r, j))).map(|(r, j)| v[r * cols + j % cols] * 0.5);
            (vec![rows, features], w.collect())
        }
        n if n.ends_with("audio_proj_out.weight") => {
            let (rows, cols) = (shape[0], shape[1]);
            (vec![features, cols], (0..features * cols).map(|i| v[(i / cols % rows) * cols + i % cols]).collect())
        }
        n if n.ends_with("audio_proj_out.bias") => (vec![features], (0..features).map(|i| v[i % shape[0]]).collect()),
        _ => return Ok(()),
    };
    *shape = new_shape;
    *data = bytes(&new);
    Ok(())
}

/// The fixtures one tiny checkpoint is made of.
struct Parts {
    transformer: &'static [u8],
    text: &'static [u8],
    vae: &'static [u8],
    /// The audio VAE (and vocoder), then a vocoder that replaces its vocoder.
    audio: Vec<&'static [u8]>,
    model_version: Option<&'static str>,
}

fn parts(variant: ModelVariant) -> Parts {
    match variant.rules().generation {
        Generation::Ltx2 => Parts {
            transformer: if variant == ModelVariant::DistilledFp8 { TRANSFORMER_FP8 } else { TRANSFORMER },
            text: TEXT,
            vae: VAE,
            audio: vec![AUDIO],
            model_version: None,
        },
        Generation::Ltx23 => Parts {
            transformer: TRANSFORMER23,
            text: TEXT23,
            vae: VAE23,
            audio: vec![AUDIO, VOCODER23],
            model_version: Some("2.3.0"),
        },
    }
}

/// The combined single-file checkpoint of `variant` (dev has no tiny weights of its own and gets the distilled
/// ones): safetensors bytes. An LTX-2.3 checkpoint takes LTX-2's audio VAE and replaces its vocoder.
pub fn tiny_checkpoint(variant: ModelVariant) -> std::io::Result<Vec<u8>> {
    let Parts { transformer, text, vae, audio, model_version: version } = parts(variant);
    let mut tensors = Vec::new();
    tensors_of(transformer, &mut tensors)?;
    for (name, t) in tensors.iter_mut() {
        widen_audio(name, t, TINY_AUDIO_FEATURES)?;
    }
    let vocoder_replaced = audio.len() > 1;
    for part in [text, vae].into_iter().chain(audio.iter().copied()) {
        let mut more = Vec::new();
        tensors_of(part, &mut more)?;
        if vocoder_replaced && part == AUDIO {
            more.retain(|(n, _)| !n.starts_with("vocoder."));
        }
        tensors.extend(more);
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors.dedup_by(|a, b| a.0 == b.0);

    let mut config = serde_json::Map::new();
    for part in [transformer, vae].into_iter().chain(audio.iter().copied()) {
        config.extend(config_of(part)?);
    }
    let transformer =
        config.get_mut("transformer").and_then(Value::as_object_mut).ok_or_else(|| io("no transformer"))?;
    for (k, v) in config_of(text)?.get("transformer").and_then(Value::as_object).into_iter().flatten() {
        transformer.entry(k.clone()).or_insert(v.clone());
    }
    transformer.insert("audio_in_channels".into(), TINY_AUDIO_FEATURES.into());
    transformer.insert("audio_out_channels".into(), TINY_AUDIO_FEATURES.into());
    let mut metadata = HashMap::from([("config".to_string(), Value::Object(config).to_string())]);
    if let Some(v) = version {
        metadata.insert("model_version".into(), v.into());
    }

    let views = tensors
        .iter()
        .map(|(n, (d, s, b))| Ok((n.clone(), TensorView::new(*d, s.clone(), b).map_err(io)?)))
        .collect::<std::io::Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(io)
}

/// Rank of the tiny distilled LoRA.
pub const TINY_LORA_RANK: usize = 4;

/// A deterministic rank-[`TINY_LORA_RANK`] LoRA over every Linear of the tiny transformer's blocks, in
/// the real file's layout (`diffusion_model.<module>.lora_{A,B}.weight`, A: (r, in), B: (out, r)):
/// safetensors bytes. Values are uniform in ±0.25 (A) and ±0.1 (B) from a fixed SplitMix64 stream.
pub fn tiny_lora(generation: Generation) -> std::io::Result<Vec<u8>> {
    let mut tensors = Vec::new();
    let distilled =
        ModelVariant::default_in(generation, ltx_protocol::Pipeline::Distilled).unwrap_or(ModelVariant::Distilled);
    tensors_of(parts(distilled).transformer, &mut tensors)?;
    let mut state = 0x4c54_5832_u64;
    let mut uniform = move |scale: f32| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    };
    let mut out: Vec<(String, Owned)> = Vec::new();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, (_, shape, _)) in &tensors {
        let Some(module) = name.strip_prefix("model.diffusion_model.").and_then(|n| n.strip_suffix(".weight")) else {
            continue;
        };
        if !module.starts_with("transformer_blocks.") || shape.len() != 2 {
            continue;
        }
        let (rows, cols, r) = (shape[0], shape[1], TINY_LORA_RANK);
        let a: Vec<f32> = (0..r * cols).map(|_| uniform(0.25)).collect();
        let b: Vec<f32> = (0..rows * r).map(|_| uniform(0.1)).collect();
        out.push((format!("diffusion_model.{module}.lora_A.weight"), (Dtype::F32, vec![r, cols], bytes(&a))));
        out.push((format!("diffusion_model.{module}.lora_B.weight"), (Dtype::F32, vec![rows, r], bytes(&b))));
    }
    let views = out
        .iter()
        .map(|(n, (d, s, b))| Ok((n.clone(), TensorView::new(*d, s.clone(), b).map_err(io)?)))
        .collect::<std::io::Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(io)
}

/// Writes the tiny model set into `dir` (created if needed): every variant's checkpoint, Gemma, each
/// generation's upscaler and distilled LoRA. Returns the newest generation's distilled [`ModelSet`].
pub fn bundle_tiny(dir: &Path) -> std::io::Result<ModelSet> {
    let write = |path: &Path, bytes: &[u8]| ltx_protocol::fsutil::write_replace(path, bytes, 0o644);
    let mut newest = None;
    for generation in Generation::ALL {
        let Some(distilled) = ModelVariant::default_in(generation, ltx_protocol::Pipeline::Distilled) else { continue };
        let set = ModelSet::in_dir(dir, distilled);
        std::fs::create_dir_all(&set.text_encoder)?;
        for (name, data) in GEMMA {
            write(&set.text_encoder.join(name), data)?;
        }
        write(&set.upscaler, UPSCALER)?;
        if let Some(path) = &set.upscaler_x1_5 {
            write(path, UPSCALER_X1_5)?;
        }
        write(&set.distilled_lora, &tiny_lora(generation)?)?;
        newest = Some(set);
    }
    for variant in ModelVariant::ALL {
        write(&ModelSet::in_dir(dir, variant).checkpoint, &tiny_checkpoint(variant)?)?;
    }
    newest.ok_or_else(|| io("no generation has a distilled variant"))
}
