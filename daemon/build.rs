//! rpath to the MLX runtime folder (published by mlx-sys as `DEP_MLX_LIBDIR`): `ltx-engine` links MLX and
//! link args do not propagate to dependents, so this crate's binaries would not find libmlx otherwise.
fn main() {
    // An installed ltxd finds the MLX runtime copied beside it (`ltxctl service install`) before the build tree's.
    match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("macos") => println!("cargo:rustc-link-arg=-Wl,-rpath,@loader_path/mlx/lib"),
        _ => println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/mlx/lib"),
    }
    if let Ok(dir) = std::env::var("DEP_MLX_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
