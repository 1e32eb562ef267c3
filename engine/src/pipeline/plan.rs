//! Preflight: before a job touches a weight, estimate its peak memory and pick a loading plan.
//!
//! Weights come from the safetensors headers alone (no tensor is read): bytes per component after
//! loading, i.e. floating tensors in the compute dtype, FP8 tensors kept as one byte, Gemma's matrices
//! at the chosen quantisation. Activations follow the job's shape: Gemma's pass over the padded prompt,
//! the transformer's widest step (tokens × width, attention scores on backends without a fused
//! attention kernel), the upscaler, the video decode tile (the same budget rule the decode uses) and
//! the audio decode. The two plans differ in what is resident when each phase peaks:
//!
//! - all resident: every weight plus the largest phase's activations;
//! - low-memory sequential: encode with Gemma, drop it, denoise, drop the transformer and upscaler,
//!   decode tiled: the largest of the three phases.
//!
//! When even the sequential plan exceeds the budget the job is refused with the numbers and a way out
//! (a smaller size, fewer frames, the FP8 variant, Gemma int4, the low-memory switch).
//!
//! The activation constants were fitted to MLX's measured peak on the CPU backend (f32) with the tiny
//! model set, at two job sizes (`engine/tests/preflight.rs` checks both stay within ±25 %).
use std::{
    collections::BTreeMap,
    fmt,
    io::Read,
    path::{Path, PathBuf},
};

use ltx_protocol::{catalogue, FailureCode, ModelVariant};
use mlx_rs::Dtype;
use serde_json::Value;

use super::{
    components::{
        AUDIO_DECODER, DISTILLED_LORA, TEXT_ENCODER, TRANSFORMER, UPSCALER, VIDEO_DECODER, VIDEO_ENCODER, VOCODER,
    },
    models::ModelSet,
};
use crate::{device::Backend, job::EngineError, text::GemmaPrecision, video_vae::TilingConfig};

const GB: f64 = 1e9;
/// Headers larger than this are not LTX-2 checkpoints (safetensors' own limit is 100 MB).
const MAX_HEADER: u64 = 100 << 20;

fn fail(code: FailureCode, message: String) -> EngineError {
    EngineError::failed(code, message)
}

/// One tensor of a safetensors header.
#[derive(Debug, Clone)]
struct TensorHeader {
    dtype: String,
    elements: u64,
    stored: u64,
}

/// The tensor table and `config` metadata of a safetensors file, read from its header only.
struct Header {
    tensors: BTreeMap<String, TensorHeader>,
    config: Option<Value>,
}

fn read_header(path: &Path) -> Result<Header, EngineError> {
    let bad = |why: String| fail(FailureCode::LoadFailed, format!("{}: {why}", path.display()));
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(bad(format!("safetensors header of {len} bytes")));
    }
    let mut text = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut text).map_err(|e| bad(e.to_string()))?;
    let json: serde_json::Map<String, Value> =
        serde_json::from_slice(&text).map_err(|e| bad(format!("safetensors header: {e}")))?;
    let mut tensors = BTreeMap::new();
    let mut config = None;
    for (name, v) in json {
        if name == "__metadata__" {
            config = v.get("config").and_then(Value::as_str).and_then(|s| serde_json::from_str(s).ok());
            continue;
        }
        let dtype = v.get("dtype").and_then(Value::as_str).ok_or_else(|| bad(format!("`{name}` has no dtype")))?;
        let shape = v.get("shape").and_then(Value::as_array).ok_or_else(|| bad(format!("`{name}` has no shape")))?;
        let elements = shape.iter().map(|d| d.as_u64().unwrap_or(0)).product::<u64>();
        let offsets = v.get("data_offsets").and_then(Value::as_array);
        let stored = offsets
            .and_then(|o| Some(o.get(1)?.as_u64()?.saturating_sub(o.first()?.as_u64()?)))
            .ok_or_else(|| bad(format!("`{name}` has no data offsets")))?;
        tensors.insert(name, TensorHeader { dtype: dtype.to_string(), elements, stored });
    }
    Ok(Header { tensors, config })
}

/// Bytes of a tensor once loaded: floating tensors in the compute dtype, FP8 and integers as stored.
fn loaded_bytes(t: &TensorHeader, compute_bytes: u64) -> u64 {
    match t.dtype.as_str() {
        "F64" | "F32" | "F16" | "BF16" => t.elements * compute_bytes,
        _ => t.stored,
    }
}

fn sum_prefix(h: &Header, prefixes: &[&str], exclude: &[&str], compute_bytes: u64) -> u64 {
    h.tensors
        .iter()
        .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p)) && !exclude.iter().any(|x| n.contains(x)))
        .map(|(_, t)| loaded_bytes(t, compute_bytes))
        .sum()
}

/// The text connectors that live in the transformer checkpoint but belong to the prompt encoder.
const CONNECTORS: [&str; 3] = [
    "model.diffusion_model.video_embeddings_connector.",
    "model.diffusion_model.audio_embeddings_connector.",
    "text_embedding_projection.",
];

/// Gemma's text decoder dimensions (`config.json`'s `text_config`).
#[derive(Debug, Clone, Copy, Default)]
struct GemmaDims {
    hidden: u64,
    intermediate: u64,
    layers: u64,
    heads: u64,
}

fn gemma_files(dir: &Path) -> Result<(Vec<PathBuf>, GemmaDims), EngineError> {
    let files = crate::text::gemma::shard_files(dir).map_err(|e| fail(FailureCode::LoadFailed, e.to_string()))?;
    let config = dir.join("config.json");
    let text = std::fs::read_to_string(&config)
        .map_err(|e| fail(FailureCode::LoadFailed, format!("{}: {e}", config.display())))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| fail(FailureCode::LoadFailed, format!("{}: {e}", config.display())))?;
    let t = v.get("text_config").unwrap_or(&v);
    let n = |k: &str, d: u64| t.get(k).and_then(Value::as_u64).unwrap_or(d);
    // Gemma-3-12B's values where the file leaves them out (as the loader does).
    let dims = GemmaDims {
        hidden: n("hidden_size", 3840),
        intermediate: n("intermediate_size", 15360),
        layers: n("num_hidden_layers", 48),
        heads: n("num_attention_heads", 16),
    };
    Ok((files, dims))
}

/// Bytes of Gemma's text weights once loaded at `precision` (matrices quantised, vectors dense).
fn gemma_bytes(files: &[PathBuf], precision: GemmaPrecision, compute_bytes: u64) -> Result<u64, EngineError> {
    let mut total = 0;
    for f in files {
        let h = read_header(f)?;
        for (name, t) in &h.tensors {
            if !name.starts_with(crate::text::gemma::KEY_PREFIX) {
                continue;
            }
            let matrix = t.elements > 0 && !name.contains("norm");
            total += match precision.bits() {
                // Packed weights plus a scale and a bias per group of 64, in the compute dtype.
                Some(bits) if matrix => t.elements * bits as u64 / 8 + t.elements * 2 * compute_bytes / 64,
                _ => loaded_bytes(t, compute_bytes),
            };
        }
    }
    Ok(total)
}

/// What the estimate needs from a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobShape {
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub fps: f64,
    pub audio: bool,
    pub image: bool,
    /// Stage 1 at half size then the upscaler (the distilled and two-stage pipelines).
    pub two_stage: bool,
    /// The distilled LoRA on stage 2 (the two-stage pipeline).
    pub lora: bool,
}

/// How the engine will run and what it may use.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    pub backend: Backend,
    pub dtype: Dtype,
    /// Prompt tokens (1024 for LTX-2).
    pub max_length: usize,
    pub gemma: GemmaPrecision,
    /// Run the low-memory plan even when everything would fit.
    pub low_memory: bool,
    /// The decode's tiling budget (`None`: half of what the system has free, as the decode does).
    pub decode_budget: Option<usize>,
    /// Bytes the job may use at its peak.
    pub budget: u64,
}

/// The loading plan a job runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadingPlan {
    /// Every component stays loaded.
    AllResident,
    /// Encode → drop Gemma → denoise → drop transformer and upscaler → decode tiled.
    LowMemory,
}

impl LoadingPlan {
    pub fn name(self) -> &'static str {
        match self {
            Self::AllResident => "all resident",
            Self::LowMemory => "low-memory sequential",
        }
    }
}

/// The estimate: weights per component and each phase's working memory, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub weights: BTreeMap<&'static str, u64>,
    pub encode: u64,
    pub denoise: u64,
    pub upscale: u64,
    pub decode_video: u64,
    pub decode_audio: u64,
    /// The tiling the decode will use (`None`: untiled).
    pub tiling: Option<TilingConfig>,
}

impl Estimate {
    fn w(&self, names: &[&str]) -> u64 {
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
        let decoders = self.w(&[VIDEO_DECODER, AUDIO_DECODER, VOCODER]);
        let encode = self.w(&[TEXT_ENCODER, VIDEO_ENCODER, VIDEO_DECODER]) + self.encode;
        let denoise = self.w(&[TRANSFORMER, UPSCALER, DISTILLED_LORA, VIDEO_ENCODER, VIDEO_DECODER])
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

/// The preflight's decision for one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Preflight {
    pub plan: LoadingPlan,
    pub estimate: Estimate,
    pub peak: u64,
    pub budget: u64,
}

impl fmt::Display for Preflight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} plan, estimated peak {:.2} GB (weights {:.2} GB) of a {:.2} GB budget",
            self.plan.name(),
            self.peak as f64 / GB,
            self.estimate.weight_total() as f64 / GB,
            self.budget as f64 / GB
        )
    }
}

/// Latent cells (F', H', W') of a video at `width`×`height`×`frames` (VAE: 8× time, 32× space).
fn latent_cells(width: u32, height: u32, frames: u32) -> (u64, u64, u64) {
    (((frames as u64).saturating_sub(1)) / 8 + 1, height as u64 / 32, width as u64 / 32)
}

/// The dimensions the activation terms use, read from the checkpoint's config.
#[derive(Debug, Clone, Copy)]
struct ModelDims {
    video_dim: u64,
    video_heads: u64,
    audio_dim: u64,
    audio_heads: u64,
    latent_channels: u64,
    decoder_base: u64,
    /// Audio latent frames per second and mel frames per latent frame.
    audio_latents_per_second: f64,
    mel_per_latent: u64,
    /// The audio VAE decoder's widest activation per mel frame (mel bins × ch × largest multiplier).
    audio_width: u64,
    /// The vocoder's widest activation per mel frame (samples per frame × channels at that stage).
    vocoder_width: u64,
    upscaler_mid: u64,
}

fn model_dims(config: &Value, upscaler: &Option<Value>) -> ModelDims {
    let n = |v: &Value, path: &[&str], d: u64| {
        path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_u64).unwrap_or(d)
    };
    let t = &config["transformer"];
    let vheads = n(t, &["num_attention_heads"], 32);
    let aheads = n(t, &["audio_num_attention_heads"], 32);
    let dd = &config["audio_vae"]["model"]["params"]["ddconfig"];
    let mults: Vec<u64> =
        dd["ch_mult"].as_array().map_or(vec![1, 2, 4], |m| m.iter().filter_map(Value::as_u64).collect());
    let mel_per_latent = 1u64.checked_shl(mults.len().saturating_sub(1) as u32).unwrap_or(u64::MAX);
    let layout = crate::config::parse::<crate::config::AudioVaeConfig>("audio_vae", config["audio_vae"].clone())
        .map(|c| super::latents::AudioLayout::from_config(&c))
        .ok();
    let audio_width = n(dd, &["mel_bins"], 64) * n(dd, &["ch"], 128) * mults.iter().copied().max().unwrap_or(4);
    // HiFi-GAN: each upsampling multiplies the length and halves the channels.
    let voc = &config["vocoder"];
    let rates: Vec<u64> =
        voc["upsample_rates"].as_array().map_or(vec![6, 5, 2, 2, 2], |r| r.iter().filter_map(Value::as_u64).collect());
    let mut channels = n(voc, &["upsample_initial_channel"], 1024);
    let (mut length, mut vocoder_width) = (1u64, channels);
    for r in rates {
        (length, channels) = (length.saturating_mul(r), (channels / 2).max(1));
        vocoder_width = vocoder_width.max(length.saturating_mul(channels));
    }
    ModelDims {
        video_dim: vheads * n(t, &["attention_head_dim"], 128),
        video_heads: vheads,
        audio_dim: aheads * n(t, &["audio_attention_head_dim"], 64),
        audio_heads: aheads,
        latent_channels: n(&config["vae"], &["latent_channels"], 128),
        decoder_base: n(&config["vae"], &["decoder_base_channels"], 128),
        audio_latents_per_second: layout.map_or(25.0, |l| l.latents_per_second),
        mel_per_latent,
        audio_width,
        vocoder_width: vocoder_width / mel_per_latent.max(1),
        upscaler_mid: upscaler.as_ref().map_or(512, |u| n(u, &["mid_channels"], 512)),
    }
}

/// Estimates the job's weights and activations from the files' headers.
pub fn estimate(models: &ModelSet, job: &JobShape, o: &PlanOptions) -> Result<Estimate, EngineError> {
    let b = if o.dtype == Dtype::Float32 { 4 } else { 2 };
    let ltx = read_header(&models.checkpoint)?;
    let config = ltx.config.clone().ok_or_else(|| {
        fail(FailureCode::LoadFailed, format!("{}: no LTX-2 `config` metadata", models.checkpoint.display()))
    })?;
    let up = read_header(&models.upscaler)?;
    let (gemma_files, gemma) = gemma_files(&models.text_encoder)?;

    let mut weights = BTreeMap::new();
    let text = gemma_bytes(&gemma_files, o.gemma, b)? + sum_prefix(&ltx, &CONNECTORS, &[], b);
    weights.insert(TEXT_ENCODER, text);
    weights.insert(TRANSFORMER, sum_prefix(&ltx, &["model.diffusion_model."], &["embeddings_connector."], b));
    let vae = &ltx;
    let stats = sum_prefix(vae, &["vae.per_channel_statistics."], &[], b);
    if job.two_stage {
        weights.insert(UPSCALER, up.tensors.values().map(|t| loaded_bytes(t, b)).sum::<u64>() + stats);
    }
    weights.insert(VIDEO_DECODER, sum_prefix(vae, &["vae.decoder.", "vae.per_channel_statistics."], &[], b));
    if job.lora && models.distilled_lora.is_file() {
        let lora = read_header(&models.distilled_lora)?;
        weights.insert(DISTILLED_LORA, lora.tensors.values().map(|t| loaded_bytes(t, b)).sum());
    }
    if job.image {
        weights.insert(VIDEO_ENCODER, sum_prefix(vae, &["vae.encoder.", "vae.per_channel_statistics."], &[], b));
    }
    if job.audio {
        weights.insert(
            AUDIO_DECODER,
            sum_prefix(&ltx, &["audio_vae.decoder.", "audio_vae.per_channel_statistics."], &[], b),
        );
        weights.insert(VOCODER, sum_prefix(&ltx, &["vocoder."], &[], b));
    }

    let d = model_dims(&config, &up.config);
    let unfused_attention = o.backend == Backend::Cpu;
    let l = o.max_length as u64;

    // Gemma over the padded prompt: every layer's hidden state is kept for the feature extractor, one
    // layer's projections and MLP are live at a time; without a fused kernel, the attention scores
    // and probabilities of every head plus the causal and sliding-window masks.
    let mut encode = (gemma.layers + 1) * l * gemma.hidden * b + l * (4 * gemma.hidden + 3 * gemma.intermediate) * b;
    if unfused_attention {
        encode += 2 * gemma.heads * l * l * b + 2 * l * l * b;
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
    let upscale = if job.two_stage { 12 * tv * d.upscaler_mid * b } else { 0 };

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
    let decode_audio = if job.audio { 20 * mel * d.audio_width * b + 10 * mel * d.vocoder_width * b } else { 0 };

    Ok(Estimate { weights, encode, denoise, upscale, decode_video, decode_audio, tiling })
}

/// Tenths of a value per output voxel and decoder base channel alive at the decode's peak (fitted:
/// 4.7–4.8 measured; the tiling rule in `video_vae::tiling` allows 80 / 64 = 5 per voxel too).
const DECODE_VALUES_PER_VOXEL: u64 = 50;

/// Picks the plan for a job, or refuses it with the reason and what would fit.
pub fn preflight(models: &ModelSet, job: &JobShape, o: &PlanOptions) -> Result<Preflight, EngineError> {
    let estimate = estimate(models, job, o)?;
    let (all, low) = (estimate.all_resident(), estimate.low_memory());
    let plan = if !o.low_memory && all <= o.budget { LoadingPlan::AllResident } else { LoadingPlan::LowMemory };
    let peak = estimate.peak(plan);
    if peak <= o.budget {
        return Ok(Preflight { plan, estimate, peak, budget: o.budget });
    }
    Err(fail(FailureCode::InsufficientMemory, refusal(models, job, o, &estimate, low)))
}

fn refusal(models: &ModelSet, job: &JobShape, o: &PlanOptions, e: &Estimate, low: u64) -> String {
    let gb = |b: u64| b as f64 / GB;
    let mut ways = Vec::new();
    // The largest size of the same aspect (multiples of 64) that fits with the sequential plan.
    let fits =
        |j: &JobShape| estimate(models, j, &PlanOptions { low_memory: true, ..*o }).map(|e| e.low_memory() <= o.budget);
    let smaller = (1..8).map(|k| 8 - k).find_map(|k| {
        let (w, h) = ((job.width as u64 * k / 8) / 64 * 64, (job.height as u64 * k / 8) / 64 * 64);
        let j = JobShape { width: w as u32, height: h as u32, ..*job };
        (w >= 64 && h >= 64 && fits(&j).unwrap_or(false)).then_some(j)
    });
    if let Some(j) = smaller {
        ways.push(format!("a smaller size ({}x{})", j.width, j.height));
    }
    if job.frames > 9 {
        let j = JobShape { frames: 9.max((job.frames / 2) / 8 * 8 + 1), ..*job };
        if fits(&j).unwrap_or(false) {
            ways.push(format!("fewer frames ({})", j.frames));
        }
    }
    if models.variant != ModelVariant::DistilledFp8 {
        ways.push("the distilled-fp8 variant (FP8 transformer weights, half the bytes)".into());
    }
    if o.gemma != GemmaPrecision::Int4 {
        ways.push("a smaller memory profile (Gemma int4)".into());
    }
    if !o.low_memory {
        ways.push("--low-memory".into());
    }
    let heaviest = e
        .weights
        .iter()
        .max_by_key(|(_, b)| **b)
        .map_or(String::new(), |(n, b)| format!("; the largest component, {n}, alone is {:.2} GB", gb(*b)));
    format!(
        "not enough memory for {}x{}x{} frames: the estimated peak is {:.2} GB even with the low-memory \
         sequential plan (weights {:.2} GB{heaviest}), and {:.2} GB is available. Try {}",
        job.width,
        job.height,
        job.frames,
        gb(low),
        gb(e.weight_total()),
        gb(o.budget),
        if ways.is_empty() { "a machine with more memory".to_string() } else { ways.join(", or ") }
    )
}

/// Total and currently available system memory in bytes. Linux: `MemTotal`/`MemAvailable`; macOS
/// (unified memory): MLX's GPU memory limit, which defaults to the device's recommended working set.
pub fn system_memory() -> (u64, u64) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let field = |key: &str| {
        meminfo.as_deref().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
        })
    };
    match (field("MemTotal:"), field("MemAvailable:")) {
        (Some(total), Some(avail)) => (total, avail),
        _ => {
            let limit = mlx_rs::memory::memory_limit().unwrap_or(0) as u64;
            let limit = if limit == 0 { 8 << 30 } else { limit };
            (limit, limit)
        }
    }
}

/// A pipeline's memory settings: the profile it runs with and a fixed budget overriding the machine's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemorySettings {
    pub profile: Option<super::profile::MemoryProfile>,
    /// Bytes a job may use at its peak (config `memory_budget`); `None`: what the machine has.
    pub budget: Option<u64>,
}

impl MemorySettings {
    /// Gemma's precision on `backend`: the profile's, except on MLX CUDA, whose quantised matmul gave
    /// 1.07 (int8) / 1.22 (int4) relative L2 error on the tiny model's encode and is unverified at Gemma's
    /// real shapes (BENCHMARKS.md, GPU): there Gemma runs in bf16 (the plan can still drop it after encoding).
    pub fn gemma(&self, backend: Backend) -> GemmaPrecision {
        match self.profile {
            Some(_) if backend == Backend::Cuda => GemmaPrecision::Bf16,
            Some(p) => p.gemma,
            None => GemmaPrecision::Bf16,
        }
    }

    /// The budget now: the fixed one, else the memory available plus what MLX already holds in this
    /// process (resident components are reused or freed before the job), capped by the profile.
    pub fn budget_now(&self) -> u64 {
        self.budget.unwrap_or_else(|| {
            let held = crate::memory::MemoryReport::now();
            let available = system_memory().1 + (held.mlx_active + held.mlx_cache) as u64;
            self.profile.map_or(available, |p| available.min(p.peak_budget))
        })
    }
}

/// The preflight of one request; the same refusal as the submit check when its files are missing.
pub fn for_request(
    models: &ModelSet,
    r: &ltx_protocol::ValidRequest,
    compute: crate::Compute,
    max_length: usize,
    memory: &MemorySettings,
    low_memory: bool,
    decode_budget: Option<usize>,
) -> Result<Preflight, EngineError> {
    models.check(r.pipeline)?;
    let job = JobShape {
        width: r.width,
        height: r.height,
        frames: r.frames,
        fps: r.fps as f64,
        audio: r.audio,
        image: r.image.is_some(),
        two_stage: r.pipeline.rules().two_stage,
        lora: catalogue::components(r.variant, r.pipeline).contains(&catalogue::Component::DistilledLora),
    };
    let options = PlanOptions {
        backend: compute.backend,
        dtype: compute.dtype,
        max_length,
        gemma: memory.gemma(compute.backend),
        low_memory,
        decode_budget,
        budget: memory.budget_now(),
    };
    let flight = preflight(models, &job, &options)?;
    tracing::info!(variant = models.variant.name(), "preflight: {flight}");
    Ok(flight)
}
