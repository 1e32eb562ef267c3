//! The daemon built only for tests: the real `ltxd` library with the test engine plugged in
//! (`LTX_TEST_ENGINE=shipped` plugs in the shipped LTX-2 pipeline instead).
fn main() -> std::process::ExitCode {
    ltxd::main_with(|cfg| {
        if std::env::var("LTX_TEST_ENGINE").as_deref() == Ok("shipped") {
            ltxd::engine::shipped(cfg)
        } else {
            Box::new(ltx_e2e::engine::TestEngine::default())
        }
    })
}
