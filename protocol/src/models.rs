//! Wire types of model management: listings, pulls, verification and download progress.
use crate::job::{JobId, ModelVariant, Pipeline};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Download events are sent as [`crate::Event`]s with this job id (jobs start at 1); a `Subscribe { job: None }`
/// receives them.
pub const MODEL_EVENTS: JobId = 0;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileState {
    /// Complete in the models directory (a link into a Hugging Face cache counts).
    Installed {
        bytes: u64,
    },
    /// A `.part` file from an interrupted download; `ltxctl models pull` resumes it.
    Partial {
        bytes: u64,
    },
    /// Being downloaded now.
    Downloading {
        done: u64,
        total: u64,
    },
    /// Not in the models directory but in a Hugging Face cache: a pull links it instead of downloading.
    InHfCache {
        path: PathBuf,
        bytes: u64,
    },
    Missing,
    /// A pull asked for it; it waits for a download slot (nothing fetched yet in this run).
    Queued,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFileInfo {
    /// Path inside the models directory.
    pub name: String,
    /// Its Hugging Face repository (empty for the directory's own files).
    pub repo: String,
    pub component: String,
    /// Published size (approximate until downloaded).
    pub size: u64,
    pub state: FileState,
    /// Its sha256 was checked (at download or by `models verify`) and the file is unchanged since.
    pub verified: bool,
    /// Part of the directory's own Gemma split (its index names shards the Hub does not have): not
    /// downloaded, not checked against the Hub ([`crate::catalogue::own_split`]).
    pub own_split: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelsInfo {
    pub dir: PathBuf,
    /// Free bytes on the models directory's file system (`None` when it cannot be read).
    pub disk_free: Option<u64>,
    /// The Hugging Face cache consulted for reuse, when one exists.
    pub hf_cache: Option<PathBuf>,
    pub files: Vec<ModelFileInfo>,
}

impl ModelsInfo {
    /// The listed files a pipeline running `variant` reads (the daemon lists what the directory uses: its own
    /// Gemma split where it has one).
    pub fn needed(&self, variant: ModelVariant, pipeline: Pipeline) -> Vec<&ModelFileInfo> {
        let names: Vec<String> =
            crate::catalogue::components(variant, pipeline).into_iter().map(|c| c.name()).collect();
        self.files.iter().filter(|f| names.contains(&f.component)).collect()
    }
}

/// What a pull did with each file it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullAction {
    AlreadyInstalled,
    /// Linked from the Hugging Face cache (no download).
    Linked(PathBuf),
    /// A download started (or resumed from its `.part`) for this pull.
    Started,
    /// Another pull is already downloading it: this one shares its progress.
    Joined,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullFile {
    pub name: String,
    pub action: PullAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyOutcome {
    Ok,
    Mismatch {
        expected: String,
        actual: String,
    },
    Missing,
    /// No published checksum could be obtained (offline and never verified before).
    Unverifiable(String),
    /// Part of the directory's own Gemma split: the Hub publishes nothing to check it against.
    OwnSplit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResult {
    pub name: String,
    pub sha256: Option<String>,
    pub outcome: VerifyOutcome,
}

/// Download progress and results (sent with job id [`MODEL_EVENTS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownloadEvent {
    Progress {
        file: String,
        done: u64,
        total: u64,
    },
    /// A transient failure; the download retries after `delay_ms`.
    Retrying {
        file: String,
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    Done {
        file: String,
        bytes: u64,
        sha256: String,
    },
    Failed {
        file: String,
        message: String,
    },
}

impl DownloadEvent {
    pub fn file(&self) -> &str {
        match self {
            Self::Progress { file, .. }
            | Self::Retrying { file, .. }
            | Self::Done { file, .. }
            | Self::Failed { file, .. } => file,
        }
    }
}

/// `12.3 GB` / `995 MB` / `12 KB` (decimal units, as the Hub shows sizes).
pub fn human_bytes(n: u64) -> String {
    let f = n as f64;
    if n >= 1_000_000_000 {
        format!("{:.1} GB", f / 1e9)
    } else if n >= 1_000_000 {
        format!("{:.0} MB", f / 1e6)
    } else if n >= 1_000 {
        format!("{:.0} KB", f / 1e3)
    } else {
        format!("{n} B")
    }
}

/// What a variant (default pipeline) still lacks.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantState {
    pub variant: crate::ModelVariant,
    /// The files not installed.
    pub missing: Vec<String>,
    /// Bytes still to fetch for them.
    pub bytes: u64,
    /// How many of them are downloading or queued now.
    pub downloading: usize,
}

/// Free bytes for an unprivileged user on the file system holding `path` (or its nearest existing parent).
pub fn disk_free(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = path.ancestors().find(|p| p.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid NUL-terminated path.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)] // the field types differ between Linux and macOS
        Some(s.f_bavail as u64 * s.f_frsize as u64)
    }
}
