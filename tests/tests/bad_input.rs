//! Hostile and broken clients: the daemon answers with typed error frames, keeps serving others, never panics.
use ltx_e2e::*;
use ltx_protocol::frame::{self, MAX_FRAME};
use ltx_protocol::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn raw(d: &Daemon) -> UnixStream {
    let s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// Reads frames until the daemon closes; returns the messages.
fn read_all(mut s: UnixStream) -> Vec<ServerMsg> {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(Some((m, used))) = frame::decode::<ServerMsg>(&buf[at..]) {
        out.push(m);
        at += used;
    }
    out
}

fn hello(version: u32) -> Vec<u8> {
    frame::encode(&ClientMsg::Hello(Hello {
        protocol_version: version,
        client_name: "raw".into(),
        client_version: "0".into(),
    }))
    .unwrap()
}

fn error_of(msgs: &[ServerMsg]) -> &DaemonError {
    match msgs.last() {
        Some(ServerMsg::Error(e)) => e,
        other => panic!("expected an error frame, got {other:?}"),
    }
}

#[tokio::test]
async fn broken_frames_get_typed_errors_and_others_keep_working() {
    let d = Daemon::start(bins!());
    // A well-behaved client stays connected through all of this.
    let mut good = d.client().await;
    let job = submit(&mut good, req("survivor steps=2")).await;

    let check = |d: &Daemon, bytes: Vec<u8>, close_write: bool| {
        let mut s = raw(d);
        let _ = s.write_all(&bytes);
        if close_write {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        read_all(s)
    };
    // Random bytes (a deterministic generator, many sizes).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [1usize, 3, 4, 5, 17, 100, 4096] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let msgs = check(&d, bytes, true);
        assert!(msgs.is_empty() || matches!(msgs.last(), Some(ServerMsg::Error(_))), "{msgs:?}");
    }
    // Oversized length prefix: refused before allocating.
    let msgs = check(&d, u32::MAX.to_le_bytes().to_vec(), false);
    assert!(matches!(error_of(&msgs), DaemonError::BadFrame(m) if m.contains("exceeds")), "{msgs:?}");
    let msgs = check(&d, ((MAX_FRAME + 1) as u32).to_le_bytes().to_vec(), false);
    assert!(matches!(error_of(&msgs), DaemonError::BadFrame(_)));
    // Truncated frame: prefix says 100 bytes, 10 arrive, then EOF.
    let mut t = 100u32.to_le_bytes().to_vec();
    t.extend([0u8; 10]);
    let msgs = check(&d, t, true);
    assert!(msgs.is_empty() || matches!(error_of(&msgs), DaemonError::BadFrame(m) if m.contains("middle")), "{msgs:?}");
    // Garbage payload with a valid prefix.
    let mut g = 8u32.to_le_bytes().to_vec();
    g.extend([0xff; 8]);
    assert!(matches!(error_of(&check(&d, g, true)), DaemonError::BadFrame(_)));
    // Wrong protocol version: the error names both versions.
    let msgs = check(&d, hello(999), false);
    let e = error_of(&msgs);
    assert!(matches!(e, DaemonError::VersionMismatch { client: 999, daemon: PROTOCOL_VERSION, .. }), "{e:?}");
    assert!(e.to_string().contains("v999") && e.to_string().contains(&format!("v{PROTOCOL_VERSION}")), "{e}");
    // A request before Hello.
    let msgs = check(&d, frame::encode(&ClientMsg::Request(Request::Status)).unwrap(), false);
    assert_eq!(error_of(&msgs), &DaemonError::HandshakeRequired);
    // Garbage after a good handshake.
    let mut after = hello(PROTOCOL_VERSION);
    after.extend(3u32.to_le_bytes());
    after.extend([0xfe, 0xfe, 0xfe]);
    let msgs = check(&d, after, true);
    assert!(matches!(msgs.first(), Some(ServerMsg::Welcome(_))));
    assert!(matches!(error_of(&msgs), DaemonError::BadFrame(_)));
    // A client that connects and says nothing does not block anyone (it is timed out later).
    let _silent = raw(&d);

    let evs = events(&mut good, job).await;
    assert!(matches!(evs.last().unwrap().kind, EventKind::Completed { .. }));
    assert!(matches!(good.request(Request::Status).await.unwrap(), Reply::Status(_)));
    assert!(!d.stderr().contains("panicked"), "{}", d.stderr());
}

#[tokio::test]
async fn every_invalid_field_is_a_typed_error() {
    let d = Daemon::start(bins!());
    let mut c = d.client().await;
    let outdir = d.dir.path().join("o");
    std::fs::create_dir_all(&outdir).unwrap();
    std::fs::write(outdir.join("taken.mp4"), b"x").unwrap();
    type Edit = Box<dyn Fn(&mut GenerationRequest)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("prompt is empty", Box::new(|r| r.prompt = "  ".into())),
        ("prompt is 4001", Box::new(|r| r.prompt = "x".repeat(4001))),
        ("negative prompt", Box::new(|r| r.negative_prompt = Some("x".repeat(5000)))),
        (
            "width must be a multiple of 64 from 64 to 2048 for the distilled pipeline; got 250 (nearest: 192 or 256)",
            Box::new(|r| r.width = 250),
        ),
        (
            "width must be a multiple of 32 from 64 to 2048 for the one-stage pipeline; got 250 (nearest: 224 or 256)",
            Box::new(|r| {
                (r.pipeline, r.variant, r.steps, r.width) = (Pipeline::OneStage, ModelVariant::Dev, 40, 250);
            }),
        ),
        (
            "runs the distilled weights (variant distilled or distilled-fp8), not dev",
            Box::new(|r| r.variant = ModelVariant::Dev),
        ),
        ("fixed 8-step schedule", Box::new(|r| r.steps = 20)),
        ("runs the dev weights", Box::new(|r| r.pipeline = Pipeline::OneStage)),
        (
            "height must be a multiple of 64 from 64 to 2048 for the distilled pipeline; got 4096 (nearest: 2048)",
            Box::new(|r| r.height = 4096),
        ),
        (
            "for the two-stage pipeline; got 288 (nearest: 256 or 320)",
            Box::new(|r| {
                r.pipeline = Pipeline::TwoStage;
                r.width = 288
            }),
        ),
        ("frames must be 8k+1 from 9 to 257 (9, 17, …, 257); got 10 (nearest: 9 or 17)", Box::new(|r| r.frames = 10)),
        ("got 1025 (nearest: 257)", Box::new(|r| r.frames = 1025)),
        ("got 1 (nearest: 9)", Box::new(|r| r.frames = 1)),
        (
            "output directory /nonexistent/dir does not exist",
            Box::new(|r| r.output = Some("/nonexistent/dir/x.mp4".into())),
        ),
        ("fps must be between", Box::new(|r| r.fps = 0)),
        ("steps must be between", Box::new(|r| r.steps = 0)),
        ("guidance scale", Box::new(|r| r.guidance_scale = f32::INFINITY)),
        (
            "not a PNG, JPEG or WebP",
            Box::new(|r| r.image = Some(ImageInput { name: "a.gif".into(), bytes: b"GIF89a".to_vec(), strength: 1.0 })),
        ),
        (
            "image strength",
            Box::new(|r| {
                r.image =
                    Some(ImageInput { name: "a.png".into(), bytes: b"\x89PNG\r\n\x1a\n".to_vec(), strength: -1.0 })
            }),
        ),
        ("must be absolute", Box::new(|r| r.output = Some("relative.mp4".into()))),
        ("must end in .mp4", Box::new(|r| r.output = Some("/tmp/x.mov".into()))),
        ("never overwritten", {
            let p = outdir.join("taken.mp4");
            Box::new(move |r| r.output = Some(p.clone()))
        }),
        ("not writable", Box::new(|r| r.output = Some("/proc/out.mp4".into()))),
        // No visible character: NULs, control characters, zero-width spaces.
        ("the prompt is empty", Box::new(|r| r.prompt = "\0\0\u{7}\u{1b}".into())),
        ("the prompt is empty", Box::new(|r| r.prompt = "\u{200b}\u{feff} \0".into())),
        ("contains a NUL byte", Box::new(|r| r.output = Some("/tmp/a\0b.mp4".into()))),
        (
            "is 15x9 pixels; each side must be at least 16",
            Box::new(|r| {
                let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
                png.extend([0, 0, 0, 15, 0, 0, 0, 9, 8, 2, 0, 0, 0]);
                r.image = Some(ImageInput { name: "tiny.png".into(), bytes: png, strength: 1.0 })
            }),
        ),
        (
            "keep-alive of 4611686018427387904s is longer than the limit of 31536000s",
            Box::new(|r| r.keep_alive = Some(KeepAlive::Seconds(4611686018427387904))),
        ),
    ];
    for (want, f) in &cases {
        let mut r = req("ok");
        f(&mut r);
        let err = c.request(Request::Submit(r)).await.unwrap_err();
        let ltx_protocol::client::ClientError::Daemon(DaemonError::Invalid(v)) = &err else {
            panic!("{want}: {err:?}")
        };
        assert!(v.to_string().contains(want), "{want}: {v}");
    }
    // Unknown ids are typed too, and the daemon still serves.
    assert!(matches!(
        c.request(Request::Job { job: 12345 }).await.unwrap_err(),
        ltx_protocol::client::ClientError::Daemon(DaemonError::NotFound(12345))
    ));
    let Reply::Queue(q) = c.request(Request::Queue).await.unwrap() else { panic!() };
    assert!(q.pending.is_empty() && q.running.is_none(), "nothing invalid was queued");
    assert!(!std::path::Path::new("/nonexistent").exists(), "a refused output directory was created");
}

#[tokio::test]
async fn full_queue_answers_busy() {
    let d = Daemon::with(bins!(), Opts { extra_config: "queue_size = 2".into(), ..Opts::default() });
    let mut c = d.client().await;
    let gate = d.gate("never");
    let mut sub = d.client().await;
    sub.request(Request::Subscribe { job: None, previews: false }).await.unwrap();
    let running = submit(&mut c, req(&format!("held gate={}", gate.display()))).await;
    wait_for(&mut sub, running, |k| matches!(k, EventKind::Started)).await;
    submit(&mut c, req("one")).await;
    submit(&mut c, req("two")).await;
    let err = c.request(Request::Submit(req("three"))).await.unwrap_err();
    assert!(matches!(err, ltx_protocol::client::ClientError::Daemon(DaemonError::Busy { capacity: 2 })), "{err:?}");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_without_stalling_others() {
    let d = Daemon::start(bins!());
    // Subscribe to everything and never read again.
    let mut lazy = raw(&d);
    lazy.write_all(&hello(PROTOCOL_VERSION)).unwrap();
    lazy.write_all(&frame::encode(&ClientMsg::Request(Request::Subscribe { job: None, previews: true })).unwrap())
        .unwrap();
    let mut c = d.client().await;
    // Enough preview bytes to fill the socket buffer, then the per-client queue.
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(submit(&mut c, req("flood steps=200 ms=0 preview_kb=64")).await);
    }
    for j in jobs {
        let evs = tokio::time::timeout(Duration::from_secs(30), events(&mut c, j)).await.expect("worker stalled");
        assert!(matches!(evs.last().unwrap().kind, EventKind::Completed { .. }));
    }
    let t = std::time::Instant::now();
    while !d.stderr().contains("dropping a slow client") {
        assert!(t.elapsed() < Duration::from_secs(10), "slow client not dropped:\n{}", d.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(lazy);
}
