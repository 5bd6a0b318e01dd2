//! Response bodies: a small one known in full, or an upstream body being relayed; and the
//! deferral that finishes a relayed body (its request record and log line) only after the
//! connection has written the response's last bytes.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::relay::RelayBody;

/// The error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response the proxy sends.
pub enum ResponseBody {
    /// A body known in full.
    Full(Option<Bytes>),
    /// An upstream body being relayed (taken out only when dropped).
    Relay(Option<Box<RelayBody>>),
}

impl ResponseBody {
    /// A fixed body.
    #[must_use]
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Some(bytes.into()))
    }

    /// A relayed upstream body.
    #[must_use]
    pub fn relay(relay: RelayBody) -> Self {
        Self::Relay(Some(Box::new(relay)))
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Self::Relay(relay) = self
            && let Some(relay) = relay.take()
        {
            defer(relay);
        }
    }
}

thread_local! {
    /// Whether a connection's poll is running on this thread under [`FinishAfterWrite`].
    static DEFERRING: Cell<bool> = const { Cell::new(false) };
    /// Relayed bodies that ended during that poll, finished when it returns.
    #[allow(clippy::vec_box, reason = "the body is already boxed: moving the box is cheaper")]
    static DEFERRED: RefCell<Vec<Box<RelayBody>>> = const { RefCell::new(Vec::new()) };
}

/// hyper's HTTP/1 dispatcher drops a body as soon as it yields its last frame, before it
/// writes that frame: the request record would finish (the log line built, usage counted,
/// ~6k instructions) between the upstream's answer and the client's first byte. Under a
/// [`FinishAfterWrite`] poll the body is kept until the poll returns, after the write.
fn defer(relay: Box<RelayBody>) {
    if DEFERRING.get() {
        DEFERRED.with_borrow_mut(|d| d.push(relay));
    } else {
        drop(relay);
    }
}

/// Polls a client connection so that relayed bodies ending during a poll are finished after
/// it, once the connection has written (or failed to write) their last bytes. Bodies dropped
/// elsewhere (HTTP/2 streams run in their own tasks) finish at once.
pub struct FinishAfterWrite<F>(pub F);

impl<F: Future + Unpin> Future for FinishAfterWrite<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _scope = Scope(DEFERRING.replace(true));
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Ends a deferring poll, even one that panicked: restores the flag and, at the outermost
/// level, finishes the bodies that ended.
struct Scope(bool);

impl Drop for Scope {
    fn drop(&mut self) {
        DEFERRING.set(self.0);
        if !self.0 {
            while let Some(relay) = DEFERRED.with_borrow_mut(Vec::pop) {
                drop(relay);
            }
        }
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
            Self::Relay(Some(relay)) => Pin::new(relay.as_mut()).poll_frame(cx),
            Self::Relay(None) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(bytes) => bytes.is_none(),
            Self::Relay(relay) => relay.as_ref().is_none_or(|r| r.is_done()),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Full(None) | Self::Relay(None) => SizeHint::with_exact(0),
            Self::Relay(Some(relay)) => relay.size_hint(),
        }
    }
}
