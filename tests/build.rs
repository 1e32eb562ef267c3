//! rpath to the MLX runtime folder (published by mlx-sys as `DEP_MLX_LIBDIR`): `ltx-engine` links MLX and
//! link args do not propagate to dependents, so this crate's binaries would not find libmlx otherwise.
fn main() {
    // Like ltxd's: an installed copy finds the MLX runtime beside it first (`ltxctl service install` test).
    match std::env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("macos") => println!("cargo:rustc-link-arg=-Wl,-rpath,@loader_path/mlx/lib"),
        _ => println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/mlx/lib"),
    }
    if let Ok(dir) = std::env::var("DEP_MLX_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
