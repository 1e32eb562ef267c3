//! Sigma schedules: the distilled lists (`ltx_pipelines/utils/constants.py`) and the dev
//! `LTX2Scheduler` (`ltx_core/components/schedulers.py`), in f32 like the reference.

/// 8 steps of the distilled checkpoint.
pub const DISTILLED_SIGMAS: [f32; 9] = [1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0];
/// 3 refinement steps of stage 2 (distilled, or dev + distilled LoRA).
pub const STAGE_2_DISTILLED_SIGMAS: [f32; 4] = [0.909375, 0.725, 0.421875, 0.0];

const BASE_SHIFT_ANCHOR: f64 = 1024.0;
const MAX_SHIFT_ANCHOR: f64 = 4096.0;

/// `torch.linspace(start, end, n)` in f32 (computed from both ends, as torch does).
fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f32;
    let half = n / 2;
    (0..n).map(|i| if i < half { start + step * i as f32 } else { end - step * (n - 1 - i) as f32 }).collect()
}

/// `LTX2Scheduler().execute(steps)`: shifted by the token count (pipelines pass no latent, so 4096
/// tokens => shift 2.05), then stretched so the last non-zero sigma is `terminal` (0.1); ends in 0.
pub fn ltx2_sigmas(steps: usize, tokens: Option<usize>) -> Vec<f32> {
    let (max_shift, base_shift, terminal) = (2.05f64, 0.95f64, 0.1f64);
    let tokens = tokens.map_or(MAX_SHIFT_ANCHOR, |t| t as f64);
    let mm = (max_shift - base_shift) / (MAX_SHIFT_ANCHOR - BASE_SHIFT_ANCHOR);
    let shift = tokens * mm + (base_shift - mm * BASE_SHIFT_ANCHOR);
    let e = shift.exp() as f32;
    let mut sigmas: Vec<f32> = linspace_f32(1.0, 0.0, steps + 1)
        .into_iter()
        .map(|s| if s != 0.0 { e / (e + (1.0 / s - 1.0)) } else { 0.0 })
        .collect();
    let last_nonzero = sigmas.iter().rev().find(|s| **s != 0.0).copied();
    if let Some(last) = last_nonzero {
        let scale = (1.0 - last) / (1.0 - terminal as f32);
        for s in sigmas.iter_mut().filter(|s| **s != 0.0) {
            *s = 1.0 - (1.0 - *s) / scale;
        }
    }
    sigmas
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_rule_tables_distilled_steps_are_this_schedules() {
        let rules = ltx_protocol::Generation::Ltx2.rules();
        assert_eq!(super::DISTILLED_SIGMAS.len() - 1, rules.distilled_steps as usize);
    }
}
