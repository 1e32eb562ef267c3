//! Named memory profiles: what a 16, 32, 64 or 128 GB machine runs by default. Each names the
//! variant it suits, Gemma's quantisation, the video decode's tiling budget and the peak the preflight
//! holds a job to. Which variant and plan a job gets is [`super::decision::decide`]'s.
//!
//! LTX-2's weights for scale (from the committed manifests): the 19B transformer is 37.8 GB in bf16 and
//! 19.2 GB with FP8 block weights; Gemma-3-12B's text decoder is 23.5 GB in bf16, 12.5 GB int8,
//! 6.6 GB int4. A 16 GB machine therefore cannot hold the transformer even in FP8: its profile is the
//! smallest configuration, and the preflight says so (with the numbers) instead of swapping.
use std::fmt;

use ltx_protocol::ModelVariant;

use crate::text::GemmaPrecision;

const GIB: u64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryProfile {
    pub name: &'static str,
    /// The machine size it is for, in GB.
    pub system_gb: u64,
    /// The variant that fits (what `ltxctl load` and the refusal suggest).
    pub variant: ModelVariant,
    pub gemma: GemmaPrecision,
    /// Memory one video decode tile may use.
    pub decode_budget: u64,
    /// The peak the preflight allows a job (about three quarters of the machine: macOS's GPU working
    /// set, and room for the system on Linux).
    pub peak_budget: u64,
}

pub const PROFILES: [MemoryProfile; 4] = [
    MemoryProfile {
        name: "16gb",
        system_gb: 16,
        variant: ModelVariant::DistilledFp8,
        gemma: GemmaPrecision::Int4,
        decode_budget: GIB,
        peak_budget: 12 * GIB,
    },
    MemoryProfile {
        name: "32gb",
        system_gb: 32,
        variant: ModelVariant::DistilledFp8,
        gemma: GemmaPrecision::Int4,
        decode_budget: 2 * GIB,
        peak_budget: 24 * GIB,
    },
    MemoryProfile {
        name: "64gb",
        system_gb: 64,
        variant: ModelVariant::Distilled,
        gemma: GemmaPrecision::Int8,
        decode_budget: 4 * GIB,
        peak_budget: 48 * GIB,
    },
    MemoryProfile {
        name: "128gb",
        system_gb: 128,
        variant: ModelVariant::Distilled,
        gemma: GemmaPrecision::Bf16,
        decode_budget: 8 * GIB,
        peak_budget: 96 * GIB,
    },
];

impl MemoryProfile {
    /// A profile by name (`16gb`, `32gb`, `64gb`, `128gb`; `16`, `16GB` work too).
    pub fn by_name(name: &str) -> Option<Self> {
        let n = name.trim().to_ascii_lowercase();
        let n = n.strip_suffix("gb").unwrap_or(&n);
        PROFILES.into_iter().find(|p| p.system_gb.to_string() == n)
    }

    /// The largest profile whose machine size is at most `total_bytes` (with 10 % slack: a "32 GB"
    /// machine reports a little less), the smallest when none is.
    pub fn for_system(total_bytes: u64) -> Self {
        let gb = total_bytes as f64 / 1e9 * 1.1 / 1.073_741_824;
        PROFILES.into_iter().rev().find(|p| p.system_gb as f64 <= gb).unwrap_or(PROFILES[0])
    }

    /// The names, for error messages.
    pub fn names() -> String {
        PROFILES.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for MemoryProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} variant, Gemma {}, decode tiles up to {} GiB, peak budget {} GiB",
            self.name,
            self.variant.name(),
            self.gemma.name(),
            self.decode_budget / GIB,
            self.peak_budget / GIB
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_machine_size_and_name() {
        let gib = |n: u64| n * GIB;
        assert_eq!(MemoryProfile::for_system(gib(8)).name, "16gb");
        assert_eq!(MemoryProfile::for_system(gib(16) - gib(1) / 2).name, "16gb");
        assert_eq!(MemoryProfile::for_system(gib(24)).name, "16gb");
        assert_eq!(MemoryProfile::for_system(gib(32) - gib(1)).name, "32gb");
        assert_eq!(MemoryProfile::for_system(gib(64)).name, "64gb");
        assert_eq!(MemoryProfile::for_system(gib(192)).name, "128gb");
        assert_eq!(MemoryProfile::by_name("32GB").map(|p| p.system_gb), Some(32));
        assert_eq!(MemoryProfile::by_name("128").map(|p| p.system_gb), Some(128));
        assert_eq!(MemoryProfile::by_name("12gb"), None);
        for p in PROFILES {
            assert!(p.peak_budget < p.system_gb * GIB && p.decode_budget < p.peak_budget, "{p}");
        }
    }

    #[test]
    fn gemma_is_quantised_by_profile_except_on_cuda() {
        use super::super::plan::MemorySettings;
        use crate::device::Backend;
        let small = MemorySettings { profile: MemoryProfile::by_name("16gb"), budget: None };
        assert_eq!(small.gemma(Backend::Metal), GemmaPrecision::Int4);
        assert_eq!(small.gemma(Backend::Cpu), GemmaPrecision::Int4);
        assert_eq!(small.gemma(Backend::Cuda), GemmaPrecision::Bf16);
        assert_eq!(MemorySettings::default().gemma(Backend::Metal), GemmaPrecision::Bf16);
    }
}
