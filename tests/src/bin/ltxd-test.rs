//! The daemon built only for tests: the real `ltxd` library with the test engine plugged in
//! (`LTX_TEST_ENGINE=none` plugs in the shipped engine instead).
fn main() -> std::process::ExitCode {
    ltxd::main_with(|cfg| {
        if std::env::var("LTX_TEST_ENGINE").as_deref() == Ok("none") {
            Box::new(ltxd::engine::NoEngine { models_dir: cfg.models_dir.clone() })
        } else {
            Box::new(ltx_e2e::engine::TestEngine::default())
        }
    })
}
