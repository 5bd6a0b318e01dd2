//! Per-client limits — `requests_per_minute` and `tokens_per_minute` over a fixed window
//! (`RATE_LIMIT_WINDOW`, one minute by default), and `max_concurrent` — kept in this process's
//! memory: with several replicas each enforces its own. Counters are kept by client name, so
//! a reload that changes a client's limits keeps its window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth::Identity;
use crate::config::Model;
use crate::config::clients::Client;
use crate::error::ProxyError;

/// Why a client's request was refused by policy; the `reason` label of
/// `ai_proxy_client_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The model is not in the client's `models`.
    ModelNotAllowed,
    /// `requests_per_minute` reached.
    RequestsPerMinute,
    /// `tokens_per_minute` reached.
    TokensPerMinute,
    /// `max_concurrent` requests in flight.
    MaxConcurrent,
}

impl Reason {
    /// The metric label (and the limit's name in `provider-config.yaml`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModelNotAllowed => "model_not_allowed",
            Self::RequestsPerMinute => "requests_per_minute",
            Self::TokensPerMinute => "tokens_per_minute",
            Self::MaxConcurrent => "max_concurrent",
        }
    }
}

/// One `x-ratelimit-*` trio.
#[derive(Debug, Clone, Copy)]
pub struct Trio {
    /// `x-ratelimit-limit-*`.
    pub limit: u64,
    /// `x-ratelimit-remaining-*`.
    pub remaining: u64,
    /// `x-ratelimit-reset-*`: time until the window starts over.
    pub reset: Duration,
}

/// A refused request: which limit, how long to wait, and the header values.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The client.
    pub client: Arc<str>,
    /// The limit reached.
    pub reason: Reason,
    /// Its configured value.
    pub limit: u64,
    /// Seconds to wait (`Retry-After`).
    pub retry_after: u64,
    /// The requests trio, when the client has `requests_per_minute`.
    pub requests: Option<Trio>,
    /// The tokens trio, when the client has `tokens_per_minute`.
    pub tokens: Option<Trio>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    requests: u64,
    tokens: u64,
}

#[derive(Debug)]
struct Counters {
    window: Mutex<Window>,
    in_flight: AtomicU32,
}

impl Counters {
    /// The current window, started over when it has passed.
    fn current(&self, length: Duration, now: Instant) -> std::sync::MutexGuard<'_, Window> {
        let mut w = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.duration_since(w.start) >= length {
            *w = Window {
                start: now,
                requests: 0,
                tokens: 0,
            };
        }
        w
    }
}

/// The counters of every client seen since start.
#[derive(Debug)]
pub struct Registry {
    window: Duration,
    counters: Mutex<HashMap<Arc<str>, Arc<Counters>>>,
}

/// An admitted request of a limited client: holds its `max_concurrent` slot until dropped
/// (when the request record finishes, after the last byte of a stream) and takes its tokens.
#[derive(Debug)]
pub struct Admission {
    counters: Arc<Counters>,
    window: Duration,
    holds_slot: bool,
}

impl Admission {
    /// Counts `tokens` against the client's `tokens_per_minute` window.
    pub fn add_tokens(&self, tokens: u64) {
        if tokens > 0 {
            let mut w = self.counters.current(self.window, Instant::now());
            w.tokens = w.tokens.saturating_add(tokens);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.holds_slot {
            self.counters.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Registry {
    /// Limits over windows of `window`.
    #[must_use]
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            counters: Mutex::default(),
        }
    }

    fn counters(&self, name: &Arc<str>) -> Arc<Counters> {
        let mut map = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(name.clone())
            .or_insert_with(|| {
                Arc::new(Counters {
                    window: Mutex::new(Window {
                        start: Instant::now(),
                        requests: 0,
                        tokens: 0,
                    }),
                    in_flight: AtomicU32::new(0),
                })
            })
            .clone()
    }

    /// Admits one request of `client`, or says which limit refuses it. A client without
    /// limits needs no bookkeeping: `Ok(None)`.
    pub fn admit(&self, client: &Client) -> Result<Option<Admission>, Box<Rejection>> {
        let (rpm, tpm, conc) = (
            client.requests_per_minute,
            client.tokens_per_minute,
            client.max_concurrent,
        );
        if rpm.is_none() && tpm.is_none() && conc.is_none() {
            return Ok(None);
        }
        let counters = self.counters(&client.name);
        let now = Instant::now();
        let mut w = counters.current(self.window, now);
        let reset = (w.start + self.window).saturating_duration_since(now);
        let trios = |w: &Window| {
            (
                rpm.map(|l| Trio {
                    limit: u64::from(l),
                    remaining: u64::from(l).saturating_sub(w.requests),
                    reset,
                }),
                tpm.map(|l| Trio {
                    limit: l,
                    remaining: l.saturating_sub(w.tokens),
                    reset,
                }),
            )
        };
        let refuse = |reason: Reason, limit: u64, retry: Duration, w: &Window| {
            let (requests, tokens) = trios(w);
            Box::new(Rejection {
                client: client.name.clone(),
                reason,
                limit,
                retry_after: ceil_secs(retry),
                requests,
                tokens,
            })
        };
        if let Some(l) = rpm
            && w.requests >= u64::from(l)
        {
            return Err(refuse(Reason::RequestsPerMinute, u64::from(l), reset, &w));
        }
        if let Some(l) = tpm
            && w.tokens >= l
        {
            return Err(refuse(Reason::TokensPerMinute, l, reset, &w));
        }
        if let Some(l) = conc {
            let before = counters.in_flight.fetch_add(1, Ordering::AcqRel);
            if before >= l {
                counters.in_flight.fetch_sub(1, Ordering::AcqRel);
                // A slot frees when some request ends: retry soon.
                return Err(refuse(
                    Reason::MaxConcurrent,
                    u64::from(l),
                    Duration::from_secs(1),
                    &w,
                ));
            }
        }
        w.requests += 1;
        drop(w);
        Ok(Some(Admission {
            counters,
            window: self.window,
            holds_slot: conc.is_some(),
        }))
    }
}

/// `Retry-After` and the `x-ratelimit-*` trios of a refused request.
pub fn insert_headers(headers: &mut http::HeaderMap, r: &Rejection) {
    use http::HeaderValue;
    headers.insert(http::header::RETRY_AFTER, HeaderValue::from(r.retry_after));
    let trios = [
        (r.requests, RATELIMIT_REQUESTS),
        (r.tokens, RATELIMIT_TOKENS),
    ];
    for (trio, [limit, remaining, reset]) in trios {
        if let Some(t) = trio {
            headers.insert(limit, HeaderValue::from(t.limit));
            headers.insert(remaining, HeaderValue::from(t.remaining));
            if let Ok(v) = HeaderValue::from_str(&format_reset(t.reset)) {
                headers.insert(reset, v);
            }
        }
    }
}

const RATELIMIT_REQUESTS: [http::HeaderName; 3] = [
    http::HeaderName::from_static("x-ratelimit-limit-requests"),
    http::HeaderName::from_static("x-ratelimit-remaining-requests"),
    http::HeaderName::from_static("x-ratelimit-reset-requests"),
];
const RATELIMIT_TOKENS: [http::HeaderName; 3] = [
    http::HeaderName::from_static("x-ratelimit-limit-tokens"),
    http::HeaderName::from_static("x-ratelimit-remaining-tokens"),
    http::HeaderName::from_static("x-ratelimit-reset-tokens"),
];

/// The policy step after routing: a client key may use `model` only when its `models` list
/// allows it, and only within its limits. The operator (`AUTH_TOKEN`) has no limits.
pub fn authorize(
    registry: &Registry,
    identity: &Identity,
    model: &Model,
) -> Result<Option<Admission>, ProxyError> {
    let Some(client) = identity.client() else {
        return Ok(None);
    };
    if !client.allows(&model.name) {
        return Err(ProxyError::ModelNotAllowed {
            client: client.name.to_string(),
            model: model.name.to_string(),
        });
    }
    registry.admit(client).map_err(ProxyError::RateLimited)
}

/// The policy reason behind a refusal, for the per-client rejection counter.
#[must_use]
pub fn reason_of(e: &ProxyError) -> Option<Reason> {
    match e {
        ProxyError::ModelNotAllowed { .. } => Some(Reason::ModelNotAllowed),
        ProxyError::RateLimited(r) => Some(r.reason),
        _ => None,
    }
}

/// Whole seconds, rounded up, at least 1.
fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

/// `x-ratelimit-reset-*` as OpenAI writes it: `850ms`, `12s`, `1m30s`.
#[must_use]
pub fn format_reset(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let s = ceil_secs(d);
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_format() {
        assert_eq!(format_reset(Duration::from_millis(850)), "850ms");
        assert_eq!(format_reset(Duration::from_millis(11_200)), "12s");
        assert_eq!(format_reset(Duration::from_secs(90)), "1m30s");
    }
}
