//! An upstream that answers every request with SSE headers and one event, then keeps the
//! stream open until stopped: what 1,000 concurrent long generations look like to the proxy.
//! One thread serves every connection because each request is read once and never again.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

const EVENT: &str =
    "data: {\"id\":\"chatcmpl-hold\",\"object\":\"chat.completion.chunk\",\"choices\":[]}\n\n";

fn first_response() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{EVENT}\r\n",
        EVENT.len()
    )
    .into_bytes()
}

pub struct HoldMock {
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// Streams answered since start, so a test can check every one reached the upstream.
    pub held: Arc<AtomicUsize>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl HoldMock {
    pub fn start() -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding the hold-open mock upstream")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (stop2, held2, open2) = (stop.clone(), held.clone(), open.clone());
        let thread = std::thread::spawn(move || serve(&listener, &stop2, &held2, &open2));
        Ok(Self {
            port,
            stop,
            held,
            open,
            thread: Some(thread),
        })
    }

    /// Closes every held stream (the proxy has usually cancelled them already).
    pub fn release(&self) {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

impl Drop for HoldMock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        drop(TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)));
        if let Some(t) = self.thread.take() {
            drop(t.join());
        }
    }
}

fn serve(
    listener: &TcpListener,
    stop: &AtomicBool,
    held: &AtomicUsize,
    open: &Mutex<Vec<TcpStream>>,
) {
    let response = first_response();
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut conn) = conn else { continue };
        if read_request(&mut conn).is_ok() && conn.write_all(&response).is_ok() {
            open.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(conn);
            held.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Reads one request: the header, then a `Content-Length` or chunked body.
fn read_request(conn: &mut TcpStream) -> Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body = &buf[end..];
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let done = match length {
                Some(n) => body.len() >= n,
                None if head.contains("transfer-encoding: chunked") => body.ends_with(b"0\r\n\r\n"),
                None => true,
            };
            if done {
                return Ok(());
            }
        }
        let n = conn.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "upstream request ended early");
        buf.extend_from_slice(&chunk[..n]);
    }
}
