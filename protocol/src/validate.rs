//! The one validation function shared by `ltxctl` (before sending) and `ltxd` (before accepting). Sizes, frame
//! counts and the ranges of fps, steps and guidance are the generation × pipeline's ([`rules::Limits`]); the
//! limits here are the product's own, whatever the model.
use crate::job::{GenerationRequest, ImageInput, KeepAlive};
use crate::rules::{self, Progression};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const MAX_PROMPT_CHARS: usize = 4000;
pub const MAX_IMAGE_BYTES: usize = 8 << 20;
pub const MAX_STG_BLOCKS: usize = 64;
/// The smallest first-frame image side the image-to-video path takes.
pub const MIN_IMAGE_SIDE: u32 = 16;

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum ValidationError {
    #[error("the prompt is empty")]
    PromptEmpty,
    #[error("the {field} is {len} characters long; the limit is {max}")]
    PromptTooLong { field: String, len: usize, max: usize },
    #[error(
        "frames must be {step}k+1 from {min} to {max} ({min}, {}, …, {max}); got {frames} (nearest: {})",
        min.saturating_add(*step),
        Progression::from(*min, *step, *max).suggest(*frames)
    )]
    Frames { frames: u32, min: u32, max: u32, step: u32 },
    #[error(
        "{field} must be a multiple of {multiple} from {min} to {max} for the {pipeline} pipeline; got {value} \
         (nearest: {})",
        Progression::from(*min, *multiple, *max).suggest(*value)
    )]
    Size { field: String, value: u32, multiple: u32, min: u32, max: u32, pipeline: String },
    #[error("{field} must be between {min} and {max}; got {value}")]
    OutOfRange { field: String, value: String, min: String, max: String },
    #[error("cannot read the image {path}: {reason}")]
    ImageUnreadable { path: PathBuf, reason: String },
    #[error("the image {name} is {bytes} bytes; the limit is {max}")]
    ImageTooLarge { name: String, bytes: usize, max: usize },
    #[error("the image {name} is not a PNG, JPEG or WebP file")]
    ImageFormat { name: String },
    #[error("the output path {0} must be absolute")]
    OutputNotAbsolute(PathBuf),
    #[error("the output file {0} must end in .mp4")]
    OutputExtension(PathBuf),
    #[error("the output file {0} already exists; outputs are never overwritten")]
    OutputExists(PathBuf),
    #[error("the output directory {path} is not writable: {reason}")]
    OutputNotWritable { path: PathBuf, reason: String },
    #[error("the output directory {0} does not exist: create it first, or leave -o out for the outputs folder")]
    OutputDirMissing(PathBuf),
    #[error("the {pipeline} pipeline {requirement}")]
    Pipeline { pipeline: String, requirement: String },
    #[error("the image {name} is {width}x{height} pixels; each side must be at least {min}")]
    ImageTooSmall { name: String, width: u32, height: u32, min: u32 },
    #[error("the image {name} cannot be read: {reason}")]
    ImageHeader { name: String, reason: String },
    #[error("the output path {0:?} contains a NUL byte")]
    OutputNul(PathBuf),
    #[error("the keep-alive of {seconds}s is longer than the limit of {max}s (1 year); use -1 to keep forever")]
    KeepAliveTooLong { seconds: u64, max: u64 },
}

impl ValidationError {
    /// The stable machine spelling of this refusal: the `"reason"` of an `invalid_request` error (`docs/json.md`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::PromptEmpty => "prompt_empty",
            Self::PromptTooLong { .. } => "prompt_too_long",
            Self::Frames { .. } => "frames",
            Self::Size { .. } => "size",
            Self::OutOfRange { .. } => "out_of_range",
            Self::ImageUnreadable { .. } => "image_unreadable",
            Self::ImageTooLarge { .. } => "image_too_large",
            Self::ImageFormat { .. } => "image_format",
            Self::OutputNotAbsolute(_) => "output_not_absolute",
            Self::OutputExtension(_) => "output_extension",
            Self::OutputExists(_) => "output_exists",
            Self::OutputNotWritable { .. } => "output_not_writable",
            Self::OutputDirMissing(_) => "output_dir_missing",
            Self::Pipeline { .. } => "pipeline",
            Self::ImageTooSmall { .. } => "image_too_small",
            Self::ImageHeader { .. } => "image_header",
            Self::OutputNul(_) => "output_nul",
            Self::KeepAliveTooLong { .. } => "keep_alive_too_long",
        }
    }
}

/// Whether [`validate`] may touch the file system (the fuzzer and pure checks use `Skip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsCheck {
    Skip,
    Probe,
}

fn range<T: PartialOrd + ToString>(field: &str, v: T, min: T, max: T) -> Result<(), ValidationError> {
    // `!(a <= b)` also rejects NaN.
    if !(min <= v && v <= max) {
        return Err(ValidationError::OutOfRange {
            field: field.into(),
            value: v.to_string(),
            min: min.to_string(),
            max: max.to_string(),
        });
    }
    Ok(())
}

/// A request [`validate`] accepted: the only form the daemon queues and the engine runs, so neither checks a
/// field again.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRequest(GenerationRequest);

impl ValidRequest {
    pub fn into_inner(self) -> GenerationRequest {
        self.0
    }
}

impl std::ops::Deref for ValidRequest {
    type Target = GenerationRequest;
    fn deref(&self) -> &GenerationRequest {
        &self.0
    }
}

/// Validates every field of a generation request; the first problem found is returned.
pub fn validate(req: GenerationRequest, fs: FsCheck) -> Result<ValidRequest, ValidationError> {
    check(&req, fs)?;
    Ok(ValidRequest(req))
}

/// Whether `c` shows anything: not whitespace, a control character (NUL, escapes) or an invisible format
/// character (zero-width space, joiners, word joiner, byte-order mark, soft hyphen).
fn visible(c: char) -> bool {
    !c.is_whitespace()
        && !c.is_control()
        && !matches!(c, '\u{ad}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

fn check(req: &GenerationRequest, fs: FsCheck) -> Result<(), ValidationError> {
    if !req.prompt.chars().any(visible) {
        return Err(ValidationError::PromptEmpty);
    }
    for (field, text) in [("prompt", Some(&req.prompt)), ("negative prompt", req.negative_prompt.as_ref())] {
        let len = text.map_or(0, |t| t.chars().count());
        if len > MAX_PROMPT_CHARS {
            return Err(ValidationError::PromptTooLong { field: field.into(), len, max: MAX_PROMPT_CHARS });
        }
    }
    let limits = req.pipeline.limits_with(req.variant, req.upscale);
    let sides = limits.sides;
    for (field, value) in [("width", req.width), ("height", req.height)] {
        if !sides.contains(value) {
            return Err(ValidationError::Size {
                field: field.into(),
                value,
                multiple: sides.step,
                min: sides.min,
                max: sides.max,
                pipeline: req.pipeline.name().into(),
            });
        }
    }
    let f = limits.frames;
    if !f.contains(req.frames) {
        return Err(ValidationError::Frames { frames: req.frames, min: f.min, max: f.max, step: f.step });
    }
    range("fps", req.fps, 1, limits.max_fps)?;
    range("steps", req.steps, 1, limits.max_steps)?;
    range("guidance scale", req.guidance_scale, 0.0, limits.max_guidance)?;
    check_pipeline(req, &limits)?;
    if let Some(img) = &req.image {
        check_image(img)?;
    }
    if let Some(KeepAlive::Seconds(seconds)) = req.keep_alive {
        if seconds > KeepAlive::MAX_SECS {
            return Err(ValidationError::KeepAliveTooLong { seconds, max: KeepAlive::MAX_SECS });
        }
    }
    if let Some(out) = req.output.as_ref().filter(|o| o.as_os_str().as_encoded_bytes().contains(&0)) {
        return Err(ValidationError::OutputNul(out.clone()));
    }
    if let (Some(out), FsCheck::Probe) = (&req.output, fs) {
        check_output(out)?;
    } else if let Some(out) = &req.output {
        if !out.is_absolute() {
            return Err(ValidationError::OutputNotAbsolute(out.clone()));
        }
    }
    Ok(())
}

/// Which variants and settings each pipeline takes ([`crate::rules::refusal`]), and the guidance overrides.
fn check_pipeline(req: &GenerationRequest, limits: &rules::Limits) -> Result<(), ValidationError> {
    let fail =
        |requirement: String| Err(ValidationError::Pipeline { pipeline: req.pipeline.name().into(), requirement });
    if let Some(requirement) = rules::refusal(req.variant, req.pipeline, req.steps, req.guidance_scale) {
        return fail(requirement);
    }
    if let Some(requirement) = rules::upscale_refusal(req.variant, req.pipeline, req.upscale) {
        return fail(requirement);
    }
    if let Some(g) = &req.guidance {
        for (field, v) in [("audio guidance", g.audio_cfg), ("STG scale", g.stg), ("modality guidance", g.modality)] {
            if let Some(v) = v {
                range(field, v, 0.0, limits.max_guidance)?;
            }
        }
        if let Some(r) = g.rescale {
            range("guidance rescale", r, 0.0, 1.0)?;
        }
        if let Some(blocks) = &g.stg_blocks {
            if blocks.len() > MAX_STG_BLOCKS {
                return fail(format!("takes at most {MAX_STG_BLOCKS} STG blocks; got {}", blocks.len()));
            }
        }
    }
    Ok(())
}

fn check_image(img: &ImageInput) -> Result<(), ValidationError> {
    range("image strength", img.strength, 0.0, 1.0)?;
    if img.bytes.len() > MAX_IMAGE_BYTES {
        return Err(ValidationError::ImageTooLarge {
            name: img.name.clone(),
            bytes: img.bytes.len(),
            max: MAX_IMAGE_BYTES,
        });
    }
    let b = &img.bytes;
    let known = b.starts_with(b"\x89PNG\r\n\x1a\n")
        || b.starts_with(&[0xff, 0xd8, 0xff])
        || (b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP");
    if !known {
        return Err(ValidationError::ImageFormat { name: img.name.clone() });
    }
    let (width, height) = crate::image_size::image_size(b)
        .map_err(|reason| ValidationError::ImageHeader { name: img.name.clone(), reason })?;
    if width < MIN_IMAGE_SIDE || height < MIN_IMAGE_SIDE {
        return Err(ValidationError::ImageTooSmall { name: img.name.clone(), width, height, min: MIN_IMAGE_SIDE });
    }
    Ok(())
}

/// Reads a first-frame image on the client side (it must exist and be readable), then checks it.
pub fn load_image(path: &Path, strength: f32) -> Result<ImageInput, ValidationError> {
    let unreadable = |reason: String| ValidationError::ImageUnreadable { path: path.into(), reason };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(unreadable("not a regular file".into()));
    }
    if meta.len() > MAX_IMAGE_BYTES as u64 {
        return Err(ValidationError::ImageTooLarge {
            name: path.display().to_string(),
            bytes: meta.len() as usize,
            max: MAX_IMAGE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    let img = ImageInput { name: path.display().to_string(), bytes, strength };
    check_image(&img)?;
    Ok(img)
}

fn check_output(out: &Path) -> Result<(), ValidationError> {
    if !out.is_absolute() {
        return Err(ValidationError::OutputNotAbsolute(out.into()));
    }
    let dir = if out.is_dir() {
        out
    } else {
        let mp4 = out.extension().is_some_and(|e| e.eq_ignore_ascii_case("mp4"));
        if !mp4 {
            return Err(ValidationError::OutputExtension(out.into()));
        }
        if out.symlink_metadata().is_ok() {
            return Err(ValidationError::OutputExists(out.into()));
        }
        out.parent().unwrap_or(Path::new("/"))
    };
    // ltxd creates only its own outputs folder: a mistyped `-o` directory is refused, not made.
    if !dir.is_dir() {
        return Err(ValidationError::OutputDirMissing(dir.into()));
    }
    probe_writable(dir).map_err(|reason| ValidationError::OutputNotWritable { path: dir.into(), reason })
}

/// Checks that the directory `dir` is writable.
fn probe_writable(dir: &Path) -> Result<(), String> {
    // A fresh temporary file (never through a link), removed again when dropped.
    let dir = crate::fsutil::Dir::open(dir).map_err(|e| e.to_string())?;
    dir.temp(".ltx-probe.").map(drop).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Guidance, ModelVariant, Pipeline};

    fn bad(f: impl FnOnce(&mut GenerationRequest)) -> ValidationError {
        let mut r = GenerationRequest::new("a cat");
        f(&mut r);
        check(&r, FsCheck::Probe).unwrap_err()
    }

    #[test]
    fn pipelines_take_their_variants_and_settings() {
        let guided = |p: Pipeline| {
            let mut r = GenerationRequest::new("a cat");
            (r.pipeline, r.variant, r.steps, r.guidance_scale) = (p, ModelVariant::Dev, 40, 3.0);
            r
        };
        for p in [Pipeline::OneStage, Pipeline::TwoStage] {
            assert_eq!(check(&guided(p), FsCheck::Skip), Ok(()));
            let mut r = guided(p);
            r.variant = ModelVariant::DistilledFp8;
            let e = check(&r, FsCheck::Skip).unwrap_err();
            assert!(e.to_string().contains("runs the dev weights"), "{e}");
        }
        let e = bad(|r| r.variant = ModelVariant::Dev);
        assert!(e.to_string().contains("not dev; use --pipeline one-stage or two-stage"), "{e}");
        assert!(bad(|r| r.steps = 12).to_string().contains("fixed 8-step schedule; got 12"));
        assert!(bad(|r| r.guidance_scale = 3.0).to_string().contains("without guidance"));
        let mut r = guided(Pipeline::OneStage);
        r.guidance = Some(Guidance { rescale: Some(1.5), ..Guidance::default() });
        assert!(matches!(check(&r, FsCheck::Skip), Err(ValidationError::OutOfRange { .. })));
        r.guidance = Some(Guidance { stg: Some(f32::NAN), ..Guidance::default() });
        assert!(matches!(check(&r, FsCheck::Skip), Err(ValidationError::OutOfRange { .. })));
        r.guidance = Some(Guidance { stg_blocks: Some(vec![29; 65]), ..Guidance::default() });
        assert!(check(&r, FsCheck::Skip).unwrap_err().to_string().contains("at most 64 STG blocks"));
        r.guidance = Some(Guidance { stg: Some(0.0), stg_blocks: Some(vec![1, 2]), ..Guidance::default() });
        assert_eq!(check(&r, FsCheck::Skip), Ok(()));
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend(width.to_be_bytes());
        b.extend(height.to_be_bytes());
        b
    }

    #[test]
    fn invisible_prompts_tiny_images_nul_paths_and_long_keep_alives() {
        for prompt in ["\0", "\0\0\u{1}\u{7f}\u{9b}", "\u{200b}\u{feff}\u{2060} \t\r\n", "\0 \u{ad}"] {
            assert_eq!(bad(|r| r.prompt = prompt.into()), ValidationError::PromptEmpty, "{prompt:?}");
        }
        let mut ok = GenerationRequest::new("\0a\u{200b}");
        assert_eq!(check(&ok, FsCheck::Skip), Ok(()));

        let img = |bytes: Vec<u8>| Some(ImageInput { name: "i.png".into(), bytes, strength: 1.0 });
        let e = bad(|r| r.image = img(png(15, 4032)));
        assert_eq!(e, ValidationError::ImageTooSmall { name: "i.png".into(), width: 15, height: 4032, min: 16 });
        assert!(e.to_string().contains("15x4032 pixels; each side must be at least 16"), "{e}");
        assert!(matches!(bad(|r| r.image = img(png(1, 1)[..20].to_vec())), ValidationError::ImageHeader { .. }));
        ok.image = img(png(4032, 3024));
        assert_eq!(check(&ok, FsCheck::Skip), Ok(()));

        let nul = PathBuf::from("/tmp/a\0b.mp4");
        for fs in [FsCheck::Skip, FsCheck::Probe] {
            let mut r = GenerationRequest::new("a cat");
            r.output = Some(nul.clone());
            assert_eq!(check(&r, fs), Err(ValidationError::OutputNul(nul.clone())));
        }

        let e = bad(|r| r.keep_alive = Some(KeepAlive::Seconds(4611686018427387904)));
        assert!(e.to_string().contains("4611686018427387904s is longer than the limit of 31536000s"), "{e}");
        ok.keep_alive = Some(KeepAlive::Seconds(KeepAlive::MAX_SECS));
        assert_eq!(check(&ok, FsCheck::Skip), Ok(()));
    }

    #[test]
    fn every_field() {
        assert!(check(&GenerationRequest::new("a cat"), FsCheck::Probe).is_ok());
        assert_eq!(bad(|r| r.prompt = " ".into()), ValidationError::PromptEmpty);
        assert!(matches!(bad(|r| r.prompt = "x".repeat(4001)), ValidationError::PromptTooLong { .. }));
        assert!(matches!(bad(|r| r.negative_prompt = Some("x".repeat(4001))), ValidationError::PromptTooLong { .. }));
        let e = bad(|r| r.frames = 96).to_string();
        assert_eq!(e, "frames must be 8k+1 from 9 to 257 (9, 17, …, 257); got 96 (nearest: 89 or 97)");
        assert!(bad(|r| r.frames = 1).to_string().ends_with("got 1 (nearest: 9)"));
        assert!(bad(|r| r.frames = 2001).to_string().ends_with("got 2001 (nearest: 257)"));
        assert!(matches!(bad(|r| r.frames = 265), ValidationError::Frames { .. }));
        // A daemon's refusal is read back from its bytes: any numbers in it display without a panic.
        let odd = ValidationError::Frames { frames: u32::MAX, min: u32::MAX, max: 0, step: 0 };
        assert!(odd.to_string().contains("got 4294967295"), "{odd}");
        let odd =
            ValidationError::Size { field: "w".into(), value: 7, multiple: 0, min: 9, max: 1, pipeline: "p".into() };
        assert!(odd.to_string().ends_with("got 7 (nearest: 9)"), "{odd}");
        let e = bad(|r| r.width = 288).to_string();
        assert_eq!(
            e,
            "width must be a multiple of 64 from 64 to 2048 for the distilled pipeline; got 288 (nearest: 256 or 320)"
        );
        assert!(bad(|r| r.height = 4096).to_string().ends_with("got 4096 (nearest: 2048)"));
        let e = bad(|r| {
            r.pipeline = Pipeline::TwoStage;
            r.width = 736
        });
        assert!(e.to_string().contains("multiple of 64"), "{e}");
        let e = bad(|r| r.width = 736);
        assert!(e.to_string().contains("for the distilled pipeline; got 736 (nearest: 704 or 768)"), "{e}");
        assert!(matches!(bad(|r| r.fps = 0), ValidationError::OutOfRange { .. }));
        assert!(matches!(bad(|r| r.steps = 101), ValidationError::OutOfRange { .. }));
        assert!(matches!(bad(|r| r.guidance_scale = f32::NAN), ValidationError::OutOfRange { .. }));
        let img = |bytes: Vec<u8>, strength| Some(ImageInput { name: "i".into(), bytes, strength });
        assert!(matches!(bad(|r| r.image = img(b"GIF89a".to_vec(), 1.0)), ValidationError::ImageFormat { .. }));
        assert!(matches!(bad(|r| r.image = img(vec![0xff, 0xd8, 0xff], 2.0)), ValidationError::OutOfRange { .. }));
        let big = vec![0xff; MAX_IMAGE_BYTES + 1];
        assert!(matches!(bad(|r| r.image = img(big, 1.0)), ValidationError::ImageTooLarge { .. }));
        assert!(matches!(bad(|r| r.output = Some("rel.mp4".into())), ValidationError::OutputNotAbsolute(_)));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(bad(|r| r.output = Some(dir.path().join("x.avi"))), ValidationError::OutputExtension(_)));
        std::fs::write(dir.path().join("x.mp4"), b"").unwrap();
        assert!(matches!(bad(|r| r.output = Some(dir.path().join("x.mp4"))), ValidationError::OutputExists(_)));
        let mut ok = GenerationRequest::new("a cat");
        ok.output = Some(dir.path().join("y.mp4"));
        assert!(check(&ok, FsCheck::Probe).is_ok());
        let missing = dir.path().join("new/sub");
        assert_eq!(bad(|r| r.output = Some(missing.join("y.mp4"))), ValidationError::OutputDirMissing(missing));
        assert!(!dir.path().join("new").exists());
        assert!(matches!(
            load_image(&dir.path().join("missing.png"), 1.0),
            Err(ValidationError::ImageUnreadable { .. })
        ));
    }
}
