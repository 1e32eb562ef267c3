//! placeholder
pub mod job;
