//! The clients of `ltxd`: `ltxctl`, the command line, and `ltx-tray`, the menu-bar client (feature `tray`). Both
//! speak to the daemon through the typed client of the protocol crate ([`ltx_protocol::client::Client`]), and
//! start or stop it through [`daemon`].
//!
//! Exit codes of `ltxctl`: 0 done, 1 failed, 2 cancelled, 3 daemon unavailable, 4 busy or invalid request,
//! 5 detached ([`exit`]).
//!
//! - [`cli`]: the clap types of every command;
//! - [`commands`]: `main` and the dispatch of each command;
//! - [`request`]: the generation request built from `ltxctl submit`'s arguments;
//! - [`print`]: plain-text output; [`json`]: the JSON document of each command (`docs/json.md`);
//! - [`daemon`]: reaching, starting and stopping the daemon (`ltxctl daemon …` and the tray);
//! - [`platform`]: the socket path, the `ltxd` binary, opening files;
//! - [`follow`]: following a job until it ends (`submit --wait`, `follow`);
//! - [`models`], [`doctor`], [`service`]: `ltxctl models …`, `ltxctl doctor`, `ltxctl service …`;
//! - `tray`: `ltx-tray`.
//!
//! Every `println!`, `eprintln!` and `eprint!` of this crate is [`print`]'s (the macros below shadow std's): a
//! reader that went away (`ltxctl history | head -1`) ends ltxctl quietly with exit 0 instead of a panic, and
//! a closed stderr is never an error.

/// One line to stdout through [`print::line`] (a closed stdout ends the process quietly).
macro_rules! println {
    () => { $crate::print::line("") };
    ($($arg:tt)*) => { $crate::print::line(&format!($($arg)*)) };
}

/// One line to stderr through [`print::note`] (never fails).
macro_rules! eprintln {
    () => { $crate::print::note("") };
    ($($arg:tt)*) => { $crate::print::note(&format!($($arg)*)) };
}

/// A prompt on stderr, without a newline, through [`print::prompt`].
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::print::prompt(&format!($($arg)*)) };
}

pub mod cli;
pub mod commands;
pub mod daemon;
pub mod doctor;
pub mod exit;
pub mod follow;
pub mod inline;
pub mod json;
#[cfg(test)]
mod json_docs;
pub mod models;
pub mod platform;
pub mod print;
pub mod request;
pub mod service;
#[cfg(feature = "tray")]
pub mod tray;

pub use cli::Cli;
pub use commands::{main, run};
pub use exit::{Failure, Res, EXIT_CANCELLED, EXIT_DETACHED, EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE};
pub use platform::socket_path;
