//! Platform paths and small platform facts as plain functions of (OS, environment), so Linux tests cover
//! the macOS branches and `cargo check --target aarch64-apple-darwin` type-checks this crate.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Mac,
    Linux,
}

impl Os {
    pub fn current() -> Self {
        if cfg!(target_os = "macos") {
            Os::Mac
        } else {
            Os::Linux
        }
    }
}

/// Environment lookup; `Env::process()` reads the real environment, tests pass a map.
pub struct Env<'a>(pub &'a dyn Fn(&str) -> Option<OsString>);

impl Env<'_> {
    pub fn process() -> Env<'static> {
        Env(&|k| std::env::var_os(k).filter(|v| !v.is_empty()))
    }
    fn get(&self, key: &str) -> Option<PathBuf> {
        (self.0)(key).map(PathBuf::from)
    }
    fn home(&self) -> PathBuf {
        self.get("HOME").unwrap_or_else(|| PathBuf::from("/"))
    }
}

pub const APP: &str = "ltx";

/// Socket: `$LTX_SOCKET`, else macOS `~/Library/Application Support/ltx/ltxd.sock`, Linux
/// `$XDG_RUNTIME_DIR/ltx/ltxd.sock` (falling back to the state dir when there is no runtime dir).
pub fn socket_path(os: Os, env: &Env) -> PathBuf {
    if let Some(p) = env.get("LTX_SOCKET") {
        return p;
    }
    match os {
        Os::Mac => env.home().join("Library/Application Support").join(APP).join("ltxd.sock"),
        Os::Linux => match env.get("XDG_RUNTIME_DIR") {
            Some(run) => run.join(APP).join("ltxd.sock"),
            None => state_dir(os, env).join("ltxd.sock"),
        },
    }
}

/// Config file: `$LTX_CONFIG`, else `~/Library/Application Support/ltx/config.toml` or
/// `$XDG_CONFIG_HOME/ltx/config.toml` (`~/.config/ltx/config.toml`).
pub fn config_path(os: Os, env: &Env) -> PathBuf {
    if let Some(p) = env.get("LTX_CONFIG") {
        return p;
    }
    match os {
        Os::Mac => env.home().join("Library/Application Support").join(APP).join("config.toml"),
        Os::Linux => {
            env.get("XDG_CONFIG_HOME").unwrap_or_else(|| env.home().join(".config")).join(APP).join("config.toml")
        }
    }
}

/// Where the job database lives.
pub fn state_dir(os: Os, env: &Env) -> PathBuf {
    match os {
        Os::Mac => env.home().join("Library/Application Support").join(APP),
        Os::Linux => env.get("XDG_STATE_HOME").unwrap_or_else(|| env.home().join(".local/state")).join(APP),
    }
}

/// Model weights (large, re-downloadable, worth finding): `~/Library/Caches` on macOS (kept out of Time
/// Machine backups); on Linux `$XDG_DATA_HOME/ltx/models` when the user set one, else the visible `~/ltx/models`
/// (not hidden in a dot-directory, where tens of gigabytes would go unnoticed).
pub fn models_dir(os: Os, env: &Env) -> PathBuf {
    match os {
        Os::Mac => env.home().join("Library/Caches").join(APP).join("models"),
        Os::Linux => match env.get("XDG_DATA_HOME") {
            Some(data) => data.join(APP).join("models"),
            None => env.home().join(APP).join("models"),
        },
    }
}

pub fn log_dir(os: Os, env: &Env) -> PathBuf {
    match os {
        Os::Mac => env.home().join("Library/Logs").join(APP),
        Os::Linux => state_dir(os, env).join("logs"),
    }
}

/// Outputs: `~/Movies/ltx` on macOS; `$XDG_VIDEOS_DIR/ltx` (env, then `user-dirs.dirs`) or `~/Videos/ltx`.
pub fn outputs_dir(os: Os, env: &Env) -> PathBuf {
    match os {
        Os::Mac => env.home().join("Movies").join(APP),
        Os::Linux => {
            let from_file = || {
                let cfg = env.get("XDG_CONFIG_HOME").unwrap_or_else(|| env.home().join(".config"));
                let text = std::fs::read_to_string(cfg.join("user-dirs.dirs")).ok()?;
                parse_user_dirs(&text, "XDG_VIDEOS_DIR", &env.home())
            };
            env.get("XDG_VIDEOS_DIR").or_else(from_file).unwrap_or_else(|| env.home().join("Videos")).join(APP)
        }
    }
}

/// Reads one entry of xdg-user-dirs' `user-dirs.dirs` (`XDG_VIDEOS_DIR="$HOME/Videos"`).
pub fn parse_user_dirs(text: &str, key: &str, home: &Path) -> Option<PathBuf> {
    let line = text.lines().find(|l| l.trim_start().starts_with(&format!("{key}=")))?;
    let value = line.split_once('=')?.1.trim().trim_matches('"');
    let path = match value.strip_prefix("$HOME") {
        Some(rest) => home.join(rest.trim_start_matches('/')),
        None => PathBuf::from(value),
    };
    path.is_absolute().then_some(path)
}

/// Longest socket path the OS accepts (`sun_path` minus the NUL): 103 on macOS, 107 on Linux.
pub fn max_socket_path(os: Os) -> usize {
    match os {
        Os::Mac => 103,
        Os::Linux => 107,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| pairs.iter().find(|(a, _)| *a == k).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn mac_and_linux_paths() {
        let e = env(&[("HOME", "/Users/me"), ("XDG_RUNTIME_DIR", "/run/user/501")]);
        let e = Env(&e);
        assert_eq!(socket_path(Os::Mac, &e), Path::new("/Users/me/Library/Application Support/ltx/ltxd.sock"));
        assert_eq!(socket_path(Os::Linux, &e), Path::new("/run/user/501/ltx/ltxd.sock"));
        assert_eq!(outputs_dir(Os::Mac, &e), Path::new("/Users/me/Movies/ltx"));
        assert_eq!(log_dir(Os::Mac, &e), Path::new("/Users/me/Library/Logs/ltx"));
        assert_eq!(models_dir(Os::Mac, &e), Path::new("/Users/me/Library/Caches/ltx/models"));
        assert_eq!(models_dir(Os::Linux, &e), Path::new("/Users/me/ltx/models"), "visible, not in a dot-directory");
        let data = env(&[("HOME", "/home/me"), ("XDG_DATA_HOME", "/data")]);
        assert_eq!(models_dir(Os::Linux, &Env(&data)), Path::new("/data/ltx/models"));
        let e2 = env(&[("HOME", "/home/me"), ("LTX_SOCKET", "/tmp/s.sock"), ("XDG_VIDEOS_DIR", "/v")]);
        let e2 = Env(&e2);
        assert_eq!(socket_path(Os::Linux, &e2), Path::new("/tmp/s.sock"));
        assert_eq!(outputs_dir(Os::Linux, &e2), Path::new("/v/ltx"));
        let e3 = env(&[("HOME", "/home/me")]);
        let e3 = Env(&e3);
        assert_eq!(socket_path(Os::Linux, &e3), Path::new("/home/me/.local/state/ltx/ltxd.sock"));
        assert_eq!(config_path(Os::Linux, &e3), Path::new("/home/me/.config/ltx/config.toml"));
        assert!(socket_path(Os::Mac, &e).as_os_str().len() <= max_socket_path(Os::Mac));
    }

    #[test]
    fn user_dirs() {
        let text = "# c\nXDG_DESKTOP_DIR=\"$HOME/Desktop\"\nXDG_VIDEOS_DIR=\"$HOME/Vids\"\n";
        assert_eq!(parse_user_dirs(text, "XDG_VIDEOS_DIR", Path::new("/h")), Some("/h/Vids".into()));
        assert_eq!(parse_user_dirs(text, "XDG_MUSIC_DIR", Path::new("/h")), None);
    }
}
