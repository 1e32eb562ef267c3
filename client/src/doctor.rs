//! `ltxctl doctor`: checks the installation and prints each problem with its fix.
use crate::daemon::{connect, Daemon};
use crate::exit::{Res, EXIT_FAILED, EXIT_OK};
use ltx_protocol::catalogue;
use ltx_protocol::models::{human_bytes, FileState, ModelsInfo};
use ltx_protocol::paths::{self, Env, Os};
use ltx_protocol::sysmem;
use ltx_protocol::DaemonStatus;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub check: &'static str,
    pub status: Level,
    pub detail: String,
    pub fix: Option<String>,
}

/// `--json doctor`'s document: each check with its level (`ok`, `warn`, `fail`) and fix (`docs/json.md`).
pub fn document(checks: &[Check]) -> serde_json::Value {
    let checks: Vec<_> = checks
        .iter()
        .map(|c| {
            let Check { check, status, detail, fix } = c;
            serde_json::json!({ "check": check, "status": status.name(), "detail": detail, "fix": fix })
        })
        .collect();
    serde_json::json!({ "checks": checks })
}

fn check(check: &'static str, status: Level, detail: impl Into<String>, fix: Option<String>) -> Check {
    Check { check, status, detail: detail.into(), fix }
}

/// LTX-2 19B with Gemma 3 12B loaded one after the other (distilled, bf16): below this, expect swapping.
const RECOMMENDED_MEMORY: u64 = 32 << 30;

pub async fn run(socket: &Path, json: bool) -> Res {
    let checks = checks(socket).await;
    if json {
        crate::print::json(document(&checks));
    } else {
        for c in &checks {
            let tag = match c.status {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            println!("{tag}  {:<8} {}", c.check, c.detail);
            if let Some(fix) = &c.fix {
                println!("      {:<8} fix: {fix}", "");
            }
        }
    }
    let failed = checks.iter().filter(|c| c.status == Level::Fail).count();
    if failed > 0 {
        if !json {
            eprintln!("ltxctl: {failed} problem(s) found");
        }
        return Ok(EXIT_FAILED);
    }
    Ok(EXIT_OK)
}

pub async fn checks(socket: &Path) -> Vec<Check> {
    let env = Env::process();
    let daemon = Daemon::new(socket.to_path_buf(), false);
    let mut out = vec![config_check(&env, &daemon.binary)];
    let status = match connect(socket).await {
        Ok(mut c) => c.status().await.ok().map(|s| (s, c)),
        Err(_) => None,
    };
    let service = daemon.layout.service_unit();
    let managed = if service.is_file() {
        format!("installed as a service ({})", service.display())
    } else {
        "not installed as a service (`ltxctl daemon start` runs it until logout)".into()
    };
    let mut client = None;
    match status {
        Some((s, c)) => {
            out.push(check(
                "daemon",
                Level::Ok,
                format!(
                    "ltxd {} running (pid {}, protocol v{}); {managed}",
                    s.daemon_version, s.pid, s.protocol_version
                ),
                None,
            ));
            out.push(compute_check(&s));
            out.push(check("memory profile", Level::Ok, s.memory.clone(), None));
            client = Some(c);
        }
        None => out.push(check(
            "daemon",
            Level::Fail,
            format!("ltxd is not running at {}; {managed}", socket.display()),
            Some("ltxctl daemon start".into()),
        )),
    }
    out.extend(socket_checks(socket));
    out.push(memory_check());
    let models = match &mut client {
        Some(c) => c.models_list().await.ok(),
        None => None,
    };
    match models {
        Some(m) => out.extend(model_checks(&m)),
        None => out.push(check(
            "models",
            Level::Warn,
            "unknown: the daemon is not answering",
            Some("ltxctl daemon start, then ltxctl doctor".into()),
        )),
    }
    out
}

/// The daemon's own loader (`ltxd --check-config`), so this check knows every key ltxd knows.
fn config_check(env: &Env, bin: &Path) -> Check {
    let path = std::env::var_os("LTX_CONFIG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| paths::config_path(Os::current(), env));
    match std::process::Command::new(bin).arg("--check-config").stdin(std::process::Stdio::null()).output() {
        Ok(o) if o.status.success() => {
            let shown = if path.is_file() { path.display().to_string() } else { "no config file, defaults".into() };
            check("config", Level::Ok, shown, None)
        }
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr).trim().trim_start_matches("ltxd: ").to_string();
            check("config", Level::Fail, err, Some(format!("edit {} (keys are listed in the README)", path.display())))
        }
        Err(e) => check(
            "config",
            Level::Warn,
            format!("cannot run {} to check the config: {e}", bin.display()),
            Some("install ltxd next to ltxctl or set LTXD_BIN".into()),
        ),
    }
}

fn compute_check(s: &DaemonStatus) -> Check {
    if s.compute.starts_with("cpu") {
        check(
            "compute",
            Level::Warn,
            format!("{}: generation runs on the CPU and is very slow", s.compute),
            Some("run on Apple silicon (Metal) or an NVIDIA GPU build (see README, Building on MLX)".into()),
        )
    } else {
        check("compute", Level::Ok, s.compute.clone(), None)
    }
}

fn socket_checks(socket: &Path) -> Vec<Check> {
    use std::os::unix::fs::MetadataExt;
    let uid = ltx_service::current_uid();
    let mut out = Vec::new();
    let mut ok = true;
    if let Some(dir) = socket.parent() {
        if let Ok(m) = std::fs::metadata(dir) {
            if m.mode() & 0o077 != 0 {
                ok = false;
                out.push(check(
                    "socket",
                    Level::Fail,
                    format!("{} is open to other users (mode {:o})", dir.display(), m.mode() & 0o777),
                    Some(format!("chmod 700 {}", dir.display())),
                ));
            }
            if m.uid() != uid {
                ok = false;
                out.push(check(
                    "socket",
                    Level::Fail,
                    format!("{} belongs to uid {}, not you (uid {uid})", dir.display(), m.uid()),
                    Some(format!("remove {} and restart ltxd as yourself", dir.display())),
                ));
            }
        }
    }
    if let Ok(m) = std::fs::metadata(socket) {
        if m.mode() & 0o077 != 0 {
            ok = false;
            out.push(check(
                "socket",
                Level::Fail,
                format!("{} is open to other users (mode {:o})", socket.display(), m.mode() & 0o777),
                Some(format!("chmod 600 {}", socket.display())),
            ));
        }
    }
    if ok {
        out.push(check("socket", Level::Ok, format!("{} private to you", socket.display()), None));
    }
    out
}

/// The machine's memory ([`sysmem::system`]); `None` where it could not be read (its fallback).
fn total_memory() -> Option<u64> {
    let m = sysmem::system();
    m.measured().then_some(m.total)
}

fn memory_check() -> Check {
    match total_memory() {
        Some(m) if m >= RECOMMENDED_MEMORY => check("memory", Level::Ok, format!("{} GiB", m >> 30), None),
        Some(m) => check(
            "memory",
            Level::Warn,
            format!("{} GiB: LTX-2 19B with Gemma 3 12B wants 32 GiB or more", m >> 30),
            Some("use the distilled-fp8 variant (`ltxctl models pull distilled-fp8`) and small sizes".into()),
        ),
        None => check("memory", Level::Warn, "cannot read the memory size", None),
    }
}

pub fn model_checks(m: &ModelsInfo) -> Vec<Check> {
    let mut out = Vec::new();
    let summary = crate::models::variant_summary(m);
    let ready: Vec<&str> = summary.iter().filter(|s| s.missing.is_empty()).map(|s| s.variant.name()).collect();
    let free = m.disk_free;
    match free {
        Some(free) => {
            // Space for the smallest variant still to fetch, when none is installed yet.
            let need = summary.iter().filter(|s| !s.missing.is_empty()).map(|s| s.bytes).min().unwrap_or(0);
            if ready.is_empty() && need > free {
                out.push(check(
                    "disk",
                    Level::Fail,
                    format!(
                        "{} free in {}; the smallest variant needs ≈{} more",
                        human_bytes(free),
                        m.dir.display(),
                        human_bytes(need)
                    ),
                    Some("free some space or move the models: `ltxctl models dir PATH`".into()),
                ));
            } else {
                out.push(check("disk", Level::Ok, format!("{} free in {}", human_bytes(free), m.dir.display()), None));
            }
        }
        None => out.push(check(
            "disk",
            Level::Warn,
            format!("cannot read the free space of {}", m.dir.display()),
            Some(format!("create it: mkdir -p {}", m.dir.display())),
        )),
    }
    if ready.is_empty() {
        out.push(check(
            "models",
            Level::Fail,
            format!("no variant is installed in {}", m.dir.display()),
            Some(catalogue::pull_command(ltx_protocol::ModelVariant::Distilled, ltx_protocol::Pipeline::Distilled)),
        ));
    } else {
        out.push(check("models", Level::Ok, format!("installed: {}", ready.join(", ")), None));
    }
    // Files placed by hand are not verified until `models verify` checks them: one warning names them all. The
    // directory's own Gemma split is not on the Hub, so there is nothing to verify it against.
    let unverified: Vec<&str> = m
        .files
        .iter()
        .filter(|f| matches!(f.state, FileState::Installed { .. }) && !f.verified && !f.own_split)
        .map(|f| f.name.as_str())
        .collect();
    match unverified[..] {
        [] => {}
        [one] => out.push(check("models", Level::Warn, format!("{one} is not verified"), verify_fix())),
        _ => out.push(check(
            "models",
            Level::Warn,
            format!("{} files are not verified: {}", unverified.len(), unverified.join(", ")),
            verify_fix(),
        )),
    }
    let shards = m.files.iter().filter(|f| f.own_split && f.name.ends_with(".safetensors")).count();
    if shards > 0 {
        let detail = format!(
            "Gemma is the directory's own split ({shards} shards, named by its {}): not from the Hub, so not checked against it",
            catalogue::GEMMA_INDEX
        );
        out.push(check("models", Level::Ok, detail, None));
    }
    for f in &m.files {
        if let FileState::Partial { bytes } = &f.state {
            out.push(check(
                "models",
                Level::Warn,
                format!("{} is a partial download ({})", f.name, human_bytes(*bytes)),
                Some("ltxctl models pull <variant> resumes it".into()),
            ));
        }
    }
    out
}

fn verify_fix() -> Option<String> {
    Some("ltxctl models verify".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ltx_protocol::models::ModelFileInfo;

    #[test]
    fn memory_comes_from_the_system_probe() {
        let c = memory_check();
        let m = sysmem::system();
        if m.measured() {
            assert_eq!(total_memory(), Some(m.total));
            assert!(c.detail.starts_with(&format!("{} GiB", m.total >> 30)), "{c:?}");
        } else {
            assert_eq!((c.status, c.detail.as_str()), (Level::Warn, "cannot read the memory size"));
        }
    }

    fn info(free: u64, installed: bool) -> ModelsInfo {
        let files = catalogue::FILES
            .iter()
            .map(|f| ModelFileInfo {
                name: f.local.into(),
                repo: f.repo.into(),
                component: f.component.name(),
                size: f.size,
                state: if installed && f.component != catalogue::Component::Checkpoint(ltx_protocol::ModelVariant::Dev)
                {
                    FileState::Installed { bytes: f.size }
                } else {
                    FileState::Missing
                },
                verified: true,
                own_split: false,
            })
            .collect();
        ModelsInfo { dir: "/m".into(), disk_free: Some(free), hf_cache: None, files }
    }

    #[test]
    fn disk_and_models() {
        let c = model_checks(&info(1 << 30, false));
        let disk = c.iter().find(|c| c.check == "disk").unwrap();
        assert_eq!(disk.status, Level::Fail);
        assert!(disk.detail.contains("the smallest variant needs"), "{disk:?}");
        assert_eq!(disk.fix.as_deref(), Some("free some space or move the models: `ltxctl models dir PATH`"));
        let models = c.iter().find(|c| c.check == "models").unwrap();
        assert_eq!((models.status, models.fix.as_deref()), (Level::Fail, Some("ltxctl models pull distilled")));
        let c = model_checks(&info(1 << 30, true));
        assert!(c.iter().all(|c| c.status == Level::Ok), "{c:?}");
        assert!(
            c.iter().any(|c| c.detail == "installed: distilled, distilled-fp8, ltx-2.3-distilled, ltx-2.3-dev"),
            "{c:?}"
        );
        let c = model_checks(&info(1 << 50, false));
        assert_eq!(c.iter().find(|c| c.check == "disk").unwrap().status, Level::Ok);
    }

    #[test]
    fn unverified_files_are_one_warning_and_an_own_split_none() {
        let mut m = info(1 << 50, true);
        for f in m.files.iter_mut().filter(|f| f.name.contains("/model-")) {
            f.verified = false;
        }
        let warns: Vec<Check> = model_checks(&m).into_iter().filter(|c| c.status == Level::Warn).collect();
        assert_eq!(warns.len(), 1, "{warns:?}");
        assert!(warns[0].detail.starts_with("5 files are not verified: "), "{warns:?}");
        assert_eq!(warns[0].fix.as_deref(), Some("ltxctl models verify"));
        // The same files as the directory's own split: nothing to verify, said once.
        for f in m.files.iter_mut().filter(|f| f.name.contains("/model-")) {
            f.own_split = true;
        }
        let c = model_checks(&m);
        assert!(c.iter().all(|c| c.status == Level::Ok), "{c:?}");
        assert!(c.iter().any(|c| c.detail.starts_with("Gemma is the directory's own split (5 shards")), "{c:?}");
    }
}
