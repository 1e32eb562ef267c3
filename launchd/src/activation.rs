//! The listening socket handed over by the service manager, if any.
//!
//! - Linux (sd_listen_fds(3)): systemd passes the sockets as fds 3.. with `LISTEN_PID` = our pid and
//!   `LISTEN_FDS` = their count. The variables are left in the environment (changing the environment of a running
//!   multi-threaded process is unsound); a child started by us sees another pid in `LISTEN_PID` and ignores them,
//!   and the fd itself is made close-on-exec so children do not inherit it.
//! - macOS: `launch_activate_socket(name, &fds, &count)` (libSystem, `<launch.h>`) returns the fds of the
//!   plist's `Sockets` entry `name`, in a malloc'ed array the caller frees; `ESRCH` means the process is not
//!   managed by launchd and `ENOENT` that the job has no such socket — both mean "bind the socket yourself".
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

static TAKEN: AtomicBool = AtomicBool::new(false);

/// The first socket passed by the service manager, once per process (later calls return `None`).
pub fn inherited_listener() -> io::Result<Option<OwnedFd>> {
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    #[cfg(target_os = "macos")]
    {
        launchd_listener(crate::LAUNCHD_SOCKET_NAME)
    }
    #[cfg(not(target_os = "macos"))]
    {
        let var = |k: &str| std::env::var(k).ok();
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() } as u32;
        match listen_fds(var("LISTEN_PID").as_deref(), var("LISTEN_FDS").as_deref(), pid)? {
            0 => Ok(None),
            // SAFETY: systemd handed fd 3 to this very process (LISTEN_PID checked) and `TAKEN` makes this the
            // only place that takes ownership of it.
            _ => unsafe { adopt(LISTEN_FDS_START) }.map(Some),
        }
    }
}

pub const LISTEN_FDS_START: i32 = 3;

/// How many sockets systemd passed to process `pid` (0: not socket-activated, or activated for another pid).
pub fn listen_fds(listen_pid: Option<&str>, listen_fds: Option<&str>, pid: u32) -> io::Result<u32> {
    let (Some(p), Some(n)) = (listen_pid, listen_fds) else { return Ok(0) };
    if p.trim().parse::<u32>().ok() != Some(pid) {
        return Ok(0);
    }
    let n: u32 = n.trim().parse().map_err(|_| invalid(format!("LISTEN_FDS={n:?} is not a number")))?;
    if n > 1 {
        return Err(invalid(format!("systemd passed {n} sockets; ltxd.socket must have exactly one ListenStream=")));
    }
    Ok(n)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Takes ownership of `fd` after checking it is a listening stream socket, and makes it close-on-exec.
///
/// # Safety
/// `fd` must be open and owned by nobody else in this process.
pub unsafe fn adopt(fd: i32) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(invalid(format!("inherited fd {fd} {what}"))) };
    let mut st: libc::stat = std::mem::zeroed();
    if libc::fstat(fd, &mut st) != 0 {
        return Err(io::Error::last_os_error());
    }
    check(st.st_mode & libc::S_IFMT == libc::S_IFSOCK, "is not a socket")?;
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    if libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE, (&mut ty as *mut libc::c_int).cast(), &mut len) != 0 {
        return Err(io::Error::last_os_error());
    }
    check(ty == libc::SOCK_STREAM, "is not a stream socket")?;
    let flags = libc::fcntl(fd, libc::F_GETFD);
    if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from_raw_fd(fd))
}

#[cfg(target_os = "macos")]
extern "C" {
    fn launch_activate_socket(
        name: *const libc::c_char,
        fds: *mut *mut libc::c_int,
        cnt: *mut libc::size_t,
    ) -> libc::c_int;
}

#[cfg(target_os = "macos")]
fn launchd_listener(name: &str) -> io::Result<Option<OwnedFd>> {
    let name = std::ffi::CString::new(name).map_err(|e| invalid(e.to_string()))?;
    let mut fds: *mut libc::c_int = std::ptr::null_mut();
    let mut count: libc::size_t = 0;
    // SAFETY: a valid C string and out-pointers; on success launchd hands us `count` fds in a malloc'ed array.
    let err = unsafe { launch_activate_socket(name.as_ptr(), &mut fds, &mut count) };
    match err {
        0 => {}
        libc::ESRCH | libc::ENOENT => return Ok(None),
        e => return Err(io::Error::from_raw_os_error(e)),
    }
    if fds.is_null() {
        return Ok(None);
    }
    // SAFETY: launchd returned `count` fds at `fds`; we own them and the array, and free the array once read.
    let all: Vec<libc::c_int> = unsafe { std::slice::from_raw_parts(fds, count) }.to_vec();
    unsafe { libc::free(fds.cast()) };
    let mut it = all.into_iter();
    let first = it.next();
    for extra in it {
        // SAFETY: an fd launchd gave us that nothing else uses.
        unsafe { libc::close(extra) };
    }
    // SAFETY: as above; the first fd is ours alone.
    first.map(|fd| unsafe { adopt(fd) }).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_protocol() {
        assert_eq!(listen_fds(None, None, 42).unwrap(), 0);
        assert_eq!(listen_fds(Some("41"), Some("1"), 42).unwrap(), 0);
        assert_eq!(listen_fds(Some("42"), Some("1"), 42).unwrap(), 1);
        assert_eq!(listen_fds(Some("42"), Some("0"), 42).unwrap(), 0);
        assert!(listen_fds(Some("42"), Some("x"), 42).is_err());
        assert!(listen_fds(Some("42"), Some("2"), 42).unwrap_err().to_string().contains("exactly one"));
    }

    #[test]
    fn adopt_checks_the_fd() {
        use std::os::fd::{AsRawFd, IntoRawFd};
        let t = tempfile::tempdir().unwrap();
        let l = std::os::unix::net::UnixListener::bind(t.path().join("s")).unwrap();
        let fd = l.into_raw_fd();
        // SAFETY: the fd was just released by the listener.
        let owned = unsafe { adopt(fd) }.unwrap();
        // SAFETY: fcntl on an fd we own.
        assert_ne!(unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_GETFD) } & libc::FD_CLOEXEC, 0);
        let file = std::fs::File::open(t.path()).unwrap();
        let raw = file.into_raw_fd();
        // SAFETY: released by the File above.
        let err = unsafe { adopt(raw) }.unwrap_err();
        assert!(err.to_string().contains("is not a socket"), "{err}");
        // SAFETY: `adopt` failed, so the fd is still ours to close.
        unsafe { libc::close(raw) };
    }
}
