//! End-to-end harness: real `ltxd-test` processes on a real socket, each with its own temporary directories.
//! Tests live in `tests/tests/`; the engine test double lives in [`engine`] and only in the test daemon.
pub mod engine;
pub mod hub;
pub mod pty;

use ltx_protocol::client::Client;
use ltx_protocol::{Event, EventKind, GenerationRequest, JobId, Reply, Request};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Paths of the binaries under test (`env!` only works in the test crate itself, hence the macro).
#[derive(Clone, Debug)]
pub struct Bins {
    pub daemon: PathBuf,
    pub ctl: PathBuf,
}

#[macro_export]
macro_rules! bins {
    () => {
        $crate::Bins { daemon: env!("CARGO_BIN_EXE_ltxd-test").into(), ctl: env!("CARGO_BIN_EXE_ltxctl-e2e").into() }
    };
}

/// Environment variables that steer Hugging Face downloads.
pub const HF_VARS: [&str; 11] = [
    "HF_HOME",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HF_ENDPOINT",
    "LTX_GITHUB_ENDPOINT",
    "XDG_CACHE_HOME",
    "LTX_TEST_WRITE_QUOTA",
    "LTX_TEST_DISK_FREE",
];

pub struct Daemon {
    pub bins: Bins,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub child: Option<Child>,
    pub env: Vec<(String, String)>,
    /// Run the daemon through this prefix (e.g. setpriv for another uid).
    pub prefix: Vec<String>,
}

/// Config-file lines on top of the defaults (`queue_size = 2`, …).
pub struct Opts {
    pub extra_config: String,
    pub env: Vec<(String, String)>,
    pub prefix: Vec<String>,
    pub start: bool,
    /// Put an empty file at every catalogue path in the models directory, so submits pass the daemon's
    /// installed-models check (the test engine reads no weights). Off for daemons running the shipped engine.
    pub placeholder_models: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Self { extra_config: String::new(), env: Vec::new(), prefix: Vec::new(), start: true, placeholder_models: true }
    }
}

impl Daemon {
    pub fn start(bins: Bins) -> Self {
        Self::with(bins, Opts::default())
    }

    pub fn with(bins: Bins, opts: Opts) -> Self {
        let dir = tempfile::Builder::new().prefix("ltx-e2e-").tempdir().expect("tempdir");
        let p = dir.path();
        let socket = p.join("run/ltxd.sock");
        let config = p.join("config.toml");
        let text = format!(
            "socket = {:?}\nstate_dir = {:?}\noutputs_dir = {:?}\nmodels_dir = {:?}\nlog_dir = {:?}\nshutdown_grace_secs = 5\n{}\n",
            socket,
            p.join("state"),
            p.join("out"),
            p.join("models"),
            p.join("logs"),
            opts.extra_config
        );
        std::fs::write(&config, text).expect("write config");
        // ltxd refuses a config other users can write, whatever the umask of the machine running the tests.
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod config");
        let shipped = opts.env.iter().any(|(k, v)| k == "LTX_TEST_ENGINE" && v == "shipped");
        if opts.placeholder_models && !shipped {
            for f in ltx_protocol::catalogue::FILES {
                let path = p.join("models").join(f.local);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("models dir");
                std::fs::write(path, b"").expect("placeholder model file");
            }
        }
        let mut d = Daemon { bins, dir, socket, config, child: None, env: opts.env, prefix: opts.prefix };
        if opts.start {
            d.spawn();
            d.wait_ready();
        }
        d
    }

    pub fn outputs(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn command(&self) -> Command {
        let mut args: Vec<String> = self.prefix.clone();
        args.push(self.bins.daemon.display().to_string());
        let mut c = Command::new(&args[0]);
        c.args(&args[1..]).arg("--config").arg(&self.config);
        for k in ["LTX_SOCKET", "LTX_CONFIG", "LTX_STATE_DIR", "LTX_OUTPUTS_DIR", "LTX_MODELS_DIR", "LTX_LOG_DIR"] {
            c.env_remove(k);
        }
        // Hugging Face settings of the machine running the tests must not leak in (cache, token, endpoint).
        for k in HF_VARS {
            c.env_remove(k);
        }
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c.env("HOME", self.dir.path()).stdin(Stdio::null()).stdout(Stdio::null());
        c.stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join("stderr.log"))
                .expect("stderr log"),
        ));
        c
    }

    pub fn spawn(&mut self) {
        self.child = Some(self.command().spawn().expect("spawn ltxd-test"));
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn wait_ready(&mut self) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("ltxd-test exited early ({status}):\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("ltxd-test did not come up:\n{}", self.stderr());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for the daemon to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Some(Ok(Some(s))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.socket, "e2e").await.expect("connect")
    }

    /// Runs `ltxctl --socket <this daemon> args…`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_cmd(args).output().expect("run ltxctl")
    }

    pub fn ctl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bins.ctl);
        c.arg("--socket").arg(&self.socket).args(args).env("HOME", self.dir.path()).env_remove("LTX_SOCKET");
        c.stdin(Stdio::null());
        c
    }

    pub fn gate(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("gate-{name}"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Opens a gate file (lets a `gate=` job continue).
/// What `p` holds, readable in a failure message: the text (lossy, at most 40 characters) and its length.
pub fn held(p: &std::path::Path) -> String {
    let b = std::fs::read(p).unwrap_or_default();
    let text: String = String::from_utf8_lossy(&b).chars().take(40).collect();
    if b.len() <= 40 {
        text
    } else {
        format!("{text}… ({} bytes)", b.len())
    }
}

pub fn open_gate(path: &Path) {
    std::fs::write(path, b"").expect("open gate");
}

pub fn req(prompt: &str) -> GenerationRequest {
    let mut r = GenerationRequest::new(prompt);
    r.width = 256;
    r.height = 256;
    r.frames = 9;
    r
}

pub async fn submit(c: &mut Client, r: GenerationRequest) -> JobId {
    c.submit(r).await.expect("submit").job
}

/// Subscribes to one job and collects its events up to the final one.
pub async fn events(c: &mut Client, job: JobId) -> Vec<Event> {
    assert_eq!(
        c.request(Request::Subscribe { job: Some(job), previews: false }).await.expect("subscribe"),
        Reply::Subscribed
    );
    let mut out = Vec::new();
    loop {
        let e =
            tokio::time::timeout(Duration::from_secs(60), c.next_event()).await.expect("event timeout").expect("event");
        let last = e.kind.is_final();
        out.push(e);
        if last {
            return out;
        }
    }
}

/// Waits for an event of `job` matching `pred` on an existing subscription.
pub async fn wait_for(c: &mut Client, job: JobId, pred: impl Fn(&EventKind) -> bool) -> EventKind {
    loop {
        let e =
            tokio::time::timeout(Duration::from_secs(60), c.next_event()).await.expect("event timeout").expect("event");
        if e.job == job && pred(&e.kind) {
            return e.kind;
        }
    }
}

pub async fn record(c: &mut Client, job: JobId) -> ltx_protocol::JobRecord {
    c.job(job).await.expect("job")
}
