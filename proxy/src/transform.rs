//! Transforms between the API a client speaks and the API a target speaks: the request
//! transform (before forwarding) and the response transform (while relaying). A target that
//! speaks the client's API gets the bytes unchanged ([`Transform::Identity`], which costs
//! nothing); a chat-completions client on an Anthropic target, or a Messages client on an
//! OpenAI-kind target, is translated ([`Transform::Translate`], `crate::translate`).

use crate::config::Kind;
use crate::routes::Api;
use crate::translate::Direction;
use crate::usage::Shape;

/// How a request and its response are changed for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// The target speaks the client's API: bytes pass unchanged.
    Identity,
    /// The target speaks the other API: request, response and errors are translated.
    Translate {
        /// Which way.
        direction: Direction,
        /// Whether an OpenAI client asked for the usage chunk.
        include_usage: bool,
    },
}

impl Transform {
    /// The transform from `api` to a provider of `kind`, or `None` when there is none (the
    /// target is then skipped). Only chat completions and Messages translate; the other
    /// endpoints stay native.
    #[must_use]
    pub fn between(api: Api, kind: Kind) -> Option<Self> {
        if api.kind() == kind {
            return Some(Self::Identity);
        }
        let direction = match (api, kind) {
            (Api::ChatCompletions, Kind::Anthropic) => Direction::OpenaiToAnthropic,
            (Api::Messages, Kind::Openai) => Direction::AnthropicToOpenai,
            _ => return None,
        };
        Some(Self::Translate {
            direction,
            include_usage: false,
        })
    }

    /// The path appended to the target's `base_url`.
    #[must_use]
    pub fn upstream_path(self, api: Api) -> &'static str {
        match self {
            Self::Identity => api.upstream_path(),
            Self::Translate {
                direction: Direction::OpenaiToAnthropic,
                ..
            } => Api::Messages.upstream_path(),
            Self::Translate {
                direction: Direction::AnthropicToOpenai,
                ..
            } => Api::ChatCompletions.upstream_path(),
        }
    }

    /// The usage format of the upstream's responses, when it is not the client's.
    #[must_use]
    pub fn upstream_shape(self) -> Option<Shape> {
        match self {
            Self::Identity => None,
            Self::Translate { direction, .. } => Some(match direction {
                Direction::OpenaiToAnthropic => Shape::Anthropic,
                Direction::AnthropicToOpenai => Shape::OpenAi,
            }),
        }
    }
}
