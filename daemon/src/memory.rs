//! The daemon's memory settings: the named profile (`memory_profile`, `auto` by default: picked from the
//! machine's memory), a fixed peak budget (`memory_budget`, overriding what the machine has) and the
//! low-memory switch (`low_memory`), as the engine's preflight uses them; and when an idle daemon gives its
//! loaded models back because the system runs short of memory (`memory_pressure`).
use ltx_engine::pipeline::decision::decide;
use ltx_engine::{Backend, MemoryProfile, MemorySettings};
use ltx_protocol::{sysmem, MemoryDecision};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryConfig {
    pub profile: MemoryProfile,
    /// Chosen from the machine's memory (`memory_profile = "auto"` or absent).
    pub auto: bool,
    pub budget: Option<u64>,
    pub low_memory: bool,
    pub pressure: Pressure,
}

/// When the system counts as short of memory, for unloading idle models (`memory_pressure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// Never unload for memory pressure.
    Off,
    /// macOS: the kernel's memory-pressure level is warning or critical. Linux: `MemAvailable` is under a
    /// tenth of the machine's memory.
    Auto,
    /// Available memory under this many bytes (Linux; on macOS the kernel's level decides, as for `Auto`).
    Below(u64),
}

impl Pressure {
    /// `auto` (default), `off`, or a size (`"8GB"`).
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.map(str::trim) {
            None | Some("auto") => Ok(Self::Auto),
            Some("off") => Ok(Self::Off),
            Some(size) => {
                parse_bytes(size).map(Self::Below).map_err(|e| format!("memory_pressure: {e} (or auto, off)"))
            }
        }
    }

    /// Whether the system is short of memory now.
    pub fn now(self) -> bool {
        match self {
            Self::Off => false,
            Self::Auto | Self::Below(_) if cfg!(target_os = "macos") => kernel_pressure(),
            Self::Auto => {
                let m = sysmem::system();
                m.available < m.total / 10
            }
            Self::Below(min) => sysmem::system().available < min,
        }
    }
}

/// macOS's memory-pressure level (`kern.memorystatus_vm_pressure_level`: 1 normal, 2 warning, 4 critical).
#[cfg(target_os = "macos")]
fn kernel_pressure() -> bool {
    let mut level: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>();
    // SAFETY: the name is NUL-terminated; `level` and `len` describe a writable c_int.
    let rc = unsafe {
        libc::sysctlbyname(
            c"kern.memorystatus_vm_pressure_level".as_ptr(),
            (&mut level as *mut libc::c_int).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    rc == 0 && level >= 2
}

#[cfg(not(target_os = "macos"))]
fn kernel_pressure() -> bool {
    false
}

/// "24GB", "512MB", "1.5GiB", "300000000" (bytes).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?}: use e.g. 24GB, 512MB or bytes"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1048576.0,
        "gib" => 1073741824.0,
        other => return Err(format!("invalid size {s:?}: unknown unit {other:?} (B, KB, MB, GB, TB, KiB, MiB, GiB)")),
    };
    let bytes = n * mult;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("invalid size {s:?}: must be positive"));
    }
    Ok(bytes as u64)
}

impl MemoryConfig {
    /// From the config file's keys (each optional).
    pub fn load(
        profile: Option<&str>,
        budget: Option<&str>,
        low_memory: Option<bool>,
        pressure: Option<&str>,
    ) -> Result<Self, String> {
        let (profile, auto) = match profile.map(str::trim) {
            None | Some("auto") => (MemoryProfile::for_system(sysmem::system().total), true),
            Some(name) => (
                MemoryProfile::by_name(name)
                    .ok_or_else(|| format!("unknown memory_profile {name:?}: use auto, {}", MemoryProfile::names()))?,
                false,
            ),
        };
        let budget = budget.map(|b| parse_bytes(b).map_err(|e| format!("memory_budget: {e}"))).transpose()?;
        let pressure = Pressure::parse(pressure)?;
        Ok(Self { profile, auto, budget, low_memory: low_memory.unwrap_or(false), pressure })
    }

    pub fn settings(&self) -> MemorySettings {
        MemorySettings { profile: Some(self.profile), budget: self.budget }
    }

    /// The memory decision ([`ltx_engine::pipeline::decision::decide`]) over the models in `dir` (reads their
    /// sizes: run it off the async threads).
    pub fn decision(&self, backend: Backend, dir: &Path) -> MemoryDecision {
        decide(sysmem::system().total, &self.settings(), self.low_memory, backend, dir)
    }

    /// One line for `ltxctl status`, for the backend the engine runs on.
    pub fn describe(&self, backend: Backend) -> String {
        let mut s = format!("{}{}", self.profile, if self.auto { " (auto)" } else { "" });
        let gemma = self.settings().gemma(backend);
        if gemma != self.profile.gemma {
            s.push_str(&format!("; Gemma {} on {backend}", gemma.name()));
        }
        if let Some(b) = self.budget {
            s.push_str(&format!("; memory_budget {:.2} GB", b as f64 / 1e9));
        }
        if self.low_memory {
            s.push_str("; low_memory on");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_profiles() {
        assert_eq!(parse_bytes("24GB"), Ok(24_000_000_000));
        assert_eq!(parse_bytes("1.5 GiB"), Ok(1_610_612_736));
        assert_eq!(parse_bytes("300"), Ok(300));
        assert!(parse_bytes("12 parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("-3GB").is_err() && parse_bytes("0").is_err() && parse_bytes("").is_err());
        let c = MemoryConfig::load(Some("32gb"), Some("20GB"), Some(true), None).unwrap();
        assert_eq!((c.profile.system_gb, c.auto, c.budget, c.low_memory), (32, false, Some(20_000_000_000), true));
        assert!(
            c.describe(Backend::Metal).starts_with("32gb: distilled-fp8 variant, Gemma int4, decode tiles"),
            "{}",
            c.describe(Backend::Metal)
        );
        assert!(c.describe(Backend::Cuda).contains("; Gemma bf16 on cuda"), "{}", c.describe(Backend::Cuda));
        assert!(MemoryConfig::load(None, None, None, None).unwrap().auto);
        assert!(MemoryConfig::load(Some("12gb"), None, None, None).unwrap_err().contains("16gb, 32gb, 64gb, 128gb"));
    }

    #[test]
    fn memory_pressure_settings() {
        assert_eq!(c_pressure(None), Ok(Pressure::Auto));
        assert_eq!(c_pressure(Some("off")), Ok(Pressure::Off));
        assert_eq!(c_pressure(Some("8GB")), Ok(Pressure::Below(8_000_000_000)));
        assert!(c_pressure(Some("lots")).unwrap_err().contains("memory_pressure"));
        assert!(!Pressure::Off.now());
        // More than any machine has available: always short (Linux); 1 byte: never.
        if cfg!(target_os = "linux") {
            assert!(Pressure::Below(1 << 60).now());
            assert!(!Pressure::Below(1).now());
        }
    }

    fn c_pressure(s: Option<&str>) -> Result<Pressure, String> {
        MemoryConfig::load(Some("64gb"), None, None, s).map(|c| c.pressure)
    }
}
