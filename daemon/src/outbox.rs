//! What a connection's writer task sends, written by the connection loop and the request handlers.
use crate::Broadcast;
use ltx_protocol::ServerMsg;

/// Frames buffered per client before a client that does not read is dropped.
pub const CLIENT_BUFFER: usize = 256;

/// A message, or an event already encoded once for every subscriber.
pub(crate) enum Out {
    Msg(ServerMsg),
    Event(Broadcast),
}
