//! The whole-job ETA, computed in one place — here, in ltxd — and sent in every stage and step event, so every
//! client shows the same number (`ltxctl`'s bar and lines, `queue`, `--json`, the tray).
//!
//! A job's time is the sum of its stages. Each stage's cost is learned from this machine's completed jobs — the
//! stage timeline the daemon saw, stored with each one ([`StageTime`]) — as a rate per unit of work
//! ([`Shape::work`]): denoising per latent token × step, upscaling, video decoding, image encoding and writing
//! per latent token, audio per frame, the prompt and a component load per job. Jobs of the same variant and
//! pipeline count before others. Once the job's own denoising steps are in they replace the learned denoising
//! rate, and from [`CONFIRMING_STEPS`] steps on the ETA is no longer labelled an estimate. A stage nothing was
//! learned for costs a prior multiple of one full-size denoising step ([`PRIOR_STEPS`]); until some denoising
//! rate is known (no history, no step yet) there is no ETA.
//!
//! Times are milliseconds since the job started; [`Tracker`] is pure and its tests drive it with made-up clocks.
use ltx_protocol::{Eta, GenerationRequest, ModelVariant, Pipeline, Stage};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

/// Steps of its own a job needs measured before its ETA stops being labelled an estimate (the first step alone
/// may carry a warm-up).
pub const CONFIRMING_STEPS: u32 = 2;

/// Completed jobs the model learns from, newest first.
pub const HISTORY: u32 = 50;

/// What a stage nothing was learned for costs, in full-size denoising steps of the job: the one real job measured
/// in issue 15 (15 steps at about 4.4 s each, then 15.6 s of video decode) for the decode; the others are small
/// beside a step.
const PRIOR_STEPS: &[(&str, f64)] = &[
    ("decoding_video", 3.5),
    ("upscaling", 0.5),
    ("encoding_image", 0.5),
    ("decoding_audio", 0.5),
    ("writing_file", 0.05),
];

/// One stage of a completed job as the daemon saw it: from its stage event to the next one, or to the job's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    /// [`key`] of the stage.
    pub stage: String,
    pub ms: u64,
    /// A denoising stage's step count; 0 for the others.
    #[serde(default)]
    pub steps: u32,
}

/// A completed job to learn from: its shape and stage timeline.
#[derive(Debug, Clone)]
pub struct Sample {
    shape: Shape,
    pub stages: Vec<StageTime>,
}

impl Sample {
    pub fn new(request: &GenerationRequest, stages: Vec<StageTime>) -> Self {
        Sample { shape: Shape::of(request), stages }
    }
}

/// The completed jobs the ETA learns from, newest first: read from the store once at start, then each completed
/// job added as it ends (no database work per job).
#[derive(Debug, Default)]
pub struct History(Mutex<VecDeque<Sample>>);

impl History {
    pub fn new(samples: Vec<Sample>) -> Self {
        History(Mutex::new(samples.into_iter().take(HISTORY as usize).collect()))
    }

    fn samples(&self) -> std::sync::MutexGuard<'_, VecDeque<Sample>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tracker of a job starting now (`resident`: as for [`Tracker::new`]).
    pub fn tracker(&self, request: &GenerationRequest, resident: &[&str]) -> Tracker {
        Tracker::new(request, self.samples().make_contiguous(), resident)
    }

    pub fn add(&self, sample: Sample) {
        let mut s = self.samples();
        s.push_front(sample);
        s.truncate(HISTORY as usize);
    }
}

/// A stage's stored name.
pub fn key(stage: &Stage) -> String {
    match stage {
        Stage::LoadingComponent(c) => format!("loading:{c}"),
        Stage::EncodingPrompt => "encoding_prompt".into(),
        Stage::EncodingImage => "encoding_image".into(),
        Stage::Denoising(n) => format!("denoising:{n}"),
        Stage::Upscaling => "upscaling".into(),
        Stage::DecodingVideo => "decoding_video".into(),
        Stage::DecodingAudio => "decoding_audio".into(),
        Stage::WritingFile => "writing_file".into(),
    }
}

fn denoising(key: &str) -> bool {
    key.starts_with("denoising:")
}

/// What a job's stages work on: latent tokens at full size and at stage 1's size, frames, steps.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    variant: ModelVariant,
    pipeline: Pipeline,
    full: f64,
    stage1: f64,
    frames: f64,
    steps1: u32,
    steps2: u32,
    audio: bool,
    image: bool,
}

impl Shape {
    fn of(r: &GenerationRequest) -> Self {
        let g = r.variant.generation().shape;
        let two_stage = r.pipeline.rules().two_stage;
        let latent_frames = f64::from(r.frames.saturating_sub(1) / g.temporal_compression.max(1) + 1);
        // Stage 1 of a two-stage job: the full latent sides × den / num of the upscale (½, or ⅔ for ×1.5).
        let (num, den) = if two_stage { r.upscale.ratio() } else { (1, 1) };
        let cells = |side: u32| f64::from((side / g.spatial_compression.max(1) * den / num.max(1)).max(1));
        let full = |side: u32| f64::from((side / g.spatial_compression.max(1)).max(1));
        let tokens_full = latent_frames * full(r.width) * full(r.height);
        Shape {
            variant: r.variant,
            pipeline: r.pipeline,
            full: tokens_full,
            stage1: latent_frames * cells(r.width) * cells(r.height),
            frames: f64::from(r.frames.max(1)),
            steps1: r.steps.max(1),
            steps2: if two_stage { (ltx_engine::sampling::STAGE_2_DISTILLED_SIGMAS.len() - 1) as u32 } else { 0 },
            audio: r.audio,
            image: r.image.is_some(),
        }
    }

    /// Jobs whose stages run alike: same weights, pipeline, inputs and outputs.
    fn alike(&self, o: &Shape) -> bool {
        (self.variant, self.pipeline, self.audio, self.image) == (o.variant, o.pipeline, o.audio, o.image)
    }

    /// A denoising stage's step count when none has been seen.
    fn steps(&self, key: &str) -> u32 {
        match key {
            "denoising:2" => self.steps2,
            _ => self.steps1,
        }
    }

    /// Units of work of one step of a denoising stage (its tokens).
    fn per_step(&self, key: &str) -> f64 {
        match key {
            "denoising:1" => self.stage1,
            _ => self.full,
        }
    }

    /// Units of work of stage `key`, with `steps` its step count (0: the default).
    fn work(&self, key: &str, steps: u32) -> f64 {
        match key {
            k if denoising(k) => self.per_step(k) * f64::from(if steps == 0 { self.steps(k) } else { steps }),
            "upscaling" => self.stage1,
            "encoding_image" | "decoding_video" | "writing_file" => self.full,
            "decoding_audio" => self.frames,
            _ => 1.0,
        }
    }

    /// The stages a job of this shape runs, in order, when no alike job was seen (the engine's order; loads are
    /// not known beforehand).
    fn stages(&self) -> Vec<String> {
        let mut s = vec!["encoding_prompt".to_string()];
        if self.image {
            s.push("encoding_image".into());
        }
        s.push("denoising:1".into());
        if self.steps2 > 0 {
            s.extend(["upscaling".into(), "denoising:2".into()]);
        }
        s.push("decoding_video".into());
        if self.audio {
            s.push("decoding_audio".into());
        }
        s.push("writing_file".into());
        s
    }
}

/// Milliseconds and work summed over samples.
#[derive(Debug, Default, Clone, Copy)]
struct Sum {
    ms: f64,
    work: f64,
}

impl Sum {
    fn add(&mut self, ms: f64, work: f64) {
        self.ms += ms;
        self.work += work;
    }

    fn rate(&self) -> Option<f64> {
        (self.work > 0.0).then(|| self.ms / self.work)
    }
}

/// Milliseconds per unit of work of each stage, learned from samples: those alike the job first, then any.
#[derive(Debug, Default)]
struct Rates {
    alike: HashMap<String, Sum>,
    any: HashMap<String, Sum>,
}

impl Rates {
    fn learn(job: &Shape, samples: &[(Shape, &[StageTime])]) -> Self {
        let mut r = Rates::default();
        for (shape, stages) in samples {
            for st in *stages {
                let (ms, work) = (st.ms as f64, shape.work(&st.stage, st.steps));
                if shape.alike(job) {
                    r.alike.entry(st.stage.clone()).or_default().add(ms, work);
                }
                r.any.entry(st.stage.clone()).or_default().add(ms, work);
            }
        }
        r
    }

    fn rate(&self, key: &str) -> Option<f64> {
        self.alike.get(key).and_then(Sum::rate).or_else(|| self.any.get(key).and_then(Sum::rate))
    }
}

/// The stage running now.
#[derive(Debug, Clone)]
struct Current {
    key: String,
    start: u64,
    step: u32,
    total: u32,
}

/// One running job's estimate: what it still has to run, what it has shown so far, and its stage timeline.
#[derive(Debug)]
pub struct Tracker {
    shape: Shape,
    rates: Rates,
    /// The stages still to come, in order.
    plan: Vec<String>,
    current: Option<Current>,
    done: Vec<StageTime>,
    /// This job's own denoising rate (ms per token × step), from its latest denoising stage with a step.
    own: Option<f64>,
    /// [`CONFIRMING_STEPS`] of one denoising stage were measured.
    confirmed: bool,
}

impl Tracker {
    /// `samples`: completed jobs, newest first; `resident`: the components loaded now (by [`ltx_protocol::Part`]
    /// name), which the job will not load again.
    pub fn new(request: &GenerationRequest, samples: &[Sample], resident: &[&str]) -> Self {
        let shape = Shape::of(request);
        let shaped: Vec<(Shape, &[StageTime])> = samples.iter().map(|s| (s.shape, s.stages.as_slice())).collect();
        // The latest alike job's stages, less the loads of what is resident now.
        let plan = match shaped.iter().find(|(s, st)| s.alike(&shape) && !st.is_empty()) {
            Some((_, stages)) => stages
                .iter()
                .map(|st| st.stage.clone())
                .filter(|k| k.strip_prefix("loading:").is_none_or(|c| !resident.contains(&c)))
                .collect(),
            None => shape.stages(),
        };
        Tracker {
            rates: Rates::learn(&shape, &shaped),
            shape,
            plan,
            current: None,
            done: Vec::new(),
            own: None,
            confirmed: false,
        }
    }

    /// The denoising rate to use for stages not measured yet: the job's own, else the learned one.
    fn denoise_rate(&self) -> Option<f64> {
        self.own.or_else(|| self.rates.rate("denoising:1")).or_else(|| self.rates.rate("denoising:2"))
    }

    /// What stage `key` costs in all, with `steps` its step count (0: the default).
    fn predict(&self, key: &str, steps: u32) -> Option<f64> {
        let work = self.shape.work(key, steps);
        if denoising(key) {
            return self.rates.rate(key).or(self.own).or_else(|| self.denoise_rate()).map(|r| r * work);
        }
        if let Some(r) = self.rates.rate(key) {
            return Some(r * work);
        }
        match PRIOR_STEPS.iter().find(|(k, _)| *k == key) {
            Some((_, steps)) => self.denoise_rate().map(|r| r * self.shape.full * steps),
            // A load or the prompt never seen: nothing to go by, and small beside the job once it is known.
            None => Some(0.0),
        }
    }

    /// The whole job's time left at `now`.
    fn eta(&self, now: u64) -> Option<Eta> {
        let mut left = 0.0;
        if let Some(c) = &self.current {
            let in_stage = now.saturating_sub(c.start) as f64;
            let stepping = denoising(&c.key) && c.step > 0 && c.total >= c.step;
            let learned = self.rates.rate(&c.key);
            left += match (stepping, learned) {
                // Its own steps, once they are enough or nothing else is known.
                (true, None) => in_stage / f64::from(c.step) * f64::from(c.total - c.step),
                (true, Some(_)) if c.step >= CONFIRMING_STEPS => {
                    in_stage / f64::from(c.step) * f64::from(c.total - c.step)
                }
                (true, Some(r)) => r * self.shape.per_step(&c.key) * f64::from(c.total - c.step),
                (false, _) => (self.predict(&c.key, c.total)? - in_stage).max(0.0),
            };
        }
        for k in &self.plan {
            left += self.predict(k, 0)?;
        }
        Some(Eta { remaining_ms: left.round() as u64, measured: self.confirmed })
    }

    fn close(&mut self, now: u64) {
        if let Some(c) = self.current.take() {
            let steps = if denoising(&c.key) { c.total } else { 0 };
            self.done.push(StageTime { stage: c.key, ms: now.saturating_sub(c.start), steps });
        }
    }

    /// A stage began at `now`: the ETA to send with it.
    pub fn stage(&mut self, stage: &Stage, now: u64) -> Option<Eta> {
        self.close(now);
        let key = key(stage);
        // Stages the job skipped (a load of something already resident) are no longer to come.
        if let Some(i) = self.plan.iter().position(|k| *k == key) {
            self.plan.drain(..=i);
        }
        self.current = Some(Current { key, start: now, step: 0, total: 0 });
        self.eta(now)
    }

    /// Step `step` of `total` of `stage` ended at `now`: the ETA to send with it.
    pub fn step(&mut self, stage: &Stage, step: u32, total: u32, now: u64) -> Option<Eta> {
        let key = key(stage);
        if self.current.as_ref().is_none_or(|c| c.key != key) {
            self.stage(stage, now);
        }
        let per_step = self.shape.per_step(&key);
        if let Some(c) = self.current.as_mut() {
            (c.step, c.total) = (step, total);
            if step > 0 {
                self.own = Some(now.saturating_sub(c.start) as f64 / (f64::from(step) * per_step));
                self.confirmed |= step >= CONFIRMING_STEPS;
            }
        }
        self.eta(now)
    }

    /// The job ended at `now`: its stage timeline.
    pub fn finish(&mut self, now: u64) -> Vec<StageTime> {
        self.close(now);
        std::mem::take(&mut self.done)
    }
}

/// A running job's clock and [`Tracker`], shared by the scheduler (which starts and ends the job) and the
/// worker's progress sink (which sees its stages and steps).
#[derive(Debug)]
pub struct JobClock {
    started: Instant,
    tracker: Mutex<Tracker>,
}

impl JobClock {
    /// Starts the clock now.
    pub fn start(tracker: Tracker) -> Self {
        JobClock { started: Instant::now(), tracker: Mutex::new(tracker) }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A stage began: the milliseconds since the job started and the ETA.
    pub fn stage(&self, stage: &Stage) -> (u64, Option<Eta>) {
        let now = self.now();
        (now, self.tracker().stage(stage, now))
    }

    /// A step ended: the milliseconds since the job started and the ETA.
    pub fn step(&self, stage: &Stage, step: u32, total: u32) -> (u64, Option<Eta>) {
        let now = self.now();
        (now, self.tracker().step(stage, step, total, now))
    }

    /// The job ended: its stage timeline.
    pub fn finish(&self) -> Vec<StageTime> {
        let now = self.now();
        self.tracker().finish(now)
    }
}

#[cfg(test)]
mod tests;
