//! Request handling: `/ping`, `/v1/models`, `/metrics`, and the proxied endpoints, each
//! request going through authenticate → route → forward → relay → log.

use std::convert::Infallible;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::auth::authenticate;
use crate::config::Model;
use crate::error::{Flavor, ProxyError};
use crate::model_field;
use crate::request_log::RequestLog;
use crate::state::AppState;
use crate::stream::{RelayBody, ResponseBody};
use crate::upstream::{self, Api, ClientRequest, Forwarded, Upstreams};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const PROMETHEUS_TEXT: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");

/// Headers that describe one hop, not the message: never relayed.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The hyper service: every request enters here.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    if req.uri().path() == "/ping" && matches!(*req.method(), Method::GET | Method::HEAD) {
        // No log line: the container healthcheck calls this every few seconds.
        return Ok(fixed(
            StatusCode::OK,
            TEXT_PLAIN,
            Bytes::from_static(b"pong"),
        ));
    }
    let request_id = request_id(req.headers());
    let mut log = RequestLog::new(
        state.metrics.clone(),
        request_id,
        req.method().clone(),
        req.uri().path(),
    );
    let api = (req.method() == Method::POST)
        .then(|| Api::from_path(req.uri().path()))
        .flatten();
    let response = if let Some(api) = api {
        proxy(&state, req, api, log).await
    } else {
        let response = local(&state, &req);
        log.status = response.status().as_u16();
        if log.status >= 400 {
            log.path = state.redact(&log.path);
        }
        log.bytes_out = http_body::Body::size_hint(response.body())
            .exact()
            .unwrap_or(0);
        let mut response = response;
        response
            .headers_mut()
            .insert(X_REQUEST_ID, log.request_id.clone());
        log.finish();
        response
    };
    Ok(response)
}

/// Endpoints answered by the proxy itself.
fn local(state: &AppState, req: &Request<Incoming>) -> Response<ResponseBody> {
    let token = state.settings.auth_token.expose().as_bytes();
    let flavor = Flavor::OpenAi;
    let rid = HeaderValue::from_static("-");
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/v1/models") => match authenticate(req.headers(), token) {
            Ok(()) => fixed(
                StatusCode::OK,
                APPLICATION_JSON,
                state.upstreams.load().models_json.clone(),
            ),
            Err(e) => e.to_response(flavor, &rid),
        },
        (&Method::GET, "/metrics") => match authenticate(req.headers(), token) {
            Ok(()) => fixed(
                StatusCode::OK,
                PROMETHEUS_TEXT,
                Bytes::from(state.metrics.render()),
            ),
            Err(e) => e.to_response(flavor, &rid),
        },
        (method, path) => ProxyError::NotFound {
            method: method.to_string(),
            path: path.to_owned(),
        }
        .to_response(flavor, &rid),
    }
}

fn fixed(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// A proxied request, start to finish.
async fn proxy(
    state: &AppState,
    req: Request<Incoming>,
    api: Api,
    mut log: RequestLog,
) -> Response<ResponseBody> {
    let flavor = match api.kind() {
        crate::config::Kind::Openai => Flavor::OpenAi,
        crate::config::Kind::Anthropic => Flavor::Anthropic,
    };
    log.mark_in_flight();
    let upstreams = state.upstreams.load_full();
    match forward_phase(state, &upstreams, req, api, &mut log).await {
        Ok(forwarded) => relay(forwarded, log),
        Err(e) => {
            log.status = e.status().as_u16();
            log.error = Some(state.redact(&e.to_string()));
            let response = e.to_response(flavor, &log.request_id);
            log.bytes_out = http_body::Body::size_hint(response.body())
                .exact()
                .unwrap_or(0);
            log.finish();
            response
        }
    }
}

/// authenticate → read body → route → forward.
async fn forward_phase(
    state: &AppState,
    upstreams: &Upstreams,
    req: Request<Incoming>,
    api: Api,
    log: &mut RequestLog,
) -> Result<Forwarded, ProxyError> {
    authenticate(req.headers(), state.settings.auth_token.expose().as_bytes())?;
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body, state.settings.max_body_bytes).await?;
    log.bytes_in = body.len() as u64;
    let field = model_field::parse(&body)?;
    let model = route(upstreams, &field.name)?;
    log.model = Some(model.name.clone());
    let client = ClientRequest {
        headers: &parts.headers,
        query: parts.uri.query(),
        body: &body,
        field: &field,
    };
    upstream::forward(upstreams, model, api, &client, log).await
}

/// Reads the client body, enforcing `MAX_BODY_BYTES`.
async fn read_body(headers: &HeaderMap, body: Incoming, limit: usize) -> Result<Bytes, ProxyError> {
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

/// Finds the configured model.
fn route<'a>(upstreams: &'a Upstreams, name: &str) -> Result<&'a Model, ProxyError> {
    upstreams
        .config
        .model(name)
        .ok_or_else(|| ProxyError::UnknownModel(name.to_owned()))
}

/// Turns the upstream response into the client response; the body is relayed as it comes.
fn relay(forwarded: Forwarded, mut log: RequestLog) -> Response<ResponseBody> {
    let Forwarded { response, provider } = forwarded;
    let (mut parts, body) = response.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    debug_assert!(
        !parts.headers.contains_key(CONNECTION) && !parts.headers.contains_key(TRANSFER_ENCODING)
    );
    parts.version = Version::default();
    let sse = parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let headers_after = log.started.elapsed();
    let overhead = headers_after.saturating_sub(log.upstream_wait);
    log.metrics()
        .record_upstream(&provider.name, log.upstream_wait, overhead);
    parts
        .headers
        .insert(SERVER_TIMING, server_timing(overhead, log.upstream_wait));
    parts.headers.insert(X_REQUEST_ID, log.request_id.clone());
    log.status = parts.status.as_u16();
    log.headers_after = Some(headers_after);
    log.provider = Some(provider.name.clone());
    if sse {
        log.mark_streamed();
        // Proxies such as nginx buffer unless told not to.
        parts
            .headers
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    // Keepalive bytes would break a declared length, so only length-less streams get them.
    let keepalive_ok = sse && !parts.headers.contains_key(CONTENT_LENGTH);
    let relay = RelayBody::new(
        body,
        keepalive_ok,
        provider.timeouts.keepalive,
        provider.timeouts.idle,
        log,
    );
    Response::from_parts(parts, ResponseBody::Relay(Box::new(relay)))
}

fn server_timing(overhead: Duration, upstream: Duration) -> HeaderValue {
    let value = format!(
        "proxy;dur={:.3};desc=\"ai-proxy overhead\", upstream;dur={:.3};desc=\"upstream time to headers\"",
        overhead.as_secs_f64() * 1000.0,
        upstream.as_secs_f64() * 1000.0
    );
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("proxy"))
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
    HeaderValue::from_str(&format!("{a:016x}{b:016x}")).unwrap_or(HeaderValue::from_static("0"))
}
