//! The committed fuzz corpus (`fuzz/corpus/frame`) is replayed on stable through the same function the
//! fuzz target calls; the seed files are generated here (`LTX_WRITE_CORPUS=1` rewrites them).
use ltx_protocol::frame::{self, MAX_FRAME};
use ltx_protocol::*;
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/frame")
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let enc = |m: ClientMsg| frame::encode(&m).unwrap();
    let hello = enc(ClientMsg::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        client_name: "ltxctl".into(),
        client_version: VERSION.into(),
    }));
    let mut full = GenerationRequest::new("a lighthouse in a storm, waves crashing");
    full.negative_prompt = Some("blurry".into());
    full.pipeline = Pipeline::TwoStage;
    full.variant = ModelVariant::Dev;
    full.seed = Some(1234);
    full.image =
        Some(ImageInput { name: "first.png".into(), bytes: b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(), strength: 0.8 });
    full.output = Some("/tmp/out.mp4".into());
    full.front = true;
    full.keep_alive = Some(KeepAlive::Seconds(300));
    full.guidance = Some(Guidance { stg: Some(0.5), stg_blocks: Some(vec![28, 29]), ..Guidance::default() });
    full.low_memory = true;
    let requests = [
        ("submit_default", Request::Submit(GenerationRequest::new("a cat"))),
        ("submit_full", Request::Submit(full)),
        ("subscribe_job", Request::Subscribe { job: Some(7), previews: true }),
        ("subscribe_all", Request::Subscribe { job: None, previews: false }),
        ("cancel", Request::Cancel { job: 3 }),
        ("cancel_all", Request::CancelAll),
        ("queue", Request::Queue),
        ("pause", Request::Pause),
        ("resume", Request::Resume),
        ("history", Request::History { limit: 20 }),
        ("job", Request::Job { job: 1 }),
        ("ps", Request::Ps),
        ("load", Request::Load { variant: ModelVariant::DistilledFp8, keep_alive: Some(KeepAlive::Forever) }),
        ("unload", Request::Unload { variant: None }),
        ("status", Request::Status),
        ("shutdown", Request::Shutdown),
        ("models_list", Request::ModelsList),
        ("models_pull", Request::ModelsPull { variant: ModelVariant::Dev, pipeline: Some(Pipeline::TwoStage) }),
        ("models_remove", Request::ModelsRemove { variant: ModelVariant::Distilled }),
        ("models_verify", Request::ModelsVerify { variant: None }),
        ("models_dir", Request::ModelsDir { path: Some("/tmp/models".into()) }),
        ("shows_notifications", Request::ShowsNotifications),
        ("models_cancel", Request::ModelsCancel),
    ];
    let mut out = vec![("hello".to_string(), hello.clone())];
    let mut stream = hello.clone();
    for (name, r) in requests {
        let f = enc(ClientMsg::Request(r));
        stream.extend(&f);
        out.push((name.to_string(), f));
    }
    out.push(("stream_all".into(), stream));
    out.push(("oversized_prefix".into(), ((MAX_FRAME + 1) as u32).to_le_bytes().to_vec()));
    out.push(("truncated".into(), hello[..hello.len() - 2].to_vec()));
    out
}

#[test]
fn corpus_seeds_are_committed_and_current() {
    let dir = corpus_dir();
    let write = std::env::var_os("LTX_WRITE_CORPUS").is_some();
    for (name, bytes) in seeds() {
        let path = dir.join(format!("seed_{name}"));
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (LTX_WRITE_CORPUS=1 regenerates)", path.display()));
        assert_eq!(committed, bytes, "{} is stale (LTX_WRITE_CORPUS=1 regenerates)", path.display());
    }
}

#[test]
fn replay_corpus_through_decoder_and_validation() {
    let mut files = 0;
    let mut decoded = 0;
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        decoded += decode_and_validate(&bytes);
        files += 1;
    }
    assert!(files >= 20, "corpus has only {files} files");
    assert!(decoded >= 34, "valid seeds must decode ({decoded} frames)");
}
