//! Files that configure or authenticate the product (config.toml, the Hugging Face token): read only when
//! nobody but their owner can change them, rewritten the way an editor saves them.
use super::{euid, Dir};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a config or token file is not read.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{} is writable by other users (mode {mode:04o}), so anyone could change what it says; run `chmod go-w {}` and try again",
        path.display(),
        path.display()
    )]
    OthersCanWrite { path: PathBuf, mode: u32 },
    #[error(
        "{} belongs to uid {owner}, not to you (uid {me}) or root, so its owner could change what it says; run `chown {me} {}` and try again",
        path.display(),
        path.display()
    )]
    ForeignOwner { path: PathBuf, owner: u32, me: u32 },
}

/// Reads the text file at `path` (links followed) if nobody but its owner — this user or root — can write
/// it; `Ok(None)` if there is no such file.
pub fn read_trusted(path: &Path) -> Result<Option<String>, TrustError> {
    let io_err = |source| TrustError::Io { path: path.to_path_buf(), source };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    // The descriptor's metadata: the file read below is the file checked.
    let m = f.metadata().map_err(io_err)?;
    // World-writable never; group-writable only for this user's own primary group (the per-user group a
    // umask of 002 gives on Debian and Ubuntu, which holds nobody else by convention).
    // SAFETY: getegid has no preconditions.
    let own_group = m.gid() == unsafe { libc::getegid() };
    if m.mode() & 0o002 != 0 || (m.mode() & 0o020 != 0 && !own_group) {
        return Err(TrustError::OthersCanWrite { path: path.to_path_buf(), mode: m.mode() & 0o7777 });
    }
    if m.uid() != euid() && m.uid() != 0 {
        return Err(TrustError::ForeignOwner { path: path.to_path_buf(), owner: m.uid(), me: euid() });
    }
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(io_err)?;
    Ok(Some(text))
}

/// Where `path` leads: each link at the end followed (relative targets from the link's directory); the path
/// itself when it is not a link or does not exist.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{}: too many levels of links", path.display())))
}

/// Saves `bytes` as the file at `path` the way an editor does, atomically: a link at `path` is followed and
/// its target rewritten (the link stays), an existing file keeps its mode and owner, a new one is 0600. The
/// directory must exist.
pub fn rewrite(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let real = resolve(path)?;
    let (dir, name) = Dir::of(&real)?;
    let old = dir.stat(&name)?;
    let mut tmp = dir.temp(&format!(".{}.", name.to_string_lossy()))?;
    tmp.file().write_all(bytes)?;
    let mode = match old {
        Some(st) => {
            let m = tmp.file().metadata()?;
            if (m.uid(), m.gid()) != (st.uid, st.gid) {
                std::os::unix::fs::fchown(&*tmp.file(), Some(st.uid), Some(st.gid)).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot keep {}'s owner (uid {}, gid {}): {e}", real.display(), st.uid, st.gid),
                    )
                })?;
            }
            st.mode & 0o7777
        }
        None => 0o600,
    };
    tmp.replace(&name, mode)
}
