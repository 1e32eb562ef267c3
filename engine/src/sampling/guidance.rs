//! Multi-modal guidance (`MultiModalGuider`, `multi_modal_guider_denoising_func`): per modality
//! `pred = c + (cfg-1)(c - c_neg) + stg (c - c_stg) + (mod-1)(c - c_isolated)`, then rescale
//! `pred *= r * std(c)/std(pred) + (1 - r)` (torch's unbiased std over the whole tensor).

use ltx_protocol::{rules::GuidanceDefaults, Generation};
use mlx_rs::{ops, Array, Dtype};

use super::euler::LatentState;
use crate::transformer::{LtxModel, Modality, Perturbations, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct GuiderParams {
    pub cfg_scale: f32,
    pub stg_scale: f32,
    pub stg_blocks: Vec<usize>,
    pub rescale_scale: f32,
    pub modality_scale: f32,
    pub skip_step: usize,
}

impl GuiderParams {
    /// A generation's video guidance (`LTX_2_PARAMS.video_guider_params` for LTX-2).
    pub fn video(d: &GuidanceDefaults) -> Self {
        Self {
            cfg_scale: d.video_cfg,
            stg_scale: d.stg,
            stg_blocks: d.stg_blocks.iter().map(|&b| b as usize).collect(),
            rescale_scale: d.rescale,
            modality_scale: d.modality,
            skip_step: 0,
        }
    }
    /// A generation's audio guidance: the video's with the audio CFG scale.
    pub fn audio(d: &GuidanceDefaults) -> Self {
        Self { cfg_scale: d.audio_cfg, ..Self::video(d) }
    }
    /// LTX-2's video guidance.
    pub fn ltx2_video() -> Self {
        Self::video(&Generation::Ltx2.rules().guidance)
    }
    /// LTX-2's audio guidance.
    pub fn ltx2_audio() -> Self {
        Self::audio(&Generation::Ltx2.rules().guidance)
    }
    fn does_cfg(&self) -> bool {
        (self.cfg_scale - 1.0).abs() > 1e-9
    }
    fn does_stg(&self) -> bool {
        self.stg_scale.abs() > 1e-9
    }
    fn does_modality(&self) -> bool {
        (self.modality_scale - 1.0).abs() > 1e-9
    }
    /// Reuse the previous x0 on this step.
    pub fn skips(&self, step: usize) -> bool {
        self.skip_step != 0 && step % (self.skip_step + 1) != 0
    }

    /// `MultiModalGuider.calculate` (passes not run are None and contribute nothing).
    pub fn combine(
        &self,
        cond: &Array,
        neg: Option<&Array>,
        stg: Option<&Array>,
        isolated: Option<&Array>,
    ) -> Result<Array> {
        let mut pred = cond.as_dtype(Dtype::Float32)?;
        for (other, w) in [(neg, self.cfg_scale - 1.0), (stg, self.stg_scale), (isolated, self.modality_scale - 1.0)] {
            if let Some(o) = other {
                pred = pred.add(cond.subtract(o)?.multiply(Array::from_f32(w))?)?;
            }
        }
        if self.rescale_scale != 0.0 {
            let factor = ops::std(cond, None, 1)?.divide(ops::std(&pred, None, 1)?)?;
            let r = self.rescale_scale;
            pred = pred.multiply(factor.multiply(Array::from_f32(r))?.add(Array::from_f32(1.0 - r))?)?;
        }
        Ok(pred)
    }
}

/// Positive and negative text contexts of both modalities.
pub struct Contexts<'a> {
    pub video: &'a Array,
    pub audio: &'a Array,
    pub video_negative: &'a Array,
    pub audio_negative: &'a Array,
}

/// One guided x0 prediction for both modalities (up to 4 forward passes). `last` carries the
/// previous step's result for `skip_step`.
#[allow(clippy::too_many_arguments)]
pub fn guided_denoise(
    model: &LtxModel,
    video: &LatentState,
    audio: &LatentState,
    sigma: f32,
    step: usize,
    ctx: &Contexts,
    vg: &GuiderParams,
    ag: &GuiderParams,
    last: &mut Option<(Array, Array)>,
) -> Result<(Array, Array)> {
    if let (true, true, Some(prev)) = (vg.skips(step), ag.skips(step), last.as_ref()) {
        return Ok(prev.clone());
    }
    let modality = |s: &LatentState, c: &Array, enabled: bool| {
        let mut m = Modality::new(s.latent.clone(), sigma, Some(&s.denoise_mask), s.positions.clone(), c.clone());
        m.enabled = enabled;
        m
    };
    let pv = modality(video, ctx.video, !vg.skips(step));
    let pa = modality(audio, ctx.audio, !ag.skips(step));
    let (cv, ca) = model.denoise(&pv, &pa, &Perturbations::none())?;
    let neg = if vg.does_cfg() || ag.does_cfg() {
        let nv = modality(video, ctx.video_negative, true);
        let na = modality(audio, ctx.audio_negative, true);
        Some(model.denoise(&nv, &na, &Perturbations::none())?)
    } else {
        None
    };
    let stg = if vg.does_stg() || ag.does_stg() {
        let p = Perturbations::stg(
            vg.does_stg().then_some(vg.stg_blocks.as_slice()),
            ag.does_stg().then_some(ag.stg_blocks.as_slice()),
        );
        Some(model.denoise(&pv, &pa, &p)?)
    } else {
        None
    };
    let iso = if vg.does_modality() || ag.does_modality() {
        Some(model.denoise(&pv, &pa, &Perturbations::av_skip())?)
    } else {
        None
    };
    let pick =
        |o: &Option<(Array, Array)>, audio: bool| o.as_ref().map(|(v, a)| if audio { a.clone() } else { v.clone() });
    let out_v = match (vg.skips(step), last.as_ref()) {
        (true, Some((v, _))) => v.clone(),
        _ => vg.combine(&cv, pick(&neg, false).as_ref(), pick(&stg, false).as_ref(), pick(&iso, false).as_ref())?,
    };
    let out_a = match (ag.skips(step), last.as_ref()) {
        (true, Some((_, a))) => a.clone(),
        _ => ag.combine(&ca, pick(&neg, true).as_ref(), pick(&stg, true).as_ref(), pick(&iso, true).as_ref())?,
    };
    *last = Some((out_v.clone(), out_a.clone()));
    Ok((out_v, out_a))
}
