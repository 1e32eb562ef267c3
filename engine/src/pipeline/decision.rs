//! The one memory decision: given the machine's memory, the memory settings and the files in the models
//! directory, which variant a job that names none runs, with which loading plan, and why
//! ([`ltx_protocol::MemoryDecision`]). `ltxd` answers `status` with it, uses it for a submit that names no
//! variant, writes it into each sidecar, and prints it for `ltxctl doctor` without a running daemon
//! (`ltxd --memory-decision`); nothing else decides this.
//!
//! The variant has the profile's weights (distilled, distilled-fp8, …): among the installed ones, those that fit
//! the budget first, then the newest generation, then the profile's own variant, then the smallest; with none
//! installed, the profile's variant in the newest generation that has it, to be pulled. The plan follows from
//! the weights: what the installed files take loaded (Gemma at the profile's precision; the published sizes
//! for a variant not installed) against the budget. The preflight still holds each job to the budget with its
//! activations: a job too large for an all-resident plan runs the low-memory one.
use std::path::Path;

use ltx_protocol::catalogue::{self, Component, DirFile};
use ltx_protocol::rules::VARIANTS;
use ltx_protocol::{MemoryDecision, ModelVariant};

use super::{plan::MemorySettings, profile::MemoryProfile};
use crate::{device::Backend, text::GemmaPrecision};

const GB: f64 = 1e9;

/// A variant's default-pipeline files in `dir`: whether all are there, and what they take loaded.
fn weights(dir: &Path, variant: ModelVariant, gemma: GemmaPrecision) -> (bool, u64) {
    let files = catalogue::needs_in(dir, variant, variant.default_pipeline()).unwrap_or_else(|_| {
        catalogue::needs(variant, variant.default_pipeline()).into_iter().map(DirFile::Catalogue).collect()
    });
    let mut installed = true;
    let mut bytes = 0.0;
    for f in &files {
        let on_disk = std::fs::metadata(dir.join(f.local())).ok().filter(|m| m.is_file()).map(|m| m.len());
        installed &= on_disk.is_some();
        let published = match f {
            DirFile::Catalogue(c) => c.size,
            DirFile::Own(_) => 0,
        };
        let size = on_disk.unwrap_or(published) as f64;
        // Gemma's shards are bf16 on disk; loaded at the profile's precision.
        let shard = f.component() == Component::TextEncoder && f.local().ends_with(".safetensors");
        bytes += if shard { size * gemma.bytes_per_weight() / 2.0 } else { size };
    }
    (installed, bytes as u64)
}

/// The decision for a machine of `total_memory` bytes with these settings (`force_low_memory`: the config's
/// `low_memory`) and the models in `models_dir`, on `backend` (which sets Gemma's precision).
pub fn decide(
    total_memory: u64,
    settings: &MemorySettings,
    force_low_memory: bool,
    backend: Backend,
    models_dir: &Path,
) -> MemoryDecision {
    let profile = settings.profile.unwrap_or_else(|| MemoryProfile::for_system(total_memory));
    let budget = settings.budget.unwrap_or(profile.peak_budget);
    let gemma = settings.gemma(backend);
    // The profile's variant in the newest generation that has one of that name (LTX-2.3 has no fp8).
    let short = profile.variant.rules().short;
    let preferred = ltx_protocol::Generation::ALL
        .into_iter()
        .rev()
        .find_map(|g| ModelVariant::find(g, short))
        .unwrap_or(profile.variant);
    let weights_of = preferred.rules().weights;
    let candidates: Vec<(ModelVariant, bool, u64)> = VARIANTS
        .iter()
        .filter(|v| v.weights == weights_of)
        .map(|v| {
            let (installed, bytes) = weights(models_dir, v.variant, gemma);
            (v.variant, installed, bytes)
        })
        .collect();
    let of = |v: ModelVariant| candidates.iter().find(|c| c.0 == v).copied().unwrap_or((v, false, 0));
    let pick = {
        let mut installed: Vec<_> = candidates.iter().copied().filter(|c| c.1).collect();
        let newest = |v: ModelVariant| {
            std::cmp::Reverse(ltx_protocol::Generation::ALL.iter().position(|g| *g == v.rules().generation))
        };
        // What fits first: of those the newest generation, then the profile's variant, then the smallest; of the
        // rest the smallest.
        installed.sort_by_key(|c| {
            let fits = c.2 <= budget;
            (!fits, fits.then(|| (newest(c.0), c.0 != preferred)), c.2)
        });
        installed.first().copied().unwrap_or_else(|| of(preferred))
    };
    let (variant, installed, bytes) = pick;
    let gb = |b: u64| b as f64 / GB;
    let machine =
        format!("{:.0} GB of memory, the {} profile ({:.1} GB for a job)", gb(total_memory), profile.name, gb(budget));
    let which = match (variant == preferred, installed, of(preferred).1) {
        (true, true, _) => format!("it runs {}", variant.name()),
        (false, _, true) => format!(
            "it runs {}; {} is installed too, of the newest generation that fits",
            preferred.name(),
            variant.name()
        ),
        (false, _, false) => format!("it runs {}, which is not installed; {} is", preferred.name(), variant.name()),
        (true, false, _) => format!("it runs {}, which is not installed", variant.name()),
    };
    let low_memory = force_low_memory || bytes > budget;
    let plan = if force_low_memory {
        "the config's low_memory asks for the low-memory sequential plan".to_string()
    } else if low_memory {
        format!("its weights ({:.1} GB) exceed that, so the low-memory sequential plan", gb(bytes))
    } else {
        format!("its weights ({:.1} GB) fit, so all resident unless a job's size needs the low-memory plan", gb(bytes))
    };
    MemoryDecision {
        profile: profile.name.into(),
        total_memory,
        budget,
        variant,
        installed,
        weights: bytes,
        low_memory,
        why: format!("{machine}: {which}; {plan}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    /// A models directory with `variant`'s files, each weights file `bytes` long (sparse), the others empty.
    fn install(dir: &Path, variant: ModelVariant, bytes: u64) {
        for f in catalogue::needs(variant, variant.default_pipeline()) {
            let path = dir.join(f.local);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            let len = if f.local.ends_with(".safetensors") { bytes } else { 0 };
            std::fs::File::create(&path).and_then(|file| file.set_len(len)).expect("a model file");
        }
    }

    fn settings(profile: &str) -> MemorySettings {
        MemorySettings { profile: MemoryProfile::by_name(profile), budget: None }
    }

    #[test]
    fn the_profiles_variant_when_installed_else_an_installed_one_else_the_pull() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = decide(24 * GIB, &settings("16gb"), false, Backend::Metal, dir.path());
        assert_eq!((d.variant, d.installed, d.low_memory), (ModelVariant::DistilledFp8, false, true), "{d:?}");
        assert_eq!(d.pull().as_deref(), Some("ltxctl models pull distilled-fp8"));
        assert!(d.why.contains("the 16gb profile") && d.why.contains("not installed"), "{}", d.why);
        assert!(
            d.summary().starts_with("distilled-fp8, low-memory sequential plan: 26 GB of memory"),
            "{}",
            d.summary()
        );

        // Only distilled installed (small files): it runs, all resident, and says why not the profile's.
        install(dir.path(), ModelVariant::Distilled, 1 << 20);
        let d = decide(24 * GIB, &settings("16gb"), false, Backend::Metal, dir.path());
        assert_eq!((d.variant, d.installed, d.low_memory), (ModelVariant::Distilled, true, false), "{d:?}");
        assert!(d.pull().is_none() && d.why.contains("distilled-fp8, which is not installed; distilled is"), "{d:?}");

        // Both: the profile's. The config's low_memory forces the plan.
        install(dir.path(), ModelVariant::DistilledFp8, 1 << 20);
        let d = decide(24 * GIB, &settings("16gb"), true, Backend::Metal, dir.path());
        assert_eq!((d.variant, d.installed, d.low_memory), (ModelVariant::DistilledFp8, true, true), "{d:?}");
        assert!(d.why.contains("low_memory"), "{}", d.why);
        let d = decide(200 * GIB, &settings("128gb"), false, Backend::Metal, dir.path());
        assert_eq!((d.variant, d.low_memory), (ModelVariant::Distilled, false), "{d:?}");
    }

    #[test]
    fn memory_decision_prefers_the_newest_generation_that_fits() {
        let dir = tempfile::tempdir().expect("tempdir");
        install(dir.path(), ModelVariant::DistilledFp8, 1 << 20);
        install(dir.path(), ModelVariant::Ltx23Distilled, 1 << 20);
        let d = decide(24 * GIB, &settings("16gb"), false, Backend::Metal, dir.path());
        assert_eq!((d.variant, d.installed), (ModelVariant::Ltx23Distilled, true), "{d:?}");
        assert!(d.why.contains("ltx-2.3-distilled is installed too, of the newest generation that fits"), "{}", d.why);
        // LTX-2.3's checkpoint over the budget: the older generation that fits runs.
        let resize = |v: ModelVariant, len: u64| {
            let f = std::fs::OpenOptions::new().write(true).open(dir.path().join(catalogue::checkpoint(v)));
            f.and_then(|f| f.set_len(len)).expect("resize");
        };
        resize(ModelVariant::Ltx23Distilled, 20_000_000_000);
        let d = decide(24 * GIB, &settings("16gb"), false, Backend::Metal, dir.path());
        assert_eq!((d.variant, d.low_memory), (ModelVariant::DistilledFp8, false), "{d:?}");
        // Nothing fits: the smallest.
        resize(ModelVariant::DistilledFp8, 30_000_000_000);
        let d = decide(24 * GIB, &settings("16gb"), false, Backend::Metal, dir.path());
        assert_eq!((d.variant, d.low_memory), (ModelVariant::Ltx23Distilled, true), "{d:?}");
    }

    #[test]
    fn weights_over_the_budget_mean_the_low_memory_plan() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 20 GB a file: far over a 32gb machine's 24 GiB.
        install(dir.path(), ModelVariant::DistilledFp8, 20_000_000_000);
        let d = decide(32 * GIB, &settings("32gb"), false, Backend::Metal, dir.path());
        assert_eq!((d.variant, d.installed, d.low_memory), (ModelVariant::DistilledFp8, true, true), "{d:?}");
        assert!(d.why.contains("exceed that"), "{}", d.why);
        // Gemma counts at the profile's precision: int4 on Metal, bf16 on CUDA.
        let cuda = decide(32 * GIB, &settings("32gb"), false, Backend::Cuda, dir.path());
        assert!(cuda.weights > d.weights, "{} vs {}", cuda.weights, d.weights);
        // The machine picks the profile when none is configured.
        let auto = decide(70 * GIB, &MemorySettings::default(), false, Backend::Metal, dir.path());
        assert_eq!(auto.profile, "64gb");
    }
}
