//! Header names and values the proxy sets or reads, defined once for every module.

use http::{HeaderName, HeaderValue};

/// The request id, echoed to the client and sent upstream.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Client parameters a translated request could not carry, comma-separated.
pub const X_AI_PROXY_DROPPED: HeaderName = HeaderName::from_static("x-ai-proxy-dropped");
/// Anthropic SDKs send the client token here.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// Proxy overhead and upstream wait, for the client's own timing.
pub const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
/// Tells nginx-like proxies in front not to buffer a stream.
pub const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
/// The non-standard `Proxy-Connection`, treated like `Connection`.
pub const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// Anthropic's API version header.
pub const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
/// Anthropic's beta-features header (may repeat).
pub const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
/// OpenAI's beta-features header.
pub const OPENAI_BETA: HeaderName = HeaderName::from_static("openai-beta");

/// `application/json`.
pub const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
/// Plain text, for `/ping`.
pub const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
/// The Prometheus text exposition format.
pub const PROMETHEUS_TEXT: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
/// `close`, for `Connection` when the rest of a request cannot be read.
pub const CLOSE: HeaderValue = HeaderValue::from_static("close");
/// `no`, for `x-accel-buffering`.
pub const NO: HeaderValue = HeaderValue::from_static("no");
/// Anthropic's API version, sent when the client did not choose one.
pub const DEFAULT_ANTHROPIC_VERSION: HeaderValue = HeaderValue::from_static("2023-06-01");
/// Our `User-Agent` upstream.
pub const PROXY_USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("ai-proxy/", env!("CARGO_PKG_VERSION")));
/// `Bearer`, for `WWW-Authenticate` on a 401.
pub const BEARER: HeaderValue = HeaderValue::from_static("Bearer");

/// Headers that describe one hop, not the message: never relayed (RFC 9110 §7.6.1, plus
/// the non-standard `proxy-connection`). Headers named in an upstream's `Connection` or
/// `Proxy-Connection` are removed too.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Upstream response headers that belong to the proxy's account with the provider, not to
/// the client: cookies set for the proxy, and identifiers of the organisation or project
/// that pays. Never relayed; `docs/security.md` lists them. Rate-limit headers,
/// `retry-after`, request ids and `openai-processing-ms` are kept: clients use them.
pub const UPSTREAM_PRIVATE: [&str; 6] = [
    "set-cookie",
    "set-cookie2",
    "openai-organization",
    "openai-project",
    "anthropic-organization-id",
    "x-organization-id",
];
