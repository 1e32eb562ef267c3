//! The checkpoint loader on small safetensors files written here: every dtype, metadata configs, the
//! PyTorch→MLX convolution layout, zero-copy mapping, and the errors a person gets for bad files.
use std::{collections::HashMap, path::Path};

use ltx_engine::{
    checkpoint::{Header, LoadError},
    config::{ConfigError, UpsamplerConfig, VocoderSection},
    Checkpoint, LoadOptions,
};
use mlx_rs::{
    builder::Builder,
    macros::ModuleParameters,
    module::Param,
    nn::{Conv3d, Conv3dBuilder, ConvTranspose1d, ConvTranspose1dBuilder, Linear, LinearBuilder},
    Array, Dtype,
};
use safetensors::{tensor::TensorView, Dtype as St};

/// One tensor to write: dtype, shape, raw little-endian bytes.
type Raw = (St, Vec<usize>, Vec<u8>);

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn write(path: &Path, tensors: &[(&str, Raw)], metadata: Option<HashMap<String, String>>) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, (dtype, shape, data))| (name.to_string(), TensorView::new(*dtype, shape.clone(), data).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, metadata, path).unwrap();
}

fn f32_tensor(shape: &[usize], seed: f32) -> Raw {
    let n: usize = shape.iter().product();
    (St::F32, shape.to_vec(), f32_bytes(&(0..n).map(|i| seed + i as f32 * 0.25).collect::<Vec<_>>()))
}

fn config_meta(json: &str) -> Option<HashMap<String, String>> {
    Some(HashMap::from([("config".to_string(), json.to_string())]))
}

const LTX_CONFIG: &str = r#"{
  "transformer": {"num_layers": 2},
  "vae": {"dims": 3, "latent_channels": 8, "patch_size": 4, "decoder_blocks": [["res_x", {"num_layers": 1}], ["compress_all", {"residual": true, "multiplier": 2}], ["res_x", 2]], "timestep_conditioning": true, "future_key": 1},
  "audio_vae": {"model": {"params": {"ddconfig": {"ch": 16, "ch_mult": [1, 2, 4], "z_channels": 1, "mid_block_add_attention": false, "attn_resolutions": []}, "sampling_rate": 16000}}, "preprocessing": {"stft": {"hop_length": 160}, "mel": {"n_mel_channels": 64}}},
  "vocoder": {"upsample_rates": [2, 2], "upsample_kernel_sizes": [4, 4], "upsample_initial_channel": 32, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]]}
}"#;

fn values(a: &Array) -> Vec<f32> {
    let a = a.as_dtype(Dtype::Float32).unwrap().reshape(&[-1]).unwrap();
    a.eval().unwrap();
    a.as_slice::<f32>().to_vec()
}

#[test]
fn every_dtype_loads_with_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dtypes.safetensors");
    let vals = [0.5f32, -1.25, 3.0, 0.0];
    let bf16: Vec<u8> = vals.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect();
    let f16: Vec<u8> = vals.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
    // E4M3: 0x38 = 1.0, 0xc0 = -2.0, 0x01 = 2^-9 (subnormal), 0x7e = 448
    let fp8 = vec![0x38u8, 0xc0, 0x01, 0x7e];
    write(
        &path,
        &[
            ("a.bf16", (St::BF16, vec![2, 2], bf16)),
            ("a.f16", (St::F16, vec![4], f16)),
            ("a.f32", (St::F32, vec![4], f32_bytes(&vals))),
            ("a.i64", (St::I64, vec![2], [7i64, -3].iter().flat_map(|v| v.to_le_bytes()).collect())),
            ("lin.weight", (St::F8_E4M3, vec![2, 2], fp8)),
            ("lin.weight_scale", (St::F32, vec![], f32_bytes(&[0.5]))),
        ],
        config_meta(LTX_CONFIG),
    );
    let ck = Checkpoint::open(&path).unwrap();
    assert_eq!(ck.tensor("a.bf16").unwrap().dtype(), Dtype::Bfloat16);
    assert_eq!(ck.tensor("a.bf16").unwrap().shape(), &[2, 2]);
    assert_eq!(values(&ck.tensor("a.bf16").unwrap()), vals);
    assert_eq!(values(&ck.tensor("a.f16").unwrap()), vals);
    assert_eq!(values(&ck.tensor("a.f32").unwrap()), vals);
    let ints = ck.tensor("a.i64").unwrap();
    assert_eq!(ints.dtype(), Dtype::Int64);
    assert_eq!(ints.as_slice::<i64>(), &[7, -3]);
    let raw = ck.tensor("lin.weight").unwrap();
    assert_eq!(raw.dtype(), Dtype::Uint8, "FP8 stays bytes until used");
    let scale = ck.tensor("lin.weight_scale").unwrap();
    let w = raw.from_fp8(Dtype::Float32).unwrap().multiply(&scale).unwrap();
    assert_eq!(values(&w), vec![0.5, -1.0, 2f32.powi(-10), 224.0]);
}

#[test]
fn tensors_cost_at_most_one_copy_and_outlive_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.safetensors");
    let n = 4 << 20; // 16 MiB of f32
    write(&path, &[("big", (St::F32, vec![n], f32_bytes(&vec![1.5; n])))], None);
    let ck = Checkpoint::open(&path).unwrap();
    let before = mlx_rs::memory::active_memory().unwrap();
    let t = ck.tensor("big").unwrap();
    t.eval().unwrap();
    let grew = mlx_rs::memory::active_memory().unwrap().saturating_sub(before);
    // Metal wraps page-aligned mapped bytes without a copy; MLX's CPU allocator copies them once.
    assert!(grew <= n * 4 + (1 << 20), "loading allocated {grew} bytes for a {} byte tensor", n * 4);
    drop(ck);
    let s = mlx_rs::ops::sum(&t, None).unwrap();
    assert_eq!(s.item_exact::<f32>(), 1.5 * n as f32);
}

#[test]
fn config_sections_parse_into_typed_configs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cfg.safetensors");
    write(&path, &[("x", f32_tensor(&[1], 0.0))], config_meta(LTX_CONFIG));
    let cfg = Checkpoint::open(&path).unwrap().config().unwrap();
    let vae = cfg.vae().unwrap();
    assert_eq!((vae.latent_channels, vae.patch_size, vae.out_channels), (8, 4, 3));
    assert_eq!(vae.decoder_blocks.len(), 3);
    assert_eq!(vae.decoder_blocks[1].name, "compress_all");
    assert_eq!(vae.decoder_blocks[1].bool("residual"), Some(true));
    assert_eq!(vae.decoder_blocks[2].int("num_layers"), Some(2), "bare layer counts are accepted");
    assert_eq!((vae.encoder_padding(), vae.decoder_padding()), ("zeros", "reflect"));
    let audio = cfg.audio_vae().unwrap();
    assert_eq!(audio.ddconfig().ch, 16);
    assert!(!audio.ddconfig().mid_block_add_attention);
    assert!(audio.ddconfig().attn_resolutions.is_empty());
    assert_eq!(audio.mel_bins(), Some(64));
    assert_eq!(audio.mel_hop_length(), 160);
    let VocoderSection::Plain(voc) = cfg.vocoder().unwrap() else { panic!("LTX-2's flat vocoder section") };
    assert_eq!(voc.upsample_rates, vec![2, 2]);
    assert_eq!(voc.output_sampling_rate, 24_000, "ltx-core default");
    assert_eq!(voc.resblock, "1");
    assert!(cfg.has("transformer"));
}

#[test]
fn wrong_config_types_name_the_section() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    write(&path, &[("x", f32_tensor(&[1], 0.0))], config_meta(r#"{"vae": {"latent_channels": "many"}}"#));
    let err = Checkpoint::open(&path).unwrap().config().unwrap().vae().unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { section: "vae", .. }), "{err}");
    assert!(err.to_string().contains("latent_channels") || err.to_string().contains("invalid type"), "{err}");
}

#[test]
fn non_ltx_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.safetensors");
    write(&plain, &[("x", f32_tensor(&[1], 0.0))], None);
    let err = Checkpoint::open(&plain).unwrap().config().unwrap_err().to_string();
    assert!(err.contains("not an LTX-2 checkpoint") && err.contains("plain.safetensors"), "{err}");

    let other = dir.path().join("other.safetensors");
    write(&other, &[("x", f32_tensor(&[1], 0.0))], config_meta(r#"{"architectures": ["Gemma3"]}"#));
    let err = Checkpoint::open(&other).unwrap().config().unwrap_err().to_string();
    assert!(err.contains("not an LTX-2 checkpoint"), "{err}");

    let upsampler = dir.path().join("up.safetensors");
    write(&upsampler, &[("x", f32_tensor(&[1], 0.0))], config_meta(r#"{"mid_channels": 32, "in_channels": 8}"#));
    let up = UpsamplerConfig::from_metadata(Checkpoint::open(&upsampler).unwrap().metadata()).unwrap();
    assert_eq!((up.in_channels, up.mid_channels, up.num_blocks_per_stage), (8, 32, 4));
    assert!(UpsamplerConfig::from_metadata(Checkpoint::open(&plain).unwrap().metadata()).is_err());
}

#[test]
fn truncated_and_garbage_files_are_format_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    write(&good, &[("x", f32_tensor(&[64], 0.0))], config_meta(LTX_CONFIG));
    let bytes = std::fs::read(&good).unwrap();

    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let err = Checkpoint::open(&truncated).unwrap_err();
    assert!(matches!(err, LoadError::Format { .. }), "{err}");
    assert!(err.to_string().contains("truncated.safetensors"), "{err}");

    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header").unwrap();
    assert!(matches!(Checkpoint::open(&garbage).unwrap_err(), LoadError::Format { .. }));

    let empty = dir.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(Checkpoint::open(&empty).unwrap_err(), LoadError::Format { .. }));

    let missing = Checkpoint::open(dir.path().join("nope.safetensors")).unwrap_err();
    assert!(matches!(missing, LoadError::Io { .. }), "{missing}");
}

#[test]
fn headers_read_alone_match_the_mapped_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.safetensors");
    let fp8 = (St::F8_E4M3, vec![2, 3], vec![0u8; 6]);
    write(&path, &[("b", f32_tensor(&[4, 2], 0.0)), ("a", fp8)], config_meta(LTX_CONFIG));
    let (header, ck) = (Header::read(&path).unwrap(), Checkpoint::open(&path).unwrap());
    assert_eq!(header.tensors().map(|(n, _)| n).collect::<Vec<_>>(), ck.names().collect::<Vec<_>>());
    for (name, info) in header.tensors() {
        assert_eq!(Some(info.shape.as_slice()), ck.shape(name), "{name}");
    }
    let (a, b) = (header.tensors().next().unwrap().1, header.tensors().nth(1).unwrap().1);
    assert_eq!((a.dtype, a.data_offsets.1 - a.data_offsets.0), (St::F8_E4M3, 6));
    assert_eq!((b.dtype, b.data_offsets.1 - b.data_offsets.0), (St::F32, 32));
    assert_eq!(header.metadata(), ck.metadata());
    assert_eq!(header.config().unwrap().vae().unwrap().latent_channels, 8);

    let bytes = std::fs::read(&path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..8 + len / 2]).unwrap();
    let err = Header::read(&cut).unwrap_err();
    assert!(matches!(err, LoadError::Format { .. }) && err.to_string().contains("cut.safetensors"), "{err}");
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header").unwrap();
    assert!(matches!(Header::read(&garbage).unwrap_err(), LoadError::Format { .. }));
    assert!(matches!(Header::read(dir.path().join("nope")).unwrap_err(), LoadError::Io { .. }));
    let plain = dir.path().join("plain.safetensors");
    write(&plain, &[("x", f32_tensor(&[1], 0.0))], None);
    assert!(Header::read(&plain).unwrap().config().unwrap_err().to_string().contains("not an LTX-2 checkpoint"));
}

/// A module whose parameter tree mirrors keys `proj.{weight,bias}`, `conv.{weight,bias}`,
/// `ups.0.{weight,bias}` and `blocks.{0,1}.{weight,bias}`.
#[derive(Debug, ModuleParameters)]
struct Tiny {
    #[param]
    proj: Linear,
    #[param]
    conv: Conv3d,
    #[param]
    ups: Vec<ConvTranspose1d>,
    #[param]
    blocks: Vec<Linear>,
    #[param]
    scale_shift_table: Param<Array>,
}

impl Tiny {
    fn new() -> Self {
        Self {
            proj: LinearBuilder::new(4, 3).build().unwrap(),
            conv: Conv3dBuilder::new(2, 5, 3).build().unwrap(),
            ups: vec![ConvTranspose1dBuilder::new(6, 2, 4).build().unwrap()],
            blocks: (0..2).map(|_| LinearBuilder::new(3, 3).build().unwrap()).collect(),
            scale_shift_table: Param::new(Array::zeros::<f32>(&[2, 3]).unwrap()),
        }
    }
}

/// Tensors in PyTorch layout under `model.diffusion_model.`.
fn tiny_tensors() -> Vec<(String, Raw)> {
    let p = |k: &str| format!("model.diffusion_model.{k}");
    vec![
        (p("proj.weight"), f32_tensor(&[3, 4], 1.0)),
        (p("proj.bias"), f32_tensor(&[3], 2.0)),
        (p("conv.weight"), f32_tensor(&[5, 2, 3, 3, 3], 3.0)), // (out, in, kt, kh, kw)
        (p("conv.bias"), f32_tensor(&[5], 4.0)),
        (p("ups.0.weight"), f32_tensor(&[6, 2, 4], 5.0)), // ConvTranspose1d (in, out, k)
        (p("ups.0.bias"), f32_tensor(&[2], 6.0)),
        (p("blocks.0.weight"), f32_tensor(&[3, 3], 7.0)),
        (p("blocks.0.bias"), f32_tensor(&[3], 8.0)),
        (p("blocks.1.weight"), f32_tensor(&[3, 3], 9.0)),
        (p("blocks.1.bias"), f32_tensor(&[3], 10.0)),
        (p("scale_shift_table"), f32_tensor(&[2, 3], 11.0)),
        ("vae.decoder.conv_in.weight".into(), f32_tensor(&[1], 0.0)), // another component: not ours
    ]
}

fn write_tiny(path: &Path, edit: impl FnOnce(&mut Vec<(String, Raw)>)) {
    let mut tensors = tiny_tensors();
    edit(&mut tensors);
    let refs: Vec<(&str, Raw)> = tensors.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    write(path, &refs, config_meta(LTX_CONFIG));
}

const PREFIX: &str = "model.diffusion_model.";

fn options(dtype: Option<Dtype>) -> LoadOptions<'static> {
    LoadOptions { dtype, transposed_conv: &|k| k.starts_with("ups."), ..LoadOptions::default() }
}

#[test]
fn modules_load_by_key_tree_with_conv_layouts_converted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.safetensors");
    write_tiny(&path, |_| {});
    let ck = Checkpoint::open(&path).unwrap();
    let mut m = Tiny::new();
    let report = ck.load_into(&mut m, PREFIX, &options(Some(Dtype::Bfloat16))).unwrap();
    assert_eq!(report.loaded, 11);
    assert!(report.is_clean());
    assert_eq!(m.proj.weight.dtype(), Dtype::Bfloat16, "floats cast to the compute dtype");
    // conv: PyTorch (5,2,3,3,3) -> MLX (5,3,3,3,2); element [o, i, t, h, w] -> [o, t, h, w, i]
    assert_eq!(m.conv.weight.shape(), &[5, 3, 3, 3, 2]);
    let torch = values(&ck.tensor(&format!("{PREFIX}conv.weight")).unwrap());
    let mlx = values(&m.conv.weight);
    let (o, i, t, h, w) = (4, 1, 2, 0, 1);
    let torch_at = torch[(((o * 2 + i) * 3 + t) * 3 + h) * 3 + w];
    let mlx_at = mlx[(((o * 3 + t) * 3 + h) * 3 + w) * 2 + i];
    assert_eq!(torch_at, mlx_at);
    // transposed conv: PyTorch (in 6, out 2, k 4) -> MLX (out 2, k 4, in 6)
    assert_eq!(m.ups[0].weight.shape(), &[2, 4, 6]);
    assert_eq!(values(m.blocks[1].bias.as_ref().as_ref().unwrap()), vec![10.0, 10.25, 10.5]);
    assert_eq!(values(&m.scale_shift_table)[5], 12.25);
}

#[test]
fn mismatches_are_all_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    write_tiny(&path, |t| {
        t.retain(|(k, _)| !k.ends_with("blocks.1.bias") && !k.ends_with("proj.bias"));
        t.push((format!("{PREFIX}blocks.2.weight"), f32_tensor(&[3, 3], 0.0)));
        for (k, v) in t.iter_mut() {
            if k.ends_with("blocks.0.weight") {
                *v = f32_tensor(&[3, 4], 0.0);
            }
        }
    });
    let ck = Checkpoint::open(&path).unwrap();
    let err = ck.load_into(&mut Tiny::new(), PREFIX, &options(None)).unwrap_err();
    let LoadError::Mismatch { report, .. } = &err else { panic!("{err}") };
    assert_eq!(report.missing, vec!["blocks.1.bias", "proj.bias"]);
    assert_eq!(report.unexpected, vec!["blocks.2.weight"]);
    assert_eq!(report.misshaped, vec![("blocks.0.weight".to_string(), vec![3, 4], vec![3, 3])]);
    let text = err.to_string();
    for needle in ["bad.safetensors", "blocks.1.bias", "blocks.2.weight", "file [3, 4], model [3, 3]"] {
        assert!(text.contains(needle), "`{needle}` not in:\n{text}");
    }
    // A prefix that owns nothing reports every parameter missing.
    let err = ck.load_into(&mut Tiny::new(), "nothing.", &options(None)).unwrap_err();
    let LoadError::Mismatch { report, .. } = err else { panic!() };
    assert_eq!(report.missing.len(), 11);
}

#[test]
fn ignored_names_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("extra.safetensors");
    write_tiny(&path, |t| t.push((format!("{PREFIX}audio_embeddings_connector.x"), f32_tensor(&[1], 0.0))));
    let ck = Checkpoint::open(&path).unwrap();
    assert!(ck.load_into(&mut Tiny::new(), PREFIX, &options(None)).is_err());
    let opts = LoadOptions { ignore: &|k| k.starts_with("audio_embeddings_connector."), ..options(None) };
    assert!(ck.load_into(&mut Tiny::new(), PREFIX, &opts).is_ok());
}

#[test]
fn optional_parameters_may_be_absent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.safetensors");
    write_tiny(&path, |t| t.retain(|(k, _)| !k.ends_with("scale_shift_table")));
    let ck = Checkpoint::open(&path).unwrap();
    assert!(ck.load_into(&mut Tiny::new(), PREFIX, &options(None)).is_err());
    let opts = LoadOptions { optional: &|k| k == "scale_shift_table", ..options(None) };
    let mut m = Tiny::new();
    assert_eq!(ck.load_into(&mut m, PREFIX, &opts).unwrap().loaded, 10);
    assert_eq!(values(&m.scale_shift_table), vec![0.0; 6], "keeps its constructed value");
}
