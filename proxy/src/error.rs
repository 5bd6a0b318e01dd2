//! The proxy's request errors and the one place that maps them to an HTTP status and a
//! JSON body: OpenAI's error shape everywhere except `/v1/messages*`, which gets Anthropic's.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::ResponseBody;
use crate::headers::{APPLICATION_JSON, BEARER, CLOSE, X_REQUEST_ID};

/// Which API's error shape a client expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `{"error":{"message","type","param","code"}}`
    OpenAi,
    /// `{"type":"error","error":{"type","message"}}`
    Anthropic,
}

/// Everything that can go wrong with a client request before the upstream answers.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No or wrong token.
    #[error(
        "missing or invalid token: send `Authorization: Bearer <AUTH_TOKEN>` or `x-api-key: <AUTH_TOKEN>`"
    )]
    Unauthorized,
    /// No such endpoint.
    #[error("no endpoint {method} {path}")]
    NotFound {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON but not a usable request (not an object, `model` not a string).
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// No `model` in the body.
    #[error("missing `model` in the request body")]
    MissingModel,
    /// `model` names no configured model.
    #[error(
        "model `{0}` is not configured on this proxy; GET /v1/models lists the available models"
    )]
    UnknownModel(String),
    /// The model exists but has no target speaking this endpoint's API.
    #[error(
        "model `{model}` has no {kind}-kind provider, so it cannot be used on this endpoint; add a {kind} target in provider-config.yaml"
    )]
    NoTargetForApi {
        /// The model.
        model: String,
        /// The kind the endpoint needs.
        kind: crate::config::Kind,
    },
    /// The body exceeds `MAX_BODY_BYTES`.
    #[error("request body is larger than the {limit}-byte limit (MAX_BODY_BYTES in .env)")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Every candidate provider lacks its key.
    #[error(
        "model `{model}` is served only by providers that are not configured: set {vars} in .env, then restart or send SIGHUP"
    )]
    NotConfigured {
        /// The model.
        model: String,
        /// The variables to set, comma-separated.
        vars: String,
    },
    /// Every target failed before sending anything.
    #[error("all {attempts} upstream attempt(s) for model `{model}` failed; last: {last}")]
    AllTargetsFailed {
        /// The model.
        model: String,
        /// How many targets were tried.
        attempts: u32,
        /// What happened to the last one (names its status when it answered).
        last: String,
    },
    /// The client's body could not be read.
    #[error("cannot read the request body: {0}")]
    BodyRead(String),
    /// The client did not send its whole body within `BODY_READ_TIMEOUT`.
    #[error("the request body did not arrive within {secs} s (BODY_READ_TIMEOUT); send it at once")]
    BodyTimeout {
        /// The limit in seconds.
        secs: u64,
    },
    /// A client key asked for a model outside its `models` list.
    #[error(
        "client `{client}` may not use model `{model}`; GET /v1/models lists the models this key may use"
    )]
    ModelNotAllowed {
        /// The client's name.
        client: String,
        /// The model asked for (clipped).
        model: String,
    },
    /// A client key asked for `/metrics`, which only `AUTH_TOKEN` may read.
    #[error("/metrics needs AUTH_TOKEN; a client key cannot read it")]
    MetricsForbidden,
    /// A client reached one of its limits.
    #[error(
        "client `{}` reached its {} limit ({}); retry after {} s",
        .0.client, .0.reason.as_str(), .0.limit, .0.retry_after
    )]
    RateLimited(Box<crate::limits::Rejection>),
    /// The proxy is buffering as many request bytes as `MAX_INFLIGHT_BODY_BYTES` allows.
    #[error(
        "the proxy is busy (too many request bytes in flight, MAX_INFLIGHT_BODY_BYTES); retry after {retry_after} s"
    )]
    Busy {
        /// Seconds to wait, also sent as `Retry-After`.
        retry_after: u64,
    },
}

impl ProxyError {
    /// The HTTP status for this error.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound { .. } | Self::UnknownModel(_) | Self::NoTargetForApi { .. } => {
                StatusCode::NOT_FOUND
            }
            Self::MalformedJson(_)
            | Self::InvalidBody(_)
            | Self::MissingModel
            | Self::BodyRead(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::NotConfigured { .. } | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::AllTargetsFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::ModelNotAllowed { .. } | Self::MetricsForbidden => StatusCode::FORBIDDEN,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// OpenAI's `type` and `code`.
    fn openai_type_code(&self) -> (&'static str, &'static str) {
        match self {
            Self::Unauthorized => ("invalid_request_error", "invalid_api_key"),
            Self::NotFound { .. } => ("invalid_request_error", "not_found"),
            Self::MalformedJson(_) | Self::InvalidBody(_) | Self::BodyRead(_) => {
                ("invalid_request_error", "invalid_request")
            }
            Self::MissingModel => ("invalid_request_error", "missing_model"),
            Self::UnknownModel(_) | Self::NoTargetForApi { .. } => {
                ("invalid_request_error", "model_not_found")
            }
            Self::PayloadTooLarge { .. } => ("invalid_request_error", "request_too_large"),
            Self::BodyTimeout { .. } => ("invalid_request_error", "request_timeout"),
            Self::Busy { .. } => ("server_error", "overloaded"),
            Self::NotConfigured { .. } => ("server_error", "provider_not_configured"),
            Self::AllTargetsFailed { .. } => ("server_error", "upstream_failed"),
            Self::ModelNotAllowed { .. } => ("permission_error", "model_not_allowed"),
            Self::MetricsForbidden => ("permission_error", "forbidden"),
            Self::RateLimited(r) => match r.reason {
                crate::limits::Reason::TokensPerMinute => ("tokens", "rate_limit_exceeded"),
                _ => ("requests", "rate_limit_exceeded"),
            },
        }
    }

    /// Anthropic's error `type`.
    fn anthropic_type(&self) -> &'static str {
        match self {
            Self::Unauthorized => "authentication_error",
            Self::NotFound { .. } | Self::UnknownModel(_) | Self::NoTargetForApi { .. } => {
                "not_found_error"
            }
            Self::MalformedJson(_)
            | Self::InvalidBody(_)
            | Self::MissingModel
            | Self::BodyRead(_) => "invalid_request_error",
            Self::PayloadTooLarge { .. } => "request_too_large",
            Self::BodyTimeout { .. } => "timeout_error",
            Self::Busy { .. } => "overloaded_error",
            Self::NotConfigured { .. } | Self::AllTargetsFailed { .. } => "api_error",
            Self::ModelNotAllowed { .. } | Self::MetricsForbidden => "permission_error",
            Self::RateLimited(_) => "rate_limit_error",
        }
    }

    /// The JSON body in `flavor`'s shape.
    #[must_use]
    pub fn body(&self, flavor: Flavor) -> String {
        let message = self.to_string();
        let value = match flavor {
            Flavor::OpenAi => {
                let (kind, code) = self.openai_type_code();
                serde_json::json!({
                    "error": { "message": message, "type": kind, "param": null, "code": code }
                })
            }
            Flavor::Anthropic => serde_json::json!({
                "type": "error",
                "error": { "type": self.anthropic_type(), "message": message }
            }),
        };
        value.to_string()
    }

    /// The full response, with `x-request-id`.
    #[must_use]
    pub fn to_response(&self, flavor: Flavor, request_id: &HeaderValue) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::full(Bytes::from(self.body(flavor))));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, APPLICATION_JSON);
        headers.insert(X_REQUEST_ID, request_id.clone());
        match self {
            Self::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, BEARER);
            }
            Self::Busy { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::RateLimited(r) => crate::limits::insert_headers(headers, r),
            Self::BodyTimeout { .. } => {
                // The rest of the body may still be arriving: the connection cannot be reused.
                headers.insert(header::CONNECTION, CLOSE);
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::{Flavor, ProxyError};

    #[test]
    fn shapes() {
        let e = ProxyError::UnknownModel("x".into());
        let v: serde_json::Value = serde_json::from_str(&e.body(Flavor::OpenAi)).unwrap();
        assert_eq!(v["error"]["code"], "model_not_found");
        let v: serde_json::Value = serde_json::from_str(&e.body(Flavor::Anthropic)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "not_found_error");
        assert_eq!(e.status(), 404);
    }
}
