//! `ltxctl models …`: list, pull (with confirmation and progress), rm, verify, dir.
use crate::cli::ModelsCmd;
use crate::daemon::connect;
use crate::exit::{Failure, Res, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::{json, print};
use ltx_protocol::catalogue;
use ltx_protocol::client::{ClientError, ModelsDir, Removed};
use ltx_protocol::models::*;
use ltx_protocol::{EventKind, ModelVariant, Pipeline};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub async fn list_info(socket: &Path) -> Result<ModelsInfo, Failure> {
    Ok(connect(socket).await?.models_list().await?)
}

/// Bytes still to fetch for `i` (0 when installed or linkable).
fn to_fetch(i: &ModelFileInfo) -> u64 {
    match &i.state {
        FileState::Missing | FileState::Queued => i.size,
        FileState::Partial { bytes } => i.size.saturating_sub(*bytes),
        FileState::Downloading { done, total } => total.saturating_sub(*done),
        FileState::Installed { .. } | FileState::InHfCache { .. } => 0,
    }
}

fn state_text(i: &ModelFileInfo) -> String {
    match &i.state {
        FileState::Installed { .. } if i.own_split => "installed (the directory's own shard split)".into(),
        FileState::Installed { .. } if i.verified => "installed, verified".into(),
        FileState::Installed { .. } => "installed".into(),
        FileState::Partial { bytes } => format!("partial ({} of ≈{})", human_bytes(*bytes), human_bytes(i.size)),
        FileState::Downloading { total: 0, .. } => "starting".into(),
        FileState::Downloading { done, total } => format!("downloading {}%", done * 100 / total),
        FileState::InHfCache { path, .. } => format!("in the Hugging Face cache ({})", path.display()),
        FileState::Missing if i.own_split => "missing (the directory's own shard split: not on the Hub)".into(),
        FileState::Missing => "missing".into(),
        FileState::Queued => "queued".into(),
    }
}

/// Per variant (default pipeline): what is left to fetch.
pub fn variant_summary(info: &ModelsInfo) -> Vec<VariantState> {
    ModelVariant::ALL
        .into_iter()
        .map(|variant| {
            let lacking: Vec<_> = info
                .needed(variant, variant.default_pipeline())
                .into_iter()
                .filter(|i| !matches!(i.state, FileState::Installed { .. }))
                .collect();
            VariantState {
                variant,
                missing: lacking.iter().map(|i| i.name.clone()).collect(),
                bytes: lacking.iter().map(|i| to_fetch(i)).sum(),
                downloading: lacking
                    .iter()
                    .filter(|i| matches!(i.state, FileState::Downloading { .. } | FileState::Queued))
                    .count(),
            }
        })
        .collect()
}

/// Below this much free space left after a download, the pull warns (the system's swap, the videos).
const MIN_FREE_AFTER: u64 = 10_000_000_000;

/// The warning for a download of `bytes` into `dir` with `free` bytes free, when it leaves (nearly) nothing.
fn space_warning(dir: &Path, free: Option<u64>, bytes: u64) -> Option<String> {
    let free = free?;
    let fix = "free some space, or download to another disk: `ltxctl models dir PATH`";
    if bytes > free {
        return Some(format!(
            "warning: this needs ≈{} but {} has only {} free: the download stops when the disk is full — {fix}",
            human_bytes(bytes),
            dir.display(),
            human_bytes(free)
        ));
    }
    let left = free - bytes;
    (left < MIN_FREE_AFTER).then(|| {
        format!(
            "warning: this leaves only ≈{} free in {} (keep {} or more for the system's swap and the videos) — {fix}",
            human_bytes(left),
            dir.display(),
            human_bytes(MIN_FREE_AFTER)
        )
    })
}

pub async fn run(cmd: ModelsCmd, socket: &Path, json: bool) -> Res {
    match cmd {
        ModelsCmd::List => list(socket, json).await,
        ModelsCmd::Pull { variant, within, pipeline, preview, yes } => {
            let variant = match within {
                None => variant,
                Some(name) => {
                    let g = variant.rules().generation;
                    ModelVariant::find(g, &name).ok_or_else(|| {
                        let names: Vec<_> = ModelVariant::of(g).map(|v| v.rules().short).collect();
                        Failure::new(
                            EXIT_INVALID,
                            format!("{} has no variant {name:?} (it has {})", g.rules().name, names.join(", ")),
                        )
                    })?
                }
            };
            let pipeline = pipeline.unwrap_or(variant.default_pipeline());
            pull(socket, variant, pipeline, preview, yes, json).await
        }
        ModelsCmd::Rm { variant, yes } => remove(socket, variant, yes, json).await,
        ModelsCmd::Verify { variant } => verify(socket, variant, json).await,
        ModelsCmd::Dir { path } => dir(socket, path, json).await,
        ModelsCmd::Cancel => cancel(socket, json).await,
    }
}

async fn cancel(socket: &Path, json: bool) -> Res {
    let files = connect(socket).await?.models_cancel().await?;
    if json {
        print::json(json::models_cancelled(&files));
    } else if files.is_empty() {
        println!("no download is running");
    } else {
        for f in &files {
            println!("cancelled {f}");
        }
        println!("partial files are kept: `ltxctl models pull …` resumes them");
    }
    Ok(EXIT_OK)
}

async fn list(socket: &Path, json: bool) -> Res {
    let info = list_info(socket).await?;
    let summary = variant_summary(&info);
    if json {
        print::json(json::models_list(&info, &summary));
        return Ok(EXIT_OK);
    }
    let free = info.disk_free.map_or("unknown".into(), human_bytes);
    println!("models directory: {} ({free} free)", info.dir.display());
    if let Some(c) = &info.hf_cache {
        println!("Hugging Face cache (reused, not copied): {}", c.display());
    }
    println!();
    for s in &summary {
        let name = s.variant.name();
        if s.missing.is_empty() {
            println!("{name:<14} ready");
        } else if s.downloading == s.missing.len() {
            println!(
                "{name:<14} downloading: {} file(s) left (≈{}) — `ltxctl models cancel` stops it",
                s.missing.len(),
                human_bytes(s.bytes)
            );
        } else {
            let running =
                if s.downloading > 0 { format!(", {} of them downloading", s.downloading) } else { String::new() };
            println!(
                "{name:<14} {} file(s) to fetch (≈{}{running}) — `{}`",
                s.missing.len(),
                human_bytes(s.bytes),
                catalogue::pull_command(s.variant, s.variant.default_pipeline())
            );
        }
    }
    println!();
    println!("{:<70} {:>9}  STATE", "FILE", "SIZE");
    for i in &info.files {
        let size = match i.state {
            FileState::Installed { bytes } | FileState::InHfCache { bytes, .. } if bytes > 0 => human_bytes(bytes),
            _ if i.own_split => "?".into(),
            _ => format!("≈{}", human_bytes(i.size)),
        };
        println!("{:<70} {:>9}  {}", i.name, size, state_text(i));
    }
    Ok(EXIT_OK)
}

fn confirm(question: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(EXIT_INVALID, format!("{question} — pass -y to confirm without a terminal")));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| Failure::new(EXIT_FAILED, e.to_string()))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

async fn pull(socket: &Path, variant: ModelVariant, pipeline: Pipeline, preview: bool, yes: bool, json: bool) -> Res {
    let info = list_info(socket).await?;
    let generation = variant.rules().generation;
    let preview_name = preview.then(|| catalogue::Component::PreviewDecoder(generation).name());
    let mut wanted = info.needed(variant, pipeline);
    wanted.extend(info.files.iter().filter(|f| Some(&f.component) == preview_name.as_ref()));
    let fetch: Vec<u64> = wanted.into_iter().map(to_fetch).filter(|&b| b > 0).collect();
    let (count, bytes) = (fetch.len(), fetch.iter().sum::<u64>());
    let what = format!("{} ({} pipeline)", variant.name(), pipeline.name());
    if count > 0 {
        if let Some(w) = space_warning(&info.dir, info.disk_free, bytes) {
            eprintln!("{w}");
        }
    }
    if count > 0 && !yes {
        let free = info.disk_free.map_or("unknown".into(), human_bytes);
        let q = format!(
            "Download {count} file(s) for {what}, ≈{} into {} ({free} free)?",
            human_bytes(bytes),
            info.dir.display()
        );
        if !confirm(&q)? {
            eprintln!("nothing downloaded");
            return Ok(EXIT_OK);
        }
    }
    // Subscribe first, so no event of a download (ours or one we join) is missed; events that arrive before the
    // pull's reply are kept for `next`.
    let mut events = connect(socket).await?.subscribe(None, false).await?;
    let mut files = events.models_pull(variant, Some(pipeline)).await?;
    if preview {
        files.extend(events.models_pull_preview(generation).await?);
    }
    if json {
        print::json(json::models_pull(variant, pipeline, &files));
    }
    let mut waiting: Vec<String> = Vec::new();
    for f in &files {
        match &f.action {
            PullAction::Started | PullAction::Joined => waiting.push(f.name.clone()),
            PullAction::Linked(src) if !json => println!("{}: linked from {}", f.name, src.display()),
            _ => {}
        }
    }
    if waiting.is_empty() {
        if !json {
            println!("{what} is installed in {}", info.dir.display());
        }
        return Ok(EXIT_OK);
    }
    if !json {
        println!(
            "downloading {} file(s) in ltxd (Ctrl-C detaches and the download goes on: run this again to watch, `ltxctl models cancel` to stop it)",
            waiting.len()
        );
    }
    let mut view = Progress::new(json, &waiting);
    let mut waiting: BTreeSet<String> = waiting.into_iter().collect();
    let mut failed: Vec<(String, String)> = Vec::new();
    while !waiting.is_empty() {
        let e = events.next().await?.ok_or(ClientError::Closed)?;
        let (MODEL_EVENTS, EventKind::Download(ev)) = (e.job, &e.kind) else { continue };
        if !waiting.contains(ev.file()) {
            continue;
        }
        view.show(ev);
        match ev {
            DownloadEvent::Done { file, .. } => {
                waiting.remove(file);
            }
            DownloadEvent::Failed { file, message } => {
                failed.push((file.clone(), message.clone()));
                waiting.remove(file);
            }
            _ => {}
        }
    }
    view.finish();
    if !failed.is_empty() {
        return Err(Failure::new(EXIT_FAILED, format!("download failed:\n  {}", failures(&failed).join("\n  "))));
    }
    if !json {
        println!("{what} is installed and verified");
    }
    Ok(EXIT_OK)
}

/// `file: message` per failure, the files that failed for the same reason (an unreachable Hub) on one line.
fn failures(failed: &[(String, String)]) -> Vec<String> {
    let mut by_message: Vec<(&str, Vec<&str>)> = Vec::new();
    for (file, message) in failed {
        match by_message.iter_mut().find(|(m, _)| m == message) {
            Some((_, files)) => files.push(file),
            None => by_message.push((message, vec![file])),
        }
    }
    by_message
        .into_iter()
        .map(|(message, files)| match files[..] {
            [one] => format!("{one}: {message}"),
            _ => format!("{} files ({}): {message}", files.len(), files.join(", ")),
        })
        .collect()
}

/// Progress: NDJSON; on a terminal a bar per file (queued ones too, full names); else one line per file event
/// (started, retrying, done, failed).
struct Progress {
    json: bool,
    bars: Option<Bars>,
    started: BTreeSet<String>,
}

struct Bars {
    multi: indicatif::MultiProgress,
    bars: BTreeMap<String, indicatif::ProgressBar>,
    /// While the size is unknown (queued, resolving): no bar, which would read full at 0 of 0 bytes.
    waiting: indicatif::ProgressStyle,
    running: indicatif::ProgressStyle,
}

impl Progress {
    fn new(json: bool, files: &[String]) -> Self {
        let bars = (!json && std::io::stdout().is_terminal()).then(|| {
            let width = files.iter().map(|f| f.chars().count()).max().unwrap_or(0);
            let style = |t: String| {
                indicatif::ProgressStyle::with_template(&t).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            };
            let multi = indicatif::MultiProgress::new();
            let waiting = style(format!("{{prefix:{width}}} {{msg}}"));
            let bars = files
                .iter()
                .map(|f| {
                    let b = multi.add(indicatif::ProgressBar::new(0).with_style(waiting.clone()));
                    b.set_prefix(f.clone());
                    b.set_message("queued");
                    (f.clone(), b)
                })
                .collect();
            let running = style(format!(
                "{{prefix:{width}}} {{bar:30}} {{bytes:>10}}/{{total_bytes:10}} {{bytes_per_sec:>12}} {{eta:>4}} {{msg}}"
            ));
            Bars { multi, bars, waiting, running }
        });
        Self { json, bars, started: BTreeSet::new() }
    }

    fn show(&mut self, ev: &DownloadEvent) {
        if self.json {
            let ev = ltx_protocol::Event { job: MODEL_EVENTS, kind: EventKind::Download(ev.clone()) };
            return print::json(ltx_protocol::json::event_json(&ev));
        }
        if let Some(b) = &self.bars {
            let Some(bar) = b.bars.get(ev.file()) else { return };
            match ev {
                DownloadEvent::Progress { total: 0, .. } => bar.set_message("starting"),
                DownloadEvent::Progress { done, total, .. } => {
                    if bar.length() == Some(0) {
                        bar.set_style(b.running.clone());
                    }
                    bar.set_length(*total);
                    bar.set_position(*done);
                    bar.set_message("");
                }
                DownloadEvent::Retrying { attempt, delay_ms, reason, .. } => {
                    bar.set_message(format!("retry {attempt} in {}s: {reason}", delay_ms / 1000))
                }
                DownloadEvent::Done { .. } => bar.finish_with_message("verified"),
                DownloadEvent::Failed { message, .. } => {
                    bar.set_style(b.waiting.clone());
                    bar.abandon_with_message(format!("failed: {message}"))
                }
            }
            return;
        }
        match ev {
            DownloadEvent::Progress { file, done, total } if self.started.insert(file.clone()) => {
                let from = if *done > 0 { format!(", from {}", human_bytes(*done)) } else { String::new() };
                println!("{file}: started, {}{from}", human_bytes(*total))
            }
            DownloadEvent::Progress { .. } => {}
            DownloadEvent::Retrying { file, attempt, delay_ms, reason } => {
                println!("{file}: {reason}; retry {attempt} in {:.1}s", *delay_ms as f64 / 1000.0)
            }
            DownloadEvent::Done { file, bytes, sha256 } => {
                println!("{file}: done, {} (sha256 {sha256} verified)", human_bytes(*bytes))
            }
            DownloadEvent::Failed { file, message } => println!("{file}: FAILED: {message}"),
        }
    }

    fn finish(&mut self) {
        if let Some(b) = &self.bars {
            let _ = b.multi.clear();
        }
    }
}

async fn remove(socket: &Path, variant: ModelVariant, yes: bool, json: bool) -> Res {
    if !yes && !confirm(&format!("Delete the {} model files?", variant.name()))? {
        eprintln!("nothing deleted");
        return Ok(EXIT_OK);
    }
    let Removed { files, bytes } = connect(socket).await?.models_remove(variant).await?;
    if json {
        print::json(json::models_removed(&files, bytes));
    } else if files.is_empty() {
        println!("nothing of {} to remove (files shared with another installed variant are kept)", variant.name());
    } else {
        for f in &files {
            println!("removed {f}");
        }
        println!("freed {}", human_bytes(bytes));
    }
    Ok(EXIT_OK)
}

async fn verify(socket: &Path, variant: Option<ModelVariant>, json: bool) -> Res {
    if !json {
        eprintln!("verifying (this reads every file once)…");
    }
    let results = connect(socket).await?.models_verify(variant).await?;
    let bad = results.iter().filter(|r| !matches!(r.outcome, VerifyOutcome::Ok | VerifyOutcome::OwnSplit)).count();
    if json {
        print::json(json::models_verified(&results));
    } else {
        if results.is_empty() {
            println!("no model files installed");
        }
        for r in &results {
            match &r.outcome {
                VerifyOutcome::Ok => println!("ok        {}", r.name),
                VerifyOutcome::Mismatch { expected, actual } => println!(
                    "CORRUPT   {}: sha256 {actual}, the Hub publishes {expected} — delete it and run `ltxctl models pull …` again",
                    r.name
                ),
                VerifyOutcome::Missing => println!("missing   {}", r.name),
                VerifyOutcome::Unverifiable(why) => println!("unchecked {}: {why}", r.name),
                VerifyOutcome::OwnSplit => {
                    println!("own       {}: the directory's own shard split, not on the Hub (not checked)", r.name)
                }
            }
        }
    }
    Ok(if bad == 0 { EXIT_OK } else { EXIT_FAILED })
}

async fn dir(socket: &Path, path: Option<PathBuf>, json: bool) -> Res {
    let path = match path {
        Some(p) if p.is_relative() => {
            Some(std::env::current_dir().map_err(|e| Failure::new(EXIT_FAILED, e.to_string()))?.join(p))
        }
        p => p,
    };
    let set = path.is_some();
    let ModelsDir { path, configured, restart_needed } = connect(socket).await?.models_dir(path).await?;
    if json {
        print::json(json::models_dir(&path, &configured, restart_needed));
    } else if restart_needed {
        // The config file names another directory than the running daemon's (edited by hand).
        println!(
            "{}\n(the config file says {}: `ltxctl models dir {}` switches to it, as does a restart)",
            path.display(),
            configured.display(),
            configured.display()
        );
    } else if set {
        println!("models directory is now {} (saved in the config file)", path.display());
    } else {
        println!("{}", path.display());
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_space_warning_and_the_failures() {
        let (dir, gb) = (Path::new("/m"), 1_000_000_000);
        assert_eq!(space_warning(dir, None, 70 * gb), None);
        assert_eq!(space_warning(dir, Some(80 * gb), 70 * gb), None);
        let w = space_warning(dir, Some(70_200_000_000), 68_400_000_000).unwrap();
        assert!(w.starts_with("warning: this leaves only ≈1.8 GB free in /m"), "{w}");
        let w = space_warning(dir, Some(60 * gb), 70 * gb).unwrap();
        assert!(w.starts_with("warning: this needs ≈70.0 GB but /m has only 60.0 GB free"), "{w}");
        let f = |a: &str, b: &str| (a.to_string(), b.to_string());
        let failed = [f("a", "no route"), f("b", "disk full"), f("c", "no route")];
        assert_eq!(failures(&failed), ["2 files (a, c): no route", "b: disk full"]);
    }
}
