//! Logs: stderr (captured by launchd/systemd), a daily file in the log dir (`ltxd.YYYY-MM-DD.log`, UTC, the
//! newest 7 kept), the journal when running under systemd (`JOURNAL_STREAM` set), and on macOS the unified log
//! (os_log, subsystem `com.ltx.ltxd`: `log stream --predicate 'subsystem == "com.ltx.ltxd"'`).
//!
//! The log files hold every prompt: the directory is 0700 and the files 0600, set when they are created and
//! tightened at start for ones an older ltxd (or launchd) made. Every field and message of a stderr or file
//! line goes through [`escape`], so user text (prompts, paths, client names) cannot start a line of its own.
use std::borrow::Cow;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{fmt, EnvFilter};

pub struct Guard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Whether `c` is escaped: control characters (C0, DEL, C1), the Unicode line and paragraph separators and the
/// bidirectional overrides (which reorder what a viewer shows).
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The one escaping of text bound for a log line: the characters of [`needs_escape`] become Rust escapes
/// (`\n`, `\r`, `\u{1b}`), so a value stays on its line and cannot drive a terminal. Everything else is kept.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The field formatter of the stderr and file layers: `message` bare, others `name=value`, each escaped.
fn fields() -> impl for<'w> fmt::FormatFields<'w> + 'static {
    fmt::format::debug_fn(|w, field, value| {
        let text = format!("{value:?}");
        match field.name() {
            "message" => write!(w, "{}", escape(&text)),
            name => write!(w, "{name}={}", escape(&text)),
        }
    })
    .delimited(" ")
}

const PREFIX: &str = "ltxd.";
const SUFFIX: &str = ".log";
/// Daily files kept.
const KEEP: usize = 7;

/// The civil date (proleptic Gregorian) of a day count since 1970-01-01.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `ltxd.YYYY-MM-DD.log` for a time (UTC).
fn file_name(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil((secs / 86_400) as i64);
    format!("{PREFIX}{y:04}-{m:02}-{d:02}{SUFFIX}")
}

fn is_daily_name(name: &str) -> bool {
    name.strip_prefix(PREFIX).and_then(|n| n.strip_suffix(SUFFIX)).is_some_and(|date| {
        date.len() == 10
            && date.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() })
    })
}

/// Opens a log file for appending: created 0600, a symlink not followed, an existing one tightened to 0600.
fn open_private(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new().append(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// The daily log file: a new one each UTC day, the oldest beyond [`KEEP`] removed.
struct DailyFile {
    dir: PathBuf,
    open: Option<(String, File)>,
}

impl DailyFile {
    fn open(dir: &Path) -> std::io::Result<Self> {
        let mut f = Self { dir: dir.into(), open: None };
        f.file()?;
        Ok(f)
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        let name = file_name(std::time::SystemTime::now());
        let current = match self.open.take() {
            Some((open, file)) if open == name => (open, file),
            _ => {
                let file = open_private(&self.dir.join(&name))?;
                prune(&self.dir, KEEP);
                (name, file)
            }
        };
        Ok(&mut self.open.insert(current).1)
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file()?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.open.as_mut().map_or(Ok(()), |(_, f)| f.flush())
    }
}

/// Removes the oldest daily files beyond `keep`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut names: Vec<String> =
        entries.flatten().filter_map(|e| e.file_name().into_string().ok()).filter(|n| is_daily_name(n)).collect();
    names.sort();
    let extra = names.len().saturating_sub(keep);
    for name in &names[..extra] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

/// Creates the log dir 0700, or tightens it to 0700 (unless another user's or a shared sticky dir like /tmp),
/// and tightens every `*.log` file of ours in it to 0600. Returns what it changed or could not, to log.
fn private_log_dir(dir: &Path) -> std::io::Result<Vec<String>> {
    ltx_protocol::server::private_dir(dir)?;
    let uid = ltx_protocol::server::current_uid();
    let mut notes = Vec::new();
    let meta = std::fs::metadata(dir)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        if meta.uid() == uid && mode & 0o1000 == 0 {
            std::fs::set_permissions(dir, Permissions::from_mode(0o700))?;
            notes.push(format!("log directory {} was mode {mode:04o}; now 0700", dir.display()));
        } else {
            notes.push(format!(
                "log directory {} is shared (mode {mode:04o}, owner uid {}); the log files are 0600",
                dir.display(),
                meta.uid()
            ));
        }
    }
    let mut tightened = 0;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        let Ok(meta) = path.symlink_metadata() else { continue };
        let is_log = entry.file_name().to_string_lossy().ends_with(SUFFIX);
        let mode = meta.permissions().mode() & 0o7777;
        if is_log && meta.is_file() && meta.uid() == uid && mode & 0o077 != 0 {
            std::fs::set_permissions(&path, Permissions::from_mode(0o600))?;
            tightened += 1;
        }
    }
    if tightened > 0 {
        notes.push(format!("{tightened} log files in {} were readable by others; now 0600", dir.display()));
    }
    Ok(notes)
}

pub fn init(log_dir: &Path) -> Guard {
    let filter = || EnvFilter::try_from_env("LTX_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let prepared = private_log_dir(log_dir);
    let file = match &prepared {
        Ok(_) => DailyFile::open(log_dir),
        Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
    };
    let (file, guard) = match file {
        Ok(writer) => {
            let (w, g) = tracing_appender::non_blocking(writer);
            let layer = fmt::layer().with_ansi(false).fmt_fields(fields()).with_writer(w).with_filter(filter());
            (Some(layer), Some(g))
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
        let ansi = std::io::stderr().is_terminal();
        fmt::layer().with_ansi(ansi).fmt_fields(fields()).with_writer(std::io::stderr).with_filter(filter())
    });
    let _ = tracing_subscriber::registry().with(file).with(journal).with(oslog).with(stderr).try_init();
    for note in prepared.into_iter().flatten() {
        tracing::warn!("{note}");
    }
    Guard(guard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn escape_keeps_a_value_on_its_line() {
        assert!(matches!(escape("a fox, «ünï» 🦊"), Cow::Borrowed("a fox, «ünï» 🦊")));
        assert_eq!(escape("x\n2026-01-01 ERROR forged"), "x\\n2026-01-01 ERROR forged");
        assert_eq!(escape("\r\t\u{1b}[31m\u{7f}\u{85}"), "\\r\\t\\u{1b}[31m\\u{7f}\\u{85}");
        assert_eq!(escape("a\u{2028}b\u{202e}c"), "a\\u{2028}b\\u{202e}c");
    }

    #[test]
    fn daily_names_are_utc_dates() {
        let at = |secs: u64| file_name(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "ltxd.1970-01-01.log");
        assert_eq!(at(951_782_400), "ltxd.2000-02-29.log");
        assert_eq!(at(1_767_225_599), "ltxd.2025-12-31.log");
        assert_eq!(at(1_767_225_600), "ltxd.2026-01-01.log");
        assert_eq!(at(4_107_542_400), "ltxd.2100-03-01.log");
        assert!(is_daily_name("ltxd.2026-01-01.log"));
        assert!(!is_daily_name("ltxd.err.log") && !is_daily_name("ltxd.2026-01-0x.log"));
    }

    #[test]
    fn files_are_private_and_old_ones_pruned_and_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("logs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        let old = dir.join("ltxd.err.log");
        std::fs::write(&old, b"launchd's").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        for day in 1..=8 {
            std::fs::write(dir.join(format!("ltxd.2020-01-{day:02}.log")), b"").unwrap();
        }
        let notes = private_log_dir(&dir).unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir), mode(&old)), (0o700, 0o600));
        let mut f = DailyFile::open(&dir).unwrap();
        f.write_all(b"line\n").unwrap();
        let today = dir.join(file_name(std::time::SystemTime::now()));
        assert_eq!(mode(&today), 0o600);
        assert_eq!(std::fs::read(&today).unwrap(), b"line\n");
        let mut daily: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_daily_name(n))
            .collect();
        daily.sort();
        assert_eq!(daily.len(), KEEP);
        assert_eq!(daily[0], "ltxd.2020-01-03.log");
        // A symlink planted at today's name is not followed.
        drop(f);
        std::fs::remove_file(&today).unwrap();
        let target = tmp.path().join("target");
        std::fs::write(&target, b"").unwrap();
        std::os::unix::fs::symlink(&target, &today).unwrap();
        assert!(DailyFile::open(&dir).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"");
    }
}
