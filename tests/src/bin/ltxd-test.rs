//! The daemon built only for tests: the real `ltxd` library with the test engine plugged in
//! (`LTX_TEST_ENGINE=shipped` plugs in the shipped LTX-2 pipeline instead).
fn main() -> std::process::ExitCode {
    // Downloads fail with ENOSPC after this many bytes: the disk-full path without filling a disk.
    if let Some(q) = std::env::var("LTX_TEST_WRITE_QUOTA").ok().and_then(|v| v.parse().ok()) {
        ltxd::models::set_test_write_quota(q);
    }
    // Every free-space reading is this: the margin warning of a pull without a nearly full disk.
    if let Some(b) = std::env::var("LTX_TEST_DISK_FREE").ok().and_then(|v| v.parse().ok()) {
        ltxd::models::set_test_disk_free(b);
    }
    // `LTX_TEST_FAULT=<point>:kill` ends the daemon at that step of finishing a job's output (a crash there),
    // `<point>:enospc` fails the step with ENOSPC (points: ltxd::output::set_fault_hook).
    if let Some((point, action)) = std::env::var("LTX_TEST_FAULT").ok().and_then(|v| {
        let (p, a) = v.split_once(':')?;
        Some((p.to_string(), a.to_string()))
    }) {
        ltxd::output::set_fault_hook(Box::new(move |at| {
            if at != point {
                return Ok(());
            }
            if action == "kill" {
                // SAFETY: kill(2) on this process.
                unsafe { libc::kill(std::process::id() as i32, libc::SIGKILL) };
            }
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        }));
    }
    ltxd::main_with(|cfg| {
        if std::env::var("LTX_TEST_ENGINE").as_deref() == Ok("shipped") {
            ltxd::engine::shipped(cfg)
        } else {
            Box::new(ltx_e2e::engine::TestEngine::default())
        }
    })
}
