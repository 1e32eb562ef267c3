//! Step previews: after a denoising step, while a client subscribed with previews, the x0 prediction's
//! first latent frame is decoded by the video VAE (one latent frame → one picture, no decode noise) and
//! sent as a JPEG. Costs one single-frame decode per step only while someone watches.
use ltx_protocol::FailureCode;
use mlx_rs::{ops::indexing::IndexOp, Array};

use super::{components::Components, latents::unpatchify_video, latents::VideoLatentShape, Fail};
use crate::{
    job::{EngineError, ProgressSink},
    video_vae::{decoder::to_rgb24, DecodeOptions, VideoDecoder},
};

/// JPEG quality of previews.
const QUALITY: u8 = 80;

pub struct Previewer {
    /// Shares the resident decoder's weights (MLX arrays are reference counted).
    decoder: VideoDecoder,
}

impl Previewer {
    /// A previewer over the resident video decoder when someone wants previews as denoising starts (the
    /// decoder then loads before the transformer instead of after); `None` otherwise, and in the low-memory
    /// plan, which keeps the decoder out of memory while the transformer is in.
    pub fn new(c: &mut Components, progress: &mut dyn ProgressSink) -> Result<Option<Self>, EngineError> {
        if c.low_memory || !progress.wants_preview() {
            return Ok(None);
        }
        Ok(Some(Self { decoder: c.ensure_video_decoder(progress)?.clone() }))
    }

    /// The JPEG of the first frame of `x0` (patchified tokens of a latent of `shape`).
    pub fn render(&self, shape: &VideoLatentShape, x0: &Array) -> Result<Vec<u8>, EngineError> {
        let latent = unpatchify_video(x0, shape).fail(FailureCode::PreviewFailed)?;
        let first = latent.index((.., .., 0..1, .., ..));
        let options = DecodeOptions { noise_scale: 0.0, ..DecodeOptions::default() };
        let frame = self.decoder.forward(&first, &options).fail(FailureCode::PreviewFailed)?;
        let (h, w) = (frame.shape()[2] as u32, frame.shape()[3] as u32);
        let rgb = to_rgb24(&frame).fail(FailureCode::PreviewFailed)?;
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
            .encode(&rgb[..(w * h * 3) as usize], w, h, image::ExtendedColorType::Rgb8)
            .fail(FailureCode::PreviewFailed)?;
        Ok(jpeg)
    }
}
