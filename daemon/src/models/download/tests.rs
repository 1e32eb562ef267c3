//! The downloader's own checks: hashes, etags, backoff, and a GitHub file end to end against a local host.
use super::*;
use ltx_protocol::catalogue::Component;
use ltx_protocol::rules::Generation;
use std::io::{BufRead, BufReader};

/// A raw-file host serving `body` at every path (HEAD and GET, no ranges); the requests' first lines and
/// whether any carried a token.
fn raw_host(body: Vec<u8>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                if line.to_ascii_lowercase().starts_with("authorization") {
                    log.lock().unwrap().push("authorization".into());
                }
                line.clear();
            }
            log.lock().unwrap().push(first.trim().to_string());
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = conn.write_all(head.as_bytes());
            if first.starts_with("GET") {
                let _ = conn.write_all(&body);
            }
        }
    });
    (url, seen)
}

fn github_file(git_blob: &'static str) -> ModelFile {
    ModelFile {
        component: Component::PreviewDecoder(Generation::Ltx2),
        repo: "owner/repo",
        revision: "0123abcd",
        remote: "safetensors/tiny.safetensors",
        local: "taehv/tiny.safetensors",
        size: 1,
        lfs: false,
        sha256: None,
        source: Source::GitHub { git_blob },
    }
}

#[test]
fn github_files_come_from_the_pinned_commit_and_must_match_their_git_blob_id() {
    let body = b"preview decoder weights".repeat(1000);
    let (url, seen) = raw_host(body.clone());
    let models = tempfile::tempdir().unwrap();
    let p = models.path().join("blob");
    std::fs::write(&p, &body).unwrap();
    let blob: &'static str = hash_file(&p, true).unwrap().git_sha1.unwrap().leak();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let hf = HfConfig {
        endpoint: "http://127.0.0.1:9".into(),
        token: Some("hf_secret".into()),
        cache: models.path().join("hf"),
        stall: Duration::from_secs(5),
        github: url,
    };
    let ctx = Ctx { client, hf, dir: models.path().to_path_buf() };
    let done = rt.block_on(fetch(&ctx, &github_file(blob), &Active::default(), &|_| {})).map_err(|f| f.message);
    let done = done.expect("downloaded");
    assert_eq!(std::fs::read(models.path().join("taehv/tiny.safetensors")).unwrap(), body);
    assert_eq!((done.bytes, done.sha256), (body.len() as u64, hash_file(&p, false).unwrap().sha256));
    let log = seen.lock().unwrap().clone();
    assert!(log.contains(&"HEAD /owner/repo/0123abcd/safetensors/tiny.safetensors HTTP/1.1".to_string()), "{log:?}");
    assert!(!log.contains(&"authorization".to_string()), "the Hub's token never goes to GitHub");

    // Bytes that are not the pinned blob: refused, nothing left behind.
    let other = github_file("ce013625030ba8dba906f756967f9e9ca394464a");
    let other = ModelFile { local: "taehv/other.safetensors", ..other };
    let e = rt.block_on(fetch(&ctx, &other, &Active::default(), &|_| {})).err().expect("refused").message;
    assert!(e.contains("checksum mismatch for taehv/other.safetensors") && e.contains("pins the git blob id"), "{e}");
    assert!(!models.path().join("taehv/other.safetensors").exists());
    assert!(!models.path().join("taehv/other.safetensors.part").exists());
}

#[test]
fn git_blob_ids_and_etags() {
    // `git hash-object` of "hello\n".
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    std::fs::write(&p, b"hello\n").unwrap();
    let h = hash_file(&p, true).unwrap();
    assert_eq!(h.git_sha1.as_deref(), Some("ce013625030ba8dba906f756967f9e9ca394464a"));
    assert_eq!(h.sha256, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    assert_eq!(etag_value("W/\"ABC\""), "abc");
    assert!(is_hex(&"a".repeat(64), 64) && !is_hex("xyz", 3));
    assert_eq!(backoff(1), Duration::from_millis(500));
    assert_eq!(backoff(3), Duration::from_secs(2));
    assert_eq!(backoff(30), MAX_BACKOFF);
}
