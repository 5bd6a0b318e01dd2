//! An OpenAI chat-completions stream → Anthropic Messages events, one upstream event at a
//! time: one `message_start`, blocks with contiguous indexes and one open at a time (a new
//! block on every switch between thinking, text and a tool call), tool arguments only as
//! `input_json_delta` (`{}` when none came), then `message_delta` with the stop reason and
//! usage and `message_stop`. Tool calls are told apart by `id` when the upstream omits
//! `index` or sends 0 for every call.

use serde_json::{Value, json};

use super::response::{Usage, anthropic_id, stop_reason};
use super::sse::{self, Event};
use super::tool_ids;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
    /// A tool call: its slot in `tools`.
    Tool(usize),
}

#[derive(Debug)]
struct ToolSlot {
    id: String,
    index: Option<u64>,
    /// Whether any argument bytes were sent.
    args: bool,
}

/// The translation state of one stream.
#[derive(Debug, Default)]
pub struct State {
    started: bool,
    ended: bool,
    next_block: u64,
    open: Option<Open>,
    tools: Vec<ToolSlot>,
    finish: Option<String>,
    usage: Usage,
}

fn emit(out: &mut Vec<u8>, name: &str, v: &Value) {
    sse::write(out, Some(name), &v.to_string());
}

impl State {
    /// Translates one upstream event into `out`.
    pub fn on_event(&mut self, event: &Event, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            self.complete(out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(e) = chunk.get("error") {
            let message = e
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| e.as_str())
                .unwrap_or("upstream error");
            self.fail(message, out);
            return;
        }
        if !self.started {
            self.start(&chunk, out);
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Usage::from_openai(u);
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        let reasoning = delta
            .get("reasoning_content")
            .or_else(|| delta.get("reasoning"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !reasoning.is_empty() {
            self.ensure(Open::Thinking, out);
            self.delta(
                &json!({"type": "thinking_delta", "thinking": reasoning}),
                out,
            );
        }
        let text = delta.get("content").and_then(Value::as_str).unwrap_or("");
        if !text.is_empty() {
            self.ensure(Open::Text, out);
            self.delta(&json!({"type": "text_delta", "text": text}), out);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.tool_call(call, out);
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(f.to_owned());
        }
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        self.started = true;
        emit(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": anthropic_id(chunk.get("id").and_then(Value::as_str)),
                "type": "message",
                "role": "assistant",
                "model": chunk.get("model").and_then(Value::as_str).unwrap_or(""),
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}
            }}),
        );
    }

    /// The slot a tool-call delta belongs to, by `id` first, then by `index`.
    fn slot_for(&mut self, call: &Value) -> (usize, bool) {
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let index = call.get("index").and_then(Value::as_u64);
        if let Some(id) = id {
            if let Some(i) = self.tools.iter().position(|t| t.id == id) {
                return (i, false);
            }
        } else if let Some(i) = self
            .tools
            .iter()
            .rposition(|t| index.is_none() || t.index == index)
        {
            return (i, false);
        }
        let id = id.map_or_else(|| format!("toolu_aipx_{}", self.tools.len()), str::to_owned);
        self.tools.push(ToolSlot {
            id,
            index,
            args: false,
        });
        (self.tools.len() - 1, true)
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let (slot, new) = self.slot_for(call);
        if new {
            self.close(out);
            let id = tool_ids::encode(&self.tools[slot].id).into_owned();
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            self.open_block(
                Open::Tool(slot),
                &json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                out,
            );
        }
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        // Fragments of a call whose block was closed (calls interleaved by the upstream)
        // cannot be sent any more: Anthropic blocks do not reopen.
        if !args.is_empty() && self.open == Some(Open::Tool(slot)) {
            self.tools[slot].args = true;
            self.delta(
                &json!({"type": "input_json_delta", "partial_json": args}),
                out,
            );
        }
    }

    fn ensure(&mut self, want: Open, out: &mut Vec<u8>) {
        if self.open == Some(want) {
            return;
        }
        self.close(out);
        let block = match want {
            Open::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            _ => json!({"type": "text", "text": ""}),
        };
        self.open_block(want, &block, out);
    }

    fn open_block(&mut self, kind: Open, block: &Value, out: &mut Vec<u8>) {
        emit(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.next_block, "content_block": block}),
        );
        self.open = Some(kind);
    }

    fn delta(&self, delta: &Value, out: &mut Vec<u8>) {
        emit(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.next_block, "delta": delta}),
        );
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        if let Open::Tool(slot) = open
            && !self.tools[slot].args
        {
            self.delta(
                &json!({"type": "input_json_delta", "partial_json": "{}"}),
                out,
            );
        }
        emit(
            out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": self.next_block}),
        );
        self.next_block += 1;
    }

    /// `[DONE]` (or the end of a stream that gave its finish reason): the closing events.
    fn complete(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.fail("upstream stream ended before any data", out);
            return;
        }
        self.close(out);
        emit(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null},
                "usage": self.usage.to_anthropic()}),
        );
        emit(out, "message_stop", &json!({"type": "message_stop"}));
        self.ended = true;
    }

    /// The upstream body ended.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if self.finish.is_some() {
            self.complete(out);
        } else {
            self.fail(
                "upstream stream ended before the response was complete",
                out,
            );
        }
    }

    /// A mid-stream error: Anthropic's `error` event, and no `message_stop`.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        emit(
            out,
            "error",
            &json!({"type": "error", "error": {"type": "api_error", "message": message}}),
        );
    }
}
