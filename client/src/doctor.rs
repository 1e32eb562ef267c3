//! `ltxctl doctor`: checks the installation and prints each problem with its fix.
use crate::daemon::{connect, Daemon};
use crate::exit::{Res, EXIT_FAILED, EXIT_OK};
use ltx_protocol::catalogue::{self, DirFile};
use ltx_protocol::models::{human_bytes, FileState, ModelFileInfo, ModelsInfo};
use ltx_protocol::paths::{self, Env, Os};
use ltx_protocol::{DaemonStatus, MachineReport, MemoryDecision};
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
    let mut decision = None;
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
            out.push(decision_check(&s.decision));
            decision = Some(s.decision.clone());
            client = Some(c);
        }
        None => out.push(check(
            "daemon",
            Level::Fail,
            format!("ltxd is not running at {}; {managed}", socket.display()),
            Some("ltxctl daemon start".into()),
        )),
    }
    out.extend(socket_checks(socket, client.is_some()));
    let models = match &mut client {
        Some(c) => c.models_list().await.ok(),
        None => None,
    };
    match (models, client.is_some()) {
        (Some(m), _) => out.extend(model_checks(&m, decision.as_ref())),
        (None, true) => out.push(check(
            "models",
            Level::Warn,
            "unknown: the daemon does not list its models",
            Some("ltxctl daemon stop && ltxctl daemon start, then ltxctl doctor".into()),
        )),
        // No daemon: the decision from ltxd's own config, and the models directory read here.
        (None, false) => match machine_report(&daemon.binary) {
            Ok(r) => {
                out.push(decision_check(&r.decision));
                out.extend(model_checks(&models_in(&r.models_dir), Some(&r.decision)));
                out.push(check(
                    "models",
                    Level::Warn,
                    format!("read from {} without the daemon: checksums not checked", r.models_dir.display()),
                    Some("ltxctl daemon start, then ltxctl doctor".into()),
                ));
            }
            Err(e) => out.push(check("models", Level::Warn, format!("unknown: {e}"), None)),
        },
    }
    out
}

/// The memory decision ([`MemoryDecision`], the one `status`, a refused submit and each sidecar show).
fn decision_check(d: &MemoryDecision) -> Check {
    match d.pull() {
        None => check("memory", Level::Ok, d.summary(), None),
        Some(pull) => check("memory", Level::Warn, d.summary(), Some(pull)),
    }
}

/// What `ltxd --memory-decision` says of this machine under ltxd's config: the models directory and the
/// memory decision over it.
fn machine_report(bin: &Path) -> Result<MachineReport, String> {
    let o = std::process::Command::new(bin)
        .arg("--memory-decision")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).trim().trim_start_matches("ltxd: ").to_string());
    }
    serde_json::from_slice(&o.stdout).map_err(|e| format!("{} --memory-decision: {e}", bin.display()))
}

/// The models directory as this process reads it: each file installed (its size), partly downloaded (a
/// `.part` beside it) or missing.
pub fn models_in(dir: &Path) -> ModelsInfo {
    let files = catalogue::files_in(dir).unwrap_or_else(|_| catalogue::FILES.iter().map(DirFile::Catalogue).collect());
    let files = files
        .into_iter()
        .map(|file| {
            let path = dir.join(file.local());
            let len = |p: &Path| std::fs::metadata(p).ok().filter(|m| m.is_file()).map(|m| m.len());
            let mut part = path.as_os_str().to_owned();
            part.push(".part");
            let state = match (len(&path), len(Path::new(&part))) {
                (Some(bytes), _) => FileState::Installed { bytes },
                (None, Some(bytes)) => FileState::Partial { bytes },
                (None, None) => FileState::Missing,
            };
            let (repo, size) = match &file {
                DirFile::Catalogue(f) => (f.repo.to_string(), f.size),
                DirFile::Own(_) => (String::new(), len(&path).unwrap_or(0)),
            };
            let own_split = matches!(file, DirFile::Own(_));
            let name = file.local().to_string();
            // Checksums are the daemon's record: not claimed unverified here (the check above says so).
            ModelFileInfo { name, repo, component: file.component().name(), size, state, verified: true, own_split }
        })
        .collect();
    ModelsInfo { dir: dir.to_path_buf(), disk_free: ltx_protocol::models::disk_free(dir), hf_cache: None, files }
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

/// The socket's and its directory's permissions; `listening`: the daemon answered on it.
fn socket_checks(socket: &Path, listening: bool) -> Vec<Check> {
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
    let detail = match (socket.exists(), listening) {
        _ if !ok => None,
        (true, true) => {
            out.push(check("socket", Level::Ok, format!("{} private to you", socket.display()), None));
            None
        }
        (true, false) => {
            Some(format!("{} is left from a daemon that is gone: nothing listens there", socket.display()))
        }
        (false, _) => Some(format!("{} does not exist: no daemon listens there", socket.display())),
    };
    if let Some(detail) = detail {
        out.push(check("socket", Level::Warn, detail, Some("ltxctl daemon start".into())));
    }
    out
}

/// The models directory's checks; a missing variant's fix installs `decision`'s variant where there is one.
pub fn model_checks(m: &ModelsInfo, decision: Option<&MemoryDecision>) -> Vec<Check> {
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
            Some(decision.and_then(MemoryDecision::pull).unwrap_or_else(|| {
                catalogue::pull_command(ltx_protocol::ModelVariant::Distilled, ltx_protocol::Pipeline::Distilled)
            })),
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

    #[test]
    fn the_memory_check_is_the_decision_and_asks_for_a_pull_only_when_not_installed() {
        let mut d = MemoryDecision {
            profile: "16gb".into(),
            total_memory: 16 << 30,
            budget: 12 << 30,
            variant: ltx_protocol::ModelVariant::DistilledFp8,
            installed: true,
            weights: 20 << 30,
            low_memory: true,
            why: "why".into(),
        };
        let c = decision_check(&d);
        assert_eq!(
            (c.status, c.detail.as_str(), c.fix),
            (Level::Ok, "distilled-fp8, low-memory sequential plan: why", None)
        );
        d.installed = false;
        let c = decision_check(&d);
        assert_eq!((c.status, c.fix.as_deref()), (Level::Warn, Some("ltxctl models pull distilled-fp8")));
    }

    #[test]
    fn the_models_directory_is_read_without_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let m = models_in(dir.path());
        assert!(m.files.iter().all(|f| f.state == FileState::Missing) && m.disk_free.is_some(), "{m:?}");
        let ckpt = catalogue::checkpoint(ltx_protocol::ModelVariant::DistilledFp8);
        std::fs::write(dir.path().join(format!("{ckpt}.part")), b"abc").unwrap();
        let m = models_in(dir.path());
        let f = m.files.iter().find(|f| f.name == ckpt).unwrap();
        assert_eq!(f.state, FileState::Partial { bytes: 3 });
        std::fs::write(dir.path().join(ckpt), b"abcd").unwrap();
        let m = models_in(dir.path());
        assert_eq!(m.files.iter().find(|f| f.name == ckpt).unwrap().state, FileState::Installed { bytes: 4 });
    }

    fn model_checks_of(m: &ModelsInfo) -> Vec<Check> {
        model_checks(m, None)
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
        let c = model_checks_of(&info(1 << 30, false));
        let disk = c.iter().find(|c| c.check == "disk").unwrap();
        assert_eq!(disk.status, Level::Fail);
        assert!(disk.detail.contains("the smallest variant needs"), "{disk:?}");
        assert_eq!(disk.fix.as_deref(), Some("free some space or move the models: `ltxctl models dir PATH`"));
        let models = c.iter().find(|c| c.check == "models").unwrap();
        assert_eq!((models.status, models.fix.as_deref()), (Level::Fail, Some("ltxctl models pull distilled")));
        let c = model_checks_of(&info(1 << 30, true));
        assert!(c.iter().all(|c| c.status == Level::Ok), "{c:?}");
        assert!(
            c.iter().any(|c| c.detail == "installed: distilled, distilled-fp8, ltx-2.3-distilled, ltx-2.3-dev"),
            "{c:?}"
        );
        let c = model_checks_of(&info(1 << 50, false));
        assert_eq!(c.iter().find(|c| c.check == "disk").unwrap().status, Level::Ok);
    }

    #[test]
    fn unverified_files_are_one_warning_and_an_own_split_none() {
        let mut m = info(1 << 50, true);
        for f in m.files.iter_mut().filter(|f| f.name.contains("/model-")) {
            f.verified = false;
        }
        let warns: Vec<Check> = model_checks_of(&m).into_iter().filter(|c| c.status == Level::Warn).collect();
        assert_eq!(warns.len(), 1, "{warns:?}");
        assert!(warns[0].detail.starts_with("5 files are not verified: "), "{warns:?}");
        assert_eq!(warns[0].fix.as_deref(), Some("ltxctl models verify"));
        // The same files as the directory's own split: nothing to verify, said once.
        for f in m.files.iter_mut().filter(|f| f.name.contains("/model-")) {
            f.own_split = true;
        }
        let c = model_checks_of(&m);
        assert!(c.iter().all(|c| c.status == Level::Ok), "{c:?}");
        assert!(c.iter().any(|c| c.detail.starts_with("Gemma is the directory's own split (5 shards")), "{c:?}");
    }
}
