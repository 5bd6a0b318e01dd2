//! OpenAI ⇄ Anthropic translation: requests ([`request`]), JSON responses ([`response`]),
//! streams ([`stream_to_openai`], [`stream_to_anthropic`]) as event-by-event state machines,
//! error bodies ([`errors`]) and reversible tool ids ([`tool_ids`]). Everything here is pure:
//! bytes or JSON in, bytes or JSON out, no sockets; `transform.rs` plugs it into the pipeline.

pub mod errors;
pub mod json;
pub mod request;
pub mod response;
pub mod sse;
pub mod stream_to_anthropic;
pub mod stream_to_openai;
pub mod tool_ids;

use bytes::Bytes;
use serde_json::Value;

/// Which way a request crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// An OpenAI chat-completions client served by an Anthropic Messages upstream.
    OpenaiToAnthropic,
    /// An Anthropic Messages client served by an OpenAI chat-completions upstream.
    AnthropicToOpenai,
}

/// A request that cannot be translated: answered 400 in the client's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Untranslatable(pub String);

/// A translated request body and the client parameters it could not carry.
#[derive(Debug)]
pub struct Translated {
    /// The body for the upstream.
    pub body: Vec<u8>,
    /// Names of dropped parameters, for `x-ai-proxy-dropped`.
    pub dropped: Vec<String>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Whether an OpenAI client asked for the usage chunk.
    pub include_usage: bool,
}

/// Per-target limits the translation applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `max_tokens` sent to an Anthropic upstream when the client gave none.
    pub default_max_tokens: u64,
    /// The most `max_tokens` sent upstream (`None`: no cap).
    pub max_tokens_cap: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            default_max_tokens: request::DEFAULT_MAX_TOKENS,
            max_tokens_cap: None,
        }
    }
}

/// Translates the client body `body` for the upstream, naming the upstream model `model`.
pub fn request(
    direction: Direction,
    body: &[u8],
    model: &str,
    limits: Limits,
) -> Result<Translated, Untranslatable> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Untranslatable(format!("request body is not valid JSON: {e}")))?;
    match direction {
        Direction::OpenaiToAnthropic => request::openai_to_anthropic(value, model, limits),
        Direction::AnthropicToOpenai => request::anthropic_to_openai(value, model, limits),
    }
}

/// Translates a response body as it streams: a JSON body is held until its end (it must be
/// rewritten whole), an SSE stream is translated event by event.
#[derive(Debug)]
pub enum ResponseTranslator {
    /// A JSON body (a response or an error), rewritten at its end.
    Json {
        /// Which way.
        direction: Direction,
        /// The upstream HTTP status.
        status: u16,
        /// The body so far.
        buf: Vec<u8>,
    },
    /// An OpenAI stream to an Anthropic client.
    ToAnthropic(Box<(sse::Parser, stream_to_anthropic::State)>),
    /// An Anthropic stream to an OpenAI client.
    ToOpenai(Box<(sse::Parser, stream_to_openai::State)>),
}

/// Room for the client bytes of `upstream` bytes of stream, so that the output buffer is
/// seldom regrown: a translated event is about as long as its upstream one, often longer.
fn out_capacity(upstream: usize) -> usize {
    upstream.saturating_mul(2)
}

/// The most bytes of a JSON body held for translation.
pub const MAX_JSON_BODY: usize = 64 * 1024 * 1024;

impl ResponseTranslator {
    /// The translator for an upstream response with `status`; `sse` when it is a stream.
    #[must_use]
    pub fn new(direction: Direction, status: u16, sse: bool, include_usage: bool) -> Self {
        match (sse && status < 400, direction) {
            (false, _) => Self::Json {
                direction,
                status,
                buf: Vec::new(),
            },
            (true, Direction::AnthropicToOpenai) => Self::ToAnthropic(Box::new((
                sse::Parser::default(),
                stream_to_anthropic::State::default(),
            ))),
            (true, Direction::OpenaiToAnthropic) => Self::ToOpenai(Box::new((
                sse::Parser::default(),
                stream_to_openai::State::new(include_usage),
            ))),
        }
    }

    /// Whether this translator holds the body whole (a JSON body).
    #[must_use]
    pub fn is_json(&self) -> bool {
        matches!(self, Self::Json { .. })
    }

    /// Feeds upstream bytes; returns the client bytes ready now.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        match self {
            Self::Json { buf, .. } => {
                if buf.len() + chunk.len() <= MAX_JSON_BODY {
                    buf.extend_from_slice(chunk);
                }
                Bytes::new()
            }
            Self::ToAnthropic(b) => {
                let (parser, state) = &mut **b;
                let mut out = Vec::with_capacity(out_capacity(chunk.len()));
                parser.feed_ref(chunk, |event| state.on_event(event, &mut out));
                Bytes::from(out)
            }
            Self::ToOpenai(b) => {
                let (parser, state) = &mut **b;
                let mut out = Vec::with_capacity(out_capacity(chunk.len()));
                parser.feed_ref(chunk, |event| state.on_event(event, &mut out));
                Bytes::from(out)
            }
        }
    }

    /// The upstream body ended: the rest of the client body.
    pub fn finish(&mut self) -> Bytes {
        match self {
            Self::Json {
                direction,
                status,
                buf,
            } => Bytes::from(response::translate_json(*direction, *status, buf)),
            Self::ToAnthropic(b) => {
                let (parser, state) = &mut **b;
                let mut out = Vec::new();
                parser.finish_ref(|event| state.on_event(event, &mut out));
                state.finish(&mut out);
                Bytes::from(out)
            }
            Self::ToOpenai(b) => {
                let (parser, state) = &mut **b;
                let mut out = Vec::new();
                parser.finish_ref(|event| state.on_event(event, &mut out));
                state.finish(&mut out);
                Bytes::from(out)
            }
        }
    }

    /// The upstream body failed mid-way: the client's form of a mid-stream error.
    pub fn fail(&mut self, message: &str) -> Bytes {
        match self {
            Self::Json { direction, .. } => {
                let flavor = match direction {
                    Direction::AnthropicToOpenai => errors::Shape::Anthropic,
                    Direction::OpenaiToAnthropic => errors::Shape::Openai,
                };
                Bytes::from(errors::body(flavor, 502, message))
            }
            Self::ToAnthropic(b) => {
                let mut out = Vec::new();
                b.1.fail(message, &mut out);
                Bytes::from(out)
            }
            Self::ToOpenai(b) => {
                let mut out = Vec::new();
                b.1.fail(message, &mut out);
                Bytes::from(out)
            }
        }
    }
}

/// The most bytes of the `x-ai-proxy-dropped` value: the names come from the client.
pub const MAX_DROPPED_HEADER: usize = 1024;

/// The `x-ai-proxy-dropped` value for `dropped`: names that are printable ASCII, each at most
/// 64 bytes, comma-separated, at most [`MAX_DROPPED_HEADER`] bytes (then `...`).
#[must_use]
pub fn dropped_header(dropped: &[String]) -> String {
    let mut out = String::new();
    for name in dropped {
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            continue;
        }
        if out.len() + name.len() + 2 > MAX_DROPPED_HEADER {
            out.push_str(", ...");
            break;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(name);
    }
    out
}

/// The status an OpenAI client gets for an Anthropic status (529 → 503).
#[must_use]
pub fn client_status(direction: Direction, status: u16) -> u16 {
    match (direction, status) {
        (Direction::OpenaiToAnthropic, 529) => 503,
        _ => status,
    }
}

#[cfg(test)]
mod tests {
    use super::dropped_header;

    #[test]
    fn dropped_header_is_bounded_and_printable() {
        let names: Vec<String> = ["a", "bad\nname", "", "b"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain((0..500).map(|i| format!("field_{i}")))
            .collect();
        let v = dropped_header(&names);
        assert!(v.starts_with("a, b, field_0, "), "{v}");
        assert!(v.len() <= super::MAX_DROPPED_HEADER + 5, "{}", v.len());
        assert!(v.ends_with(", ..."), "{v}");
        assert!(http::HeaderValue::from_str(&v).is_ok());
    }
}
