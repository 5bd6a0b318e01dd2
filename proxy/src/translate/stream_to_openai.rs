//! An Anthropic Messages stream → OpenAI chat-completion chunks, one upstream event at a time:
//! a first `role: "assistant"` delta, each tool call with a stable 0-based index (its `id`,
//! `type` and `name` in its first delta, argument fragments after), `finish_reason` on the last
//! choice chunk, the usage chunk last when the client asked for it, then `[DONE]`.

use super::json::{self, Obj, Str, U64, fields};
use super::response::{AnthropicUsage, Usage, finish_reason, now};
use super::sse::{self, Event, KEEPALIVE};
use super::tool_ids;

/// What is read of an upstream event.
#[derive(Debug, Default)]
struct Upstream<'de> {
    kind: Str<'de>,
    message: Obj<Message<'de>>,
    index: U64,
    content_block: Obj<Block<'de>>,
    delta: Obj<Delta<'de>>,
    usage: Obj<AnthropicUsage>,
    error: Obj<Error<'de>>,
}
fields!(Upstream<'de> { "type" => kind, "message" => message, "index" => index, "content_block" => content_block, "delta" => delta, "usage" => usage, "error" => error });

#[derive(Debug, Default)]
struct Message<'de> {
    id: Str<'de>,
    model: Str<'de>,
    usage: Obj<AnthropicUsage>,
}
fields!(Message<'de> { "id" => id, "model" => model, "usage" => usage });

#[derive(Debug, Default)]
struct Block<'de> {
    kind: Str<'de>,
    text: Str<'de>,
    id: Str<'de>,
    name: Str<'de>,
}
fields!(Block<'de> { "type" => kind, "text" => text, "id" => id, "name" => name });

#[derive(Debug, Default)]
struct Delta<'de> {
    kind: Str<'de>,
    text: Str<'de>,
    thinking: Str<'de>,
    partial_json: Str<'de>,
    stop_reason: Str<'de>,
}
fields!(Delta<'de> { "type" => kind, "text" => text, "thinking" => thinking, "partial_json" => partial_json, "stop_reason" => stop_reason });

#[derive(Debug, Default)]
struct Error<'de> {
    message: Str<'de>,
    kind: Str<'de>,
}
fields!(Error<'de> { "message" => message, "type" => kind });

/// What one Anthropic content block became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    /// A tool call, with its OpenAI index.
    Tool(u64),
    Other,
}

/// The translation state of one stream.
#[derive(Debug)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent facts about one stream: asked for usage, started, ended, text sent"
)]
pub struct State {
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    /// What every chunk ends with after its `choices`: `created`, `id`, `model`, `object`
    /// (written once, again when `id` or `model` change).
    tail: Vec<u8>,
    started: bool,
    ended: bool,
    /// Block kinds by Anthropic index.
    blocks: Vec<(u64, BlockKind)>,
    next_tool: u64,
    stop: Option<String>,
    usage: Usage,
    /// Whether any `content` was sent.
    sent_text: bool,
}

impl State {
    /// A new stream; `include_usage` when the client asked for the usage chunk.
    #[must_use]
    pub fn new(include_usage: bool) -> Self {
        let mut state = Self {
            include_usage,
            id: "chatcmpl-ai-proxy".to_owned(),
            model: String::new(),
            created: now(),
            tail: Vec::new(),
            started: false,
            ended: false,
            blocks: Vec::new(),
            next_tool: 0,
            stop: None,
            usage: Usage::default(),
            sent_text: false,
        };
        state.write_tail();
        state
    }

    fn write_tail(&mut self) {
        let out = &mut self.tail;
        out.clear();
        out.extend_from_slice(b",\"created\":");
        json::number(out, self.created);
        out.extend_from_slice(b",\"id\":");
        json::string(out, &self.id);
        out.extend_from_slice(b",\"model\":");
        json::string(out, &self.model);
        out.extend_from_slice(b",\"object\":\"chat.completion.chunk\"");
    }

    /// One chunk whose `delta` object `delta` writes.
    fn chunk(&self, finish: Option<&str>, out: &mut Vec<u8>, delta: impl FnOnce(&mut Vec<u8>)) {
        json::event(out, None, |out| {
            out.extend_from_slice(b"{\"choices\":[{\"delta\":");
            delta(out);
            out.extend_from_slice(b",\"finish_reason\":");
            match finish {
                Some(f) => json::string(out, f),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"index\":0,\"logprobs\":null}]");
            out.extend_from_slice(&self.tail);
            out.push(b'}');
        });
    }

    /// A chunk whose delta is `{"key": text}`.
    fn text_chunk(&self, key: &[u8], text: &str, out: &mut Vec<u8>) {
        self.chunk(None, out, |out| {
            out.extend_from_slice(b"{\"");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\":");
            json::string(out, text);
            out.push(b'}');
        });
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            // No `content` yet: a reply of tool calls only has `content: null`, as in JSON.
            self.chunk(None, out, |out| {
                out.extend_from_slice(b"{\"role\":\"assistant\"}");
            });
        }
    }

    /// Translates one upstream event into `out`.
    pub fn on_event(&mut self, event: &Event, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if event.comment {
            out.extend_from_slice(KEEPALIVE);
            return;
        }
        let Some(v) = json::parse::<Upstream>(&event.data) else {
            return;
        };
        let v = v.fields;
        match v.kind.get().unwrap_or(&event.name) {
            // The upstream's keepalive, as the OpenAI client's: an SSE comment.
            "ping" => out.extend_from_slice(KEEPALIVE),
            "message_start" => self.on_message_start(&v.message.fields, out),
            "content_block_start" => self.on_block_start(&v, out),
            "content_block_delta" => self.on_block_delta(&v, out),
            "message_delta" => self.on_message_delta(&v),
            "message_stop" => self.complete(out),
            "error" => self.on_error(&v.error.fields, out),
            _ => {}
        }
    }

    fn on_message_start(&mut self, m: &Message, out: &mut Vec<u8>) {
        if let Some(id) = m.id.get() {
            id.clone_into(&mut self.id);
        }
        if let Some(model) = m.model.get() {
            model.clone_into(&mut self.model);
        }
        self.write_tail();
        self.usage.merge_anthropic_counts(m.usage.fields.counts());
        self.ensure_started(out);
    }

    fn on_block_start(&mut self, v: &Upstream, out: &mut Vec<u8>) {
        self.ensure_started(out);
        let index = v.index.0.unwrap_or(0);
        let b = &v.content_block.fields;
        let block = match b.kind.or_empty() {
            "text" => {
                let t = b.text.or_empty();
                if !t.is_empty() {
                    self.sent_text = true;
                    self.text_chunk(b"content", t, out);
                }
                BlockKind::Text
            }
            "thinking" => BlockKind::Thinking,
            "tool_use" | "server_tool_use" => self.start_tool(b, out),
            _ => BlockKind::Other,
        };
        self.blocks.push((index, block));
    }

    /// A tool call's first delta: its index, `id`, `type` and `name`, with empty arguments.
    fn start_tool(&mut self, b: &Block, out: &mut Vec<u8>) -> BlockKind {
        let n = self.next_tool;
        self.next_tool += 1;
        let id = tool_ids::decode(b.id.or_empty());
        self.chunk(None, out, |out| {
            out.extend_from_slice(b"{\"tool_calls\":[{\"function\":{\"arguments\":\"\",\"name\":");
            json::string(out, b.name.or_empty());
            out.extend_from_slice(b"},\"id\":");
            json::string(out, &id);
            out.extend_from_slice(b",\"index\":");
            json::number(out, n);
            out.extend_from_slice(b",\"type\":\"function\"}]}");
        });
        BlockKind::Tool(n)
    }

    fn on_block_delta(&mut self, v: &Upstream, out: &mut Vec<u8>) {
        self.ensure_started(out);
        let index = v.index.0.unwrap_or(0);
        let block = self
            .blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map_or(BlockKind::Other, |(_, b)| *b);
        let d = &v.delta.fields;
        match (d.kind.or_empty(), block) {
            ("text_delta", _) if !d.text.or_empty().is_empty() => {
                self.sent_text = true;
                self.text_chunk(b"content", d.text.or_empty(), out);
            }
            ("thinking_delta", _) if !d.thinking.or_empty().is_empty() => {
                self.text_chunk(b"reasoning_content", d.thinking.or_empty(), out);
            }
            ("input_json_delta", BlockKind::Tool(n)) if !d.partial_json.or_empty().is_empty() => {
                self.chunk(None, out, |out| {
                    out.extend_from_slice(b"{\"tool_calls\":[{\"function\":{\"arguments\":");
                    json::string(out, d.partial_json.or_empty());
                    out.extend_from_slice(b"},\"index\":");
                    json::number(out, n);
                    out.extend_from_slice(b"}]}");
                });
            }
            _ => {}
        }
    }

    fn on_message_delta(&mut self, v: &Upstream) {
        if let Some(r) = v.delta.fields.stop_reason.get() {
            self.stop = Some(r.to_owned());
        }
        self.usage.merge_anthropic_counts(v.usage.fields.counts());
    }

    fn on_error(&mut self, e: &Error, out: &mut Vec<u8>) {
        let message = e.message.get().unwrap_or("upstream error");
        let kind = e.kind.get().unwrap_or("api_error");
        self.fail_as(message, kind, out);
    }

    fn complete(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        // A reply with neither text nor tool calls has `content: ""` in JSON.
        let delta: &[u8] = if self.sent_text || self.next_tool > 0 {
            b"{}"
        } else {
            b"{\"content\":\"\"}"
        };
        self.chunk(Some(finish_reason(self.stop.as_deref())), out, |out| {
            out.extend_from_slice(delta);
        });
        if self.include_usage {
            json::event(out, None, |out| {
                out.extend_from_slice(b"{\"choices\":[]");
                out.extend_from_slice(&self.tail);
                out.extend_from_slice(b",\"usage\":");
                self.usage.write_openai(out);
                out.push(b'}');
            });
        }
        sse::write(out, None, "[DONE]");
        self.ended = true;
    }

    /// The upstream body ended.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.ended {
            self.fail("upstream stream ended before message_stop", out);
        }
    }

    /// A mid-stream error: a `data: {"error": …}` chunk, then the end.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        self.fail_as(message, "api_error", out);
    }

    fn fail_as(&mut self, message: &str, kind: &str, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        json::event(out, None, |out| {
            out.extend_from_slice(b"{\"error\":{\"code\":null,\"message\":");
            json::string(out, message);
            out.extend_from_slice(b",\"param\":null,\"type\":");
            json::string(out, kind);
            out.extend_from_slice(b"}}");
        });
    }
}
