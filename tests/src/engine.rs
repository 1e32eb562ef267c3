//! The test double of the generation engine. Only the test daemon (`ltxd-test`) contains it.
//!
//! Behaviour comes from `LTX_TEST_STEPS` / `LTX_TEST_STEP_MS` (defaults 4 steps, 10 ms) and per-job
//! directives in the prompt: `steps=N`, `ms=N`, `fail`, `panic` (panics after the first step, as an engine bug
//! would), `gate=/path` (wait at the first step boundary until the file exists: deterministic "running" jobs),
//! `preview_kb=N` (preview size when previews are wanted), and the milliseconds the stages around the steps take:
//! `prompt_ms=N`, `decode_ms=N`, `audio_ms=N`, `write_ms=N` (default 0; the ETA tests give each job a machine's
//! costs for its size).
use ltx_engine::job::{CancelToken, EngineError, GenerationOutput, Generator, Job, ProgressSink};
use ltx_protocol::{ComponentStatus, FailureCode, ModelVariant, Part, Stage};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct TestEngine {
    steps: u32,
    step_ms: u64,
    loaded: Option<ModelVariant>,
}

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

impl Default for TestEngine {
    fn default() -> Self {
        Self { steps: env_num("LTX_TEST_STEPS", 4) as u32, step_ms: env_num("LTX_TEST_STEP_MS", 10), loaded: None }
    }
}

fn directive<'a>(prompt: &'a str, key: &str) -> Option<&'a str> {
    prompt.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

impl Generator for TestEngine {
    fn generate(
        &mut self,
        job: &Job<'_>,
        progress: &mut dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<GenerationOutput, EngineError> {
        let p = &job.request.prompt;
        let steps = directive(p, "steps").and_then(|v| v.parse().ok()).unwrap_or(self.steps);
        let ms = directive(p, "ms").and_then(|v| v.parse().ok()).unwrap_or(self.step_ms);
        let gate = directive(p, "gate").map(PathBuf::from);
        let preview_kb: usize = directive(p, "preview_kb").and_then(|v| v.parse().ok()).unwrap_or(0);
        let pause = |key: &str| {
            let ms = directive(p, key).and_then(|v| v.parse().ok()).unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms));
        };
        let t0 = Instant::now();
        if self.loaded != Some(job.request.variant) {
            progress.stage(Stage::LoadingComponent("transformer".into()));
            self.loaded = Some(job.request.variant);
        }
        progress.stage(Stage::EncodingPrompt);
        pause("prompt_ms");
        progress.stage(Stage::Denoising(1));
        for step in 1..=steps {
            cancel.check()?;
            if let (1, Some(gate)) = (step, &gate) {
                while !gate.exists() {
                    cancel.check()?;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            std::thread::sleep(Duration::from_millis(ms));
            progress.step(Stage::Denoising(1), step, steps);
            if step == 1 && p.split_whitespace().any(|w| w == "panic") {
                panic!("the test engine was asked to panic in job {}", job.id);
            }
            if progress.wants_preview() && step % 2 == 0 {
                let mut jpeg = vec![0xff, 0xd8, 0xff];
                jpeg.resize(3 + preview_kb * 1024, 0);
                jpeg.extend([0xff, 0xd9]);
                progress.preview(step, jpeg);
            }
        }
        cancel.check()?;
        if p.split_whitespace().any(|w| w == "fail") {
            return Err(EngineError::failed(FailureCode::DenoiseFailed, "the test engine was asked to fail"));
        }
        progress.stage(Stage::DecodingVideo);
        pause("decode_ms");
        if job.request.audio {
            progress.stage(Stage::DecodingAudio);
            pause("audio_ms");
        }
        progress.stage(Stage::WritingFile);
        pause("write_ms");
        let body = format!("ltx test video: job {} seed {} prompt {p:?}\n", job.id, job.seed);
        // As the shipped engine's MP4 writer: a new file, never through a link.
        ltx_protocol::fsutil::write_new(job.output, body.as_bytes(), 0o600)
            .map_err(|e| EngineError::caused(FailureCode::EncodeFailed, e))?;
        Ok(GenerationOutput {
            timings: vec![("total".into(), t0.elapsed().as_millis() as u64)],
            used: vec![Part::Transformer],
        })
    }

    fn load(&mut self, variant: ModelVariant) -> Result<(), EngineError> {
        self.loaded = Some(variant);
        Ok(())
    }

    fn unload(&mut self, variant: Option<ModelVariant>) {
        if variant.is_none() || variant == self.loaded {
            self.loaded = None;
        }
    }

    fn set_models_dir(&mut self, _: &std::path::Path) {}

    fn unload_component(&mut self, variant: ModelVariant, name: Part) {
        if name == Part::Transformer {
            self.unload(Some(variant));
        }
    }

    fn components(&self) -> Vec<ComponentStatus> {
        self.loaded
            .map(|variant| ComponentStatus { name: Part::Transformer, variant, bytes: 1 << 30, expires_ms: None })
            .into_iter()
            .collect()
    }
}
