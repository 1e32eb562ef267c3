//! The daemon built only for tests: the real `ltxd` library with the test engine plugged in
//! (`LTX_TEST_ENGINE=shipped` plugs in the shipped LTX-2 pipeline instead).
fn main() -> std::process::ExitCode {
    // Downloads fail with ENOSPC after this many bytes: the disk-full path without filling a disk.
    if let Some(q) = std::env::var("LTX_TEST_WRITE_QUOTA").ok().and_then(|v| v.parse().ok()) {
        ltxd::models::set_test_write_quota(q);
    }
    ltxd::main_with(|cfg| {
        if std::env::var("LTX_TEST_ENGINE").as_deref() == Ok("shipped") {
            ltxd::engine::shipped(cfg)
        } else {
            Box::new(ltx_e2e::engine::TestEngine::default())
        }
    })
}
