//! Endpoints the proxy answers itself: `/ping` (no auth, no log line), `HEAD /` (no auth), `/v1/models` and
//! `/metrics` (authenticated; `/metrics` for `AUTH_TOKEN` only), and the 404 for everything else.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};

use crate::auth::authenticate;
use crate::body::ResponseBody;
use crate::echo::clip;
use crate::error::{Flavor, ProxyError};
use crate::headers::{APPLICATION_JSON, PROMETHEUS_TEXT, TEXT_PLAIN};
use crate::state::AppState;

/// Whether this is the healthcheck, answered before anything else.
#[must_use]
pub fn is_ping<B>(req: &Request<B>) -> bool {
    req.uri().path() == "/ping" && matches!(*req.method(), Method::GET | Method::HEAD)
}

/// The healthcheck's answer.
#[must_use]
pub fn pong() -> Response<ResponseBody> {
    fixed(StatusCode::OK, TEXT_PLAIN, Bytes::from_static(b"pong"))
}

/// Answers `/v1/models`, `/metrics`, or 404.
pub fn answer<B>(state: &AppState, req: &Request<B>) -> Result<Response<ResponseBody>, ProxyError> {
    let token = &state.token;
    let upstreams = state.upstreams.load();
    let clients = &upstreams.config.clients;
    match (req.method(), req.uri().path()) {
        // Claude Code probes its base URL with `HEAD /` before the first request.
        (&Method::HEAD, "/") => Ok(fixed(StatusCode::OK, TEXT_PLAIN, Bytes::new())),
        (&Method::GET, "/v1/models") => {
            let identity = authenticate(req.headers(), token, clients)?;
            let models = match identity.client().and_then(|c| c.models.as_deref()) {
                // A client with a models list sees only those.
                Some(allowed) => crate::upstream::models_json(allowed.iter().map(|m| &**m)),
                None => upstreams.models_json.clone(),
            };
            Ok(fixed(StatusCode::OK, APPLICATION_JSON, models))
        }
        (&Method::GET, "/metrics") => {
            if authenticate(req.headers(), token, clients)?
                .client()
                .is_some()
            {
                return Err(ProxyError::MetricsForbidden);
            }
            let text = Bytes::from(state.metrics.render());
            Ok(fixed(StatusCode::OK, PROMETHEUS_TEXT, text))
        }
        (method, path) => Err(ProxyError::NotFound {
            method: clip(method.as_str()).into_owned(),
            path: clip(path).into_owned(),
        }),
    }
}

/// The error shape of local endpoints.
pub const FLAVOR: Flavor = Flavor::OpenAi;

fn fixed(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}
