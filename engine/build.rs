//! Gives this crate's binaries, tests and benches an rpath to the MLX runtime folder, so they run
//! outside `cargo run`/`cargo test` too (mlx-sys publishes the folder; link args do not propagate).
fn main() {
    if let Ok(dir) = std::env::var("DEP_MLX_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
