//! Client side of a connection: connect, handshake, request/reply and event stream.
use crate::connection::{FrameReader, FrameWriter};
use crate::error::DaemonError;
use crate::frame::FrameError;
use crate::message::*;
use crate::{Event, PROTOCOL_VERSION, VERSION};
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use std::path::{Path, PathBuf};
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
}

pub struct Client {
    reader: FrameReader<ReadHalf<Stream>>,
    writer: FrameWriter<WriteHalf<Stream>>,
    pub welcome: Welcome,
}

/// Opens the raw socket (no handshake).
pub async fn connect_raw(path: &Path) -> Result<Stream, ClientError> {
    let unavailable = |source| ClientError::Unavailable { path: path.into(), source };
    let name = path.to_fs_name::<GenericFilePath>().map_err(unavailable)?;
    Stream::connect(name).await.map_err(unavailable)
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
        let (r, w) = tokio::io::split(connect_raw(path).await?);
        let (mut reader, mut writer) = (FrameReader::new(r), FrameWriter::new(w));
        // The daemon may refuse (peer check) and close before reading Hello: still read its error frame.
        let sent = writer.write(&ClientMsg::Hello(hello)).await;
        let reply = reader.read::<ServerMsg>().await;
        if let (Err(e), Err(_) | Ok(None)) = (&sent, &reply) {
            return Err(ClientError::Unexpected(format!("handshake failed: {e}")));
        }
        match reply? {
            Some(ServerMsg::Welcome(welcome)) => Ok(Self { reader, writer, welcome }),
            Some(ServerMsg::Error(e)) => Err(e.into()),
            Some(other) => Err(ClientError::Unexpected(format!("{other:?}"))),
            None => Err(ClientError::Closed),
        }
    }

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

    /// Sends a request and waits for its reply (events arriving meanwhile are dropped).
    pub async fn request(&mut self, req: Request) -> Result<Reply, ClientError> {
        self.send(req).await?;
        loop {
            match self.recv().await? {
                ServerMsg::Reply(Reply::Error(e)) => return Err(e.into()),
                ServerMsg::Reply(r) => return Ok(r),
                ServerMsg::Event(_) => continue,
                other => return Err(ClientError::Unexpected(format!("{other:?}"))),
            }
        }
    }

    /// The next event of a subscription.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            match self.recv().await? {
                ServerMsg::Event(e) => return Ok(e),
                ServerMsg::Reply(Reply::Error(e)) => return Err(e.into()),
                _ => continue,
            }
        }
    }
}
