//! Builds mlx-c (sources fetched by `scripts/setup.sh` from the published mlx-sys 0.7.0 crate) against the
//! prebuilt MLX shared library of a PyPI wheel, and generates the bindings mlx-rs expects.
//!
//! * MLX is found at `MLX_PREFIX` (the wheel's `mlx` package folder: `lib/`, `include/`), which the
//!   workspace's `.cargo/config.toml` points at `.mlx/mlx`; without it, `$MLX_PYTHON` (default `python3`)
//!   is asked where its `mlx` package is.
//! * The runtime folder `scripts/setup.sh` lays out beside the prefix (`.mlx/runtime/mlx/lib`, with the
//!   wheel's reference BLAS swapped for the system's OpenBLAS) is linked and published as `DEP_MLX_LIBDIR`,
//!   so a final crate's build script can turn it into an rpath (link args do not propagate to dependents).
//! * Off ARM, `compat/half_storage.h` gives mlx-c the float16/bfloat16 storage types it declares only on ARM;
//!   `compat/format.h` supplies `std::format` for libstdc++ < 13.
use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    for var in ["MLX_PREFIX", "MLX_PYTHON", "MLX_C_SRC"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let apple = env::var("CARGO_CFG_TARGET_VENDOR").as_deref() == Ok("apple");
    let arm = env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("aarch64");

    let prefix = mlx_prefix();
    let dylib = if apple { "libmlx.dylib" } else { "libmlx.so" };
    if !prefix.join("lib").join(dylib).is_file() {
        fail(&format!("{} has no lib/{dylib}; run ./scripts/setup.sh", prefix.display()));
    }
    let mlx_c = env::var_os("MLX_C_SRC").map_or_else(|| manifest.join("mlx-c"), PathBuf::from);
    if !mlx_c.join("mlx/c/mlx.h").is_file() {
        fail(&format!("mlx-c sources missing at {}; run ./scripts/setup.sh", mlx_c.display()));
    }
    println!("cargo:rerun-if-changed={}", mlx_c.join("mlx/c").display());
    println!("cargo:rerun-if-changed=compat");
    let half = manifest.join("compat/half_storage.h");
    let format = manifest.join("compat/format.h");

    // mlx-c: the `mlxc-src` list of its CMakeLists.txt, compiled directly (no CMake, so the CUDA wheel's
    // CMake config, which wants a CUDA toolkit, is never consulted). Always optimised: it is a thin shim.
    let cmake = std::fs::read_to_string(mlx_c.join("CMakeLists.txt")).unwrap_or_default();
    let sources: Vec<PathBuf> = cmake
        .lines()
        .filter_map(|l| l.trim().strip_prefix("${CMAKE_CURRENT_LIST_DIR}/"))
        .map(|l| l.trim_end_matches(')'))
        .filter(|l| l.ends_with(".cpp"))
        .map(|l| mlx_c.join(l))
        .collect();
    if sources.len() < 20 {
        fail("could not read mlx-c's source list from its CMakeLists.txt");
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .opt_level(3)
        .debug(false)
        .warnings(false)
        .define("NDEBUG", None)
        .include(&mlx_c)
        .include(prefix.join("include"))
        .flag("-include")
        .flag(format.to_string_lossy().as_ref());
    if !arm {
        build.flag("-include").flag(half.to_string_lossy().as_ref());
    }
    build.files(&sources).compile("mlxc");

    // libmlx: prefer the runtime folder laid out by scripts/setup.sh (optimised BLAS), else the wheel's.
    let runtime = prefix.parent().map(|p| p.join("runtime/mlx/lib"));
    let libdir = match runtime {
        Some(dir) if dir.join(dylib).exists() => dir,
        _ => prefix.join("lib"),
    };
    println!("cargo:rerun-if-changed={}", libdir.display());
    println!("cargo:rustc-link-search=native={}", libdir.display());
    println!("cargo:rustc-link-lib=dylib=mlx");
    println!("cargo:libdir={}", libdir.display());
    println!("cargo:version={}", mlx_version(&prefix));

    let mut headers: Vec<PathBuf> = std::fs::read_dir(mlx_c.join("mlx/c"))
        .map(|dir| dir.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "h")).collect())
        .unwrap_or_default();
    headers.sort();
    let mut bindings = bindgen::Builder::default()
        .clang_arg(format!("-I{}", mlx_c.display()))
        .clang_arg("-DMLX_SYS_BINDGEN")
        .blocklist_function("malloc")
        .blocklist_function("realloc");
    if !arm {
        bindings = bindings.clang_arg("-include").clang_arg(half.to_string_lossy());
    }
    for h in &headers {
        bindings = bindings.header(h.to_string_lossy());
    }
    bindings
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen: {e} (is libclang installed? apt-get install libclang-dev)")))
        .write_to_file(out.join("bindings.rs"))
        .unwrap_or_else(|e| fail(&format!("writing bindings: {e}")));
}

fn fail(msg: &str) -> ! {
    panic!("mlx-sys: {msg}");
}

/// `MLX_PREFIX`, else the `mlx` package folder of `$MLX_PYTHON`/python3.
fn mlx_prefix() -> PathBuf {
    if let Some(p) = env::var_os("MLX_PREFIX") {
        return PathBuf::from(p);
    }
    let python = env::var("MLX_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import importlib.util as u; s = u.find_spec('mlx'); \
                  print(list(s.submodule_search_locations)[0] if s else '')";
    match Command::new(&python).args(["-c", script]).output() {
        Ok(o) if o.status.success() && o.stdout.len() > 1 => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => fail(&format!(
            "MLX not found: run ./scripts/setup.sh, or set MLX_PREFIX to a pip-installed `mlx` package \
             folder, or MLX_PYTHON to a python that has mlx (asked `{python}`)"
        )),
    }
}

fn mlx_version(prefix: &Path) -> String {
    let header = std::fs::read_to_string(prefix.join("include/mlx/version.h")).unwrap_or_default();
    let part = |k: &str| {
        header
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("#define MLX_VERSION_{k} ")))
            .map_or("?", str::trim)
            .to_string()
    };
    format!("{}.{}.{}", part("MAJOR"), part("MINOR"), part("PATCH"))
}
