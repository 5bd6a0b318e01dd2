//! Request bodies: reading the client's body under its limits (`MAX_BODY_BYTES`,
//! `BODY_READ_TIMEOUT`, the shared `MAX_INFLIGHT_BODY_BYTES` budget), and [`UpstreamBody`],
//! the body sent upstream — the client's bytes, sliced around a rewritten value, never
//! copied.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ProxyError;

/// The limits a client body is read under.
pub struct BodyLimits<'a> {
    /// `MAX_BODY_BYTES`.
    pub max_bytes: usize,
    /// `BODY_READ_TIMEOUT`, from the end of the request head.
    pub read_timeout: Duration,
    /// `MAX_INFLIGHT_BODY_BYTES`, shared by all requests.
    pub budget: &'a Arc<Semaphore>,
}

/// A client body and its share of the body budget, given back when this is dropped.
pub struct ClientBody {
    /// The bytes.
    pub bytes: Bytes,
    _budget: OwnedSemaphorePermit,
}

/// How long a client refused for the body budget is told to wait.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// Reads the client body: at most `MAX_BODY_BYTES`, within `BODY_READ_TIMEOUT`, and only
/// while the bytes fit in the shared budget. A declared length is reserved (and allocated)
/// up front, so a buffer is never copied as it grows; a chunked body reserves as it comes.
pub async fn read(
    headers: &HeaderMap,
    mut body: Incoming,
    limits: &BodyLimits<'_>,
) -> Result<ClientBody, ProxyError> {
    let limit = limits.max_bytes;
    let too_large = || ProxyError::PayloadTooLarge { limit };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let deadline = tokio::time::Instant::now() + limits.read_timeout;
    let reserve = usize::try_from(declared.unwrap_or(0)).unwrap_or(limit);
    let mut permit = match take(limits.budget, reserve) {
        Ok(permit) => permit,
        Err(busy) => return Err(discard(body, deadline, limits, busy).await),
    };
    let mut buf = BytesMut::with_capacity(reserve);
    while let Some(data) = next_data(&mut body, deadline, limits).await? {
        let len = buf.len() + data.len();
        if len > limit {
            return Err(too_large());
        }
        if len > permit.num_permits() {
            match take(limits.budget, len - permit.num_permits()) {
                Ok(more) => permit.merge(more),
                Err(busy) => {
                    drop((buf, permit));
                    return Err(discard(body, deadline, limits, busy).await);
                }
            }
        }
        buf.extend_from_slice(&data);
    }
    Ok(ClientBody {
        bytes: buf.freeze(),
        _budget: permit,
    })
}

/// The next data chunk of `body`; `None` at its end.
async fn next_data(
    body: &mut Incoming,
    deadline: tokio::time::Instant,
    limits: &BodyLimits<'_>,
) -> Result<Option<Bytes>, ProxyError> {
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .map_err(|_| ProxyError::BodyTimeout {
                secs: limits.read_timeout.as_secs(),
            })?;
        let Some(frame) = frame else {
            return Ok(None);
        };
        let frame = frame.map_err(|e| ProxyError::BodyRead(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            return Ok(Some(data));
        }
    }
}

/// Reads the rest of a refused body without keeping it, then gives back `refusal`: a
/// client still uploading would otherwise see a broken pipe instead of the 503.
async fn discard(
    mut body: Incoming,
    deadline: tokio::time::Instant,
    limits: &BodyLimits<'_>,
    refusal: ProxyError,
) -> ProxyError {
    let mut seen = 0usize;
    loop {
        match next_data(&mut body, deadline, limits).await {
            Ok(Some(data)) if seen + data.len() <= limits.max_bytes => seen += data.len(),
            Ok(None) => return refusal,
            Ok(Some(_)) => {
                return ProxyError::PayloadTooLarge {
                    limit: limits.max_bytes,
                };
            }
            Err(e) => return e,
        }
    }
}

/// `n` bytes of the budget, or 503 at once: waiting would hold the connection and its
/// buffers, which is what the budget is there to bound.
fn take(budget: &Arc<Semaphore>, n: usize) -> Result<OwnedSemaphorePermit, ProxyError> {
    let busy = || ProxyError::Busy {
        retry_after: BUSY_RETRY_AFTER_SECS,
    };
    let n = u32::try_from(n).map_err(|_| busy())?;
    budget.clone().try_acquire_many_owned(n).map_err(|_| busy())
}

/// A request body sent upstream: up to five slices of shared buffers (the client's bytes
/// around at most two spliced values), sent in order. Cloning it (for the next fallback
/// target) copies no body bytes.
#[derive(Clone, Debug, Default)]
pub struct UpstreamBody {
    chunks: [Bytes; 5],
    next: usize,
}

impl UpstreamBody {
    /// The body made of `chunks`, in order.
    #[must_use]
    pub fn new(chunks: [Bytes; 3]) -> Self {
        let [a, b, c] = chunks;
        Self::spliced([a, b, c, Bytes::new(), Bytes::new()])
    }

    /// The body made of five `chunks`, in order.
    #[must_use]
    pub fn spliced(chunks: [Bytes; 5]) -> Self {
        Self { chunks, next: 0 }
    }

    /// The body as one buffer (copies when there are several chunks): for tests and
    /// transforms that must see it whole.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        let live = &self.chunks[self.next.min(self.chunks.len())..];
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
        self.chunks[self.next.min(self.chunks.len())..]
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
