//! The route phase: the endpoint table [`Api`] (which paths are proxied, to which provider
//! kind and upstream path) and [`route`], which finds the configured model a request names.

use http::Method;

use crate::config::{Kind, Model};
use crate::error::{Flavor, ProxyError};
use crate::upstream::Upstreams;

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
    /// The proxied endpoint for a request, if it is one (all are `POST`).
    #[must_use]
    pub fn for_request(method: &Method, path: &str) -> Option<Self> {
        (method == Method::POST)
            .then(|| Self::from_path(path))
            .flatten()
    }

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

    /// The error shape its clients expect.
    #[must_use]
    pub fn flavor(self) -> Flavor {
        match self.kind() {
            Kind::Openai => Flavor::OpenAi,
            Kind::Anthropic => Flavor::Anthropic,
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

/// Finds the configured model called `name`; an unknown name is echoed clipped.
pub fn route<'a>(upstreams: &'a Upstreams, name: &str) -> Result<&'a Model, ProxyError> {
    upstreams
        .config
        .model(name)
        .ok_or_else(|| ProxyError::UnknownModel(crate::echo::clip(name).into_owned()))
}
