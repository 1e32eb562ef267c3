//! Helpers the suites share: child processes killed at the end, polling, tool checks; the model-download
//! suites' in [`models`].
#![allow(dead_code)]
pub mod models;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TRAY: &str = env!("CARGO_BIN_EXE_ltx-tray-e2e");

pub fn have(prog: &str, arg: &str) -> bool {
    Command::new(prog).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Polls `f` until it answers; the generous timeouts are for a loaded 2-core CI machine running tests in parallel.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Child processes killed when the test ends (pass or fail).
#[derive(Default)]
pub struct Procs(pub Vec<Child>);

impl Procs {
    pub fn add(&mut self, c: Child) -> &mut Child {
        self.0.push(c);
        self.0.last_mut().expect("just pushed")
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.0.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn job_id(out: &std::process::Output) -> u64 {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("job id")
}
