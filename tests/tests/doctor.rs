//! `ltxctl doctor` end to end: a healthy setup, then each broken condition it detects, with its fix.
use ltx_e2e::hub::Hub;
use ltx_e2e::*;
use ltx_protocol::ModelVariant;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

fn doctor(d: &Daemon, json: bool) -> Output {
    let args: &[&str] = if json { &["--json", "doctor"] } else { &["doctor"] };
    d.ctl_cmd(args).env("LTXD_BIN", &d.bins.daemon).env("LTX_CONFIG", &d.config).output().unwrap()
}

/// (check, status, detail, fix)
type Row = (String, String, String, String);

/// The rows of `--json doctor` and its exit code.
fn checks(d: &Daemon) -> (Option<i32>, Vec<Row>) {
    let o = doctor(d, true);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o:?}"));
    let rows = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("check"), s("status"), s("detail"), s("fix"))
        })
        .collect();
    (o.status.code(), rows)
}

fn failing(rows: &[Row]) -> Vec<&Row> {
    rows.iter().filter(|r| r.1 == "fail").collect()
}

const PROFILE: &str = "memory_profile = \"16gb\"";

fn healthy() -> (Hub, Daemon) {
    let hub = Hub::start();
    hub.add_variant(ModelVariant::Distilled, 200_000);
    // The 16gb profile whatever this machine has: its variant, distilled-fp8, is not the one installed.
    let opts = Opts {
        env: vec![("HF_ENDPOINT".into(), hub.url.clone())],
        placeholder_models: false,
        extra_config: PROFILE.into(),
        ..Opts::default()
    };
    let d = Daemon::with(bins!(), opts);
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    (hub, d)
}

#[test]
fn healthy_setup_has_no_problems() {
    let (_hub, d) = healthy();
    let o = doctor(&d, false);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.contains("FAIL"), "{out}");
    for line in ["ok    config", "ok    daemon", "ok    socket", "ok    disk", "ok    models   installed: distilled"] {
        assert!(out.contains(line), "no {line:?} in\n{out}");
    }
    // This machine computes on the CPU: a warning with a fix, not a failure.
    assert!(out.contains("warn  compute  cpu f32"), "{out}");
    let (code, rows) = checks(&d);
    assert_eq!(code, Some(0));
    assert!(failing(&rows).is_empty(), "{rows:?}");
    // The profile's variant is not installed, distilled is: that one runs, and nothing asks for a pull.
    let memory = rows.iter().find(|r| r.0 == "memory").expect("the memory decision");
    assert_eq!((memory.1.as_str(), memory.3.as_str()), ("ok", ""), "{memory:?}");
    assert!(
        memory.2.starts_with("distilled, all resident plan: ")
            && memory.2.contains("distilled-fp8, which is not installed; distilled is"),
        "{memory:?}"
    );
}

#[test]
fn each_broken_condition_is_reported_with_its_fix() {
    let (hub, mut d) = healthy();
    let models = d.dir.path().join("models");

    // A file changed since it was verified, and a partial download.
    let ck = models.join("ltx-2-19b-distilled.safetensors");
    let mut bytes = std::fs::read(&ck).unwrap();
    bytes.push(0);
    std::fs::write(&ck, bytes).unwrap();
    std::fs::write(models.join("ltx-2-19b-dev.safetensors.part"), b"abc").unwrap();
    let (code, rows) = checks(&d);
    assert_eq!(code, Some(0), "warnings only: {rows:?}");
    let unverified = rows.iter().find(|r| r.2.contains("ltx-2-19b-distilled.safetensors is not verified")).unwrap();
    assert_eq!((unverified.1.as_str(), unverified.3.as_str()), ("warn", "ltxctl models verify"));
    let partial = rows.iter().find(|r| r.2.contains("ltx-2-19b-dev.safetensors is a partial download")).unwrap();
    assert!(partial.3.contains("ltxctl models pull"), "{partial:?}");

    // The socket directory is open to other users.
    let sockdir = d.socket.parent().unwrap().to_path_buf();
    std::fs::set_permissions(&sockdir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, rows) = checks(&d);
    assert_eq!(code, Some(1));
    let f = failing(&rows);
    assert_eq!(f.len(), 1, "{rows:?}");
    assert_eq!(f[0].0, "socket");
    assert_eq!(f[0].3, format!("chmod 700 {}", sockdir.display()));
    std::fs::set_permissions(&sockdir, std::fs::Permissions::from_mode(0o700)).unwrap();

    // No model installed.
    assert!(d.ctl(&["models", "rm", "distilled", "-y"]).status.success());
    let (code, rows) = checks(&d);
    assert_eq!(code, Some(1));
    // (The disk check may fail too where less than a variant's size is free: not this test's business.)
    let f: Vec<_> = failing(&rows).into_iter().filter(|r| r.0 != "disk").collect();
    // The pull is the memory decision's variant, the 16gb profile's.
    let pull = "ltxctl models pull distilled-fp8";
    assert_eq!((f.len(), f[0].0.as_str(), f[0].3.as_str()), (1, "models", pull), "{rows:?}");
    let memory = rows.iter().find(|r| r.0 == "memory").expect("the memory decision");
    assert_eq!((memory.1.as_str(), memory.3.as_str()), ("warn", pull), "{memory:?}");
    drop(hub);

    // A config file ltxd would refuse.
    let good = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, format!("{good}\nmodel_dir = \"/typo\"\n")).unwrap();
    let (_, rows) = checks(&d);
    let cfg = rows.iter().find(|r| r.0 == "config").unwrap();
    assert_eq!(cfg.1, "fail", "{rows:?}");
    assert!(cfg.2.contains("model_dir"), "{cfg:?}");
    assert_eq!(cfg.3, format!("edit {} (keys are listed in the README)", d.config.display()));
    std::fs::write(&d.config, good).unwrap();

    // The daemon is not running.
    d.kill9();
    let o = doctor(&d, false);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL  daemon   ltxd is not running at"), "{out}");
    assert!(out.contains("fix: ltxctl daemon start"), "{out}");
    // The socket a killed daemon left is not "ok"; the models directory is read, the decision is ltxd's own.
    assert!(!out.contains("ok    socket") && out.contains("nothing listens there"), "{out}");
    assert!(
        out.contains("FAIL  models   no variant is installed in ") && out.contains(&format!("fix: {pull}")),
        "{out}"
    );
    assert!(out.contains("warn  memory   distilled-fp8, low-memory sequential plan: "), "{out}");
    assert!(out.contains("without the daemon: checksums not checked"), "{out}");
    std::fs::remove_file(&d.socket).unwrap();
    let out = String::from_utf8_lossy(&doctor(&d, false).stdout).into_owned();
    assert!(!out.contains("ok    socket") && out.contains("does not exist: no daemon listens there"), "{out}");
}

/// One decision, shown alike by `status`, `doctor` (with and without the daemon), a default `submit` (which
/// runs its variant, and whose refusal names it) and the job's sidecar.
#[test]
fn status_doctor_submit_and_the_sidecar_show_one_memory_decision() {
    let mut d = Daemon::with(bins!(), Opts { extra_config: PROFILE.into(), ..Opts::default() });
    // LTX-2's variants only (the test set's files are all tiny, so an installed LTX-2.3 would fit and, being the
    // newest generation, be the decision: `memory_decision_prefers_the_newest_generation_that_fits` covers it).
    for v in [ModelVariant::Ltx23Distilled, ModelVariant::Ltx23Dev] {
        std::fs::remove_file(d.dir.path().join("models").join(ltx_protocol::catalogue::checkpoint(v))).unwrap();
    }
    let json =
        |o: Output| -> serde_json::Value { serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o:?}")) };
    let decision = json(d.ctl(&["--json", "status"]))["decision"].clone();
    assert_eq!((&decision["variant"], &decision["installed"]), (&"distilled-fp8".into(), &true.into()), "{decision}");
    let summary = |d: &serde_json::Value| {
        format!(
            "{}, {} plan: {}",
            d["variant"].as_str().unwrap(),
            d["plan"].as_str().unwrap(),
            d["why"].as_str().unwrap()
        )
    };
    let status = String::from_utf8_lossy(&d.ctl(&["status"]).stdout).into_owned();
    assert!(status.contains(&format!("default: {}", summary(&decision))), "{status}");
    let memory = |d: &Daemon| checks(d).1.into_iter().find(|r| r.0 == "memory").expect("the memory check").2;
    assert_eq!(memory(&d), summary(&decision));

    // A submit naming no variant runs the decision's; its sidecar says the same decision.
    let o = d.ctl(&["--json", "submit", "a fox", "--size", "256x256", "--frames", "9", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    let video = std::path::PathBuf::from(last["output"].as_str().expect("the output"));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(video.with_extension("json")).unwrap()).unwrap();
    assert_eq!(sidecar["request"]["variant"], "distilled-fp8", "{sidecar}");
    assert_eq!(sidecar["memory"], decision, "{sidecar}");
    // Naming one still runs it.
    let o = d.ctl(&["--json", "submit", "a fox", "--variant", "distilled", "--size", "256x256", "--frames", "9"]);
    let id = json(o)["job"].as_u64().unwrap();
    assert_eq!(d.ctl(&["follow", &id.to_string()]).status.code(), Some(0));
    assert_eq!(json(d.ctl(&["--json", "show", &id.to_string()]))["request"]["variant"], "distilled");

    // No checkpoint at all: the default submit is refused, and the refusal says the decision and its pull.
    for v in [ModelVariant::Distilled, ModelVariant::DistilledFp8] {
        std::fs::remove_file(d.dir.path().join("models").join(ltx_protocol::catalogue::checkpoint(v))).unwrap();
    }
    let decision = json(d.ctl(&["--json", "status"]))["decision"].clone();
    assert_eq!(
        (&decision["installed"], &decision["pull"]),
        (&false.into(), &"ltxctl models pull distilled-fp8".into())
    );
    let o = d.ctl(&["submit", "a fox", "--size", "256x256", "--frames", "9"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(
        err.contains("ltxctl models pull distilled-fp8")
            && err.contains(&format!("this machine: {}", summary(&decision))),
        "{err}"
    );
    assert!(!err.contains("models pull distilled`") && !err.contains("models pull distilled\n"), "{err}");

    // Without the daemon, doctor shows the same decision, from ltxd's config and the directory.
    d.kill9();
    assert_eq!(memory(&d), summary(&decision));
}
