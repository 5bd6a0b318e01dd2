//! The usage observer: sees every chunk of a relayed response body as it passes and reads the
//! token usage the upstream reports — an OpenAI JSON body's `usage`, an OpenAI stream's final
//! usage chunk, Anthropic's `message_start` and `message_delta` — without holding the body:
//! a JSON body keeps only its last [`JSON_TAIL`] bytes, a stream only its unfinished event.
//! When the proxy asked for OpenAI's usage chunk on the client's behalf
//! (`stream_options.include_usage`), the observer also removes that chunk from the stream.

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use memchr::memmem::{Finder, FinderRev};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Bytes kept from the end of a JSON body: `usage` is its last member in both APIs.
pub const JSON_TAIL: usize = 16 * 1024;
/// The longest SSE event parsed; a longer one is relayed unread.
pub const MAX_EVENT: usize = 256 * 1024;

/// Tokens reported by the upstream. `input` excludes cache reads and writes, so the four add
/// up to everything the request used (OpenAI's `prompt_tokens` includes `cached_tokens`;
/// the observer subtracts them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tokens {
    /// Input tokens, not from or to a cache.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write: u64,
}

impl Tokens {
    /// All four: what `tokens_per_minute` counts.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_read + self.cache_write
    }
}

/// A kind of token: the `type` label of `ai_proxy_tokens_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TokenType {
    /// [`Tokens::input`].
    Input,
    /// [`Tokens::output`].
    Output,
    /// [`Tokens::cache_read`].
    CacheRead,
    /// [`Tokens::cache_write`].
    CacheWrite,
}

impl TokenType {
    /// The metric label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
            Self::CacheRead => "cache_read",
            Self::CacheWrite => "cache_write",
        }
    }
}

impl Tokens {
    /// Each count with its type.
    #[must_use]
    pub fn by_type(&self) -> [(TokenType, u64); 4] {
        [
            (TokenType::Input, self.input),
            (TokenType::Output, self.output),
            (TokenType::CacheRead, self.cache_read),
            (TokenType::CacheWrite, self.cache_write),
        ]
    }
}

/// The API whose usage format the response carries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Not read (no usage expected, or an unknown format).
    #[default]
    None,
    /// OpenAI: `prompt_tokens`/`completion_tokens` (or `input_tokens`/`output_tokens`).
    OpenAi,
    /// Anthropic: `input_tokens`, `output_tokens`, `cache_*_input_tokens`.
    Anthropic,
}

impl Shape {
    /// The usage format of `api`'s responses (`count_tokens` reports no usage).
    #[must_use]
    pub fn of(api: crate::routes::Api) -> Self {
        use crate::routes::Api;
        match api {
            Api::ChatCompletions | Api::Completions | Api::Embeddings | Api::Responses => {
                Self::OpenAi
            }
            Api::Messages => Self::Anthropic,
            Api::CountTokens => Self::None,
        }
    }

    /// Whether `api`'s streams give usage only when asked (`stream_options.include_usage`).
    #[must_use]
    pub fn must_ask(api: crate::routes::Api) -> bool {
        use crate::routes::Api;
        matches!(api, Api::ChatCompletions | Api::Completions)
    }
}

/// What a relayed response body has carried so far.
#[derive(Debug, Default)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts about one body, not the states of one machine"
)]
pub struct UsageObserver {
    /// Body bytes received from the upstream.
    pub upstream_bytes: u64,
    /// Tokens reported so far.
    pub tokens: Tokens,
    /// Whether the upstream reported any usage.
    pub reported: bool,
    shape: Shape,
    sse: bool,
    /// Remove OpenAI's usage-only chunk from what the client receives.
    strip: bool,
    /// The unfinished SSE event.
    pending: BytesMut,
    /// Inside an event longer than [`MAX_EVENT`], relayed unread until it ends.
    oversized: bool,
    /// The last byte seen was a line feed (an event may end at the next one).
    after_newline: bool,
    /// The end of a JSON body.
    tail: Vec<u8>,
}

impl UsageObserver {
    /// An observer for a response in `shape`; `strip` removes the usage chunk the proxy
    /// asked for.
    #[must_use]
    pub fn new(shape: Shape, strip: bool) -> Self {
        Self {
            shape,
            strip,
            ..Self::default()
        }
    }

    /// Whether the proxy asked for the usage chunk and removes it.
    #[must_use]
    pub fn strips(&self) -> bool {
        self.strip
    }

    /// Told by the relay whether the response is an SSE stream.
    pub fn start(&mut self, sse: bool) {
        self.sse = sse;
        self.strip &= sse;
    }

    /// Sees one chunk; returns what the client receives (the chunk itself, unless a
    /// usage chunk is being removed: then the events around it, and an unfinished event
    /// waits for its end).
    pub fn relay(&mut self, chunk: Bytes) -> Bytes {
        self.upstream_bytes += chunk.len() as u64;
        if self.shape == Shape::None {
            return chunk;
        }
        if !self.sse {
            self.keep_tail(&chunk);
            return chunk;
        }
        let out = self.events(chunk.clone());
        if self.strip { out } else { chunk }
    }

    /// Sees one chunk without changing it (tests, and callers that cannot strip).
    pub fn observe(&mut self, chunk: &Bytes) {
        let strip = std::mem::replace(&mut self.strip, false);
        let _ = self.relay(chunk.clone());
        self.strip = strip;
    }

    /// At the end of the body: what is still held (an event without its blank line).
    pub fn flush(&mut self) -> Bytes {
        let rest = self.pending.split().freeze();
        if !rest.is_empty() && !self.oversized {
            self.event(&rest);
        }
        if self.strip { rest } else { Bytes::new() }
    }

    /// Reads a JSON body's usage from its tail; called once when the request finishes.
    pub fn finish(&mut self) {
        if self.sse || self.tail.is_empty() {
            return;
        }
        let tail = std::mem::take(&mut self.tail);
        let Some(start) = usage_object(&tail) else {
            return;
        };
        let mut de = serde_json::Deserializer::from_slice(&tail[start..]);
        match self.shape {
            Shape::OpenAi => {
                if let Ok(u) = OpenAiUsage::deserialize(&mut de) {
                    self.apply_openai(&u);
                }
            }
            Shape::Anthropic => {
                if let Ok(u) = AnthropicUsage::deserialize(&mut de) {
                    self.apply_anthropic(&u);
                }
            }
            Shape::None => {}
        }
    }

    fn keep_tail(&mut self, chunk: &[u8]) {
        if chunk.len() >= JSON_TAIL {
            self.tail.clear();
            self.tail
                .extend_from_slice(&chunk[chunk.len() - JSON_TAIL..]);
        } else {
            let over = (self.tail.len() + chunk.len()).saturating_sub(JSON_TAIL);
            self.tail.drain(..over);
            self.tail.extend_from_slice(chunk);
        }
    }

    /// Splits the stream into events, reads each, and returns the bytes to relay: the
    /// complete events (minus a removed usage chunk); an unfinished one stays in `pending`.
    fn events(&mut self, chunk: Bytes) -> Bytes {
        let mut buf = if self.pending.is_empty() {
            chunk
        } else {
            self.pending.extend_from_slice(&chunk);
            self.pending.split().freeze()
        };
        let mut out: Vec<Bytes> = Vec::new();
        if self.oversized {
            // Relay unread up to the end of the long event.
            let Some(end) = event_end(&buf, 0, self.after_newline) else {
                self.after_newline = buf.last() == Some(&b'\n');
                return buf;
            };
            self.oversized = false;
            self.after_newline = false;
            out.push(buf.split_to(end));
        }
        let mut start = 0;
        let mut kept_from = 0;
        while let Some(end) = event_end(&buf, start, false) {
            let drop = self.event(&buf[start..end]);
            if drop {
                out.push(buf.slice(kept_from..start));
                kept_from = end;
            }
            start = end;
        }
        out.push(buf.slice(kept_from..start));
        let rest = &buf[start..];
        if rest.len() > MAX_EVENT {
            self.oversized = true;
            self.after_newline = rest.last() == Some(&b'\n');
            out.push(buf.slice(start..));
        } else {
            self.pending.extend_from_slice(rest);
        }
        out.retain(|b| !b.is_empty());
        match out.len() {
            0 => Bytes::new(),
            1 => out.pop().unwrap_or_default(),
            // Only when a usage chunk was cut out of the middle of a chunk: once a stream.
            _ => Bytes::from(out.concat()),
        }
    }

    /// Reads one complete event; returns whether it is the usage chunk to remove.
    fn event(&mut self, event: &[u8]) -> bool {
        // Nearly every event carries no usage: one vectorised search skips it whole, before
        // any line splitting (callgrind: 41k of a stream's 142k instructions went there).
        if USAGE_FINDER.find(event).is_none() {
            return false;
        }
        let mut drop = false;
        for line in event.split(|&b| b == b'\n') {
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.trim_ascii();
            if usage_object(data).is_none() {
                continue;
            }
            match self.shape {
                Shape::OpenAi => {
                    if let Ok(chunk) = serde_json::from_slice::<OpenAiChunk>(data)
                        && let Some(u) = chunk.usage
                    {
                        self.apply_openai(&u);
                        drop |= self.strip && chunk.choices.is_none_or(|c| c.is_empty());
                    }
                }
                Shape::Anthropic => {
                    if let Ok(e) = serde_json::from_slice::<AnthropicEvent>(data) {
                        if let Some(u) = e.message.and_then(|m| m.usage) {
                            self.apply_anthropic(&u);
                        }
                        if let Some(u) = e.usage {
                            self.apply_anthropic(&u);
                        }
                    }
                }
                Shape::None => {}
            }
        }
        drop
    }

    fn apply_openai(&mut self, u: &OpenAiUsage) {
        let cached = u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        self.tokens = Tokens {
            input: u.prompt_tokens.unwrap_or(0).saturating_sub(cached),
            output: u.completion_tokens.unwrap_or(0),
            cache_read: cached,
            cache_write: 0,
        };
        self.reported = true;
    }

    /// Anthropic reports usage in parts: `message_start` has the input, `message_delta`
    /// the output so far (cumulative); a field present replaces the one seen before.
    fn apply_anthropic(&mut self, u: &AnthropicUsage) {
        let t = &mut self.tokens;
        for (field, value) in [
            (&mut t.input, u.input_tokens),
            (&mut t.output, u.output_tokens),
            (&mut t.cache_read, u.cache_read_input_tokens),
            (&mut t.cache_write, u.cache_creation_input_tokens),
        ] {
            if let Some(v) = value {
                *field = v;
            }
        }
        self.reported = true;
    }
}

/// The `stream_options` value that asks for the usage chunk.
const ASK: &str = "{\"include_usage\":true}";
/// [`ASK`] as a member inserted after the body's opening brace; spelled out (a test checks it
/// against [`ASK`]) so that it is not formatted on every streamed request.
const ASK_MEMBER: &str = "\"stream_options\":{\"include_usage\":true},";

/// For a streamed OpenAI request whose client did not ask for the final usage chunk: plans
/// the splice into `field` that asks for it (`stream_options.include_usage: true`, inserted
/// or merged into the client's `stream_options`), and returns `true` — the observer must then
/// remove that chunk. Only the small `stream_options` value is re-serialized; the rest of
/// the body is sliced, not copied (see [`crate::model_field::rewrite`]).
pub fn ask_for_usage(body: &[u8], field: &mut crate::model_field::ModelField<'_>) -> bool {
    if !field.stream {
        return false;
    }
    let Some((start, end)) = field.stream_options else {
        // Right after the opening brace: `{"stream_options":{…},` + the client's members.
        let Some(open) = body.iter().position(|&b| b == b'{') else {
            return false;
        };
        let value = Bytes::from_static(ASK_MEMBER.as_bytes());
        field.extra = Some(((open + 1, open + 1), value));
        return true;
    };
    let value = match serde_json::from_slice::<serde_json::Value>(&body[start..end]) {
        Ok(serde_json::Value::Null) => Bytes::from_static(ASK.as_bytes()),
        Ok(serde_json::Value::Object(mut options)) => {
            if options.get("include_usage") == Some(&serde_json::Value::Bool(true)) {
                return false;
            }
            options.insert("include_usage".into(), serde_json::Value::Bool(true));
            Bytes::from(serde_json::Value::Object(options).to_string())
        }
        // Not ours to fix: the upstream answers the client's mistake.
        _ => return false,
    };
    field.extra = Some(((start, end), value));
    true
}

/// The end (after the blank line) of the first event in `buf` from `from`. `after_newline`:
/// the byte before `buf` was a line feed.
fn event_end(buf: &[u8], from: usize, after_newline: bool) -> Option<usize> {
    if after_newline && from == 0 {
        if buf.first() == Some(&b'\n') {
            return Some(1);
        }
        if buf.starts_with(b"\r\n") {
            return Some(2);
        }
    }
    let mut i = from;
    // memchr, not a byte loop: every relayed byte of a stream passes through here.
    while let Some(nl) = memchr::memchr(b'\n', &buf[i..]) {
        let at = i + nl;
        let next = &buf[at + 1..];
        if next.first() == Some(&b'\n') {
            return Some(at + 2);
        }
        if next.starts_with(b"\r\n") {
            return Some(at + 3);
        }
        i = at + 1;
    }
    None
}

/// The key whose object value carries the token counts, quoted as it stands in JSON.
const USAGE_KEY: &[u8] = b"\"usage\"";
/// [`USAGE_KEY`]'s searchers, built once: `memmem::find` and `rfind` build one per call, which
/// cost more than the search itself on every event of every stream.
static USAGE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(USAGE_KEY));
static USAGE_FINDER_REV: LazyLock<FinderRev<'static>> = LazyLock::new(|| FinderRev::new(USAGE_KEY));

/// Where the object value of the last `"usage"` key in `text` starts, if its value is an
/// object (not `null`). Inside a JSON string the quotes would be escaped, so an unescaped
/// `"usage"` is a key.
fn usage_object(text: &[u8]) -> Option<usize> {
    let at = USAGE_FINDER_REV.rfind(text)?;
    let mut i = at + USAGE_KEY.len();
    while text.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if text.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    while text.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    (text.get(i) == Some(&b'{')).then_some(i)
}

#[derive(Deserialize)]
struct OpenAiChunk {
    usage: Option<OpenAiUsage>,
    choices: Option<Vec<IgnoredAny>>,
}

#[derive(Deserialize, Default)]
struct OpenAiUsage {
    // `/v1/responses` names them as Anthropic does.
    #[serde(alias = "input_tokens")]
    prompt_tokens: Option<u64>,
    #[serde(alias = "output_tokens")]
    completion_tokens: Option<u64>,
    #[serde(alias = "input_tokens_details")]
    prompt_tokens_details: Option<CachedDetails>,
}

#[derive(Deserialize, Default)]
struct CachedDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[allow(clippy::struct_field_names, reason = "Anthropic's field names")]
struct AnthropicUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct AnthropicEvent {
    message: Option<AnthropicMessage>,
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct AnthropicMessage {
    usage: Option<AnthropicUsage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inserted_member_is_the_asked_value() {
        assert_eq!(ASK_MEMBER, format!("\"stream_options\":{ASK},"));
    }

    fn run(shape: Shape, strip: bool, sse: bool, chunks: &[&str]) -> (UsageObserver, String) {
        let mut o = UsageObserver::new(shape, strip);
        o.start(sse);
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&o.relay(Bytes::copy_from_slice(c.as_bytes())));
        }
        out.extend_from_slice(&o.flush());
        o.finish();
        (o, String::from_utf8(out).unwrap())
    }

    const OPENAI_STREAM: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\ndata: [DONE]\n\n";

    #[test]
    fn openai_stream_usage_split_anywhere_and_stripped() {
        for cut in 0..OPENAI_STREAM.len() {
            let (a, b) = OPENAI_STREAM.split_at(cut);
            let (o, out) = run(Shape::OpenAi, true, true, &[a, b]);
            assert_eq!(
                o.tokens,
                Tokens {
                    input: 7,
                    output: 7,
                    cache_read: 4,
                    cache_write: 0
                },
                "cut {cut}"
            );
            assert_eq!(
                out,
                "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: [DONE]\n\n",
                "cut {cut}"
            );
            let (o, out) = run(Shape::OpenAi, false, true, &[a, b]);
            assert!(o.reported);
            assert_eq!(out, OPENAI_STREAM);
        }
    }

    fn asked(body: &str) -> (bool, String) {
        let bytes = Bytes::copy_from_slice(body.as_bytes());
        let mut field = crate::model_field::parse(&bytes).unwrap();
        let asked = ask_for_usage(&bytes, &mut field);
        let out = crate::model_field::rewrite(&bytes, &field, "up").to_bytes();
        (asked, String::from_utf8(out.to_vec()).unwrap())
    }

    #[test]
    fn asks_for_usage_only_when_needed() {
        let (a, out) = asked(r#" {"model":"m","stream":true,"messages":[]}"#);
        assert!(a);
        assert_eq!(
            out,
            r#" {"stream_options":{"include_usage":true},"model":"up","stream":true,"messages":[]}"#
        );
        let (a, out) = asked(r#"{"stream_options":{"x":1},"model":"m","stream":true}"#);
        assert!(a);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["stream_options"],
            serde_json::json!({"x":1,"include_usage":true})
        );
        assert_eq!(v["model"], "up");
        let (a, out) = asked(r#"{"model":"m","stream":true,"stream_options":null}"#);
        assert!(a);
        assert_eq!(
            out,
            r#"{"model":"up","stream":true,"stream_options":{"include_usage":true}}"#
        );
        let (a, _) =
            asked(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#);
        assert!(!a);
        let (a, out) = asked(r#"{"model":"m","stream":false}"#);
        assert!(!a);
        assert_eq!(out, r#"{"model":"up","stream":false}"#);
    }

    #[test]
    fn anthropic_stream() {
        let s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":3,\"cache_creation_input_tokens\":2,\"output_tokens\":1}}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":15}}\n\n";
        let (o, out) = run(Shape::Anthropic, false, true, &[&s[..50], &s[50..]]);
        assert_eq!(out, s);
        assert_eq!(
            o.tokens,
            Tokens {
                input: 25,
                output: 15,
                cache_read: 3,
                cache_write: 2
            }
        );
    }

    #[test]
    fn json_bodies() {
        let body = format!(
            "{{\"choices\":[{{\"message\":{{\"content\":\"{}\\\"usage\\\": {{\"}}}}],\"usage\": {{\"prompt_tokens\":5,\"completion_tokens\":9}}}}",
            "x".repeat(40_000)
        );
        let (o, out) = run(
            Shape::OpenAi,
            true,
            false,
            &[&body[..30_000], &body[30_000..]],
        );
        assert_eq!(out, body);
        assert_eq!((o.tokens.input, o.tokens.output), (5, 9));
        let (o, _) = run(
            Shape::Anthropic,
            false,
            false,
            &[
                "{\"content\":[],\"usage\":{\"input_tokens\":4,\"output_tokens\":6,\"cache_read_input_tokens\":1}}",
            ],
        );
        assert_eq!(
            o.tokens,
            Tokens {
                input: 4,
                output: 6,
                cache_read: 1,
                cache_write: 0
            }
        );
    }

    #[test]
    fn long_event_is_relayed_unread() {
        let long = format!("data: {}\n\n", "y".repeat(MAX_EVENT + 10));
        let chunks = [
            &long[..MAX_EVENT + 2],
            &long[MAX_EVENT + 2..],
            OPENAI_STREAM,
        ];
        let (o, out) = run(Shape::OpenAi, true, true, &chunks);
        assert!(out.starts_with(&long));
        assert!(!out.contains("prompt_tokens"));
        assert_eq!(o.tokens.output, 7);
    }
}
