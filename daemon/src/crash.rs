//! What the next start can say about a daemon that died. The worker contains a Rust panic in the engine; an
//! abort is beyond it (MLX or another native library calling `abort()`, a panic while panicking) and ends the
//! process, as does a fatal signal. A handler for those signals writes the signal's name into
//! `<state_dir>/last-crash` with one `write(2)` (async-signal-safe) and then lets the default action end the
//! process; the next start reads it into the interrupted job's message. An out-of-memory kill (SIGKILL) leaves
//! nothing, and the message says so.
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

/// The marker file the handler writes into (opened at start, so the handler only calls `write`).
static MARKER: AtomicI32 = AtomicI32::new(-1);

/// The signals caught. SIGSEGV and SIGBUS stay with Rust's stack-overflow handler.
const SIGNALS: [(libc::c_int, &str); 3] =
    [(libc::SIGABRT, "SIGABRT"), (libc::SIGILL, "SIGILL"), (libc::SIGFPE, "SIGFPE")];

fn marker(state_dir: &Path) -> PathBuf {
    state_dir.join("last-crash")
}

/// The reason recorded on the jobs that were running when the previous daemon died; the marker is cleared.
pub fn last_reason(state_dir: &Path) -> String {
    let path = marker(state_dir);
    let signal = std::fs::read(&path).ok().and_then(|b| {
        let name = String::from_utf8_lossy(&b).trim().to_string();
        SIGNALS.iter().any(|(_, n)| *n == name).then_some(name)
    });
    let _ = std::fs::remove_file(&path);
    match signal {
        Some(name) => format!(
            "the daemon was aborted ({name}) while this job was running: an abort in MLX or another native \
             library, which the engine's panic containment cannot catch; the job did not finish"
        ),
        None => {
            "the daemon stopped while this job was running (crash, kill, out-of-memory kill or power loss)".to_string()
        }
    }
}

extern "C" fn on_fatal(sig: libc::c_int) {
    let fd = MARKER.load(Ordering::Relaxed);
    if let Some((_, name)) = SIGNALS.iter().find(|(s, _)| *s == sig) {
        if fd >= 0 {
            // SAFETY: write(2) on a descriptor this process opened, from a static buffer: async-signal-safe.
            unsafe { libc::write(fd, name.as_ptr().cast(), name.len()) };
        }
    }
    // SA_RESETHAND restored the default action: raising again ends the process the way the signal would have
    // (the raise is delivered when this handler returns).
    // SAFETY: raise(3) is async-signal-safe.
    unsafe { libc::raise(sig) };
}

/// Opens a fresh marker and installs the handlers. Called after [`last_reason`] read the previous one.
pub fn install(state_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(marker(state_dir))?;
    MARKER.store(file.into_raw_fd(), Ordering::Relaxed);
    for (sig, _) in SIGNALS {
        // SAFETY: a zeroed sigaction with our handler; the handler only calls async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}
