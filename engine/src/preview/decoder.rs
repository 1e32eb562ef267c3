//! TAEHV's decoder (`taehv.py`, the base `TAEHV.decoder`), for TAELTX: a 23-layer sequence whose indices are
//! the checkpoint's (`decoder.{i}.…`; the clamp, ReLUs and upsamplers hold no weights):
//!
//! clamp · conv(C→256) · ReLU · then three stages of [3 memory blocks · nearest ×2 · `TGrow` · conv without
//! bias (256→128, 128→64, 64→64)] · ReLU · conv(64→3p²) · pixel shuffle ×p · clamp to [0, 1].
//!
//! A memory block sees its input and the previous frame's input (zeros before the first frame); `TGrow`
//! turns each frame into `stride` frames (a 1×1 conv to stride·C channels, channel block j → frame j). So
//! F latent frames become 8F frames of which the first 7 are dropped (`frames_to_trim`), and a latent cell
//! becomes 32×32 pixels (8 from the upsamplers, 4 from the shuffle) — LTX's own compression.
//!
//! Channels-last inside: frames are (B·T, H, W, C). Decoding runs in chunks of latent frames carrying each
//! memory block's last input frame ([`DecoderMemory`]), which is exactly the all-at-once result: the reference
//! runs every frame in parallel, its causal memory makes each output frame depend only on earlier latents.
use std::path::Path;

use ltx_protocol::rules::PreviewRules;
use mlx_rs::{macros::ModuleParameters, nn, ops, Array, Dtype};

use crate::{
    checkpoint::{Checkpoint, LoadOptions},
    video_vae::{convolution::Conv, dims, module_enum, ops::slice_axis, Result, VaeError},
};

/// Widths of the decoder's input and its three stages (the reference's base decoder, `n_f`).
const WIDTHS: [i32; 4] = [256, 128, 64, 64];
/// Memory blocks per stage.
const BLOCKS: usize = 3;
const RGB: i32 = 3;
/// The file holds the reference's whole `state_dict()`: the encoder's tensors are not read.
const ENCODER: &str = "encoder.";

/// A layer without weights (clamp, ReLU).
#[derive(Debug, Clone, ModuleParameters)]
pub struct Stateless;

/// `nn.Upsample(scale_factor)`, nearest neighbour.
#[derive(Debug, Clone, ModuleParameters)]
pub struct Upsample {
    pub factor: i32,
}

/// `MemBlock(n, n)`: ReLU(conv3(cat(x, past)) → ReLU → conv3 → ReLU → conv3, plus x); keys `conv.{0,2,4}.*`.
/// The skip is a 1×1 conv (`skip.weight`) only where the widths differ, which TAEHV's decoder never has.
#[derive(Debug, Clone, ModuleParameters)]
pub struct MemBlock {
    #[param]
    pub conv: Vec<Layer>,
    #[param]
    pub skip: Option<Conv>,
}

/// `TGrow(n, stride)`: 1×1 conv (no bias) to stride·n channels, then each frame becomes `stride` frames.
#[derive(Debug, Clone, ModuleParameters)]
pub struct TGrow {
    #[param]
    pub conv: Conv,
    pub stride: i32,
}

#[derive(Debug, Clone)]
pub enum Layer {
    /// `Clamp`: 3·tanh(x/3).
    Clamp(Stateless),
    /// `nn.Conv2d` with zero padding k/2.
    Conv(Conv),
    Relu(Stateless),
    Mem(MemBlock),
    Upsample(Upsample),
    Grow(TGrow),
}
module_enum!(Layer { Clamp, Conv, Relu, Mem, Upsample, Grow });

/// What a chunked decode carries from one chunk of latent frames to the next.
#[derive(Debug, Default)]
pub struct DecoderMemory {
    /// Per layer index: a memory block's input at the last frame it saw, (B, 1, H, W, C).
    past: Vec<Option<Array>>,
    /// Decoded frames so far, trimmed ones included.
    decoded: i32,
}

/// The conv's zero padding: k/2 for its (O, k, k, I) kernel.
fn same(conv: &Conv, x: &Array) -> Result<Array> {
    let k = conv.weight.shape().get(1).copied().unwrap_or(1);
    conv.forward_with(x, &[k / 2, k / 2], &[1, 1])
}

fn conv(inputs: i32, outputs: i32, kernel: i32, bias: bool) -> Result<Conv> {
    Conv::new(inputs, outputs, &[kernel, kernel], bias)
}

impl MemBlock {
    fn new(n: i32) -> Result<Self> {
        let conv = vec![
            Layer::Conv(conv(2 * n, n, 3, true)?),
            Layer::Relu(Stateless),
            Layer::Conv(conv(n, n, 3, true)?),
            Layer::Relu(Stateless),
            Layer::Conv(conv(n, n, 3, true)?),
        ];
        Ok(Self { conv, skip: None })
    }

    fn forward(&self, x: &Array, past: &Array) -> Result<Array> {
        let mut h = ops::concatenate(&[x, past], -1)?;
        for layer in &self.conv {
            h = match layer {
                Layer::Conv(c) => same(c, &h)?,
                Layer::Relu(_) => nn::relu(&h)?,
                other => return Err(VaeError::Unsupported(format!("{other:?} inside a memory block"))),
            };
        }
        let skip = match &self.skip {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        Ok(nn::relu(h.add(skip)?)?)
    }
}

impl TGrow {
    /// (N, H, W, C) → (N·stride, H, W, C), frame t·stride + j from channel block j.
    fn forward(&self, x: &Array) -> Result<Array> {
        let [n, h, w, c] = dims(x, "TGrow's input")?;
        let s = self.stride;
        let y = self.conv.forward(x)?.reshape(&[n, h, w, s, c])?.transpose_axes(&[0, 3, 1, 2, 4])?;
        Ok(y.reshape(&[n * s, h, w, c])?)
    }
}

/// Nearest-neighbour ×f on (N, H, W, C).
fn upsample(x: &Array, f: i32) -> Result<Array> {
    if f == 1 {
        return Ok(x.clone());
    }
    let [n, h, w, c] = dims(x, "the upsampler's input")?;
    let y = ops::broadcast_to(x.reshape(&[n, h, 1, w, 1, c])?, &[n, h, f, w, f, c])?;
    Ok(y.reshape(&[n, h * f, w * f, c])?)
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct TaeDecoder {
    #[param]
    pub decoder: Vec<Layer>,
    pub latent_channels: i32,
    pub patch_size: i32,
    /// Decoded frames the reference drops at the start (`frames_to_trim`): frames per latent frame − 1.
    pub trim: i32,
    /// The layers from this index on work frame by frame (no memory block, no `TGrow` among them): the
    /// dropped frames are dropped before them, so they never reach the costly full-size convolutions.
    pub per_frame_from: usize,
}

impl TaeDecoder {
    /// The decoder a preview rules row describes, with placeholder weights for the loader to fill.
    pub fn new(rules: &PreviewRules) -> Result<Self> {
        let (c, p) = (rules.latent_channels as i32, rules.patch_size as i32);
        if c < 1 || p < 1 {
            return Err(VaeError::Unsupported(format!("preview decoder with {c} latent channels, patch {p}")));
        }
        let mut decoder =
            vec![Layer::Clamp(Stateless), Layer::Conv(conv(c, WIDTHS[0], 3, true)?), Layer::Relu(Stateless)];
        let mut per_latent = 1;
        for (stage, grow) in rules.time_upscale.iter().enumerate() {
            let (n, next) = (WIDTHS[stage], WIDTHS[stage + 1]);
            for _ in 0..BLOCKS {
                decoder.push(Layer::Mem(MemBlock::new(n)?));
            }
            let stride = if *grow { 2 } else { 1 };
            per_latent *= stride;
            decoder.push(Layer::Upsample(Upsample { factor: 2 }));
            decoder.push(Layer::Grow(TGrow { conv: conv(n, n * stride, 1, false)?, stride }));
            decoder.push(Layer::Conv(conv(n, next, 3, false)?));
        }
        decoder.push(Layer::Relu(Stateless));
        decoder.push(Layer::Conv(conv(WIDTHS[3], RGB * p * p, 3, true)?));
        let per_frame_from =
            decoder.iter().rposition(|l| matches!(l, Layer::Mem(_) | Layer::Grow(_))).map_or(0, |i| i + 1);
        Ok(Self { decoder, latent_channels: c, patch_size: p, trim: per_latent - 1, per_frame_from })
    }

    /// Reads a TAEHV weights file (`decoder.*`; its `encoder.*` is skipped) laid out as `rules` says.
    pub fn from_file(path: impl AsRef<Path>, rules: &PreviewRules, dtype: Dtype) -> Result<Self> {
        let checkpoint = Checkpoint::open(path)?;
        let mut model = Self::new(rules)?;
        let options = LoadOptions { dtype: Some(dtype), ignore: &|k| k.starts_with(ENCODER), ..Default::default() };
        checkpoint.load_into(&mut model, "", &options)?;
        Ok(model)
    }

    pub fn dtype(&self) -> Dtype {
        self.decoder
            .iter()
            .find_map(|l| match l {
                Layer::Conv(c) => Some(c.weight.dtype()),
                _ => None,
            })
            .unwrap_or(Dtype::Float32)
    }

    /// Decodes a normalised latent (B, C, F, H, W) to RGB (B, 8(F − 1) + 1, 32H, 32W, 3) in [0, 1].
    pub fn decode(&self, latent: &Array) -> Result<Array> {
        self.decode_chunk(latent, &mut DecoderMemory::default())
    }

    /// The first frame alone (B, 1, 32H, 32W, 3): it depends on the first latent frame only.
    pub fn first_frame(&self, latent: &Array) -> Result<Array> {
        self.decode(&slice_axis(latent, 2, 0, 1)?)
    }

    /// [`Self::decode`] `chunk` latent frames at a time, each chunk's frames evaluated and handed to `sink`
    /// (peak memory bounded by the chunk, not the video).
    pub fn decode_chunked(&self, latent: &Array, chunk: i32, mut sink: impl FnMut(Array) -> Result<()>) -> Result<()> {
        let [_, _, frames, _, _] = dims(latent, "the latent")?;
        let mut memory = DecoderMemory::default();
        let mut start = 0;
        while start < frames {
            let end = (start + chunk.max(1)).min(frames);
            let out = self.decode_chunk(&slice_axis(latent, 2, start, end)?, &mut memory)?;
            let carried: Vec<&Array> = memory.past.iter().flatten().collect();
            mlx_rs::transforms::eval(carried.into_iter().chain([&out]))?;
            sink(out)?;
            start = end;
        }
        Ok(())
    }

    /// The next latent frames (B, C, F, H, W) of a decode whose earlier frames `memory` carries.
    pub fn decode_chunk(&self, latent: &Array, memory: &mut DecoderMemory) -> Result<Array> {
        let [b, c, mut frames, h, w] = dims(latent, "the latent")?;
        if c != self.latent_channels {
            return Err(VaeError::Input(format!(
                "a latent of {c} channels for a {}-channel decoder",
                self.latent_channels
            )));
        }
        memory.past.resize(self.decoder.len(), None);
        let mut x = latent.transpose_axes(&[0, 2, 3, 4, 1])?.reshape(&[b * frames, h, w, c])?.as_dtype(self.dtype())?;
        if frames < 1 {
            return Err(VaeError::Input("a latent without frames".into()));
        }
        for (i, layer) in self.decoder.iter().enumerate() {
            if i == self.per_frame_from {
                (x, frames) = self.trim(x, b, frames, memory)?;
            }
            x = match layer {
                Layer::Clamp(_) => ops::tanh(x.divide(Array::from_f32(3.0))?)?.multiply(Array::from_f32(3.0))?,
                Layer::Conv(conv) => same(conv, &x)?,
                Layer::Relu(_) => nn::relu(&x)?,
                Layer::Upsample(u) => upsample(&x, u.factor)?,
                Layer::Grow(g) => {
                    frames *= g.stride;
                    g.forward(&x)?
                }
                Layer::Mem(block) => {
                    let [n, hh, ww, cc] = dims(&x, "a memory block's input")?;
                    let seq = x.reshape(&[b, frames, hh, ww, cc])?;
                    let first = match memory.past[i].take() {
                        Some(p) => p,
                        None => Array::zeros::<f32>(&[b, 1, hh, ww, cc])?.as_dtype(x.dtype())?,
                    };
                    let past = ops::concatenate(&[&first, &slice_axis(&seq, 1, 0, frames - 1)?], 1)?;
                    memory.past[i] = Some(slice_axis(&seq, 1, frames - 1, frames)?);
                    block.forward(&x, &past.reshape(&[n, hh, ww, cc])?)?
                }
            };
        }
        if self.per_frame_from >= self.decoder.len() {
            (x, frames) = self.trim(x, b, frames, memory)?;
        }
        let [_, hh, ww, cpp] = dims(&x, "the decoder's output")?;
        let p = self.patch_size;
        if cpp % (p * p) != 0 {
            return Err(VaeError::Input(format!("{cpp} output channels for patch size {p}")));
        }
        let rgb = cpp / (p * p);
        let x = x.reshape(&[b * frames, hh, ww, rgb, p, p])?.transpose_axes(&[0, 1, 4, 2, 5, 3])?;
        Ok(ops::clip(&x.reshape(&[b, frames, hh * p, ww * p, rgb])?, (0.0f32, 1.0f32))?)
    }
}

impl TaeDecoder {
    /// Drops what is left of the first `trim` frames of the decode from `x` ((B·frames, H, W, C)).
    fn trim(&self, x: Array, b: i32, frames: i32, memory: &mut DecoderMemory) -> Result<(Array, i32)> {
        let skip = (self.trim - memory.decoded).clamp(0, frames);
        memory.decoded += frames;
        if skip == 0 {
            return Ok((x, frames));
        }
        let [_, h, w, c] = dims(&x, "the frames to trim")?;
        let kept = slice_axis(&x.reshape(&[b, frames, h, w, c])?, 1, skip, frames)?;
        Ok((kept.reshape(&[b * (frames - skip), h, w, c])?, frames - skip))
    }
}

/// Frames (B, F, H, W, 3) in [0, 1] as RGB24 bytes (×255, rounded), frame-major.
pub fn to_rgb24(frames: &Array) -> Result<Vec<u8>> {
    let x = frames.as_dtype(Dtype::Float32)?.multiply(Array::from_f32(255.0))?;
    let x = x.round(None)?.as_dtype(Dtype::Uint8)?.contiguous()?;
    x.eval()?;
    let bytes = x.try_as_slice::<u8>().map_err(|e| VaeError::Input(format!("frames not readable: {e:?}")))?;
    Ok(bytes.to_vec())
}
