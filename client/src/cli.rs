//! The command line of `ltxctl`: every clap type, with defaults and value names read from the rule table.
use clap::{builder::TypedValueParser as _, Parser, Subcommand};
use ltx_protocol::*;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ltxctl",
    version,
    about = "Control the ltxd video generation daemon",
    after_help = "Exit codes: 0 done, 1 failed, 2 cancelled, 3 daemon unavailable, 4 busy or invalid request, \
                  5 detached (the job keeps running)"
)]
pub struct Cli {
    /// Daemon socket (default: $LTX_SOCKET, the config file, or the platform default).
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    /// Machine-readable output (JSON; NDJSON for event streams).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// `--variant`: the names in the rule table ([`ltx_protocol::rules::VARIANTS`]), or a generation's id for its
/// first variant (`ltx-2.3` = `ltx-2.3-distilled`).
pub fn variant_arg() -> impl clap::builder::TypedValueParser<Value = ModelVariant> {
    let names = ModelVariant::ALL.map(ModelVariant::name).into_iter().chain(Generation::ALL.map(Generation::id));
    clap::builder::PossibleValuesParser::new(names).map(|s| parse_variant(&s).unwrap_or(ModelVariant::ALL[0]))
}

/// A variant's name, or a generation's id for its first variant.
pub fn parse_variant(s: &str) -> Option<ModelVariant> {
    ModelVariant::parse(s).or_else(|| Generation::parse(s).and_then(|g| ModelVariant::of(g).next()))
}

/// `--upscale`: the factors of [`Upscale`].
pub fn upscale_arg() -> impl clap::builder::TypedValueParser<Value = Upscale> {
    clap::builder::PossibleValuesParser::new(Upscale::ALL.map(Upscale::name))
        .map(|s| Upscale::parse(&s).unwrap_or(Upscale::X2))
}

/// `--model`: the generations' ids in the rule table ([`ltx_protocol::rules::GENERATIONS`]).
pub fn model_arg() -> impl clap::builder::TypedValueParser<Value = Generation> {
    clap::builder::PossibleValuesParser::new(Generation::ALL.map(Generation::id))
        .map(|s| Generation::parse(&s).unwrap_or(Generation::ALL[0]))
}

fn model_help() -> String {
    let names: Vec<_> = ltx_protocol::rules::GENERATIONS.iter().map(|g| format!("{} = {}", g.id, g.name)).collect();
    format!("Model generation ({}; default: the newest installed)", names.join(", "))
}

/// `--pipeline`: the names in the rule table ([`ltx_protocol::rules::PIPELINES`]).
pub fn pipeline_arg() -> impl clap::builder::TypedValueParser<Value = Pipeline> {
    clap::builder::PossibleValuesParser::new(Pipeline::ALL.map(Pipeline::name))
        .map(|s| Pipeline::parse(&s).unwrap_or(Pipeline::ALL[0]))
}

/// `--size WIDTHxHEIGHT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u32, pub u32);

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.split_once(['x', 'X'])
            .and_then(|(w, h)| Some(Size(w.trim().parse().ok()?, h.trim().parse().ok()?)))
            .ok_or_else(|| format!("invalid size {s:?}: use WIDTHxHEIGHT, e.g. 768x512"))
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.0, self.1)
    }
}

/// The request `ltxctl submit` sends with no options (the rule table's first variant and its pipeline).
pub fn defaults() -> GenerationRequest {
    GenerationRequest::new("")
}

/// The guided pipelines' guidance defaults (the first generation's, as `--steps` and `--guidance` say).
fn guidance() -> ltx_protocol::rules::GuidanceDefaults {
    ltx_protocol::rules::GENERATIONS[0].guidance
}

fn pipelines_help() -> String {
    let lines: Vec<_> = ltx_protocol::rules::PIPELINES.iter().map(|p| format!("{}: {}", p.name, p.summary)).collect();
    format!("Pipeline (default: the variant's; {}). {}", defaults().pipeline.name(), lines.join(". "))
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// What the video shows.
    pub prompt: String,
    /// What the video must not show (guided pipelines; default: the generation's negative prompt).
    #[arg(long)]
    pub negative: Option<String>,
    #[arg(long, value_parser = model_arg(), help = model_help())]
    pub model: Option<Generation>,
    /// Model weights (default: the pipeline's, e.g. dev for one-stage and two-stage); with --model, its
    /// name within that generation (`--model ltx-2.3 --variant dev`).
    #[arg(long, value_parser = variant_arg())]
    pub variant: Option<ModelVariant>,
    #[arg(long, value_parser = pipeline_arg(), help = pipelines_help())]
    pub pipeline: Option<Pipeline>,
    #[arg(long, default_value_t = Size(defaults().width, defaults().height), help = ltx_protocol::rules::size_help())]
    pub size: Size,
    #[arg(long, default_value_t = defaults().frames, help = ltx_protocol::rules::frames_help())]
    pub frames: u32,
    #[arg(long, default_value_t = defaults().fps, help = ltx_protocol::rules::fps_help())]
    pub fps: u32,
    #[arg(long, help = ltx_protocol::rules::steps_help())]
    pub steps: Option<u32>,
    #[arg(long, help = ltx_protocol::rules::guidance_help())]
    pub guidance: Option<f32>,
    #[arg(long, help = format!("Audio CFG scale of the guided pipelines (default {})", guidance().audio_cfg))]
    pub audio_guidance: Option<f32>,
    #[arg(long, help = format!(
        "Spatio-temporal guidance scale, both modalities (default {}; 0 turns it off)", guidance().stg
    ))]
    pub stg: Option<f32>,
    #[arg(long, value_delimiter = ',', help = format!(
        "Transformer blocks STG perturbs, comma-separated (default {})",
        guidance().stg_blocks.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
    ))]
    pub stg_blocks: Option<Vec<u32>>,
    #[arg(long, help = format!(
        "Guidance rescale towards the conditional prediction's spread (default {}; 0 turns it off)",
        guidance().rescale
    ))]
    pub rescale: Option<f32>,
    #[arg(long, help = format!(
        "Audio↔video modality guidance scale (default {}; 1 turns it off)", guidance().modality
    ))]
    pub modality_guidance: Option<f32>,
    /// Random when absent; always recorded.
    #[arg(long)]
    pub seed: Option<u64>,
    /// First-frame image (PNG/JPEG/WebP); its bytes are sent to the daemon.
    #[arg(long)]
    pub image: Option<PathBuf>,
    #[arg(long, requires = "image", help = format!(
        "How closely the first frame keeps --image, 0 to 1 (default {}: exactly)", ltx_protocol::rules::IMAGE_STRENGTH
    ))]
    pub strength: Option<f32>,
    /// Generate the video without its soundtrack (skips the audio decode).
    #[arg(long)]
    pub no_audio: bool,
    /// Output .mp4 file or directory (default: the daemon's outputs dir).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Put the job at the front of the queue.
    #[arg(long)]
    pub front: bool,
    /// Keep the model loaded this long afterwards: 30s, 5m, 2h, 0 (unload), -1 (forever).
    #[arg(long, value_parser = KeepAlive::parse, allow_hyphen_values = true)]
    pub keep_alive: Option<KeepAlive>,
    /// Wait for the job and show its progress.
    #[arg(long, visible_alias = "follow")]
    pub wait: bool,
    /// Low-memory plan: encode, drop Gemma, denoise, drop the transformer, decode tiled.
    #[arg(long)]
    pub low_memory: bool,
    /// The two-stage pipelines' latent upscale: 2 (stage 1 at half size), or 1.5 on LTX-2.3 (stage 1 at two
    /// thirds; sizes then multiples of 96).
    #[arg(long, value_parser = upscale_arg(), default_value = "2")]
    pub upscale: Upscale,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Queue a generation job and print its id.
    Submit(Box<SubmitArgs>),
    /// Daemon status.
    Status,
    /// The running and pending jobs.
    Queue,
    /// Cancel a job (running: at the next step) or, with --all, every running and pending job.
    #[command(group = clap::ArgGroup::new("which").required(true).args(["id", "all"]))]
    Cancel {
        /// The job to cancel.
        id: Option<JobId>,
        /// Cancel the running job and every pending one.
        #[arg(long)]
        all: bool,
    },
    /// Finish the current job, then hold the queue.
    Pause,
    /// Run the queue again after `pause`.
    Resume,
    /// Finished jobs (completed, failed, cancelled, interrupted), newest first.
    History {
        /// How many jobs to list.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_HISTORY)))]
        limit: u32,
    },
    /// Details of one job.
    Show {
        /// The job (default: the running job, else the one that finished last).
        id: Option<JobId>,
    },
    /// Follow a job's progress until it ends.
    Follow {
        /// The job to follow.
        id: JobId,
        /// Show a preview of each denoising step inline (terminals with images: kitty, Ghostty, iTerm2,
        /// WezTerm; not inside tmux or screen); with --json, the preview events.
        #[arg(long)]
        preview: bool,
    },
    /// Open a finished job's video (printing its path when nothing can open it).
    Open {
        /// The job (default: the last one that made a video).
        id: Option<JobId>,
    },
    /// Loaded model components and when they expire.
    Ps,
    /// Load a model and keep it warm.
    Load {
        /// The weights to load (default: the newest installed generation's first installed variant).
        #[arg(long, value_parser = variant_arg())]
        variant: Option<ModelVariant>,
        /// How long it stays loaded: 30s, 5m, 2h, 0 (unload after use), -1 (forever); default: the config's.
        #[arg(long, value_parser = KeepAlive::parse, allow_hyphen_values = true)]
        keep_alive: Option<KeepAlive>,
    },
    /// Unload a model (all when no variant is given).
    Unload {
        /// The weights to unload (default: everything loaded).
        #[arg(long, value_parser = variant_arg())]
        variant: Option<ModelVariant>,
    },
    /// Start, stop or inspect the daemon.
    Daemon {
        #[command(subcommand)]
        action: DaemonCmd,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Model files: list, pull, rm, verify, dir.
    Models {
        #[command(subcommand)]
        cmd: ModelsCmd,
    },
    /// Check the installation: daemon, compute backend, memory, disk, socket, models, config — with fixes.
    Doctor,
    /// Install, remove or inspect the per-user service (launchd / systemd --user) that starts ltxd at login.
    Service {
        #[command(subcommand)]
        action: ServiceCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum DaemonCmd {
    /// Start ltxd (through the service manager when its service is installed).
    Start,
    /// Stop ltxd and wait until it has exited (a running job is marked interrupted).
    Stop,
    /// Stop ltxd if it runs, then start it.
    Restart,
    /// Whether ltxd runs, and its state (as `ltxctl status`).
    Status,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCmd {
    /// Every known model file: installed, partial, downloading, in a Hugging Face cache, or missing.
    List,
    /// Download what a variant needs (asks first, with the total size). Runs in the daemon: Ctrl-C detaches.
    Pull {
        /// The weights to download: a variant (`ltx-2.3-dev`, `distilled`), or a generation (`ltx-2.3`: its
        /// first variant, or the one `--variant` names in it).
        #[arg(value_parser = variant_arg())]
        variant: ModelVariant,
        /// With a generation: its variant by its name there (`ltxctl models pull ltx-2.3 --variant dev`).
        #[arg(long = "variant", value_name = "NAME")]
        within: Option<String>,
        /// The pipeline to fetch for (default: the variant's, e.g. two-stage for dev).
        #[arg(long, value_parser = pipeline_arg())]
        pipeline: Option<Pipeline>,
        /// Also download the generation's preview decoder (TAEHV's TAELTX, ≈47 MB from GitHub): live previews
        /// at a fraction of the video VAE's cost, in any memory plan.
        #[arg(long)]
        preview: bool,
        /// Do not ask for confirmation.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Delete a variant's files (shared files stay while another installed variant needs them).
    Rm {
        /// The weights whose files to delete.
        #[arg(value_parser = variant_arg())]
        variant: ModelVariant,
        /// Do not ask for confirmation.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Re-hash installed files against the sha256 the Hub publishes (one variant's files, or all installed).
    Verify {
        /// The weights whose files to check (default: every installed file).
        #[arg(value_parser = variant_arg())]
        variant: Option<ModelVariant>,
    },
    /// Show the models directory, or switch to another (saved in the config file; jobs after this use it).
    Dir {
        /// The directory to switch to.
        path: Option<PathBuf>,
    },
    /// Stop every running or queued download (partial files are kept: `models pull` resumes them).
    Cancel,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// Copy ltxd, ltxctl, ltx-tray and the MLX runtime into one folder, write and start the service (socket
    /// activated) and the tray's login item. Idempotent: prints exactly what it changed.
    Install {
        /// Folder holding the built binaries (default: the folder of this ltxctl).
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Stop and remove the service, the tray's login item and the installed files.
    Uninstall,
    /// Whether the service is installed, enabled and running.
    Status,
    /// Restart the daemon through the service manager.
    Restart,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_texts_show_the_rule_tables_defaults() {
        Cli::command().debug_assert();
        let mut cli = Cli::command();
        let help = cli.find_subcommand_mut("submit").expect("submit").render_long_help().to_string();
        for text in [
            "its fixed 8; otherwise default 40",
            "otherwise default 3, 3–5",
            "guided pipelines (default 7)",
            "both modalities (default 1; 0 turns it off)",
            "comma-separated (default 29)",
            "spread (default 0.7; 0 turns it off)",
            "guidance scale (default 3; 1 turns it off)",
            "[default: 768x512]",
            "[default: 97]",
            "multiples of 64 for distilled, two-stage, of 32 for one-stage, from 64 to 2048",
            "8k+1 from 9 to 257",
            "1 to 60 (default 24)",
        ] {
            assert!(help.contains(text), "{text:?} not in:\n{help}");
        }
        assert_eq!("640X384".parse::<Size>(), Ok(Size(640, 384)));
    }

    /// Every subcommand and every option of every subcommand says what it is for.
    #[test]
    fn every_command_and_flag_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "ltxctl", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
        assert!("640".parse::<Size>().is_err());
    }
}
