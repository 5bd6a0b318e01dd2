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

use super::json::{self, First, List, Obj, Str, U64, fields};
use super::response::{OpenaiUsage, Usage, anthropic_id, stop_reason};
use super::sse::{self, Event};
use super::tool_ids;

/// The most argument bytes held for tool calls waiting for the open one to end; past it the
/// stream ends with an error event.
pub const MAX_HELD_ARGS: usize = 16 * 1024 * 1024;

/// What is read of an upstream chunk.
#[derive(Debug, Default)]
struct Chunk<'de> {
    error: Obj<ErrorBody<'de>>,
    /// The `error` field itself, when a string.
    error_text: Str<'de>,
    id: Str<'de>,
    model: Str<'de>,
    usage: Obj<OpenaiUsage>,
    choices: First<Obj<Choice<'de>>>,
}

impl<'de> json::Fields<'de> for Chunk<'de> {
    fn field<A: serde::de::MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match key {
            // Read once, as a string or as an object, for both views of it.
            "error" => {
                let raw: &serde_json::value::RawValue = map.next_value()?;
                self.error = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
                self.error_text =
                    serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
            }
            "id" => self.id = map.next_value()?,
            "model" => self.model = map.next_value()?,
            "usage" => self.usage = map.next_value()?,
            "choices" => self.choices = map.next_value()?,
            _ => {
                map.next_value::<json::Skip>()?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct ErrorBody<'de> {
    message: Str<'de>,
}
fields!(ErrorBody<'de> { "message" => message });

#[derive(Debug, Default)]
struct Choice<'de> {
    delta: Obj<Delta<'de>>,
    finish_reason: Str<'de>,
}
fields!(Choice<'de> { "delta" => delta, "finish_reason" => finish_reason });

#[derive(Debug, Default)]
struct Delta<'de> {
    reasoning_content: Str<'de>,
    reasoning: Str<'de>,
    content: Str<'de>,
    tool_calls: List<Obj<Call<'de>>>,
}
fields!(Delta<'de> { "reasoning_content" => reasoning_content, "reasoning" => reasoning, "content" => content, "tool_calls" => tool_calls });

#[derive(Debug, Default)]
struct Call<'de> {
    id: Str<'de>,
    index: U64,
    function: Obj<Function<'de>>,
}
fields!(Call<'de> { "id" => id, "index" => index, "function" => function });

#[derive(Debug, Default)]
struct Function<'de> {
    name: Str<'de>,
    arguments: Str<'de>,
}
fields!(Function<'de> { "name" => name, "arguments" => arguments });

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

/// The kinds of `content_block_delta`, with the key their text goes under.
#[derive(Debug, Clone, Copy)]
enum DeltaKind {
    Thinking,
    Text,
    InputJson,
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
        let Some(chunk) = json::parse::<Chunk>(data) else {
            return;
        };
        let chunk = chunk.fields;
        if chunk.error_text.present {
            let message = chunk
                .error
                .fields
                .message
                .get()
                .or_else(|| chunk.error_text.get())
                .unwrap_or("upstream error");
            self.fail(message, out);
            return;
        }
        if !self.started {
            self.start(&chunk, out);
        }
        if chunk.usage.is_object {
            self.usage = chunk.usage.fields.usage();
        }
        let Some(choice) = chunk.choices.0 else {
            return;
        };
        let choice = choice.fields;
        let delta = &choice.delta.fields;
        let reasoning = if delta.reasoning_content.present {
            delta.reasoning_content.or_empty()
        } else {
            delta.reasoning.or_empty()
        };
        if !reasoning.is_empty() {
            self.ensure(Open::Thinking, out);
            self.delta(DeltaKind::Thinking, reasoning, out);
        }
        let text = delta.content.or_empty();
        if !text.is_empty() {
            self.ensure(Open::Text, out);
            self.delta(DeltaKind::Text, text, out);
        }
        for call in &delta.tool_calls.0 {
            self.tool_call(&call.fields, out);
        }
        if let Some(f) = choice.finish_reason.get() {
            self.finish = Some(f.to_owned());
        }
    }

    fn start(&mut self, chunk: &Chunk, out: &mut Vec<u8>) {
        self.started = true;
        json::event(out, Some("message_start"), |out| {
            out.extend_from_slice(b"{\"message\":{\"content\":[],\"id\":");
            json::string(out, &anthropic_id(chunk.id.get()));
            out.extend_from_slice(b",\"model\":");
            json::string(out, chunk.model.or_empty());
            out.extend_from_slice(
                b",\"role\":\"assistant\",\"stop_reason\":null,\"stop_sequence\":null,\"type\":\"message\",\"usage\":{\"input_tokens\":0,\"output_tokens\":0}},\"type\":\"message_start\"}",
            );
        });
    }

    /// The slot a tool-call delta belongs to, by `id` first, then by `index`.
    fn slot_for(&mut self, call: &Call) -> usize {
        let id = call.id.get().filter(|s| !s.is_empty());
        let index = call.index.0;
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
        let name = call.function.fields.name.or_empty().to_owned();
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

    fn tool_call(&mut self, call: &Call, out: &mut Vec<u8>) {
        let slot = self.slot_for(call);
        let args = call.function.fields.arguments.or_empty();
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
        self.delta(DeltaKind::InputJson, args, out);
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
        let (next, id, name) = (self.next_block, &t.id, &t.name);
        block_start(out, next, |out| {
            out.extend_from_slice(b"{\"id\":");
            json::string(out, &tool_ids::encode(id));
            out.extend_from_slice(b",\"input\":{},\"name\":");
            json::string(out, name);
            out.extend_from_slice(b",\"type\":\"tool_use\"}");
        });
        self.open = Some(Open::Tool(slot));
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
        let block: &[u8] = match want {
            Open::Thinking => b"{\"signature\":\"\",\"thinking\":\"\",\"type\":\"thinking\"}",
            _ => b"{\"text\":\"\",\"type\":\"text\"}",
        };
        block_start(out, self.next_block, |out| out.extend_from_slice(block));
        self.open = Some(want);
    }

    fn delta(&self, kind: DeltaKind, text: &str, out: &mut Vec<u8>) {
        let (key, tail): (&[u8], &[u8]) = match kind {
            DeltaKind::Thinking => (b"thinking", b"thinking_delta"),
            DeltaKind::Text => (b"text", b"text_delta"),
            DeltaKind::InputJson => (b"partial_json", b"input_json_delta"),
        };
        json::event(out, Some("content_block_delta"), |out| {
            out.extend_from_slice(b"{\"delta\":{\"");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\":");
            json::string(out, text);
            out.extend_from_slice(b",\"type\":\"");
            out.extend_from_slice(tail);
            out.extend_from_slice(b"\"},\"index\":");
            json::number(out, self.next_block);
            out.extend_from_slice(b",\"type\":\"content_block_delta\"}");
        });
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        if let Open::Tool(slot) = open {
            self.tools[slot].phase = Phase::Closed;
            if !self.tools[slot].args {
                self.delta(DeltaKind::InputJson, "{}", out);
            }
        }
        json::event(out, Some("content_block_stop"), |out| {
            out.extend_from_slice(b"{\"index\":");
            json::number(out, self.next_block);
            out.extend_from_slice(b",\"type\":\"content_block_stop\"}");
        });
        self.next_block += 1;
    }

    /// `[DONE]` (or the end of a stream that gave its finish reason): the closing events.
    fn complete(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.fail("upstream stream ended before any data", out);
            return;
        }
        self.flush_tools(out);
        let (reason, usage) = (stop_reason(self.finish.as_deref()), self.usage);
        json::event(out, Some("message_delta"), |out| {
            out.extend_from_slice(b"{\"delta\":{\"stop_reason\":");
            json::string(out, reason);
            out.extend_from_slice(
                b",\"stop_sequence\":null},\"type\":\"message_delta\",\"usage\":",
            );
            usage.write_anthropic(out);
            out.push(b'}');
        });
        sse::write(out, Some("message_stop"), "{\"type\":\"message_stop\"}");
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
        json::event(out, Some("error"), |out| {
            out.extend_from_slice(b"{\"error\":{\"message\":");
            json::string(out, message);
            out.extend_from_slice(b",\"type\":\"api_error\"},\"type\":\"error\"}");
        });
    }
}

/// A `content_block_start` at `index` whose block `block` writes.
fn block_start(out: &mut Vec<u8>, index: u64, block: impl FnOnce(&mut Vec<u8>)) {
    json::event(out, Some("content_block_start"), |out| {
        out.extend_from_slice(b"{\"content_block\":");
        block(out);
        out.extend_from_slice(b",\"index\":");
        json::number(out, index);
        out.extend_from_slice(b",\"type\":\"content_block_start\"}");
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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
