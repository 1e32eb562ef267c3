//! MP4 / WAV writer checks with ffprobe/ffmpeg (apt `ffmpeg`, installed by scripts/setup.sh) and by
//! reading the file's boxes: frame count, fps, durations, codecs, pixel format, audio rate/channels,
//! an error-free `ffmpeg -xerror` decode, a test pattern surviving encoding (PSNR ≥ 35 dB), the tone
//! frequency after decoding, and QuickTime's requirements (avc1 + avcC, even yuv420p, moov before
//! mdat, AAC-LC esds, `colr` matching the stream's BT.709 tags).
mod backend;

use backend::held;
use std::{path::Path, process::Command};

use ltx_engine::media::{
    mp4::{body, children, find_path},
    write_wav, Audio, Mp4Writer, VideoSettings,
};
use serde_json::Value;

const W: u32 = 160;
const H: u32 = 96;
const FRAMES: usize = 25;
const FPS: f64 = 24.0;
const RATE: u32 = 24_000;
const TONE: f32 = 440.0;

/// A smooth moving colour pattern (RGB24), frame-major.
fn pattern() -> Vec<u8> {
    let mut rgb = Vec::with_capacity(FRAMES * (W * H * 3) as usize);
    for f in 0..FRAMES {
        for y in 0..H as usize {
            for x in 0..W as usize {
                let t = f as f32 / FRAMES as f32;
                let r = 128.0 + 100.0 * ((x as f32 / 23.0) + 6.0 * t).sin();
                let g = 128.0 + 100.0 * ((y as f32 / 17.0) - 4.0 * t).cos();
                let b = 40.0 + 180.0 * (x + y) as f32 / (W + H) as f32;
                rgb.extend([r as u8, g as u8, b as u8]);
            }
        }
    }
    rgb
}

fn tone(seconds: f64) -> Audio {
    let n = (seconds * RATE as f64) as usize;
    let wave = |phase: f32| {
        (0..n).map(|i| 0.5 * (2.0 * std::f32::consts::PI * TONE * i as f32 / RATE as f32 + phase).sin()).collect()
    };
    Audio { channels: vec![wave(0.0), wave(0.5)], sample_rate: RATE }
}

fn write(path: &Path, audio: Option<&Audio>) {
    let mut writer = Mp4Writer::new(VideoSettings { width: W, height: H, fps: FPS, bitrate: None }).unwrap();
    let rgb = pattern();
    let (first, rest) = rgb.split_at(10 * (W * H * 3) as usize); // two chunks, like a tiled decode
    writer.push_frames(first).unwrap();
    writer.push_frames(rest).unwrap();
    let summary = writer.finish(path, audio).unwrap();
    assert_eq!(summary.frames, FRAMES);
}

fn tool(name: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| panic!("{name} ({e}): run scripts/setup.sh"));
    assert!(out.status.success(), "{name} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn probe(path: &Path) -> Value {
    let p = path.to_str().unwrap();
    let args = ["-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", p];
    serde_json::from_slice(&tool("ffprobe", &args)).unwrap()
}

fn stream<'a>(probe: &'a Value, kind: &str) -> &'a Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream"))
}

fn seconds(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

fn xerror_decode(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-xerror", "-i", path.to_str().unwrap(), "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "ffmpeg -xerror: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn mp4_with_audio_is_valid_and_faithful() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("av.mp4");
    write(&path, Some(&tone(FRAMES as f64 / FPS)));
    let p = path.to_str().unwrap();
    let info = probe(&path);
    let (v, a) = (stream(&info, "video"), stream(&info, "audio"));
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(v["profile"], "Constrained Baseline");
    assert_eq!(v["pix_fmt"], "yuv420p");
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(W as u64), Some(H as u64)));
    assert_eq!(v["r_frame_rate"], "24/1");
    assert_eq!(v["nb_read_frames"], FRAMES.to_string());
    assert_eq!(
        (&v["color_space"], &v["color_primaries"], &v["color_transfer"]),
        (&"bt709".into(), &"bt709".into(), &"bt709".into())
    );
    assert_eq!(v["color_range"], "tv");
    assert_eq!(a["codec_name"], "aac");
    assert_eq!(a["profile"], "LC");
    assert_eq!(a["sample_rate"], RATE.to_string());
    assert_eq!(a["channels"], 2);
    let (vd, ad) = (seconds(&v["duration"]), seconds(&a["duration"]));
    assert!((vd - FRAMES as f64 / FPS).abs() < 1e-3, "video duration {vd}");
    assert!(
        (ad - vd).abs() <= 1024.0 / RATE as f64 + 1e-3,
        "audio {ad} s vs video {vd} s: more than one AAC frame apart"
    );
    xerror_decode(&path);

    // the pattern survives encoding: PSNR over all frames, decoded with the tagged BT.709 matrix
    let decoded = tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            p,
            "-vf",
            "scale=in_color_matrix=bt709:in_range=tv",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
    );
    let original = pattern();
    assert_eq!(decoded.len(), original.len());
    let mse = decoded.iter().zip(&original).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum::<f64>()
        / original.len() as f64;
    let psnr = 10.0 * (255.0f64.powi(2) / mse).log10();
    eprintln!("PSNR {psnr:.1} dB");
    assert!(psnr >= 35.0, "PSNR {psnr:.1} dB < 35 dB");

    // the tone comes back at its frequency (zero crossings over the middle of the first channel)
    let pcm = tool("ffmpeg", &["-v", "error", "-i", p, "-f", "f32le", "-ac", "2", "-"]);
    let left: Vec<f32> = pcm.chunks_exact(8).map(|s| f32::from_le_bytes([s[0], s[1], s[2], s[3]])).collect();
    let mid = &left[left.len() / 4..3 * left.len() / 4];
    let crossings = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    let freq = crossings as f32 * RATE as f32 / mid.len() as f32;
    eprintln!("decoded tone {freq:.1} Hz");
    assert!((freq - TONE).abs() < 5.0, "tone {freq} Hz");
    let peak = mid.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.5).abs() < 0.05, "tone amplitude {peak}");
}

#[test]
fn mp4_boxes_are_quicktime_safe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qt.mp4");
    write(&path, Some(&tone(1.0)));
    let bytes = std::fs::read(&path).unwrap();
    let top: Vec<[u8; 4]> = children(&bytes, 0..bytes.len()).into_iter().map(|(k, _)| k).collect();
    let (moov, mdat) = (top.iter().position(|k| k == b"moov"), top.iter().position(|k| k == b"mdat"));
    assert!(moov.unwrap() < mdat.unwrap(), "moov before mdat: {top:?}");
    let stsd: [&[u8; 4]; 6] = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"];
    let avc1 = find_path(&bytes, &[&stsd[..], &[b"avc1"]].concat()).expect("avc1 sample entry").pop().unwrap();
    let inside: Vec<([u8; 4], _)> = children(&bytes, body(b"avc1", &avc1));
    let kinds: Vec<&[u8; 4]> = inside.iter().map(|(k, _)| k).collect();
    assert!(kinds.contains(&b"avcC"), "avcC in avc1");
    let colr = &inside.iter().find(|(k, _)| k == b"colr").expect("colr in avc1").1;
    // nclx, primaries / transfer / matrix = 1 (BT.709), full_range 0 - as the stream's VUI says
    assert_eq!(&bytes[colr.start + 8..colr.end], &[b'n', b'c', b'l', b'x', 0, 1, 0, 1, 0, 1, 0]);
    let width = u16::from_be_bytes([bytes[avc1.start + 32], bytes[avc1.start + 33]]);
    let height = u16::from_be_bytes([bytes[avc1.start + 34], bytes[avc1.start + 35]]);
    assert_eq!((width % 2, height % 2, width as u32, height as u32), (0, 0, W, H));
    let esds = find_path(&bytes, &[&stsd[..], &[b"mp4a", b"esds"]].concat()).expect("mp4a esds").pop().unwrap();
    // DecoderSpecificInfo (tag 5): AudioSpecificConfig's first 5 bits = object type 2 (AAC-LC)
    let es = &bytes[esds.start + 12..esds.end];
    let dsi = es.windows(2).position(|w| w[0] == 0x05).expect("DecoderSpecificInfo");
    let asc = es[dsi + 1..].iter().skip_while(|b| **b & 0x80 != 0).nth(1).expect("AudioSpecificConfig");
    assert_eq!(asc >> 3, 2, "AAC-LC object type");
}

#[test]
fn video_only_mp4_has_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.mp4");
    write(&path, None);
    let info = probe(&path);
    assert_eq!(info["streams"].as_array().unwrap().len(), 1);
    assert_eq!(stream(&info, "video")["nb_read_frames"], FRAMES.to_string());
    xerror_decode(&path);
}

#[test]
fn odd_sizes_and_bad_rates_are_refused() {
    assert!(Mp4Writer::new(VideoSettings { width: 161, height: 96, fps: 24.0, bitrate: None }).is_err());
    assert!(Mp4Writer::new(VideoSettings { width: 160, height: 96, fps: 0.0, bitrate: None }).is_err());
    let mut writer = Mp4Writer::new(VideoSettings { width: W, height: H, fps: FPS, bitrate: None }).unwrap();
    assert!(writer.push_frames(&[0; 7]).is_err(), "partial frame");
}

#[test]
fn writers_never_write_through_a_planted_link() {
    // A link another user planted at the output name: the MP4 writer refuses it (it writes a new file the
    // caller places), the WAV writer replaces the link itself; the linked file is never written.
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let (mp4, wav) = (dir.path().join("out.mp4"), dir.path().join("out.wav"));
    std::os::unix::fs::symlink(&victim, &mp4).unwrap();
    std::os::unix::fs::symlink(&victim, &wav).unwrap();
    let mut writer = Mp4Writer::new(VideoSettings { width: W, height: H, fps: FPS, bitrate: None }).unwrap();
    writer.push_frames(&pattern()).unwrap();
    let res = writer.finish(&mp4, None);
    assert_eq!(held(&victim), "precious", "the MP4 writer wrote through the link");
    assert!(res.is_err(), "an existing name is refused");
    write_wav(&wav, &tone(0.1)).unwrap();
    assert_eq!(held(&victim), "precious", "the WAV writer wrote through the link");
    assert!(std::fs::symlink_metadata(&wav).unwrap().is_file());
    // A fresh MP4 is private until the caller places it.
    let fresh = dir.path().join("fresh.mp4");
    write(&fresh, None);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&fresh).unwrap().permissions()) & 0o777,
        0o600
    );
}

#[test]
fn wav_holds_the_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.wav");
    write_wav(&path, &tone(1.5)).unwrap();
    let info = probe(&path);
    let a = stream(&info, "audio");
    assert_eq!(a["codec_name"], "pcm_s16le");
    assert_eq!(a["sample_rate"], RATE.to_string());
    assert_eq!(a["channels"], 2);
    assert!((seconds(&a["duration"]) - 1.5).abs() < 1e-3);
    xerror_decode(&path);
}

/// The whole output path on the tiny fixtures: tiled decode streamed chunk by chunk into the MP4
/// writer, the audio latent through the audio VAE and vocoder, muxed at the request's fps.
#[test]
fn decoded_latents_stream_into_an_mp4() {
    use ltx_engine::{
        audio_vae::{decode_audio, AudioDecoder, Vocoder},
        checkpoint::Checkpoint,
        video_vae::{decoder::to_rgb24, tiling::tiled_decode, DecodeOptions, TilingConfig, VideoDecoder},
    };
    use mlx_rs::Dtype;
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let vae = Checkpoint::open(fixtures.join("video_vae/tiny_vae.safetensors")).unwrap();
    let decoder = VideoDecoder::from_checkpoint(&vae, Dtype::Float32).unwrap();
    let latent =
        Checkpoint::open(fixtures.join("video_vae/goldens.safetensors")).unwrap().tensor("tiled.latent").unwrap();
    let mut writer = Mp4Writer::new(VideoSettings { width: 96, height: 96, fps: 25.0, bitrate: None }).unwrap();
    let tiles = TilingConfig { spatial: Some((64, 32)), temporal: Some((24, 8)) };
    tiled_decode(&decoder, &latent, &tiles, &DecodeOptions { seed: 7, ..Default::default() }, |chunk| {
        writer.push_frames(&to_rgb24(&chunk)?).map_err(|e| ltx_engine::video_vae::VaeError::Input(e.to_string()))
    })
    .unwrap();

    let audio_ck = Checkpoint::open(fixtures.join("audio_vae/tiny_audio.safetensors")).unwrap();
    let (audio_decoder, vocoder) = (
        AudioDecoder::from_checkpoint(&audio_ck, Dtype::Float32).unwrap(),
        Vocoder::from_checkpoint(&audio_ck, Dtype::Float32).unwrap(),
    );
    let audio_latent =
        Checkpoint::open(fixtures.join("audio_vae/goldens.safetensors")).unwrap().tensor("decoder.latent").unwrap();
    let wave = decode_audio(&audio_latent, &audio_decoder, &vocoder).unwrap();
    wave.eval().unwrap();
    let audio = Audio::from_planar(wave.as_slice::<f32>(), 2, 24_000).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decoded.mp4");
    let summary = writer.finish(&path, Some(&audio)).unwrap();
    assert_eq!(summary.frames, 25);
    let info = probe(&path);
    assert_eq!(stream(&info, "video")["nb_read_frames"], "25");
    assert_eq!(stream(&info, "video")["r_frame_rate"], "25/1");
    assert_eq!(stream(&info, "audio")["channels"], 2);
    xerror_decode(&path);
}

/// LTX-2.3's vocoder (BigVGAN v2 + bandwidth extension) reports 48 kHz and the MP4 carries that rate: the
/// tiny 2.3 vocoder's waveform muxed at `Vocoder::sample_rate`, read back from ffprobe and from the `mp4a`
/// sample entry (16.16 sample rate) and the AudioSpecificConfig (sampling frequency index 3 = 48 kHz).
#[test]
fn bwe_vocoder_audio_is_muxed_at_48khz() {
    use ltx_engine::{audio_vae::Vocoder, checkpoint::Checkpoint};
    use mlx_rs::{random, Array, Dtype};
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let ck = Checkpoint::open(fixtures.join("audio_vae/tiny_vocoder23.safetensors")).unwrap();
    let vocoder = Vocoder::from_checkpoint(&ck, Dtype::Float32).unwrap();
    assert_eq!(vocoder.sample_rate(), 48_000);
    // 200 mel frames -> 2000 samples at 16 kHz -> 6000 at 48 kHz = 0.125 s = 3 frames at 24 fps.
    let mel = random::normal::<f32>(&[1, 2, 200, 64], None, None, &random::key(3).unwrap()).unwrap();
    let wave = vocoder.forward(&mel.subtract(Array::from_f32(2.0)).unwrap()).unwrap();
    assert_eq!(wave.shape(), &[1, 2, 6000]);
    let wave = wave.contiguous().unwrap();
    wave.eval().unwrap();
    let audio = Audio::from_planar(wave.as_slice::<f32>(), 2, vocoder.sample_rate()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("48k.mp4");
    let mut writer = Mp4Writer::new(VideoSettings { width: W, height: H, fps: FPS, bitrate: None }).unwrap();
    writer.push_frames(&pattern()[..3 * (W * H * 3) as usize]).unwrap();
    let summary = writer.finish(&path, Some(&audio)).unwrap();
    assert_eq!(summary.frames, 3);
    let info = probe(&path);
    let a = stream(&info, "audio");
    assert_eq!(
        (a["codec_name"].as_str(), a["sample_rate"].as_str(), &a["channels"]),
        (Some("aac"), Some("48000"), &2.into())
    );
    assert!((seconds(&a["duration"]) - 0.125).abs() <= 1024.0 / 48_000.0 + 1e-3, "{}", a["duration"]);
    xerror_decode(&path);

    let bytes = std::fs::read(&path).unwrap();
    let stsd: [&[u8; 4]; 6] = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"];
    let mp4a = find_path(&bytes, &[&stsd[..], &[b"mp4a"]].concat()).expect("mp4a sample entry").pop().unwrap();
    let rate = u32::from_be_bytes(bytes[mp4a.start + 32..mp4a.start + 36].try_into().unwrap()) >> 16;
    assert_eq!(rate, 48_000, "mp4a sample rate");
    let esds = find_path(&bytes, &[&stsd[..], &[b"mp4a", b"esds"]].concat()).expect("mp4a esds").pop().unwrap();
    let es = &bytes[esds.start + 12..esds.end];
    let dsi = es.windows(2).position(|w| w[0] == 0x05).expect("DecoderSpecificInfo");
    let mut asc = es[dsi + 1..].iter().skip_while(|b| **b & 0x80 != 0).skip(1);
    let (b0, b1) = (*asc.next().unwrap(), *asc.next().unwrap());
    assert_eq!(((b0 & 0x07) << 1) | (b1 >> 7), 3, "AudioSpecificConfig sampling frequency index (48 kHz)");
}
