//! Hugging Face settings (endpoint, token, cache) from the environment and the config file, and lookups in
//! the `huggingface_hub` cache layout (`models--owner--name/{refs,snapshots,blobs}`).
use ltx_protocol::catalogue::ModelFile;
use ltx_protocol::paths::Env;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Where GitHub serves a repository's files at a commit (the preview decoders' source).
pub const DEFAULT_GITHUB: &str = "https://raw.githubusercontent.com";

#[derive(Clone)]
pub struct HfConfig {
    /// `$HF_ENDPOINT` > `hf_endpoint` > huggingface.co (tests point it at a local server).
    pub endpoint: String,
    /// `$HF_TOKEN` > `$HUGGING_FACE_HUB_TOKEN` > `hf_token` > the token file `huggingface-cli login` wrote.
    pub token: Option<String>,
    /// `$HF_HUB_CACHE` > `$HF_HOME/hub` > `~/.cache/huggingface/hub`.
    pub cache: PathBuf,
    /// No byte for this long: the download is retried from where it stopped.
    pub stall: Duration,
    /// `$LTX_GITHUB_ENDPOINT` > raw.githubusercontent.com: the host of `Source::GitHub` files (tests point it
    /// at a local server). It never gets the Hub's token.
    pub github: String,
}

impl std::fmt::Debug for HfConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("cache", &self.cache)
            .field("stall", &self.stall)
            .field("github", &self.github)
            .finish()
    }
}

impl HfConfig {
    /// The settings; a token file other users could write is refused (its error names the `chmod`).
    pub fn load(
        env: &Env,
        endpoint: Option<String>,
        token: Option<String>,
        stall_secs: Option<u64>,
    ) -> Result<Self, ltx_protocol::fsutil::TrustError> {
        let var = |k: &str| (env.0)(k).and_then(|v| v.into_string().ok()).filter(|v| !v.trim().is_empty());
        let home = (env.0)("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            var("XDG_CACHE_HOME").map_or_else(|| home.join(".cache"), PathBuf::from).join("huggingface")
        });
        let cache = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map_or_else(|| hf_home.join("hub"), PathBuf::from);
        let token_file = var("HF_TOKEN_PATH").map_or_else(|| hf_home.join("token"), PathBuf::from);
        let token = match var("HF_TOKEN").or_else(|| var("HUGGING_FACE_HUB_TOKEN")).or(token) {
            Some(t) => Some(t),
            None => ltx_protocol::fsutil::read_trusted(&token_file)?,
        };
        let token = token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        Ok(Self {
            endpoint: var("HF_ENDPOINT").or(endpoint).unwrap_or_else(|| DEFAULT_ENDPOINT.into()),
            token,
            cache,
            stall: Duration::from_secs(stall_secs.unwrap_or(30).max(1)),
            github: var("LTX_GITHUB_ENDPOINT").unwrap_or_else(|| DEFAULT_GITHUB.into()),
        })
    }
}

/// `f` in the Hugging Face cache: the snapshot the revision's ref points at, else the newest snapshot that has it.
pub fn cached(cache: &Path, f: &ModelFile) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", f.repo.replace('/', "--")));
    let snapshots = repo.join("snapshots");
    let mut candidates = Vec::new();
    if let Ok(commit) = std::fs::read_to_string(repo.join("refs").join(f.revision)) {
        candidates.push(snapshots.join(commit.trim()));
    }
    candidates.push(snapshots.join(f.revision));
    let mut others: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&snapshots)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    others.sort_by_key(|o| std::cmp::Reverse(o.0));
    candidates.extend(others.into_iter().map(|(_, p)| p));
    // `is_file` follows the snapshot's link to its blob: an incomplete blob (`.incomplete`) is never linked.
    candidates.into_iter().map(|s| s.join(f.remote)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn settings_precedence() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path().to_path_buf();
        std::fs::create_dir_all(h.join(".cache/huggingface")).unwrap();
        std::fs::write(h.join(".cache/huggingface/token"), "hf_file\n").unwrap();
        let f = move |k: &str| (k == "HOME").then(|| OsString::from(&h));
        let c = HfConfig::load(&Env(&f), None, None, None).unwrap();
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(c.token.as_deref(), Some("hf_file"));
        assert_eq!(c.cache, home.path().join(".cache/huggingface/hub"));
        assert_eq!(c.stall, Duration::from_secs(30));
        assert_eq!(c.github, DEFAULT_GITHUB);
        assert!(!format!("{c:?}").contains("hf_file"), "the token is never logged");
        let c = HfConfig::load(&Env(&f), Some("http://cfg".into()), Some("hf_cfg".into()), Some(2)).unwrap();
        assert_eq!((c.endpoint.as_str(), c.token.as_deref()), ("http://cfg", Some("hf_cfg")));
        let g = |k: &str| match k {
            "HF_ENDPOINT" => Some(OsString::from("http://env")),
            "HF_TOKEN" => Some("hf_env".into()),
            "HF_HOME" => Some("/hfh".into()),
            _ => None,
        };
        let c = HfConfig::load(&Env(&g), Some("http://cfg".into()), Some("hf_cfg".into()), None).unwrap();
        assert_eq!((c.endpoint.as_str(), c.token.as_deref()), ("http://env", Some("hf_env")));
        assert_eq!(c.cache, PathBuf::from("/hfh/hub"));
    }

    #[test]
    fn a_token_file_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(".cache/huggingface/token");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "hf_file\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o646)).unwrap();
        let h = home.path().to_path_buf();
        let f = move |k: &str| (k == "HOME").then(|| OsString::from(&h));
        let e = HfConfig::load(&Env(&f), None, None, None).unwrap_err().to_string();
        assert!(e.contains(&format!("chmod go-w {}", file.display())), "{e}");
        // A token from the environment or the config file wins: the file is not read.
        assert!(HfConfig::load(&Env(&f), None, Some("hf_cfg".into()), None).is_ok());
    }

    #[test]
    fn finds_files_in_the_hub_cache_layout() {
        let cache = tempfile::tempdir().unwrap();
        let f = ltx_protocol::catalogue::by_local("ltx-2-spatial-upscaler-x2-1.0.safetensors").unwrap();
        assert_eq!(cached(cache.path(), f), None);
        let repo = cache.path().join("models--Lightricks--LTX-2");
        let snap = repo.join("snapshots/abc123");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc123").unwrap();
        let blob = repo.join("blobs").join("a".repeat(64));
        // A dangling snapshot link (blob still downloading) is not a cached file.
        std::os::unix::fs::symlink(&blob, snap.join(f.remote)).unwrap();
        assert_eq!(cached(cache.path(), f), None);
        std::fs::write(&blob, b"weights").unwrap();
        assert_eq!(cached(cache.path(), f), Some(snap.join(f.remote)));
    }
}
