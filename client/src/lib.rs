//! `ltxctl`, the command-line client of `ltxd` (the tray will be another binary of this crate).
//!
//! Exit codes: 0 done, 1 failed, 2 cancelled, 3 daemon unavailable, 4 busy or invalid request.
pub mod doctor;
pub mod follow;
pub mod models;
pub mod service;
#[cfg(feature = "tray")]
pub mod tray;

use clap::{builder::TypedValueParser as _, Parser, Subcommand};
use ltx_protocol::client::{Client, ClientError};
use ltx_protocol::paths::{self, Env, Os, ServiceAction};
use ltx_protocol::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_CANCELLED: u8 = 2;
pub const EXIT_UNAVAILABLE: u8 = 3;
pub const EXIT_INVALID: u8 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "ltxctl",
    version,
    about = "Control the ltxd video generation daemon",
    after_help = "Exit codes: 0 done, 1 failed, 2 cancelled, 3 daemon unavailable, 4 busy or invalid request"
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

/// `--variant`: the names in the rule table ([`ltx_protocol::rules::VARIANTS`]).
pub fn variant_arg() -> impl clap::builder::TypedValueParser<Value = ModelVariant> {
    clap::builder::PossibleValuesParser::new(ModelVariant::ALL.map(ModelVariant::name))
        .map(|s| ModelVariant::parse(&s).unwrap_or(ModelVariant::ALL[0]))
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
fn defaults() -> GenerationRequest {
    GenerationRequest::new("")
}

fn pipelines_help() -> String {
    let lines: Vec<_> = ltx_protocol::rules::PIPELINES.iter().map(|p| format!("{}: {}", p.name, p.summary)).collect();
    format!("Pipeline (default: the variant's; {}). {}", defaults().pipeline.name(), lines.join(". "))
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// What the video shows.
    pub prompt: String,
    #[arg(long)]
    pub negative: Option<String>,
    /// Model weights (default: the pipeline's, e.g. dev for one-stage and two-stage).
    #[arg(long, value_parser = variant_arg())]
    pub variant: Option<ModelVariant>,
    #[arg(long, value_parser = pipeline_arg(), help = pipelines_help())]
    pub pipeline: Option<Pipeline>,
    /// WIDTHxHEIGHT, multiples of 32 (64 for the two-stage pipelines).
    #[arg(long, default_value_t = Size(defaults().width, defaults().height))]
    pub size: Size,
    /// 8k+1 frames.
    #[arg(long, default_value_t = defaults().frames)]
    pub frames: u32,
    #[arg(long, default_value_t = defaults().fps)]
    pub fps: u32,
    #[arg(long, help = ltx_protocol::rules::steps_help())]
    pub steps: Option<u32>,
    #[arg(long, help = ltx_protocol::rules::guidance_help())]
    pub guidance: Option<f32>,
    /// Audio CFG scale of the guided pipelines (default 7).
    #[arg(long)]
    pub audio_guidance: Option<f32>,
    /// Spatio-temporal guidance scale, both modalities (default 1; 0 turns it off).
    #[arg(long)]
    pub stg: Option<f32>,
    /// Transformer blocks STG perturbs, comma-separated (default 29).
    #[arg(long, value_delimiter = ',')]
    pub stg_blocks: Option<Vec<u32>>,
    /// Guidance rescale towards the conditional prediction's spread (default 0.7; 0 turns it off).
    #[arg(long)]
    pub rescale: Option<f32>,
    /// Audio↔video modality guidance scale (default 3; 1 turns it off).
    #[arg(long)]
    pub modality_guidance: Option<f32>,
    /// Random when absent; always recorded.
    #[arg(long)]
    pub seed: Option<u64>,
    /// First-frame image (PNG/JPEG/WebP); its bytes are sent to the daemon.
    #[arg(long)]
    pub image: Option<PathBuf>,
    #[arg(long, default_value_t = 1.0)]
    pub strength: f32,
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
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Queue a generation job and print its id.
    Submit(Box<SubmitArgs>),
    /// Daemon status.
    Status,
    /// The running and pending jobs.
    Queue,
    /// Cancel a job (running: at the next step) or all jobs.
    Cancel {
        #[arg(required_unless_present = "all")]
        id: Option<JobId>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Finish the current job, then hold the queue.
    Pause,
    Resume,
    /// Finished jobs, newest first.
    History {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Details of one job.
    Show {
        id: JobId,
    },
    /// Follow a job's progress until it ends.
    Follow {
        id: JobId,
    },
    /// Open a finished job's video.
    Open {
        id: JobId,
    },
    /// Loaded model components and when they expire.
    Ps,
    /// Load a model and keep it warm.
    Load {
        #[arg(long, value_parser = variant_arg(), default_value = ModelVariant::ALL[0].name())]
        variant: ModelVariant,
        #[arg(long, value_parser = KeepAlive::parse, allow_hyphen_values = true)]
        keep_alive: Option<KeepAlive>,
    },
    /// Unload a model (all when no variant is given).
    Unload {
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
        shell: clap_complete::Shell,
    },
    /// Model files: list, pull, rm, verify, dir.
    Models {
        #[command(subcommand)]
        cmd: models::ModelsCmd,
    },
    /// Check the installation: daemon, compute backend, memory, disk, socket, models, config — with fixes.
    Doctor,
    /// Install, remove or inspect the per-user service (launchd / systemd --user) that starts ltxd at login.
    Service {
        #[command(subcommand)]
        action: service::ServiceCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum DaemonCmd {
    Start,
    Stop,
    Status,
}

/// A command's failure: the message for a person and the exit code.
pub struct Failure(pub u8, pub String);

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::Unavailable { .. }
            | ClientError::Daemon(DaemonError::VersionMismatch { .. })
            | ClientError::Daemon(DaemonError::PermissionDenied { .. })
            | ClientError::Daemon(DaemonError::ShuttingDown) => EXIT_UNAVAILABLE,
            ClientError::Daemon(
                DaemonError::Busy { .. }
                | DaemonError::Invalid(_)
                | DaemonError::NotFound(_)
                | DaemonError::NotCancellable { .. }
                | DaemonError::ModelsMissing { .. }
                | DaemonError::InsufficientMemory(_),
            ) => EXIT_INVALID,
            _ => EXIT_FAILED,
        };
        Failure(code, e.to_string())
    }
}

impl From<ValidationError> for Failure {
    fn from(e: ValidationError) -> Self {
        Failure(EXIT_INVALID, format!("invalid request: {e}"))
    }
}

pub type Res = Result<u8, Failure>;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ltxctl: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let res = rt.block_on(run(cli));
    // A Ctrl-C prompt may still be blocked reading stdin: do not wait for it.
    rt.shutdown_timeout(Duration::from_millis(100));
    match res {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, msg)) => {
            eprintln!("ltxctl: {msg}");
            ExitCode::from(code)
        }
    }
}

/// Socket: flag, `$LTX_SOCKET`, `socket` in the config file, platform default.
pub fn socket_path(flag: Option<PathBuf>) -> PathBuf {
    let env = Env::process();
    let os = Os::current();
    flag.or_else(|| std::env::var_os("LTX_SOCKET").map(PathBuf::from))
        .or_else(|| {
            let text = std::fs::read_to_string(paths::config_path(os, &env)).ok()?;
            let table: toml::Table = toml::from_str(&text).ok()?;
            table.get("socket")?.as_str().map(PathBuf::from)
        })
        .unwrap_or_else(|| paths::socket_path(os, &env))
}

pub async fn connect(socket: &std::path::Path) -> Result<Client, ClientError> {
    Client::connect(socket, "ltxctl").await
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("ltxctl: cannot print JSON: {e}"),
    }
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

fn job_line(r: &JobRecord) -> String {
    let out = r.output.as_ref().map(|p| p.display().to_string()).or(r.message.clone()).unwrap_or_default();
    format!("{:>6}  {:<11}  {:<40}  {}", r.id, r.state.name(), short(&r.request.prompt, 40), out)
}

/// Builds the request from the command line (the image is read here: the daemon may not read user folders).
pub fn build_request(a: &SubmitArgs) -> Result<GenerationRequest, Failure> {
    // The pipeline and variant asked for, each defaulting through the other ([`ltx_protocol::rules`]).
    let pipeline = a.pipeline.unwrap_or_else(|| a.variant.map_or(defaults().pipeline, ModelVariant::default_pipeline));
    let variant = a.variant.unwrap_or_else(|| ModelVariant::default_for(pipeline));
    let mut req = GenerationRequest::for_pipeline(a.prompt.clone(), variant, pipeline);
    let guidance = ltx_protocol::Guidance {
        audio_cfg: a.audio_guidance,
        stg: a.stg,
        rescale: a.rescale,
        modality: a.modality_guidance,
        stg_blocks: a.stg_blocks.clone(),
    };
    let output = match &a.output {
        Some(p) if p.is_relative() => {
            Some(std::env::current_dir().map_err(|e| Failure(EXIT_FAILED, e.to_string()))?.join(p))
        }
        other => other.clone(),
    };
    req.negative_prompt = a.negative.clone();
    (req.width, req.height, req.frames, req.fps) = (a.size.0, a.size.1, a.frames, a.fps);
    req.steps = a.steps.unwrap_or(req.steps);
    req.guidance_scale = a.guidance.unwrap_or(req.guidance_scale);
    req.seed = a.seed;
    req.image = a.image.as_deref().map(|p| validate::load_image(p, a.strength)).transpose()?;
    req.audio = !a.no_audio;
    req.output = output;
    req.front = a.front;
    req.keep_alive = a.keep_alive;
    req.guidance = (guidance != ltx_protocol::Guidance::default()).then_some(guidance);
    req.low_memory = a.low_memory;
    Ok(validate(req, FsCheck::Probe)?.into_inner())
}

pub async fn run(cli: Cli) -> Res {
    let socket = socket_path(cli.socket.clone());
    let json = cli.json;
    match cli.cmd {
        Cmd::Submit(a) => {
            let req = build_request(&a)?;
            let mut c = connect(&socket).await?;
            let Reply::Submitted { job, position, seed } = c.request(Request::Submit(req)).await? else {
                return Err(Failure(EXIT_FAILED, "unexpected reply".into()));
            };
            if json {
                print_json(&serde_json::json!({ "job": job, "position": position, "seed": seed }));
            } else {
                println!("{job}");
            }
            if !a.wait {
                return Ok(EXIT_OK);
            }
            follow::follow(c, &socket, job, json).await
        }
        Cmd::Follow { id } => follow::follow(connect(&socket).await?, &socket, id, json).await,
        Cmd::Status | Cmd::Daemon { action: DaemonCmd::Status } => {
            let Reply::Status(s) = connect(&socket).await?.request(Request::Status).await? else {
                return Err(Failure(EXIT_FAILED, "unexpected reply".into()));
            };
            if json {
                print_json(&s);
            } else {
                println!(
                    "ltxd {} (protocol v{}), pid {}, up {}s",
                    s.daemon_version,
                    s.protocol_version,
                    s.pid,
                    s.uptime_ms / 1000
                );
                println!("socket:  {}", s.socket.display());
                let running = s.running.map_or("none".into(), |j| format!("job {j}"));
                println!(
                    "queue:   {}{} running, {} pending (max {})",
                    if s.paused { "PAUSED, " } else { "" },
                    running,
                    s.pending,
                    s.capacity
                );
                println!("outputs: {}", s.outputs_dir.display());
                println!("models:  {}", s.models_dir.display());
                println!("compute: {}", s.compute);
                println!("memory:  {}", s.memory);
                if s.engine_restarts > 0 {
                    let last = s.engine_panic.as_deref().unwrap_or("no message");
                    println!("engine:  restarted {} time(s) after a panic; last: {last}", s.engine_restarts);
                }
            }
            Ok(EXIT_OK)
        }
        Cmd::Queue => {
            let Reply::Queue(q) = connect(&socket).await?.request(Request::Queue).await? else {
                return Err(Failure(EXIT_FAILED, "unexpected reply".into()));
            };
            if json {
                print_json(&q);
            } else {
                if q.paused {
                    println!("queue paused (`ltxctl resume` to continue)");
                }
                if q.running.is_none() && q.pending.is_empty() {
                    println!("queue empty");
                }
                for r in q.running.iter().chain(&q.pending) {
                    println!("{}", job_line(r));
                }
            }
            Ok(EXIT_OK)
        }
        Cmd::Cancel { id, all } => {
            let req = match (id, all) {
                (Some(job), _) => Request::Cancel { job },
                (None, _) => Request::CancelAll,
            };
            let Reply::Cancelled { jobs } = connect(&socket).await?.request(req).await? else {
                return Err(Failure(EXIT_FAILED, "unexpected reply".into()));
            };
            if json {
                print_json(&jobs);
            } else if jobs.is_empty() {
                println!("nothing to cancel");
            } else {
                println!("cancelled {}", jobs.iter().map(|j| j.to_string()).collect::<Vec<_>>().join(", "));
            }
            Ok(EXIT_OK)
        }
        c @ (Cmd::Pause | Cmd::Resume) => {
            let pause = matches!(c, Cmd::Pause);
            connect(&socket).await?.request(if pause { Request::Pause } else { Request::Resume }).await?;
            if json {
                print_json(&serde_json::json!({ "paused": pause }));
            } else {
                println!(
                    "{}",
                    if pause {
                        "queue paused: the current job finishes, then the queue holds"
                    } else {
                        "queue resumed"
                    }
                );
            }
            Ok(EXIT_OK)
        }
        Cmd::History { limit } => {
            let Reply::History(h) = connect(&socket).await?.request(Request::History { limit }).await? else {
                return Err(Failure(EXIT_FAILED, "unexpected reply".into()));
            };
            if json {
                print_json(&h);
            } else {
                h.iter().for_each(|r| println!("{}", job_line(r)));
            }
            Ok(EXIT_OK)
        }
        Cmd::Show { id } => {
            let r = job(&socket, id).await?;
            if json {
                print_json(&r);
            } else {
                let q = &r.request;
                println!("job {}: {}", r.id, r.state.name());
                println!("prompt:   {}", q.prompt);
                println!("model:    {} / {} pipeline", q.variant.name(), q.pipeline.name());
                println!(
                    "video:    {}x{}, {} frames @ {} fps, {} steps, guidance {}, seed {}",
                    q.width, q.height, q.frames, q.fps, q.steps, q.guidance_scale, r.seed
                );
                if let Some(o) = &r.output {
                    println!("output:   {}", o.display());
                }
                if let Some(m) = &r.message {
                    println!("message:  {m}");
                }
                if !r.timings.is_empty() {
                    let t: Vec<_> = r.timings.iter().map(|(stage, ms)| format!("{stage} {ms} ms")).collect();
                    println!("timings:  {}", t.join(", "));
                }
            }
            Ok(EXIT_OK)
        }
        Cmd::Open { id } => {
            let r = job(&socket, id).await?;
            let Some(out) = r.output.filter(|p| p.exists()) else {
                return Err(Failure(EXIT_INVALID, format!("job {id} has no video ({})", r.state.name())));
            };
            let cmd = service::open_command(Os::current(), &out);
            run_program(&cmd)?;
            Ok(EXIT_OK)
        }
        Cmd::Ps => {
            let Reply::Ps(comps) = connect(&socket).await?.request(Request::Ps).await? else {
                return Err(Failure(EXIT_FAILED, "unexpected reply".into()));
            };
            if json {
                print_json(&comps);
            } else if comps.is_empty() {
                println!("no models loaded");
            } else {
                println!("{:<24} {:<14} {:>10}  UNTIL", "NAME", "VARIANT", "SIZE");
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                for c in comps {
                    let until = c
                        .expires_ms
                        .map_or("forever".into(), |t| format!("{}s from now", t.saturating_sub(now) / 1000));
                    println!("{:<24} {:<14} {:>8}MB  {until}", c.name, c.variant.name(), c.bytes >> 20);
                }
            }
            Ok(EXIT_OK)
        }
        Cmd::Load { variant, keep_alive } => {
            connect(&socket).await?.request(Request::Load { variant, keep_alive }).await?;
            println!("{} loaded", variant.name());
            Ok(EXIT_OK)
        }
        Cmd::Unload { variant } => {
            connect(&socket).await?.request(Request::Unload { variant }).await?;
            println!("unloaded");
            Ok(EXIT_OK)
        }
        Cmd::Daemon { action: DaemonCmd::Start } => daemon_start(&socket, cli.socket.is_some(), json).await,
        Cmd::Daemon { action: DaemonCmd::Stop } => daemon_stop(&socket, json).await,
        Cmd::Models { cmd } => models::run(cmd, &socket, json).await,
        Cmd::Doctor => doctor::run(&socket, json).await,
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "ltxctl", &mut std::io::stdout());
            Ok(EXIT_OK)
        }
        Cmd::Service { action } => service::command(action, &socket, json).await,
    }
}

async fn job(socket: &std::path::Path, id: JobId) -> Result<JobRecord, Failure> {
    match connect(socket).await?.request(Request::Job { job: id }).await? {
        Reply::Job(r) => Ok(*r),
        _ => Err(Failure(EXIT_FAILED, "unexpected reply".into())),
    }
}

fn run_program(cmd: &[String]) -> Result<(), Failure> {
    let (prog, args) = cmd.split_first().ok_or_else(|| Failure(EXIT_FAILED, "empty command".into()))?;
    let status = std::process::Command::new(prog)
        .args(args)
        .status()
        .map_err(|e| Failure(EXIT_FAILED, format!("cannot run {prog}: {e}")))?;
    if !status.success() {
        return Err(Failure(EXIT_FAILED, format!("`{}` failed ({status})", cmd.join(" "))));
    }
    Ok(())
}

async fn wait_until(socket: &std::path::Path, up: bool, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        // A socket held by a service manager accepts with no daemon behind it: no handshake within 2 s = down.
        let answered = matches!(tokio::time::timeout(Duration::from_secs(2), connect(socket)).await, Ok(Ok(_)));
        if answered == up {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn daemon_start(socket: &std::path::Path, explicit_socket: bool, json: bool) -> Res {
    let say = |state: &str, msg: String| {
        if json {
            print_json(&serde_json::json!({ "state": state, "socket": socket }));
        } else {
            println!("{msg}");
        }
    };
    if let Ok(c) = connect(socket).await {
        say("already-running", format!("ltxd {} is already running at {}", c.welcome.daemon_version, socket.display()));
        return Ok(EXIT_OK);
    }
    let env = Env::process();
    if let Some(cmds) = service::managed_commands(Os::current(), &env, ServiceAction::Start, paths::current_uid()) {
        for c in &cmds {
            // A launchctl bootstrap of an already bootstrapped agent fails harmlessly; kickstart decides.
            if let Err(Failure(_, m)) = run_program(c) {
                eprintln!("ltxctl: {m}");
            }
        }
    } else {
        use std::os::unix::process::CommandExt;
        let bin = service::daemon_binary(&env, std::env::current_exe().ok().as_deref());
        let mut cmd = std::process::Command::new(&bin);
        if explicit_socket {
            cmd.arg("--socket").arg(socket);
        }
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0);
        let mut child =
            cmd.spawn().map_err(|e| Failure(EXIT_UNAVAILABLE, format!("cannot start {}: {e}", bin.display())))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if connect(socket).await.is_ok() {
                say("started", format!("ltxd started (pid {}) at {}", child.id(), socket.display()));
                return Ok(EXIT_OK);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Failure(EXIT_UNAVAILABLE, format!("ltxd exited at start ({status}); see its log")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        return Err(Failure(EXIT_UNAVAILABLE, "ltxd did not come up within 15 s".into()));
    }
    if wait_until(socket, true, Duration::from_secs(15)).await {
        say("started", format!("ltxd started by the service manager at {}", socket.display()));
        Ok(EXIT_OK)
    } else {
        Err(Failure(EXIT_UNAVAILABLE, "the service manager did not bring ltxd up within 15 s".into()))
    }
}

async fn daemon_stop(socket: &std::path::Path, json: bool) -> Res {
    let env = Env::process();
    let say = |state: &str, msg: &str| {
        if json {
            print_json(&serde_json::json!({ "state": state }));
        } else {
            println!("{msg}");
        }
    };
    if let Some(cmds) = service::managed_commands(Os::current(), &env, ServiceAction::Stop, paths::current_uid()) {
        for c in &cmds {
            run_program(c)?;
        }
    } else {
        match connect(socket).await {
            Ok(mut c) => {
                c.request(Request::Shutdown).await?;
            }
            Err(ClientError::Unavailable { .. }) => {
                say("not-running", "ltxd is not running");
                return Ok(EXIT_OK);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if wait_until(socket, false, Duration::from_secs(30)).await {
        say("stopped", "ltxd stopped");
        Ok(EXIT_OK)
    } else {
        Err(Failure(EXIT_FAILED, "ltxd is still running after 30 s".into()))
    }
}
