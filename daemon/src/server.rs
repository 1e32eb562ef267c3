//! Accepts connections, checks the peer, performs the handshake, and runs each connection: its reader hands
//! requests to [`crate::handlers`], its writer task sends replies and events in order.
use crate::outbox::{Out, CLIENT_BUFFER};
use crate::Shared;
use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::traits::tokio::Listener as _;
use ltx_protocol::connection::{FrameReader, FrameWriter};
use ltx_protocol::frame::FrameError;
use ltx_protocol::{server, ClientMsg, DaemonError, Event, EventKind, Request, ServerMsg};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinSet;

const REFUSALS: usize = 8;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(listener: Listener, shared: Arc<Shared>) {
    let max = shared.cfg.max_connections;
    let slots = Arc::new(Semaphore::new(max as usize));
    // Refusals being written at once; past these a connection over the cap is closed without a word.
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    loop {
        let conn = tokio::select! {
            c = listener.accept() => c,
            _ = shared.stopping() => break,
        };
        match conn {
            Ok(stream) => match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    let sh = shared.clone();
                    tokio::spawn(async move {
                        connection(stream, sh).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    tracing::warn!("refusing a connection: {max} already open");
                    if let Ok(permit) = refusals.clone().try_acquire_owned() {
                        tokio::spawn(async move {
                            refuse(stream, DaemonError::TooManyConnections { max }).await;
                            drop(permit);
                        });
                    }
                }
            },
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener); // removes the socket file
    let running = shared.queue().running.clone();
    if let Some((id, token)) = running {
        let reason = "the daemon was shut down while this job was running".to_string();
        let r = reason.clone();
        if let Err(e) = shared.db(move |s| s.interrupt(id, &r)).await {
            tracing::error!("recording the interrupted job: {e}");
        }
        token.cancel();
        shared.emit(Event { job: id, kind: EventKind::Interrupted { reason } });
        tracing::warn!(job = id, "running job marked interrupted; cancelling it");
    }
}

/// Resolves after `idle` (never for `None`).
async fn silent_for(idle: Option<Duration>) {
    match idle {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Tells a client over the connection cap why, then closes (bounded: a peer that does not read is dropped).
async fn refuse(stream: Stream, err: DaemonError) {
    let (_, w) = tokio::io::split(stream);
    let mut writer = FrameWriter::new(w);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.write(&ServerMsg::Error(err))).await;
}

async fn connection(stream: Stream, shared: Arc<Shared>) {
    let peer = server::peer_uid(&stream);
    let own = server::current_uid();
    let (r, w) = tokio::io::split(stream);
    let (mut reader, mut writer) = (FrameReader::new(r), FrameWriter::new(w));
    if !server::peer_allowed(peer, own) {
        tracing::warn!(?peer, "refused a client of another user");
        let err = DaemonError::PermissionDenied { peer_uid: peer.unwrap_or(u32::MAX), daemon_uid: own };
        let _ = writer.write(&ServerMsg::Error(err)).await;
        return;
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, server::handshake(&mut reader, &mut writer)).await {
        Ok(Ok(hello)) => tracing::debug!(client = %hello.client_name, version = %hello.client_version, "connected"),
        Ok(Err(e)) => return tracing::info!("handshake failed: {e}"),
        Err(_) => return tracing::info!("handshake timed out"),
    }
    let (tx, mut rx) = mpsc::channel::<Out>(CLIENT_BUFFER);
    let mut writer_task = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let res = match out {
                Out::Msg(m) => writer.write(&m).await,
                Out::Event(b) => writer.write_raw(&b.1).await,
            };
            if res.is_err() {
                break;
            }
        }
    });
    let kill = Arc::new(Notify::new());
    let mut subs = JoinSet::new();
    let mut killed = false;
    let mut shutdown = false;
    loop {
        // A connection that follows a job or shows notifications (a task in `subs`) is never idle.
        while subs.try_join_next().is_some() {}
        let idle = subs.is_empty().then_some(shared.cfg.idle_timeout);
        let msg = tokio::select! {
            m = reader.read::<ClientMsg>() => m,
            _ = kill.notified() => { killed = true; break }
            _ = silent_for(idle) => {
                tracing::info!("closing a connection silent for {:?}", shared.cfg.idle_timeout);
                break;
            }
        };
        let fatal = match msg {
            Ok(Some(ClientMsg::Request(req))) => {
                shutdown = matches!(req, Request::Shutdown);
                if let Some(r) = crate::handlers::handle(req, &shared, &tx, &mut subs, &kill).await {
                    if tx.send(Out::Msg(ServerMsg::Reply(r))).await.is_err() {
                        break;
                    }
                }
                if shutdown {
                    tracing::info!("shutdown requested by a client");
                    break;
                }
                continue;
            }
            Ok(Some(ClientMsg::Hello(_))) => DaemonError::BadFrame("unexpected second Hello".into()),
            Ok(None) | Err(FrameError::Io(_)) => break,
            Err(e) => DaemonError::BadFrame(e.to_string()),
        };
        tracing::info!("closing a connection: {fatal}");
        let _ = tx.send(Out::Msg(ServerMsg::Error(fatal))).await;
        break;
    }
    subs.abort_all();
    drop(tx);
    if killed || tokio::time::timeout(Duration::from_secs(2), &mut writer_task).await.is_err() {
        writer_task.abort();
    }
    // Only now: the reply is on the wire before the daemon starts going away.
    if shutdown {
        shared.begin_shutdown();
    }
}
