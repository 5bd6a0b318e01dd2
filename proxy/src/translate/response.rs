//! JSON (non-streamed) responses, both ways, with stop reasons and usage (cache tokens
//! included); an error status gets its body rewritten into the client's error shape.

use serde_json::{Value, json};

use super::{Direction, errors, json, tool_ids};

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

/// Seconds since the epoch, for OpenAI's `created`.
#[must_use]
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An OpenAI chat completion → an Anthropic message.
#[must_use]
pub fn openai_to_anthropic(v: &Value) -> Value {
    let choice = v.pointer("/choices/0").unwrap_or(&Value::Null);
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    let reasoning = msg
        .get("reasoning_content")
        .or_else(|| msg.get("reasoning"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !reasoning.is_empty() {
        content.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
    }
    let text = msg.get("content").and_then(Value::as_str).unwrap_or("");
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        let input = serde_json::from_str::<Value>(args)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        content.push(json!({
            "type": "tool_use",
            "id": tool_ids::encode(call.get("id").and_then(Value::as_str).unwrap_or("call")),
            "name": call.pointer("/function/name").and_then(Value::as_str).unwrap_or(""),
            "input": input
        }));
    }
    let usage = v.get("usage").map(Usage::from_openai).unwrap_or_default();
    json!({
        "id": anthropic_id(v.get("id").and_then(Value::as_str)),
        "type": "message",
        "role": "assistant",
        "model": v.get("model").and_then(Value::as_str).unwrap_or(""),
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": usage.to_anthropic()
    })
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

/// An Anthropic message → an OpenAI chat completion.
#[must_use]
pub fn anthropic_to_openai(v: &Value) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for b in v
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            "thinking" => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""));
            }
            "tool_use" => calls.push(super::request::anthropic_tool_call(b)),
            _ => {}
        }
    }
    let message = super::request::openai_assistant_message(text, reasoning, false, calls);
    let mut usage = Usage::default();
    if let Some(u) = v.get("usage") {
        usage.merge_anthropic(u);
    }
    json!({
        "id": v.get("id").and_then(Value::as_str).unwrap_or("chatcmpl-ai-proxy"),
        "object": "chat.completion",
        "created": now(),
        "model": v.get("model").and_then(Value::as_str).unwrap_or(""),
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(v.get("stop_reason").and_then(Value::as_str))
        }],
        "usage": usage.to_openai()
    })
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
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return errors::body(shape, 502, "upstream answered with a body that is not JSON");
    };
    if v.get("error").is_some() || v.get("type").and_then(Value::as_str) == Some("error") {
        return errors::rewrite(shape, 502, body);
    }
    let out = match direction {
        Direction::AnthropicToOpenai => openai_to_anthropic(&v),
        Direction::OpenaiToAnthropic => anthropic_to_openai(&v),
    };
    serde_json::to_vec(&out).unwrap_or_default()
}
