//! At the open-files limit the model check reports that it cannot look, not that the files are missing
//! (which used to send the user to `ltxctl models pull` for files that were there). Its own test binary:
//! the limit is the process's.
use ltx_protocol::catalogue::{self, Component, GEMMA_DIR, GEMMA_INDEX};

#[test]
fn files_that_cannot_be_looked_at_are_not_missing() {
    let dir = tempfile::tempdir().expect("tmp");
    let gemma = dir.path().join(GEMMA_DIR);
    std::fs::create_dir_all(&gemma).expect("mkdir");
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "model-00001-of-00001.safetensors"] {
        std::fs::write(gemma.join(f), b"x").expect("write");
    }
    let index = r#"{"weight_map": {"a": "model-00001-of-00001.safetensors"}}"#;
    std::fs::write(dir.path().join(GEMMA_INDEX), index).expect("index");
    assert!(catalogue::missing_of(dir.path(), &[Component::TextEncoder]).expect("readable").is_empty());

    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        // No new descriptor above stdin/stdout/stderr (those already open stay usable).
        let low = libc::rlimit { rlim_cur: 3, rlim_max: old.rlim_max };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &low), 0);
    }
    let at_limit = catalogue::missing_of(dir.path(), &[Component::TextEncoder]);
    // SAFETY: as above, restoring the limit read before.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
    let err = at_limit.expect_err("at the fd limit the index cannot be read: an error, not missing files");
    assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
}
