//! The per-request record: filled in as the request moves through authenticate → route →
//! forward → relay, and turned into one log line plus the request metrics when the response
//! ends (or the client goes away).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method};

use crate::log;
use crate::metrics::Metrics;

/// What we know about a request so far.
pub struct RequestLog {
    metrics: Arc<Metrics>,
    /// `x-request-id`, from the client or generated.
    pub request_id: HeaderValue,
    /// Request method.
    pub method: Method,
    /// Request path, without the query.
    pub path: String,
    /// The configured model, once routed.
    pub model: Option<Arc<str>>,
    /// The provider that answered (or was tried last).
    pub provider: Option<Arc<str>>,
    /// Status sent to the client.
    pub status: u16,
    /// When the request arrived.
    pub started: Instant,
    /// Summed time spent waiting for upstream response headers.
    pub upstream_wait: Duration,
    /// Time from arrival to the response headers going out.
    pub headers_after: Option<Duration>,
    /// Request body size.
    pub bytes_in: u64,
    /// Response body bytes sent (including keepalive comments).
    pub bytes_out: u64,
    /// Whether the response is an SSE stream.
    pub streamed: bool,
    /// Upstream attempts made.
    pub attempts: u32,
    /// How the response ended: `complete`, `client_closed`, `upstream_error`, `idle_timeout`.
    pub outcome: &'static str,
    /// An error message for the log (never contains a secret).
    pub error: Option<String>,
    counted_in_flight: bool,
}

impl RequestLog {
    /// Starts the record for a request.
    #[must_use]
    pub fn new(metrics: Arc<Metrics>, request_id: HeaderValue, method: Method, path: &str) -> Self {
        Self {
            metrics,
            request_id,
            method,
            path: path.to_owned(),
            model: None,
            provider: None,
            status: 0,
            started: Instant::now(),
            upstream_wait: Duration::ZERO,
            headers_after: None,
            bytes_in: 0,
            bytes_out: 0,
            streamed: false,
            attempts: 0,
            outcome: "complete",
            error: None,
            counted_in_flight: false,
        }
    }

    /// Counts the request as in flight until [`RequestLog::finish`].
    pub fn mark_in_flight(&mut self) {
        self.metrics
            .in_flight_requests
            .fetch_add(1, Ordering::Relaxed);
        self.counted_in_flight = true;
    }

    /// Marks the response as a stream, counted in `ai_proxy_in_flight_streams`.
    pub fn mark_streamed(&mut self) {
        self.streamed = true;
        self.metrics
            .in_flight_streams
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics this record reports to.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Writes the log line and the request metrics.
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for RequestLog {
    /// Runs on every path, including a request future dropped because the client hung up
    /// before the response (logged as status 499, `client_closed`, like nginx does), so the
    /// in-flight gauges never leak.
    fn drop(&mut self) {
        if self.status == 0 {
            self.status = 499;
            self.outcome = "client_closed";
        }
        let total = self.started.elapsed();
        if self.counted_in_flight {
            self.metrics
                .in_flight_requests
                .fetch_sub(1, Ordering::Relaxed);
        }
        if self.streamed {
            self.metrics
                .in_flight_streams
                .fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(model) = &self.model {
            let provider = self.provider.clone().unwrap_or_else(|| Arc::from(""));
            self.metrics
                .record_request(model, &provider, self.status, total);
        }
        let level = if self.status >= 500
            || self.outcome != "complete" && self.outcome != "client_closed"
        {
            "warn"
        } else {
            "info"
        };
        log::Line::new(level, "request")
            .str("request_id", self.request_id.to_str().unwrap_or("-"))
            .str("method", self.method.as_str())
            .str("path", &self.path)
            .opt_str("model", self.model.as_deref())
            .opt_str("provider", self.provider.as_deref())
            .u64("status", u64::from(self.status))
            .u64("attempts", u64::from(self.attempts))
            .ms("upstream_ms", self.upstream_wait)
            .ms(
                "overhead_ms",
                self.headers_after
                    .map_or(Duration::ZERO, |h| h.saturating_sub(self.upstream_wait)),
            )
            .ms("total_ms", total)
            .u64("bytes_in", self.bytes_in)
            .u64("bytes_out", self.bytes_out)
            .bool("streamed", self.streamed)
            .str("outcome", self.outcome)
            .opt_str("error", self.error.as_deref())
            .emit();
    }
}
