//! The prompt-encoding API around the numerics: tokenizer parity with HF's Python tokenizer (through
//! ltx-core's `LTXVGemmaTokenizer`), the Gemma-3-12B parameter manifest, the prompt cache (memory
//! and disk; a hit returns identical tensors and skips Gemma), low-memory mode, and clear errors for
//! missing files. Fixtures from `engine/goldens/text_goldens.py`.
mod backend;

use backend::held;

use std::{collections::BTreeMap, path::PathBuf};

use ltx_engine::{
    checkpoint::Checkpoint,
    text::{
        connector::ConnectorConfig, py_strip, Connector, EncoderOptions, FeatureExtractor, Gemma, GemmaConfig,
        GemmaPrecision, Negative, PromptEncoder, PromptTokenizer, DEFAULT_NEGATIVE_PROMPT,
    },
};
use mlx_rs::{module::ModuleParameters, ops, Array, Dtype};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text").join(name)
}

#[derive(serde::Deserialize)]
struct Case {
    prompt: String,
    max_length: usize,
    ids: Vec<i32>,
    mask: Vec<i32>,
    truncated: bool,
}

#[test]
fn tokenizer_matches_hf_python() {
    let cases: Vec<Case> =
        serde_json::from_str(&std::fs::read_to_string(fixture("tokenizer_cases.json")).expect("cases")).expect("json");
    assert!(cases.iter().any(|c| c.prompt.is_empty()) && cases.iter().any(|c| c.truncated));
    for c in &cases {
        let tok = PromptTokenizer::from_file(&fixture("gemma/tokenizer.json"), c.max_length).expect("tokenizer");
        let got = tok.encode(&c.prompt).expect("encode");
        assert_eq!(got.ids, c.ids, "ids of {:?} at {}", c.prompt, c.max_length);
        assert_eq!(got.mask, c.mask, "mask of {:?} at {}", c.prompt, c.max_length);
        assert_eq!(got.truncated, c.truncated, "truncation of {:?} at {}", c.prompt, c.max_length);
        assert_eq!(got.ids[c.max_length - got.valid()], 2, "<bos> opens the prompt");
    }
    assert_eq!(py_strip("\u{1c} a \t\n"), "a");
}

#[test]
fn gemma3_12b_parameter_tree_matches_manifest() {
    // The text_config of google/gemma-3-12b-it's config.json; the rest are transformers' defaults.
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = r#"{"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
        "text_config": {"hidden_size": 3840, "intermediate_size": 15360, "model_type": "gemma3_text",
        "num_attention_heads": 16, "num_hidden_layers": 48, "num_key_value_heads": 8,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}}"#;
    std::fs::write(dir.path().join("config.json"), cfg).expect("write");
    let config = GemmaConfig::from_file(&dir.path().join("config.json")).expect("config");
    assert_eq!((config.vocab_size, config.head_dim, config.query_pre_attn_scalar), (262_208, 256, 256));
    let globals: Vec<usize> = (0..48).filter(|&i| !config.is_local(i)).collect();
    assert_eq!(globals, (0..8).map(|k| 6 * k + 5).collect::<Vec<_>>());
    let model = Gemma::new(config).expect("tree");
    let got: BTreeMap<String, Vec<i32>> = model
        .parameters()
        .flatten()
        .iter()
        .map(|(k, v)| (format!("language_model.model.{k}"), v.shape().to_vec()))
        .collect();
    let want = read_manifest("gemma3_12b_text_manifest.txt");
    assert_eq!(got, want);
    let params: i64 = want.values().map(|s| s.iter().map(|&d| d as i64).product::<i64>()).sum();
    eprintln!("Gemma-3-12B text model: {params} parameters");
}

#[test]
fn ltx2_19b_text_side_matches_manifest() {
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("../transformer/ltx2_19b_config.json")).expect("19B metadata"),
    )
    .expect("json");
    let config: ConnectorConfig = serde_json::from_value(meta["transformer"].clone()).expect("connector keys");
    let mut got = BTreeMap::new();
    let mut add = |prefix: &str, params: Vec<(String, Vec<i32>)>| {
        // The transformer's linears have an optional FP8 `weight_scale` slot, absent from bf16 files.
        got.extend(
            params
                .into_iter()
                .filter(|(k, _)| !k.ends_with(".weight_scale"))
                .map(|(k, s)| (prefix.to_string() + &k, s)),
        );
    };
    let tree = |m: &dyn ModuleParameters| -> Vec<(String, Vec<i32>)> {
        m.parameters().flatten().iter().map(|(k, v)| (k.to_string(), v.shape().to_vec())).collect()
    };
    add("text_embedding_projection.", tree(&FeatureExtractor::new(3840 * 49, 3840).expect("extractor")));
    for (name, audio) in [("video", false), ("audio", true)] {
        let c = Connector::new(&config, audio).expect("connector");
        add(&format!("model.diffusion_model.{name}_embeddings_connector."), tree(&c));
    }
    assert_eq!(got, read_manifest("ltx2_19b_text_manifest.txt"));
}

fn read_manifest(name: &str) -> BTreeMap<String, Vec<i32>> {
    std::fs::read_to_string(fixture(name))
        .expect("manifest")
        .lines()
        .map(|l| {
            let (name, shape) = l.split_once(' ').expect("line");
            (name.to_string(), serde_json::from_str(shape).expect("shape"))
        })
        .collect()
}

fn ltx() -> Checkpoint {
    Checkpoint::open(fixture("tiny_ltx_text.safetensors")).expect("tiny ltx")
}

fn options(cache_dir: Option<PathBuf>) -> EncoderOptions {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    EncoderOptions { max_length: 16, dtype: Dtype::Float32, cache_dir, ..Default::default() }
}

fn identical(a: &Array, b: &Array) -> bool {
    a.shape() == b.shape() && ops::array_eq(a, b, false).expect("cmp").item_exact::<bool>()
}

/// max|a - b| <= rel * max|b|
fn close(a: &Array, b: &Array, rel: f64) -> bool {
    let diff = ops::abs(a.subtract(b).expect("diff")).and_then(|d| d.max(None)).expect("max").item_cast::<f32>();
    let range = ops::abs(b).and_then(|d| d.max(None)).expect("max").item_cast::<f32>();
    a.shape() == b.shape() && diff as f64 <= rel * range as f64
}

#[test]
fn cache_hit_returns_identical_tensors_and_skips_gemma() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut enc = PromptEncoder::load(&fixture("gemma"), &ltx(), options(Some(dir.path().into()))).expect("enc");
    assert!(!enc.gemma_loaded(), "Gemma loads on first need");
    let first = enc.encode("a dog runs", Negative::Text("blurry")).expect("first");
    assert!(!first.cache_hit && enc.gemma_loaded());
    enc.unload_gemma();
    let again = enc.encode("a dog runs", Negative::Text("blurry")).expect("again");
    assert!(again.cache_hit && !enc.gemma_loaded(), "a memory hit must not load Gemma");
    let (n1, n2) = (first.negative.as_ref().expect("neg"), again.negative.as_ref().expect("neg"));
    assert!(identical(&first.positive.video, &again.positive.video) && identical(&n1.audio, &n2.audio));

    // The key covers the negative prompt: another one is a miss, and gives other contexts.
    let other = enc.encode("a dog runs", Negative::Text("dark")).expect("other");
    assert!(!other.cache_hit);
    assert!(!identical(&other.negative.as_ref().expect("neg").video, &n1.video));
    // Recomputed beside another negative: bit-identical on the CPU; a GPU's GEMMs may tile the other batch
    // differently, so there the same prompt gives the same contexts within the backend's tolerance.
    let same = identical(&other.positive.video, &first.positive.video)
        || (backend::on_gpu() && close(&other.positive.video, &first.positive.video, backend::tol(0.0)));
    assert!(same, "same prompt, same contexts");

    // A fresh encoder (another process, another seed) finds it on disk.
    let mut fresh = PromptEncoder::load(&fixture("gemma"), &ltx(), options(Some(dir.path().into()))).expect("enc");
    let disk = fresh.encode("a dog runs", Negative::Text("blurry")).expect("disk");
    assert!(disk.cache_hit && !fresh.gemma_loaded());
    eprintln!(
        "tiny encode (prompt + negative): miss {:.1} ms (incl. Gemma load), memory hit {:.2} ms, disk hit {:.2} ms",
        first.seconds * 1e3,
        again.seconds * 1e3,
        disk.seconds * 1e3
    );
    assert!(identical(&disk.positive.video, &first.positive.video));
    assert!(identical(&disk.positive.audio, &first.positive.audio));
    assert!(identical(&disk.negative.expect("neg").video, &n1.video));

    // The key covers the encoder's quantisation.
    let int8 = EncoderOptions { precision: GemmaPrecision::Int8, ..options(Some(dir.path().into())) };
    let mut q = PromptEncoder::load(&fixture("gemma"), &ltx(), int8).expect("enc");
    assert_ne!(
        q.cache_key("a dog runs", Negative::Text("blurry")),
        enc.cache_key("a dog runs", Negative::Text("blurry"))
    );
    assert!(!q.encode("a dog runs", Negative::Text("blurry")).expect("int8").cache_hit);
}

#[test]
fn low_memory_mode_drops_gemma_and_default_negative() {
    let opts = EncoderOptions { keep_loaded: false, ..options(None) };
    let mut enc = PromptEncoder::load(&fixture("gemma"), &ltx(), opts).expect("enc");
    let out = enc.encode("a cat", Negative::for_cfg(None)).expect("encode");
    assert!(!enc.gemma_loaded(), "low-memory mode frees Gemma after encoding");
    assert!(out.negative.is_some());
    assert_eq!(
        enc.cache_key("a cat", Negative::for_cfg(None)),
        enc.cache_key("a cat", Negative::Text(DEFAULT_NEGATIVE_PROMPT))
    );
    let none = enc.encode("a cat", Negative::None).expect("no cfg");
    assert!(none.negative.is_none() && !none.cache_hit);
    assert_eq!(none.positive.video.shape(), &[1, 16, 12]);
    // An empty prompt is rejected by request validation; the encoder itself still copes (<bos> only).
    let empty = enc.encode("   ", Negative::None).expect("empty");
    assert!(!ops::is_nan(&empty.positive.video).expect("nan").any(None).expect("any").item_exact::<bool>());
}

#[test]
fn missing_files_are_named() {
    let src = fixture("gemma");
    for (missing, what) in [
        ("tokenizer.json", "tokenizer.json"),
        ("config.json", "config.json"),
        ("model-00002-of-00002.safetensors", "model-00002-of-00002.safetensors"),
        ("model.safetensors.index.json", "model.safetensors.index.json"),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        for f in std::fs::read_dir(&src).expect("dir") {
            let f = f.expect("entry");
            if f.file_name() != missing {
                std::fs::copy(f.path(), dir.path().join(f.file_name())).expect("copy");
            }
        }
        let err = PromptEncoder::load(dir.path(), &ltx(), options(None)).err().expect("must fail").to_string();
        eprintln!("without {missing}: {err}");
        assert!(err.contains(what), "error for missing {missing} does not name it: {err}");
    }
}

#[test]
fn prompt_cache_never_writes_through_a_planted_link() {
    // The cache's temporary file once had a predictable name (`<key>.<pid>.tmp.safetensors`): a link planted
    // there made the cache overwrite the file it pointed at.
    let dir = tempfile::tempdir().expect("tmp");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").expect("victim");
    let mut enc = PromptEncoder::load(&fixture("gemma"), &ltx(), options(Some(dir.path().into()))).expect("enc");
    let key = enc.cache_key("a fox", Negative::Text("blurry"));
    let planted = dir.path().join(format!("{key}.{}.tmp.safetensors", std::process::id()));
    std::os::unix::fs::symlink(&victim, &planted).expect("plant");
    let first = enc.encode("a fox", Negative::Text("blurry")).expect("encode");
    assert!(!first.cache_hit);
    assert_eq!(held(&victim), "precious", "the cache wrote through the link");
    let file = dir.path().join(format!("{key}.safetensors"));
    let meta = std::fs::symlink_metadata(&file).expect("cache file");
    assert!(meta.is_file());
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
