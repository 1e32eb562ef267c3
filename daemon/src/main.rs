//! `ltxd`: the LTX-2 generation daemon.
fn main() -> std::process::ExitCode {
    ltxd::main_with(|cfg| Box::new(ltxd::engine::NoEngine { models_dir: cfg.models_dir.clone() }))
}
