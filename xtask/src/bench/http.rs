//! A minimal HTTP/1.1 client on `std::net`, enough for readiness probes, the correctness check
//! before each measurement, time to first byte and holding streams open.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A loopback port nobody listens on right now (bound to `127.0.0.1:0`, then released).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding 127.0.0.1:0 to pick a free port")?;
    Ok(listener.local_addr()?.port())
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The bytes of a `POST` with a JSON body.
pub fn post(path: &str, token: Option<&str>, body: &str, keep_alive: bool) -> Vec<u8> {
    post_with(path, token, &[], body, keep_alive)
}

/// [`post`] with more headers (a peer gateway's routing headers).
pub fn post_with(
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
    keep_alive: bool,
) -> Vec<u8> {
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let extra = headers
        .iter()
        .fold(String::new(), |mut out, (name, value)| {
            let _ = write!(out, "{name}: {value}\r\n");
            out
        });
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}{extra}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A whole response, body de-chunked.
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn parse_status(head: &str) -> Result<u16> {
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("malformed status line in {head:?}"))
}

/// Sends `raw` (which must ask for `Connection: close`) and reads the response to EOF.
pub fn exchange(port: u16, raw: &[u8], timeout: Duration) -> Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr(port), timeout)
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(raw).context("sending the request")?;
    let mut buf = Vec::new();
    stream
        .read_to_end(&mut buf)
        .with_context(|| format!("reading the response from 127.0.0.1:{port}"))?;
    let end = head_end(&buf).with_context(|| {
        format!(
            "response from 127.0.0.1:{port} has no header end: {:?}",
            String::from_utf8_lossy(&buf)
        )
    })?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = parse_status(&head)?;
    let raw_body = &buf[end..];
    let chunked = header(&head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(raw_body)?
    } else {
        raw_body.to_vec()
    };
    Ok(Response { status, head, body })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunked body ends inside a chunk-size line")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            bail!("chunked body ends inside a chunk");
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// The value of header `name` (case-insensitive) in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// Where a chunked body ends (after its last chunk's CRLF), or `None` if it has not all arrived.
fn chunked_end(raw: &[u8]) -> Result<Option<usize>> {
    let mut at = 0;
    loop {
        let Some(line_len) = raw[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&raw[at..at + line_len]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        at += line_len + 2;
        // The last chunk has no data, then the (empty) trailer section's CRLF.
        let end = at + size + 2;
        if raw.len() < end {
            return Ok(None);
        }
        at = end;
        if size == 0 {
            return Ok(Some(at));
        }
    }
}

/// One keep-alive connection: requests sent one after another, each response read whole
/// (by `Content-Length` or chunked framing) before the next request goes out.
pub struct KeepAlive {
    port: u16,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl KeepAlive {
    pub fn connect(port: u16, timeout: Duration) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr(port), timeout)
            .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Self {
            port,
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends `raw` (which must ask for `Connection: keep-alive`) and reads its response.
    pub fn exchange(&mut self, raw: &[u8]) -> Result<Response> {
        let port = self.port;
        self.stream
            .write_all(raw)
            .with_context(|| format!("sending a request to 127.0.0.1:{port}"))?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(head_len) = head_end(&self.buf) {
                let head = String::from_utf8_lossy(&self.buf[..head_len]).into_owned();
                let raw_body = &self.buf[head_len..];
                let chunked = header(&head, "transfer-encoding")
                    .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
                let body_len = if chunked {
                    chunked_end(raw_body)?
                } else {
                    let len = header(&head, "content-length")
                        .with_context(|| {
                            format!("a keep-alive response without a length: {head:?}")
                        })?
                        .parse::<usize>()
                        .with_context(|| format!("bad Content-Length in {head:?}"))?;
                    (raw_body.len() >= len).then_some(len)
                };
                if let Some(body_len) = body_len {
                    let body = if chunked {
                        dechunk(&raw_body[..body_len])?
                    } else {
                        raw_body[..body_len].to_vec()
                    };
                    let status = parse_status(&head)?;
                    self.buf.drain(..head_len + body_len);
                    return Ok(Response { status, head, body });
                }
            }
            let n = self
                .stream
                .read(&mut chunk)
                .with_context(|| format!("reading a response from 127.0.0.1:{port}"))?;
            if n == 0 {
                bail!(
                    "127.0.0.1:{port} closed the connection inside a response: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `GET /ping` answered 200.
pub fn ping_ok(port: u16) -> bool {
    let req = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    exchange(port, req, Duration::from_secs(2)).is_ok_and(|r| r.status == 200)
}

/// Whether a socket listens on `127.0.0.1:port`, asked of the kernel (`/proc/net/tcp`), so the
/// server sees no probe connection: under callgrind a varying number of probes would be counted.
pub fn listening(port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return TcpStream::connect(addr(port)).is_ok();
    };
    // `local_address` is `0100007F:PORT` in hex, state `0A` is LISTEN.
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        fields.nth(1) == Some(local.as_str()) && fields.nth(1) == Some("0A")
    })
}

/// Polls until something listens on `port`.
pub fn wait_listening(port: u16, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if listening(port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("nothing listens on 127.0.0.1:{port} after {timeout:?}")
}

/// Reads from `stream` into `buf` until the body (after the header) contains `data:`.
/// Returns an error naming what arrived if the stream ends first.
pub fn read_until_first_event(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = head_end(buf) {
            let status = parse_status(&String::from_utf8_lossy(&buf[..end]))?;
            if status != 200 {
                bail!(
                    "stream answered {status}: {:?}",
                    String::from_utf8_lossy(buf)
                );
            }
            if buf[end..].windows(5).any(|w| w == b"data:") {
                return Ok(());
            }
        }
        let n = stream.read(&mut chunk).context("reading the stream")?;
        if n == 0 {
            bail!(
                "stream closed before its first event: {:?}",
                String::from_utf8_lossy(buf)
            );
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Time from sending `raw` on a fresh connection to the first SSE `data:` byte of the body.
pub fn time_to_first_event(port: u16, raw: &[u8]) -> Result<Duration> {
    let mut stream = TcpStream::connect(addr(port))
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::with_capacity(4096);
    let start = Instant::now();
    stream.write_all(raw).context("sending the request")?;
    read_until_first_event(&mut stream, &mut buf)?;
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_ends_after_the_last_chunk_and_not_before() {
        let body = b"5\r\nhello\r\n0\r\n\r\nNEXT";
        assert_eq!(chunked_end(body).unwrap(), Some(body.len() - 4));
        assert_eq!(chunked_end(&body[..12]).unwrap(), None);
        assert_eq!(chunked_end(&body[..14]).unwrap(), None);
        assert!(chunked_end(b"zz\r\n").is_err());
    }

    #[test]
    fn headers_are_found_whatever_their_case() {
        let head = "HTTP/1.1 200 OK\r\ncontent-LENGTH: 12\r\n\r\n";
        assert_eq!(header(head, "Content-Length"), Some("12"));
        assert_eq!(header(head, "transfer-encoding"), None);
    }
}
