//! ai-proxy: a small, fast OpenAI- and Anthropic-compatible AI gateway.
//!
//! A request goes through authenticate ([`auth`]) → route ([`routes`]) → forward
//! ([`upstream`]) → relay ([`stream`]) → log ([`request_log`]).

#![allow(
    clippy::doc_markdown,
    reason = "product names such as OpenAI are prose, not code"
)]

pub mod auth;
pub mod config;
pub mod error;
pub mod healthcheck;
pub mod log;
pub mod metrics;
pub mod model_field;
pub mod request_log;
pub mod routes;
pub mod secret;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod stream;
pub mod upstream;
