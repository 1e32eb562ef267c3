//! Token positions as ltx-core's latent tools build them (`components/patchifiers.py`, `tools.py`):
//! `[start, end)` bounds per axis, laid out (B=1, n_axes, T, 2), f32.

/// VAE scale factors (time, height, width) of the LTX-2 video VAE.
pub const VIDEO_SCALE_FACTORS: [usize; 3] = [8, 32, 32];

/// Video tokens in `(f h w)` order (patch size 1): pixel bounds, the causal fix on time
/// (`max(t + 1 - 8, 0)`), time divided by `fps` into seconds. Shape (1, 3, F*H*W, 2).
pub fn video_positions(frames: usize, height: usize, width: usize, fps: f32) -> Vec<f32> {
    let t = frames * height * width;
    let mut out = vec![0f32; 3 * t * 2];
    let [st, sh, sw] = VIDEO_SCALE_FACTORS.map(|s| s as f32);
    let mut i = 0;
    for f in 0..frames {
        for h in 0..height {
            for w in 0..width {
                let time = |v: f32| (v * st + 1.0 - st).max(0.0) / fps;
                let bounds = [
                    [time(f as f32), time((f + 1) as f32)],
                    [h as f32 * sh, (h + 1) as f32 * sh],
                    [w as f32 * sw, (w + 1) as f32 * sw],
                ];
                for (axis, [start, end]) in bounds.into_iter().enumerate() {
                    out[(axis * t + i) * 2] = start;
                    out[(axis * t + i) * 2 + 1] = end;
                }
                i += 1;
            }
        }
    }
    out
}

/// Audio latent frames: mel frame `4i`, causal shift `max(4i + 1 - 4, 0)`, x hop 160 / 16 kHz into
/// seconds; bounds from latent i and i+1. Shape (1, 1, T, 2).
pub fn audio_positions(frames: usize) -> Vec<f32> {
    let seconds = |i: usize| ((i as f32 * 4.0) + 1.0 - 4.0).max(0.0) * 160.0 / 16000.0;
    (0..frames).flat_map(|i| [seconds(i), seconds(i + 1)]).collect()
}
