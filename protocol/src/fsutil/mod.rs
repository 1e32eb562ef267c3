//! Every file the product writes goes through here: relative to an opened directory (`openat`, `linkat`,
//! `renameat`), never through a link an other user planted, never over a file it did not mean to replace.
//!
//! - A temporary file ([`Dir::temp`]) has an unpredictable name (`<prefix><16 hex>.part`), is created with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600, and is removed again if it is dropped before it is placed.
//! - It is placed with [`Temp::place_new`] (a hard link, or `renameat2(RENAME_NOREPLACE)` /
//!   `renameatx_np(RENAME_EXCL)` where the file system has no hard links: never replaces anything, a link at
//!   the final name included) or [`Temp::replace`] (`renameat`: replaces the name itself, so a link there is
//!   replaced, never followed). Both fsync the file and then the directory; the final mode is set just before.
//! - [`rewrite`] saves a file the way an editor does (through a link at its name, keeping mode and owner);
//!   [`read_trusted`] reads a config or token file only when nobody but its owner can change it.
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

mod trust;
pub use trust::{read_trusted, rewrite, TrustError};

#[cfg(test)]
mod tests;

/// The suffix of every temporary file [`Dir::temp`] creates.
pub const TEMP_SUFFIX: &str = ".part";
/// The random part of a temporary name: this many lower-case hex digits.
pub const RANDOM_LEN: usize = 16;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// One path component as a C string: a name with a `/` (or empty, `.`, `..`) is refused.
fn component(name: &OsStr) -> io::Result<CString> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("not a file name: {name:?}")));
    }
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("NUL in {name:?}")))
}

/// An unpredictable name `<prefix><16 hex><suffix>` (keys from the OS's randomness, through SipHash).
pub fn random_name(prefix: &str, suffix: &str) -> OsString {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    format!("{prefix}{:0width$x}{suffix}", h.finish(), width = RANDOM_LEN).into()
}

/// Whether `name` is `<prefix><16 hex>.part`, a name [`Dir::temp`] gives.
pub fn is_temp_name(name: &OsStr, prefix: &str) -> bool {
    let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else { return false };
    rest.strip_suffix(TEMP_SUFFIX)
        .is_some_and(|r| r.len() == RANDOM_LEN && r.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// What `fstatat(…, AT_SYMLINK_NOFOLLOW)` says about a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
}

// The file-type bits of `st_mode` (the same on every Unix; libc types them differently per platform).
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

impl Stat {
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// The same file as `m` (an open file's metadata).
    pub fn is(&self, m: &std::fs::Metadata) -> bool {
        self.dev == m.dev() && self.ino == m.ino()
    }

    // The field types differ between Linux and macOS; the casts are no-ops on one of them.
    #[allow(clippy::unnecessary_cast)]
    fn from_raw(st: &libc::stat) -> Self {
        Self {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            mode: st.st_mode as u32,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            nlink: st.st_nlink as u64,
        }
    }
}

/// Whether the file system cannot make hard links here (FAT, some network and FUSE file systems).
fn no_hard_links(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOTSUP | libc::ENOSYS | libc::EMLINK))
        || e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// Whether the system or file system lacks an atomic no-replace rename.
fn no_noreplace_rename(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP))
        || e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// How [`Dir::place_new`] put a file at its new name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Hard-linked: the old name still names the file too.
    Linked,
    /// Moved: the old name is gone.
    Moved,
}

/// An opened directory; every operation is relative to it, so a directory renamed or replaced meanwhile is
/// never written through.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens `path` (which must be a directory; links on the way to it are followed).
    pub fn open(path: &Path) -> io::Result<Self> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))?;
        // SAFETY: a valid C string; the returned descriptor is owned below.
        let fd = cvt(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) })?;
        // SAFETY: `fd` was just opened and nothing else owns it.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(fd) }, path: path.to_path_buf() })
    }

    /// Creates `path` (and its parents) if needed, then opens it.
    pub fn create(path: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(path)?;
        Self::open(path)
    }

    /// The directory holding `path`, opened, and `path`'s file name.
    pub fn of(path: &Path) -> io::Result<(Self, OsString)> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} names no file", path.display())))?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Ok((Self::open(parent)?, name.to_os_string()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    fn openat(&self, name: &OsStr, flags: libc::c_int, mode: u32) -> io::Result<File> {
        let c = component(name)?;
        let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid descriptor and C string; the mode argument is read only with O_CREAT.
        let fd = cvt(unsafe { libc::openat(self.fd.as_raw_fd(), c.as_ptr(), flags, mode as libc::c_uint) })?;
        // SAFETY: `fd` was just opened and nothing else owns it.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Creates `name`, which must not exist (a link there counts as existing), for writing with `mode`.
    pub fn create_new(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        self.openat(name, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode)
    }

    /// Opens `name` for reading: a regular file (never a link) that this user owns.
    pub fn open_own(&self, name: &OsStr) -> io::Result<File> {
        Self::own(self.openat(name, libc::O_RDONLY, 0), &self.join(name))
    }

    /// Opens `name` for reading and writing, creating it (0600) if missing: a partial download resumed. A link
    /// or a file of another user at that name is refused.
    pub fn open_resumable(&self, name: &OsStr) -> io::Result<File> {
        Self::own(self.openat(name, libc::O_RDWR | libc::O_CREAT, 0o600), &self.join(name))
    }

    fn own(opened: io::Result<File>, path: &Path) -> io::Result<File> {
        let refuse = |what: &str| {
            let me = euid();
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is {what}not a regular file of this user (uid {me}); remove it", path.display()),
            )
        };
        // O_NOFOLLOW refuses a link with ELOOP.
        let f = match opened {
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse("a link, ")),
            other => other?,
        };
        let m = f.metadata()?;
        if !m.is_file() || m.uid() != euid() {
            return Err(refuse(""));
        }
        Ok(f)
    }

    /// `name`'s metadata, not following a link; `None` if nothing has that name.
    pub fn stat(&self, name: &OsStr) -> io::Result<Option<Stat>> {
        let c = component(name)?;
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: valid descriptor, C string and out-pointer.
        let r = unsafe { libc::fstatat(self.fd.as_raw_fd(), c.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
        match cvt(r) {
            // SAFETY: fstatat succeeded, so it filled `st`.
            Ok(_) => Ok(Some(Stat::from_raw(unsafe { &st.assume_init() }))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The names in the directory.
    pub fn entries(&self) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(&self.path)?.map(|e| e.map(|e| e.file_name())).collect()
    }

    /// A hard link `to` → the file `from` names (`from` itself if it is a link); fails if `to` exists.
    pub fn link(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (f, t) = (component(from)?, component(to)?);
        let fd = self.fd.as_raw_fd();
        // SAFETY: valid descriptor and C strings; flags 0: a link at `from` is not followed.
        cvt(unsafe { libc::linkat(fd, f.as_ptr(), fd, t.as_ptr(), 0) }).map(drop)
    }

    /// Renames `from` to `to` unless `to` exists (atomically where the system can; else link, then unlink).
    pub fn rename_noreplace(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (f, t) = (component(from)?, component(to)?);
        match sys::rename_noreplace(self.fd.as_raw_fd(), &f, &t) {
            Err(e) if no_noreplace_rename(&e) => {
                self.link(from, to)?;
                self.remove(from)
            }
            other => other,
        }
    }

    /// Puts the file `from` names at `to` without ever replacing anything there: a hard link where the file
    /// system has them (`from` stays), else a no-replace rename. `AlreadyExists` when `to` is taken.
    pub fn place_new(&self, from: &OsStr, to: &OsStr) -> io::Result<Placed> {
        match self.link(from, to) {
            Ok(()) => Ok(Placed::Linked),
            Err(e) if no_hard_links(&e) => self.rename_noreplace(from, to).map(|()| Placed::Moved),
            Err(e) => Err(e),
        }
    }

    /// Renames `from` over `to`: whatever `to` named (a link too) is replaced, nothing is followed.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (f, t) = (component(from)?, component(to)?);
        let fd = self.fd.as_raw_fd();
        // SAFETY: valid descriptor and C strings.
        cvt(unsafe { libc::renameat(fd, f.as_ptr(), fd, t.as_ptr()) }).map(drop)
    }

    /// Removes the name `name` (a link itself, never its target).
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        let c = component(name)?;
        // SAFETY: valid descriptor and C string.
        cvt(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) }).map(drop)
    }

    /// Flushes the directory's entries (a new or renamed name survives a power loss).
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: valid descriptor.
        cvt(unsafe { libc::fsync(self.fd.as_raw_fd()) }).map(drop)
    }

    /// A new temporary file `<prefix><16 hex>.part`, 0600, removed when dropped unless placed.
    pub fn temp(&self, prefix: &str) -> io::Result<Temp<'_>> {
        self.temp_with_suffix(prefix, TEMP_SUFFIX)
    }

    /// [`Dir::temp`] with another suffix (for writers that insist on an extension).
    pub fn temp_with_suffix(&self, prefix: &str, suffix: &str) -> io::Result<Temp<'_>> {
        let mut last = None;
        for _ in 0..16 {
            let name = random_name(prefix, suffix);
            match self.create_new(&name, 0o600) {
                Ok(file) => return Ok(Temp { dir: self, name, file, live: true }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
    }

    /// Removes `<prefix><16 hex>.part` files of this user left by a crash; returns their names.
    pub fn remove_orphans(&self, prefix: &str) -> Vec<OsString> {
        let mut removed = Vec::new();
        for name in self.entries().unwrap_or_default() {
            if !is_temp_name(&name, prefix) {
                continue;
            }
            let ours = self.stat(&name).ok().flatten().is_some_and(|s| s.is_file() && s.uid == euid());
            if ours && self.remove(&name).is_ok() {
                removed.push(name);
            }
        }
        removed
    }
}

/// A temporary file being written; removed on drop unless [`Temp::place_new`] or [`Temp::replace`] placed it.
#[derive(Debug)]
pub struct Temp<'d> {
    dir: &'d Dir,
    name: OsString,
    file: File,
    live: bool,
}

impl Temp<'_> {
    pub fn name(&self) -> &OsStr {
        &self.name
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    /// Checks that the temporary name still names this file (after a writer that opens it by path).
    pub fn check_unchanged(&self) -> io::Result<()> {
        let m = self.file.metadata()?;
        match self.dir.stat(&self.name)? {
            Some(s) if s.is(&m) && s.is_file() => Ok(()),
            _ => Err(io::Error::other(format!("{} was replaced while it was written", self.path().display()))),
        }
    }

    fn finish(&mut self, mode: u32) -> io::Result<()> {
        self.file.sync_all()?;
        self.file.set_permissions(std::fs::Permissions::from_mode(mode))
    }

    /// Syncs the file, gives it `mode` and puts it at `to`, which must not exist (a link there counts);
    /// `AlreadyExists` if it does (the temporary file is then removed).
    pub fn place_new(mut self, to: &OsStr, mode: u32) -> io::Result<()> {
        self.finish(mode)?;
        if self.dir.place_new(&self.name, to)? == Placed::Moved {
            self.live = false;
        }
        self.dir.sync()
    }

    /// Syncs the file, gives it `mode` and renames it over `to` (a link at `to` is replaced, not followed).
    pub fn replace(mut self, to: &OsStr, mode: u32) -> io::Result<()> {
        self.finish(mode)?;
        self.dir.rename(&self.name, to)?;
        self.live = false;
        self.dir.sync()
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if self.live {
            let _ = self.dir.remove(&self.name);
        }
    }
}

/// Creates `path`, which must not exist (a link there counts as existing), for writing with `mode`.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let (dir, name) = Dir::of(path)?;
    dir.create_new(&name, mode)
}

/// Writes `bytes` to a new file `path` (see [`create_new`]) and fsyncs it; on a failed write the file is
/// removed again.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (dir, name) = Dir::of(path)?;
    let mut f = dir.create_new(&name, mode)?;
    let res = f.write_all(bytes).and_then(|()| f.sync_all());
    if res.is_err() {
        let _ = dir.remove(&name);
    }
    res
}

/// Atomically replaces `path` with `bytes` (temporary file, fsync, rename; a link at `path` is replaced, not
/// followed), mode `mode`. The directory must exist.
pub fn write_replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (dir, name) = Dir::of(path)?;
    let mut tmp = dir.temp(&format!(".{}.", name.to_string_lossy()))?;
    tmp.write_all(bytes)?;
    tmp.replace(&name, mode)
}

mod sys {
    use std::ffi::CStr;
    use std::io;

    #[cfg(target_os = "linux")]
    pub fn rename_noreplace(dir: libc::c_int, from: &CStr, to: &CStr) -> io::Result<()> {
        // The raw system call: glibc's wrapper is 2.28+ only.
        // SAFETY: valid descriptor and C strings.
        let r =
            unsafe { libc::syscall(libc::SYS_renameat2, dir, from.as_ptr(), dir, to.as_ptr(), libc::RENAME_NOREPLACE) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    #[cfg(target_os = "macos")]
    pub fn rename_noreplace(dir: libc::c_int, from: &CStr, to: &CStr) -> io::Result<()> {
        // SAFETY: valid descriptor and C strings.
        let r = unsafe { libc::renameatx_np(dir, from.as_ptr(), dir, to.as_ptr(), libc::RENAME_EXCL) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    pub fn rename_noreplace(_: libc::c_int, _: &CStr, _: &CStr) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}
