//! Upstreams: one pooled HTTP client per provider (rustls with compiled-in roots, HTTP/1.1
//! and HTTP/2), and the forward phase — building the upstream request and trying a model's
//! targets in order until one answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{Kind, Model, Provider, ProviderConfig};
use crate::error::ProxyError;
use crate::model_field::{self, ModelField};
use crate::request_log::RequestLog;

/// The pooled client type used for every provider.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Anthropic's API version, sent when the client did not choose one.
const DEFAULT_ANTHROPIC_VERSION: HeaderValue = HeaderValue::from_static("2023-06-01");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const PROXY_USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("ai-proxy/", env!("CARGO_PKG_VERSION")));
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
const OPENAI_BETA: HeaderName = HeaderName::from_static("openai-beta");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The endpoints the proxy forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/responses`
    Responses,
    /// `POST /v1/messages`
    Messages,
    /// `POST /v1/messages/count_tokens`
    CountTokens,
}

impl Api {
    /// The endpoint for a request path.
    #[must_use]
    pub fn from_path(path: &str) -> Option<Self> {
        Some(match path {
            "/v1/chat/completions" => Self::ChatCompletions,
            "/v1/completions" => Self::Completions,
            "/v1/embeddings" => Self::Embeddings,
            "/v1/responses" => Self::Responses,
            "/v1/messages" => Self::Messages,
            "/v1/messages/count_tokens" => Self::CountTokens,
            _ => return None,
        })
    }

    /// The provider kind that serves it.
    #[must_use]
    pub fn kind(self) -> Kind {
        match self {
            Self::Messages | Self::CountTokens => Kind::Anthropic,
            _ => Kind::Openai,
        }
    }

    /// Path appended to the provider's `base_url`. OpenAI-kind base URLs include the version
    /// (`https://api.openai.com/v1`, as every OpenAI-compatible vendor documents them);
    /// Anthropic's does not (`https://api.anthropic.com`, as its SDK takes it).
    #[must_use]
    pub fn upstream_path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/chat/completions",
            Self::Completions => "/completions",
            Self::Embeddings => "/embeddings",
            Self::Responses => "/responses",
            Self::Messages => "/v1/messages",
            Self::CountTokens => "/v1/messages/count_tokens",
        }
    }
}

/// Builds the TLS configuration once: ring, TLS 1.2/1.3, Mozilla's roots compiled in (the
/// image is `FROM scratch` and has no CA bundle).
#[must_use]
pub fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A pooled client for one provider.
#[must_use]
pub fn build_client(provider: &Provider, tls: &rustls::ClientConfig) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(provider.timeouts.connect));
    http.set_keepalive(Some(Duration::from_mins(1)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https)
}

/// The providers and models in force, with their clients. Replaced as a whole on SIGHUP;
/// requests in flight keep the one they started with.
pub struct Upstreams {
    /// The validated provider file.
    pub config: ProviderConfig,
    clients: Vec<HttpClient>,
    /// The prebuilt `GET /v1/models` body.
    pub models_json: Bytes,
}

impl Upstreams {
    /// Builds a client per provider.
    #[must_use]
    pub fn new(config: ProviderConfig, tls: &rustls::ClientConfig) -> Self {
        let clients = config
            .providers
            .iter()
            .map(|p| build_client(p, tls))
            .collect();
        let data: Vec<serde_json::Value> = config
            .models
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": &*m.name, "object": "model", "created": 0, "owned_by": "ai-proxy"
                })
            })
            .collect();
        let models_json =
            Bytes::from(serde_json::json!({ "object": "list", "data": data }).to_string());
        Self {
            config,
            clients,
            models_json,
        }
    }
}

/// A response that came back from a target, ready to relay.
pub struct Forwarded {
    /// The upstream response (headers read, body not).
    pub response: Response<Incoming>,
    /// Who answered.
    pub provider: Arc<Provider>,
}

/// The client request parts that matter upstream.
pub struct ClientRequest<'a> {
    /// Client headers.
    pub headers: &'a HeaderMap,
    /// Query string, if any, passed through (Anthropic's SDK uses `?beta=true`).
    pub query: Option<&'a str>,
    /// The client body.
    pub body: &'a Bytes,
    /// Where its `model` is.
    pub field: &'a ModelField<'a>,
}

fn build_request(
    provider: &Provider,
    api: Api,
    client: &ClientRequest<'_>,
    upstream_model: &str,
    request_id: &HeaderValue,
) -> Result<Request<Full<Bytes>>, String> {
    let mut uri = String::with_capacity(provider.base_url.len() + 40);
    uri.push_str(&provider.base_url);
    uri.push_str(api.upstream_path());
    if let Some(q) = client.query {
        uri.push('?');
        uri.push_str(q);
    }
    let body = model_field::rewrite(client.body, client.field, upstream_model);
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the upstream URL: {e}"))?;
    let h = request.headers_mut();
    // A fresh header map: nothing of the client's goes upstream unless listed here, so the
    // client's token (Authorization / x-api-key) never leaves the proxy.
    h.insert(CONTENT_TYPE, APPLICATION_JSON);
    h.insert(USER_AGENT, PROXY_USER_AGENT);
    h.insert(X_REQUEST_ID, request_id.clone());
    if let Some(accept) = client.headers.get(ACCEPT) {
        h.insert(ACCEPT, accept.clone());
    }
    match provider.kind {
        Kind::Anthropic => {
            let version = client
                .headers
                .get(&ANTHROPIC_VERSION)
                .cloned()
                .unwrap_or(DEFAULT_ANTHROPIC_VERSION);
            h.insert(ANTHROPIC_VERSION, version);
            for beta in client.headers.get_all(&ANTHROPIC_BETA) {
                h.append(ANTHROPIC_BETA, beta.clone());
            }
        }
        Kind::Openai => {
            if let Some(beta) = client.headers.get(&OPENAI_BETA) {
                h.insert(OPENAI_BETA, beta.clone());
            }
        }
    }
    for (name, value) in &provider.headers {
        if name != HOST && name != AUTHORIZATION {
            h.insert(name.clone(), value.clone());
        }
    }
    if let Some((name, value)) = &provider.auth_header {
        h.insert(name.clone(), value.clone());
    }
    Ok(request)
}

/// Tries `model`'s targets for `api` in order. Falls back on connection errors, timeouts
/// before the response headers, 429 and 5xx; returns the first other response. Nothing has
/// reached the client yet, so falling back is always safe here.
pub async fn forward(
    upstreams: &Upstreams,
    model: &Model,
    api: Api,
    client: &ClientRequest<'_>,
    log: &mut RequestLog,
) -> Result<Forwarded, ProxyError> {
    let mut of_kind = 0u32;
    let mut missing: Vec<&str> = Vec::new();
    let mut last = String::new();
    for target in &model.targets {
        let provider = &upstreams.config.providers[target.provider];
        if provider.kind != api.kind() {
            continue;
        }
        of_kind += 1;
        if !provider.is_configured() {
            for var in &provider.missing_vars {
                if !missing.contains(&var.as_str()) {
                    missing.push(var);
                }
            }
            continue;
        }
        log.attempts += 1;
        log.provider = Some(provider.name.clone());
        let request = build_request(
            provider,
            api,
            client,
            &target.upstream_model,
            &log.request_id,
        )
        .map_err(|e| ProxyError::AllTargetsFailed {
            model: model.name.to_string(),
            attempts: log.attempts,
            last: e,
        })?;
        let http = &upstreams.clients[target.provider];
        let sent = Instant::now();
        let result =
            tokio::time::timeout(provider.timeouts.first_byte, http.request(request)).await;
        log.upstream_wait += sent.elapsed();
        let metrics = log.metrics();
        match result {
            Ok(Ok(response)) => {
                let status = response.status();
                if status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                    let kind = if status.is_server_error() {
                        "status_5xx"
                    } else {
                        "status_429"
                    };
                    metrics.record_upstream_error(&provider.name, kind);
                    last = format!(
                        "provider `{}` returned HTTP {}",
                        provider.name,
                        status.as_u16()
                    );
                    fallback_log(log, provider, &last);
                    continue;
                }
                return Ok(Forwarded {
                    response,
                    provider: provider.clone(),
                });
            }
            Ok(Err(e)) => {
                let kind = if e.is_connect() { "connect" } else { "request" };
                metrics.record_upstream_error(&provider.name, kind);
                last = format!("provider `{}`: {}", provider.name, error_chain(&e));
                fallback_log(log, provider, &last);
            }
            Err(_) => {
                metrics.record_upstream_error(&provider.name, "timeout");
                last = format!(
                    "provider `{}` sent no response headers within {:?} (first_byte_timeout)",
                    provider.name, provider.timeouts.first_byte
                );
                fallback_log(log, provider, &last);
            }
        }
    }
    if of_kind == 0 {
        return Err(ProxyError::NoTargetForApi {
            model: model.name.to_string(),
            kind: api.kind(),
        });
    }
    if log.attempts == 0 {
        return Err(ProxyError::NotConfigured {
            model: model.name.to_string(),
            vars: missing.join(", "),
        });
    }
    Err(ProxyError::AllTargetsFailed {
        model: model.name.to_string(),
        attempts: log.attempts,
        last,
    })
}

fn fallback_log(log: &RequestLog, provider: &Provider, why: &str) {
    crate::log::warn("upstream attempt failed")
        .str("request_id", log.request_id.to_str().unwrap_or("-"))
        .str("provider", &provider.name)
        .u64("attempt", u64::from(log.attempts))
        .str("error", why)
        .emit();
}

/// "client error (Connect): tcp connect error: Connection refused" rather than just the
/// outermost "client error (Connect)".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
