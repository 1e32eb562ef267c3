//! Output naming and placement: `<date>_<slug>_<seed>.mp4`, written by the engine to a temporary file of this
//! daemon's, placed without replacing anything (never through a link) next to its JSON sidecar, both fsynced
//! with their directory before the job is recorded. What a crash leaves in between is repaired at start-up
//! ([`recover`]).
use ltx_protocol::fsutil::{self, Dir, Placed};
use ltx_protocol::JobRecord;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod recover;
pub use recover::{recover, Recovered};

/// `YYYY-MM-DD` (UTC) for a Unix time in milliseconds.
pub fn date(ms: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = (ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Lower-case ASCII words of the prompt joined by `-`, at most 48 characters.
pub fn slug(prompt: &str) -> String {
    let mut out = String::new();
    for word in prompt.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        if out.len() + word.len() + 1 > 48 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    if out.is_empty() {
        out.push_str("video");
    }
    out
}

/// The intended final path for a job (may be taken by the time it finishes: see [`place`]).
pub fn target(output: Option<&Path>, outputs_dir: &Path, created_ms: u64, prompt: &str, seed: u64) -> PathBuf {
    let name = format!("{}_{}_{seed}.mp4", date(created_ms), slug(prompt));
    match output {
        Some(p) if p.is_dir() => p.join(name),
        Some(p) => p.to_path_buf(),
        None => outputs_dir.join(name),
    }
}

/// This daemon's mark in its temporary names (FNV-1a of its state directory): daemons sharing an outputs
/// directory never touch each other's temporary files.
pub fn instance_tag(state_dir: &Path) -> String {
    let h = state_dir
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193));
    format!("{h:08x}")
}

/// The prefix of job `job`'s temporary files for the file `name`: `.<name>.ltx<tag>-<job>.`.
fn temp_prefix(name: &OsStr, tag: &str, job: u64) -> String {
    format!(".{}.ltx{tag}-{job}.", name.to_string_lossy())
}

/// The temporary file the engine writes for `target`: `.<name>.ltx<tag>-<job>.<16 random hex>.part`, in the
/// target's directory (the link into place never leaves it), unpredictable to other users.
pub fn temp_for(target: &Path, tag: &str, job: u64) -> PathBuf {
    let name = target.file_name().unwrap_or(OsStr::new("out.mp4"));
    target.with_file_name(fsutil::random_name(&temp_prefix(name, tag, job), fsutil::TEMP_SUFFIX))
}

/// A temporary name [`temp_for`] (or a sidecar's) gives: the file it is for, the daemon's tag, the job.
pub fn parse_temp(name: &OsStr) -> Option<(&str, &str, u64)> {
    let s = name.to_str()?.strip_prefix('.')?.strip_suffix(fsutil::TEMP_SUFFIX)?;
    let (rest, random) = s.rsplit_once('.')?;
    if random.len() != fsutil::RANDOM_LEN || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let (file, mark) = rest.rsplit_once('.')?;
    let (tag, job) = mark.strip_prefix("ltx")?.split_once('-')?;
    Some((file, tag, job.parse().ok()?))
}

type FaultHook = Box<dyn Fn(&str) -> io::Result<()> + Send + Sync>;
static FAULT: OnceLock<FaultHook> = OnceLock::new();

/// For test daemons only (the shipped `ltxd` installs none): called at each step of finishing a job's output,
/// by name — `output-written` (the engine's file is there), `output-linked` (the video has its name),
/// `sidecar-write` (the sidecar's bytes are next), `output-placed` (both placed and synced, the job not yet
/// recorded). An error it returns is that step's error; it may end the process to stand for a crash there.
pub fn set_fault_hook(hook: FaultHook) {
    let _ = FAULT.set(hook);
}

pub(crate) fn fault(point: &str) -> io::Result<()> {
    FAULT.get().map_or(Ok(()), |hook| hook(point))
}

/// Why a finished job's output could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("the engine reported success but wrote no file")]
    NoFile,
    #[error("cannot place {}: {source}", path.display())]
    Video { path: PathBuf, source: io::Error },
    #[error("cannot write the sidecar {}: {source} (the video was not kept)", path.display())]
    Sidecar { path: PathBuf, source: io::Error },
}

/// A job's placed output: the video and its sidecar under their names, synced. The engine's temporary name
/// still links the video until [`Placement::commit`], so a crash before the job is recorded is recognised at
/// start-up.
#[derive(Debug)]
pub struct Placement {
    dir: Dir,
    temp: OsString,
    pub video: PathBuf,
    pub sidecar: PathBuf,
}

impl Placement {
    /// After the job is recorded completed: the temporary name goes.
    pub fn commit(self) {
        let _ = self.dir.remove(&self.temp);
    }
}

fn numbered(name: &OsStr, n: u32) -> OsString {
    if n == 0 {
        return name.to_os_string();
    }
    let p = Path::new(name);
    let stem = p.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let ext = p.extension().map_or_else(String::new, |e| format!(".{}", e.to_string_lossy()));
    format!("{stem}-{n}{ext}").into()
}

fn sidecar_name(video: &OsStr) -> OsString {
    Path::new(video).with_extension("json").into_os_string()
}

/// Links the file `tmp` names at `base` — or `base-1`, `base-2`, … — where neither that name nor its
/// sidecar's is taken; never replaces anything.
fn link_free(dir: &Dir, tmp: &OsStr, base: &OsStr) -> io::Result<(OsString, Placed)> {
    for n in 0..10_000 {
        let cand = numbered(base, n);
        if dir.stat(&sidecar_name(&cand))?.is_some() {
            continue;
        }
        match dir.place_new(tmp, &cand) {
            Ok(how) => return Ok((cand, how)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free output name"))
}

/// Writes `bytes` as `name` in `dir`: a temporary file (prefix `prefix`), placed without replacing anything.
fn write_sidecar(dir: &Dir, name: &OsStr, prefix: &str, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = dir.temp(prefix)?;
    fault("sidecar-write")?;
    tmp.write_all(bytes)?;
    tmp.place_new(name, 0o644)
}

/// Places the engine's file `tmp` (0600 until now, then 0644) at `target` — or `target-1`, … where that or its
/// sidecar's name is taken — never replacing anything, then writes the sidecar `sidecar(final path)` next to
/// it; the video, the sidecar and their directory are fsynced. On a sidecar failure nothing is kept.
pub fn place(
    tmp: &Path,
    target: &Path,
    sidecar: impl FnOnce(&Path) -> io::Result<Vec<u8>>,
) -> Result<Placement, OutputError> {
    let video_err = |source| OutputError::Video { path: target.to_path_buf(), source };
    let (dir, tmp_name) = Dir::of(tmp).map_err(video_err)?;
    let file = match dir.open_own(&tmp_name) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OutputError::NoFile),
        Err(e) => return Err(video_err(e)),
    };
    let base = target.file_name().unwrap_or(OsStr::new("out.mp4"));
    let (name, how) = fault("output-written")
        .and_then(|()| file.sync_all())
        .and_then(|()| file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644)))
        .and_then(|()| link_free(&dir, &tmp_name, base))
        .map_err(video_err)?;
    let video = dir.join(&name);
    let json = sidecar_name(&name);
    let prefix = parse_temp(&tmp_name)
        .map_or_else(|| format!(".{}.", json.to_string_lossy()), |(_, tag, job)| temp_prefix(&json, tag, job));
    let written = fault("output-linked")
        .and_then(|()| sidecar(&video))
        .and_then(|bytes| write_sidecar(&dir, &json, &prefix, &bytes))
        .and_then(|()| dir.sync());
    if let Err(source) = written {
        // No video without its sidecar: its names go (the final one only while it is still this file).
        let ours = file.metadata().ok().zip(dir.stat(&name).ok().flatten()).is_some_and(|(m, s)| s.is(&m));
        if ours {
            let _ = dir.remove(&name);
        }
        if how == Placed::Linked {
            let _ = dir.remove(&tmp_name);
        }
        return Err(OutputError::Sidecar { path: dir.join(&json), source });
    }
    Ok(Placement { sidecar: dir.join(&json), dir, temp: tmp_name, video })
}

/// The sidecar of `rec`'s output `output`: the completed job as `ltxctl --json show` prints it, with the memory
/// decision it ran under and the versions that made it ([`ltx_protocol::json::sidecar_json`], `docs/json.md`).
pub fn sidecar(
    rec: &JobRecord,
    output: &Path,
    finished_ms: u64,
    timings: &[(String, u64)],
    decision: &ltx_protocol::MemoryDecision,
) -> io::Result<Vec<u8>> {
    let done = JobRecord {
        state: ltx_protocol::JobState::Completed,
        finished_ms: Some(finished_ms),
        output: Some(output.to_path_buf()),
        error_code: None,
        message: None,
        timings: timings.to_vec(),
        ..rec.clone()
    };
    serde_json::to_vec_pretty(&ltx_protocol::json::sidecar_json(&done, decision)).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(_: &Path) -> io::Result<Vec<u8>> {
        Ok(b"{}".to_vec())
    }

    #[test]
    fn names_and_no_overwrite() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_795_737_600_000), "2026-11-27");
        assert_eq!(slug("A cat, on the MOON!  ünïcode"), "a-cat-on-the-moon-n-code");
        assert_eq!(slug("日本"), "video");
        assert!(slug(&"word ".repeat(40)).len() <= 48);
        let dir = tempfile::tempdir().unwrap();
        let t = target(None, dir.path(), 0, "a cat", 7);
        assert_eq!(t, dir.path().join("1970-01-01_a-cat_7.mp4"));
        let tag = instance_tag(Path::new("/state"));
        for i in 0..3 {
            let tmp = temp_for(&t, &tag, i);
            assert_eq!(parse_temp(tmp.file_name().unwrap()), Some(("1970-01-01_a-cat_7.mp4", tag.as_str(), i)));
            fsutil::write_new(&tmp, &[i as u8], 0o600).unwrap();
            let got = place(&tmp, &t, json).unwrap();
            assert!(tmp.exists(), "the temporary name stays until the job is recorded");
            let video = got.video.clone();
            got.commit();
            assert_eq!(std::fs::read(&video).unwrap(), [i as u8]);
            assert!(!tmp.exists());
        }
        assert!(dir.path().join("1970-01-01_a-cat_7-2.mp4").exists());
        assert!(dir.path().join("1970-01-01_a-cat_7-2.json").exists());
        assert_eq!(std::fs::read(&t).unwrap(), [0]);
        assert_eq!(parse_temp(OsStr::new(".x.mp4.1.part")), None);
    }

    #[test]
    fn a_taken_sidecar_name_moves_the_video_on_and_a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("x.mp4");
        std::fs::write(dir.path().join("x.json"), b"someone else's").unwrap();
        let tmp = temp_for(&t, "0", 1);
        assert!(matches!(place(&tmp, &t, json), Err(OutputError::NoFile)));
        fsutil::write_new(&tmp, b"v", 0o600).unwrap();
        let got = place(&tmp, &t, json).unwrap();
        assert_eq!((got.video.clone(), got.sidecar.clone()), (dir.path().join("x-1.mp4"), dir.path().join("x-1.json")));
        assert_eq!(std::fs::read(dir.path().join("x.json")).unwrap(), b"someone else's");
    }

    #[test]
    fn a_sidecar_failure_keeps_neither_file() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("x.mp4");
        let tmp = temp_for(&t, "0", 1);
        fsutil::write_new(&tmp, b"v", 0o600).unwrap();
        let err = place(&tmp, &t, |_| Err(io::Error::from_raw_os_error(libc::ENOSPC))).unwrap_err();
        assert!(matches!(err, OutputError::Sidecar { .. }) && err.to_string().contains("x.json"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing is left behind");
    }
}
