//! Where `ltxctl service install` puts things, and the copy itself: `ltxd`, `ltxctl` and `ltx-tray` plus the MLX
//! runtime (libmlx, its bundled libraries and, on macOS, the metallib) in one folder. `ltxd` carries an
//! `$ORIGIN/mlx/lib` (`@loader_path/mlx/lib`) rpath, so the installed copy needs nothing from the build tree.
use ltx_protocol::paths::{self, Env, Os};
use std::io;
use std::path::{Path, PathBuf};

/// Binaries installed into [`Layout::bin_dir`] (the tray goes into the `.app` bundle on macOS).
pub const BINARIES: [&str; 2] = ["ltxd", "ltxctl"];
pub const TRAY_BINARY: &str = "ltx-tray";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub os: Os,
    pub uid: u32,
    /// Binaries and the MLX runtime: `~/.local/share/ltx/bin`, `~/Library/Application Support/ltx/bin`.
    pub bin_dir: PathBuf,
    /// `~/.config/systemd/user` or `~/Library/LaunchAgents`.
    pub unit_dir: PathBuf,
    /// The tray's login item: `~/.config/autostart/ltx-tray.desktop` or `~/Library/LaunchAgents/com.ltx.tray.plist`.
    pub tray_login_item: PathBuf,
    /// macOS: `~/Applications/LTX.app` (gives notifications and the login item an identity).
    pub app_bundle: PathBuf,
    /// The socket the service manager owns (the daemon's configured socket).
    pub socket: PathBuf,
    pub log_dir: PathBuf,
}

impl Layout {
    pub fn new(os: Os, env: &Env, uid: u32, socket: PathBuf) -> Self {
        let get = |k: &str| (env.0)(k).map(PathBuf::from);
        let home = get("HOME").unwrap_or_else(|| PathBuf::from("/"));
        let config = get("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
        let unit_dir = match os {
            Os::Mac => home.join("Library/LaunchAgents"),
            Os::Linux => config.join("systemd/user"),
        };
        let (bin_dir, tray_login_item) = match os {
            Os::Mac => (
                home.join("Library/Application Support").join(paths::APP).join("bin"),
                unit_dir.join(format!("{}.plist", crate::TRAY_LABEL)),
            ),
            Os::Linux => (
                get("XDG_DATA_HOME").unwrap_or_else(|| home.join(".local/share")).join(paths::APP).join("bin"),
                config.join("autostart/ltx-tray.desktop"),
            ),
        };
        Self {
            os,
            uid,
            bin_dir,
            unit_dir,
            tray_login_item,
            app_bundle: home.join("Applications/LTX.app"),
            socket,
            log_dir: paths::log_dir(os, env),
        }
    }

    /// This user's layout: the real environment and uid.
    pub fn current(socket: PathBuf) -> Self {
        Self::new(Os::current(), &Env::process(), crate::current_uid(), socket)
    }

    pub fn daemon(&self) -> PathBuf {
        self.bin_dir.join("ltxd")
    }

    pub fn tray(&self) -> PathBuf {
        match self.os {
            Os::Mac => self.app_bundle.join("Contents/MacOS").join(TRAY_BINARY),
            Os::Linux => self.bin_dir.join(TRAY_BINARY),
        }
    }

    /// The service definition files: the plist, or the socket and service units.
    pub fn unit_files(&self) -> Vec<PathBuf> {
        match self.os {
            Os::Mac => vec![self.unit_dir.join(format!("{}.plist", crate::SERVICE_LABEL))],
            Os::Linux => vec![self.unit_dir.join("ltxd.socket"), self.unit_dir.join("ltxd.service")],
        }
    }

    /// The daemon's service definition (the plist, or `ltxd.service`): while it exists, `ltxctl daemon start|stop`
    /// go through the service manager.
    pub fn service_unit(&self) -> PathBuf {
        match self.os {
            Os::Mac => self.unit_dir.join(format!("{}.plist", crate::SERVICE_LABEL)),
            Os::Linux => self.unit_dir.join("ltxd.service"),
        }
    }

    /// Whether the per-user service is installed (its definition exists).
    pub fn service_installed(&self) -> bool {
        self.service_unit().is_file()
    }
}

/// Writes `bytes` to `dst` unless it already holds exactly them (then `false`). Goes through a fresh temporary
/// file and a rename, so a running executable is replaced rather than rewritten in place, and a link at `dst`
/// (or one planted at a temporary name) is never written through.
pub fn sync_bytes(bytes: &[u8], dst: &Path, mode: u32) -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::symlink_metadata(dst).ok().filter(|m| m.is_file());
    let same_mode = current.is_some_and(|m| m.permissions().mode() & 0o7777 == mode);
    if same_mode && std::fs::read(dst).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir)?;
    }
    ltx_protocol::fsutil::write_replace(dst, bytes, mode)?;
    Ok(true)
}

/// Copies a file (following symlinks) with [`sync_bytes`]; executables keep 0755, others 0644.
pub fn sync_file(src: &Path, dst: &Path) -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let bytes = std::fs::read(src).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
    let exec = std::fs::metadata(src)?.permissions().mode() & 0o111 != 0;
    sync_bytes(&bytes, dst, if exec { 0o755 } else { 0o644 })
}

/// Copies a directory tree (symlinks followed, so the copy is self-contained); returns the files it changed.
pub fn sync_tree(src: &Path, dst: &Path) -> io::Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(src)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if std::fs::metadata(&from)?.is_dir() {
            changed.extend(sync_tree(&from, &to)?);
        } else if sync_file(&from, &to)? {
            changed.push(to);
        }
    }
    Ok(changed)
}

/// The MLX runtime root (the folder holding `mlx/lib/libmlx.*`) from `ldd ltxd` output (Linux).
pub fn runtime_from_ldd(ldd: &str) -> Option<PathBuf> {
    ldd.lines().find_map(|l| {
        let (name, rest) = l.trim().split_once(" => ")?;
        if !name.starts_with("libmlx.") {
            return None;
        }
        let lib = PathBuf::from(rest.split(" (").next()?.trim());
        Some(lib.parent()?.parent()?.parent()?.to_path_buf())
    })
}

/// The MLX runtime root from `otool -l ltxd` output (macOS): the first absolute `LC_RPATH` holding libmlx.
pub fn runtime_from_otool(otool: &str, exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let mut in_rpath = false;
    for l in otool.lines().map(str::trim) {
        if l.starts_with("cmd ") {
            in_rpath = l == "cmd LC_RPATH";
        } else if let Some(rest) = l.strip_prefix("path ").filter(|_| in_rpath) {
            let dir = PathBuf::from(rest.rsplit_once(" (offset").map_or(rest, |(p, _)| p));
            if dir.is_absolute() && exists(&dir.join("libmlx.dylib")) {
                return Some(dir.parent()?.parent()?.to_path_buf());
            }
        }
    }
    None
}

/// The folders of an MLX runtime root to copy: `mlx/lib` and the wheel's bundled `*.libs` folders.
pub fn runtime_parts(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut parts = vec![PathBuf::from("mlx/lib")];
    for e in std::fs::read_dir(root)? {
        let name = e?.file_name();
        if name.to_string_lossy().ends_with(".libs") {
            parts.push(PathBuf::from(name));
        }
    }
    parts.sort();
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn layouts() {
        let f = |k: &str| match k {
            "HOME" => Some(OsString::from("/home/me")),
            _ => None,
        };
        let l = Layout::new(Os::Linux, &Env(&f), 1000, "/run/user/1000/ltx/ltxd.sock".into());
        assert_eq!(l.bin_dir, Path::new("/home/me/.local/share/ltx/bin"));
        assert_eq!(l.unit_files()[1], Path::new("/home/me/.config/systemd/user/ltxd.service"));
        assert_eq!(l.tray_login_item, Path::new("/home/me/.config/autostart/ltx-tray.desktop"));
        assert_eq!(l.tray(), Path::new("/home/me/.local/share/ltx/bin/ltx-tray"));
        let m = Layout::new(Os::Mac, &Env(&f), 501, "/s.sock".into());
        assert_eq!(m.unit_files(), [Path::new("/home/me/Library/LaunchAgents/com.ltx.ltxd.plist")]);
        assert_eq!(m.tray_login_item, Path::new("/home/me/Library/LaunchAgents/com.ltx.tray.plist"));
        assert_eq!(m.tray(), Path::new("/home/me/Applications/LTX.app/Contents/MacOS/ltx-tray"));
        assert_eq!(m.daemon(), Path::new("/home/me/Library/Application Support/ltx/bin/ltxd"));
        // From protocol/src/paths.rs (service_unit moved here).
        assert_eq!(m.service_unit(), Path::new("/home/me/Library/LaunchAgents/com.ltx.ltxd.plist"));
        assert_eq!(l.service_unit(), Path::new("/home/me/.config/systemd/user/ltxd.service"));
        let g = |k: &str| match k {
            "HOME" => Some(OsString::from("/home/me")),
            "XDG_CONFIG_HOME" => Some(OsString::from("/cfg")),
            _ => None,
        };
        let x = Layout::new(Os::Linux, &Env(&g), 1000, "/s.sock".into());
        assert_eq!(x.service_unit(), Path::new("/cfg/systemd/user/ltxd.service"));
    }

    #[test]
    fn runtime_discovery() {
        let ldd = "\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x1)\n\
                   \tlibmlx.so => /w/.mlx/runtime/mlx/lib/libmlx.so (0x7f)\n";
        assert_eq!(runtime_from_ldd(ldd), Some(PathBuf::from("/w/.mlx/runtime")));
        assert_eq!(runtime_from_ldd("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n\tlibmlx.so => not found\n"), None);
        let otool = "Load command 20\n          cmd LC_RPATH\n      cmdsize 32\n         path @loader_path/mlx/lib (offset 12)\n\
                     Load command 21\n          cmd LC_RPATH\n      cmdsize 48\n         path /Users/me/w/.mlx/runtime/mlx/lib (offset 12)\n\
                     Load command 22\n          cmd LC_LOAD_DYLIB\n         name /usr/lib/libSystem.B.dylib (offset 24)\n";
        let found = runtime_from_otool(otool, |p| p == Path::new("/Users/me/w/.mlx/runtime/mlx/lib/libmlx.dylib"));
        assert_eq!(found, Some(PathBuf::from("/Users/me/w/.mlx/runtime")));
        assert_eq!(runtime_from_otool(otool, |_| false), None);
    }

    #[test]
    fn sync_is_idempotent_and_follows_links() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("rt");
        std::fs::create_dir_all(src.join("mlx/lib")).unwrap();
        std::fs::create_dir_all(src.join("mlx_cpu.libs")).unwrap();
        std::fs::write(src.join("mlx/lib/libmlx.so"), b"elf").unwrap();
        std::fs::write(t.path().join("real.so"), b"blas").unwrap();
        std::os::unix::fs::symlink(t.path().join("real.so"), src.join("mlx_cpu.libs/libblas.so.3")).unwrap();
        assert_eq!(runtime_parts(&src).unwrap(), [PathBuf::from("mlx/lib"), PathBuf::from("mlx_cpu.libs")]);
        let dst = t.path().join("bin");
        assert_eq!(sync_tree(&src, &dst).unwrap().len(), 2);
        let copied = dst.join("mlx_cpu.libs/libblas.so.3");
        assert!(!copied.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&copied).unwrap(), b"blas");
        assert!(sync_tree(&src, &dst).unwrap().is_empty());
        std::fs::write(src.join("mlx/lib/libmlx.so"), b"elf2").unwrap();
        assert_eq!(sync_tree(&src, &dst).unwrap(), [dst.join("mlx/lib/libmlx.so")]);
    }

    #[test]
    fn sync_never_writes_through_a_planted_link() {
        // The temporary name was once fixed (`.<name>.ltx-tmp`): a link planted there was written through.
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let units = t.path().join("units");
        std::fs::create_dir_all(&units).unwrap();
        std::os::unix::fs::symlink(&victim, units.join(".ltxd.service.ltx-tmp")).unwrap();
        let unit = units.join("ltxd.service");
        assert!(sync_bytes(b"[Service]\n", &unit, 0o644).unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "written through the temporary name's link");
        // A link at the destination itself is replaced by the file, its target left alone.
        let plist = units.join("ltx.plist");
        std::os::unix::fs::symlink(&victim, &plist).unwrap();
        assert!(sync_bytes(b"<plist/>", &plist, 0o644).unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "written through the destination's link");
        assert!(std::fs::symlink_metadata(&plist).unwrap().is_file());
        assert!(!sync_bytes(b"<plist/>", &plist, 0o644).unwrap());
    }
}
