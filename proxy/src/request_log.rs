//! The per-request record and the finish phase: the record is filled in as the request moves
//! through the phases, and [`RequestLog`]'s one `finish` turns it into the request metrics and
//! one log line when the response ends, fails, or the client goes away.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, Request};

use crate::auth::Identity;
use crate::config::{Provider, Target};
use crate::headers::X_REQUEST_ID;
use crate::log;
use crate::metrics::{Metrics, PairSeries};
use crate::outcome::{Outcome, UpstreamFailure};
use crate::usage::UsageObserver;

/// What we know about a request so far.
pub struct RequestLog {
    metrics: Arc<Metrics>,
    /// `x-request-id`, from the client or generated.
    pub request_id: HeaderValue,
    /// Request method.
    pub method: Method,
    /// Request path, without the query, clipped to [`crate::echo::MAX_ECHO`] bytes.
    pub path: String,
    /// Who the client is, once authenticated.
    pub identity: Option<Identity>,
    /// The configured model, once routed.
    pub model: Option<Arc<str>>,
    /// The provider that answered (or was tried last): set by [`RequestLog::trying`] and
    /// [`RequestLog::answered_by`], with its metric series.
    pub provider: Option<Arc<str>>,
    series: Option<Arc<PairSeries>>,
    /// Status sent to the client; 0 until the response headers exist.
    pub status: u16,
    /// When the request arrived.
    pub started: Instant,
    /// Summed time spent waiting for upstream response headers.
    pub upstream_wait: Duration,
    /// Time from arrival to the response headers going out, for relayed responses.
    pub headers_after: Option<Duration>,
    /// Request body size.
    pub bytes_in: u64,
    /// Response body bytes sent (including keepalive comments).
    pub bytes_out: u64,
    /// What the relayed body carried, seen by the usage observer.
    pub usage: UsageObserver,
    /// Whether the response is an SSE stream.
    pub streamed: bool,
    /// Upstream attempts made.
    pub attempts: u32,
    /// How the response ended.
    pub outcome: Outcome,
    /// An error message for the log (never contains a secret).
    pub error: Option<String>,
    /// Refused with 503 because `MAX_INFLIGHT_BODY_BYTES` was in use.
    pub budget_refused: bool,
    /// Upstream failures met on the way, counted in the metrics at the finish: the provider,
    /// the failure, and for a failed attempt whether fallback to the next target was allowed.
    pub failures: Vec<(Arc<str>, UpstreamFailure, Option<bool>)>,
    /// A limited client's admission: its concurrency slot, held until the finish, and
    /// where its tokens are counted.
    pub admission: Option<crate::limits::Admission>,
    /// Why a client's request was refused by policy, if it was.
    pub rejected: Option<crate::limits::Reason>,
    counted_in_flight: bool,
}

impl RequestLog {
    /// Starts the record for `req`.
    #[must_use]
    pub fn start<B>(metrics: &Arc<Metrics>, req: &Request<B>) -> Self {
        Self::new(
            metrics.clone(),
            request_id(req.headers()),
            req.method().clone(),
            req.uri().path(),
        )
    }

    /// Starts the record for a request.
    #[must_use]
    pub fn new(metrics: Arc<Metrics>, request_id: HeaderValue, method: Method, path: &str) -> Self {
        Self {
            metrics,
            request_id,
            method,
            path: crate::echo::clip(path).into_owned(),
            identity: None,
            model: None,
            provider: None,
            series: None,
            status: 0,
            started: Instant::now(),
            upstream_wait: Duration::ZERO,
            headers_after: None,
            bytes_in: 0,
            bytes_out: 0,
            usage: UsageObserver::default(),
            streamed: false,
            attempts: 0,
            outcome: Outcome::Complete,
            error: None,
            budget_refused: false,
            failures: Vec::new(),
            admission: None,
            rejected: None,
            counted_in_flight: false,
        }
    }

    /// Counts the request as in flight until it finishes.
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

    /// Notes that `model`'s `target` at `provider` is tried next.
    pub fn trying(&mut self, model: &Arc<str>, target: &Target, provider: &Provider) {
        self.provider = Some(provider.name.clone());
        self.series = Some(
            self.metrics
                .pair(Some(&target.metrics), model, Some(&provider.name)),
        );
    }

    /// Notes that `provider`'s answer is relayed: an earlier target's when every later one
    /// failed.
    pub fn answered_by(&mut self, provider: &Provider) {
        if self
            .provider
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &provider.name))
        {
            return;
        }
        self.provider = Some(provider.name.clone());
        self.series = self
            .model
            .as_ref()
            .map(|model| self.metrics.pair(None, model, Some(&provider.name)));
    }

    /// Notes an upstream failure for the metrics.
    pub fn upstream_failed(&mut self, provider: &Arc<str>, failure: UpstreamFailure) {
        self.failures.push((provider.clone(), failure, None));
    }

    /// Notes a failed attempt and whether falling back after it was allowed.
    pub fn attempt_failed(
        &mut self,
        provider: &Arc<str>,
        failure: UpstreamFailure,
        fallback: bool,
    ) {
        self.failures
            .push((provider.clone(), failure, Some(fallback)));
    }

    /// The finish phase: records the request's metrics and writes its log line. Runs once,
    /// from `Drop`, because a request can end on any exit — an error response, the relayed
    /// body ending, or the request future dropped when the client hangs up before the
    /// response (logged as status 499, `client_closed`, like nginx) — and the in-flight
    /// gauges must never leak.
    fn finish(&mut self) {
        if self.status == 0 {
            self.status = 499;
            self.outcome = Outcome::ClientClosed;
        }
        let total = self.started.elapsed();
        self.usage.finish();
        if let Some(admission) = &self.admission {
            admission.add_tokens(self.usage.tokens.total());
        }
        self.record_metrics(total);
        // A client can cause these at will, without a token: a flood must not flush the
        // log history (docker keeps a few tens of MB).
        if matches!(self.status, 401 | 404) && !self.metrics.rejected_log.allow() {
            return;
        }
        self.line(total).emit();
    }

    /// The request's log line; `total` is the time from arrival to the finish.
    fn line(&self, total: Duration) -> log::Line {
        let level = if self.status >= 500 || self.outcome.is_failure() {
            log::Level::Warn
        } else {
            log::Level::Info
        };
        let t = self.usage.tokens;
        let reported = self.usage.reported;
        let usage = reported.then_some(if self.outcome == Outcome::Complete {
            "complete"
        } else {
            "incomplete"
        });
        log::Line::new(level, "request")
            .str("request_id", self.request_id.to_str().unwrap_or("-"))
            .label("method", self.method.as_str())
            .str("path", &self.path)
            .opt_str("model", self.model.as_deref())
            .opt_str("provider", self.provider.as_deref())
            .u64("status", u64::from(self.status))
            .u64("attempts", u64::from(self.attempts))
            .ms("upstream_ms", self.upstream_wait)
            .ms("overhead_ms", self.overhead())
            .ms("total_ms", total)
            .u64("bytes_in", self.bytes_in)
            .u64("bytes_out", self.bytes_out)
            .bool("streamed", self.streamed)
            .label("outcome", self.outcome.as_str())
            .opt_str("client", self.identity.as_ref().map(Identity::name))
            .opt_u64("input_tokens", reported.then_some(t.input))
            .opt_u64("output_tokens", reported.then_some(t.output))
            .opt_u64("cache_read_tokens", reported.then_some(t.cache_read))
            .opt_u64("cache_write_tokens", reported.then_some(t.cache_write))
            .opt_label("usage", usage)
            .opt_str("error", self.error.as_deref())
    }

    /// Time spent in the proxy itself before the response headers.
    fn overhead(&self) -> Duration {
        self.headers_after
            .map_or(Duration::ZERO, |h| h.saturating_sub(self.upstream_wait))
    }

    fn record_metrics(&self, total: Duration) {
        let m = &self.metrics;
        if self.counted_in_flight {
            m.in_flight_requests.fetch_sub(1, Ordering::Relaxed);
        }
        if self.streamed {
            m.in_flight_streams.fetch_sub(1, Ordering::Relaxed);
        }
        if self.budget_refused {
            m.body_budget_rejected.fetch_add(1, Ordering::Relaxed);
        }
        for (provider, failure, fallback) in &self.failures {
            m.record_upstream_error(provider, *failure);
            if let Some(taken) = fallback {
                m.record_fallback(*failure, *taken);
            }
        }
        let Some(model) = &self.model else {
            return;
        };
        // No target was tried (a refusal, an unusable model): an error path, looked up.
        let unrouted;
        let series = if let Some(series) = &self.series {
            series
        } else {
            unrouted = m.pair(None, model, None);
            &unrouted
        };
        if self.headers_after.is_some() {
            m.record_upstream(series, self.upstream_wait, self.overhead());
        }
        m.record_request(series, self.status, total);
        if let Some(identity) = &self.identity {
            m.record_client(identity, series, &self.usage.tokens, self.rejected);
        }
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The client's `x-request-id` when it is short and plain, else a fresh random one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    if let Some(v) = headers.get(X_REQUEST_ID) {
        let b = v.as_bytes();
        if !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
        {
            return v.clone();
        }
    }
    // RandomState is seeded from the OS per process; hashing a counter gives unique,
    // unguessable-enough ids without a random-number dependency.
    let keys = KEYS.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let (a, b) = (keys.hash_one(n), keys.hash_one(!n));
    // Hex by hand: `format!("{a:016x}{b:016x}")` cost 3.6k instructions per request.
    let mut hex = [0u8; 32];
    let digits = u128::from(a) << 64 | u128::from(b);
    for (i, out) in hex.iter_mut().enumerate() {
        let nibble = (digits >> (124 - 4 * i)) & 0xf;
        *out = b"0123456789abcdef"[usize::try_from(nibble).unwrap_or(0)];
    }
    HeaderValue::from_bytes(&hex).unwrap_or(HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use http::{HeaderMap, HeaderValue, Method};

    use super::{RequestLog, request_id};
    use crate::auth::Identity;
    use crate::log::render_for_test;
    use crate::metrics::Metrics;
    use crate::outcome::Outcome;
    use crate::usage::Tokens;

    /// `log`'s line as written in JSON and in text, its timestamp fixed by [`render_for_test`].
    fn rendered(log: RequestLog, total: Duration) -> [String; 2] {
        let lines = [true, false].map(|json| render_for_test(json, || log.line(total)));
        // Dropping it would write its line to stdout.
        std::mem::forget(log);
        lines
    }

    /// The bytes of a served request's line, every field present, pinned: dashboards and
    /// log pipelines parse them, so a faster writer must not change one.
    #[test]
    fn a_served_request_line_is_byte_for_byte_stable() {
        let mut log = RequestLog::new(
            Arc::new(Metrics::default()),
            HeaderValue::from_static("0123456789abcdef0123456789abcdef"),
            Method::POST,
            "/v1/chat/completions",
        );
        log.model = Some(Arc::from("fast"));
        log.provider = Some(Arc::from("oa"));
        log.identity = Some(Identity::SharedToken);
        log.status = 200;
        log.attempts = 1;
        log.upstream_wait = Duration::from_micros(1_234);
        log.headers_after = Some(Duration::from_micros(1_500));
        log.bytes_in = 17;
        log.bytes_out = 730;
        log.usage.reported = true;
        log.usage.tokens = Tokens {
            input: 12,
            output: 34,
            cache_read: 0,
            cache_write: 5,
        };
        let [json, text] = rendered(log, Duration::from_nanos(2_045_999));
        assert_eq!(
            json,
            concat!(
                r#"{"ts":"2026-01-02T03:04:05.678Z","level":"info","msg":"request","#,
                r#""request_id":"0123456789abcdef0123456789abcdef","method":"POST","#,
                r#""path":"/v1/chat/completions","model":"fast","provider":"oa","status":200,"#,
                r#""attempts":1,"upstream_ms":1.234,"overhead_ms":0.266,"total_ms":2.045,"#,
                r#""bytes_in":17,"bytes_out":730,"streamed":false,"outcome":"complete","#,
                r#""client":"operator","input_tokens":12,"output_tokens":34,"#,
                r#""cache_read_tokens":0,"cache_write_tokens":5,"usage":"complete"}"#,
                "\n"
            )
        );
        assert_eq!(
            text,
            concat!(
                "ts=2026-01-02T03:04:05.678Z level=info msg=request ",
                "request_id=0123456789abcdef0123456789abcdef method=POST ",
                "path=/v1/chat/completions model=fast provider=oa status=200 attempts=1 ",
                "upstream_ms=1.234 overhead_ms=0.266 total_ms=2.045 bytes_in=17 bytes_out=730 ",
                "streamed=false outcome=complete client=operator input_tokens=12 ",
                "output_tokens=34 cache_read_tokens=0 cache_write_tokens=5 usage=complete\n"
            )
        );
    }

    /// A failed request's line: optional fields left out, values that need quoting or
    /// escaping escaped, the largest numbers whole.
    #[test]
    fn a_failed_request_line_escapes_and_omits_fields() {
        let mut log = RequestLog::new(
            Arc::new(Metrics::default()),
            HeaderValue::from_static("req-abc.123"),
            Method::GET,
            "/a b=c/ünï",
        );
        log.model = Some(Arc::from("m\"odel"));
        log.status = 502;
        log.attempts = 2;
        log.streamed = true;
        log.outcome = Outcome::UpstreamError;
        log.bytes_out = u64::MAX;
        log.usage.reported = true;
        log.error = Some("upstream said \"no\"\n\tbye\u{1}\\".to_owned());
        let [json, text] = rendered(log, Duration::from_micros(12_345_678_901));
        assert_eq!(
            json,
            concat!(
                r#"{"ts":"2026-01-02T03:04:05.678Z","level":"warn","msg":"request","#,
                r#""request_id":"req-abc.123","method":"GET","path":"/a b=c/ünï","#,
                r#""model":"m\"odel","status":502,"attempts":2,"upstream_ms":0.000,"#,
                r#""overhead_ms":0.000,"total_ms":12345678.901,"bytes_in":0,"#,
                r#""bytes_out":18446744073709551615,"streamed":true,"outcome":"upstream_error","#,
                r#""input_tokens":0,"output_tokens":0,"cache_read_tokens":0,"#,
                r#""cache_write_tokens":0,"usage":"incomplete","#,
                r#""error":"upstream said \"no\"\n\tbye\u0001\\"}"#,
                "\n"
            )
        );
        assert_eq!(
            text,
            concat!(
                "ts=2026-01-02T03:04:05.678Z level=warn msg=request request_id=req-abc.123 ",
                r#"method=GET path="/a b=c/ünï" model="m\"odel" status=502 attempts=2 "#,
                "upstream_ms=0.000 overhead_ms=0.000 total_ms=12345678.901 bytes_in=0 ",
                "bytes_out=18446744073709551615 streamed=true outcome=upstream_error ",
                "input_tokens=0 output_tokens=0 cache_read_tokens=0 cache_write_tokens=0 ",
                r#"usage=incomplete error="upstream said \"no\"\n\tbye\u0001\\""#,
                "\n"
            )
        );
    }

    #[test]
    fn generated_request_ids_are_32_hex_digits_and_differ() {
        let headers = HeaderMap::new();
        let (a, b) = (request_id(&headers), request_id(&headers));
        for id in [&a, &b] {
            let text = id.to_str().unwrap();
            assert_eq!(text.len(), 32, "{text}");
            assert!(
                text.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{text}"
            );
        }
        assert_ne!(a, b);
        // Not all zeros: the digits come from the hashes.
        assert_ne!(
            a,
            HeaderValue::from_static("00000000000000000000000000000000")
        );
    }

    #[test]
    fn a_plain_client_request_id_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("req-abc.123"));
        assert_eq!(request_id(&headers), "req-abc.123");
    }
}
