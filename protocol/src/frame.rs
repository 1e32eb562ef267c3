//! Length-prefixed bincode frames. The length is checked against the limit before anything is allocated.
use serde::{de::DeserializeOwned, Serialize};

/// Default maximum payload size (16 MiB).
pub const MAX_FRAME: usize = 16 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("malformed frame: {0}")]
    Decode(String),
    #[error("cannot encode frame: {0}")]
    Encode(String),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `msg` as one frame (length prefix included).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; 4];
    bincode::serde::encode_into_std_write(msg, &mut out, config()).map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len, max: MAX_FRAME });
    }
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// Checks a length prefix against `max` before the payload is read or allocated.
pub fn check_len(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Decodes one payload; trailing bytes are an error.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (msg, used) =
        bincode::serde::decode_from_slice(payload, config()).map_err(|e| FrameError::Decode(e.to_string()))?;
    if used != payload.len() {
        return Err(FrameError::Decode(format!("{} trailing bytes after the message", payload.len() - used)));
    }
    Ok(msg)
}

/// Decodes the first frame of `buf`: `Ok(None)` if more bytes are needed, else the message and bytes used.
pub fn decode<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, FrameError> {
    let Some(prefix) = buf.get(..4) else { return Ok(None) };
    let len = check_len([prefix[0], prefix[1], prefix[2], prefix[3]], MAX_FRAME)?;
    let Some(payload) = buf.get(4..4 + len) else { return Ok(None) };
    Ok(Some((decode_payload(payload)?, 4 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ClientMsg, Hello};

    #[test]
    fn round_trip_and_limits() {
        let hello =
            ClientMsg::Hello(Hello { protocol_version: 1, client_name: "t".into(), client_version: "0".into() });
        let f = encode(&hello).unwrap();
        let (back, used): (ClientMsg, _) = decode(&f).unwrap().unwrap();
        assert_eq!(used, f.len());
        assert_eq!(back, hello);
        assert!(decode::<ClientMsg>(&f[..f.len() - 1]).unwrap().is_none());
        let huge = ((MAX_FRAME + 1) as u32).to_le_bytes();
        assert!(matches!(decode::<ClientMsg>(&huge), Err(FrameError::TooLarge { .. })));
        let mut trailing = f.clone();
        trailing.push(0);
        trailing[0] += 1;
        assert!(matches!(decode::<ClientMsg>(&trailing), Err(FrameError::Decode(_))));
        assert!(decode::<ClientMsg>(&[3, 0, 0, 0, 0xff, 0xff, 0xff]).is_err());
    }
}
