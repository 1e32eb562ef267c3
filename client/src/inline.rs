//! Inline images in the terminals that draw them, for `ltxctl follow --preview`: the kitty graphics protocol
//! (kitty, Ghostty) and iTerm2's inline images (iTerm2, WezTerm), chosen from `TERM` / `TERM_PROGRAM`.
//! Anything else — another terminal, tmux or screen (which do not pass the sequences on), output that is not
//! a terminal — gets no images.
use base64::{engine::general_purpose::STANDARD as B64, Engine as _};

/// How a terminal takes an inline image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `ESC _ G … ESC \`, PNG payload in chunks.
    Kitty,
    /// `ESC ] 1337 ; File=… BEL`, any image format.
    Iterm2,
}

/// Width of a preview, in terminal cells (the height follows the aspect ratio).
pub const COLUMNS: u32 = 40;
/// kitty's limit on the base64 bytes of one escape sequence.
const KITTY_CHUNK: usize = 4096;

/// The protocol of the terminal the environment describes (`var` reads a variable), if it has one.
pub fn detect(var: &dyn Fn(&str) -> Option<String>) -> Option<Protocol> {
    let term = var("TERM").unwrap_or_default();
    if var("TMUX").is_some() || term.starts_with("screen") || term.starts_with("tmux") {
        return None;
    }
    let program = var("TERM_PROGRAM").unwrap_or_default();
    if term == "xterm-kitty" || var("KITTY_WINDOW_ID").is_some() || term == "xterm-ghostty" || program == "ghostty" {
        return Some(Protocol::Kitty);
    }
    // iTerm2 sets LC_TERMINAL, which ssh passes on where TERM_PROGRAM is lost.
    if program == "iTerm.app" || program == "WezTerm" || var("LC_TERMINAL").as_deref() == Some("iTerm2") {
        return Some(Protocol::Iterm2);
    }
    None
}

/// The protocol of this process's terminal.
pub fn terminal() -> Option<Protocol> {
    detect(&|k| std::env::var(k).ok())
}

/// iTerm2's inline image of `jpeg`, `columns` cells wide.
pub fn iterm2(jpeg: &[u8], columns: u32) -> String {
    format!(
        "\x1b]1337;File=inline=1;size={};width={columns};preserveAspectRatio=1:{}\x07",
        jpeg.len(),
        B64.encode(jpeg)
    )
}

/// kitty's transmit-and-display of `png`, `columns` cells wide, in chunks of [`KITTY_CHUNK`] base64 bytes;
/// `q=2`: the terminal sends no answer (it would arrive on stdin).
pub fn kitty(png: &[u8], columns: u32) -> String {
    let data = B64.encode(png);
    let chunks: Vec<&[u8]> = data.as_bytes().chunks(KITTY_CHUNK).collect();
    let mut out = String::with_capacity(data.len() + 32 * chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        let more = u8::from(i + 1 < chunks.len());
        let keys = if i == 0 { format!("a=T,f=100,q=2,c={columns},m={more}") } else { format!("m={more}") };
        out.push_str(&format!("\x1b_G{keys};{}\x1b\\", String::from_utf8_lossy(chunk)));
    }
    out
}

/// The escape sequence that shows the daemon's preview `jpeg`; `None` for bytes that are not a JPEG where the
/// protocol needs them decoded (kitty draws PNG, so the JPEG is re-encoded).
pub fn image(protocol: Protocol, jpeg: &[u8]) -> Option<String> {
    match protocol {
        Protocol::Iterm2 => (!jpeg.is_empty()).then(|| iterm2(jpeg, COLUMNS)),
        Protocol::Kitty => {
            let picture = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).ok()?;
            let mut png = std::io::Cursor::new(Vec::new());
            picture.write_to(&mut png, image::ImageFormat::Png).ok()?;
            Some(kitty(&png.into_inner(), COLUMNS))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    type Vars = &'static [(&'static str, &'static str)];

    #[test]
    fn terminals_are_told_apart_by_their_variables() {
        let cases: &[(Vars, Option<Protocol>)] = &[
            (&[("TERM", "xterm-kitty")], Some(Protocol::Kitty)),
            (&[("TERM", "xterm-256color"), ("KITTY_WINDOW_ID", "1")], Some(Protocol::Kitty)),
            (&[("TERM", "xterm-ghostty"), ("TERM_PROGRAM", "ghostty")], Some(Protocol::Kitty)),
            (&[("TERM", "xterm-256color"), ("TERM_PROGRAM", "iTerm.app")], Some(Protocol::Iterm2)),
            (&[("TERM", "xterm-256color"), ("TERM_PROGRAM", "WezTerm")], Some(Protocol::Iterm2)),
            (&[("TERM", "xterm-256color"), ("LC_TERMINAL", "iTerm2")], Some(Protocol::Iterm2)),
            (&[("TERM", "xterm-256color"), ("TERM_PROGRAM", "Apple_Terminal")], None),
            (&[("TERM", "xterm-256color"), ("TERM_PROGRAM", "vscode")], None),
            (&[("TERM", "linux")], None),
            (&[], None),
            // tmux and screen swallow the sequences, whatever terminal they run in.
            (&[("TERM", "tmux-256color"), ("TERM_PROGRAM", "iTerm.app")], None),
            (&[("TERM", "screen"), ("KITTY_WINDOW_ID", "1")], None),
            (&[("TERM", "xterm-kitty"), ("TMUX", "/tmp/tmux-1000/default,1,0")], None),
        ];
        for (vars, want) in cases {
            assert_eq!(detect(&env(vars)), *want, "{vars:?}");
        }
    }

    #[test]
    fn iterm2_sequence_carries_the_file_in_base64() {
        let s = iterm2(b"\xff\xd8\xffhello", 40);
        assert_eq!(s, "\x1b]1337;File=inline=1;size=8;width=40;preserveAspectRatio=1:/9j/aGVsbG8=\x07");
    }

    #[test]
    fn kitty_sequence_is_chunked_at_4096_base64_bytes() {
        // 3 bytes → 4 base64 characters: 6144 bytes → 8192 characters → exactly two chunks, then a third.
        let png: Vec<u8> = (0..6145u32).map(|i| (i * 7) as u8).collect();
        let s = kitty(&png, 40);
        let parts: Vec<&str> = s.split("\x1b\\").filter(|p| !p.is_empty()).collect();
        assert_eq!(parts.len(), 3, "{}", parts.len());
        let (head, first) = parts[0].split_once(';').expect("keys;payload");
        assert_eq!(head, "\x1b_Ga=T,f=100,q=2,c=40,m=1");
        assert_eq!(first.len(), 4096);
        assert!(parts[1].starts_with("\x1b_Gm=1;") && parts[2].starts_with("\x1b_Gm=0;"));
        let payload: String = parts.iter().map(|p| p.split_once(';').expect("payload").1).collect();
        assert_eq!(B64.decode(payload).expect("base64"), png, "the chunks join to the file");
        // A small file is one sequence, marked last.
        assert_eq!(kitty(b"abc", 12), "\x1b_Ga=T,f=100,q=2,c=12,m=0;YWJj\x1b\\");
    }

    #[test]
    fn a_preview_becomes_an_image_only_when_it_is_one() {
        let mut jpeg = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(8, 4, image::Rgb([200, 10, 10]))
            .write_to(&mut jpeg, image::ImageFormat::Jpeg)
            .unwrap();
        let jpeg = jpeg.into_inner();
        let kitty = image(Protocol::Kitty, &jpeg).expect("kitty image");
        let payload: String =
            kitty.split("\x1b\\").filter(|p| !p.is_empty()).map(|p| p.split_once(';').unwrap().1).collect();
        let png = B64.decode(payload).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "kitty gets a PNG");
        let decoded = image::load_from_memory(&png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (8, 4));
        assert!(image(Protocol::Iterm2, &jpeg).expect("iterm2").contains(&B64.encode(&jpeg)));
        assert_eq!(image(Protocol::Kitty, b"not a jpeg"), None);
        assert_eq!(image(Protocol::Iterm2, b""), None);
    }
}
