//! An Anthropic Messages stream → OpenAI chat-completion chunks, one upstream event at a time:
//! a first `role: "assistant"` delta, each tool call with a stable 0-based index (its `id`,
//! `type` and `name` in its first delta, argument fragments after), `finish_reason` on the last
//! choice chunk, the usage chunk last when the client asked for it, then `[DONE]`.

use serde_json::{Value, json};

use super::response::{Usage, finish_reason, now};
use super::sse::{self, Event, KEEPALIVE};
use super::tool_ids;

/// What one Anthropic content block became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
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
    model: Value,
    created: u64,
    started: bool,
    ended: bool,
    /// Block kinds by Anthropic index.
    blocks: Vec<(u64, Block)>,
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
        Self {
            include_usage,
            id: "chatcmpl-ai-proxy".to_owned(),
            model: Value::String(String::new()),
            created: now(),
            started: false,
            ended: false,
            blocks: Vec::new(),
            next_tool: 0,
            stop: None,
            usage: Usage::default(),
            sent_text: false,
        }
    }

    fn chunk(&self, delta: &Value, finish: Option<&str>, out: &mut Vec<u8>) {
        let v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        sse::write(out, None, &v.to_string());
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            // No `content` yet: a reply of tool calls only has `content: null`, as in JSON.
            self.chunk(&json!({"role": "assistant"}), None, out);
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
        let Ok(v) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        let kind = v.get("type").and_then(Value::as_str).unwrap_or(&event.name);
        match kind {
            // The upstream's keepalive, as the OpenAI client's: an SSE comment.
            "ping" => out.extend_from_slice(KEEPALIVE),
            "message_start" => self.on_message_start(&v, out),
            "content_block_start" => self.on_block_start(&v, out),
            "content_block_delta" => self.on_block_delta(&v, out),
            "message_delta" => self.on_message_delta(&v),
            "message_stop" => self.complete(out),
            "error" => self.on_error(&v, out),
            _ => {}
        }
    }

    fn on_message_start(&mut self, v: &Value, out: &mut Vec<u8>) {
        let m = v.get("message").unwrap_or(&Value::Null);
        if let Some(id) = m.get("id").and_then(Value::as_str) {
            id.clone_into(&mut self.id);
        }
        if let Some(model) = m.get("model").and_then(Value::as_str) {
            self.model = model.into();
        }
        if let Some(u) = m.get("usage") {
            self.usage.merge_anthropic(u);
        }
        self.ensure_started(out);
    }

    fn on_block_start(&mut self, v: &Value, out: &mut Vec<u8>) {
        self.ensure_started(out);
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        let b = v.get("content_block").unwrap_or(&Value::Null);
        let block = match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                let t = b.get("text").and_then(Value::as_str).unwrap_or("");
                if !t.is_empty() {
                    self.sent_text = true;
                    self.chunk(&json!({"content": t}), None, out);
                }
                Block::Text
            }
            "thinking" => Block::Thinking,
            "tool_use" | "server_tool_use" => self.start_tool(b, out),
            _ => Block::Other,
        };
        self.blocks.push((index, block));
    }

    /// A tool call's first delta: its index, `id`, `type` and `name`, with empty arguments.
    fn start_tool(&mut self, b: &Value, out: &mut Vec<u8>) -> Block {
        let n = self.next_tool;
        self.next_tool += 1;
        let id = tool_ids::decode(b.get("id").and_then(Value::as_str).unwrap_or(""));
        self.chunk(
            &json!({"tool_calls": [{"index": n, "id": id, "type": "function",
                "function": {"name": b.get("name").and_then(Value::as_str).unwrap_or(""), "arguments": ""}}]}),
            None,
            out,
        );
        Block::Tool(n)
    }

    fn on_block_delta(&mut self, v: &Value, out: &mut Vec<u8>) {
        self.ensure_started(out);
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        let block = self
            .blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map_or(Block::Other, |(_, b)| *b);
        let d = v.get("delta").unwrap_or(&Value::Null);
        let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
        match (d.get("type").and_then(Value::as_str).unwrap_or(""), block) {
            ("text_delta", _) if !s("text").is_empty() => {
                self.sent_text = true;
                self.chunk(&json!({"content": s("text")}), None, out);
            }
            ("thinking_delta", _) if !s("thinking").is_empty() => {
                self.chunk(&json!({"reasoning_content": s("thinking")}), None, out);
            }
            ("input_json_delta", Block::Tool(n)) if !s("partial_json").is_empty() => {
                self.chunk(
                    &json!({"tool_calls": [{"index": n, "function": {"arguments": s("partial_json")}}]}),
                    None,
                    out,
                );
            }
            _ => {}
        }
    }

    fn on_message_delta(&mut self, v: &Value) {
        if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
            self.stop = Some(r.to_owned());
        }
        if let Some(u) = v.get("usage") {
            self.usage.merge_anthropic(u);
        }
    }

    fn on_error(&mut self, v: &Value, out: &mut Vec<u8>) {
        let message = v
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("upstream error");
        let kind = v
            .pointer("/error/type")
            .and_then(Value::as_str)
            .unwrap_or("api_error")
            .to_owned();
        self.fail_as(message, &kind, out);
    }

    fn complete(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        // A reply with neither text nor tool calls has `content: ""` in JSON.
        let delta = if self.sent_text || self.next_tool > 0 {
            json!({})
        } else {
            json!({"content": ""})
        };
        self.chunk(&delta, Some(finish_reason(self.stop.as_deref())), out);
        if self.include_usage {
            let v = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage.to_openai()
            });
            sse::write(out, None, &v.to_string());
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
        let v = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
        sse::write(out, None, &v.to_string());
    }
}
