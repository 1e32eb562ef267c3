//! Wire protocol between `ltxd` and its clients: framing, messages, validation and platform paths.
//!
//! Frames are a little-endian `u32` length followed by a bincode 2.0.1 (serde API, `config::standard()`)
//! payload. Every connection starts with [`Hello`] → [`Welcome`]; the codec lives in [`frame`] only.
pub mod client;
pub mod connection;
pub mod event;
pub mod frame;
pub mod paths;
pub mod request;
pub mod server;
pub mod validate;

pub use event::{Event, EventKind, Stage};
pub use request::*;
pub use validate::{validate, FsCheck, ValidationError};

/// Bumped on every incompatible wire change (bincode is not self-describing: any change is incompatible).
pub const PROTOCOL_VERSION: u32 = 1;
/// Version of the crates, reported in the handshake and output sidecars.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
