//! MP4 writer: H.264 Constrained Baseline (openh264) from RGB frames converted to yuv420p with the
//! BT.709 limited-range matrix, tagged BT.709 both in the stream (VUI) and in the container (`colr`
//! nclx); AAC-LC (fdk-aac, ADTS frames) audio; muxed by muxide with `moov` before `mdat`. Frames are
//! encoded as they arrive; the file is muxed and written by [`Mp4Writer::finish`].
use std::{ops::Range, path::Path};

use fdk_aac::enc as aac;
use muxide::api::{AacProfile, AudioCodec, MuxerBuilder, VideoCodec};
use openh264::{
    encoder::{BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile, VuiConfig},
    formats::YUVBuffer,
    OpenH264API,
};

use super::{Audio, MediaError, Result};

/// BT.709 (ITU-T H.273 code points 1/1/1), limited range: the matrix the RGB->YUV conversion uses,
/// the SPS VUI and the `colr` box all say the same.
const BT709: u16 = 1;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoSettings {
    pub width: u32,
    pub height: u32,
    /// Frames per second of the request.
    pub fps: f64,
    /// Target bit rate; `None`: 0.25 bit per pixel per frame.
    pub bitrate: Option<u32>,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mp4Summary {
    pub frames: usize,
    pub video_seconds: f64,
    pub audio_seconds: Option<f64>,
    pub bytes: usize,
}

pub struct Mp4Writer {
    settings: VideoSettings,
    encoder: Encoder,
    /// Annex-B access units and whether each is an IDR frame.
    frames: Vec<(Vec<u8>, bool)>,
}

impl Mp4Writer {
    pub fn new(settings: VideoSettings) -> Result<Self> {
        let VideoSettings { width, height, fps, bitrate } = settings;
        if width == 0 || height == 0 || width % 2 != 0 || height % 2 != 0 || width > 4096 || height > 4096 {
            return Err(MediaError::Input(format!("{width}x{height}: yuv420p needs even dimensions up to 4096")));
        }
        if !(fps.is_finite() && fps > 0.0 && fps <= 240.0) {
            return Err(MediaError::Input(format!("frame rate {fps}")));
        }
        let bitrate = bitrate.unwrap_or((width as f64 * height as f64 * fps * 0.25) as u32);
        let config = EncoderConfig::new()
            .profile(Profile::Baseline)
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames((2.0 * fps).round() as u32))
            .vui(VuiConfig::bt709());
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| MediaError::H264(e.to_string()))?;
        Ok(Self { settings, encoder, frames: Vec::new() })
    }

    /// Encodes `rgb`: whole frames of `height·width·3` bytes (RGB24, row-major), e.g. a decoded chunk.
    pub fn push_frames(&mut self, rgb: &[u8]) -> Result<()> {
        let (w, h) = (self.settings.width as usize, self.settings.height as usize);
        if rgb.len() % (w * h * 3) != 0 {
            return Err(MediaError::Input(format!("{} bytes are not whole {w}x{h} RGB frames", rgb.len())));
        }
        for frame in rgb.chunks_exact(w * h * 3) {
            let yuv = YUVBuffer::from_vec(rgb_to_yuv420(frame, w, h), w, h);
            let bitstream = self.encoder.encode(&yuv).map_err(|e| MediaError::H264(e.to_string()))?;
            let keyframe = matches!(bitstream.frame_type(), FrameType::IDR);
            let data = bitstream.to_vec();
            if data.is_empty() {
                return Err(MediaError::H264(format!("frame {} produced no data", self.frames.len())));
            }
            self.frames.push((data, keyframe));
        }
        Ok(())
    }

    /// Muxes the video (and `audio`, fitted to the video's duration) and writes it to `path`, a new file (mode
    /// 0600, fsynced; never through a link, never over an existing file): the caller places it.
    pub fn finish(self, path: impl AsRef<Path>, audio: Option<&Audio>) -> Result<Mp4Summary> {
        let VideoSettings { width, height, fps, .. } = self.settings;
        if self.frames.is_empty() {
            return Err(MediaError::Input("no video frames".into()));
        }
        let video_seconds = self.frames.len() as f64 / fps;
        let mux_err = |e: muxide::api::MuxerError| MediaError::Mux(e.to_string());
        let mut builder =
            MuxerBuilder::new(Vec::new()).video(VideoCodec::H264, width, height, fps).with_fast_start(true);
        let aac_frames = match audio {
            Some(audio) => {
                let samples = (video_seconds * audio.sample_rate as f64).round() as usize;
                let frames = encode_aac(&audio.fit(samples))?;
                builder =
                    builder.audio(AudioCodec::Aac(AacProfile::Lc), audio.sample_rate, audio.channels.len() as u16);
                Some((frames, audio.sample_rate))
            }
            None => None,
        };
        let mut muxer = builder.build().map_err(mux_err)?;
        for (i, (data, keyframe)) in self.frames.iter().enumerate() {
            muxer.write_video(i as f64 / fps, data, *keyframe).map_err(mux_err)?;
        }
        let audio_seconds = match &aac_frames {
            Some((frames, rate)) => {
                for (i, frame) in frames.iter().enumerate() {
                    muxer.write_audio((i * AAC_FRAME) as f64 / *rate as f64, frame).map_err(mux_err)?;
                }
                Some((frames.len() * AAC_FRAME) as f64 / *rate as f64)
            }
            None => None,
        };
        muxer.finish_in_place().map_err(mux_err)?;
        let bytes = insert_colr(&muxer.into_writer())?;
        ltx_protocol::fsutil::write_new(path.as_ref(), &bytes, 0o600)?;
        Ok(Mp4Summary { frames: self.frames.len(), video_seconds, audio_seconds, bytes: bytes.len() })
    }
}

/// RGB24 -> I420 with the BT.709 matrix, limited range; chroma from the 2×2 average.
pub fn rgb_to_yuv420(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    let (kr, kb) = (0.2126f32, 0.0722f32);
    let luma = |p: [f32; 3]| kr * p[0] + (1.0 - kr - kb) * p[1] + kb * p[2];
    let px = |x: usize, y: usize| {
        let i = 3 * (y * width + x);
        [rgb[i] as f32, rgb[i + 1] as f32, rgb[i + 2] as f32]
    };
    let mut yuv = vec![0u8; width * height * 3 / 2];
    let (y_plane, chroma) = yuv.split_at_mut(width * height);
    let (u_plane, v_plane) = chroma.split_at_mut(width * height / 4);
    for y in 0..height {
        for x in 0..width {
            y_plane[y * width + x] = (16.0 + 219.0 / 255.0 * luma(px(x, y))).round() as u8;
        }
    }
    for y in 0..height / 2 {
        for x in 0..width / 2 {
            let mut avg = [0.0f32; 3];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = px(2 * x + dx, 2 * y + dy);
                (0..3).for_each(|c| avg[c] += p[c] / 4.0);
            }
            let l = luma(avg);
            let scale = 224.0 / 255.0;
            u_plane[y * width / 2 + x] =
                (128.0 + scale * (avg[2] - l) / (2.0 * (1.0 - kb))).round().clamp(0.0, 255.0) as u8;
            v_plane[y * width / 2 + x] =
                (128.0 + scale * (avg[0] - l) / (2.0 * (1.0 - kr))).round().clamp(0.0, 255.0) as u8;
        }
    }
    yuv
}

/// Samples per AAC-LC frame.
const AAC_FRAME: usize = 1024;

/// AAC-LC ADTS frames covering `audio` (its length rounded up to whole frames). The encoder's whole
/// priming frames are dropped, so audio starts with the video.
fn encode_aac(audio: &Audio) -> Result<Vec<Vec<u8>>> {
    let err = |e: aac::EncoderError| MediaError::Aac(format!("{e:?}"));
    let channels = match audio.channels.len() {
        1 => aac::ChannelMode::Mono,
        2 => aac::ChannelMode::Stereo,
        n => return Err(MediaError::Input(format!("{n} audio channels (1 or 2 supported)"))),
    };
    let encoder = aac::Encoder::new(aac::EncoderParams {
        bit_rate: aac::BitRate::Cbr(64_000 * audio.channels.len() as u32),
        sample_rate: audio.sample_rate,
        transport: aac::Transport::Adts,
        channels,
        audio_object_type: aac::AudioObjectType::Mpeg4LowComplexity,
    })
    .map_err(err)?;
    let info = encoder.info().map_err(err)?;
    if info.frameLength as usize != AAC_FRAME {
        return Err(MediaError::Aac(format!("frame length {}", info.frameLength)));
    }
    let priming = info.nDelay as usize / AAC_FRAME;
    let wanted = audio.len().div_ceil(AAC_FRAME) + priming;
    let pcm = audio.interleaved_i16();
    let chunk = AAC_FRAME * audio.channels.len();
    let silence = vec![0i16; chunk];
    let mut out = vec![0u8; info.maxOutBufBytes as usize];
    let (mut frames, mut offset) = (Vec::with_capacity(wanted), 0);
    for _ in 0..2 * wanted + 8 {
        if frames.len() == wanted {
            break;
        }
        let input = if offset < pcm.len() { &pcm[offset..(offset + chunk).min(pcm.len())] } else { &silence[..] };
        let step = encoder.encode(input, &mut out).map_err(err)?;
        offset += step.input_consumed;
        if step.output_size > 0 {
            frames.push(out[..step.output_size].to_vec());
        }
    }
    if frames.len() != wanted {
        return Err(MediaError::Aac(format!("{} of {wanted} frames came out", frames.len())));
    }
    Ok(frames.split_off(priming))
}

/// ISO-BMFF boxes: bytes before a sample entry's child boxes (`stsd`'s entry count, the visual /
/// audio sample entry fields).
fn child_offset(kind: &[u8]) -> usize {
    match kind {
        b"stsd" => 8,
        b"avc1" => 78,
        b"mp4a" => 28,
        _ => 0,
    }
}

/// The child boxes of `range` (a box's body): (type, whole box range). Stops at a malformed size.
pub fn children(buf: &[u8], range: Range<usize>) -> Vec<([u8; 4], Range<usize>)> {
    let mut out = Vec::new();
    let mut pos = range.start;
    while pos + 8 <= range.end {
        let size = u32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        let kind = [buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]];
        let size = if size == 0 { range.end - pos } else { size };
        if size < 8 || pos + size > range.end {
            break;
        }
        out.push((kind, pos..pos + size));
        pos += size;
    }
    out
}

/// The body of a box (after its header and any sample-entry fields).
pub fn body(kind: &[u8], range: &Range<usize>) -> Range<usize> {
    (range.start + 8 + child_offset(kind)).min(range.end)..range.end
}

/// Ranges of the boxes along `path` from the top level (the first match that contains the whole path).
pub fn find_path(buf: &[u8], path: &[&[u8; 4]]) -> Option<Vec<Range<usize>>> {
    fn find(buf: &[u8], range: Range<usize>, path: &[&[u8; 4]]) -> Option<Vec<Range<usize>>> {
        let (first, rest) = path.split_first()?;
        for (kind, r) in children(buf, range) {
            if &kind != *first {
                continue;
            }
            if rest.is_empty() {
                return Some(vec![r]);
            }
            if let Some(mut found) = find(buf, body(&kind, &r), rest) {
                found.insert(0, r);
                return Some(found);
            }
        }
        None
    }
    find(buf, 0..buf.len(), path)
}

/// Adds `colr` (nclx, BT.709, limited range) to the `avc1` sample entry, growing its ancestors and
/// moving every chunk offset that points past the insertion.
fn insert_colr(mp4: &[u8]) -> Result<Vec<u8>> {
    let bad = |what: &str| MediaError::Mux(format!("muxed file: {what}"));
    let path: [&[u8; 4]; 7] = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"avc1"];
    let ancestors = find_path(mp4, &path).ok_or_else(|| bad("no avc1 sample entry"))?;
    let at = ancestors[6].end;
    let mut colr = Vec::with_capacity(19);
    colr.extend_from_slice(&19u32.to_be_bytes());
    colr.extend_from_slice(b"colrnclx");
    [BT709, BT709, BT709].iter().for_each(|v| colr.extend_from_slice(&v.to_be_bytes()));
    colr.push(0); // full_range_flag 0
    let delta = colr.len();
    let mut out = [&mp4[..at], &colr[..], &mp4[at..]].concat();
    for range in &ancestors {
        let size =
            u32::from_be_bytes([out[range.start], out[range.start + 1], out[range.start + 2], out[range.start + 3]]);
        out[range.start..range.start + 4].copy_from_slice(&(size + delta as u32).to_be_bytes());
    }
    // chunk offsets into mdat move by `delta` when mdat follows the insertion
    let moov = find_path(&out, &[b"moov"]).ok_or_else(|| bad("no moov"))?.remove(0);
    let traks = children(&out, body(b"moov", &moov));
    for (kind, trak) in traks {
        if &kind != b"trak" {
            continue;
        }
        let mut sub = out[trak.clone()].to_vec();
        let stbl = find_path(&sub, &[b"trak", b"mdia", b"minf", b"stbl"]).ok_or_else(|| bad("no stbl"))?.remove(3);
        let tables = children(&sub, body(b"stbl", &stbl));
        for (kind, table) in tables {
            let width = match &kind {
                b"stco" => 4,
                b"co64" => 8,
                _ => continue,
            };
            let entries = table.start + 16;
            for pos in (entries..table.end).step_by(width) {
                let mut value = [0u8; 8];
                value[8 - width..].copy_from_slice(&sub[pos..pos + width]);
                let offset = u64::from_be_bytes(value);
                let moved = if offset as usize >= at { offset + delta as u64 } else { offset };
                sub[pos..pos + width].copy_from_slice(&moved.to_be_bytes()[8 - width..]);
            }
        }
        out[trak].copy_from_slice(&sub);
    }
    Ok(out)
}
