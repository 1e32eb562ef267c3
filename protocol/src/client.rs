//! Client side of a connection: connect, handshake, then one typed method per [`Request`] (each maps its
//! [`Reply`] once; any other reply is [`ClientError::Unexpected`]) and [`Subscription`] for event streams.
//!
//! ```no_run
//! # async fn demo(socket: &std::path::Path) -> Result<(), ltx_protocol::client::ClientError> {
//! use ltx_protocol::client::Client;
//! let mut c = Client::connect(socket, "demo").await?;
//! let job = c.submit(ltx_protocol::GenerationRequest::new("a boat at dusk")).await?.job;
//! let mut events = c.subscribe(Some(job), false).await?;
//! while let Some(ev) = events.next().await? {
//!     if ev.kind.is_final() {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
use crate::connection::{FrameReader, FrameWriter};
use crate::error::DaemonError;
use crate::frame::FrameError;
use crate::message::*;
use crate::models::{ModelsInfo, PullFile, VerifyResult};
use crate::{Event, GenerationRequest, JobId, JobRecord, KeepAlive, ModelVariant, Pipeline, PROTOCOL_VERSION, VERSION};
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use serde::Serialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{ReadHalf, WriteHalf};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the daemon is not reachable at {path}: {source} — start it with `ltxctl daemon start`")]
    Unavailable { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Daemon(#[from] DaemonError),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("the daemon closed the connection")]
    Closed,
    #[error("unexpected message from the daemon: {0}")]
    Unexpected(String),
    #[error("the daemon did not answer {what} within {} s; if it stays stuck, `ltxctl daemon restart` restarts it", after.as_secs())]
    Timeout { what: String, after: Duration },
}

impl ClientError {
    /// The stable machine spelling of this error; a daemon's refusal keeps its own ([`DaemonError::code`]).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "unavailable",
            Self::Daemon(e) => e.code(),
            Self::Frame(_) => "bad_frame",
            Self::Closed => "closed",
            Self::Unexpected(_) => "unexpected_reply",
            Self::Timeout { .. } => "timeout",
        }
    }
}

/// How long the connection and the handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request's reply may take: quick lookups seconds; a submit checks the output directory and the
/// model files; `load`/`unload` wait behind the running job and a real load takes ~20 s; `verify` hashes
/// every installed file.
pub fn reply_timeout(req: &Request) -> Duration {
    let minutes = |m: u64| Duration::from_secs(60 * m);
    match req {
        Request::Load { .. } | Request::Unload { .. } => minutes(60),
        Request::ModelsVerify { .. } => minutes(120),
        Request::Submit(_)
        | Request::ModelsPull { .. }
        | Request::ModelsPullPreview { .. }
        | Request::ModelsRemove { .. }
        | Request::ModelsDir { .. } => minutes(2),
        _ => Duration::from_secs(30),
    }
}

/// `f`, or [`ClientError::Timeout`] after `after`.
async fn within<T>(
    what: impl FnOnce() -> String,
    after: Duration,
    f: impl std::future::Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(after, f).await.unwrap_or_else(|_| Err(ClientError::Timeout { what: what(), after }))
}

/// `Reply::Submitted`: the job's id, its place in the queue and the seed it runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Submitted {
    pub job: JobId,
    pub position: u32,
    pub seed: u64,
}

/// `Reply::Removed`: the files deleted and the bytes freed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub files: Vec<String>,
    pub bytes: u64,
}

/// `Reply::ModelsDir`: the directory in use, the one in the config file, and whether they differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelsDir {
    pub path: PathBuf,
    pub configured: PathBuf,
    pub restart_needed: bool,
}

pub struct Client {
    reader: FrameReader<ReadHalf<Stream>>,
    writer: FrameWriter<WriteHalf<Stream>>,
    pub welcome: Welcome,
    /// Events that arrived while a [`Subscription`] waited for a reply; `None` = not subscribed (dropped).
    early: Option<VecDeque<Event>>,
}

/// Opens the raw socket (no handshake).
pub async fn connect_raw(path: &Path) -> Result<Stream, ClientError> {
    let unavailable = |source| ClientError::Unavailable { path: path.into(), source };
    let name = path.to_fs_name::<GenericFilePath>().map_err(unavailable)?;
    Stream::connect(name).await.map_err(unavailable)
}

/// The process at the other end of the socket (pid, effective uid), as the OS reports it: the daemon, or
/// whatever holds the socket for it (a socket activator).
pub async fn peer_process(path: &Path) -> Option<(u32, u32)> {
    use interprocess::local_socket::traits::StreamCommon as _;
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect_raw(path)).await.ok()?.ok()?;
    let creds = stream.peer_creds().ok()?;
    Some((u32::try_from(creds.pid()?).ok()?, creds.euid()?))
}

/// The request's name for messages (`Status`, `Load`, …).
fn request_name(req: &Request) -> String {
    let debug = format!("{req:?}");
    debug.split([' ', '(', '{']).next().unwrap_or("request").to_string()
}

/// The reply `want` takes, or [`ClientError::Unexpected`] naming the request it answered.
fn expect<T>(reply: Reply, what: &str, want: impl FnOnce(Reply) -> Result<T, Reply>) -> Result<T, ClientError> {
    want(reply).map_err(|r| ClientError::Unexpected(format!("{r:?} in reply to {what}")))
}

fn ok(r: Reply) -> Result<(), Reply> {
    match r {
        Reply::Ok => Ok(()),
        r => Err(r),
    }
}

impl Client {
    /// Connects and performs the `Hello` → `Welcome` handshake.
    pub async fn connect(path: &Path, client_name: &str) -> Result<Self, ClientError> {
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            client_name: client_name.into(),
            client_version: VERSION.into(),
        };
        Self::connect_with(path, hello).await
    }

    pub async fn connect_with(path: &Path, hello: Hello) -> Result<Self, ClientError> {
        within(|| "the connection and handshake".into(), HANDSHAKE_TIMEOUT, Self::handshake(path, hello)).await
    }

    async fn handshake(path: &Path, hello: Hello) -> Result<Self, ClientError> {
        let (r, w) = tokio::io::split(connect_raw(path).await?);
        let (mut reader, mut writer) = (FrameReader::new(r), FrameWriter::new(w));
        // The daemon may refuse (peer check) and close before reading Hello: still read its error frame.
        let sent = writer.write(&ClientMsg::Hello(hello)).await;
        let reply = reader.read::<ServerMsg>().await;
        if let (Err(e), Err(_) | Ok(None)) = (&sent, &reply) {
            return Err(ClientError::Unexpected(format!("handshake failed: {e}")));
        }
        match reply? {
            Some(ServerMsg::Welcome(welcome)) => Ok(Self { reader, writer, welcome, early: None }),
            Some(ServerMsg::Error(e)) => Err(e.into()),
            Some(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            None => Err(ClientError::Closed),
        }
    }

    // The raw layer: one message at a time. The typed methods below are built on it; tests use it to speak the
    // protocol directly.

    pub async fn send(&mut self, req: Request) -> Result<(), ClientError> {
        Ok(self.writer.write(&ClientMsg::Request(req)).await?)
    }

    pub async fn recv(&mut self) -> Result<ServerMsg, ClientError> {
        match self.reader.read::<ServerMsg>().await? {
            Some(ServerMsg::Error(e)) => Err(e.into()),
            Some(msg) => Ok(msg),
            None => Err(ClientError::Closed),
        }
    }

    /// Sends a request and waits for its reply. Events arriving meanwhile are kept for
    /// [`Subscription::next`] on a subscribed connection, dropped otherwise.
    pub async fn request(&mut self, req: Request) -> Result<Reply, ClientError> {
        let after = reply_timeout(&req);
        let what = request_name(&req);
        within(|| format!("`{what}`"), after, self.exchange(req)).await
    }

    async fn exchange(&mut self, req: Request) -> Result<Reply, ClientError> {
        self.send(req).await?;
        loop {
            match self.recv().await? {
                ServerMsg::Reply(Reply::Error(e)) => return Err(e.into()),
                ServerMsg::Reply(r) => return Ok(r),
                ServerMsg::Event(e) => {
                    if let Some(early) = &mut self.early {
                        early.push_back(e);
                    }
                }
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }

    /// The next event of a subscription (kept early ones first); stray replies are skipped.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        if let Some(e) = self.early.as_mut().and_then(VecDeque::pop_front) {
            return Ok(e);
        }
        loop {
            match self.recv().await? {
                ServerMsg::Event(e) => return Ok(e),
                ServerMsg::Reply(Reply::Error(e)) => return Err(e.into()),
                _ => continue,
            }
        }
    }

    // One typed method per request.

    /// `Submit`: queues a generation job.
    pub async fn submit(&mut self, req: GenerationRequest) -> Result<Submitted, ClientError> {
        expect(self.request(Request::Submit(req)).await?, "Submit", |r| match r {
            Reply::Submitted { job, position, seed } => Ok(Submitted { job, position, seed }),
            r => Err(r),
        })
    }

    /// `Subscribe`: follows one job (`Some`) or every job and download; preview JPEGs only when asked for.
    pub async fn subscribe(mut self, job: Option<JobId>, previews: bool) -> Result<Subscription, ClientError> {
        // Subscribed from here on: events sent before the reply are kept, not dropped.
        self.early = Some(VecDeque::new());
        expect(self.request(Request::Subscribe { job, previews }).await?, "Subscribe", |r| match r {
            Reply::Subscribed => Ok(()),
            r => Err(r),
        })?;
        Ok(Subscription { client: self })
    }

    /// `Cancel`: the cancelled jobs (the running one stops at its next step).
    pub async fn cancel(&mut self, job: JobId) -> Result<Vec<JobId>, ClientError> {
        expect(self.request(Request::Cancel { job }).await?, "Cancel", cancelled)
    }

    /// `CancelAll`: the running and every pending job.
    pub async fn cancel_all(&mut self) -> Result<Vec<JobId>, ClientError> {
        expect(self.request(Request::CancelAll).await?, "CancelAll", cancelled)
    }

    pub async fn queue(&mut self) -> Result<QueueInfo, ClientError> {
        expect(self.request(Request::Queue).await?, "Queue", |r| match r {
            Reply::Queue(q) => Ok(*q),
            r => Err(r),
        })
    }

    /// `Pause`: the current job finishes, then the queue holds.
    pub async fn pause(&mut self) -> Result<(), ClientError> {
        expect(self.request(Request::Pause).await?, "Pause", ok)
    }

    pub async fn resume(&mut self) -> Result<(), ClientError> {
        expect(self.request(Request::Resume).await?, "Resume", ok)
    }

    /// `History`: finished jobs, newest first.
    pub async fn history(&mut self, limit: u32) -> Result<Vec<JobRecord>, ClientError> {
        expect(self.request(Request::History { limit }).await?, "History", |r| match r {
            Reply::History(h) => Ok(h),
            r => Err(r),
        })
    }

    pub async fn job(&mut self, job: JobId) -> Result<JobRecord, ClientError> {
        expect(self.request(Request::Job { job }).await?, "Job", |r| match r {
            Reply::Job(j) => Ok(*j),
            r => Err(r),
        })
    }

    /// `Ps`: the loaded model components.
    pub async fn ps(&mut self) -> Result<Vec<ComponentStatus>, ClientError> {
        expect(self.request(Request::Ps).await?, "Ps", |r| match r {
            Reply::Ps(c) => Ok(c),
            r => Err(r),
        })
    }

    pub async fn load(&mut self, variant: ModelVariant, keep_alive: Option<KeepAlive>) -> Result<(), ClientError> {
        expect(self.request(Request::Load { variant, keep_alive }).await?, "Load", ok)
    }

    /// `Unload`: one variant, or all when `None`.
    pub async fn unload(&mut self, variant: Option<ModelVariant>) -> Result<(), ClientError> {
        expect(self.request(Request::Unload { variant }).await?, "Unload", ok)
    }

    pub async fn status(&mut self) -> Result<DaemonStatus, ClientError> {
        expect(self.request(Request::Status).await?, "Status", |r| match r {
            Reply::Status(s) => Ok(*s),
            r => Err(r),
        })
    }

    /// `Shutdown`: the daemon stops after answering.
    pub async fn shutdown(&mut self) -> Result<(), ClientError> {
        expect(self.request(Request::Shutdown).await?, "Shutdown", ok)
    }

    /// `ShowsNotifications`: this client posts completion notifications; the daemon posts none meanwhile.
    pub async fn shows_notifications(&mut self) -> Result<(), ClientError> {
        expect(self.request(Request::ShowsNotifications).await?, "ShowsNotifications", ok)
    }

    pub async fn models_list(&mut self) -> Result<ModelsInfo, ClientError> {
        expect(self.request(Request::ModelsList).await?, "ModelsList", |r| match r {
            Reply::Models(m) => Ok(*m),
            r => Err(r),
        })
    }

    /// `ModelsPull`: what the pull does with each file; progress comes as events to a subscription.
    pub async fn models_pull(
        &mut self,
        variant: ModelVariant,
        pipeline: Option<Pipeline>,
    ) -> Result<Vec<PullFile>, ClientError> {
        expect(self.request(Request::ModelsPull { variant, pipeline }).await?, "ModelsPull", |r| match r {
            Reply::Pulling(files) => Ok(files),
            r => Err(r),
        })
    }

    /// `ModelsPullPreview`: the preview decoder's download, as [`Self::models_pull`] answers.
    pub async fn models_pull_preview(
        &mut self,
        generation: crate::rules::Generation,
    ) -> Result<Vec<PullFile>, ClientError> {
        expect(self.request(Request::ModelsPullPreview { generation }).await?, "ModelsPullPreview", |r| match r {
            Reply::Pulling(files) => Ok(files),
            r => Err(r),
        })
    }

    pub async fn models_remove(&mut self, variant: ModelVariant) -> Result<Removed, ClientError> {
        expect(self.request(Request::ModelsRemove { variant }).await?, "ModelsRemove", |r| match r {
            Reply::Removed { files, bytes } => Ok(Removed { files, bytes }),
            r => Err(r),
        })
    }

    pub async fn models_verify(&mut self, variant: Option<ModelVariant>) -> Result<Vec<VerifyResult>, ClientError> {
        expect(self.request(Request::ModelsVerify { variant }).await?, "ModelsVerify", |r| match r {
            Reply::Verified(v) => Ok(v),
            r => Err(r),
        })
    }

    /// `ModelsCancel`: stops every running or queued download; the names of those it stopped.
    pub async fn models_cancel(&mut self) -> Result<Vec<String>, ClientError> {
        expect(self.request(Request::ModelsCancel).await?, "ModelsCancel", |r| match r {
            Reply::ModelsCancelled { files } => Ok(files),
            r => Err(r),
        })
    }

    /// `ModelsDir`: shows (`None`) or sets the models directory.
    pub async fn models_dir(&mut self, path: Option<PathBuf>) -> Result<ModelsDir, ClientError> {
        expect(self.request(Request::ModelsDir { path }).await?, "ModelsDir", |r| match r {
            Reply::ModelsDir { path, configured, restart_needed } => Ok(ModelsDir { path, configured, restart_needed }),
            r => Err(r),
        })
    }
}

fn cancelled(r: Reply) -> Result<Vec<JobId>, Reply> {
    match r {
        Reply::Cancelled { jobs } => Ok(jobs),
        r => Err(r),
    }
}

/// A subscribed connection: [`next`](Self::next) yields its events in order. It still takes requests (it derefs
/// to [`Client`]); events arriving while one waits for its reply are kept, so none is missed.
pub struct Subscription {
    client: Client,
}

impl Subscription {
    /// The next event; `None` when the daemon closed the connection.
    pub async fn next(&mut self) -> Result<Option<Event>, ClientError> {
        match self.client.next_event().await {
            Ok(e) => Ok(Some(e)),
            Err(ClientError::Closed) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl std::ops::Deref for Subscription {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Subscription {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{FrameReader, FrameWriter};
    use crate::{EventKind, Stage};
    use interprocess::local_socket::tokio::Listener;
    use interprocess::local_socket::traits::tokio::Listener as _;
    use interprocess::local_socket::ListenerOptions;

    /// A scripted daemon: answers `Hello` with `Welcome`, then each request with the frames `script` gives.
    async fn serve(path: &Path, script: fn(Request) -> Vec<ServerMsg>) -> tokio::task::JoinHandle<()> {
        let name = path.to_fs_name::<GenericFilePath>().unwrap();
        let listener: Listener = ListenerOptions::new().name(name).create_tokio().unwrap();
        tokio::spawn(async move {
            let stream = listener.accept().await.unwrap();
            let (r, w) = tokio::io::split(stream);
            let (mut r, mut w) = (FrameReader::new(r), FrameWriter::new(w));
            let welcome =
                Welcome { protocol_version: PROTOCOL_VERSION, daemon_version: "t".into(), capabilities: vec![] };
            assert!(matches!(r.read::<ClientMsg>().await.unwrap(), Some(ClientMsg::Hello(_))));
            w.write(&ServerMsg::Welcome(welcome)).await.unwrap();
            while let Ok(Some(ClientMsg::Request(req))) = r.read::<ClientMsg>().await {
                for m in script(req) {
                    w.write(&m).await.unwrap();
                }
            }
        })
    }

    fn event(job: JobId, kind: EventKind) -> ServerMsg {
        ServerMsg::Event(Event { job, kind })
    }

    #[tokio::test]
    async fn typed_replies_unexpected_replies_and_early_events() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("s.sock");
        let server = serve(&sock, |req| match req {
            Request::Submit(_) => vec![ServerMsg::Reply(Reply::Submitted { job: 7, position: 1, seed: 9 })],
            // A reply of the wrong kind.
            Request::Queue => vec![ServerMsg::Reply(Reply::Ok)],
            Request::Cancel { job } => vec![ServerMsg::Reply(Reply::Error(DaemonError::NotFound(job)))],
            // Events may come before the reply that starts them and before the reply to a later request.
            Request::Subscribe { job, .. } => {
                vec![event(job.unwrap_or(0), EventKind::Started), ServerMsg::Reply(Reply::Subscribed)]
            }
            Request::Ps => vec![
                event(7, EventKind::Stage { stage: Stage::DecodingVideo, elapsed_ms: 1, eta: None }),
                ServerMsg::Reply(Reply::Ps(vec![])),
            ],
            _ => vec![ServerMsg::Reply(Reply::Ok)],
        })
        .await;
        let mut c = Client::connect(&sock, "t").await.unwrap();
        assert_eq!(c.welcome.daemon_version, "t");
        let s = c.submit(GenerationRequest::new("x")).await.unwrap();
        assert_eq!(s, Submitted { job: 7, position: 1, seed: 9 });
        match c.queue().await {
            Err(ClientError::Unexpected(m)) => assert!(m.contains("Ok in reply to Queue"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.cancel(3).await, Err(ClientError::Daemon(DaemonError::NotFound(3)))));
        c.pause().await.unwrap();
        let mut sub = c.subscribe(Some(7), false).await.unwrap();
        assert_eq!(sub.ps().await.unwrap(), vec![]);
        assert_eq!(sub.next().await.unwrap().map(|e| e.kind), Some(EventKind::Started));
        assert_eq!(
            sub.next().await.unwrap().map(|e| e.kind),
            Some(EventKind::Stage { stage: Stage::DecodingVideo, elapsed_ms: 1, eta: None })
        );
        server.abort();
        let _ = server.await;
        assert!(sub.next().await.unwrap().is_none(), "a closed connection ends the subscription");
    }
}
