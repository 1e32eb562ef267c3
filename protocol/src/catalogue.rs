//! The known model files: which Hugging Face file lands where in the models directory, and which files a
//! pipeline + variant needs (`ensure`). Pure data, no I/O beyond [`is_present`]: the daemon downloads, the
//! client shows, both resolve through here.
//!
//! Sizes are the published sizes rounded (the Hub's `x-linked-size` is authoritative at download time), and
//! no sha256 is pinned here: every LFS file is checked against the sha256 the Hub publishes with it
//! (`x-linked-etag`), every small git file against its git blob id (`etag`). A `sha256` given here must also
//! match, so a pinned catalogue can refuse a file the Hub replaced.
//!
//! The preview decoders live in a GitHub repository, not on the Hub ([`Source::GitHub`]): each is fetched at a
//! pinned commit and checked against its git blob id in that commit's tree (GitHub publishes no sha256 for
//! repository files; the blob id is the repository's own hash of the file).
use crate::job::{ModelVariant, Pipeline, Upscale};
use crate::rules::{Generation, Weights};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a file is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Component {
    /// The single-file checkpoint of a variant: transformer, connectors, video VAE, audio VAE, vocoder.
    Checkpoint(ModelVariant),
    /// A generation's distilled LoRA, which the two-stage dev pipeline applies in its second stage.
    DistilledLora(Generation),
    /// A generation's spatial latent upscaler by its factor (two-stage pipelines; a generation's set has all of
    /// its upscalers, so `--upscale` needs no other pull).
    SpatialUpscaler(Generation, Upscale),
    /// Gemma 3 12B: config, tokenizer and weight shards (gated on the Hub: accept its licence, set a token).
    TextEncoder,
    /// The tiny decoder of a generation's live previews (TAEHV's TAELTX); optional: `models pull --preview`.
    PreviewDecoder(Generation),
}

impl Component {
    pub fn name(self) -> String {
        match self {
            Self::Checkpoint(v) => format!("{} checkpoint", v.name()),
            Self::DistilledLora(g) => format!("{} distilled LoRA", g.id()),
            Self::SpatialUpscaler(g, u) => format!("{} spatial upscaler ×{}", g.id(), u.name()),
            Self::TextEncoder => "Gemma 3 text encoder".into(),
            Self::PreviewDecoder(g) => format!("{} preview decoder", g.id()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    pub component: Component,
    /// Hugging Face repository (`owner/name`).
    pub repo: &'static str,
    /// Branch, tag or commit the file is resolved at.
    pub revision: &'static str,
    /// Path inside the repository.
    pub remote: &'static str,
    /// Path inside the models directory.
    pub local: &'static str,
    /// Published size in bytes (approximate where the Hub rounds it); [`UNPUBLISHED`] where no citable source
    /// gives one (the Hub's size at pull time is the size, its sha256 the check).
    pub size: u64,
    /// Stored through Git LFS (so the Hub publishes its sha256 in `x-linked-etag`).
    pub lfs: bool,
    /// A pinned sha256 (lowercase hex), where known.
    pub sha256: Option<&'static str>,
    /// Where it is downloaded from.
    pub source: Source,
}

/// Where a file is downloaded from, and what it is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The Hugging Face Hub (`{endpoint}/{repo}/resolve/{revision}/{remote}`): the sha256 or git blob id it
    /// publishes with the file.
    Hub,
    /// A GitHub repository at a pinned commit (`https://raw.githubusercontent.com/{repo}/{revision}/{remote}`):
    /// the file's git blob id (lowercase hex) in that commit's tree.
    GitHub { git_blob: &'static str },
}

pub const LTX_REPO: &str = "Lightricks/LTX-2";
/// LTX-2.3's files (`MODELS-LTX-2.3.md` of the LTX-2 repository names them).
pub const LTX23_REPO: &str = "Lightricks/LTX-2.3";
/// The size of a file no citable source publishes a size for.
pub const UNPUBLISHED: u64 = 0;
macro_rules! gemma_dir {
    () => {
        "gemma-3-12b-it-qat-q4_0-unquantized"
    };
}
pub const GEMMA_REPO: &str = concat!("google/", gemma_dir!());
/// Gemma's directory inside the models directory.
pub const GEMMA_DIR: &str = gemma_dir!();
/// Gemma's shard index: when present, the shards it names are the ones that must exist.
pub const GEMMA_INDEX: &str = concat!(gemma_dir!(), "/model.safetensors.index.json");

const GB: u64 = 1_000_000_000;
const MB: u64 = 1_000_000;

const fn ltx(component: Component, file: &'static str, size: u64) -> ModelFile {
    ModelFile {
        component,
        repo: LTX_REPO,
        revision: "main",
        remote: file,
        local: file,
        size,
        lfs: true,
        sha256: None,
        source: Source::Hub,
    }
}

/// An LTX-2.3 file: name from `MODELS-LTX-2.3.md`; size and sha256 not published there (checked against the
/// Hub's at pull time).
const fn ltx23(component: Component, file: &'static str) -> ModelFile {
    ModelFile {
        component,
        repo: LTX23_REPO,
        revision: "main",
        remote: file,
        local: file,
        size: UNPUBLISHED,
        lfs: true,
        sha256: None,
        source: Source::Hub,
    }
}

const fn gemma(remote: &'static str, local: &'static str, size: u64, lfs: bool) -> ModelFile {
    ModelFile {
        component: Component::TextEncoder,
        repo: GEMMA_REPO,
        revision: "main",
        remote,
        local,
        size,
        lfs,
        sha256: None,
        source: Source::Hub,
    }
}

/// The TAEHV repository and the commit its preview decoders are fetched at.
pub const TAEHV_REPO: &str = "madebyollin/taehv";
const TAEHV_COMMIT: &str = "1f14a568f24bf8811e0a0ac601613e04fc1581e8";

/// A preview decoder of the TAEHV repository: its converted safetensors file (the repository also has the
/// `.pth` original; the safetensors one needs no unpickling). Size: 11.76M parameters in f32, approximate.
const fn taehv(generation: Generation, remote: &'static str, local: &'static str, git_blob: &'static str) -> ModelFile {
    ModelFile {
        component: Component::PreviewDecoder(generation),
        repo: TAEHV_REPO,
        revision: TAEHV_COMMIT,
        remote,
        local,
        size: 47 * MB,
        lfs: false,
        sha256: None,
        source: Source::GitHub { git_blob },
    }
}

/// Every file the daemon knows how to fetch.
pub const FILES: &[ModelFile] = &[
    ltx(Component::Checkpoint(ModelVariant::Distilled), "ltx-2-19b-distilled.safetensors", 43 * GB),
    ltx(Component::Checkpoint(ModelVariant::DistilledFp8), "ltx-2-19b-distilled-fp8.safetensors", 27 * GB),
    ltx(Component::Checkpoint(ModelVariant::Dev), "ltx-2-19b-dev.safetensors", 43 * GB),
    ltx(Component::DistilledLora(Generation::Ltx2), "ltx-2-19b-distilled-lora-384.safetensors", 1_500 * MB),
    ltx(
        Component::SpatialUpscaler(Generation::Ltx2, Upscale::X2),
        "ltx-2-spatial-upscaler-x2-1.0.safetensors",
        995 * MB,
    ),
    ltx23(Component::Checkpoint(ModelVariant::Ltx23Distilled), "ltx-2.3-22b-distilled-1.1.safetensors"),
    ltx23(Component::Checkpoint(ModelVariant::Ltx23Dev), "ltx-2.3-22b-dev.safetensors"),
    ltx23(Component::DistilledLora(Generation::Ltx23), "ltx-2.3-22b-distilled-lora-384-1.1.safetensors"),
    ltx23(Component::SpatialUpscaler(Generation::Ltx23, Upscale::X2), "ltx-2.3-spatial-upscaler-x2-1.1.safetensors"),
    ltx23(
        Component::SpatialUpscaler(Generation::Ltx23, Upscale::X1_5),
        "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors",
    ),
    gemma("config.json", concat!(gemma_dir!(), "/config.json"), 2_000, false),
    gemma("tokenizer.json", concat!(gemma_dir!(), "/tokenizer.json"), 33 * MB, true),
    gemma("tokenizer_config.json", concat!(gemma_dir!(), "/tokenizer_config.json"), 1_200_000, false),
    gemma("model.safetensors.index.json", GEMMA_INDEX, 110_000, false),
    gemma(
        "model-00001-of-00005.safetensors",
        concat!(gemma_dir!(), "/model-00001-of-00005.safetensors"),
        4_980 * MB,
        true,
    ),
    gemma(
        "model-00002-of-00005.safetensors",
        concat!(gemma_dir!(), "/model-00002-of-00005.safetensors"),
        4_930 * MB,
        true,
    ),
    gemma(
        "model-00003-of-00005.safetensors",
        concat!(gemma_dir!(), "/model-00003-of-00005.safetensors"),
        4_930 * MB,
        true,
    ),
    gemma(
        "model-00004-of-00005.safetensors",
        concat!(gemma_dir!(), "/model-00004-of-00005.safetensors"),
        4_930 * MB,
        true,
    ),
    gemma(
        "model-00005-of-00005.safetensors",
        concat!(gemma_dir!(), "/model-00005-of-00005.safetensors"),
        4_600 * MB,
        true,
    ),
    taehv(
        Generation::Ltx2,
        "safetensors/taeltx_2.safetensors",
        "taehv/taeltx_2.safetensors",
        "a3b56beaa4c3d5478cdcb78d984e65b2ad44bffa",
    ),
    taehv(
        Generation::Ltx23,
        "safetensors/taeltx2_3.safetensors",
        "taehv/taeltx2_3.safetensors",
        "9553c906cd3d2a1deb85574d5236d256d795aa50",
    ),
];

/// The components a pipeline running `variant` reads ([`crate::rules::PipelineRules`]).
pub fn components(variant: ModelVariant, pipeline: Pipeline) -> Vec<Component> {
    let rules = pipeline.rules();
    let generation = variant.rules().generation;
    let mut c = vec![Component::Checkpoint(variant), Component::TextEncoder];
    if rules.two_stage {
        c.extend(generation.rules().upscales.iter().map(|&u| Component::SpatialUpscaler(generation, u)));
    }
    if rules.lora_on_dev && variant.rules().weights == Weights::Dev {
        c.push(Component::DistilledLora(generation));
    }
    c
}

/// What `ltxctl load` warms: everything but the stage-2 LoRA, which is applied while a job runs.
pub fn warm_components(variant: ModelVariant) -> Vec<Component> {
    let mut c = components(variant, variant.default_pipeline());
    c.retain(|c| !matches!(c, Component::DistilledLora(_)));
    c
}

/// The file a single-file component is (`None` for the text encoder, a directory of files).
pub fn file_of(component: Component) -> Option<&'static ModelFile> {
    match component {
        Component::TextEncoder => None,
        c => FILES.iter().find(|f| f.component == c),
    }
}

/// The preview decoder of `generation`, where it has one.
pub fn preview_decoder(generation: Generation) -> Option<&'static ModelFile> {
    file_of(Component::PreviewDecoder(generation))
}

/// The checkpoint file of `variant` in the models directory.
pub fn checkpoint(variant: ModelVariant) -> &'static str {
    file_of(Component::Checkpoint(variant)).map_or("", |f| f.local)
}

/// `ensure`: every file a pipeline running `variant` needs, in download order (small files first per component).
pub fn needs(variant: ModelVariant, pipeline: Pipeline) -> Vec<&'static ModelFile> {
    let comps = components(variant, pipeline);
    FILES.iter().filter(|f| comps.contains(&f.component)).collect()
}

/// The variants whose default pipeline reads `file` (for listings).
pub fn needed_by(file: &ModelFile) -> Vec<ModelVariant> {
    ModelVariant::ALL.into_iter().filter(|&v| components(v, v.default_pipeline()).contains(&file.component)).collect()
}

/// Looks a file up by its path in the models directory.
pub fn by_local(local: &str) -> Option<&'static ModelFile> {
    FILES.iter().find(|f| f.local == local)
}

/// The exact command that installs what a job needs.
pub fn pull_command(variant: ModelVariant, pipeline: Pipeline) -> String {
    if pipeline == variant.default_pipeline() {
        format!("ltxctl models pull {}", variant.name())
    } else {
        format!("ltxctl models pull {} --pipeline {}", variant.name(), pipeline.name())
    }
}

/// Whether `file` is usable in `dir`. Gemma's shards count as present when the directory has its own split
/// ([`own_split`]) and every shard of it exists (a converted or smaller Gemma is accepted as it is).
pub fn is_present(dir: &Path, file: &ModelFile) -> bool {
    presence(dir, file).unwrap_or(false)
}

/// [`is_present`], keeping an error that is not the file's absence (too many open files, permissions): a
/// file the daemon cannot look at is not reported missing.
pub fn presence(dir: &Path, file: &ModelFile) -> std::io::Result<bool> {
    if is_file(&dir.join(file.local))? {
        return Ok(true);
    }
    if is_shard(file) {
        if let Some(own) = own_split(dir)? {
            for s in &own {
                if !is_file(&dir.join(GEMMA_DIR).join(s))? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `path` is a file; absence is `Ok(false)`, any other failure an error.
fn is_file(path: &Path) -> std::io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.is_file()),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(e),
    }
}

fn is_shard(f: &ModelFile) -> bool {
    f.component == Component::TextEncoder && f.local.ends_with(".safetensors")
}

/// Gemma's own shard split in `dir`: the shards its index names when it names none of the catalogue's (a
/// converted or smaller Gemma, whose shards are not on the Hub); `None` where the catalogue's shards are the
/// ones (no readable index, or the Hub's).
pub fn own_split(dir: &Path) -> std::io::Result<Option<Vec<String>>> {
    let Some(shards) = indexed_shards_of(dir)? else { return Ok(None) };
    let hubs = |s: &String| FILES.iter().any(|f| is_shard(f) && f.remote == s);
    Ok((!shards.iter().any(hubs)).then_some(shards))
}

fn indexed_shards_of(dir: &Path) -> std::io::Result<Option<Vec<String>>> {
    let text = match std::fs::read_to_string(dir.join(GEMMA_INDEX)) {
        Ok(t) => t,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok(None)
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Ok(None),
        Err(e) => return Err(e),
    };
    // `"weight_map": {"key": "model-00001-of-00002.safetensors", …}`: every value ending in `.safetensors`.
    let Some(at) = text.find("\"weight_map\"") else { return Ok(None) };
    let mut shards: Vec<String> = text[at..]
        .split('"')
        .filter(|s| s.ends_with(".safetensors") && !s.contains('/') && !s.contains(".."))
        .map(str::to_string)
        .collect();
    shards.sort();
    shards.dedup();
    Ok((!shards.is_empty()).then_some(shards))
}

/// A file the models directory uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirFile {
    /// One of [`FILES`].
    Catalogue(&'static ModelFile),
    /// Part of Gemma's own split ([`own_split`]): its index or a shard it names (the path inside the models
    /// directory). Not on the Hub: never downloaded, never checked against the Hub's checksums.
    Own(String),
}

impl DirFile {
    /// Its path inside the models directory.
    pub fn local(&self) -> &str {
        match self {
            Self::Catalogue(f) => f.local,
            Self::Own(local) => local,
        }
    }

    pub fn component(&self) -> Component {
        match self {
            Self::Catalogue(f) => f.component,
            Self::Own(_) => Component::TextEncoder,
        }
    }
}

/// The files `dir` uses, in catalogue order: [`FILES`], with Gemma's index and shards the directory's own where
/// it has its own split ([`own_split`]).
pub fn files_in(dir: &Path) -> std::io::Result<Vec<DirFile>> {
    let Some(own) = own_split(dir)? else { return Ok(FILES.iter().map(DirFile::Catalogue).collect()) };
    let mut out = Vec::new();
    for f in FILES {
        if f.local == GEMMA_INDEX {
            out.push(DirFile::Own(GEMMA_INDEX.into()));
            out.extend(own.iter().map(|s| DirFile::Own(format!("{GEMMA_DIR}/{s}"))));
        } else if !is_shard(f) {
            out.push(DirFile::Catalogue(f));
        }
    }
    Ok(out)
}

/// The files of [`files_in`] a pipeline running `variant` reads.
pub fn needs_in(dir: &Path, variant: ModelVariant, pipeline: Pipeline) -> std::io::Result<Vec<DirFile>> {
    let comps = components(variant, pipeline);
    Ok(files_in(dir)?.into_iter().filter(|f| comps.contains(&f.component())).collect())
}

/// The files of `needs(variant, pipeline)` missing from `dir`.
pub fn missing(dir: &Path, variant: ModelVariant, pipeline: Pipeline) -> std::io::Result<Vec<&'static ModelFile>> {
    missing_of(dir, &components(variant, pipeline))
}

/// The files of `components` missing from `dir`, in download order; an error when one cannot be looked at.
pub fn missing_of(dir: &Path, components: &[Component]) -> std::io::Result<Vec<&'static ModelFile>> {
    let mut missing = Vec::new();
    for f in FILES.iter().filter(|f| components.contains(&f.component)) {
        if !presence(dir, f)? {
            missing.push(f);
        }
    }
    Ok(missing)
}

/// Why the files of a job or a load are not usable.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Missing(#[from] MissingModels),
    #[error("cannot check the model files in {}: {source}", dir.display())]
    Unreadable { dir: PathBuf, source: std::io::Error },
}

/// The one refusal for a job or a load whose files are not installed: the submit check, `ltxctl load` and
/// the engine's preflight all give it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("model files missing from {}: {} — run `{command}`", dir.display(), missing.join(", "))]
pub struct MissingModels {
    pub dir: PathBuf,
    /// Paths inside `dir`.
    pub missing: Vec<String>,
    /// The `ltxctl models pull` that installs them.
    pub command: String,
}

impl MissingModels {
    /// `Err` naming every file of `components` missing from `dir`, or why they cannot be looked at.
    pub fn check(
        dir: &Path,
        variant: ModelVariant,
        pipeline: Pipeline,
        components: &[Component],
    ) -> Result<(), CheckError> {
        let files = missing_of(dir, components).map_err(|source| CheckError::Unreadable { dir: dir.into(), source })?;
        Self::from_files(dir, variant, pipeline, files).map_or(Ok(()), |m| Err(m.into()))
    }

    /// The refusal for these missing files (`None` when there are none).
    pub fn from_files(dir: &Path, variant: ModelVariant, pipeline: Pipeline, files: Vec<&ModelFile>) -> Option<Self> {
        (!files.is_empty()).then(|| Self {
            dir: dir.to_path_buf(),
            missing: files.iter().map(|f| f.local.to_string()).collect(),
            command: pull_command(variant, pipeline),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_resolves_each_pipeline() {
        let locals = |v, p| needs(v, p).iter().map(|f| f.local).collect::<Vec<_>>();
        let d = locals(ModelVariant::Distilled, Pipeline::Distilled);
        assert!(d.contains(&"ltx-2-19b-distilled.safetensors"));
        assert!(d.contains(&"ltx-2-spatial-upscaler-x2-1.0.safetensors"));
        assert!(d.contains(&GEMMA_INDEX));
        assert!(!d.iter().any(|f| f.contains("lora") || f.contains("dev")));
        let two = locals(ModelVariant::Dev, Pipeline::TwoStage);
        assert!(
            two.contains(&"ltx-2-19b-distilled-lora-384.safetensors") && two.contains(&"ltx-2-19b-dev.safetensors")
        );
        let one = locals(ModelVariant::Dev, Pipeline::OneStage);
        assert!(!one.iter().any(|f| f.contains("upscaler") || f.contains("lora")));
        assert_eq!(pull_command(ModelVariant::Dev, Pipeline::TwoStage), "ltxctl models pull dev");
        assert_eq!(pull_command(ModelVariant::Dev, Pipeline::OneStage), "ltxctl models pull dev --pipeline one-stage");
        assert_eq!(needed_by(by_local(GEMMA_INDEX).unwrap()), ModelVariant::ALL);
        // Every local path is unique and inside the models directory.
        for f in FILES {
            assert_eq!(FILES.iter().filter(|g| g.local == f.local).count(), 1);
            assert!(!f.local.starts_with('/') && !f.local.contains(".."));
        }
    }

    #[test]
    fn each_generation_has_its_preview_decoder_pinned_on_github() {
        for g in Generation::ALL {
            let f = preview_decoder(g).expect("a preview decoder");
            assert!(g.preview().is_some(), "its layout is a rules row");
            let Source::GitHub { git_blob } = f.source else { panic!("{} is not a GitHub file", f.local) };
            assert!(git_blob.len() == 40 && git_blob.bytes().all(|b| b.is_ascii_hexdigit()), "{git_blob}");
            assert!(f.revision.len() == 40 && f.local.starts_with("taehv/") && f.local.ends_with(".safetensors"));
            assert!(!f.lfs && f.sha256.is_none());
            // Optional: no job needs it.
            assert!(ModelVariant::ALL
                .into_iter()
                .all(|v| Pipeline::ALL.into_iter().all(|p| !needs(v, p).contains(&f))));
        }
        assert_ne!(preview_decoder(Generation::Ltx2), preview_decoder(Generation::Ltx23));
        assert!(FILES.iter().filter(|f| f.source == Source::Hub).all(|f| f.repo != TAEHV_REPO));
    }

    #[test]
    fn presence_follows_gemmas_own_index() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let missing_names = || {
            missing(p, ModelVariant::Distilled, Pipeline::Distilled)
                .unwrap()
                .iter()
                .map(|f| f.local)
                .collect::<Vec<_>>()
        };
        assert_eq!(missing_names().len(), needs(ModelVariant::Distilled, Pipeline::Distilled).len());
        std::fs::create_dir_all(p.join(GEMMA_DIR)).unwrap();
        for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "model-00001-of-00002.safetensors"] {
            std::fs::write(p.join(GEMMA_DIR).join(f), b"x").unwrap();
        }
        let index = r#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
        std::fs::write(p.join(GEMMA_INDEX), index).unwrap();
        // The index names a shard that is not there: the catalogue's shards stay missing.
        assert!(missing_names().iter().any(|f| f.ends_with("model-00001-of-00005.safetensors")));
        std::fs::write(p.join(GEMMA_DIR).join("model-00002-of-00002.safetensors"), b"x").unwrap();
        std::fs::write(p.join("ltx-2-19b-distilled.safetensors"), b"x").unwrap();
        assert_eq!(missing_names(), ["ltx-2-spatial-upscaler-x2-1.0.safetensors"]);
        // The directory's files are its own index and shards, not the catalogue's five.
        let gemma: Vec<String> = needs_in(p, ModelVariant::Distilled, Pipeline::Distilled)
            .unwrap()
            .into_iter()
            .filter(|f| f.component() == Component::TextEncoder)
            .map(|f| match f {
                DirFile::Own(l) => format!("own {l}"),
                DirFile::Catalogue(f) => f.local.to_string(),
            })
            .collect();
        let g = |f: &str| format!("{GEMMA_DIR}/{f}");
        let own = |f: &str| format!("own {GEMMA_DIR}/{f}");
        let want = [
            g("config.json"),
            g("tokenizer.json"),
            g("tokenizer_config.json"),
            own("model.safetensors.index.json"),
            own("model-00001-of-00002.safetensors"),
            own("model-00002-of-00002.safetensors"),
        ];
        assert_eq!(gemma, want);
        // An index naming the Hub's shards is the catalogue's split.
        let hub =
            r#"{"weight_map": {"a": "model-00001-of-00005.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
        std::fs::write(p.join(GEMMA_INDEX), hub).unwrap();
        assert_eq!(own_split(p).unwrap(), None);
        assert_eq!(files_in(p).unwrap().len(), FILES.len());
        assert!(missing_names().iter().any(|f| f.ends_with("model-00001-of-00005.safetensors")));
    }
}
