//! A local Hugging Face Hub for download tests (test code only): `HEAD|GET /{repo}/resolve/{rev}/{file}`
//! answers LFS files with a 302 to a separate file-host path (`/cas/{sha256}`) carrying `x-linked-etag` and
//! `x-linked-size`, and small git files directly with their git blob id as `etag`; the file host honours
//! `Range`; GitHub's raw files come from `/{owner}/{name}/{rev}/{path}` (`LTX_GITHUB_ENDPOINT` points here).
//! Faults are scripted: 5xx answers, a connection cut or a stall after N bytes, corrupt bodies, a
//! missing checksum header, gated repositories; every body byte sent is counted.
use sha2::Digest;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct HubFile {
    pub body: Vec<u8>,
    pub lfs: bool,
    /// Serve these bytes instead of `body` (the headers still describe `body`).
    pub corrupt: bool,
    /// Leave out `x-linked-etag`.
    pub no_checksum: bool,
}

#[derive(Default)]
pub struct Faults {
    /// Answer the next N requests (any route) with 503.
    pub fail_next: u32,
    /// Close the connection after this many body bytes of the next file-host response.
    pub cut_after: Option<u64>,
    /// Stop sending (and hold the connection) after this many body bytes of the next file-host response.
    pub stall_after: Option<u64>,
    /// Pause after every 64 KiB sent (makes downloads slow enough to interrupt).
    pub throttle: Option<Duration>,
}

#[derive(Default)]
pub struct State {
    /// `owner/name/path` → file.
    pub files: HashMap<String, HubFile>,
    /// Repositories that answer 401 without `Authorization: Bearer <token>`.
    pub gated: HashMap<String, String>,
    pub faults: Faults,
    /// Body bytes written per path.
    pub served: HashMap<String, u64>,
    /// `METHOD path range` of every request.
    pub log: Vec<String>,
}

pub struct Hub {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

pub fn sha256_hex(b: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(b))
}

fn git_blob_id(b: &[u8]) -> String {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", b.len()).as_bytes());
    h.update(b);
    format!("{:x}", h.finalize())
}

/// Deterministic pseudo-random bytes.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

impl Hub {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test hub");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &st);
                });
            }
        });
        Hub { url, state }
    }

    pub fn add(&self, repo: &str, path: &str, file: HubFile) {
        self.state.lock().unwrap().files.insert(format!("{repo}/{path}"), file);
    }

    /// Every catalogue file `variant`'s default pipeline needs, with small deterministic contents; the
    /// checkpoint gets `checkpoint_bytes`.
    pub fn add_variant(&self, variant: ltx_protocol::ModelVariant, checkpoint_bytes: usize) {
        use ltx_protocol::catalogue;
        for (i, f) in catalogue::needs(variant, variant.default_pipeline()).into_iter().enumerate() {
            let n = if matches!(f.component, catalogue::Component::Checkpoint(_)) { checkpoint_bytes } else { 40_000 };
            self.add(f.repo, f.remote, HubFile { body: bytes(i as u64 + 1, n), lfs: f.lfs, ..HubFile::default() });
        }
    }

    pub fn body(&self, repo: &str, path: &str) -> Vec<u8> {
        self.state.lock().unwrap().files[&format!("{repo}/{path}")].body.clone()
    }

    pub fn served_total(&self) -> u64 {
        self.state.lock().unwrap().served.values().sum()
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.state.lock().unwrap().faults)
    }
}

fn respond(w: &mut TcpStream, status: &str, headers: &[(String, String)]) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())
}

fn serve(mut conn: TcpStream, st: &Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let range = headers.get("range").cloned().unwrap_or_default();
    let fail = {
        let mut s = st.lock().unwrap();
        s.log.push(format!("{method} {path} {range}").trim().to_string());
        let fail = s.faults.fail_next > 0;
        if fail {
            s.faults.fail_next -= 1;
        }
        fail
    };
    if fail {
        return respond(&mut conn, "503 Service Unavailable", &[("content-length".into(), "0".into())]);
    }
    if let Some(sha) = path.strip_prefix("/cas/") {
        return file_host(conn, st, sha, &method, &range);
    }
    // /{owner}/{name}/resolve/{rev}/{file…}
    let segs: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    if segs.len() >= 4 && segs[2] != "resolve" {
        let file = segs[3..].join("/");
        return raw_file(conn, st, &path, &format!("{}/{}/{file}", segs[0], segs[1]), &method);
    }
    if segs.len() != 5 || segs[2] != "resolve" {
        return respond(&mut conn, "404 Not Found", &[("content-length".into(), "0".into())]);
    }
    let repo = format!("{}/{}", segs[0], segs[1]);
    let (file, token) = {
        let s = st.lock().unwrap();
        (s.files.get(&format!("{repo}/{}", segs[4])).cloned(), s.gated.get(&repo).cloned())
    };
    if let Some(t) = token {
        if headers.get("authorization") != Some(&format!("Bearer {t}")) {
            return respond(&mut conn, "401 Unauthorized", &[("content-length".into(), "0".into())]);
        }
    }
    let Some(f) = file else {
        return respond(&mut conn, "404 Not Found", &[("content-length".into(), "0".into())]);
    };
    let size = f.body.len().to_string();
    if f.lfs {
        let sha = sha256_hex(&f.body);
        let mut h = vec![("location".to_string(), format!("/cas/{sha}")), ("content-length".into(), "0".into())];
        if !f.no_checksum {
            h.push(("x-linked-etag".into(), format!("\"{sha}\"")));
        }
        h.push(("x-linked-size".into(), size));
        return respond(&mut conn, "302 Found", &h);
    }
    let h = [("etag".to_string(), format!("\"{}\"", git_blob_id(&f.body))), ("content-length".into(), size)];
    respond(&mut conn, "200 OK", &h)?;
    if method == "GET" {
        send_body(&mut conn, st, &path, &f.body, false)?;
    }
    Ok(())
}

/// GitHub's raw files (`/{owner}/{name}/{rev}/{path…}`): the bytes and their length, no checksum header.
fn raw_file(mut conn: TcpStream, st: &Arc<Mutex<State>>, path: &str, key: &str, method: &str) -> std::io::Result<()> {
    let Some(f) = st.lock().unwrap().files.get(key).cloned() else {
        return respond(&mut conn, "404 Not Found", &[("content-length".into(), "0".into())]);
    };
    respond(&mut conn, "200 OK", &[("content-length".into(), f.body.len().to_string())])?;
    if method == "GET" {
        send_body(&mut conn, st, path, &f.body, false)?;
    }
    Ok(())
}

fn file_host(mut conn: TcpStream, st: &Arc<Mutex<State>>, sha: &str, method: &str, range: &str) -> std::io::Result<()> {
    let file = st.lock().unwrap().files.values().find(|f| sha256_hex(&f.body) == sha).cloned();
    let Some(f) = file else {
        return respond(&mut conn, "404 Not Found", &[("content-length".into(), "0".into())]);
    };
    let mut body = f.body.clone();
    if f.corrupt {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    let start: usize =
        range.strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')).and_then(|s| s.parse().ok()).unwrap_or(0);
    if start > body.len() {
        return respond(&mut conn, "416 Range Not Satisfiable", &[("content-length".into(), "0".into())]);
    }
    let total = body.len();
    let rest = &body[start..];
    if start > 0 {
        let h = [
            ("content-length".to_string(), rest.len().to_string()),
            ("content-range".into(), format!("bytes {start}-{}/{total}", total - 1)),
        ];
        respond(&mut conn, "206 Partial Content", &h)?;
    } else {
        respond(&mut conn, "200 OK", &[("content-length".into(), total.to_string())])?;
    }
    if method == "GET" {
        send_body(&mut conn, st, &format!("/cas/{sha}"), rest, true)?;
    }
    Ok(())
}

fn send_body(
    conn: &mut TcpStream,
    st: &Arc<Mutex<State>>,
    key: &str,
    body: &[u8],
    faults: bool,
) -> std::io::Result<()> {
    let (cut, stall, throttle) = {
        let mut s = st.lock().unwrap();
        let len = body.len() as u64;
        // A cut or stall applies to the next body long enough to be cut there.
        let take = |f: &mut Option<u64>| if f.is_some_and(|l| l < len) { f.take() } else { None };
        if faults {
            let cut = take(&mut s.faults.cut_after);
            let stall = take(&mut s.faults.stall_after);
            (cut, stall, s.faults.throttle)
        } else {
            (None, None, None)
        }
    };
    let mut sent = 0u64;
    for chunk in body.chunks(64 << 10) {
        let mut chunk = chunk;
        let limit = cut.or(stall);
        if let Some(l) = limit {
            let room = l.saturating_sub(sent) as usize;
            chunk = &chunk[..room.min(chunk.len())];
        }
        conn.write_all(chunk)?;
        sent += chunk.len() as u64;
        *st.lock().unwrap().served.entry(key.to_string()).or_default() += chunk.len() as u64;
        if limit.is_some_and(|l| sent >= l) {
            if stall.is_some() {
                // Hold the connection open without sending: the client's stall timer must fire.
                let mut sink = [0u8; 1];
                let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = conn.read(&mut sink);
            }
            return conn.flush();
        }
        if let Some(t) = throttle {
            std::thread::sleep(t);
        }
    }
    conn.flush()
}
