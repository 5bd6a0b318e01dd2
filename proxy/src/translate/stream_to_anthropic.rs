//! An OpenAI chat-completions stream → Anthropic Messages events, one upstream event at a
//! time: one `message_start`, blocks with contiguous indexes and one open at a time (a new
//! block on every switch between thinking, text and a tool call), tool arguments only as
//! `input_json_delta` (`{}` when none came), then `message_delta` with the stop reason and
//! usage and `message_stop`. Tool calls are told apart by `id` when the upstream omits
//! `index` or sends 0 for every call.
//!
//! Parallel tool calls whose fragments an upstream interleaves are reordered, since an
//! Anthropic block cannot reopen: the open call keeps streaming, and a later call waits with
//! its fragments held until the open call's arguments form a complete JSON value (nothing
//! valid can follow one), then opens with what it held and streams on. Calls sent one after
//! the other (the usual case) are never held. What is held is bounded by [`MAX_HELD_ARGS`].

use serde_json::{Value, json};

use super::response::{Usage, anthropic_id, stop_reason};
use super::sse::{self, Event};
use super::tool_ids;

/// The most argument bytes held for tool calls waiting for the open one to end; past it the
/// stream ends with an error event.
pub const MAX_HELD_ARGS: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
    /// A tool call: its slot in `tools`.
    Tool(usize),
}

/// Where a tool call's block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not opened yet: another call's block is open and not finished.
    Waiting,
    Open,
    Closed,
}

/// Whether a JSON text seen piece by piece is complete: an object or array whose closing
/// bracket came (strings and escapes skipped).
#[derive(Debug, Default, Clone, Copy)]
struct JsonEnd {
    depth: u32,
    in_string: bool,
    escaped: bool,
    complete: bool,
}

impl JsonEnd {
    fn feed(&mut self, text: &str) {
        for b in text.bytes() {
            if self.complete {
                return;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    self.complete = self.depth == 0;
                }
                _ => {}
            }
        }
    }
}

#[derive(Debug)]
struct ToolSlot {
    id: String,
    index: Option<u64>,
    name: String,
    phase: Phase,
    /// Whether any argument bytes were sent.
    args: bool,
    /// Fragments that came while the call was waiting.
    held: String,
    json: JsonEnd,
}

/// The translation state of one stream.
#[derive(Debug, Default)]
pub struct State {
    started: bool,
    ended: bool,
    next_block: u64,
    open: Option<Open>,
    tools: Vec<ToolSlot>,
    /// Bytes in the `held` buffers.
    held: usize,
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
        if event.comment {
            // The upstream's keepalive, as the Anthropic client's.
            out.extend_from_slice(sse::PING);
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
    fn slot_for(&mut self, call: &Value) -> usize {
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let index = call.get("index").and_then(Value::as_u64);
        if let Some(id) = id {
            if let Some(i) = self.tools.iter().position(|t| t.id == id) {
                return i;
            }
        } else if let Some(i) = self
            .tools
            .iter()
            .rposition(|t| index.is_none() || t.index == index)
        {
            return i;
        }
        let id = id.map_or_else(|| format!("toolu_aipx_{}", self.tools.len()), str::to_owned);
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        self.tools.push(ToolSlot {
            id,
            index,
            name,
            phase: Phase::Waiting,
            args: false,
            held: String::new(),
            json: JsonEnd::default(),
        });
        self.tools.len() - 1
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let slot = self.slot_for(call);
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        match self.tools[slot].phase {
            Phase::Waiting => {
                if self.held + args.len() > MAX_HELD_ARGS {
                    self.fail(
                        &format!("upstream interleaved parallel tool calls with more than {MAX_HELD_ARGS} bytes of arguments to reorder"),
                        out,
                    );
                    return;
                }
                self.held += args.len();
                self.tools[slot].held.push_str(args);
            }
            Phase::Open => self.send_args(slot, args, out),
            Phase::Closed if args.is_empty() => {}
            Phase::Closed => {
                // Only after text or reasoning came between the calls: the block is gone.
                self.fail(
                    "upstream sent tool-call arguments after its later text; the call cannot be completed",
                    out,
                );
                return;
            }
        }
        self.advance(out);
    }

    fn send_args(&mut self, slot: usize, args: &str, out: &mut Vec<u8>) {
        if args.is_empty() {
            return;
        }
        let t = &mut self.tools[slot];
        t.args = true;
        t.json.feed(args);
        self.delta(
            &json!({"type": "input_json_delta", "partial_json": args}),
            out,
        );
    }

    /// Opens the next waiting call when nothing is open but text or thinking, or when the
    /// open call's arguments are complete.
    fn advance(&mut self, out: &mut Vec<u8>) {
        while let Some(next) = self.tools.iter().position(|t| t.phase == Phase::Waiting) {
            match self.open {
                Some(Open::Tool(open)) if !self.tools[open].json.complete => return,
                _ => self.open_tool(next, out),
            }
        }
    }

    /// Closes what is open and opens call `slot`, with the fragments it held.
    fn open_tool(&mut self, slot: usize, out: &mut Vec<u8>) {
        self.close(out);
        let t = &mut self.tools[slot];
        t.phase = Phase::Open;
        let held = std::mem::take(&mut t.held);
        self.held -= held.len();
        let block =
            json!({"type": "tool_use", "id": tool_ids::encode(&t.id), "name": t.name, "input": {}});
        self.open_block(Open::Tool(slot), &block, out);
        self.send_args(slot, &held, out);
    }

    /// Every waiting call, each opened and closed in turn: before text, thinking or the end.
    fn flush_tools(&mut self, out: &mut Vec<u8>) {
        while let Some(next) = self.tools.iter().position(|t| t.phase == Phase::Waiting) {
            self.open_tool(next, out);
        }
        self.close(out);
    }

    fn ensure(&mut self, want: Open, out: &mut Vec<u8>) {
        if self.open == Some(want) {
            return;
        }
        self.flush_tools(out);
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
        if let Open::Tool(slot) = open {
            self.tools[slot].phase = Phase::Closed;
            if !self.tools[slot].args {
                self.delta(
                    &json!({"type": "input_json_delta", "partial_json": "{}"}),
                    out,
                );
            }
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
        self.flush_tools(out);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(calls: &Value) -> Event {
        Event {
            data: json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": calls}}]})
                .to_string(),
            ..Event::default()
        }
    }

    /// A waiting call holds up to `MAX_HELD_ARGS` bytes; one more ends the stream with an
    /// error event.
    #[test]
    fn held_arguments_are_bounded() {
        for (extra, fails) in [(0, false), (1, true)] {
            let mut state = State::default();
            let mut out = Vec::new();
            state.on_event(
                &chunk(&json!([{"index": 0, "id": "a", "function": {"name": "f"}}])),
                &mut out,
            );
            let big = "x".repeat(MAX_HELD_ARGS - 2 + extra);
            let calls = json!([{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}},
                {"index": 1, "function": {"arguments": big}}]);
            state.on_event(&chunk(&calls), &mut out);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.contains("event: error"), fails, "extra {extra}");
            assert_eq!(state.ended, fails);
        }
    }
}
