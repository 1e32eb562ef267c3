//! The estimate's arithmetic: weights per component from the safetensors headers, and each phase's
//! working memory from the job's shape and the model's dimensions ([`ModelDims`], from the typed configs
//! [`super::inputs`] reads). Everything but [`estimate`] itself is a pure function of what was read.
use std::collections::BTreeMap;

use mlx_rs::Dtype;
use safetensors::{tensor::TensorInfo, Dtype as StDtype};

use super::{
    inputs::{read, Configs, Files},
    JobShape, LoadingPlan, PlanOptions,
};
use crate::{
    checkpoint::Header,
    config::{VocoderConfig, VocoderSection},
    device::Backend,
    job::EngineError,
    pipeline::{latents::AudioLayout, models::ModelSet},
    text::{gemma, GemmaPrecision},
    video_vae::TilingConfig,
};
use ltx_protocol::Part;

/// The estimate: weights per component and each phase's working memory, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub weights: BTreeMap<Part, u64>,
    pub encode: u64,
    pub denoise: u64,
    pub upscale: u64,
    pub decode_video: u64,
    pub decode_audio: u64,
    /// The tiling the decode will use (`None`: untiled).
    pub tiling: Option<TilingConfig>,
}

impl Estimate {
    fn w(&self, names: &[Part]) -> u64 {
        names.iter().filter_map(|n| self.weights.get(n)).sum()
    }

    pub fn weight_total(&self) -> u64 {
        self.weights.values().sum()
    }

    /// Peak with every component resident.
    pub fn all_resident(&self) -> u64 {
        let act = self.encode.max(self.denoise).max(self.upscale).max(self.decode_video).max(self.decode_audio);
        self.weight_total() + act
    }

    /// Peak of the sequential plan: the largest phase with only its own components loaded (the
    /// decoders are small and load lazily; the connectors stay with the prompt encoder).
    pub fn low_memory(&self) -> u64 {
        let decoders = self.w(&[Part::VideoDecoder, Part::AudioDecoder, Part::Vocoder]);
        let encode = self.w(&[Part::TextEncoder, Part::VideoEncoder, Part::VideoDecoder]) + self.encode;
        let denoise =
            self.w(&[Part::Transformer, Part::Upscaler, Part::DistilledLora, Part::VideoEncoder, Part::VideoDecoder])
                + self.denoise.max(self.upscale);
        let decode = decoders + self.decode_video.max(self.decode_audio);
        encode.max(denoise).max(decode)
    }

    pub fn peak(&self, plan: LoadingPlan) -> u64 {
        match plan {
            LoadingPlan::AllResident => self.all_resident(),
            LoadingPlan::LowMemory => self.low_memory(),
        }
    }
}

/// Estimates the job's weights and activations from the files' headers.
pub fn estimate(models: &ModelSet, job: &JobShape, o: &PlanOptions) -> Result<Estimate, EngineError> {
    let files = read(models, job)?;
    let b = compute_bytes(o.dtype);
    Ok(activations(weights(&files, job, o.gemma, b), job, &ModelDims::new(&files.configs), o))
}

fn compute_bytes(dtype: Dtype) -> u64 {
    if dtype == Dtype::Float32 {
        4
    } else {
        2
    }
}

/// Elements of a tensor.
fn elements(t: &TensorInfo) -> u64 {
    t.shape.iter().map(|&d| d as u64).product()
}

/// Bytes of a tensor once loaded: floating tensors in the compute dtype, FP8 and integers as stored.
pub fn loaded_bytes(t: &TensorInfo, compute_bytes: u64) -> u64 {
    match t.dtype {
        StDtype::F64 | StDtype::F32 | StDtype::F16 | StDtype::BF16 => elements(t) * compute_bytes,
        _ => (t.data_offsets.1.saturating_sub(t.data_offsets.0)) as u64,
    }
}

/// Loaded bytes of the tensors named under one of `prefixes` and containing none of `exclude`.
pub fn sum_prefix<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a TensorInfo)>,
    prefixes: &[&str],
    exclude: &[&str],
    compute_bytes: u64,
) -> u64 {
    tensors
        .into_iter()
        .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p)) && !exclude.iter().any(|x| n.contains(x)))
        .map(|(_, t)| loaded_bytes(t, compute_bytes))
        .sum()
}

/// Loaded bytes of every tensor.
fn sum_all<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a TensorInfo)>, compute_bytes: u64) -> u64 {
    tensors.into_iter().map(|(_, t)| loaded_bytes(t, compute_bytes)).sum()
}

/// Bytes of Gemma's text weights once loaded at `precision` (matrices quantised, vectors dense).
pub fn gemma_bytes<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a TensorInfo)>,
    precision: GemmaPrecision,
    compute_bytes: u64,
) -> u64 {
    let mut total = 0;
    for (name, t) in tensors {
        if !name.starts_with(gemma::KEY_PREFIX) {
            continue;
        }
        let n = elements(t);
        let matrix = n > 0 && !name.contains("norm");
        total += match precision.bits() {
            // Packed weights plus a scale and a bias per group of 64, in the compute dtype.
            Some(bits) if matrix => n * bits as u64 / 8 + n * 2 * compute_bytes / 64,
            _ => loaded_bytes(t, compute_bytes),
        };
    }
    total
}

/// The text connectors that live in the transformer checkpoint but belong to the prompt encoder.
const CONNECTORS: [&str; 3] = [
    "model.diffusion_model.video_embeddings_connector.",
    "model.diffusion_model.audio_embeddings_connector.",
    "text_embedding_projection.",
];

/// Bytes per component after loading, keyed by the component names of [`crate::pipeline::components`]:
/// only the components `job` uses.
pub fn weights(files: &Files, job: &JobShape, gemma: GemmaPrecision, b: u64) -> BTreeMap<Part, u64> {
    let ltx = || files.checkpoint.tensors();
    let mut weights = BTreeMap::new();
    let text = gemma_bytes(files.gemma.iter().flat_map(Header::tensors), gemma, b);
    weights.insert(Part::TextEncoder, text + sum_prefix(ltx(), &CONNECTORS, &[], b));
    weights.insert(Part::Transformer, sum_prefix(ltx(), &["model.diffusion_model."], &["embeddings_connector."], b));
    let stats = sum_prefix(ltx(), &["vae.per_channel_statistics."], &[], b);
    if let (true, Some(up)) = (job.two_stage, &files.upscaler) {
        weights.insert(Part::Upscaler, sum_all(up.tensors(), b) + stats);
    }
    weights.insert(Part::VideoDecoder, sum_prefix(ltx(), &["vae.decoder.", "vae.per_channel_statistics."], &[], b));
    if let (true, Some(lora)) = (job.lora, &files.lora) {
        weights.insert(Part::DistilledLora, sum_all(lora.tensors(), b));
    }
    if job.image {
        weights.insert(Part::VideoEncoder, sum_prefix(ltx(), &["vae.encoder.", "vae.per_channel_statistics."], &[], b));
    }
    if job.audio {
        let audio = sum_prefix(ltx(), &["audio_vae.decoder.", "audio_vae.per_channel_statistics."], &[], b);
        weights.insert(Part::AudioDecoder, audio);
        weights.insert(Part::Vocoder, sum_prefix(ltx(), &["vocoder."], &[], b));
    }
    weights
}

/// The dimensions the activation terms use, from the typed configs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelDims {
    /// Gemma's text decoder: hidden size, MLP width, layers, attention heads.
    pub gemma_hidden: u64,
    pub gemma_intermediate: u64,
    pub gemma_layers: u64,
    pub gemma_heads: u64,
    pub video_dim: u64,
    pub video_heads: u64,
    pub audio_dim: u64,
    pub audio_heads: u64,
    pub latent_channels: u64,
    pub decoder_base: u64,
    /// Audio latent frames per second and mel frames per latent frame.
    pub audio_latents_per_second: f64,
    pub mel_per_latent: u64,
    /// The audio VAE decoder's widest activation per mel frame (mel bins × ch × largest multiplier).
    pub audio_width: u64,
    /// The vocoder's widest activation per mel frame (samples per frame × channels at that stage);
    /// `None` without a vocoder config (jobs without audio).
    pub vocoder_width: Option<u64>,
    /// The upscaler's mid channels; `None` without an upscaler (one-stage jobs).
    pub upscaler_mid: Option<u64>,
}

/// The widest activation (samples × channels) a vocoder holds per mel frame: each upsampling multiplies the
/// length and halves the channels; BigVGAN's anti-aliased activations double the length inside them; the
/// bandwidth extension's generator runs on hop-long frames of the first generator's output.
fn vocoder_width(section: &VocoderSection) -> u64 {
    let generator = |g: &VocoderConfig, frames: u64| {
        let mut channels = g.upsample_initial_channel as u64;
        let (mut length, mut widest) = (1u64, channels);
        for &r in &g.upsample_rates {
            (length, channels) = (length.saturating_mul(r as u64), (channels / 2).max(1));
            widest = widest.max(length.saturating_mul(channels));
        }
        let inner = if g.resblock == "AMP1" { 2 } else { 1 };
        widest.saturating_mul(inner).saturating_mul(frames)
    };
    match section {
        VocoderSection::Plain(g) => generator(g, 1),
        VocoderSection::WithBwe(s) => {
            let samples = s.vocoder.upsample_rates.iter().fold(1u64, |n, &r| n.saturating_mul(r as u64));
            let frames = samples.div_ceil(s.bwe.hop_length.max(1) as u64);
            generator(&s.vocoder, 1).max(generator(&s.bwe_generator, frames))
        }
    }
}

impl ModelDims {
    pub fn new(c: &Configs) -> Self {
        let t = &c.transformer;
        let dd = c.audio_vae.ddconfig();
        let mel_per_latent = 1u64.checked_shl(dd.ch_mult.len().saturating_sub(1) as u32).unwrap_or(u64::MAX);
        let widest = dd.ch_mult.iter().copied().max().map_or(0, u64::from);
        let vocoder_width = c.vocoder.as_ref().map(|voc| vocoder_width(voc) / mel_per_latent.max(1));
        Self {
            gemma_hidden: c.gemma.hidden_size as u64,
            gemma_intermediate: c.gemma.intermediate_size as u64,
            gemma_layers: c.gemma.num_hidden_layers as u64,
            gemma_heads: c.gemma.num_attention_heads as u64,
            video_dim: t.video_inner_dim() as u64,
            video_heads: t.num_attention_heads as u64,
            audio_dim: t.audio_inner_dim() as u64,
            audio_heads: t.audio_num_attention_heads as u64,
            latent_channels: c.vae.latent_channels as u64,
            decoder_base: c.vae.decoder_base_channels as u64,
            audio_latents_per_second: AudioLayout::from_config(&c.audio_vae).latents_per_second,
            mel_per_latent,
            audio_width: c.audio_vae.mel_bins_or_default() as u64 * dd.ch as u64 * widest,
            vocoder_width,
            upscaler_mid: c.upscaler.as_ref().map(|u| u.mid_channels as u64),
        }
    }
}

/// Latent cells (F', H', W') of a video at `width`×`height`×`frames` (VAE: 8× time, 32× space).
fn latent_cells(width: u32, height: u32, frames: u32) -> (u64, u64, u64) {
    (((frames as u64).saturating_sub(1)) / 8 + 1, height as u64 / 32, width as u64 / 32)
}

/// Tenths of a value per output voxel and decoder base channel alive at the decode's peak (fitted:
/// 4.7–4.8 measured; the tiling rule in `video_vae::tiling` allows 80 / 64 = 5 per voxel too).
const DECODE_VALUES_PER_VOXEL: u64 = 50;

/// Each phase's working memory for `job` with the model of `d`, next to `weights`.
pub fn activations(weights: BTreeMap<Part, u64>, job: &JobShape, d: &ModelDims, o: &PlanOptions) -> Estimate {
    let b = compute_bytes(o.dtype);
    let unfused_attention = o.backend == Backend::Cpu;
    let l = o.max_length as u64;

    // Gemma over the padded prompt: every layer's hidden state is kept for the feature extractor, one
    // layer's projections and MLP are live at a time; without a fused kernel, the attention scores
    // and probabilities of every head plus the causal and sliding-window masks.
    let (hidden, intermediate) = (d.gemma_hidden, d.gemma_intermediate);
    let mut encode = (d.gemma_layers + 1) * l * hidden * b + l * (4 * hidden + 3 * intermediate) * b;
    if unfused_attention {
        encode += 2 * d.gemma_heads * l * l * b + 2 * l * l * b;
    }

    // The transformer's widest step at the full-size stage (stage 2 of a two-stage pipeline): hidden
    // states and feed-forward of both modalities, the projected contexts, and without a fused kernel
    // the self, text and cross-modal attention scores.
    let (f, h, w) = latent_cells(job.width, job.height, job.frames);
    let tv = f * h * w;
    let ta = (job.frames as f64 / job.fps * d.audio_latents_per_second).round() as u64;
    let mut denoise = 12 * b * (tv * d.video_dim + ta * d.audio_dim) + 2 * l * (d.video_dim + d.audio_dim) * b;
    if unfused_attention {
        denoise += b * (d.video_heads * tv * (tv + l + ta) + d.audio_heads * ta * (ta + l + tv));
    }

    // The ×2 upscaler: its convolutions at the upsampled size × its mid channels.
    let upscale = match d.upscaler_mid {
        Some(mid) if job.two_stage => 12 * tv * mid * b,
        _ => 0,
    };

    // Video decode: the tile the decode's own budget rule picks, about five values per output voxel
    // and base channel at its last stage.
    let latent_shape = [1, d.latent_channels as i32, f as i32, h as i32, w as i32];
    let tiling = match o.decode_budget {
        Some(budget) => TilingConfig::for_budget(&latent_shape, d.decoder_base as u32, b as usize, budget),
        None => TilingConfig::for_available_memory(&latent_shape, d.decoder_base as u32, b as usize),
    };
    let (mut tf, mut th, mut tw) = (job.frames as u64, job.height as u64, job.width as u64);
    if let Some(t) = tiling {
        if let Some((size, _)) = t.spatial {
            (th, tw) = (th.min(size as u64), tw.min(size as u64));
        }
        if let Some((size, _)) = t.temporal {
            tf = tf.min(size as u64);
        }
    }
    let decode_video = DECODE_VALUES_PER_VOXEL * tf * th * tw * d.decoder_base * b / 10;

    // Audio: the VAE decoder at its widest over every mel frame, then the vocoder.
    let mel = ta * d.mel_per_latent;
    let decode_audio = match d.vocoder_width {
        Some(vocoder) if job.audio => 20 * mel * d.audio_width * b + 10 * mel * vocoder * b,
        _ => 0,
    };

    Estimate { weights, encode, denoise, upscale, decode_video, decode_audio, tiling }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::{config::parse, transformer::TransformerConfig};

    fn tensor(dtype: StDtype, shape: &[usize], stored: usize) -> TensorInfo {
        TensorInfo { dtype, shape: shape.to_vec(), data_offsets: (100, 100 + stored) }
    }

    #[test]
    fn weights_from_headers() {
        let f32 = tensor(StDtype::F32, &[4, 8], 128);
        let fp8 = tensor(StDtype::F8_E4M3, &[4, 8], 32);
        let scale = tensor(StDtype::F32, &[], 4);
        // Floats load in the compute dtype, FP8 stays as stored.
        assert_eq!((loaded_bytes(&f32, 2), loaded_bytes(&f32, 4), loaded_bytes(&fp8, 2)), (64, 128, 32));
        assert_eq!(loaded_bytes(&scale, 2), 2);
        let tensors = [
            ("model.diffusion_model.blocks.0.w", &fp8),
            ("model.diffusion_model.video_embeddings_connector.w", &f32),
            ("vae.decoder.conv.w", &f32),
        ];
        assert_eq!(sum_prefix(tensors, &["model.diffusion_model."], &["embeddings_connector."], 2), 32);
        assert_eq!(sum_prefix(tensors, &["model.diffusion_model.", "vae."], &[], 2), 32 + 64 + 64);
        assert_eq!(sum_prefix(tensors, &["audio_vae."], &[], 2), 0);

        let matrix = tensor(StDtype::BF16, &[64, 64], 8192);
        let norm = tensor(StDtype::BF16, &[64], 128);
        let gemma = [
            ("language_model.model.layers.0.mlp.gate_proj.weight", &matrix),
            ("language_model.model.norm.weight", &norm),
            ("vision_tower.encoder.weight", &matrix),
        ];
        // Packed 4-bit values plus a scale and a bias per 64 in the compute dtype; norms stay dense;
        // the vision tower is not Gemma's text model.
        assert_eq!(gemma_bytes(gemma, GemmaPrecision::Int4, 2), 4096 / 2 + 4096 * 2 * 2 / 64 + 128);
        assert_eq!(gemma_bytes(gemma, GemmaPrecision::Int8, 2), 4096 + 4096 * 2 * 2 / 64 + 128);
        assert_eq!(gemma_bytes(gemma, GemmaPrecision::Bf16, 2), 8192 + 128);
    }

    /// LTX-2 19B's transformer section, Gemma-3-12B's text dimensions, and the other sections empty: their
    /// values are the typed configs' defaults (ltx-core's).
    fn ltx2() -> Configs {
        let root: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/transformer/ltx2_19b_config.json")).unwrap();
        let gemma = json!({"hidden_size": 3840, "intermediate_size": 15360, "num_hidden_layers": 48,
                           "num_attention_heads": 16, "num_key_value_heads": 8});
        Configs {
            gemma: serde_json::from_value(gemma).unwrap(),
            transformer: TransformerConfig::from_value(root["transformer"].clone()).unwrap(),
            vae: parse("vae", json!({})).unwrap(),
            audio_vae: parse("audio_vae", json!({})).unwrap(),
            vocoder: Some(VocoderSection::Plain(parse("vocoder", json!({})).unwrap())),
            upscaler: Some(parse("upsampler", json!({"mid_channels": 512})).unwrap()),
        }
    }

    #[test]
    fn dimensions_from_the_typed_configs() {
        let d = ModelDims::new(&ltx2());
        assert_eq!(
            d,
            ModelDims {
                gemma_hidden: 3840,
                gemma_intermediate: 15360,
                gemma_layers: 48,
                gemma_heads: 16,
                video_dim: 32 * 128,
                video_heads: 32,
                audio_dim: 32 * 64,
                audio_heads: 32,
                latent_channels: 128,
                decoder_base: 128,
                // 16 kHz / hop 160 / 4 (three levels).
                audio_latents_per_second: 25.0,
                mel_per_latent: 4,
                audio_width: 64 * 128 * 4,
                // HiFi-GAN 1024 channels, rates 6·5·2·2·2: widest 30 samples × 256 channels, per 4 mel frames.
                vocoder_width: Some(30 * 256 / 4),
                upscaler_mid: Some(512),
            }
        );
        let c = Configs { vocoder: None, upscaler: None, ..ltx2() };
        let d = ModelDims::new(&c);
        assert_eq!((d.vocoder_width, d.upscaler_mid), (None, None));
        // LTX-2.3: BigVGAN 1536 channels ×5·2⁵ (widest 3840 per mel frame, ×2 inside the anti-aliased
        // activations); the wider extension generator, 512 channels ×6·5·2³ (widest 3840, ×2) on 2 hop-80
        // frames per mel frame.
        let meta: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/audio_vae/ltx23_vocoder_config.json")).unwrap();
        let meta = [("config".to_string(), meta.to_string())].into_iter().collect();
        let vocoder = crate::config::LtxConfig::from_metadata(&meta).unwrap().vocoder().unwrap();
        let d = ModelDims::new(&Configs { vocoder: Some(vocoder), ..ltx2() });
        assert_eq!(d.vocoder_width, Some(3840 * 2 * 2 / 4));
    }

    #[test]
    fn activations_of_a_job() {
        let d = ModelDims::new(&ltx2());
        let job = JobShape {
            width: 768,
            height: 512,
            frames: 121,
            fps: 24.0,
            audio: true,
            image: false,
            two_stage: true,
            upscale: ltx_protocol::Upscale::X2,
            lora: false,
        };
        let o = PlanOptions {
            backend: Backend::Metal,
            dtype: Dtype::Bfloat16,
            max_length: 1024,
            gemma: GemmaPrecision::Bf16,
            low_memory: false,
            decode_budget: Some(usize::MAX),
            budget: u64::MAX,
        };
        let weights = BTreeMap::from([(Part::Transformer, 1000)]);
        let e = activations(weights.clone(), &job, &d, &o);
        assert_eq!(e.weights, weights);
        // 49 hidden states of 1024 × 3840, one layer's projections and MLP; bf16.
        assert_eq!(e.encode, 49 * 1024 * 3840 * 2 + 1024 * (4 * 3840 + 3 * 15360) * 2);
        // 16 × 16 × 24 video tokens, round(121 / 24 × 25) = 126 audio tokens.
        assert_eq!(e.denoise, 12 * 2 * (6144 * 4096 + 126 * 2048) + 2 * 1024 * (4096 + 2048) * 2);
        assert_eq!(e.upscale, 12 * 6144 * 512 * 2);
        assert_eq!((e.tiling, e.decode_video), (None, 5 * 121 * 512 * 768 * 128 * 2));
        assert_eq!(e.decode_audio, 20 * 504 * 32768 * 2 + 10 * 504 * 1920 * 2);

        // Without a fused attention kernel (CPU), the attention scores count too.
        let cpu = activations(weights.clone(), &job, &d, &PlanOptions { backend: Backend::Cpu, ..o });
        assert_eq!(cpu.encode - e.encode, 2 * 16 * 1024 * 1024 * 2 + 2 * 1024 * 1024 * 2);
        assert_eq!(cpu.denoise - e.denoise, 2 * (32 * 6144 * (6144 + 1024 + 126) + 32 * 126 * (126 + 1024 + 6144)));

        // One stage, no audio: no upscaler and no audio decode.
        let plain = JobShape { audio: false, two_stage: false, ..job };
        let p = activations(weights.clone(), &plain, &d, &o);
        assert_eq!((p.upscale, p.decode_audio, p.denoise), (0, 0, e.denoise));

        // A decode budget that only fits small tiles: the decode term follows the tile, not the video.
        let tiled = activations(weights, &job, &d, &PlanOptions { decode_budget: Some(1 << 30), ..o });
        let t = tiled.tiling.expect("tiled");
        assert!(tiled.decode_video < e.decode_video, "{t:?}");
    }

    #[test]
    fn plans_from_the_estimate() {
        let e = Estimate {
            weights: BTreeMap::from([
                (Part::TextEncoder, 20),
                (Part::Transformer, 40),
                (Part::Upscaler, 1),
                (Part::VideoDecoder, 2),
            ]),
            encode: 5,
            denoise: 10,
            upscale: 3,
            decode_video: 8,
            decode_audio: 0,
            tiling: None,
        };
        assert_eq!(e.weight_total(), 63);
        assert_eq!(e.peak(LoadingPlan::AllResident), 63 + 10);
        // Encode 20 + 2 + 5, denoise 40 + 1 + 2 + 10, decode 2 + 8.
        assert_eq!(e.peak(LoadingPlan::LowMemory), 53);
    }
}
