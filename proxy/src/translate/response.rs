//! JSON (non-streamed) responses, both ways, with stop reasons and usage (cache tokens
//! included); an error status gets its body rewritten into the client's error shape.

use serde_json::{Value, json};

use super::json::{self, First, List, Obj, Present, Str, U64, fields};
use super::{Direction, errors, tool_ids};

/// OpenAI `finish_reason` for an Anthropic `stop_reason` (unknown → `stop`).
#[must_use]
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic `stop_reason` for an OpenAI `finish_reason` (unknown or null → `end_turn`).
#[must_use]
pub fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Token counts in Anthropic's terms (`input` excludes cache reads and writes).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Uncached input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens read from the cache.
    pub cache_read: u64,
    /// Input tokens written to the cache.
    pub cache_write: u64,
}

impl Usage {
    /// From an OpenAI `usage` object (`prompt_tokens` includes `cached_tokens`).
    #[must_use]
    pub fn from_openai(u: &Value) -> Self {
        let n = |p: &str| u.pointer(p).and_then(Value::as_u64);
        Self::from_openai_counts(
            n("/prompt_tokens"),
            n("/prompt_tokens_details/cached_tokens"),
            n("/completion_tokens"),
        )
    }

    /// From an OpenAI `usage` object's `prompt_tokens`, `cached_tokens` and
    /// `completion_tokens` (absent: 0).
    #[must_use]
    pub fn from_openai_counts(
        prompt: Option<u64>,
        cached: Option<u64>,
        output: Option<u64>,
    ) -> Self {
        let (prompt, cached) = (prompt.unwrap_or(0), cached.unwrap_or(0));
        Self {
            input: prompt.saturating_sub(cached),
            output: output.unwrap_or(0),
            cache_read: cached,
            cache_write: 0,
        }
    }

    /// Over `self`, the counts an Anthropic `usage` object gave (absent ones keep their value).
    pub fn merge_anthropic_counts(&mut self, counts: [Option<u64>; 4]) {
        let [input, output, cache_read, cache_write] = counts;
        self.input = input.unwrap_or(self.input);
        self.output = output.unwrap_or(self.output);
        self.cache_read = cache_read.unwrap_or(self.cache_read);
        self.cache_write = cache_write.unwrap_or(self.cache_write);
    }

    /// From an Anthropic `usage` object, over `self` (fields absent keep their value).
    pub fn merge_anthropic(&mut self, u: &Value) {
        let n = |k: &str| u.get(k).and_then(Value::as_u64);
        self.merge_anthropic_counts([
            n("input_tokens"),
            n("output_tokens"),
            n("cache_read_input_tokens"),
            n("cache_creation_input_tokens"),
        ]);
    }

    /// As an Anthropic `usage` object.
    #[must_use]
    pub fn to_anthropic(self) -> Value {
        json!({
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_write
        })
    }

    /// Writes [`Usage::to_anthropic`]'s JSON text.
    pub fn write_anthropic(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"cache_creation_input_tokens\":");
        json::number(out, self.cache_write);
        out.extend_from_slice(b",\"cache_read_input_tokens\":");
        json::number(out, self.cache_read);
        out.extend_from_slice(b",\"input_tokens\":");
        json::number(out, self.input);
        out.extend_from_slice(b",\"output_tokens\":");
        json::number(out, self.output);
        out.push(b'}');
    }

    /// Writes [`Usage::to_openai`]'s JSON text.
    pub fn write_openai(self, out: &mut Vec<u8>) {
        let prompt = self.input + self.cache_read + self.cache_write;
        out.extend_from_slice(b"{\"completion_tokens\":");
        json::number(out, self.output);
        out.extend_from_slice(b",\"prompt_tokens\":");
        json::number(out, prompt);
        out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
        json::number(out, self.cache_read);
        out.extend_from_slice(b"},\"total_tokens\":");
        json::number(out, prompt + self.output);
        out.push(b'}');
    }

    /// As an OpenAI `usage` object (`prompt_tokens` counts cached and cache-written tokens).
    #[must_use]
    pub fn to_openai(self) -> Value {
        let prompt = self.input + self.cache_read + self.cache_write;
        json!({
            "prompt_tokens": prompt,
            "completion_tokens": self.output,
            "total_tokens": prompt + self.output,
            "prompt_tokens_details": {"cached_tokens": self.cache_read}
        })
    }
}

/// An OpenAI `usage` object's counts.
#[derive(Debug, Default)]
pub struct OpenaiUsage {
    prompt_tokens: U64,
    completion_tokens: U64,
    prompt_tokens_details: Obj<PromptDetails>,
}
fields!(OpenaiUsage { "prompt_tokens" => prompt_tokens, "completion_tokens" => completion_tokens, "prompt_tokens_details" => prompt_tokens_details });

#[derive(Debug, Default)]
pub struct PromptDetails {
    cached_tokens: U64,
}
fields!(PromptDetails { "cached_tokens" => cached_tokens });

impl OpenaiUsage {
    pub(super) fn usage(&self) -> Usage {
        Usage::from_openai_counts(
            self.prompt_tokens.0,
            self.prompt_tokens_details.fields.cached_tokens.0,
            self.completion_tokens.0,
        )
    }
}

/// An Anthropic `usage` object's counts.
#[derive(Debug, Default)]
pub struct AnthropicUsage {
    input: U64,
    output: U64,
    cache_read: U64,
    cache_write: U64,
}
fields!(AnthropicUsage { "input_tokens" => input, "output_tokens" => output, "cache_read_input_tokens" => cache_read, "cache_creation_input_tokens" => cache_write });

impl AnthropicUsage {
    pub(super) fn counts(&self) -> [Option<u64>; 4] {
        [
            self.input.0,
            self.output.0,
            self.cache_read.0,
            self.cache_write.0,
        ]
    }
}

/// Seconds since the epoch, for OpenAI's `created`.
#[must_use]
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What is read of an OpenAI chat completion.
#[derive(Debug, Default)]
struct Completion<'de> {
    error: Str<'de>,
    kind: Str<'de>,
    id: Str<'de>,
    model: Str<'de>,
    choices: First<Obj<Choice<'de>>>,
    usage: Obj<OpenaiUsage>,
}
fields!(Completion<'de> { "error" => error, "type" => kind, "id" => id, "model" => model, "choices" => choices, "usage" => usage });

#[derive(Debug, Default)]
struct Choice<'de> {
    message: Obj<Message<'de>>,
    finish_reason: Str<'de>,
}
fields!(Choice<'de> { "message" => message, "finish_reason" => finish_reason });

#[derive(Debug, Default)]
struct Message<'de> {
    reasoning_content: Str<'de>,
    reasoning: Str<'de>,
    content: Str<'de>,
    tool_calls: List<Obj<Call<'de>>>,
}
fields!(Message<'de> { "reasoning_content" => reasoning_content, "reasoning" => reasoning, "content" => content, "tool_calls" => tool_calls });

#[derive(Debug, Default)]
struct Call<'de> {
    id: Str<'de>,
    function: Obj<Function<'de>>,
}
fields!(Call<'de> { "id" => id, "function" => function });

#[derive(Debug, Default)]
struct Function<'de> {
    name: Str<'de>,
    arguments: Str<'de>,
}
fields!(Function<'de> { "name" => name, "arguments" => arguments });

/// An OpenAI chat completion → an Anthropic message, written into `out`.
fn openai_to_anthropic(v: &Completion, out: &mut Vec<u8>) {
    let choice = v.choices.0.as_ref().map(|c| &c.fields);
    let msg = choice.map(|c| &c.message.fields);
    out.extend_from_slice(b"{\"content\":[");
    if let Some(msg) = msg {
        openai_content(msg, out);
    }
    out.extend_from_slice(b"],\"id\":");
    json::string(out, &anthropic_id(v.id.get()));
    out.extend_from_slice(b",\"model\":");
    json::string(out, v.model.or_empty());
    out.extend_from_slice(b",\"role\":\"assistant\",\"stop_reason\":");
    json::string(out, stop_reason(choice.and_then(|c| c.finish_reason.get())));
    out.extend_from_slice(b",\"stop_sequence\":null,\"type\":\"message\",\"usage\":");
    v.usage.fields.usage().write_anthropic(out);
    out.push(b'}');
}

/// An OpenAI message's reasoning, text and tool calls as Anthropic content blocks.
fn openai_content(msg: &Message, out: &mut Vec<u8>) {
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    let reasoning = if msg.reasoning_content.present {
        msg.reasoning_content.or_empty()
    } else {
        msg.reasoning.or_empty()
    };
    if !reasoning.is_empty() {
        sep(out);
        out.extend_from_slice(b"{\"signature\":\"\",\"thinking\":");
        json::string(out, reasoning);
        out.extend_from_slice(b",\"type\":\"thinking\"}");
    }
    let text = msg.content.or_empty();
    if !text.is_empty() {
        sep(out);
        out.extend_from_slice(b"{\"text\":");
        json::string(out, text);
        out.extend_from_slice(b",\"type\":\"text\"}");
    }
    for call in &msg.tool_calls.0 {
        let (call, function) = (&call.fields, &call.fields.function.fields);
        sep(out);
        out.extend_from_slice(b"{\"id\":");
        json::string(out, &tool_ids::encode(call.id.get().unwrap_or("call")));
        out.extend_from_slice(b",\"input\":");
        // Re-serialized, as before: keys sorted, spaces dropped; anything but an object is `{}`.
        match serde_json::from_str::<Value>(function.arguments.or_empty()) {
            Ok(input) if input.is_object() => json::value(out, &input),
            _ => out.extend_from_slice(b"{}"),
        }
        out.extend_from_slice(b",\"name\":");
        json::string(out, function.name.or_empty());
        out.extend_from_slice(b",\"type\":\"tool_use\"}");
    }
}

/// A message id for an Anthropic client.
#[must_use]
pub fn anthropic_id(id: Option<&str>) -> String {
    match id {
        Some(id) if id.starts_with("msg") => id.to_owned(),
        Some(id) if !id.is_empty() => format!("msg_{id}"),
        _ => "msg_ai_proxy".to_owned(),
    }
}

/// What is read of an Anthropic message.
#[derive(Debug, Default)]
struct Anthropic<'de> {
    error: Str<'de>,
    kind: Str<'de>,
    id: Str<'de>,
    model: Str<'de>,
    content: List<Obj<Block<'de>>>,
    stop_reason: Str<'de>,
    usage: Obj<AnthropicUsage>,
}
fields!(Anthropic<'de> { "error" => error, "type" => kind, "id" => id, "model" => model, "content" => content, "stop_reason" => stop_reason, "usage" => usage });

#[derive(Debug, Default)]
struct Block<'de> {
    kind: Str<'de>,
    text: Str<'de>,
    thinking: Str<'de>,
    id: Str<'de>,
    name: Str<'de>,
    input: Present<Value>,
}
fields!(Block<'de> { "type" => kind, "text" => text, "thinking" => thinking, "id" => id, "name" => name, "input" => input });

/// An Anthropic message → an OpenAI chat completion, written into `out`.
fn anthropic_to_openai(v: &Anthropic, out: &mut Vec<u8>) {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for b in &v.content.0 {
        let b = &b.fields;
        match b.kind.or_empty() {
            "text" => text.push_str(b.text.or_empty()),
            "thinking" => reasoning.push_str(b.thinking.or_empty()),
            "tool_use" => calls.push(b),
            _ => {}
        }
    }
    out.extend_from_slice(b"{\"choices\":[{\"finish_reason\":");
    json::string(out, finish_reason(v.stop_reason.get()));
    out.extend_from_slice(b",\"index\":0,\"logprobs\":null,\"message\":{\"content\":");
    // As `request::openai_assistant_message` has it: `null` for a reply of tool calls only.
    if text.is_empty() && !calls.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        json::string(out, &text);
    }
    if !reasoning.is_empty() {
        out.extend_from_slice(b",\"reasoning_content\":");
        json::string(out, &reasoning);
    }
    out.extend_from_slice(b",\"role\":\"assistant\"");
    if !calls.is_empty() {
        out.extend_from_slice(b",\"tool_calls\":[");
        for (i, b) in calls.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_tool_call(b, out);
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}}],\"created\":");
    json::number(out, now());
    out.extend_from_slice(b",\"id\":");
    json::string(out, v.id.get().unwrap_or("chatcmpl-ai-proxy"));
    out.extend_from_slice(b",\"model\":");
    json::string(out, v.model.or_empty());
    out.extend_from_slice(b",\"object\":\"chat.completion\",\"usage\":");
    let mut usage = Usage::default();
    usage.merge_anthropic_counts(v.usage.fields.counts());
    usage.write_openai(out);
    out.push(b'}');
}

/// A `tool_use` block as an OpenAI tool call, as `request::anthropic_tool_call` makes it.
fn write_tool_call(b: &Block, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"function\":{\"arguments\":");
    let args = b
        .input
        .0
        .as_ref()
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    json::string(out, &args);
    out.extend_from_slice(b",\"name\":");
    json::string(out, b.name.or_empty());
    out.extend_from_slice(b"},\"id\":");
    json::string(out, &tool_ids::decode(b.id.or_empty()));
    out.extend_from_slice(b",\"type\":\"function\"}");
}

/// A whole upstream JSON body, in the client's shape: an error for a status ≥ 400, else the
/// response. A body that is not the expected JSON becomes an error in the client's shape.
#[must_use]
pub fn translate_json(direction: Direction, status: u16, body: &[u8]) -> Vec<u8> {
    let shape = match direction {
        Direction::AnthropicToOpenai => errors::Shape::Anthropic,
        Direction::OpenaiToAnthropic => errors::Shape::Openai,
    };
    if status >= 400 {
        return errors::rewrite(shape, status, body);
    }
    let not_json = || errors::body(shape, 502, "upstream answered with a body that is not JSON");
    let mut out = Vec::with_capacity(body.len() + 256);
    match direction {
        Direction::AnthropicToOpenai => {
            let Ok(v) = serde_json::from_slice::<Obj<Completion>>(body) else {
                return not_json();
            };
            let v = v.fields;
            if v.error.present || v.kind.get() == Some("error") {
                return errors::rewrite(shape, 502, body);
            }
            openai_to_anthropic(&v, &mut out);
        }
        Direction::OpenaiToAnthropic => {
            let Ok(v) = serde_json::from_slice::<Obj<Anthropic>>(body) else {
                return not_json();
            };
            let v = v.fields;
            if v.error.present || v.kind.get() == Some("error") {
                return errors::rewrite(shape, 502, body);
            }
            anthropic_to_openai(&v, &mut out);
        }
    }
    out
}
