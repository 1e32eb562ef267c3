//! Parity of the audio VAE decoder and the HiFi-GAN vocoder with ltx-core 1.0.0 (tiny config of
//! ltx2-architecture.md §9: decoder ch 16, ch_mult (1,2,4), one res block, z 1; vocoder rates [2, 2],
//! kernels [4, 4], resblock kernel 3 with dilations (1,3,5), width 32). Weights and configs go through
//! the real loader (`audio_vae.` / `vocoder.` prefixes, ConvTranspose1d layout conversion).
//! Error measure `max|got - want| / max|want|`, tolerance 1e-4 (f32 goldens).
mod backend;
mod parity;

use std::path::PathBuf;

use ltx_engine::{
    audio_vae::{decode_audio, AudioDecoder, Vocoder},
    checkpoint::Checkpoint,
    config::{VocoderConfig, VocoderSection},
};
use mlx_rs::{ops, Array, Dtype};

const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio_vae").join(name)
}

fn golden(name: &str) -> Array {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    Checkpoint::open(fixture("goldens.safetensors")).unwrap().tensor(name).unwrap()
}

fn values(a: &Array) -> Vec<f32> {
    let a = ops::reshape(a.as_dtype(Dtype::Float32).expect("cast"), &[-1]).expect("flat");
    a.eval().expect("eval");
    a.as_slice::<f32>().to_vec()
}

fn check(got: &Array, want: &Array, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (values(got), values(want));
    let err = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
        / w.iter().map(|b| b.abs()).fold(0.0, f32::max);
    eprintln!("{what}: rel err {err:.2e}");
    let tol = backend::tol(TOL as f64) as f32;
    assert!(err <= tol, "{what}: relative error {err:e} > {tol:e}");
}

fn models() -> (AudioDecoder, Vocoder) {
    let ck = Checkpoint::open(fixture("tiny_audio.safetensors")).unwrap();
    (
        AudioDecoder::from_checkpoint(&ck, Dtype::Float32).unwrap(),
        Vocoder::from_checkpoint(&ck, Dtype::Float32).unwrap(),
    )
}

#[test]
fn audio_decoder_matches_ltx_core() {
    let (decoder, _) = models();
    let mel = decoder.forward(&golden("decoder.latent")).unwrap();
    assert_eq!(mel.shape(), &[1, 2, 4 * 5 - 3, 64], "T -> 4T-3 frames, 16 -> 64 mel bins");
    check(&mel, &golden("decoder.mel"), "audio decoder");
}

#[test]
fn vocoder_matches_ltx_core() {
    let (_, vocoder) = models();
    check(&vocoder.forward(&golden("vocoder.mel")).unwrap(), &golden("vocoder.wave"), "vocoder");
}

#[test]
fn decode_audio_matches_ltx_core() {
    let (decoder, vocoder) = models();
    let wave = decode_audio(&golden("decoder.latent"), &decoder, &vocoder).unwrap();
    let want = golden("decode_audio.wave");
    check(&wave.reshape(want.shape()).unwrap(), &want, "decode_audio");
}

#[test]
fn production_vocoder_upsamples_240x_to_24khz() {
    let config: VocoderConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(config.upsample_rates.iter().product::<u32>(), 240);
    let vocoder = Vocoder::new(&VocoderSection::Plain(config)).unwrap();
    assert_eq!(vocoder.sample_rate(), 24_000);
    let amp: VocoderConfig = serde_json::from_str(r#"{"resblock": "AMP1", "activation": "snakebeta"}"#).unwrap();
    assert!(Vocoder::new(&VocoderSection::Plain(amp)).is_err(), "as in ltx-core, BigVGAN only with a `bwe` section");
}

#[path = "audio_vae/ltx23.rs"]
mod ltx23;
