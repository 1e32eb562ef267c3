//! Model management end to end: the real daemon downloads from a local Hub in the Hugging Face URL layout
//! (302 to a file host, `x-linked-etag`, Range), driven by the real `ltxctl models …`.
mod common;

use common::models::*;
use ltx_e2e::held;
use ltx_e2e::hub::{self, HubFile};
use ltx_protocol::catalogue::{self, GEMMA_REPO, LTX_REPO};
use ltx_protocol::ModelVariant;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn pull_list_verify_remove_and_the_submit_check() {
    let (hub, d) = setup(3 * MB, token(), true);
    let l = list_json(&d);
    assert_eq!(l["variants"][0]["variant"], "distilled");
    assert_eq!(l["variants"][0]["ready"], false);
    assert_eq!(file_state(&l, CHECKPOINT)["state"], "missing");
    assert!(l["disk_free"].as_u64().is_some_and(|f| f > 0));

    // A job for a model that is not installed fails at submit with the command that installs it: naming no
    // variant, the memory decision's (distilled-fp8 on a small machine, distilled on a large one).
    let status: serde_json::Value = serde_json::from_slice(&d.ctl(&["--json", "status"]).stdout).unwrap();
    let variant = status["decision"]["variant"].as_str().unwrap().to_string();
    let o = d.ctl(&["submit", "a fox", "--size", "256x256", "--frames", "9"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(stderr(&o).contains(&format!("run `ltxctl models pull {variant}`")), "{}", stderr(&o));
    let v = ltx_protocol::ModelVariant::parse(&variant).unwrap();
    assert!(stderr(&o).contains(ltx_protocol::catalogue::checkpoint(v)), "{}", stderr(&o));
    let o = d.ctl(&["submit", "a fox", "--size", "256x256", "--frames", "9", "--variant", "distilled"]);
    assert!(stderr(&o).contains("run `ltxctl models pull distilled`") && stderr(&o).contains(CHECKPOINT));
    let o = d.ctl(&["submit", "a fox", "--size", "256x256", "--frames", "9", "--model", "ltx-2.3"]);
    assert!(stderr(&o).contains("run `ltxctl models pull ltx-2.3-distilled`"), "{}", stderr(&o));
    let o = d.ctl(&[
        "submit",
        "a fox",
        "--size",
        "256x256",
        "--frames",
        "9",
        "--variant",
        "dev",
        "--pipeline",
        "one-stage",
    ]);
    assert!(stderr(&o).contains("ltxctl models pull dev --pipeline one-stage"), "{}", stderr(&o));

    // No terminal and no -y: nothing is downloaded.
    let o = d.ctl(&["models", "pull", "distilled"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(stderr(&o).contains("pass -y"), "{}", stderr(&o));
    assert_eq!(hub.served_total(), 0);

    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    assert!(stdout(&o).contains("is installed and verified"), "{}", stdout(&o));
    assert!(stdout(&o).contains(&format!("{CHECKPOINT}: done")), "{}", stdout(&o));
    assert_installed(&hub, &d);
    assert_eq!(hub.served_total(), distilled_bytes(&hub), "every byte exactly once");
    // The LFS files went through the 302 to the file host; the small git files were served directly.
    let log = hub.log();
    assert!(log.iter().any(|l| l.starts_with(&format!("HEAD /{LTX_REPO}/resolve/main/{CHECKPOINT}"))), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("GET /cas/")), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with(&format!("GET /{GEMMA_REPO}/resolve/main/config.json"))), "{log:?}");

    let l = list_json(&d);
    assert_eq!(l["variants"][0]["ready"], true, "{l}");
    let ck = file_state(&l, CHECKPOINT);
    assert_eq!((ck["state"].as_str(), ck["bytes"].as_u64()), (Some("installed"), Some(3 * MB as u64)));
    assert_eq!(ck["verified"], true);
    let plain = stdout(&d.ctl(&["models", "list"]));
    assert!(plain.contains("distilled      ready") && plain.contains("installed, verified"), "{plain}");

    // Installed now: submit passes the check; a second pull downloads nothing.
    assert_eq!(d.ctl(&["submit", "a fox", "--size", "256x256", "--frames", "9"]).status.code(), Some(0));
    let before = hub.served_total();
    let o = d.ctl(&["models", "pull", "distilled"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("is installed"));
    assert_eq!(hub.served_total(), before);

    // verify re-hashes against the Hub; a flipped byte is caught.
    let o = d.ctl(&["models", "verify", "distilled"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains(&format!("ok        {CHECKPOINT}")), "{}", stdout(&o));
    let path = models(&d).join(CHECKPOINT);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[12345] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(file_state(&list_json(&d), CHECKPOINT)["verified"], false);
    let o = d.ctl(&["--json", "models", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let bad = v["files"].as_array().unwrap().iter().find(|r| r["name"] == CHECKPOINT).unwrap();
    assert_eq!(bad["outcome"], "mismatch");
    assert_eq!(bad["expected"].as_str(), Some(hub::sha256_hex(&hub.body(LTX_REPO, CHECKPOINT)).as_str()));

    // rm deletes the variant's files (nothing else is installed, so the shared ones go too).
    let o = d.ctl(&["--json", "models", "rm", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let all = catalogue::needs(ModelVariant::Distilled, ModelVariant::Distilled.default_pipeline());
    assert_eq!(r["removed"].as_array().unwrap().len(), all.len(), "{r}");
    assert_eq!(r["bytes"].as_u64(), Some(distilled_bytes(&hub)));
    assert!(!path.exists() && !models(&d).join(catalogue::GEMMA_DIR).exists());
    assert_eq!(d.ctl(&["submit", "a fox", "--size", "256x256", "--frames", "9"]).status.code(), Some(4));
}

#[test]
fn gated_repo_without_a_token_says_what_to_do() {
    let (_hub, d) = setup(100_000, &[], true);
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = stderr(&o);
    assert!(err.contains("is gated") && err.contains("HF_TOKEN"), "{err}");
    assert!(err.contains("https://huggingface.co/google/gemma-3-12b-it-qat-q4_0-unquantized"), "{err}");
    // The ungated files still arrived.
    assert!(models(&d).join(CHECKPOINT).is_file());
}

#[test]
fn interrupted_download_resumes_without_refetching() {
    let (hub, d) = setup(3 * MB, token(), true);
    hub.faults(|f| f.cut_after = Some(MB as u64));
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    assert_installed(&hub, &d);
    assert!(stdout(&o).contains("retry 1"), "{}", stdout(&o));
    assert!(hub.log().iter().any(|l| l.ends_with(&format!("bytes={MB}-"))), "{:?}", hub.log());
    assert_eq!(served(&hub, LTX_REPO, CHECKPOINT), 3 * MB as u64, "resumed bytes were fetched again");
}

#[test]
fn server_errors_and_stalls_are_retried() {
    let (hub, d) = setup(2 * MB, &[("HF_TOKEN", "hf_test"), ("LTX_E2E_STALL", "1")], true);
    hub.faults(|f| {
        f.fail_next = 2;
        f.stall_after = Some(700_000);
    });
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    let out = stdout(&o);
    assert!(out.contains("server error (HTTP 503"), "{out}");
    assert!(out.contains("stalled: no data for 1s"), "{out}");
    assert_installed(&hub, &d);
    // Resumed where the stall left it (a 1 s stall timer on a loaded machine may also fire once more).
    assert!(hub.log().iter().any(|l| l.ends_with("bytes=700000-")), "{:?}", hub.log());
}

#[test]
fn corrupt_and_unverifiable_downloads_are_refused() {
    let (hub, d) = setup(MB, token(), true);
    let mut ck = HubFile { body: hub.body(LTX_REPO, CHECKPOINT), lfs: true, ..HubFile::default() };
    ck.corrupt = true;
    hub.add(LTX_REPO, CHECKPOINT, ck);
    let up = HubFile { body: hub.body(LTX_REPO, UPSCALER), lfs: true, no_checksum: true, ..HubFile::default() };
    hub.add(LTX_REPO, UPSCALER, up);
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = stderr(&o);
    assert!(err.contains(&format!("checksum mismatch for {CHECKPOINT}")), "{err}");
    assert!(err.contains(&format!("published no sha256 (x-linked-etag) for {LTX_REPO}/{UPSCALER}")), "{err}");
    for f in [CHECKPOINT, UPSCALER] {
        assert!(!models(&d).join(f).exists(), "{f} must not be installed");
    }
    assert_eq!(part_len(&d, CHECKPOINT), 0, "the corrupt partial is deleted");
    assert!(models(&d).join(catalogue::GEMMA_DIR).join("config.json").is_file(), "the good files are kept");
}

#[test]
fn disk_full_is_clear_and_the_partial_resumes() {
    let (hub, mut d) = setup(3 * MB, &[("HF_TOKEN", "hf_test"), ("LTX_TEST_WRITE_QUOTA", "1000000")], true);
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = stderr(&o);
    assert!(err.contains(&format!("{CHECKPOINT}: disk full")), "{err}");
    assert!(err.contains("ltxctl models dir PATH") && err.contains("the partial download is kept"), "{err}");
    let kept = part_len(&d, CHECKPOINT);
    assert!(kept > 0 && kept < 3 * MB as u64, "{kept}");
    assert!(!models(&d).join(CHECKPOINT).exists());
    let l = list_json(&d);
    assert_eq!(
        (file_state(&l, CHECKPOINT)["state"].as_str(), file_state(&l, CHECKPOINT)["bytes"].as_u64()),
        (Some("partial"), Some(kept))
    );

    // Space again (a daemon without the quota): the pull resumes from the partial file.
    d.kill9();
    d.env.retain(|(k, _)| k != "LTX_TEST_WRITE_QUOTA");
    d.spawn();
    d.wait_ready();
    let before = served(&hub, LTX_REPO, CHECKPOINT);
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    assert_installed(&hub, &d);
    assert!(hub.log().iter().any(|l| l.ends_with(&format!("bytes={kept}-"))), "{:?}", hub.log());
    assert_eq!(served(&hub, LTX_REPO, CHECKPOINT) - before, 3 * MB as u64 - kept);
}

#[test]
fn concurrent_pulls_share_one_download() {
    let (hub, d) = setup(3 * MB, token(), true);
    // ≈5 s for the checkpoint: time enough to join it.
    hub.faults(|f| f.throttle = Some(Duration::from_millis(100)));
    let spawn = || {
        d.ctl_cmd(&["--json", "models", "pull", "distilled", "-y"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn();
    wait_until("the first download", Duration::from_secs(60), || {
        assert!(!models(&d).join(CHECKPOINT).exists(), "finished before the second pull could join");
        part_len(&d, CHECKPOINT) > 0
    });
    let b = spawn();
    // The models directory does not move under a running download.
    let o = d.ctl(&["models", "dir", d.dir.path().join("elsewhere").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stderr(&o).contains("downloads into") && stderr(&o).contains(CHECKPOINT), "{}", stderr(&o));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!((a.status.code(), b.status.code()), (Some(0), Some(0)), "{a:?}\n{b:?}");
    let first: serde_json::Value = serde_json::from_str(stdout(&b).lines().next().unwrap()).unwrap();
    let ck = first["files"].as_array().unwrap().iter().find(|f| f["name"] == CHECKPOINT).unwrap();
    assert_eq!(ck["action"], "joined", "{first}");
    // Both followed it to the end.
    for o in [&a, &b] {
        let done = |l: &str| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|e| e["event"] == "download_done" && e["file"] == CHECKPOINT)
        };
        assert!(stdout(o).lines().any(done), "{}", stdout(o));
    }
    assert_installed(&hub, &d);
    assert_eq!(served(&hub, LTX_REPO, CHECKPOINT), 3 * MB as u64, "downloaded once");
}

#[test]
fn daemon_restart_mid_download_resumes() {
    let (hub, mut d) = setup(4 * MB, token(), true);
    hub.faults(|f| f.throttle = Some(Duration::from_millis(25)));
    let pull = d.ctl_cmd(&["models", "pull", "distilled", "-y"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let mut pull = pull.unwrap();
    wait_until("half a megabyte", Duration::from_secs(30), || part_len(&d, CHECKPOINT) >= 512 * 1024);
    d.kill9();
    // The CLI loses its daemon; the partial file stays.
    assert_ne!(pull.wait().unwrap().code(), Some(0));
    let kept = part_len(&d, CHECKPOINT);
    assert!(kept >= 512 * 1024 && kept < 4 * MB as u64);
    hub.faults(|f| f.throttle = None);
    d.spawn();
    d.wait_ready();
    let l = list_json(&d);
    assert_eq!(
        (file_state(&l, CHECKPOINT)["state"].as_str(), file_state(&l, CHECKPOINT)["bytes"].as_u64()),
        (Some("partial"), Some(kept))
    );
    let before = served(&hub, LTX_REPO, CHECKPOINT);
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    assert_installed(&hub, &d);
    assert!(hub.log().iter().any(|l| l.ends_with(&format!("bytes={kept}-"))), "{:?}", hub.log());
    assert_eq!(served(&hub, LTX_REPO, CHECKPOINT) - before, 4 * MB as u64 - kept, "only the rest was fetched");
}

#[test]
fn a_hugging_face_cache_is_reused_not_downloaded() {
    let (hub, mut d) = setup(MB, token(), false);
    let body = hub.body(LTX_REPO, CHECKPOINT);
    let sha = hub::sha256_hex(&body);
    let repo = d.dir.path().join(".cache/huggingface/hub/models--Lightricks--LTX-2");
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots/0123abcd")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    std::fs::write(repo.join("blobs").join(&sha), &body).unwrap();
    std::os::unix::fs::symlink(format!("../../blobs/{sha}"), repo.join("snapshots/0123abcd").join(CHECKPOINT)).unwrap();
    d.spawn();
    d.wait_ready();
    let l = list_json(&d);
    assert_eq!(file_state(&l, CHECKPOINT)["state"], "in_hf_cache", "{l}");
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    assert!(stdout(&o).contains(&format!("{CHECKPOINT}: linked from")), "{}", stdout(&o));
    assert_eq!(served(&hub, LTX_REPO, CHECKPOINT), 0, "the cached file was not downloaded");
    let link = models(&d).join(CHECKPOINT);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_installed(&hub, &d);
    // Verified against the cache blob's name (its sha256), offline.
    let o = d.ctl(&["models", "verify", "distilled"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // rm removes the link, never the user's cache.
    assert!(d.ctl(&["models", "rm", "distilled", "-y"]).status.success());
    assert!(!link.exists() && repo.join("blobs").join(&sha).is_file());
}

#[test]
fn models_dir_switches_at_once_and_is_saved_in_the_config_file() {
    let (_hub, mut d) = setup(MB, token(), true);
    let o = d.ctl(&["models", "dir"]);
    assert_eq!(stdout(&o).trim(), models(&d).display().to_string());
    let new = d.dir.path().join("elsewhere");
    let o = d.ctl(&["--json", "models", "dir", new.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["restart_needed"], false);
    assert_eq!(v["dir"].as_str(), new.to_str());
    assert!(new.is_dir());
    assert_eq!(stdout(&d.ctl(&["models", "dir"])).trim(), new.display().to_string());
    let list: serde_json::Value = serde_json::from_slice(&d.ctl(&["--json", "models", "list"]).stdout).unwrap();
    assert_eq!(list["dir"].as_str(), new.to_str(), "{list}");
    let config = std::fs::read_to_string(&d.config).unwrap();
    assert!(config.contains(&format!("models_dir = {:?}", new.display().to_string())), "{config}");
    assert!(config.contains("shutdown_grace_secs = 5"), "the rest of the file is kept: {config}");
    d.kill9();
    d.spawn();
    d.wait_ready();
    assert_eq!(stdout(&d.ctl(&["models", "dir"])).trim(), new.display().to_string());
    let o = d.ctl(&["models", "dir", "/proc/no/such/dir"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stderr(&o).contains("cannot create /proc/no/such/dir"), "{}", stderr(&o));
}

#[test]
fn a_link_planted_at_a_download_part_is_not_followed() {
    let (hub, d) = setup(MB, token(), true);
    let victim = d.dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::create_dir_all(models(&d)).unwrap();
    let part = PathBuf::from(format!("{}.part", models(&d).join(CHECKPOINT).display()));
    std::os::unix::fs::symlink(&victim, &part).unwrap();
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(held(&victim), "precious", "the download was written through the link");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stderr(&o).contains(&format!("cannot open {}", part.display())), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file of this user"), "{}", stderr(&o));
    // Once the link is gone the pull finishes; the installed files are readable by all, the part is gone.
    std::fs::remove_file(&part).unwrap();
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}\n{}", d.stderr());
    assert_installed(&hub, &d);
    let mode = std::fs::metadata(models(&d).join(CHECKPOINT)).unwrap().permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o644);
}

#[test]
fn models_dir_rewrites_the_config_keeping_its_mode_and_its_link() {
    use std::os::unix::fs::PermissionsExt;
    let (_hub, mut d) = setup(MB, token(), false);
    // The config is a link into the user's dotfiles, mode 0640; a link another user planted waits at the
    // name the rewrite's temporary file once had (`config.toml.part`).
    let real = d.dir.path().join("dotfiles/ltx.toml");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::rename(&d.config, &real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("dotfiles/ltx.toml", &d.config).unwrap();
    let victim = d.dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, d.dir.path().join("config.toml.part")).unwrap();
    d.spawn();
    d.wait_ready();
    let new = d.dir.path().join("elsewhere");
    let o = d.ctl(&["models", "dir", new.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(held(&victim), "precious", "the rewrite went through the planted link");
    assert!(std::fs::symlink_metadata(&d.config).unwrap().file_type().is_symlink(), "the config link was replaced");
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(text.contains(&format!("models_dir = {:?}", new.display().to_string())), "{text}");
    assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640, "the mode was not kept");
    let left: Vec<_> = std::fs::read_dir(real.parent().unwrap()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn a_directory_with_its_own_gemma_split_is_listed_as_it_is() {
    let (hub, d) = setup(MB, token(), true);
    assert_eq!(d.ctl(&["models", "pull", "distilled", "-y"]).status.code(), Some(0));
    // Gemma converted to two shards: the Hub's five go, the directory's own index names the two it has.
    let gemma = models(&d).join(catalogue::GEMMA_DIR);
    for i in 1..=5 {
        std::fs::remove_file(gemma.join(format!("model-0000{i}-of-00005.safetensors"))).unwrap();
    }
    let shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];
    std::fs::write(gemma.join(shards[0]), vec![1u8; 3000]).unwrap();
    std::fs::write(gemma.join(shards[1]), vec![2u8; 2000]).unwrap();
    let index = format!(r#"{{"metadata": {{}}, "weight_map": {{"a": "{}", "b": "{}"}}}}"#, shards[0], shards[1]);
    std::fs::write(models(&d).join(catalogue::GEMMA_INDEX), index).unwrap();

    let l = list_json(&d);
    assert_eq!(l["variants"][0]["ready"], true, "{l}");
    let listed: Vec<(String, u64, bool)> = l["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"].as_str().unwrap().contains("/model-"))
        .map(|f| {
            (
                f["name"].as_str().unwrap().into(),
                {
                    assert_eq!(f["state"], "installed", "{f}");
                    f["bytes"].as_u64().unwrap()
                },
                f["own_split"] == true,
            )
        })
        .collect();
    let g = |s: &str| format!("{}/{s}", catalogue::GEMMA_DIR);
    assert_eq!(listed, [(g(shards[0]), 3000, true), (g(shards[1]), 2000, true)]);
    let plain = stdout(&d.ctl(&["models", "list"]));
    assert!(!plain.contains("of-00005") && plain.contains("installed (the directory's own shard split)"), "{plain}");

    // doctor: nothing "not verified" (the rest was verified at download, the own split cannot be).
    let o = d.ctl_cmd(&["doctor"]).env("LTXD_BIN", &d.bins.daemon).env("LTX_CONFIG", &d.config).output().unwrap();
    let out = stdout(&o);
    assert!(!out.contains("not verified") && !out.contains("of-00005"), "{out}");
    assert!(out.contains("ok    models   Gemma is the directory's own split (2 shards, named by"), "{out}");
    // verify checks what it can, and says which files it cannot.
    let o = d.ctl(&["models", "verify", "distilled"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains(&format!("own       {}: the directory's own shard split", g(shards[1]))), "{out}");
    assert!(out.contains(&format!("ok        {CHECKPOINT}")) && !out.contains("of-00005"), "{out}");
    // A pull downloads nothing; one that lacks a shard of the own split says why it cannot fetch it.
    let before = hub.served_total();
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert!(o.status.success() && stdout(&o).contains("is installed"), "{o:?}");
    assert_eq!(hub.served_total(), before);
    std::fs::remove_file(gemma.join(shards[1])).unwrap();
    let o = d.ctl(&["models", "pull", "distilled", "-y"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(stderr(&o).contains(&format!("{} missing from", g(shards[1]))), "{}", stderr(&o));
    assert!(stderr(&o).contains("not on the Hub"), "{}", stderr(&o));
    assert_eq!(hub.served_total(), before);
    // rm takes the whole directory, the own split included.
    assert!(d.ctl(&["models", "rm", "distilled", "-y"]).status.success());
    assert!(!gemma.exists());
}

/// `models pull --preview` fetches the generation's preview decoder from GitHub's raw host at the pinned commit,
/// without the Hub's token, and refuses bytes that are not the pinned git blob (the test host cannot serve
/// the real file); the variant's own files arrive all the same.
#[test]
fn pull_preview_fetches_from_github_and_checks_the_pinned_blob() {
    let hub = hub::Hub::start();
    let (_unused, d) = setup(100_000, &[("HF_TOKEN", "hf_test"), ("LTX_GITHUB_ENDPOINT", &hub.url)], true);
    let f = catalogue::preview_decoder(ltx_protocol::Generation::Ltx2).expect("LTX-2's preview decoder");
    hub.add(f.repo, f.remote, HubFile { body: hub::bytes(9, 50_000), ..HubFile::default() });
    let o = d.ctl(&["models", "pull", "distilled", "--preview", "-y"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = stderr(&o);
    assert!(err.contains(&format!("checksum mismatch for {}", f.local)), "{err}");
    assert!(err.contains("the catalogue pins the git blob id"), "{err}");
    let want = format!("GET /{}/{}/{}", f.repo, f.revision, f.remote);
    assert!(hub.log().iter().any(|l| l.starts_with(&want)), "{:?}", hub.log());
    assert!(!models(&d).join(f.local).exists() && !models(&d).join(format!("{}.part", f.local)).exists());
    assert!(models(&d).join(CHECKPOINT).is_file(), "the variant's files arrived");
}
