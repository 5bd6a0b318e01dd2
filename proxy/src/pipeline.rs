//! The request pipeline, every phase in order in one place: authenticate → parse → route →
//! forward (targets, fallback) → relay → finish. Each phase is a function in the module that
//! owns it; this file only says the order and what flows between them.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;

use crate::body::ResponseBody;
use crate::error::{Flavor, ProxyError};
use crate::forward::{self, ClientRequest, Forwarded};
use crate::headers::X_REQUEST_ID;
use crate::request_body::BodyLimits;
use crate::request_log::RequestLog;
use crate::routes::{self, Api};
use crate::state::AppState;
use crate::usage::{self, Shape, UsageObserver};
use crate::{auth, limits, local, model_field, relay, request_body};

/// The hyper service: every request enters here.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    if local::is_ping(&req) {
        // No log line: the container healthcheck calls this every few seconds.
        return Ok(local::pong());
    }
    let mut log = RequestLog::start(&state.metrics, &req);
    let Some(api) = Api::for_request(req.method(), req.uri().path()) else {
        let answered = local::answer(&state, &req);
        return Ok(respond(&state, answered, local::FLAVOR, log));
    };
    log.mark_in_flight();
    let forwarded = proxy(&state, req, api, &mut log).await;
    Ok(match forwarded {
        // relay → finish: the record finishes when the relayed body ends or is dropped.
        Ok(forwarded) => relay::relay(forwarded, log),
        Err(e) => {
            log.rejected = crate::limits::reason_of(&e);
            log.error = Some(state.redact(&e.to_string()));
            respond(&state, Err(e), api.flavor(), log)
        }
    })
}

/// authenticate → parse → route → forward. The body (and its share of the body budget) is
/// released when this returns: the relay does not need it.
async fn proxy(
    state: &AppState,
    req: Request<Incoming>,
    api: Api,
    log: &mut RequestLog,
) -> Result<Forwarded, ProxyError> {
    let identity = auth::authenticate(
        req.headers(),
        &state.token,
        &state.upstreams.load().config.clients,
    )?;
    log.identity = Some(identity.clone());
    let (parts, body) = req.into_parts();
    let limits = BodyLimits {
        max_bytes: state.settings.max_body_bytes,
        read_timeout: state.settings.body_read_timeout,
        budget: &state.body_budget,
    };
    let body = request_body::read(&parts.headers, body, &limits)
        .await
        .inspect_err(|e| log.budget_refused = matches!(e, ProxyError::Busy { .. }))?;
    log.bytes_in = body.bytes.len() as u64;
    let mut field = model_field::parse(&body.bytes)?;
    let upstreams = state.upstreams.load_full();
    let model = routes::route(&upstreams, &field.name)?;
    log.model = Some(model.name.clone());
    log.admission = limits::authorize(&state.limits, &identity, model)?;
    let strip = Shape::must_ask(api) && usage::ask_for_usage(&body.bytes, &mut field);
    log.usage = UsageObserver::new(Shape::of(api), strip);
    let client = ClientRequest {
        api,
        headers: &parts.headers,
        query: parts.uri.query(),
        body: &body.bytes,
        field: &field,
    };
    forward::forward(&upstreams, model, &client, log).await
}

/// A response the proxy makes itself (a local endpoint or an error), then finish.
fn respond(
    state: &AppState,
    answered: Result<Response<ResponseBody>, ProxyError>,
    flavor: Flavor,
    mut log: RequestLog,
) -> Response<ResponseBody> {
    let mut response = match answered {
        Ok(response) => response,
        Err(e) => e.to_response(flavor, &log.request_id),
    };
    log.status = response.status().as_u16();
    if log.status >= 400 {
        log.path = state.redact(&log.path);
    }
    log.bytes_out = response.body().size_hint().exact().unwrap_or(0);
    response
        .headers_mut()
        .insert(X_REQUEST_ID, log.request_id.clone());
    response
}
