//! Async frame reader/writer over any byte stream (the two halves of a local socket).
use crate::frame::{self, FrameError};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a frame's buffer starts with before its bytes arrive.
const FIRST_READ: usize = 64 << 10;

pub struct FrameReader<R> {
    inner: R,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, max: frame::MAX_FRAME }
    }

    /// Reads one frame; `Ok(None)` on a clean end of stream between frames.
    pub async fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.inner.read(&mut prefix[got..]).await? {
                0 if got == 0 => return Ok(None),
                0 => return Err(FrameError::Truncated),
                n => got += n,
            }
        }
        let len = frame::check_len(prefix, self.max)?;
        // The buffer grows with the bytes that arrive: a length prefix alone reserves little (a peer that
        // announces 16 MiB and stalls costs what it sent, not what it announced).
        let mut payload = Vec::with_capacity(len.min(FIRST_READ));
        (&mut self.inner).take(len as u64).read_to_end(&mut payload).await?;
        if payload.len() < len {
            return Err(FrameError::Truncated);
        }
        frame::decode_payload(&payload).map(Some)
    }
}

pub struct FrameWriter<W> {
    inner: W,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner }
    }

    pub async fn write<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        self.write_raw(&frame::encode(msg)?).await
    }

    /// Writes an already encoded frame (used to encode an event once for many subscribers).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        self.inner.write_all(bytes).await?;
        self.inner.flush().await?;
        Ok(())
    }
}
