//! The data types `ltxd`, its clients and the engine share, and the product's rules:
//!
//! - [`job`] (requests, records, failure codes), [`message`] (handshake, requests, replies), [`error`],
//!   [`event`], [`models`] (model listings and downloads), [`json`] (the JSON views ltxctl prints, `docs/json.md`);
//! - [`rules`] (generations, variants, pipelines and their defaults), [`catalogue`] (model files, what a
//!   pipeline needs, the missing-files refusal), [`validate`] (the one validation, giving [`ValidRequest`]);
//! - [`paths`] (socket, config, state and log paths per platform); [`fsutil`] (every file write: no link
//!   followed, no file replaced that was not meant to be, fsynced);
//! - behind the `ipc` feature, the connection stack: [`connection`], the typed [`client`], the [`server`]
//!   handshake. The engine depends on this crate without it.
//!
//! Frames are a little-endian `u32` length followed by a bincode 2.0.1 (serde API, `config::standard()`)
//! payload. Every connection starts with [`Hello`] → [`Welcome`]; the codec lives in [`frame`] only.
pub mod catalogue;
#[cfg(feature = "ipc")]
pub mod client;
#[cfg(feature = "ipc")]
pub mod connection;
pub mod error;
pub mod event;
pub mod frame;
pub mod fsutil;
mod image_size;
pub mod job;
pub mod json;
pub mod message;
pub mod models;
pub mod part;
pub mod paths;
pub mod rules;
#[cfg(feature = "ipc")]
pub mod server;
pub mod sysmem;
pub mod validate;

pub use catalogue::MissingModels;
pub use error::DaemonError;
pub use event::{Eta, Event, EventKind, Stage};
pub use job::*;
pub use message::*;
pub use part::Part;
pub use rules::{Defaults, Generation};
pub use validate::{validate, FsCheck, ValidRequest, ValidationError};

/// Bumped on every incompatible wire change (bincode is not self-describing: any change is incompatible).
pub const PROTOCOL_VERSION: u32 = 5;
/// Version of the crates, reported in the handshake and output sidecars.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Decodes every frame in `buf` as a client would send it and validates any generation request in it
/// (file-system checks off). The fuzz target and the corpus replay test both call this; it must never
/// panic. Returns how many frames decoded.
pub fn decode_and_validate(mut buf: &[u8]) -> usize {
    let mut n = 0;
    while let Ok(Some((msg, used))) = frame::decode::<ClientMsg>(buf) {
        if let ClientMsg::Request(Request::Submit(r)) = &msg {
            let _ = validate(r.clone(), FsCheck::Skip);
        }
        n += 1;
        buf = &buf[used..];
    }
    n
}
