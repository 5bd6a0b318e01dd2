//! The listener: accepts connections under the connection limit, serves each (HTTP/1.1 and
//! HTTP/2, detected per connection) until its deadlines close it, and on shutdown stops
//! accepting and lets in-flight requests finish within the grace period. With TLS on, the
//! handshake runs inside the connection's slot and first-request deadline.

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::body::FinishAfterWrite;
use crate::connections::{Connections, Expiry, Slot};
use crate::log;
use crate::pipeline;
use crate::state::AppState;
use crate::tls;

/// Serves `listener` (over TLS with `tls`) until `shutdown` resolves, then drains for at most
/// `grace`.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    tls: Option<tls::Acceptor>,
    shutdown: impl Future<Output = &'static str>,
) {
    let limits = state.settings.connections;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.http2_keepalive_interval))
        .keep_alive_timeout(limits.http2_keepalive_timeout);
    let builder = Arc::new(builder);
    let connections = Connections::new(limits.max_connections, state.metrics.clone());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut accept_errors = AcceptErrors::default();

    let signal = loop {
        tokio::select! {
            signal = &mut shutdown => break signal,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Usually EMFILE: wait a little instead of spinning.
                        accept_errors.note(&e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // At the limit with every connection busy: dropping the socket closes it.
                let Some(slot) = connections.admit() else { continue };
                let _ = stream.set_nodelay(true);
                let task = (state.clone(), builder.clone(), graceful.watcher());
                match &tls {
                    None => {
                        tokio::spawn(serve_connection(task, stream, slot));
                    }
                    Some(tls) => {
                        tokio::spawn(serve_tls_connection(task, tls.clone(), stream, slot));
                    }
                }
            }
        }
    };
    drop(listener);
    drain(&state, signal, graceful).await;
}

/// What a connection's task needs from the listener.
type Task = (Arc<AppState>, Arc<auto::Builder<TokioExecutor>>, Watcher);

/// The TLS handshake, then the connection as in [`serve_connection`]. The handshake counts
/// against the first-request deadline, so a client that stalls it is closed like a silent one.
async fn serve_tls_connection(task: Task, tls: tls::Acceptor, stream: TcpStream, slot: Slot) {
    let limits = task.0.settings.connections;
    let metrics = task.0.metrics.clone();
    let handshake = tokio::select! {
        tls_stream = tls.accept(stream, &metrics) => tls_stream,
        expiry = slot.conn.expired(&limits) => {
            count_expiry(&slot, expiry);
            None
        }
    };
    if let Some(tls_stream) = handshake {
        serve_connection(task, tls_stream, slot).await;
    }
}

/// Serves one connection until it ends or a deadline closes it.
async fn serve_connection<I>(task: Task, io: I, slot: Slot)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (state, builder, watcher) = task;
    let limits = state.settings.connections;
    let conn = slot.conn.clone();
    let service = service_fn(move |req| {
        let guard = conn.begin();
        let state = state.clone();
        async move {
            let response = pipeline::handle(state, req).await?;
            // The guard lives as long as the body: the request is in flight until it is sent.
            let body = response.map(|body| {
                body.map_frame(move |frame| {
                    let _in_flight = &guard;
                    frame
                })
            });
            Ok::<_, std::convert::Infallible>(body)
        }
    });
    let served = std::pin::pin!(
        watcher.watch(
            builder
                .serve_connection(TokioIo::new(FirstRead::new(io)), service)
                .into_owned(),
        )
    );
    // The request's record finishes after its last bytes are written, not before.
    let served = FinishAfterWrite(served);
    tokio::select! {
        // The connection first: its first poll usually reads, forwards and answers a whole
        // request; the deadline's timer is registered after that, not before.
        biased;
        // Client-side errors (resets, bad requests) are the client's business.
        _ = served => {}
        expiry = slot.conn.expired(&limits) => count_expiry(&slot, expiry),
    }
    // The connection future is dropped by now, which closes the socket; dropping the slot
    // frees its place under the limit.
    drop(slot);
}

/// A connection whose first read takes what the client sent (up to [`FIRST_READ`] bytes) in
/// one system call. hyper-util's protocol detection reads just the 24 bytes of the HTTP/2
/// preface first, so a request head cost two `recvfrom` calls before hyper could parse it;
/// the rest of that first read is handed to the next read. Nothing is kept while the socket
/// has nothing to read, so a silent connection holds no buffer.
struct FirstRead<I> {
    io: I,
    /// Read on the first read, not yet asked for; `None` once handed over.
    rest: Option<Bytes>,
    first: bool,
}

/// The first read's size: a whole request head and a small body.
const FIRST_READ: usize = 16 * 1024;

impl<I> FirstRead<I> {
    fn new(io: I) -> Self {
        Self {
            io,
            rest: None,
            first: true,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstRead<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(rest) = &mut this.rest {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest.split_to(n));
            if rest.is_empty() {
                this.rest = None;
            }
            return Poll::Ready(Ok(()));
        }
        if !this.first || buf.remaining() >= FIRST_READ {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let mut first = [MaybeUninit::<u8>::uninit(); FIRST_READ];
        let mut read = ReadBuf::uninit(&mut first);
        ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
        this.first = false;
        let got = read.filled();
        let n = got.len().min(buf.remaining());
        buf.put_slice(&got[..n]);
        if got.len() > n {
            this.rest = Some(Bytes::copy_from_slice(&got[n..]));
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstRead<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

fn count_expiry(slot: &Slot, expiry: Expiry) {
    let m = slot.metrics();
    match expiry {
        Expiry::Header => m.connections_header_timeout.fetch_add(1, Ordering::Relaxed),
        Expiry::Idle => m.connections_idle_timeout.fetch_add(1, Ordering::Relaxed),
        Expiry::Evicted => 0,
    };
}

/// Accept failures (usually EMFILE), logged at most once a second.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<std::time::Instant>,
    since: u64,
}

impl AcceptErrors {
    fn note(&mut self, e: &std::io::Error) {
        self.since += 1;
        if self
            .last_logged
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            log::error("accept failed")
                .str("error", &e.to_string())
                .u64("failures", self.since)
                .emit();
            self.last_logged = Some(std::time::Instant::now());
            self.since = 0;
        }
    }
}

/// After the shutdown signal: waits for open connections to finish, at most the grace period.
async fn drain(state: &AppState, signal: &'static str, graceful: GracefulShutdown) {
    let grace = state.settings.shutdown_grace;
    log::info("shutting down")
        .str("signal", signal)
        .u64("grace_secs", grace.as_secs())
        .u64(
            "in_flight_requests",
            u64::try_from(state.metrics.in_flight_requests.load(Ordering::Relaxed)).unwrap_or(0),
        )
        .emit();
    tokio::select! {
        () = graceful.shutdown() => log::info("all connections closed").emit(),
        () = tokio::time::sleep(grace) => log::warn("grace period over; closing remaining connections").emit(),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::FirstRead;

    /// The protocol detection's 24-byte read, then smaller and larger reads: every byte the
    /// client sent arrives once and in order, in one system call for the first read.
    #[tokio::test]
    async fn the_first_read_hands_its_rest_to_the_next_reads_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let sent: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        client.write_all(&sent).await.unwrap();
        client.shutdown().await.unwrap();
        // Wait until all of it is queued, so the first read can take it whole.
        let mut peek = [0u8; 4096];
        while server.peek(&mut peek).await.unwrap() < sent.len() {
            tokio::task::yield_now().await;
        }
        let mut io = FirstRead::new(server);
        let mut got = Vec::new();
        for size in [24, 100, 4096] {
            let mut buf = vec![0u8; size];
            let n = io.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            if size == 24 {
                // One read took everything queued; the rest waits for hyper.
                assert_eq!(
                    io.rest.as_ref().map(bytes::Bytes::len),
                    Some(sent.len() - 24)
                );
            }
        }
        assert!(io.rest.is_none(), "the first read's rest was handed over");
        io.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, sent);
    }
}
