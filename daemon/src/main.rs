//! `ltxd`: the LTX-2 generation daemon.
fn main() -> std::process::ExitCode {
    ltxd::main_with(ltxd::engine::shipped)
}
