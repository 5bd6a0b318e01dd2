//! `ai-proxy healthcheck`: the image has no shell or curl, so the binary checks itself with
//! a minimal HTTP/1.1 GET of `/ping`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Whole-check budget.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// `Ok` when `GET http://host:port/ping` answers 200 within [`TIMEOUT`].
pub fn check(host: &str, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + TIMEOUT;
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?;
    let mut last = format!("{host}:{port} resolved to no address");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match try_addr(addr, host, port, deadline, left) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn try_addr(
    addr: std::net::SocketAddr,
    host: &str,
    port: u16,
    deadline: Instant,
    left: Duration,
) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr, left)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let remaining = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream
        .set_write_timeout(Some(remaining()))
        .and_then(|()| stream.set_read_timeout(Some(remaining())))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET /ping HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        let read = stream
            .read(&mut buf[n..])
            .map_err(|e| format!("no answer from {addr} within {TIMEOUT:?}: {e}"))?;
        if read == 0 {
            break;
        }
        n += read;
    }
    let status_line = String::from_utf8_lossy(&buf[..n]);
    if status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!(
            "{addr} answered `{}` instead of 200",
            status_line.lines().next().unwrap_or("").trim()
        ))
    }
}
