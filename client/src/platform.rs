//! Platform plumbing as plain functions (type-checked for macOS here): which socket, which `ltxd`, how to open a
//! file.
use ltx_protocol::paths::{self, Env, Os};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Socket: flag, `$LTX_SOCKET`, `socket` in the config file, platform default.
pub fn socket_path(flag: Option<PathBuf>) -> PathBuf {
    let env = Env::process();
    let os = Os::current();
    flag.or_else(|| std::env::var_os("LTX_SOCKET").map(PathBuf::from))
        .or_else(|| {
            // A config other users can write could point ltxctl at their socket: it is not read (ltxd refuses it).
            let text = match ltx_protocol::fsutil::read_trusted(&paths::config_path(os, &env)) {
                Ok(text) => text?,
                Err(e) => {
                    eprintln!("ltxctl: ignoring the config file: {e}");
                    return None;
                }
            };
            let table: toml::Table = toml::from_str(&text).ok()?;
            table.get("socket")?.as_str().map(PathBuf::from)
        })
        .unwrap_or_else(|| paths::socket_path(os, &env))
}

/// The `ltxd` to run: `$LTXD_BIN`, else next to this executable, else the installed one (`ltxctl service
/// install`'s, for a tray in its app bundle), else `ltxd` on `PATH`.
pub fn daemon_binary(env: &Env, current_exe: Option<&Path>, installed: &Path) -> PathBuf {
    if let Some(p) = (env.0)("LTXD_BIN") {
        return p.into();
    }
    current_exe
        .and_then(Path::parent)
        .map(|d| d.join("ltxd"))
        .filter(|p| p.is_file())
        .or_else(|| installed.is_file().then(|| installed.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("ltxd"))
}

/// The command that opens a file with the user's default application.
pub fn open_command(os: Os, file: &Path) -> Vec<OsString> {
    let prog = if os == Os::Mac { "open" } else { "xdg-open" };
    vec![prog.into(), file.as_os_str().to_owned()]
}

/// Opens `file` with the user's default application; why not, when the opener is missing or fails.
pub fn open(file: &Path) -> Result<(), String> {
    let cmd = open_command(Os::current(), file);
    let status = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", cmd[0].to_string_lossy()))?;
    if !status.success() {
        return Err(format!("{} failed ({status})", cmd[0].to_string_lossy()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_binary_and_open_command() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path().to_path_buf();
        let f = move |k: &str| (k == "HOME").then(|| OsString::from(&h));
        let env = Env(&f);
        assert_eq!(open_command(Os::Mac, Path::new("/a.mp4")), ["open", "/a.mp4"]);
        assert_eq!(open_command(Os::Linux, Path::new("/a.mp4")), ["xdg-open", "/a.mp4"]);
        let installed = home.path().join("bin/ltxd");
        assert_eq!(daemon_binary(&env, None, &installed), PathBuf::from("ltxd"));
        std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
        std::fs::write(&installed, "").unwrap();
        assert_eq!(daemon_binary(&env, None, &installed), installed);
        let beside = home.path().join("build");
        std::fs::create_dir_all(&beside).unwrap();
        std::fs::write(beside.join("ltxd"), "").unwrap();
        assert_eq!(daemon_binary(&env, Some(&beside.join("ltxctl")), &installed), beside.join("ltxd"));
        let g = |k: &str| (k == "LTXD_BIN").then(|| OsString::from("/x/ltxd"));
        assert_eq!(daemon_binary(&Env(&g), Some(&beside.join("ltxctl")), &installed), PathBuf::from("/x/ltxd"));
    }
}
