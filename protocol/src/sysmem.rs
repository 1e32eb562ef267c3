//! The one system-memory probe: the machine's total memory and what is available now, for the engine's
//! preflight and decode tiling, the daemon's memory profile and pressure check, and `ltxctl doctor`.
//!
//! - Linux: `/proc/meminfo`'s `MemTotal` and `MemAvailable` (free memory plus the page cache and
//!   reclaimable slabs the kernel can give back without swapping).
//! - macOS: total is `sysctl hw.memsize`; available is total minus what Activity Monitor calls "Memory
//!   Used" (app memory + wired + compressed), from `host_statistics64(HOST_VM_INFO64)`:
//!
//!   `available = hw.memsize − (internal − purgeable + wire + compressor) × page size`
//!
//!   i.e. free pages, file-backed (cache) pages and purgeable memory: the counterpart of `MemAvailable`.
//! - Anything else, or when the probe fails: [`FALLBACK`] (8 GiB total, 8 GiB available), marked
//!   [`Source::Fallback`] so that a caller can say the size is unknown.
//!
//! No tokio, no C code of its own: this module is type-checked for macOS with the rest of the protocol.

/// Where a [`SystemMemory`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Linux `/proc/meminfo`.
    Meminfo,
    /// macOS `sysctl hw.memsize` + `host_statistics64`.
    Mach,
    /// Nothing could be read: [`FALLBACK`].
    Fallback,
}

/// Total and currently available memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemMemory {
    pub total: u64,
    pub available: u64,
    pub source: Source,
}

impl SystemMemory {
    /// Whether the numbers were read from the system (not [`FALLBACK`]).
    pub fn measured(&self) -> bool {
        self.source != Source::Fallback
    }
}

/// What every caller gets where the memory cannot be read: 8 GiB total, 8 GiB available.
pub const FALLBACK: SystemMemory = SystemMemory { total: 8 << 30, available: 8 << 30, source: Source::Fallback };

/// The machine's memory now (see the module docs for each platform's formula).
pub fn system() -> SystemMemory {
    probe().unwrap_or(FALLBACK)
}

/// `MemTotal` and `MemAvailable` of a `/proc/meminfo` text (kB, i.e. KiB, as the kernel writes them).
pub fn parse_meminfo(text: &str) -> Option<SystemMemory> {
    let field = |key: &str| {
        let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    };
    let (total, available) = (field("MemTotal")?, field("MemAvailable")?);
    (total > 0).then_some(SystemMemory { total, available: available.min(total), source: Source::Meminfo })
}

#[cfg(target_os = "linux")]
fn probe() -> Option<SystemMemory> {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

#[cfg(target_os = "macos")]
fn probe() -> Option<SystemMemory> {
    let total = mach::total()?;
    let used = mach::used()?;
    Some(SystemMemory { total, available: total.saturating_sub(used), source: Source::Mach })
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn probe() -> Option<SystemMemory> {
    None
}

#[cfg(target_os = "macos")]
mod mach {
    use std::sync::OnceLock;

    /// `sysctl hw.memsize`.
    pub fn total() -> Option<u64> {
        let mut size: u64 = 0;
        let mut len = std::mem::size_of::<u64>();
        // SAFETY: the name is NUL-terminated; `size` and `len` describe a writable u64.
        let rc = unsafe {
            libc::sysctlbyname(
                c"hw.memsize".as_ptr(),
                (&mut size as *mut u64).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        (rc == 0 && len == std::mem::size_of::<u64>() && size > 0).then_some(size)
    }

    /// The host port, asked for once (every `mach_host_self` call adds a reference to the send right).
    #[allow(deprecated)] // libc points to the mach2 crate; these two symbols are all this needs
    fn host() -> libc::mach_port_t {
        static HOST: OnceLock<libc::mach_port_t> = OnceLock::new();
        // SAFETY: no arguments; returns a send right to the host port.
        *HOST.get_or_init(|| unsafe { libc::mach_host_self() })
    }

    /// Activity Monitor's "Memory Used": (internal − purgeable + wire + compressor) pages, in bytes.
    pub fn used() -> Option<u64> {
        // SAFETY: vm_statistics64 is plain integers; all-zero is a valid value.
        let mut stats: libc::vm_statistics64 = unsafe { std::mem::zeroed() };
        let mut count = libc::HOST_VM_INFO64_COUNT;
        // SAFETY: `stats` is a writable vm_statistics64 and `count` its size in integer_t, as the call
        // requires; the kernel writes at most `count` integers.
        let rc = unsafe {
            libc::host_statistics64(
                host(),
                libc::HOST_VM_INFO64,
                (&mut stats as *mut libc::vm_statistics64).cast(),
                &mut count,
            )
        };
        if rc != libc::KERN_SUCCESS {
            return None;
        }
        // SAFETY: sysconf reads a system constant.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = u64::try_from(page).ok().filter(|p| *p > 0)?;
        let (internal, purgeable) = (stats.internal_page_count as u64, stats.purgeable_count as u64);
        let pages = internal.saturating_sub(purgeable) + stats.wire_count as u64 + stats.compressor_page_count as u64;
        Some(pages * page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo() {
        let text = "MemTotal:       32765432 kB\nMemFree:         1234567 kB\nMemAvailable:   20000000 kB\n\
                    Buffers:          123456 kB\nSwapTotal:             0 kB\n";
        let m = parse_meminfo(text).expect("parsed");
        assert_eq!(m, SystemMemory { total: 32_765_432 * 1024, available: 20_000_000 * 1024, source: Source::Meminfo });
        // Kernels before 3.14 have no MemAvailable: not guessed from MemFree.
        assert_eq!(parse_meminfo("MemTotal: 1000 kB\nMemFree: 500 kB\n"), None);
        assert_eq!(parse_meminfo(""), None);
        assert_eq!(parse_meminfo("MemTotal: lots kB\nMemAvailable: 1 kB\n"), None);
        // `MemAvailableX` is not `MemAvailable`.
        assert_eq!(parse_meminfo("MemTotal: 10 kB\nMemAvailableX: 5 kB\n"), None);
    }

    #[test]
    fn fallback_is_stated() {
        assert!(!FALLBACK.measured());
        assert_eq!((FALLBACK.total, FALLBACK.available), (8 << 30, 8 << 30));
    }

    #[test]
    fn reads_this_machine() {
        let m = system();
        if cfg!(any(target_os = "linux", target_os = "macos")) {
            assert!(m.measured(), "{m:?}");
            assert!(m.total > m.available && m.available > 0, "{m:?}");
            // Some plausibility: more than 256 MiB, less than 64 TiB.
            assert!(m.total > 256 << 20 && m.total < 64 << 40, "{m:?}");
        } else {
            assert_eq!(m, FALLBACK);
        }
    }
}
