//! rpath to the MLX runtime folder (published by mlx-sys as `DEP_MLX_LIBDIR`): `ltx-engine` links MLX and
//! link args do not propagate to dependents, so this crate's binaries would not find libmlx otherwise.
fn main() {
    if let Ok(dir) = std::env::var("DEP_MLX_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
