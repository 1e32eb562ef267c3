//! Step previews: after a denoising step, while a client subscribed with previews, the x0 prediction's
//! first latent frame is decoded (one latent frame → one picture) and sent as a JPEG. The decoder is the
//! generation's tiny preview decoder where it is installed (TAELTX, `crate::preview`: about a second at
//! 768×512 on a CPU, resident in any memory plan), else the video VAE's (no decode noise; not in the
//! low-memory plan, which keeps the VAE out of memory while the transformer is in). Costs one single-frame
//! decode per step only while someone watches.
use ltx_protocol::FailureCode;
use mlx_rs::{ops::indexing::IndexOp, Array};

use super::{components::Components, latents::unpatchify_video, latents::VideoLatentShape, Fail};
use crate::{
    job::{EngineError, ProgressSink},
    preview::{to_rgb24 as tiny_rgb24, TaeDecoder},
    video_vae::{decoder::to_rgb24, DecodeOptions, VideoDecoder},
};

/// JPEG quality of previews.
const QUALITY: u8 = 80;

/// The decoder previews are rendered with (each shares the resident component's weights: MLX arrays are
/// reference counted).
pub enum Previewer {
    Tiny(TaeDecoder),
    Vae(Box<VideoDecoder>),
}

impl Previewer {
    /// A previewer when someone wants previews as denoising starts: the tiny decoder where installed (a file
    /// that fails to load is logged and the VAE used instead), else the video decoder (it then loads before
    /// the transformer instead of after), except in the low-memory plan; `None` otherwise.
    pub fn new(c: &mut Components, progress: &mut dyn ProgressSink) -> Result<Option<Self>, EngineError> {
        if !progress.wants_preview() {
            return Ok(None);
        }
        match c.ensure_preview_decoder(progress) {
            Ok(Some(tiny)) => return Ok(Some(Self::Tiny(tiny.clone()))),
            Ok(None) => {}
            Err(e) => tracing::warn!("preview decoder: {e}; previews use the video VAE"),
        }
        if c.low_memory {
            return Ok(None);
        }
        Ok(Some(Self::Vae(Box::new(c.ensure_video_decoder(progress)?.clone()))))
    }

    /// The JPEG of the first frame of `x0` (patchified tokens of a latent of `shape`).
    pub fn render(&self, shape: &VideoLatentShape, x0: &Array) -> Result<Vec<u8>, EngineError> {
        let latent = unpatchify_video(x0, shape).fail(FailureCode::PreviewFailed)?;
        let first = latent.index((.., .., 0..1, .., ..));
        let (frame, rgb) = match self {
            Self::Tiny(decoder) => {
                let frame = decoder.first_frame(&first).fail(FailureCode::PreviewFailed)?;
                let rgb = tiny_rgb24(&frame).fail(FailureCode::PreviewFailed)?;
                (frame, rgb)
            }
            Self::Vae(decoder) => {
                let options = DecodeOptions { noise_scale: 0.0, ..DecodeOptions::default() };
                let frame = decoder.forward(&first, &options).fail(FailureCode::PreviewFailed)?;
                let rgb = to_rgb24(&frame).fail(FailureCode::PreviewFailed)?;
                (frame, rgb)
            }
        };
        let (h, w) = (frame.shape()[2] as u32, frame.shape()[3] as u32);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
            .encode(&rgb[..(w * h * 3) as usize], w, h, image::ExtendedColorType::Rgb8)
            .fail(FailureCode::PreviewFailed)?;
        Ok(jpeg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tiny_decoder_previews_the_first_frame_at_the_videos_size() {
        std::env::set_var("OPENBLAS_NUM_THREADS", "1");
        let rules = ltx_protocol::Generation::Ltx2.preview().expect("rules");
        let previewer = Previewer::Tiny(TaeDecoder::new(rules).expect("decoder"));
        // A 64×96 video of 17 frames: latent 3 × 2 × 3 of 128 channels, as patchified tokens.
        let shape = VideoLatentShape { channels: 128, frames: 3, height: 2, width: 3 };
        let x0 = mlx_rs::random::normal::<f32>(&[1, 18, 128], None, None, &mlx_rs::random::key(3).expect("key"))
            .expect("tokens");
        let jpeg = previewer.render(&shape, &x0).expect("preview");
        let img = image::load_from_memory(&jpeg).expect("a JPEG");
        assert_eq!((img.width(), img.height()), (96, 64));
    }
}
