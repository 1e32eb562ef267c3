//! `ltx-tray` built inside the test package so end-to-end tests can run it (`CARGO_BIN_EXE_ltx-tray-e2e`).
fn main() -> std::process::ExitCode {
    ltx_client::tray::main()
}
