//! Image-to-video preprocessing (ltx-pipelines `load_image_conditioning`): decode the image, round-trip it
//! through H.264 (`preprocess`, which mimics the compression artefacts the model was trained on), resize to
//! fill the target aspect (bilinear, torch's `interpolate(align_corners=False)`) and centre-crop, scale to
//! [−1, 1] and encode one frame with the video VAE.
use ltx_protocol::FailureCode;
use mlx_rs::Array;
use openh264::{
    decoder::Decoder,
    encoder::{Encoder, EncoderConfig, QpRange, RateControlMode},
    formats::{RgbSliceU8, YUVBuffer, YUVSource},
    OpenH264API,
};

use super::Fail;
use crate::{job::EngineError, video_vae::VideoEncoder};

/// The quantiser of the H.264 round trip. The reference encodes with x264 at CRF 33
/// (`DEFAULT_IMAGE_CRF`); for a lone I-frame x264 lowers that by its I/P ratio (1.4 ⇒ ≈ 3 QP), so openh264
/// with rate control off runs at a fixed QP 30.
pub const ROUND_TRIP_QP: u8 = 30;

/// RGB24 pixels, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

fn bad(message: String) -> EngineError {
    EngineError::failed(FailureCode::InvalidImage, message)
}

/// The largest frame the H.264 round trip's encoder takes: its long side up to 3840 and its short side up to
/// 2160 (level 5.2, either orientation). A larger image (a 4032×3024 phone photo) is downscaled first: the
/// video is at most 2048 pixels a side, so nothing the model sees is lost.
pub const ROUND_TRIP_MAX: (u32, u32) = (3840, 2160);

/// Decodes a PNG, JPEG or WebP image, fits it to the encoder and applies the H.264 round trip.
pub fn prepare_image(bytes: &[u8]) -> Result<Pixels, EngineError> {
    let img = image::load_from_memory(bytes).map_err(|e| bad(format!("cannot decode the image: {e}")))?.to_rgb8();
    let (width, height) = (img.width(), img.height());
    if width < 2 || height < 2 {
        return Err(bad(format!("the image is {width}x{height}; it needs at least 2x2 pixels")));
    }
    let (w, h) = round_trip_size(width, height);
    let img = if (w, h) == (width, height) {
        img
    } else {
        tracing::info!("first-frame image {width}x{height} downscaled to {w}x{h} for the H.264 round trip");
        image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
    };
    h264_round_trip(&Pixels { width: w as usize, height: h as usize, rgb: img.into_raw() })
}

/// `width`×`height` scaled down, keeping the aspect, until it fits [`ROUND_TRIP_MAX`] (unchanged if it does).
pub fn round_trip_size(width: u32, height: u32) -> (u32, u32) {
    let (long, short) = (u64::from(width.max(height)), u64::from(width.min(height)));
    let (max_long, max_short) = (u64::from(ROUND_TRIP_MAX.0), u64::from(ROUND_TRIP_MAX.1));
    // The smaller of max_long / long and max_short / short, as a fraction (exact: the limiting side lands on
    // its maximum).
    let (num, den) = if max_long * short <= max_short * long { (max_long, long) } else { (max_short, short) };
    if num >= den {
        return (width, height);
    }
    let fit = |v: u32| ((u64::from(v) * num / den) as u32).max(2);
    (fit(width), fit(height))
}

/// `preprocess`: one intra frame through the encoder and back, at even dimensions (the odd last row or
/// column is dropped, as the reference does).
pub fn h264_round_trip(p: &Pixels) -> Result<Pixels, EngineError> {
    let (w, h) = (p.width / 2 * 2, p.height / 2 * 2);
    let rgb: Vec<u8> = (0..h).flat_map(|y| &p.rgb[y * p.width * 3..(y * p.width + w) * 3]).copied().collect();
    let config =
        EncoderConfig::new().rate_control_mode(RateControlMode::Off).qp(QpRange::new(ROUND_TRIP_QP, ROUND_TRIP_QP));
    let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config).fail(FailureCode::InvalidImage)?;
    let yuv = YUVBuffer::from_rgb8_source(RgbSliceU8::new(&rgb, (w, h)));
    let stream = encoder.encode(&yuv).fail(FailureCode::InvalidImage)?.to_vec();
    let mut decoder = Decoder::new().fail(FailureCode::InvalidImage)?;
    let decoded = match decoder.decode(&stream).fail(FailureCode::InvalidImage)? {
        Some(frame) => Some(frame_rgb(&frame)),
        None => decoder.flush_remaining().fail(FailureCode::InvalidImage)?.first().map(frame_rgb),
    };
    let (dw, dh, rgb) = decoded.ok_or_else(|| bad("the H.264 round trip produced no frame".into()))?;
    if (dw, dh) != (w, h) {
        return Err(bad(format!("the H.264 round trip returned {dw}x{dh} for {w}x{h}")));
    }
    Ok(Pixels { width: w, height: h, rgb })
}

fn frame_rgb(frame: &openh264::decoder::DecodedYUV<'_>) -> (usize, usize, Vec<u8>) {
    let (w, h) = frame.dimensions();
    let mut rgb = vec![0; w * h * 3];
    frame.write_rgb8(&mut rgb);
    (w, h, rgb)
}

/// `resize_and_center_crop`: scale by max(height/src_h, width/src_w) to ⌈src·scale⌉ (bilinear,
/// `align_corners=False`, no antialias), then crop the centre `height`×`width`. Returns f32 in 0…255,
/// (height, width, 3) row-major.
pub fn resize_and_center_crop(p: &Pixels, width: usize, height: usize) -> Vec<f32> {
    let (sw, sh) = (p.width, p.height);
    let scale = (height as f64 / sh as f64).max(width as f64 / sw as f64);
    let (nh, nw) = ((sh as f64 * scale).ceil() as usize, (sw as f64 * scale).ceil() as usize);
    let (top, left) = ((nh - height) / 2, (nw - width) / 2);
    // torch: src = (dst + 0.5)·(in/out) − 0.5, clamped at 0; neighbours i0 and min(i0 + 1, in − 1).
    let taps = |dst: usize, out: usize, input: usize| {
        let src = (((dst as f32) + 0.5) * (input as f32 / out as f32) - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(input - 1);
        let i1 = (i0 + 1).min(input - 1);
        let l1 = src - i0 as f32;
        (i0, i1, 1.0 - l1, l1)
    };
    let cols: Vec<_> = (0..width).map(|x| taps(x + left, nw, sw)).collect();
    let mut out = Vec::with_capacity(height * width * 3);
    for y in 0..height {
        let (y0, y1, wy0, wy1) = taps(y + top, nh, sh);
        for &(x0, x1, wx0, wx1) in &cols {
            for c in 0..3 {
                let px = |yy: usize, xx: usize| p.rgb[(yy * sw + xx) * 3 + c] as f32;
                let v = wy0 * (wx0 * px(y0, x0) + wx1 * px(y0, x1)) + wy1 * (wx0 * px(y1, x0) + wx1 * px(y1, x1));
                out.push(v);
            }
        }
    }
    out
}

/// The first frame's normalised VAE latent (1, C, 1, H/32, W/32) at `width`×`height`.
pub fn encode_first_frame(
    encoder: &VideoEncoder,
    pixels: &Pixels,
    width: usize,
    height: usize,
) -> Result<Array, EngineError> {
    let data: Vec<f32> = resize_and_center_crop(pixels, width, height).into_iter().map(|v| v / 127.5 - 1.0).collect();
    let frame = Array::from_slice(&data, &[1, 1, height as i32, width as i32, 3]);
    let latent = encoder.forward(&frame).fail(FailureCode::EncodeImageFailed)?;
    latent.eval().fail(FailureCode::EncodeImageFailed)?;
    Ok(latent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_larger_than_the_encoder_takes_is_downscaled_first() {
        assert_eq!(round_trip_size(4032, 3024), (2880, 2160));
        assert_eq!(round_trip_size(3024, 4032), (2160, 2880));
        assert_eq!(round_trip_size(3840, 2160), (3840, 2160));
        assert_eq!(round_trip_size(1920, 1080), (1920, 1080));
        assert_eq!(round_trip_size(8000, 100), (3840, 48));
        assert_eq!(round_trip_size(100_000, 16), (3840, 2));
        // A phone photo: 4032×3024 JPEG.
        let photo = image::RgbImage::from_fn(4032, 3024, |x, y| image::Rgb([(x / 16) as u8, (y / 12) as u8, 90]));
        let mut jpeg = Vec::new();
        photo.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).expect("jpeg");
        let p = prepare_image(&jpeg).expect("the phone photo goes through the H.264 round trip");
        assert_eq!((p.width, p.height, p.rgb.len()), (2880, 2160, 2880 * 2160 * 3));
    }
}
