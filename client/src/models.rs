//! `ltxctl models …`: list, pull (with confirmation and progress), rm, verify, dir.
use crate::cli::ModelsCmd;
use crate::daemon::connect;
use crate::exit::{Failure, Res, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::{json, print};
use ltx_protocol::catalogue::{self, ModelFile};
use ltx_protocol::client::{ClientError, ModelsDir, Removed};
use ltx_protocol::models::*;
use ltx_protocol::{EventKind, ModelVariant, Pipeline};
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub async fn list_info(socket: &Path) -> Result<ModelsInfo, Failure> {
    Ok(connect(socket).await?.models_list().await?)
}

/// Bytes still to fetch for `f` in this state (0 when installed or linkable).
fn to_fetch(f: &ModelFile, state: &FileState) -> u64 {
    match state {
        FileState::Missing => f.size,
        FileState::Partial { bytes } => f.size.saturating_sub(*bytes),
        FileState::Downloading { done, total } => total.saturating_sub(*done),
        FileState::Installed { .. } | FileState::InHfCache { .. } => 0,
    }
}

fn state_text(i: &ModelFileInfo) -> String {
    match &i.state {
        FileState::Installed { .. } if i.verified => "installed, verified".into(),
        FileState::Installed { .. } => "installed".into(),
        FileState::Partial { bytes } => format!("partial ({} of ≈{})", human_bytes(*bytes), human_bytes(i.size)),
        FileState::Downloading { done, total } => {
            format!("downloading {}%", if *total > 0 { done * 100 / total } else { 0 })
        }
        FileState::InHfCache { path, .. } => format!("in the Hugging Face cache ({})", path.display()),
        FileState::Missing => "missing".into(),
    }
}

/// Per variant (default pipeline): ready, and what is left to fetch.
pub fn variant_summary(info: &ModelsInfo) -> Vec<(ModelVariant, Vec<String>, u64)> {
    let by_name: BTreeMap<&str, &ModelFileInfo> = info.files.iter().map(|f| (f.name.as_str(), f)).collect();
    ModelVariant::ALL
        .into_iter()
        .map(|v| {
            let (mut missing, mut bytes) = (Vec::new(), 0);
            for f in catalogue::needs(v, v.default_pipeline()) {
                let state = by_name.get(f.local).map_or(FileState::Missing, |i| i.state.clone());
                if !matches!(state, FileState::Installed { .. }) {
                    missing.push(f.local.to_string());
                    bytes += to_fetch(f, &state);
                }
            }
            (v, missing, bytes)
        })
        .collect()
}

pub async fn run(cmd: ModelsCmd, socket: &Path, json: bool) -> Res {
    match cmd {
        ModelsCmd::List => list(socket, json).await,
        ModelsCmd::Pull { variant, pipeline, yes } => {
            let pipeline = pipeline.unwrap_or(variant.default_pipeline());
            pull(socket, variant, pipeline, yes, json).await
        }
        ModelsCmd::Rm { variant, yes } => remove(socket, variant, yes, json).await,
        ModelsCmd::Verify { variant } => verify(socket, variant, json).await,
        ModelsCmd::Dir { path } => dir(socket, path, json).await,
    }
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
    for (v, missing, bytes) in &summary {
        if missing.is_empty() {
            println!("{:<14} ready", v.name());
        } else {
            println!(
                "{:<14} {} file(s) to fetch (≈{}) — `{}`",
                v.name(),
                missing.len(),
                human_bytes(*bytes),
                catalogue::pull_command(*v, v.default_pipeline())
            );
        }
    }
    println!();
    println!("{:<70} {:>9}  STATE", "FILE", "SIZE");
    for i in &info.files {
        let size = match i.state {
            FileState::Installed { bytes } | FileState::InHfCache { bytes, .. } if bytes > 0 => human_bytes(bytes),
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

async fn pull(socket: &Path, variant: ModelVariant, pipeline: Pipeline, yes: bool, json: bool) -> Res {
    let info = list_info(socket).await?;
    let by_name: BTreeMap<&str, &ModelFileInfo> = info.files.iter().map(|f| (f.name.as_str(), f)).collect();
    let needs = catalogue::needs(variant, pipeline);
    let (mut count, mut bytes) = (0, 0);
    for f in &needs {
        let state = by_name.get(f.local).map_or(FileState::Missing, |i| i.state.clone());
        let b = to_fetch(f, &state);
        if b > 0 {
            count += 1;
            bytes += b;
        }
    }
    let what = format!("{} ({} pipeline)", variant.name(), pipeline.name());
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
    let files = events.models_pull(variant, Some(pipeline)).await?;
    if json {
        print::json(json::models_pull(variant, pipeline, &files));
    }
    let mut waiting: BTreeSet<String> = BTreeSet::new();
    for f in &files {
        match &f.action {
            PullAction::Started | PullAction::Joined => {
                waiting.insert(f.name.clone());
            }
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
            "downloading {} file(s) in ltxd (Ctrl-C detaches; the download goes on — run this again to watch)",
            waiting.len()
        );
    }
    let mut view = Progress::new(json);
    let mut failed = Vec::new();
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
                failed.push(format!("{file}: {message}"));
                waiting.remove(file);
            }
            _ => {}
        }
    }
    view.finish();
    if !failed.is_empty() {
        return Err(Failure::new(EXIT_FAILED, format!("download failed:\n  {}", failed.join("\n  "))));
    }
    if !json {
        println!("{what} is installed and verified");
    }
    Ok(EXIT_OK)
}

/// Progress: NDJSON, one bar per file on a terminal, else a line per 10 %.
struct Progress {
    json: bool,
    bars: Option<(indicatif::MultiProgress, BTreeMap<String, indicatif::ProgressBar>)>,
    printed: BTreeMap<String, u64>,
}

impl Progress {
    fn new(json: bool) -> Self {
        let bars =
            (!json && std::io::stdout().is_terminal()).then(|| (indicatif::MultiProgress::new(), BTreeMap::new()));
        Self { json, bars, printed: BTreeMap::new() }
    }

    fn show(&mut self, ev: &DownloadEvent) {
        if self.json {
            let ev = ltx_protocol::Event { job: MODEL_EVENTS, kind: EventKind::Download(ev.clone()) };
            return print::json(ltx_protocol::json::event_json(&ev));
        }
        if let Some((multi, bars)) = &mut self.bars {
            let bar = bars.entry(ev.file().to_string()).or_insert_with(|| {
                let b = multi.add(indicatif::ProgressBar::new(0));
                let style = indicatif::ProgressStyle::with_template(
                    "{prefix:40!} {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {eta:>4} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
                b.set_style(style);
                b.set_prefix(ev.file().rsplit('/').next().unwrap_or_default().to_string());
                b
            });
            match ev {
                DownloadEvent::Progress { done, total, .. } => {
                    bar.set_length(*total);
                    bar.set_position(*done);
                    bar.set_message("");
                }
                DownloadEvent::Retrying { attempt, delay_ms, reason, .. } => {
                    bar.set_message(format!("retry {attempt} in {}s: {reason}", delay_ms / 1000))
                }
                DownloadEvent::Done { .. } => bar.finish_with_message("verified"),
                DownloadEvent::Failed { message, .. } => bar.abandon_with_message(format!("failed: {message}")),
            }
            return;
        }
        match ev {
            DownloadEvent::Progress { file, done, total } => {
                let pct = if *total > 0 { done * 100 / total } else { 100 };
                let last = self.printed.get(file).copied();
                if last.is_none_or(|l| pct >= l + 10 || (pct == 100 && l < 100)) {
                    self.printed.insert(file.clone(), pct);
                    println!("{file}: {pct}% ({} of {})", human_bytes(*done), human_bytes(*total));
                }
            }
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
        if let Some((multi, _)) = &self.bars {
            let _ = multi.clear();
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
    let bad = results.iter().filter(|r| r.outcome != VerifyOutcome::Ok).count();
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
