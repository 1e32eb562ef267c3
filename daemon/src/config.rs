//! Daemon configuration: command-line flag > environment > config file (TOML) > platform default.
use ltx_protocol::paths::{self, Env, Os};
use ltx_protocol::{KeepAlive, Part};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Parser)]
#[command(
    name = "ltxd",
    version,
    about = "LTX-2 video generation daemon (runs in the foreground; use `ltxctl daemon start`)"
)]
pub struct Args {
    /// Config file (default: the platform config dir, or $LTX_CONFIG).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Socket path (default: $LTX_SOCKET, the config file, or the platform runtime dir).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Directory for the job database and lock (default: $LTX_STATE_DIR or the platform state dir).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Load the configuration, report the first problem (exit 2) or `ok` (exit 0), and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Print the models directory and the memory decision (what a job that names no variant runs here) as one
    /// JSON line, and exit: `ltxctl doctor` without a running daemon.
    #[arg(long)]
    pub memory_decision: bool,
}

/// The config file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub outputs_dir: Option<PathBuf>,
    pub models_dir: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub queue_size: Option<u32>,
    /// Open client connections at most (default 256); one more is answered "too many connections".
    pub max_connections: Option<u32>,
    /// Seconds a connection may stay silent after its handshake before it is closed (default 300); a
    /// connection following a job or showing notifications is never idle.
    pub idle_timeout_secs: Option<u64>,
    /// "5m", "30s", "-1" (forever), "0" (unload after each job).
    pub keep_alive: Option<String>,
    /// Per component (`text_encoder = "30s"`), replacing `keep_alive` for it.
    pub component_keep_alive: BTreeMap<String, String>,
    pub shutdown_grace_secs: Option<u64>,
    /// Desktop notifications: "unfollowed" (default: jobs no client follows), "always" or "off".
    pub notifications: Option<String>,
    /// Hugging Face endpoint for model downloads (`$HF_ENDPOINT` wins).
    pub hf_endpoint: Option<String>,
    /// Token for gated repositories (Gemma); `$HF_TOKEN` wins, then this, then `huggingface-cli login`'s file.
    pub hf_token: Option<String>,
    /// Seconds without a byte before a download is retried (default 30).
    pub download_stall_secs: Option<u64>,
    /// "auto" (default: from the machine's memory), "16gb", "32gb", "64gb" or "128gb".
    pub memory_profile: Option<String>,
    /// Peak memory a job may use ("24GB", "512MB"), replacing what the machine has free.
    pub memory_budget: Option<String>,
    /// Always run the low-memory sequential plan.
    pub low_memory: Option<bool>,
    /// When an idle daemon unloads its models for the system's sake: "auto" (default), "off", or a size of
    /// available memory ("8GB").
    pub memory_pressure: Option<String>,
    /// How much the first-frame images of finished jobs may keep in the state dir's `inputs/` ("2GB", the
    /// default); the oldest go first. A pending job's input is never removed.
    pub inputs_max_bytes: Option<String>,
    /// Days a finished job's input is kept (default 30).
    pub inputs_max_age_days: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub config_path: PathBuf,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub outputs_dir: PathBuf,
    pub models_dir: PathBuf,
    pub log_dir: PathBuf,
    pub queue_size: u32,
    pub max_connections: u32,
    pub idle_timeout: std::time::Duration,
    /// How long a component stays loaded after its last use, unless a request asks otherwise.
    pub keep_alive: KeepAlive,
    /// Components whose keep-alive differs from `keep_alive`.
    pub component_keep_alive: BTreeMap<Part, KeepAlive>,
    pub shutdown_grace: Duration,
    pub notifications: crate::notify::Mode,
    pub hf: crate::models::HfConfig,
    pub memory: crate::memory::MemoryConfig,
    /// The cap on stored job inputs (`inputs_max_bytes`, `inputs_max_age_days`).
    pub inputs: crate::store::InputCap,
}

impl Config {
    pub fn load(args: &Args, os: Os, env: &Env) -> Result<Self, String> {
        let var = |k: &str| (env.0)(k).map(PathBuf::from);
        let config_path = args.config.clone().unwrap_or_else(|| paths::config_path(os, env));
        // It may hold `hf_token` and names the directories ltxd writes to: nobody else may be able to change it.
        let file: FileConfig = match ltx_protocol::fsutil::read_trusted(&config_path).map_err(|e| e.to_string())? {
            Some(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", config_path.display()))?,
            None => FileConfig::default(),
        };
        let keep_alive = match &file.keep_alive {
            Some(s) => KeepAlive::parse(s).map_err(|e| format!("{}: {e}", config_path.display()))?,
            None => KeepAlive::Seconds(300),
        };
        let mut component_keep_alive = BTreeMap::new();
        for (name, value) in &file.component_keep_alive {
            let part = Part::parse(name).ok_or_else(|| {
                let names: Vec<_> = Part::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "{}: component_keep_alive: unknown component `{name}` (one of: {})",
                    config_path.display(),
                    names.join(", ")
                )
            })?;
            let ka = KeepAlive::parse(value)
                .map_err(|e| format!("{}: component_keep_alive.{name}: {e}", config_path.display()))?;
            component_keep_alive.insert(part, ka);
        }
        let memory = crate::memory::MemoryConfig::load(
            file.memory_profile.as_deref(),
            file.memory_budget.as_deref(),
            file.low_memory,
            file.memory_pressure.as_deref(),
        )
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
        let queue_size = file.queue_size.unwrap_or(256);
        let notifications = match &file.notifications {
            Some(s) => crate::notify::Mode::parse(s).map_err(|e| format!("{}: {e}", config_path.display()))?,
            None => crate::notify::Mode::Unfollowed,
        };
        let mut inputs = crate::store::InputCap::default();
        if let Some(size) = &file.inputs_max_bytes {
            inputs.max_bytes = crate::memory::parse_bytes(size)
                .map_err(|e| format!("{}: inputs_max_bytes: {e}", config_path.display()))?;
        }
        if let Some(days) = file.inputs_max_age_days {
            inputs.max_age = Duration::from_secs(days.saturating_mul(24 * 3600));
        }
        if queue_size == 0 {
            return Err(format!("{}: queue_size must be at least 1", config_path.display()));
        }
        Ok(Self {
            socket: args
                .socket
                .clone()
                .or_else(|| var("LTX_SOCKET"))
                .or(file.socket)
                .unwrap_or_else(|| paths::socket_path(os, env)),
            state_dir: args
                .state_dir
                .clone()
                .or_else(|| var("LTX_STATE_DIR"))
                .or(file.state_dir)
                .unwrap_or_else(|| paths::state_dir(os, env)),
            outputs_dir: var("LTX_OUTPUTS_DIR").or(file.outputs_dir).unwrap_or_else(|| paths::outputs_dir(os, env)),
            models_dir: var("LTX_MODELS_DIR").or(file.models_dir).unwrap_or_else(|| paths::models_dir(os, env)),
            log_dir: var("LTX_LOG_DIR").or(file.log_dir).unwrap_or_else(|| paths::log_dir(os, env)),
            queue_size,
            max_connections: file.max_connections.unwrap_or(256).max(1),
            idle_timeout: std::time::Duration::from_secs(file.idle_timeout_secs.unwrap_or(300).max(1)),
            keep_alive,
            component_keep_alive,
            shutdown_grace: Duration::from_secs(file.shutdown_grace_secs.unwrap_or(10)),
            notifications,
            hf: crate::models::HfConfig::load(env, file.hf_endpoint, file.hf_token, file.download_stall_secs)
                .map_err(|e| e.to_string())?,
            memory,
            inputs,
            config_path,
        })
    }

    /// A component's keep-alive when the request names none.
    pub fn keep_alive_for(&self, component: Part) -> KeepAlive {
        self.component_keep_alive.get(&component).copied().unwrap_or(self.keep_alive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::ffi::OsString;

    #[test]
    fn precedence_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "socket = \"/f.sock\"\nqueue_size = 3\nkeep_alive = \"2m\"\n").unwrap();
        let c = cfg.clone();
        let envf = move |k: &str| match k {
            "LTX_CONFIG" => Some(OsString::from(&c)),
            "HOME" => Some("/h".into()),
            "LTX_OUTPUTS_DIR" => Some("/out".into()),
            _ => None,
        };
        let env = Env(&envf);
        let args = Args::parse_from(["ltxd"]);
        let got = Config::load(&args, Os::Linux, &env).unwrap();
        assert_eq!(got.socket, PathBuf::from("/f.sock"));
        assert_eq!(got.queue_size, 3);
        assert_eq!(got.keep_alive, KeepAlive::Seconds(120));
        assert_eq!(got.outputs_dir, PathBuf::from("/out"));
        assert_eq!(got.state_dir, PathBuf::from("/h/.local/state/ltx"));
        let args = Args::parse_from(["ltxd", "--socket", "/a.sock"]);
        assert_eq!(Config::load(&args, Os::Linux, &env).unwrap().socket, PathBuf::from("/a.sock"));
        assert_eq!(got.inputs, crate::store::InputCap::default());
        std::fs::write(&cfg, "inputs_max_bytes = \"500MB\"\ninputs_max_age_days = 2\n").unwrap();
        let inputs = Config::load(&args, Os::Linux, &env).unwrap().inputs;
        assert_eq!((inputs.max_bytes, inputs.max_age), (500_000_000, Duration::from_secs(2 * 24 * 3600)));
        std::fs::write(&cfg, "inputs_max_bytes = \"lots\"\n").unwrap();
        assert!(Config::load(&args, Os::Linux, &env).unwrap_err().contains("inputs_max_bytes"));
        std::fs::write(&cfg, "bogus = 1\n").unwrap();
        assert!(Config::load(&args, Os::Linux, &env).unwrap_err().contains("bogus"));
    }

    #[test]
    fn per_component_keep_alive() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        let c = cfg.clone();
        let envf = move |k: &str| (k == "LTX_CONFIG").then(|| OsString::from(&c));
        let env = Env(&envf);
        let args = Args::parse_from(["ltxd"]);
        let text = "keep_alive = \"10m\"\n[component_keep_alive]\ntext_encoder = \"0\"\ntransformer = \"-1\"\n";
        std::fs::write(&cfg, text).unwrap();
        let got = Config::load(&args, Os::Linux, &env).unwrap();
        assert_eq!(got.keep_alive_for(Part::TextEncoder), KeepAlive::UnloadNow);
        assert_eq!(got.keep_alive_for(Part::Transformer), KeepAlive::Forever);
        assert_eq!(got.keep_alive_for(Part::Vocoder), KeepAlive::Seconds(600));
        std::fs::write(&cfg, "[component_keep_alive]\ngemma = \"1m\"\n").unwrap();
        let err = Config::load(&args, Os::Linux, &env).unwrap_err();
        assert!(err.contains("unknown component `gemma`") && err.contains("text_encoder"), "{err}");
        std::fs::write(&cfg, "[component_keep_alive]\nvocoder = \"soon\"\n").unwrap();
        let err = Config::load(&args, Os::Linux, &env).unwrap_err();
        assert!(err.contains("component_keep_alive.vocoder"), "{err}");
    }

    #[test]
    fn a_config_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "queue_size = 3\n").unwrap();
        let c = cfg.clone();
        let envf = move |k: &str| (k == "LTX_CONFIG").then(|| OsString::from(&c));
        let args = Args::parse_from(["ltxd"]);
        for mode in [0o602, 0o646] {
            std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Config::load(&args, Os::Linux, &Env(&envf)).unwrap_err();
            assert!(err.contains(&format!("chmod go-w {}", cfg.display())), "{err}");
        }
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(Config::load(&args, Os::Linux, &Env(&envf)).unwrap().queue_size, 3);
    }
}
