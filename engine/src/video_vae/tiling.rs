//! Tiled decoding (`tiling.py`, `VideoDecoder.tiled_decode`): the latent is cut into overlapping
//! spatial and temporal tiles, each tile is decoded alone and blended into the output with the
//! reference's trapezoidal masks; finished frames are handed out one temporal chunk at a time, so peak
//! memory follows the tile size, not the video size.
use std::ops::Range;

use ltx_protocol::sysmem;
use mlx_rs::{ops, Array};

use super::{ops::slice_axis, DecodeOptions, Result, VaeError, VideoDecoder};

/// Latent -> pixel scale factors of LTX-2's video VAE (time, space).
const TIME_SCALE: i32 = 8;
const SPACE_SCALE: i32 = 32;

/// Tile sizes in output units (ltx-core `TilingConfig`); `None` leaves that axis whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilingConfig {
    /// (tile size, overlap) in pixels: size ≥ 64, both multiples of 32, overlap < size.
    pub spatial: Option<(u32, u32)>,
    /// (tile size, overlap) in frames: size ≥ 16, both multiples of 8, overlap < size.
    pub temporal: Option<(u32, u32)>,
}

impl Default for TilingConfig {
    /// `TilingConfig.default()`: 512 px tiles with 64 px overlap, 64-frame tiles with 24 frames overlap.
    fn default() -> Self {
        Self { spatial: Some((512, 64)), temporal: Some((64, 24)) }
    }
}

/// Peak values held per latent cell and decoder base channel during a decode: the last stage has
/// 8×8×8 = 512 voxels per latent cell at the base width, and MLX's CPU convolutions keep about 70 such
/// tensors' worth alive at the peak (measured with `benches/decoders.rs`: 1678 MiB for a (3, 8, 8) latent
/// at 64 base channels in f32, see BENCHMARKS.md); 80 leaves some margin.
const PEAK_VALUES_PER_CELL_PER_CHANNEL: usize = 512 * 80;

impl TilingConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(VaeError::Input(format!("tiling: {what}")));
        if let Some((size, overlap)) = self.spatial {
            if size < 64 || size % 32 != 0 || overlap % 32 != 0 || overlap >= size {
                return bad(format!("spatial tile {size} px / overlap {overlap} px"));
            }
        }
        if let Some((size, overlap)) = self.temporal {
            if size < 16 || size % 8 != 0 || overlap % 8 != 0 || overlap >= size {
                return bad(format!("temporal tile {size} frames / overlap {overlap} frames"));
            }
        }
        Ok(())
    }

    /// The largest tiles (ltx-core's default overlaps) whose decode fits `budget` bytes, for a latent of
    /// `latent_shape` (B, C, F', H', W'); `None` when the whole latent fits untiled.
    pub fn for_budget(latent_shape: &[i32], base_channels: u32, dtype_bytes: usize, budget: usize) -> Option<Self> {
        let per_cell = PEAK_VALUES_PER_CELL_PER_CHANNEL * base_channels as usize * dtype_bytes;
        let max_cells = (budget / per_cell).max(1);
        let (f, h, w) = (latent_shape[2] as usize, latent_shape[3] as usize, latent_shape[4] as usize);
        if f * h * w <= max_cells {
            return None;
        }
        // Keep 64-frame tiles (8 latents) when possible and shrink space first, down to 64 px tiles.
        let frames = f.min(8);
        let side = ((max_cells / frames) as f64).sqrt().floor() as u32;
        let spatial = (side * 32).clamp(64, 32 * h.max(w) as u32);
        let spatial = Some((spatial, if spatial > 64 { 64 } else { 32 }));
        let temporal = match side >= 2 {
            true => (frames < f).then_some((64, 24)),
            false => Some((16, 8)),
        };
        Some(Self { spatial, temporal })
    }

    /// [`Self::for_budget`] with half the memory the system reports available ([`sysmem::system`]).
    pub fn for_available_memory(latent_shape: &[i32], base_channels: u32, dtype_bytes: usize) -> Option<Self> {
        let available = usize::try_from(sysmem::system().available).unwrap_or(usize::MAX);
        Self::for_budget(latent_shape, base_channels, dtype_bytes, available / 2)
    }
}

/// Per-axis split (ltx-core `DimensionIntervals`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervals {
    pub starts: Vec<i32>,
    pub ends: Vec<i32>,
    pub left_ramps: Vec<i32>,
    pub right_ramps: Vec<i32>,
}

impl Intervals {
    fn whole(n: i32) -> Self {
        Self { starts: vec![0], ends: vec![n], left_ramps: vec![0], right_ramps: vec![0] }
    }
}

/// `split_with_symmetric_overlaps(size, overlap)`.
pub fn split_symmetric(n: i32, size: i32, overlap: i32) -> Intervals {
    if n <= size {
        return Intervals::whole(n);
    }
    let amount = (n + size - 2 * overlap - 1) / (size - overlap);
    let starts: Vec<i32> = (0..amount).map(|i| i * (size - overlap)).collect();
    let mut ends: Vec<i32> = starts.iter().map(|s| s + size).collect();
    if let Some(last) = ends.last_mut() {
        *last = n;
    }
    let ramps = |first: i32, rest: i32| (0..amount).map(|i| if i == 0 { first } else { rest }).collect::<Vec<_>>();
    let mut right_ramps = ramps(overlap, overlap);
    if let Some(last) = right_ramps.last_mut() {
        *last = 0;
    }
    Intervals { starts, ends, left_ramps: ramps(0, overlap), right_ramps }
}

/// `split_temporal_latents(size, overlap)`: later tiles start one latent earlier (causal context) and
/// blend over one more step.
pub fn split_temporal(n: i32, size: i32, overlap: i32) -> Intervals {
    if n <= size {
        return Intervals::whole(n);
    }
    let mut intervals = split_symmetric(n, size, overlap);
    intervals.starts.iter_mut().skip(1).for_each(|s| *s -= 1);
    intervals.left_ramps.iter_mut().skip(1).for_each(|r| *r += 1);
    intervals
}

/// `compute_trapezoidal_mask_1d`.
pub fn trapezoidal_mask(length: i32, ramp_left: i32, ramp_right: i32, left_starts_from_0: bool) -> Vec<f32> {
    let linspace = |from: f32, to: f32, steps: i32| -> Vec<f32> {
        let step = (to - from) / (steps - 1) as f32;
        (0..steps)
            .map(|i| if i < steps / 2 { from + i as f32 * step } else { to - (steps - 1 - i) as f32 * step })
            .collect()
    };
    let (ramp_left, ramp_right) = (ramp_left.clamp(0, length) as usize, ramp_right.clamp(0, length) as usize);
    let mut mask = vec![1.0f32; length as usize];
    if ramp_left > 0 {
        let fade_in = match left_starts_from_0 {
            true => linspace(0.0, 1.0, ramp_left as i32 + 1)[..ramp_left].to_vec(),
            false => linspace(0.0, 1.0, ramp_left as i32 + 2)[1..=ramp_left].to_vec(),
        };
        mask.iter_mut().zip(fade_in).for_each(|(m, f)| *m *= f);
    }
    if ramp_right > 0 {
        let fade_out = &linspace(1.0, 0.0, ramp_right as i32 + 2)[1..=ramp_right];
        let n = mask.len();
        mask[n - ramp_right..].iter_mut().zip(fade_out).for_each(|(m, f)| *m *= f);
    }
    mask.into_iter().map(|m| m.clamp(0.0, 1.0)).collect()
}

/// One axis of one tile: latent input range, output range and output blend mask.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisTile {
    pub input: Range<i32>,
    pub output: Range<i32>,
    pub mask: Vec<f32>,
}

/// The tiles of each axis (time, height, width) for a latent (B, C, F', H', W') (`_prepare_tiles`).
pub fn plan(latent_shape: &[i32], config: &TilingConfig) -> [Vec<AxisTile>; 3] {
    let (f, h, w) = (latent_shape[2], latent_shape[3], latent_shape[4]);
    let out_frames = (f - 1) * TIME_SCALE + 1;
    let temporal = match config.temporal {
        None => vec![AxisTile { input: 0..f, output: 0..out_frames, mask: vec![1.0; out_frames as usize] }],
        Some((size, overlap)) => {
            let iv = split_temporal(f, size as i32 / TIME_SCALE, overlap as i32 / TIME_SCALE);
            (0..iv.starts.len())
                .map(|i| {
                    let (b, e, l, r) = (iv.starts[i], iv.ends[i], iv.left_ramps[i], iv.right_ramps[i]);
                    let (start, stop) = (b * TIME_SCALE, 1 + (e - 1) * TIME_SCALE);
                    let left = if l == 0 { 0 } else { 1 + (l - 1) * TIME_SCALE };
                    let mask = trapezoidal_mask(stop - start, left, r * TIME_SCALE, true);
                    AxisTile { input: b..e, output: start..stop, mask }
                })
                .collect()
        }
    };
    let spatial = |n: i32| -> Vec<AxisTile> {
        match config.spatial {
            None => {
                vec![AxisTile { input: 0..n, output: 0..n * SPACE_SCALE, mask: vec![1.0; (n * SPACE_SCALE) as usize] }]
            }
            Some((size, overlap)) => {
                let (size, overlap) = (size as i32 / SPACE_SCALE, overlap as i32 / SPACE_SCALE);
                let tile = ((size * n) as f64 / h.max(w) as f64).round_ties_even() as i32;
                let iv = split_symmetric(n, tile.max(2.max(overlap + 1)), overlap);
                (0..iv.starts.len())
                    .map(|i| {
                        let (b, e) = (iv.starts[i], iv.ends[i]);
                        let (l, r) = (iv.left_ramps[i] * SPACE_SCALE, iv.right_ramps[i] * SPACE_SCALE);
                        let mask = trapezoidal_mask((e - b) * SPACE_SCALE, l, r, false);
                        AxisTile { input: b..e, output: b * SPACE_SCALE..e * SPACE_SCALE, mask }
                    })
                    .collect()
            }
        }
    };
    [temporal, spatial(h), spatial(w)]
}

/// Decodes `latent` (B, C, F', H', W') tile by tile and hands `sink` the frames (B, t, H, W, 3) in
/// order, one temporal chunk at a time. Tile `i` draws its decode noise from seed `options.seed + i`
/// (ltx-core draws every tile from one generator in turn).
pub fn tiled_decode(
    decoder: &VideoDecoder,
    latent: &Array,
    config: &TilingConfig,
    options: &DecodeOptions,
    mut sink: impl FnMut(Array) -> Result<()>,
) -> Result<()> {
    config.validate()?;
    let shape = latent.shape().to_vec();
    let [temporal, rows, cols] = plan(&shape, config);
    let (height, width) = (shape[3] * SPACE_SCALE, shape[4] * SPACE_SCALE);
    let mask_1d = |m: &[f32], axis: usize| -> Result<Array> {
        let mut dims = [1i32; 5];
        dims[axis] = m.len() as i32;
        Ok(Array::from_slice(m, &dims))
    };
    let mut previous: Option<(Array, Array, Range<i32>)> = None;
    let mut index = 0u64;
    for t in &temporal {
        let len = t.output.end - t.output.start;
        let mut buffer = Array::zeros::<f32>(&[shape[0], len, height, width, 3])?;
        let mut weights = Array::zeros::<f32>(&[1, len, height, width, 1])?;
        let latent_t = slice_axis(latent, 2, t.input.start, t.input.end)?;
        for r in &rows {
            let latent_r = slice_axis(&latent_t, 3, r.input.start, r.input.end)?;
            for c in &cols {
                let tile = slice_axis(&latent_r, 4, c.input.start, c.input.end)?;
                let seeded = DecodeOptions { seed: options.seed.wrapping_add(index), ..*options };
                index += 1;
                let decoded = decoder.forward(&tile, &seeded)?.as_dtype(mlx_rs::Dtype::Float32)?;
                let frames = decoded.shape()[1].min(len);
                let mask = mask_1d(&t.mask[..frames as usize], 1)?
                    .multiply(mask_1d(&r.mask, 2)?)?
                    .multiply(mask_1d(&c.mask, 3)?)?;
                let place = |x: &Array| -> Result<Array> {
                    let widths = [
                        (0, 0),
                        (0, len - frames),
                        (r.output.start, height - r.output.end),
                        (c.output.start, width - c.output.end),
                        (0, 0),
                    ];
                    Ok(ops::pad(x, &widths, None, None)?)
                };
                buffer = buffer.add(place(&slice_axis(&decoded, 1, 0, frames)?.multiply(&mask)?)?)?;
                weights = weights.add(place(&mask)?)?;
                mlx_rs::transforms::eval([&buffer, &weights])?;
            }
        }
        if let Some((prev, prev_weights, prev_range)) = previous.take() {
            let offset = t.output.start - prev_range.start;
            let overlap = prev_range.end - t.output.start;
            let (mut prev, mut prev_weights) = (prev, prev_weights);
            if overlap > 0 {
                let blend = |p: &Array, b: &Array| -> Result<(Array, Array)> {
                    let p_len = p.shape()[1];
                    let tail = slice_axis(p, 1, offset, p_len)?.add(slice_axis(b, 1, 0, overlap)?)?;
                    let p = ops::concatenate(&[&slice_axis(p, 1, 0, offset)?, &tail], 1)?;
                    let b = ops::concatenate(&[&tail, &slice_axis(b, 1, overlap, b.shape()[1])?], 1)?;
                    Ok((p, b))
                };
                (prev, buffer) = blend(&prev, &buffer)?;
                (prev_weights, weights) = blend(&prev_weights, &weights)?;
            }
            sink(slice_axis(&normalise(&prev, &prev_weights)?, 1, 0, offset)?)?;
        }
        previous = Some((buffer, weights, t.output.clone()));
    }
    if let Some((prev, prev_weights, _)) = previous {
        sink(normalise(&prev, &prev_weights)?)?;
    }
    Ok(())
}

fn normalise(buffer: &Array, weights: &Array) -> Result<Array> {
    let frames = buffer.divide(ops::maximum(weights, Array::from_f32(1e-8))?)?;
    frames.eval()?;
    Ok(frames)
}

/// [`tiled_decode`] collected into one video (B, F, H, W, 3).
pub fn tiled_decode_all(
    decoder: &VideoDecoder,
    latent: &Array,
    config: &TilingConfig,
    options: &DecodeOptions,
) -> Result<Array> {
    let mut chunks = Vec::new();
    tiled_decode(decoder, latent, config, options, |chunk| {
        chunks.push(chunk);
        Ok(())
    })?;
    Ok(ops::concatenate(&chunks, 1)?)
}
