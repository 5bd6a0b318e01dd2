//! The forward phase: builds the upstream request for each of a model's targets and tries
//! them in order (fallback) until one answers with something to relay.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::config::{Kind, Model, Provider, Target};
use crate::error::ProxyError;
use crate::headers::{
    ANTHROPIC_BETA, ANTHROPIC_VERSION, APPLICATION_JSON, DEFAULT_ANTHROPIC_VERSION, OPENAI_BETA,
    PROXY_USER_AGENT, X_REQUEST_ID,
};
use crate::model_field::{self, ModelField};
use crate::outcome::UpstreamFailure;
use crate::request_body::UpstreamBody;
use crate::request_log::RequestLog;
use crate::routes::Api;
use crate::transform::Transform;
use crate::upstream::{HttpClient, Upstreams};

/// A response that came back from a target, ready to relay.
pub struct Forwarded {
    /// The upstream response (headers read, body not).
    pub response: Response<Incoming>,
    /// Who answered.
    pub provider: Arc<Provider>,
    /// The response transform for this target.
    pub transform: Transform,
    /// Client parameters the translation dropped, for `x-ai-proxy-dropped`.
    pub dropped: Option<HeaderValue>,
    /// Set when every target failed and this is the last one's 429 or 5xx answer, relayed:
    /// what went wrong, for the log line.
    pub failed: Option<String>,
}

/// The client request parts that matter upstream.
pub struct ClientRequest<'a> {
    /// The endpoint.
    pub api: Api,
    /// Client headers.
    pub headers: &'a HeaderMap,
    /// Query string, if any, passed through (Anthropic's SDK uses `?beta=true`).
    pub query: Option<&'a str>,
    /// The client body.
    pub body: &'a Bytes,
    /// Where its `model` is.
    pub field: &'a ModelField<'a>,
}

/// A failed attempt.
struct Failed {
    failure: UpstreamFailure,
    message: String,
    /// The upstream's answer, when it was a 429 or 5xx.
    response: Option<Response<Incoming>>,
}

impl UpstreamFailure {
    /// Whether the upstream may have received the whole request and be generating (and
    /// billing) an answer: the connection was lost after sending, or no headers came in time.
    /// Sending it to the next target could then run it twice.
    fn is_ambiguous(self) -> bool {
        matches!(self, Self::Request | Self::Timeout)
    }
}

/// Tries `model`'s targets in order. Falls back freely when the request never reached the
/// upstream (connect or TLS failure) or the upstream refused it (429, 5xx); after an
/// ambiguous failure only when the provider says `retry_ambiguous: true`. Returns the first
/// other response or, when every target failed and the last one answered 429 or 5xx, that
/// answer (its status, `retry-after` and body are the client's best information). Nothing
/// has reached the client yet.
pub async fn forward(
    upstreams: &Upstreams,
    model: &Model,
    client: &ClientRequest<'_>,
    log: &mut RequestLog,
) -> Result<Forwarded, ProxyError> {
    let mut usable = 0u32;
    let mut missing: Vec<&str> = Vec::new();
    let mut untranslatable = None;
    let mut tried = Tried::default();
    if count_tokens_unservable(upstreams, model, client) {
        return Err(ProxyError::NoTargetForApi {
            model: model.name.to_string(),
            kind: Kind::Anthropic,
        });
    }
    for target in &model.targets {
        let provider = &upstreams.config.providers[target.provider];
        let Some(transform) = Transform::between(client.api, provider.kind) else {
            continue;
        };
        usable += 1;
        if !provider.is_configured() {
            note_missing(&mut missing, &provider.missing_vars);
            continue;
        }
        // A body this target's API cannot carry (an image type, `n > 1`) may still suit a
        // later target; it is the answer only when no target was tried.
        let (body, transform, dropped) = match target_body(transform, client, target) {
            Ok(built) => built,
            Err(e) => {
                untranslatable.get_or_insert(e);
                continue;
            }
        };
        tried.next_attempt(log);
        log.trying(&model.name, target, provider);
        let http = &upstreams.clients[target.provider];
        let request = build_request(provider, http, client, transform, body, &log.request_id)
            .map_err(|e| ProxyError::AllTargetsFailed {
                model: model.name.to_string(),
                attempts: log.attempts,
                last: e,
            })?;
        let result = attempt(upstreams, target.provider, request, log).await;
        let answer = |response| Answer {
            response,
            provider,
            transform,
            dropped,
        };
        match result {
            Ok(response) => return Ok(answer(response).forwarded(None, log)),
            Err(failed) => {
                let response = failed.response.map(answer);
                if !tried.failed(provider, failed.failure, failed.message, response, log) {
                    break;
                }
            }
        }
    }
    if let Some(e) = untranslatable.filter(|_| log.attempts == 0) {
        return Err(e);
    }
    let attempts = log.attempts;
    tried.finish(log, |last| {
        no_answer(model, client, usable, attempts, &missing, last)
    })
}

/// A target's response, with what relaying it needs.
struct Answer<'a> {
    response: Response<Incoming>,
    provider: &'a Arc<Provider>,
    transform: Transform,
    dropped: Option<HeaderValue>,
}

impl Answer<'_> {
    /// The response to relay; `failed` when it is a failed last attempt's answer. Usage is
    /// read in the upstream's format.
    fn forwarded(self, failed: Option<String>, log: &mut RequestLog) -> Forwarded {
        if let Some(shape) = self.transform.upstream_shape() {
            // Usage is read in the upstream's format, before translation.
            log.usage = crate::usage::UsageObserver::new(shape, false);
        }
        Forwarded {
            response: self.response,
            provider: self.provider.clone(),
            transform: self.transform,
            dropped: self.dropped,
            failed,
        }
    }
}

/// What the failed attempts so far leave behind.
#[derive(Default)]
struct Tried<'a> {
    /// How the last one failed.
    last: String,
    /// The last one's 429/5xx answer, kept until another attempt starts.
    held: Option<Answer<'a>>,
    /// The last failed attempt: its fallback counts as taken once another attempt starts.
    pending: Option<(&'a Arc<Provider>, UpstreamFailure)>,
}

impl<'a> Tried<'a> {
    /// Another attempt starts: the previous one's fallback was taken.
    fn next_attempt(&mut self, log: &mut RequestLog) {
        // Dropping the previous answer frees its connection before the next one is used.
        self.held = None;
        if let Some((p, failure)) = self.pending.take() {
            log.attempt_failed(&p.name, failure, true);
        }
        log.attempts += 1;
    }

    /// Notes a failed attempt; whether the next target may be tried.
    fn failed(
        &mut self,
        provider: &'a Arc<Provider>,
        failure: UpstreamFailure,
        message: String,
        answer: Option<Answer<'a>>,
        log: &mut RequestLog,
    ) -> bool {
        fallback_log(log, provider, &message);
        if !failure.is_ambiguous() || provider.retry_ambiguous {
            self.pending = Some((provider, failure));
            self.held = answer;
            self.last = message;
            return true;
        }
        log.attempt_failed(&provider.name, failure, false);
        self.last = format!(
            "{message}; not sent to another target because provider `{}` may have received it (set retry_ambiguous: true on it to allow)",
            provider.name
        );
        false
    }

    /// No target answered: the last one's 429/5xx answer if there is one, else the error.
    fn finish(
        self,
        log: &mut RequestLog,
        error: impl FnOnce(String) -> ProxyError,
    ) -> Result<Forwarded, ProxyError> {
        // No next target was tried after the last failure: no fallback to count.
        if let Some((p, failure)) = self.pending {
            log.upstream_failed(&p.name, failure);
        }
        let error = error(self.last);
        match self.held {
            Some(answer) => Ok(answer.forwarded(Some(error.to_string()), log)),
            None => Err(error),
        }
    }
}

/// Adds `vars` to `missing`, each variable once, in the order first seen.
fn note_missing<'a>(missing: &mut Vec<&'a str>, vars: &'a [String]) {
    for var in vars {
        if !missing.contains(&var.as_str()) {
            missing.push(var);
        }
    }
}

/// count_tokens has no OpenAI counterpart: a model served first by an OpenAI-kind target
/// answers 404 so that clients (Claude Code) fall back to their local estimate.
fn count_tokens_unservable(
    upstreams: &Upstreams,
    model: &Model,
    client: &ClientRequest<'_>,
) -> bool {
    client.api == Api::CountTokens
        && model
            .targets
            .first()
            .is_some_and(|t| upstreams.config.providers[t.provider].kind != Kind::Anthropic)
}

/// The error when no target answered: none speaks the client's API, none is configured, or
/// every one tried failed (`last` says how the final one did).
fn no_answer(
    model: &Model,
    client: &ClientRequest<'_>,
    usable: u32,
    attempts: u32,
    missing: &[&str],
    last: String,
) -> ProxyError {
    if usable == 0 {
        ProxyError::NoTargetForApi {
            model: model.name.to_string(),
            kind: client.api.kind(),
        }
    } else if attempts == 0 {
        ProxyError::NotConfigured {
            model: model.name.to_string(),
            vars: missing.join(", "),
        }
    } else {
        ProxyError::AllTargetsFailed {
            model: model.name.to_string(),
            attempts,
            last,
        }
    }
}

/// The body for one target: the client's with the model renamed (native), or translated.
fn target_body(
    transform: Transform,
    client: &ClientRequest<'_>,
    target: &Target,
) -> Result<(UpstreamBody, Transform, Option<HeaderValue>), ProxyError> {
    Ok(match transform {
        Transform::Identity => (
            model_field::rewrite(client.body, client.field, &target.upstream_model),
            transform,
            None,
        ),
        Transform::Translate { direction, .. } => {
            let limits = crate::translate::Limits {
                default_max_tokens: target
                    .max_tokens
                    .unwrap_or(crate::translate::request::DEFAULT_MAX_TOKENS),
                max_tokens_cap: target.max_tokens_cap,
            };
            let t =
                crate::translate::request(direction, client.body, &target.upstream_model, limits)
                    .map_err(|e| ProxyError::InvalidBody(e.0))?;
            let dropped = Some(crate::translate::dropped_header(&t.dropped))
                .filter(|v| !v.is_empty())
                .and_then(|v| HeaderValue::from_str(&v).ok());
            let transform = Transform::Translate {
                direction,
                include_usage: t.include_usage,
            };
            (
                UpstreamBody::new([Bytes::from(t.body), Bytes::new(), Bytes::new()]),
                transform,
                dropped,
            )
        }
    })
}

/// Sends `request` to provider `index` and waits for the response headers.
async fn attempt(
    upstreams: &Upstreams,
    index: usize,
    request: Request<UpstreamBody>,
    log: &mut RequestLog,
) -> Result<Response<Incoming>, Failed> {
    let provider = &upstreams.config.providers[index];
    let http = &upstreams.clients[index];
    let sent = Instant::now();
    let result = tokio::time::timeout(provider.timeouts.first_byte, http.request(request)).await;
    log.upstream_wait += sent.elapsed();
    match result {
        Ok(Ok(response)) => {
            let status = response.status();
            let failure = if status == StatusCode::TOO_MANY_REQUESTS {
                UpstreamFailure::Status429
            } else if status.is_server_error() {
                UpstreamFailure::Status5xx
            } else {
                return Ok(response);
            };
            Err(Failed {
                failure,
                message: format!(
                    "provider `{}` returned HTTP {}",
                    provider.name,
                    status.as_u16()
                ),
                response: Some(response),
            })
        }
        Ok(Err(e)) => Err(Failed {
            failure: if e.is_connect() {
                UpstreamFailure::Connect
            } else {
                UpstreamFailure::Request
            },
            message: format!("provider `{}`: {}", provider.name, error_chain(&e)),
            response: None,
        }),
        Err(_) => Err(Failed {
            failure: UpstreamFailure::Timeout,
            message: format!(
                "provider `{}` sent no response headers within {:?} (first_byte_timeout)",
                provider.name, provider.timeouts.first_byte
            ),
            response: None,
        }),
    }
}

fn build_request(
    provider: &Provider,
    http: &HttpClient,
    client: &ClientRequest<'_>,
    transform: Transform,
    body: UpstreamBody,
    request_id: &HeaderValue,
) -> Result<Request<UpstreamBody>, String> {
    let path = transform.upstream_path(client.api);
    // A query (Anthropic's `?beta=true`) belongs to the client's API, not a translated one.
    let query = client.query.filter(|_| transform == Transform::Identity);
    // The whole URL parsed when the pre-parsed base cannot serve: for its error message, or
    // a base URL with a query.
    let uri = http
        .uri(path, query)
        .map_or_else(|| whole_uri(&provider.base_url, path, query), Ok)?;
    let mut request = Request::new(body);
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
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

/// `base_url + path + "?" + query`, parsed as a whole.
fn whole_uri(base_url: &str, path: &str, query: Option<&str>) -> Result<http::Uri, String> {
    let mut uri = String::with_capacity(base_url.len() + path.len() + 40);
    uri.push_str(base_url);
    uri.push_str(path);
    if let Some(q) = query {
        uri.push('?');
        uri.push_str(q);
    }
    uri.parse()
        .map_err(|e| format!("cannot build the upstream URL: {e}"))
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
