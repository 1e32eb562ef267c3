//! The pixel size of a PNG, JPEG or WebP image from its header alone (nothing is decoded): the submit check
//! refuses an image too small for the first-frame path with the numbers, before it is queued.

/// Width and height in pixels, or why the header does not give them.
pub fn image_size(b: &[u8]) -> Result<(u32, u32), String> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(b)
    } else if b.starts_with(&[0xff, 0xd8]) {
        jpeg(b)
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        webp(b)
    } else {
        Err("not a PNG, JPEG or WebP file".into())
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?).into())
}

fn le(b: &[u8], at: usize, n: usize) -> Option<u32> {
    Some(b.get(at..at + n)?.iter().rev().fold(0u32, |v, &x| v << 8 | u32::from(x)))
}

/// The IHDR chunk, which the format requires first.
fn png(b: &[u8]) -> Result<(u32, u32), String> {
    if b.get(12..16) != Some(b"IHDR") {
        return Err("the PNG has no IHDR chunk".into());
    }
    be32(b, 16).zip(be32(b, 20)).ok_or_else(|| "the PNG header is truncated".into())
}

/// The first start-of-frame segment (baseline, progressive, lossless or arithmetic-coded).
fn jpeg(b: &[u8]) -> Result<(u32, u32), String> {
    let truncated = || "the JPEG ends before its frame header".to_string();
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while b.get(at) == Some(&0xff) && b.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        if b.get(at) != Some(&0xff) {
            return Err(format!("the JPEG has no marker at byte {at}"));
        }
        let marker = *b.get(at + 1).ok_or_else(truncated)?;
        match marker {
            // Standalone markers: no length.
            0x01 | 0xd0..=0xd7 => {
                at += 2;
                continue;
            }
            0xda | 0xd9 => return Err("the JPEG has no frame header before its scan".into()),
            _ => {}
        }
        let len = be16(b, at + 2).ok_or_else(truncated)? as usize;
        if len < 2 {
            return Err(format!("the JPEG has a segment of length {len} at byte {at}"));
        }
        if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            // Length, precision, then height and width.
            let (h, w) = be16(b, at + 5).zip(be16(b, at + 7)).ok_or_else(truncated)?;
            if h == 0 {
                return Err("the JPEG defines its height after the first scan (DNL), which is not supported".into());
            }
            return Ok((w, h));
        }
        at += 2 + len;
    }
}

/// The first chunk: lossy (`VP8 `), lossless (`VP8L`) or extended (`VP8X`, the canvas size).
fn webp(b: &[u8]) -> Result<(u32, u32), String> {
    let truncated = || "the WebP header is truncated".to_string();
    match b.get(12..16) {
        Some(b"VP8 ") => {
            if b.get(23..26) != Some(&[0x9d, 0x01, 0x2a]) {
                return Err("the WebP's VP8 frame has no start code".into());
            }
            let (w, h) = le(b, 26, 2).zip(le(b, 28, 2)).ok_or_else(truncated)?;
            Ok((w & 0x3fff, h & 0x3fff))
        }
        Some(b"VP8L") => {
            if b.get(20) != Some(&0x2f) {
                return Err("the WebP's lossless stream has no signature".into());
            }
            let bits = le(b, 21, 4).ok_or_else(truncated)?;
            Ok(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        Some(b"VP8X") => {
            let (w, h) = le(b, 24, 3).zip(le(b, 27, 3)).ok_or_else(truncated)?;
            Ok((w + 1, h + 1))
        }
        Some(other) => Err(format!("the WebP starts with an unknown chunk {:?}", String::from_utf8_lossy(other))),
        None => Err(truncated()),
    }
}

#[cfg(test)]
mod tests {
    use super::image_size;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend(w.to_be_bytes());
        b.extend(h.to_be_bytes());
        b.extend([8, 2, 0, 0, 0]);
        b
    }

    #[test]
    fn png_jpeg_and_webp_sizes() {
        assert_eq!(image_size(&png(4032, 3024)), Ok((4032, 3024)));
        assert!(image_size(&png(1, 1)[..20]).is_err());
        assert!(image_size(b"\x89PNG\r\n\x1a\nnot really").is_err());
        // SOI, an APP0 segment, fill bytes, then a progressive SOF2 with height 3024 and width 4032.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xff, 0xc2, 0, 17, 8];
        jpeg.extend([0x0b, 0xd0, 0x0f, 0xc0]);
        assert_eq!(image_size(&jpeg), Ok((4032, 3024)));
        assert!(image_size(&[0xff, 0xd8, 0xff]).is_err());
        assert!(image_size(&[0xff, 0xd8, 0xff, 0xda, 0, 2]).is_err());
        assert!(image_size(&[0xff, 0xd8, 0xff, 0xe0, 0, 0]).is_err());
        let riff = |chunk: &[u8], data: &[u8]| [b"RIFF\0\0\0\0WEBP", chunk, b"\0\0\0\0", data].concat();
        let lossy = riff(b"VP8 ", &[0, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
        assert_eq!(image_size(&lossy), Ok((320, 240)));
        // Width − 1 in the low 14 bits, height − 1 in the next 14.
        let bits: u32 = 99 | (9 << 14);
        assert_eq!(image_size(&riff(b"VP8L", &[&[0x2f][..], &bits.to_le_bytes()].concat())), Ok((100, 10)));
        assert_eq!(image_size(&riff(b"VP8X", &[0, 0, 0, 0, 7, 0, 0, 4, 0, 0])), Ok((8, 5)));
        assert!(image_size(&riff(b"ALPH", &[])).is_err());
        assert!(image_size(b"GIF89a").is_err());
    }
}
