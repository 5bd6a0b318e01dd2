//! Response bodies: small fixed ones, and the relay of an upstream body to the client frame
//! by frame — no buffering — with `: keepalive` comments while an SSE stream is silent, an
//! idle timeout, and the request log written when the body ends or the client goes away
//! (dropping the relay drops the upstream body, which cancels the upstream request).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::request_log::RequestLog;

/// The error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The SSE comment sent while an upstream stream is silent.
pub const KEEPALIVE: &[u8] = b": keepalive\n\n";

/// Every response the proxy sends.
pub enum ResponseBody {
    /// A body known in full.
    Full(Option<Bytes>),
    /// An upstream body being relayed.
    Relay(Box<RelayBody>),
}

impl ResponseBody {
    /// A fixed body.
    #[must_use]
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Some(bytes.into()))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Relay(relay) => Pin::new(relay.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(bytes) => bytes.is_none(),
            Self::Relay(relay) => relay.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Relay(relay) => relay.inner.size_hint(),
        }
    }
}

/// Relays an upstream body.
pub struct RelayBody {
    inner: Incoming,
    sse: bool,
    keepalive: Duration,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    last_in: Instant,
    last_out: Instant,
    /// Last bytes sent, to know whether we are between two SSE events.
    tail: [u8; 4],
    done: bool,
    log: Option<RequestLog>,
}

impl RelayBody {
    /// Wraps `inner`. `keepalive` of zero disables keepalive comments.
    #[must_use]
    pub fn new(
        inner: Incoming,
        sse: bool,
        keepalive: Duration,
        idle: Duration,
        log: RequestLog,
    ) -> Self {
        let now = Instant::now();
        let mut body = Self {
            inner,
            sse,
            keepalive,
            idle,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            last_in: now,
            last_out: now,
            tail: *b"\n\n\n\n",
            done: false,
            log: Some(log),
        };
        let next = body.next_deadline();
        body.timer.as_mut().reset(next);
        body
    }

    /// Inserting a comment inside an event would corrupt it, so keepalives go only after a
    /// blank line (or before anything was sent).
    fn at_event_boundary(&self) -> bool {
        self.tail.ends_with(b"\n\n") || self.tail.ends_with(b"\r\r") || self.tail == *b"\r\n\r\n"
    }

    fn keepalive_enabled(&self) -> bool {
        self.sse && !self.keepalive.is_zero()
    }

    fn next_deadline(&self) -> Instant {
        let idle = self.last_in + self.idle;
        if self.keepalive_enabled() && self.at_event_boundary() {
            idle.min(self.last_out + self.keepalive)
        } else {
            idle
        }
    }

    fn note_data(&mut self, data: &Bytes) {
        if data.is_empty() {
            return;
        }
        // Instant::now per chunk instead of resetting the timer per chunk: the timer is only
        // moved when it fires, which keeps the per-chunk cost to a clock read.
        let now = Instant::now();
        self.last_in = now;
        self.last_out = now;
        if let Some(log) = &mut self.log {
            log.bytes_out += data.len() as u64;
        }
        if data.len() >= 4 {
            self.tail.copy_from_slice(&data[data.len() - 4..]);
        } else {
            let n = data.len();
            self.tail.copy_within(n.., 0);
            self.tail[4 - n..].copy_from_slice(data);
        }
    }

    fn end(&mut self, outcome: &'static str, error: Option<String>) {
        self.done = true;
        if let Some(log) = &mut self.log {
            log.outcome = outcome;
            if error.is_some() {
                log.error = error;
            }
        }
    }

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.note_data(data);
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(log) = &this.log
                    && let Some(p) = &log.provider
                {
                    log.metrics().record_upstream_error(p, "stream");
                }
                this.end("upstream_error", Some(format!("upstream body: {e}")));
                return Poll::Ready(Some(Err(e.into())));
            }
            Poll::Ready(None) => {
                this.end("complete", None);
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        while this.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if now.duration_since(this.last_in) >= this.idle {
                let idle = this.idle;
                if let Some(log) = &this.log
                    && let Some(p) = &log.provider
                {
                    log.metrics().record_upstream_error(p, "idle_timeout");
                }
                this.end(
                    "idle_timeout",
                    Some(format!("upstream sent nothing for {idle:?} (idle_timeout)")),
                );
                return Poll::Ready(Some(Err(
                    format!("upstream sent nothing for {idle:?}").into()
                )));
            }
            if this.keepalive_enabled()
                && this.at_event_boundary()
                && now.duration_since(this.last_out) >= this.keepalive
            {
                this.last_out = now;
                if let Some(log) = &mut this.log {
                    log.bytes_out += KEEPALIVE.len() as u64;
                }
                let next = this.next_deadline();
                this.timer.as_mut().reset(next);
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEPALIVE)))));
            }
            let next = this.next_deadline();
            this.timer.as_mut().reset(next);
        }
        Poll::Pending
    }
}

impl Drop for RelayBody {
    fn drop(&mut self) {
        if !self.done {
            // Dropped before the end: the client disconnected (or shutdown cut it). The
            // upstream body is dropped with us, which aborts the upstream request.
            self.end("client_closed", None);
        }
        if let Some(log) = self.log.take() {
            log.finish();
        }
    }
}
