//! Transforms between the API a client speaks and the API a target speaks: the request
//! transform (before forwarding) and the response transform (while relaying). Today a target
//! is used only when it speaks the client's API, so the one transform is the identity;
//! translation (e.g. Anthropic Messages to OpenAI chat completions) becomes new variants here.

use crate::config::Kind;
use crate::request_body::UpstreamBody;
use crate::routes::Api;

/// How a request and its response are changed for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// The target speaks the client's API: bytes pass unchanged.
    Identity,
}

impl Transform {
    /// The transform from `api` to a provider of `kind`, or `None` when there is none (the
    /// target is then skipped).
    #[must_use]
    pub fn between(api: Api, kind: Kind) -> Option<Self> {
        (api.kind() == kind).then_some(Self::Identity)
    }

    /// The request transform: the body the target gets.
    #[must_use]
    pub fn request(self, body: UpstreamBody) -> UpstreamBody {
        match self {
            Self::Identity => body,
        }
    }

    /// The response transform: the body the client gets.
    #[must_use]
    pub fn response<B>(self, body: B) -> B {
        match self {
            Self::Identity => body,
        }
    }
}
