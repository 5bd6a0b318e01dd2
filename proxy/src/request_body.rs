//! Request bodies: reading the client's body under `MAX_BODY_BYTES`, and [`UpstreamBody`],
//! the body sent upstream — the client's bytes, sliced around a rewritten value, never
//! copied.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::error::ProxyError;

/// Reads the client body, enforcing `MAX_BODY_BYTES`.
pub async fn read(headers: &HeaderMap, body: Incoming, limit: usize) -> Result<Bytes, ProxyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ProxyError::PayloadTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ProxyError::PayloadTooLarge { limit })
        }
        Err(e) => Err(ProxyError::BodyRead(e.to_string())),
    }
}

/// A request body sent upstream: up to three slices of shared buffers, sent in order.
/// Cloning it (for the next fallback target) copies no body bytes.
#[derive(Clone, Debug, Default)]
pub struct UpstreamBody {
    chunks: [Bytes; 3],
    next: usize,
}

impl UpstreamBody {
    /// The body made of `chunks`, in order.
    #[must_use]
    pub fn new(chunks: [Bytes; 3]) -> Self {
        Self { chunks, next: 0 }
    }

    /// The body as one buffer (copies when there are several chunks): for tests and
    /// transforms that must see it whole.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        let live = &self.chunks[self.next.min(3)..];
        match live.iter().filter(|c| !c.is_empty()).count() {
            0 => Bytes::new(),
            1 => live
                .iter()
                .find(|c| !c.is_empty())
                .cloned()
                .unwrap_or_default(),
            _ => Bytes::from(live.concat()),
        }
    }

    fn remaining(&self) -> u64 {
        self.chunks[self.next.min(3)..]
            .iter()
            .map(|c| c.len() as u64)
            .sum()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        while self.next < self.chunks.len() {
            let i = self.next;
            self.next += 1;
            let chunk = std::mem::take(&mut self.chunks[i]);
            if !chunk.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining())
    }
}
