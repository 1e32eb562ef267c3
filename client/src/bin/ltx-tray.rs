fn main() -> std::process::ExitCode {
    ltx_client::tray::main()
}
