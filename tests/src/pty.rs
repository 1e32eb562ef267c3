//! A program on a pseudo-terminal, as a person runs it: its stdin, stdout and stderr are the terminal, it leads
//! its own session with the terminal as the controlling one (so a `\x03` written to it is a Ctrl-C: SIGINT to the
//! foreground process), and what it prints is kept both as bytes and as the screen a terminal would show
//! ([`Screen`]: the cursor movements and erasures a progress bar uses).
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Pty {
    master: File,
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    cols: usize,
    rows: usize,
}

fn check(rc: libc::c_int, what: &str) -> std::io::Result<libc::c_int> {
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(rc)
}

/// A new pseudo-terminal of `cols` × `rows`: (master, slave).
fn open(cols: u16, rows: u16) -> std::io::Result<(File, OwnedFd)> {
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r/open on descriptors this function owns; the buffer
    // outlives the call that fills it.
    unsafe {
        let m = check(libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY), "posix_openpt")?;
        let master = File::from_raw_fd(m);
        check(libc::grantpt(m), "grantpt")?;
        check(libc::unlockpt(m), "unlockpt")?;
        let mut name = [0 as libc::c_char; 128];
        check(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), "ptsname_r")?;
        let s = check(libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY), "open the pty slave")?;
        let slave = OwnedFd::from_raw_fd(s);
        let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        check(libc::ioctl(s, libc::TIOCSWINSZ, &size), "TIOCSWINSZ")?;
        Ok((master, slave))
    }
}

impl Pty {
    /// Runs `cmd` on a new 100 × 30 terminal.
    pub fn spawn(mut cmd: Command) -> Self {
        let (cols, rows) = (100, 30);
        let (master, slave) = open(cols, rows).expect("a pseudo-terminal");
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty slave"));
        cmd.stdin(io(&slave)).stdout(io(&slave)).stderr(io(&slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on the pty");
        drop(cmd);
        drop(slave);
        let out = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().expect("dup the pty master"), out.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the program and every copy of the slave are gone.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&buf[..n]);
            }
        });
        Pty { master, child, out, cols: cols.into(), rows: rows.into() }
    }

    /// Types `bytes` (`b"\x03"` is Ctrl-C, `b"c\r"` an answer and Enter).
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// Everything printed so far, escapes included.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// What the terminal shows now, one string a row, trailing blanks cut.
    pub fn screen(&self) -> Vec<String> {
        let mut s = Screen::new(self.cols, self.rows);
        s.feed(&self.raw());
        s.lines()
    }

    /// Waits until some row of the screen satisfies `pred`; the screen, or a panic naming `what`.
    pub fn wait_screen(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let t = Instant::now();
        loop {
            let screen = self.screen();
            if screen.iter().any(|l| pred(l)) {
                return screen;
            }
            assert!(t.elapsed() < timeout, "timed out waiting for {what}; the screen:\n{}", screen.join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The program's exit code, once it has exited within `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A terminal screen fed a program's output: text, `\r`, `\n`, backspace, and the CSI sequences that move the
/// cursor (`A` `B` `C` `D` `G` `H`) and erase (`K`, `J`); colours and modes are ignored.
pub struct Screen {
    rows: Vec<Vec<char>>,
    cols: usize,
    height: usize,
    r: usize,
    c: usize,
}

impl Screen {
    pub fn new(cols: usize, height: usize) -> Self {
        Screen { rows: vec![Vec::new(); height], cols, height, r: 0, c: 0 }
    }

    fn newline(&mut self) {
        if self.r + 1 == self.height {
            self.rows.remove(0);
            self.rows.push(Vec::new());
        } else {
            self.r += 1;
        }
    }

    fn put(&mut self, ch: char) {
        if self.c >= self.cols {
            self.c = 0;
            self.newline();
        }
        let row = &mut self.rows[self.r];
        if row.len() <= self.c {
            row.resize(self.c + 1, ' ');
        }
        row[self.c] = ch;
        self.c += 1;
    }

    fn csi(&mut self, params: &str, op: char) {
        let n = |i: usize, default: usize| -> usize {
            params.trim_start_matches('?').split(';').nth(i).and_then(|v| v.parse().ok()).unwrap_or(default)
        };
        match op {
            'A' => self.r = self.r.saturating_sub(n(0, 1).max(1)),
            'B' => self.r = (self.r + n(0, 1).max(1)).min(self.height - 1),
            'C' => self.c = (self.c + n(0, 1).max(1)).min(self.cols),
            'D' => self.c = self.c.saturating_sub(n(0, 1).max(1)),
            'G' => self.c = n(0, 1).saturating_sub(1).min(self.cols),
            'H' | 'f' => {
                self.r = n(0, 1).saturating_sub(1).min(self.height - 1);
                self.c = n(1, 1).saturating_sub(1).min(self.cols);
            }
            'K' => {
                let (c, row) = (self.c, &mut self.rows[self.r]);
                match n(0, 0) {
                    0 => row.truncate(c),
                    1 => row.iter_mut().take(c + 1).for_each(|x| *x = ' '),
                    _ => row.clear(),
                }
            }
            'J' => match n(0, 0) {
                0 => {
                    self.rows[self.r].truncate(self.c);
                    self.rows[self.r + 1..].iter_mut().for_each(Vec::clear);
                }
                _ => self.rows.iter_mut().for_each(Vec::clear),
            },
            _ => {}
        }
    }

    pub fn feed(&mut self, text: &str) {
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '\r' => self.c = 0,
                '\n' => self.newline(),
                '\x08' => self.c = self.c.saturating_sub(1),
                '\x1b' => match chars.next() {
                    Some('[') => {
                        let mut params = String::new();
                        for p in chars.by_ref() {
                            if ('\x40'..='\x7e').contains(&p) {
                                self.csi(&params, p);
                                break;
                            }
                            params.push(p);
                        }
                    }
                    // OSC: up to BEL or ST.
                    Some(']') => {
                        while let Some(p) = chars.next() {
                            if p == '\x07' || (p == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                                break;
                            }
                        }
                    }
                    _ => {}
                },
                c if c.is_control() => {}
                c => self.put(c),
            }
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.rows.iter().map(|r| r.iter().collect::<String>().trim_end().to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Screen;

    #[test]
    fn a_redrawn_line_replaces_the_old_and_erasures_erase() {
        let mut s = Screen::new(20, 4);
        s.feed("one\r\n\x1b[2Kbar 1\r\x1b[2Kbar 2");
        assert_eq!(s.lines()[..2], ["one", "bar 2"]);
        s.feed("\r\nquestion? ");
        s.feed("\x1b[1A\r\x1b[2K");
        assert_eq!(s.lines()[..3], ["one", "", "question?"]);
        s.feed("\x1b[J");
        assert_eq!(s.lines()[..3], ["one", "", ""]);
        let mut s = Screen::new(3, 2);
        s.feed("abcdefg");
        assert_eq!(s.lines(), ["def", "g"], "wraps and scrolls");
    }
}
