//! The relay phase: turns the upstream response into the client's — hop-by-hop headers
//! removed, timing and request-id headers added — and relays its body frame by frame with no
//! buffering, with `: keepalive` comments while an SSE stream is silent and an idle timeout.
//! Dropping the relay (the client went away) drops the upstream body, which cancels the
//! upstream request; the request record goes with it and finishes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::body::{BoxError, ResponseBody};
use crate::forward::Forwarded;
use crate::headers::{
    APPLICATION_JSON, HOP_BY_HOP, NO, PROXY_CONNECTION, SERVER_TIMING, UPSTREAM_PRIVATE,
    X_ACCEL_BUFFERING, X_AI_PROXY_DROPPED, X_REQUEST_ID,
};
use crate::outcome::{Outcome, UpstreamFailure};
use crate::request_log::RequestLog;
use crate::transform::Transform;
use crate::translate::{self, Direction, ResponseTranslator};

/// The SSE comment sent while an upstream stream is silent, and the `ping` event sent
/// instead on a translated stream to an Anthropic client.
pub use crate::translate::sse::{KEEPALIVE, PING};

/// Turns the upstream response into the client response; the body is relayed as it comes.
#[must_use]
pub fn relay(forwarded: Forwarded, mut log: RequestLog) -> Response<ResponseBody> {
    let Forwarded {
        response,
        provider,
        transform,
        dropped,
        failed,
    } = forwarded;
    let (mut parts, body) = response.into_parts();
    strip_response_headers(&mut parts.headers);
    parts.version = Version::default();
    let sse = parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let translator = match transform {
        Transform::Identity => None,
        Transform::Translate {
            direction,
            include_usage,
        } => {
            let status = parts.status.as_u16();
            let t = ResponseTranslator::new(direction, status, sse, include_usage);
            if let Ok(s) = StatusCode::from_u16(translate::client_status(direction, status)) {
                parts.status = s;
            }
            // The translated body has another length, and a JSON body (an error page
            // included) is rewritten as JSON in the client's shape.
            parts.headers.remove(CONTENT_LENGTH);
            if t.is_json() {
                parts.headers.insert(CONTENT_TYPE, APPLICATION_JSON);
            }
            if let Some(dropped) = dropped {
                parts.headers.insert(X_AI_PROXY_DROPPED, dropped);
            }
            Some(Box::new(t))
        }
    };
    let anthropic_client = matches!(
        transform,
        Transform::Translate {
            direction: Direction::AnthropicToOpenai,
            ..
        }
    );
    let headers_after = log.started.elapsed();
    let overhead = headers_after.saturating_sub(log.upstream_wait);
    parts
        .headers
        .insert(SERVER_TIMING, server_timing(overhead, log.upstream_wait));
    parts.headers.insert(X_REQUEST_ID, log.request_id.clone());
    log.status = parts.status.as_u16();
    log.headers_after = Some(headers_after);
    log.answered_by(&provider);
    log.usage.start(sse);
    if log.usage.strips() {
        // The usage chunk is removed: the length changes.
        parts.headers.remove(CONTENT_LENGTH);
    }
    if sse {
        log.mark_streamed();
        // Proxies such as nginx buffer unless told not to.
        parts.headers.insert(X_ACCEL_BUFFERING, NO);
    }
    // Every target failed; this is the last one's answer, relayed.
    let relayed_failure = failed.is_some();
    if failed.is_some() {
        log.error = failed;
    }
    // Keepalive bytes would break a declared length, so only length-less streams get them.
    let keepalive_ok = sse && !parts.headers.contains_key(CONTENT_LENGTH);
    let mut relay = RelayBody::new(
        body,
        keepalive_ok,
        provider.timeouts.keepalive,
        provider.timeouts.idle,
        log,
    );
    relay.translator = translator;
    if relayed_failure {
        relay.completes_as = Outcome::UpstreamRefused;
    }
    if anthropic_client {
        relay.keepalive_bytes = Bytes::from_static(PING);
    }
    Response::from_parts(parts, ResponseBody::relay(relay))
}

/// Removes hop-by-hop headers — the fixed list and any the upstream names in `Connection` or
/// `Proxy-Connection` — and the upstream account's private headers.
pub fn strip_response_headers(headers: &mut HeaderMap) {
    // One pass over the few names present instead of a lookup (name parse and hash) for each
    // of the 15 listed: ~2k fewer instructions per response, and nothing is allocated when
    // no such header is there.
    let fixed = |name: &str| {
        HOP_BY_HOP
            .iter()
            .chain(&UPSTREAM_PRIVATE)
            .any(|f| f.eq_ignore_ascii_case(name))
    };
    let tokens = || {
        headers
            .get_all(CONNECTION)
            .into_iter()
            .chain(headers.get_all(PROXY_CONNECTION))
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
    };
    // `Connection: keep-alive` names nothing beyond the fixed list: each header is compared
    // with the listed names only when one is.
    let extra = tokens().any(|t| !fixed(t));
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            fixed(name) || (extra && tokens().any(|t| t.eq_ignore_ascii_case(name)))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

fn server_timing(overhead: Duration, upstream: Duration) -> HeaderValue {
    // By hand: `format!` with two `{:.3}` floats cost ~2.2k instructions per request.
    let mut value = Vec::with_capacity(112);
    value.extend_from_slice(b"proxy;dur=");
    push_ms(&mut value, overhead);
    value.extend_from_slice(b";desc=\"ai-proxy overhead\", upstream;dur=");
    push_ms(&mut value, upstream);
    value.extend_from_slice(b";desc=\"upstream time to headers\"");
    HeaderValue::from_maybe_shared(Bytes::from(value)).unwrap_or(HeaderValue::from_static("proxy"))
}

/// Appends `d` in milliseconds with three decimals (`12.345`), rounded to the microsecond.
fn push_ms(out: &mut Vec<u8>, d: Duration) {
    let micros = d
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from((d.subsec_nanos() + 500) / 1000));
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut ms = micros / 1000;
    loop {
        start -= 1;
        digits[start] = digit(ms);
        ms /= 10;
        if ms == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
    let frac = micros % 1000;
    out.extend_from_slice(&[b'.', digit(frac / 100), digit(frac / 10), digit(frac)]);
}

/// The last decimal digit of `n`, as ASCII.
fn digit(n: u64) -> u8 {
    b'0' + u8::try_from(n % 10).unwrap_or(0)
}

/// Relays an upstream body.
pub struct RelayBody {
    inner: Incoming,
    sse: bool,
    keepalive: Duration,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    /// Whether `timer` is set to the first deadline and registered with the driver: only once
    /// the upstream makes the body wait. A stream whose first events are already in hand is
    /// then sent without touching the timer wheel first (a reset registers at once).
    armed: bool,
    last_in: Instant,
    last_out: Instant,
    /// Last bytes sent, to know whether we are between two SSE events.
    tail: [u8; 4],
    done: bool,
    log: RequestLog,
    /// The response translation, when the target speaks the other API.
    pub translator: Option<Box<ResponseTranslator>>,
    /// What a keepalive sends.
    pub keepalive_bytes: Bytes,
    /// The outcome when the body ends in full.
    pub completes_as: Outcome,
}

impl RelayBody {
    /// Wraps `inner`. `keepalive` of zero disables keepalive comments.
    #[must_use]
    pub fn new(
        inner: Incoming,
        sse: bool,
        keepalive: Duration,
        idle: Duration,
        mut log: RequestLog,
    ) -> Self {
        // Until the body ends, a drop means the client went away (or shutdown cut it).
        log.outcome = Outcome::ClientClosed;
        let now = Instant::now();
        Self {
            inner,
            sse,
            keepalive,
            idle,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            armed: false,
            last_in: now,
            last_out: now,
            tail: *b"\n\n\n\n",
            done: false,
            log,
            translator: None,
            keepalive_bytes: Bytes::from_static(KEEPALIVE),
            completes_as: Outcome::Complete,
        }
    }

    /// Whether the body has ended.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The upstream body's size hint.
    #[must_use]
    pub fn size_hint(&self) -> SizeHint {
        if self.log.usage.strips() || self.translator.is_some() {
            return SizeHint::default();
        }
        self.inner.size_hint()
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
        self.log.bytes_out += data.len() as u64;
        if data.len() >= 4 {
            self.tail.copy_from_slice(&data[data.len() - 4..]);
        } else {
            let n = data.len();
            self.tail.copy_within(n.., 0);
            self.tail[4 - n..].copy_from_slice(data);
        }
    }

    /// Ends the body with `outcome`, noting an upstream failure if there was one.
    fn end(&mut self, outcome: Outcome, failure: Option<(UpstreamFailure, String)>) {
        self.done = true;
        self.log.outcome = outcome;
        if let Some((failure, message)) = failure {
            if let Some(p) = self.log.provider.clone() {
                self.log.upstream_failed(&p, failure);
            }
            self.log.error = Some(message);
        }
    }

    /// The next frame to send: upstream data, a keepalive comment, or the end.
    pub fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    };
                    // The usage observer reads each chunk and may hold back or remove bytes
                    // (the usage chunk the proxy asked for): relay what it returns.
                    let mut data = this.log.usage.relay(data);
                    // Usage is read above in the upstream's format; the client gets it
                    // translated.
                    if let Some(t) = &mut this.translator {
                        data = t.feed(&data);
                    }
                    // A body of known length is over with its last byte: hyper may not
                    // poll again, so it ends now.
                    let ended = this.inner.is_end_stream();
                    if ended {
                        let rest = this.log.usage.flush();
                        let rest = match &mut this.translator {
                            Some(t) => Bytes::from([t.feed(&rest), t.finish()].concat()),
                            None => rest,
                        };
                        if !rest.is_empty() {
                            data = Bytes::from([data, rest].concat());
                        }
                        this.end(this.completes_as, None);
                    }
                    if data.is_empty() {
                        if ended {
                            return Poll::Ready(None);
                        }
                        this.last_in = Instant::now();
                        continue;
                    }
                    this.note_data(&data);
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(e))) => {
                    let message = format!("upstream body: {e}");
                    let told = this.translator.as_mut().map(|t| t.fail(&message));
                    this.end(
                        Outcome::UpstreamError,
                        Some((UpstreamFailure::Stream, message)),
                    );
                    // A translated stream tells its client in the client's error form.
                    if let Some(told) = told.filter(|b| !b.is_empty()) {
                        this.log.bytes_out += told.len() as u64;
                        return Poll::Ready(Some(Ok(Frame::data(told))));
                    }
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(None) => {
                    let rest = this.log.usage.flush();
                    let rest = match &mut this.translator {
                        Some(t) => Bytes::from([t.feed(&rest), t.finish()].concat()),
                        None => rest,
                    };
                    if !rest.is_empty() {
                        this.note_data(&rest);
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                    this.end(this.completes_as, None);
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        this.poll_timer(cx)
    }

    /// The idle timeout and the keepalive comments, when the upstream is silent.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if !self.armed {
            self.armed = true;
            let next = self.next_deadline();
            self.timer.as_mut().reset(next);
        }
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if now.duration_since(self.last_in) >= self.idle {
                let idle = self.idle;
                let message = format!("upstream sent nothing for {idle:?} (idle_timeout)");
                let told = self.translator.as_mut().map(|t| t.fail(&message));
                self.end(
                    Outcome::IdleTimeout,
                    Some((UpstreamFailure::IdleTimeout, message)),
                );
                // A translated stream tells its client in the client's error form.
                if let Some(told) = told.filter(|b| !b.is_empty()) {
                    self.log.bytes_out += told.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(told))));
                }
                return Poll::Ready(Some(Err(
                    format!("upstream sent nothing for {idle:?}").into()
                )));
            }
            if self.keepalive_enabled()
                && self.at_event_boundary()
                && now.duration_since(self.last_out) >= self.keepalive
            {
                self.last_out = now;
                self.log.bytes_out += self.keepalive_bytes.len() as u64;
                let next = self.next_deadline();
                self.timer.as_mut().reset(next);
                return Poll::Ready(Some(Ok(Frame::data(self.keepalive_bytes.clone()))));
            }
            let next = self.next_deadline();
            self.timer.as_mut().reset(next);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::server_timing;

    /// The header as `format!` wrote it before it was written by hand.
    fn formatted(overhead: Duration, upstream: Duration) -> String {
        format!(
            "proxy;dur={:.3};desc=\"ai-proxy overhead\", upstream;dur={:.3};desc=\"upstream time to headers\"",
            overhead.as_secs_f64() * 1000.0,
            upstream.as_secs_f64() * 1000.0
        )
    }

    #[test]
    fn server_timing_matches_the_float_formatting() {
        // Whole microseconds, and nanoseconds away from a half microsecond (where the float
        // rounding of `{:.3}` and integer rounding may pick different neighbours).
        let mut nanos: Vec<u64> = (0..3000).map(|us| us * 1000).collect();
        nanos.extend((0..5000u64).map(|i| i * 7919 % 1_000_000_000));
        nanos.extend([
            999_999_499,
            1_000_000_000,
            59_999_999_001,
            3_600_000_123_456,
            86_400_000_000_000,
        ]);
        let near_half = |n: u64| (n % 1000).abs_diff(500) < 2;
        for (a, b) in nanos.iter().zip(nanos.iter().rev()) {
            if near_half(*a) || near_half(*b) {
                continue;
            }
            let overhead = Duration::from_nanos(*a);
            let upstream = Duration::from_nanos(*b);
            assert_eq!(
                server_timing(overhead, upstream).to_str().unwrap(),
                formatted(overhead, upstream),
                "{overhead:?} {upstream:?}"
            );
        }
    }
}
