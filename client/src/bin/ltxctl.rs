fn main() -> std::process::ExitCode {
    ltx_client::main()
}
