//! Logs: stderr (captured by launchd/systemd), a daily-rotated file in the log dir, the journal when running
//! under systemd (`JOURNAL_STREAM` set), and on macOS the unified log (os_log, subsystem `com.ltx.ltxd`:
//! `log stream --predicate 'subsystem == "com.ltx.ltxd"'`).
use std::io::IsTerminal;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{fmt, EnvFilter};

pub struct Guard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

pub fn init(log_dir: &std::path::Path) -> Guard {
    let filter = || EnvFilter::try_from_env("LTX_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = std::fs::create_dir_all(log_dir);
    let (file, guard) = match tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("ltxd")
        .filename_suffix("log")
        .max_log_files(7)
        .build(log_dir)
    {
        Ok(appender) => {
            let (w, g) = tracing_appender::non_blocking(appender);
            (Some(fmt::layer().with_ansi(false).with_writer(w).with_filter(filter())), Some(g))
        }
        Err(e) => {
            eprintln!("ltxd: not logging to {}: {e}", log_dir.display());
            (None, None)
        }
    };
    #[cfg(target_os = "linux")]
    let journal = std::env::var_os("JOURNAL_STREAM")
        .and_then(|_| tracing_journald::layer().ok())
        .map(|l| l.with_filter(filter()));
    #[cfg(not(target_os = "linux"))]
    let journal: Option<tracing_subscriber::layer::Identity> = None;
    #[cfg(target_os = "macos")]
    let oslog = Some(tracing_oslog::OsLogger::new("com.ltx.ltxd", "daemon").with_filter(filter()));
    #[cfg(not(target_os = "macos"))]
    let oslog: Option<tracing_subscriber::layer::Identity> = None;
    // Under systemd stderr already goes to the journal: log there once.
    let stderr = journal.is_none().then(|| {
        fmt::layer().with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr).with_filter(filter())
    });
    let _ = tracing_subscriber::registry().with(file).with(journal).with(oslog).with(stderr).try_init();
    Guard(guard)
}
