//! The daemon's memory settings: the named profile (`memory_profile`, `auto` by default: picked from the
//! machine's memory), a fixed peak budget (`memory_budget`, overriding what the machine has) and the
//! low-memory switch (`low_memory`), as the engine's preflight uses them.
use ltx_engine::device::Backend;
use ltx_engine::pipeline::{
    plan::{system_memory, MemorySettings},
    profile::MemoryProfile,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryConfig {
    pub profile: MemoryProfile,
    /// Chosen from the machine's memory (`memory_profile = "auto"` or absent).
    pub auto: bool,
    pub budget: Option<u64>,
    pub low_memory: bool,
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
    pub fn load(profile: Option<&str>, budget: Option<&str>, low_memory: Option<bool>) -> Result<Self, String> {
        let (profile, auto) = match profile.map(str::trim) {
            None | Some("auto") => (MemoryProfile::for_system(system_memory().0), true),
            Some(name) => (
                MemoryProfile::by_name(name)
                    .ok_or_else(|| format!("unknown memory_profile {name:?}: use auto, {}", MemoryProfile::names()))?,
                false,
            ),
        };
        let budget = budget.map(|b| parse_bytes(b).map_err(|e| format!("memory_budget: {e}"))).transpose()?;
        Ok(Self { profile, auto, budget, low_memory: low_memory.unwrap_or(false) })
    }

    pub fn settings(&self) -> MemorySettings {
        MemorySettings { profile: Some(self.profile), budget: self.budget }
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
        let c = MemoryConfig::load(Some("32gb"), Some("20GB"), Some(true)).unwrap();
        assert_eq!((c.profile.system_gb, c.auto, c.budget, c.low_memory), (32, false, Some(20_000_000_000), true));
        assert!(
            c.describe(Backend::Metal).starts_with("32gb: distilled-fp8 variant, Gemma int4"),
            "{}",
            c.describe(Backend::Metal)
        );
        assert!(c.describe(Backend::Cuda).contains("; Gemma bf16 on cuda"), "{}", c.describe(Backend::Cuda));
        assert!(MemoryConfig::load(None, None, None).unwrap().auto);
        assert!(MemoryConfig::load(Some("12gb"), None, None).unwrap_err().contains("16gb, 32gb, 64gb, 128gb"));
    }
}
