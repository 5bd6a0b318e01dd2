//! Request bodies, both ways: OpenAI chat completions ⇄ Anthropic Messages. Parameters with no
//! counterpart are dropped and named, so the response can list them in `x-ai-proxy-dropped`.

use serde_json::{Map, Value, json};

use super::{Limits, Translated, Untranslatable, tool_ids};

/// `max_tokens` for an Anthropic upstream when neither the client nor the target gives one.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// OpenAI request fields the translation carries (anything else is dropped and named).
const OPENAI_USED: [&str; 15] = [
    "model",
    "reasoning_effort",
    "messages",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "stop",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
];

/// Anthropic request fields the translation carries (anything else is dropped and named).
const ANTHROPIC_USED: [&str; 12] = [
    "model",
    "thinking",
    "messages",
    "system",
    "max_tokens",
    "stream",
    "temperature",
    "top_p",
    "stop_sequences",
    "metadata",
    "tools",
    "tool_choice",
];

/// Anthropic thinking budgets for OpenAI's `reasoning_effort`, in rising order. A budget maps
/// back to the highest effort it reaches (below the first: the first).
pub const EFFORT_BUDGETS: [(&str, u64); 3] = [("low", 1024), ("medium", 4096), ("high", 16384)];

/// Anthropic's smallest `thinking.budget_tokens`.
pub const MIN_THINKING_BUDGET: u64 = 1024;

/// The thinking budget for an OpenAI effort (`minimal` as `low`, `xhigh` as twice `high`);
/// `None` for an unknown one.
fn budget_for(effort: &str) -> Option<u64> {
    let (_, high) = EFFORT_BUDGETS[EFFORT_BUDGETS.len() - 1];
    match effort {
        "minimal" => Some(EFFORT_BUDGETS[0].1),
        "xhigh" => Some(high * 2),
        _ => EFFORT_BUDGETS
            .iter()
            .find(|(name, _)| *name == effort)
            .map(|(_, b)| *b),
    }
}

/// The OpenAI effort for an Anthropic thinking budget.
#[must_use]
pub fn effort_for(budget: u64) -> &'static str {
    EFFORT_BUDGETS
        .iter()
        .rev()
        .find(|(_, b)| budget >= *b)
        .map_or(EFFORT_BUDGETS[0].0, |(name, _)| name)
}

/// Image media types Anthropic accepts.
pub const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

fn bad(msg: impl Into<String>) -> Untranslatable {
    Untranslatable(msg.into())
}

fn note(dropped: &mut Vec<String>, name: &str) {
    if !dropped.iter().any(|d| d == name) {
        dropped.push(name.to_owned());
    }
}

fn cap(limits: Limits, n: u64) -> u64 {
    limits.max_tokens_cap.map_or(n, |c| n.min(c))
}

/// Text of an OpenAI `content` (a string or parts): the text parts joined.
fn openai_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An OpenAI content part as an Anthropic block.
fn openai_part(part: &Value, dropped: &mut Vec<String>) -> Result<Option<Value>, Untranslatable> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("text");
    match kind {
        "text" => {
            let text = part.get("text").and_then(Value::as_str).unwrap_or("");
            Ok((!text.trim().is_empty()).then(|| json!({"type": "text", "text": text})))
        }
        "image_url" => {
            let url = part
                .pointer("/image_url/url")
                .or_else(|| part.get("image_url"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("image_url part without a url"))?;
            if part.pointer("/image_url/detail").is_some() {
                note(dropped, "image_url.detail");
            }
            Ok(Some(image_block(url)?))
        }
        other => Err(bad(format!(
            "content part type `{other}` cannot be sent to an Anthropic model"
        ))),
    }
}

fn image_block(url: &str) -> Result<Value, Untranslatable> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| bad("image data URL without a comma"))?;
        let media = meta
            .strip_suffix(";base64")
            .ok_or_else(|| bad("image data URL must be base64 (data:image/png;base64,...)"))?;
        if !IMAGE_TYPES.contains(&media) {
            return Err(bad(format!(
                "image media type `{}` is not supported by Anthropic models (use {})",
                crate::echo::clip(media),
                IMAGE_TYPES.join(", ")
            )));
        }
        return Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}),
        );
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(bad("image url must be a data: URL or http(s)"))
}

/// Appends `blocks` as a user turn, merged into the previous one when that is a user turn.
fn push_user(messages: &mut Vec<Value>, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(arr) = messages
        .last_mut()
        .filter(|last| last["role"] == "user")
        .and_then(|last| last["content"].as_array_mut())
    {
        arr.extend(blocks);
        return;
    }
    messages.push(json!({"role": "user", "content": blocks}));
}

/// OpenAI chat completions request → Anthropic Messages request.
pub fn openai_to_anthropic(
    value: Value,
    model: &str,
    limits: Limits,
) -> Result<Translated, Untranslatable> {
    let Value::Object(mut req) = value else {
        return Err(bad("request body must be a JSON object"));
    };
    let mut dropped = Vec::new();
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    if req.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(bad(
            "`n` greater than 1 is not supported by Anthropic models",
        ));
    }
    let Some(Value::Array(msgs)) = req.remove("messages") else {
        return Err(bad("`messages` must be an array"));
    };
    let (system, messages) = openai_messages(&msgs, &mut dropped)?;
    if !system.is_empty() {
        out.insert("system".into(), system.join("\n").into());
    }
    out.insert("messages".into(), messages.into());
    let (stream, include_usage) = openai_sampling(&req, limits, &mut out);
    if let Some(Value::Array(tools)) = req.get("tools") {
        let list = openai_tools(tools, &mut dropped);
        if !list.is_empty() {
            out.insert("tools".into(), list.into());
        }
    }
    if let Some(c) = openai_tool_choice(&req, out.contains_key("tools")) {
        out.insert("tool_choice".into(), c);
    }
    if let Some(effort) = req.get("reasoning_effort").and_then(Value::as_str) {
        openai_reasoning(effort, &mut out, &mut dropped);
    }
    note_unused(&req, &OPENAI_USED, &mut dropped);
    finish(out, dropped, stream, include_usage)
}

/// OpenAI `messages` → the Anthropic `system` texts and `messages`.
fn openai_messages(
    msgs: &[Value],
    dropped: &mut Vec<String>,
) -> Result<(Vec<String>, Vec<Value>), Untranslatable> {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for m in msgs {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.push(openai_text(content)),
            "user" => {
                let blocks = match content {
                    Value::String(s) if s.trim().is_empty() => Vec::new(),
                    Value::String(s) => vec![json!({"type": "text", "text": s})],
                    Value::Array(parts) => openai_parts(parts, dropped)?,
                    _ => Vec::new(),
                };
                push_user(&mut messages, blocks);
            }
            "assistant" => {
                if let Some(msg) = openai_assistant(m, content, dropped)? {
                    messages.push(msg);
                }
            }
            "tool" | "function" => {
                let block = openai_tool_result(m, content, dropped)?;
                push_tool_result(&mut messages, block);
            }
            other => {
                return Err(bad(format!(
                    "message role `{}` is not supported",
                    crate::echo::clip(other)
                )));
            }
        }
    }
    Ok((system, messages))
}

/// OpenAI content parts as Anthropic blocks (blank text parts left out).
fn openai_parts(parts: &[Value], dropped: &mut Vec<String>) -> Result<Vec<Value>, Untranslatable> {
    let mut b = Vec::new();
    for p in parts {
        b.extend(openai_part(p, dropped)?);
    }
    Ok(b)
}

/// An OpenAI assistant message as an Anthropic assistant turn; `None` when it has no blocks.
fn openai_assistant(
    m: &Value,
    content: &Value,
    dropped: &mut Vec<String>,
) -> Result<Option<Value>, Untranslatable> {
    let mut blocks = Vec::new();
    let text = openai_text(content);
    if !text.trim().is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    if m.get("reasoning_content").is_some() || m.get("reasoning").is_some() {
        note(dropped, "reasoning_content");
    }
    for call in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        blocks.push(openai_tool_call(call)?);
    }
    Ok((!blocks.is_empty()).then(|| json!({"role": "assistant", "content": blocks})))
}

/// An OpenAI tool call as an Anthropic `tool_use` block.
fn openai_tool_call(call: &Value) -> Result<Value, Untranslatable> {
    let id = call.get("id").and_then(Value::as_str).unwrap_or("");
    let name = call
        .pointer("/function/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let args = call
        .pointer("/function/arguments")
        .and_then(Value::as_str)
        .unwrap_or("");
    let input: Value = if args.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(args)
            .map_err(|e| bad(format!("tool call arguments are not JSON: {e}")))?
    };
    Ok(json!({"type": "tool_use", "id": tool_ids::encode(id), "name": name, "input": input}))
}

/// An OpenAI tool (or function) message as an Anthropic `tool_result` block.
fn openai_tool_result(
    m: &Value,
    content: &Value,
    dropped: &mut Vec<String>,
) -> Result<Value, Untranslatable> {
    let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
    let result = match content {
        Value::Array(parts) => Value::Array(openai_parts(parts, dropped)?),
        other => Value::String(openai_text(other)),
    };
    Ok(json!({"type": "tool_result", "tool_use_id": tool_ids::encode(id), "content": result}))
}

/// Appends a `tool_result` block to the user turn at the end, or starts one.
fn push_tool_result(messages: &mut Vec<Value>, block: Value) {
    // Results come first in their user turn.
    match messages.last_mut() {
        Some(last) if last["role"] == "user" => {
            if let Some(arr) = last["content"].as_array_mut() {
                let at = arr
                    .iter()
                    .take_while(|b| b["type"] == "tool_result")
                    .count();
                arr.insert(at, block);
            }
        }
        _ => messages.push(json!({"role": "user", "content": [block]})),
    }
}

/// `max_tokens`, `stream`, sampling, stop and user fields into `out`; returns
/// `(stream, include_usage)`.
fn openai_sampling(
    req: &Map<String, Value>,
    limits: Limits,
    out: &mut Map<String, Value>,
) -> (bool, bool) {
    let max = req
        .get("max_completion_tokens")
        .and_then(Value::as_u64)
        .or_else(|| req.get("max_tokens").and_then(Value::as_u64))
        .unwrap_or(limits.default_max_tokens);
    out.insert("max_tokens".into(), cap(limits, max).into());
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = req
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if stream {
        out.insert("stream".into(), true.into());
    }
    if let Some(t) = req.get("temperature").and_then(Value::as_f64) {
        out.insert("temperature".into(), t.clamp(0.0, 1.0).into());
    }
    if let Some(p) = req.get("top_p") {
        out.insert("top_p".into(), p.clone());
    }
    match req.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(user) = req.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    (stream, include_usage)
}

/// OpenAI `tools` as Anthropic tools.
fn openai_tools(tools: &[Value], dropped: &mut Vec<String>) -> Vec<Value> {
    let mut list = Vec::new();
    for t in tools {
        let f = t.get("function").unwrap_or(t);
        if f.get("strict").is_some() {
            note(dropped, "tools.function.strict");
        }
        let mut tool = Map::new();
        tool.insert(
            "name".into(),
            f.get("name").and_then(Value::as_str).unwrap_or("").into(),
        );
        if let Some(d) = f.get("description") {
            tool.insert("description".into(), d.clone());
        }
        tool.insert(
            "input_schema".into(),
            f.get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        );
        list.push(Value::Object(tool));
    }
    list
}

/// The Anthropic `tool_choice` from OpenAI `tool_choice` and `parallel_tool_calls`; only sent
/// with tools.
fn openai_tool_choice(req: &Map<String, Value>, has_tools: bool) -> Option<Value> {
    let mut choice = match req.get("tool_choice") {
        Some(Value::String(s)) => match s.as_str() {
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            _ => Some(json!({"type": "auto"})),
        },
        Some(Value::Object(o)) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .map(|name| json!({"type": "tool", "name": name})),
        _ => None,
    };
    if req.get("parallel_tool_calls") == Some(&Value::Bool(false)) && has_tools {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = true.into();
        }
    }
    choice.filter(|_| has_tools)
}

/// OpenAI `reasoning_effort` as Anthropic `thinking` (`none`: no thinking). The budget is at
/// most half of `max_tokens`, which counts thinking as OpenAI's limit counts reasoning.
/// Anthropic refuses thinking with a forced tool, and in a tool loop whose last assistant
/// turn does not start with a signed thinking block, which an OpenAI client cannot send
/// back; then, as when the budget would be under Anthropic's minimum, the effort is dropped.
/// With thinking on, Anthropic accepts only `temperature` 1 and `top_p` ≥ 0.95: others are
/// dropped.
fn openai_reasoning(effort: &str, out: &mut Map<String, Value>, dropped: &mut Vec<String>) {
    if effort == "none" {
        return;
    }
    let max = out.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
    let forced = out
        .get("tool_choice")
        .and_then(|c| c.get("type"))
        .is_some_and(|t| t == "any" || t == "tool");
    let in_tool_loop = out
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .is_some_and(|m| m.pointer("/content/0/type") == Some(&json!("tool_result")));
    let budget = budget_for(effort).map(|b| b.min(max / 2));
    let Some(budget) = budget.filter(|b| *b >= MIN_THINKING_BUDGET && !forced && !in_tool_loop)
    else {
        note(dropped, "reasoning_effort");
        return;
    };
    out.insert(
        "thinking".into(),
        json!({"type": "enabled", "budget_tokens": budget}),
    );
    if out
        .get("temperature")
        .and_then(Value::as_f64)
        .is_some_and(|t| (t - 1.0).abs() > f64::EPSILON)
    {
        out.remove("temperature");
        note(dropped, "temperature");
    }
    if out
        .get("top_p")
        .and_then(Value::as_f64)
        .is_some_and(|p| p < 0.95)
    {
        out.remove("top_p");
        note(dropped, "top_p");
    }
}

/// Names each request field the translation does not carry.
fn note_unused(req: &Map<String, Value>, used: &[&str], dropped: &mut Vec<String>) {
    for key in req.keys() {
        if !used.contains(&key.as_str()) {
            note(dropped, key);
        }
    }
}

fn finish(
    out: Map<String, Value>,
    dropped: Vec<String>,
    stream: bool,
    include_usage: bool,
) -> Result<Translated, Untranslatable> {
    let body = serde_json::to_vec(&Value::Object(out)).map_err(|e| bad(e.to_string()))?;
    Ok(Translated {
        body,
        dropped,
        stream,
        include_usage,
    })
}

/// Text of an Anthropic `system` or `content` (a string or blocks): the text blocks joined.
fn anthropic_text(v: &Value, dropped: &mut Vec<String>) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| {
                if b.get("cache_control").is_some() {
                    note(dropped, "cache_control");
                }
                b.get("text").and_then(Value::as_str)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An Anthropic image block as an OpenAI `image_url` part.
fn image_part(block: &Value) -> Result<Value, Untranslatable> {
    let src = block.get("source").unwrap_or(&Value::Null);
    let url = match src.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            src.get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("image/png"),
            src.get("data").and_then(Value::as_str).unwrap_or("")
        ),
        Some("url") => src
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        other => {
            return Err(bad(format!(
                "image source type `{}` cannot be sent to an OpenAI-compatible model",
                other.unwrap_or("none")
            )));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// Anthropic Messages request → OpenAI chat completions request.
pub fn anthropic_to_openai(
    value: Value,
    model: &str,
    limits: Limits,
) -> Result<Translated, Untranslatable> {
    let Value::Object(req) = value else {
        return Err(bad("request body must be a JSON object"));
    };
    let mut dropped = Vec::new();
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    let mut messages = Vec::new();
    if let Some(system) = req.get("system") {
        let text = anthropic_text(system, &mut dropped);
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let Some(Value::Array(msgs)) = req.get("messages") else {
        return Err(bad("`messages` must be an array"));
    };
    // Reasoning models (DeepSeek, Kimi) that returned reasoning want it back on every
    // assistant tool-call turn, even empty, or they answer 400.
    let with_reasoning = msgs.iter().any(|m| {
        m.get("content")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|b| b["type"] == "thinking"))
    });
    for m in msgs {
        anthropic_message(m, with_reasoning, &mut messages, &mut dropped)?;
    }
    out.insert("messages".into(), messages.into());
    let stream = anthropic_sampling(&req, limits, &mut out);
    if let Some(Value::Array(tools)) = req.get("tools") {
        let list = anthropic_tools(tools, &mut dropped);
        if !list.is_empty() {
            out.insert("tools".into(), list.into());
        }
    }
    if let (Some(c), true) = (req.get("tool_choice"), out.contains_key("tools")) {
        anthropic_tool_choice(c, &mut out);
    }
    if let Some(t) = req.get("thinking") {
        anthropic_thinking(t, &mut out, &mut dropped);
    }
    note_unused(&req, &ANTHROPIC_USED, &mut dropped);
    finish(out, dropped, stream, true)
}

/// Anthropic `thinking` as OpenAI `reasoning_effort`: a budget picks the effort (see
/// [`EFFORT_BUDGETS`]); `adaptive` and `disabled` send none, leaving the upstream model's
/// default (Claude Code sends `adaptive` to every model, reasoning or not).
fn anthropic_thinking(t: &Value, out: &mut Map<String, Value>, dropped: &mut Vec<String>) {
    match t.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = t.get("budget_tokens").and_then(Value::as_u64).unwrap_or(0);
            out.insert("reasoning_effort".into(), effort_for(budget).into());
        }
        Some("adaptive" | "disabled") => {}
        _ => note(dropped, "thinking"),
    }
}

/// One Anthropic message appended to `messages` as OpenAI messages; `with_reasoning` when
/// assistant tool-call turns carry `reasoning_content` even when empty.
fn anthropic_message(
    m: &Value,
    with_reasoning: bool,
    messages: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<(), Untranslatable> {
    let role = m.get("role").and_then(Value::as_str).unwrap_or("");
    let content = m.get("content").unwrap_or(&Value::Null);
    // Borrowed: a long history's blocks are not copied to be read.
    let text_block;
    let blocks: &[Value] = match content {
        Value::String(s) => {
            text_block = [json!({"type": "text", "text": s})];
            &text_block
        }
        Value::Array(a) => a,
        _ => &[],
    };
    match role {
        "user" => anthropic_user(blocks, messages, dropped),
        "assistant" => {
            messages.push(anthropic_assistant(blocks, with_reasoning, dropped));
            Ok(())
        }
        other => Err(bad(format!(
            "message role `{}` is not supported",
            crate::echo::clip(other)
        ))),
    }
}

/// An Anthropic user turn: its tool results as tool messages, then the rest as a user message.
fn anthropic_user(
    blocks: &[Value],
    messages: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<(), Untranslatable> {
    let mut parts = Vec::new();
    let mut moved_images = Vec::new();
    for b in blocks {
        if b.get("cache_control").is_some() {
            note(dropped, "cache_control");
        }
        match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                let t = b.get("text").and_then(Value::as_str).unwrap_or("");
                if !t.trim().is_empty() {
                    parts.push(json!({"type": "text", "text": t}));
                }
            }
            "image" => parts.push(image_part(b)?),
            "tool_result" => {
                // Results come before the turn's other content.
                messages.push(anthropic_tool_result(b, &mut moved_images, dropped)?);
            }
            other => {
                return Err(bad(format!(
                    "content block type `{}` cannot be sent to an OpenAI-compatible model",
                    crate::echo::clip(other)
                )));
            }
        }
    }
    // Tool messages carry only text: their images follow as a user message.
    parts.extend(moved_images);
    if parts.len() == 1 && parts[0]["type"] == "text" {
        messages.push(json!({"role": "user", "content": parts[0]["text"]}));
    } else if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

/// An Anthropic `tool_result` block as an OpenAI tool message; its images go to `moved_images`.
fn anthropic_tool_result(
    b: &Value,
    moved_images: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<Value, Untranslatable> {
    let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
    let inner = b.get("content").unwrap_or(&Value::Null);
    let mut text = anthropic_text(inner, dropped);
    if let Value::Array(items) = inner {
        for i in items {
            if i["type"] == "image" {
                moved_images.push(image_part(i)?);
            }
        }
    }
    if b.get("is_error") == Some(&Value::Bool(true)) {
        text = format!("Error: {text}");
    }
    Ok(json!({"role": "tool", "tool_call_id": tool_ids::decode(id), "content": text}))
}

/// An Anthropic assistant turn as one OpenAI assistant message.
fn anthropic_assistant(blocks: &[Value], with_reasoning: bool, dropped: &mut Vec<String>) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                text.push_str(b.get("text").and_then(Value::as_str).unwrap_or(""));
            }
            "thinking" => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""));
            }
            "redacted_thinking" => note(dropped, "redacted_thinking"),
            "tool_use" | "server_tool_use" => calls.push(anthropic_tool_call(b)),
            _ => {}
        }
    }
    let keep = with_reasoning && !calls.is_empty();
    Value::Object(openai_assistant_message(text, reasoning, keep, calls))
}

/// The OpenAI assistant message for a turn's text, reasoning and tool calls: `content` is null
/// when there are only tool calls, as OpenAI sends it; `reasoning_content` when there is
/// reasoning or `keep_reasoning`. Requests and responses share it.
pub(super) fn openai_assistant_message(
    text: String,
    reasoning: String,
    keep_reasoning: bool,
    calls: Vec<Value>,
) -> Map<String, Value> {
    let mut msg = Map::new();
    msg.insert("role".into(), "assistant".into());
    msg.insert(
        "content".into(),
        if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            text.into()
        },
    );
    if keep_reasoning || !reasoning.is_empty() {
        msg.insert("reasoning_content".into(), reasoning.into());
    }
    if !calls.is_empty() {
        msg.insert("tool_calls".into(), calls.into());
    }
    msg
}

/// An Anthropic `tool_use` block as an OpenAI tool call.
pub(super) fn anthropic_tool_call(b: &Value) -> Value {
    let id = b.get("id").and_then(Value::as_str).unwrap_or("");
    json!({
        "id": tool_ids::decode(id),
        "type": "function",
        "function": {
            "name": b.get("name").and_then(Value::as_str).unwrap_or(""),
            "arguments": b.get("input").map_or_else(|| "{}".to_owned(), Value::to_string)
        }
    })
}

/// `max_tokens`, `stream`, sampling, stop and user fields into `out`; returns `stream`.
fn anthropic_sampling(
    req: &Map<String, Value>,
    limits: Limits,
    out: &mut Map<String, Value>,
) -> bool {
    let max = req
        .get("max_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(limits.default_max_tokens);
    out.insert("max_tokens".into(), cap(limits, max).into());
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if stream {
        out.insert("stream".into(), true.into());
        // Anthropic clients always get usage: ask the OpenAI upstream for its usage chunk.
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = req.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(Value::Array(s)) = req.get("stop_sequences").filter(|s| s != &&json!([])) {
        out.insert("stop".into(), Value::Array(s.clone()));
    }
    if let Some(user) = req
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), user.into());
    }
    stream
}

/// Anthropic `tools` as OpenAI function tools; server tools are dropped and named.
fn anthropic_tools(tools: &[Value], dropped: &mut Vec<String>) -> Vec<Value> {
    let mut list = Vec::new();
    for t in tools {
        if t.get("cache_control").is_some() {
            note(dropped, "cache_control");
        }
        for key in ["strict", "defer_loading"] {
            if t.get(key).is_some() {
                note(dropped, &format!("tools.{key}"));
            }
        }
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(server) => {
                note(dropped, &format!("tools.{server}"));
                continue;
            }
        }
        let mut f = Map::new();
        f.insert(
            "name".into(),
            t.get("name").and_then(Value::as_str).unwrap_or("").into(),
        );
        if let Some(d) = t.get("description") {
            f.insert("description".into(), d.clone());
        }
        f.insert(
            "parameters".into(),
            t.get("input_schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"})),
        );
        list.push(json!({"type": "function", "function": f}));
    }
    list
}

/// Anthropic `tool_choice` as OpenAI `tool_choice` and `parallel_tool_calls` into `out`.
fn anthropic_tool_choice(c: &Value, out: &mut Map<String, Value>) {
    let mapped = match c.get("type").and_then(Value::as_str) {
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            json!({"type": "function", "function": {"name": c.get("name").and_then(Value::as_str).unwrap_or("")}})
        }
        _ => json!("auto"),
    };
    out.insert("tool_choice".into(), mapped);
    if c.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
        out.insert("parallel_tool_calls".into(), false.into());
    }
}
