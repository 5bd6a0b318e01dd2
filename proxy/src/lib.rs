//! ai-proxy: a small, fast OpenAI- and Anthropic-compatible AI gateway.
//!
//! A request goes through the phases in [`pipeline`]: authenticate ([`auth`]) → parse
//! ([`request_body`], [`model_field`]) → route ([`routes`]) → forward ([`forward`], over the
//! clients in [`upstream`]) → relay ([`relay`]) → finish ([`request_log`]). Client keys:
//! [`auth`] finds the client, [`limits`] applies its models and limits after the route,
//! [`usage`] reads the tokens on the relayed body. A target of the other API is reached through
//! [`translate`] (chosen per target by [`transform`]).
//! `docs/architecture.md` maps every file.

#![allow(
    clippy::doc_markdown,
    reason = "product names such as OpenAI are prose, not code"
)]

pub mod auth;
pub mod body;
pub mod config;
pub mod connections;
pub mod echo;
pub mod error;
pub mod forward;
pub mod headers;
pub mod healthcheck;
pub mod keys;
pub mod limits;
pub mod local;
pub mod log;
pub mod metrics;
pub mod model_field;
pub mod outcome;
pub mod pipeline;
pub mod relay;
pub mod reload;
pub mod request_body;
pub mod request_log;
pub mod routes;
pub mod secret;
pub mod server;
pub mod signals;
pub mod state;
pub mod tls;
pub mod transform;
pub mod translate;
pub mod upstream;
pub mod usage;
