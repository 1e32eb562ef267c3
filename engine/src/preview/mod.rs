//! Live-preview decoders: the tiny video decoders of TAEHV (github.com/madebyollin/taehv) that turn a
//! generation's normalised latent into RGB at a small fraction of the video VAE's cost — `taeltx_2` for
//! LTX-2, `taeltx2_3` for LTX-2.3. The layout of each is a row of `ltx_protocol::rules::PREVIEWS`
//! (the weights file carries none); the file is `Component::PreviewDecoder(generation)` in the catalogue.
pub mod decoder;

pub use decoder::{to_rgb24, DecoderMemory, TaeDecoder};
