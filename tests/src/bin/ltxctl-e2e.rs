//! `ltxctl` built inside the test package so end-to-end tests can run it (`CARGO_BIN_EXE_ltxctl-e2e`).
fn main() -> std::process::ExitCode {
    ltx_client::main()
}
