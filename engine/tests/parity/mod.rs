//! Shared by the LTX-2.3 decoder suites (`mod parity;`, next to `mod backend;`): the error measure, the
//! parity and mismatch assertions, fixtures rewritten with one weight perturbed or the config edited, and
//! the parameter-manifest comparison (checkpoint names and PyTorch shapes).
#![allow(dead_code)]

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use ltx_engine::checkpoint::Checkpoint;
use mlx_rs::{module::ModuleParameters, ops, Array, Dtype};

pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

/// A tensor of a fixture file, as f32.
pub fn tensor(file: &str, name: &str) -> Array {
    std::env::set_var("OPENBLAS_NUM_THREADS", "1");
    let ck = Checkpoint::open(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    ck.tensor(name).unwrap_or_else(|e| panic!("{file}: {e}")).as_dtype(Dtype::Float32).expect("f32")
}

fn values(a: &Array) -> Vec<f32> {
    let a = ops::reshape(a.as_dtype(Dtype::Float32).expect("cast"), &[-1]).expect("flat");
    a.eval().expect("eval");
    a.as_slice::<f32>().to_vec()
}

/// `max|got - want|` and `max|want|`.
pub fn errors(got: &Array, want: &Array) -> (f64, f64) {
    assert_eq!(got.shape(), want.shape(), "shapes");
    let (g, w) = (values(got), values(want));
    let err = g.iter().zip(&w).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
    (err, w.iter().map(|b| b.abs() as f64).fold(0.0, f64::max))
}

/// The tolerance of a comparison at `tol` (absolute for outputs of magnitude up to 1, relative above).
fn bound(tol: f64, scale: f64) -> f64 {
    crate::backend::tol(tol) * scale.max(1.0)
}

/// Asserts `max|got - want| <= tol·max(1, max|want|)`; returns the measured max abs error.
pub fn assert_close(got: &Array, want: &Array, tol: f64, what: &str) -> f64 {
    let (err, scale) = errors(got, want);
    let bound = bound(tol, scale);
    eprintln!("{what}: max abs err {err:.2e} (max |golden| {scale:.2}, bound {bound:.1e})");
    assert!(err <= bound, "{what}: max abs error {err:.3e} > {bound:.1e} (max |golden| {scale:.3})");
    err
}

/// Asserts that `got` does NOT match the golden (a perturbed weight, a 2.3 path switched off): its error
/// exceeds the parity bound, and ten times the CPU one.
pub fn assert_differs(got: &Array, want: &Array, tol: f64, what: &str) {
    let (err, scale) = errors(got, want);
    let threshold = bound(tol, scale).max(10.0 * tol * scale.max(1.0));
    eprintln!("{what}: max abs err {err:.2e} (must exceed {threshold:.1e})");
    assert!(err > threshold, "{what}: still matches the golden (max abs error {err:.3e})");
}

/// A copy of fixture `file` in `dir` with `edit` applied to its tensors and its `config` metadata.
pub fn rewritten(
    dir: &Path,
    file: &str,
    edit_tensors: impl FnOnce(&mut HashMap<String, Array>),
    edit_config: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let ck = Checkpoint::open(fixture(file)).expect("fixture");
    let mut tensors = ck.tensors_with_prefix("").expect("tensors");
    edit_tensors(&mut tensors);
    let mut metadata = ck.metadata().clone();
    let mut config: serde_json::Value = serde_json::from_str(&metadata["config"]).expect("config json");
    edit_config(&mut config);
    metadata.insert("config".into(), config.to_string());
    let path = dir.join(Path::new(file).file_name().expect("name"));
    Array::save_safetensors(&tensors, &metadata, &path).expect("save");
    path
}

/// `file` with `delta` added to every element of tensor `name`.
pub fn perturbed(dir: &Path, file: &str, name: &str, delta: f32) -> PathBuf {
    let edit = |t: &mut HashMap<String, Array>| {
        let w = t.get(name).unwrap_or_else(|| panic!("no tensor {name}"));
        let changed = w.add(Array::from_f32(delta).as_dtype(w.dtype()).expect("dtype")).expect("add");
        t.insert(name.to_string(), changed);
    };
    rewritten(dir, file, edit, |_| {})
}

/// `name [d0, d1, …]` lines of a committed manifest.
pub fn read_manifest(path: &str) -> BTreeMap<String, Vec<i32>> {
    std::fs::read_to_string(fixture(path))
        .expect("manifest")
        .lines()
        .map(|l| {
            let (name, shape) = l.split_once(' ').expect("line");
            (name.to_string(), serde_json::from_str(shape).expect("shape"))
        })
        .collect()
}

/// A module's parameters under `prefix`, with PyTorch's shapes: the loader moves convolution kernels
/// (…`weight` of 3+ dims) from (out, in, k…) to (out, k…, in), and transposed ones (`transposed(key)`) from
/// (in, out, k…); this undoes it.
pub fn torch_tree(
    module: &impl ModuleParameters,
    prefix: &str,
    transposed: impl Fn(&str) -> bool,
) -> BTreeMap<String, Vec<i32>> {
    module
        .parameters()
        .flatten()
        .iter()
        .map(|(k, v)| {
            let mut s = v.shape().to_vec();
            if s.len() >= 3 && k.ends_with("weight") {
                let inner = s.pop().expect("dims");
                match transposed(k) {
                    true => s = [vec![inner, s[0]], s[1..].to_vec()].concat(),
                    false => s.insert(1, inner),
                }
            }
            (format!("{prefix}{k}"), s)
        })
        .collect()
}

/// Asserts two parameter trees are equal, listing what differs.
pub fn assert_same_tree(ours: &BTreeMap<String, Vec<i32>>, want: &BTreeMap<String, Vec<i32>>, what: &str) {
    let missing: Vec<_> = want.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<_> = ours.keys().filter(|k| !want.contains_key(*k)).collect();
    let misshaped: Vec<_> = want.iter().filter(|(k, s)| ours.get(*k).is_some_and(|o| o != *s)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && misshaped.is_empty(),
        "{what}: {} missing {:?}, {} extra {:?}, {} misshaped {:?}",
        missing.len(),
        missing.iter().take(8).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(8).collect::<Vec<_>>(),
        misshaped.len(),
        misshaped.iter().take(8).collect::<Vec<_>>()
    );
    let params: i64 = want.values().map(|s| s.iter().map(|&d| d as i64).product::<i64>()).sum();
    eprintln!("{what}: {} tensors, {params} values, key for key and shape for shape", want.len());
}
