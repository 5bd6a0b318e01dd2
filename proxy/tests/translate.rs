//! The translator without sockets: table-driven fixtures for requests, JSON responses, errors
//! and streams in both directions, and property tests (random byte splits give the same
//! output; arbitrary input never panics and always gives output the client's SDK can parse).

#![allow(
    clippy::doc_markdown,
    clippy::format_push_string,
    clippy::must_use_candidate,
    clippy::needless_pass_by_value,
    reason = "fixture tables: JSON literals passed by value, read top to bottom"
)]

#[path = "translate/fixtures.rs"]
mod fixtures;

use ai_proxy::translate::{self, Direction, Limits, ResponseTranslator};
use fixtures::*;
use serde_json::{Value, json};

fn stream(direction: Direction, include_usage: bool, upstream: &str) -> Vec<u8> {
    let mut t = ResponseTranslator::new(direction, 200, true, include_usage);
    let mut out = t.feed(upstream.as_bytes()).to_vec();
    out.extend_from_slice(&t.finish());
    out
}

/// An OpenAI upstream stream → what an Anthropic client sees.
fn to_anthropic_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    [
        to_anthropic_text_cases(),
        to_anthropic_tool_id_cases(),
        to_anthropic_interleaved_cases(),
        to_anthropic_waiting_cases(),
        to_anthropic_block_and_finish_cases(),
        to_anthropic_error_cases(),
    ]
    .concat()
}

/// `to_anthropic_cases`: text, and parallel tool calls with their indexes.
fn to_anthropic_text_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    let text = oc(json!({"role": "assistant", "content": ""}), None);
    vec![
        (
            "text, then finish, then the usage chunk",
            openai_sse(
                &[
                    text.clone(),
                    oc(json!({"content": "Hel"}), None),
                    oc(json!({"content": "lo"}), None),
                    oc(json!({}), Some("stop")),
                    ousage(10, 2, 4),
                ],
                true,
            ),
            vec![
                "start",
                "open 0 text",
                "text Hel",
                "text lo",
                "close",
                "delta end_turn in=6 out=2 cache_read=4 cache_write=0",
                "stop",
            ],
        ),
        (
            "two parallel tool calls with indexes 0 and 1",
            openai_sse(
                &[
                    text.clone(),
                    oc(
                        json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "ls", "arguments": ""}}]}),
                        None,
                    ),
                    oc(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"p\":"}}]}),
                        None,
                    ),
                    oc(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
                        None,
                    ),
                    oc(
                        json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "cat", "arguments": "{}"}}]}),
                        None,
                    ),
                    oc(json!({}), Some("tool_calls")),
                ],
                true,
            ),
            vec![
                "start",
                "open 0 tool call_a ls",
                "json {\"p\":",
                "json 1}",
                "close",
                "open 1 tool call_b cat",
                "json {}",
                "close",
                "delta tool_use in=0 out=0 cache_read=0 cache_write=0",
                "stop",
            ],
        ),
    ]
}

/// `to_anthropic_cases`: tool calls told apart by id, not index.
fn to_anthropic_tool_id_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        (
            "index 0 for every call: told apart by id (ollama)",
            openai_sse(
                &[
                    oc(
                        json!({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "a", "arguments": "{\"x\":1}"}}]}),
                        None,
                    ),
                    oc(
                        json!({"tool_calls": [{"index": 0, "id": "c2", "function": {"name": "b", "arguments": "{\"y\":2}"}}]}),
                        None,
                    ),
                    oc(json!({}), Some("tool_calls")),
                ],
                true,
            ),
            vec![
                "start",
                "open 0 tool c1 a",
                "json {\"x\":1}",
                "close",
                "open 1 tool c2 b",
                "json {\"y\":2}",
                "close",
                "delta tool_use in=0 out=0 cache_read=0 cache_write=0",
                "stop",
            ],
        ),
        (
            "no index at all, fragments follow their call",
            openai_sse(
                &[
                    oc(
                        json!({"tool_calls": [{"id": "c1", "function": {"name": "a", "arguments": ""}}]}),
                        None,
                    ),
                    oc(
                        json!({"tool_calls": [{"function": {"arguments": "{}"}}]}),
                        None,
                    ),
                    oc(
                        json!({"tool_calls": [{"id": "c2", "function": {"name": "b"}}]}),
                        None,
                    ),
                    oc(json!({}), Some("tool_calls")),
                ],
                true,
            ),
            vec![
                "start",
                "open 0 tool c1 a",
                "json {}",
                "close",
                "open 1 tool c2 b",
                "json {}",
                "close",
                "delta tool_use in=0 out=0 cache_read=0 cache_write=0",
                "stop",
            ],
        ),
    ]
}

/// A tool-call delta: `index`, and `id` and `name` when given.
fn call(index: u64, id: Option<&str>, args: &str) -> Value {
    let mut c = json!({"index": index, "function": {"arguments": args}});
    if let Some(id) = id {
        c["id"] = id.into();
        c["type"] = "function".into();
        c["function"]["name"] = format!("f{index}").into();
    }
    c
}

/// `to_anthropic_cases`: parallel calls whose fragments the upstream interleaves are
/// reordered (a later call waits until the open one's arguments are complete JSON); comments
/// become pings.
fn to_anthropic_interleaved_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    let tools = |calls: Vec<Value>| oc(json!({ "tool_calls": calls }), None);
    let end = oc(json!({}), Some("tool_calls"));
    vec![
        (
            "interleaved calls: both started, then fragments alternate",
            openai_sse(
                &[
                    tools(vec![call(0, Some("c1"), "")]),
                    tools(vec![call(1, Some("c2"), "")]),
                    tools(vec![call(0, None, "{\"x\":")]),
                    tools(vec![call(1, None, "{\"y\":")]),
                    tools(vec![call(0, None, "1}")]),
                    tools(vec![call(1, None, "2}")]),
                    end.clone(),
                ],
                true,
            ),
            vec![
                "start",
                "open 0 tool c1 f0",
                "json {\"x\":",
                "json 1}",
                "close",
                "open 1 tool c2 f1",
                "json {\"y\":",
                "json 2}",
                "close",
                "delta tool_use in=0 out=0 cache_read=0 cache_write=0",
                "stop",
            ],
        ),
        (
            "fragments of two calls in one chunk, a third call after both",
            openai_sse(
                &[
                    tools(vec![
                        call(0, Some("c1"), "{\"a\":1"),
                        call(1, Some("c2"), "{\"b\":"),
                    ]),
                    tools(vec![call(0, None, "}"), call(1, None, "2}")]),
                    tools(vec![call(2, Some("c3"), "{}")]),
                    end.clone(),
                ],
                true,
            ),
            vec![
                "start",
                "open 0 tool c1 f0",
                "json {\"a\":1",
                "json }",
                "close",
                "open 1 tool c2 f1",
                "json {\"b\":",
                "json 2}",
                "close",
                "open 2 tool c3 f2",
                "json {}",
                "close",
                "delta tool_use in=0 out=0 cache_read=0 cache_write=0",
                "stop",
            ],
        ),
    ]
}

/// `to_anthropic_cases`: calls that wait to the end, and what cannot be reordered.
fn to_anthropic_waiting_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    let tools = |calls: Vec<Value>| oc(json!({ "tool_calls": calls }), None);
    let end = oc(json!({}), Some("tool_calls"));
    vec![
        (
            "calls that never send arguments wait for the end, each gets {}",
            format!(
                ": OPENROUTER PROCESSING\n\n{}",
                openai_sse(
                    &[
                        tools(vec![call(0, Some("c1"), "")]),
                        tools(vec![call(1, Some("c2"), "")]),
                        end.clone(),
                    ],
                    true,
                )
            ),
            vec![
                "ping",
                "start",
                "open 0 tool c1 f0",
                "json {}",
                "close",
                "open 1 tool c2 f1",
                "json {}",
                "close",
                "delta tool_use in=0 out=0 cache_read=0 cache_write=0",
                "stop",
            ],
        ),
        (
            "arguments for a call after text followed it: an error, never a cut input",
            openai_sse(
                &[
                    tools(vec![call(0, Some("c1"), "")]),
                    tools(vec![call(1, Some("c2"), "")]),
                    oc(json!({"content": "x"}), None),
                    tools(vec![call(0, None, "{}")]),
                    end,
                ],
                true,
            ),
            vec![
                "start",
                "open 0 tool c1 f0",
                "json {}",
                "close",
                "open 1 tool c2 f1",
                "json {}",
                "close",
                "open 2 text",
                "text x",
                "error upstream sent tool-call arguments after its later text; the call cannot be completed",
            ],
        ),
    ]
}

/// `to_anthropic_cases`: block switches and finish reasons.
fn to_anthropic_block_and_finish_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        (
            "reasoning, text, tool: a new block on every switch",
            openai_sse(
                &[
                    oc(json!({"reasoning_content": "hmm"}), None),
                    oc(json!({"reasoning": " ok"}), None),
                    oc(json!({"content": "Let me look."}), None),
                    oc(
                        json!({"tool_calls": [{"index": 0, "id": "functions.Bash:0", "function": {"name": "Bash", "arguments": "{\"c\":\"ls\"}"}}]}),
                        None,
                    ),
                    oc(json!({}), Some("tool_calls")),
                    ousage(5, 9, 0),
                ],
                true,
            ),
            vec![
                "start",
                "open 0 thinking",
                "think hmm",
                "think  ok",
                "close",
                "open 1 text",
                "text Let me look.",
                "close",
                "open 2 tool aipx_66756e6374696f6e732e426173683a30 Bash",
                "json {\"c\":\"ls\"}",
                "close",
                "delta tool_use in=5 out=9 cache_read=0 cache_write=0",
                "stop",
            ],
        ),
        (
            "finish reasons: length, and unknown ones become end_turn",
            openai_sse(&[oc(json!({"content": "a"}), Some("length"))], true),
            vec![
                "start",
                "open 0 text",
                "text a",
                "close",
                "delta max_tokens in=0 out=0 cache_read=0 cache_write=0",
                "stop",
            ],
        ),
        (
            "unknown finish reason",
            openai_sse(&[oc(json!({"content": "a"}), Some("eos_token"))], true),
            vec![
                "start",
                "open 0 text",
                "text a",
                "close",
                "delta end_turn in=0 out=0 cache_read=0 cache_write=0",
                "stop",
            ],
        ),
        (
            "content_filter becomes refusal, no [DONE] but a finish reason",
            openai_sse(
                &[oc(json!({"content": "a"}), Some("content_filter"))],
                false,
            ),
            vec![
                "start",
                "open 0 text",
                "text a",
                "close",
                "delta refusal in=0 out=0 cache_read=0 cache_write=0",
                "stop",
            ],
        ),
    ]
}

/// `to_anthropic_cases`: errors and streams that end early.
fn to_anthropic_error_cases() -> Vec<(&'static str, String, Vec<&'static str>)> {
    vec![
        (
            "an error chunk mid-stream: error event, no message_stop",
            format!(
                "{}data: {{\"error\":{{\"message\":\"boom\",\"type\":\"server_error\"}}}}\n\n",
                openai_sse(&[oc(json!({"content": "par"}), None)], false)
            ),
            vec!["start", "open 0 text", "text par", "error boom"],
        ),
        (
            "the stream ends early: error event",
            openai_sse(&[oc(json!({"content": "par"}), None)], false),
            vec![
                "start",
                "open 0 text",
                "text par",
                "error upstream stream ended before the response was complete",
            ],
        ),
        (
            "an empty stream is never an empty 200",
            String::new(),
            vec!["error upstream stream ended before the response was complete"],
        ),
        (
            "only [DONE]",
            "data: [DONE]\n\n".to_owned(),
            vec!["error upstream stream ended before any data"],
        ),
    ]
}

/// An Anthropic upstream stream → what an OpenAI client sees.
fn to_openai_cases() -> Vec<(&'static str, bool, String, Vec<&'static str>)> {
    [
        to_openai_text_cases(),
        to_openai_tool_cases(),
        to_openai_thinking_and_stop_cases(),
        to_openai_error_cases(),
    ]
    .concat()
}

/// `to_openai_cases`: text, with and without the usage chunk.
fn to_openai_text_cases() -> Vec<(&'static str, bool, String, Vec<&'static str>)> {
    let text_block = json!({"type": "text", "text": ""});
    vec![
        (
            "text with the usage chunk asked for, pings as keepalive comments",
            true,
            anthropic_sse(&[
                astart(10, 3, 2),
                ablock(0, text_block.clone()),
                json!({"type": "ping"}),
                adelta(0, json!({"type": "text_delta", "text": "Hi"})),
                adelta(0, json!({"type": "text_delta", "text": "!"})),
                astop(0),
                aend("end_turn", 7)[0].clone(),
                aend("end_turn", 7)[1].clone(),
            ]),
            vec![
                "role",
                "keepalive",
                "text Hi",
                "text !",
                "finish stop",
                "usage prompt=15 completion=7 cached=3",
                "done",
            ],
        ),
        (
            "text without the usage chunk",
            false,
            anthropic_sse(&[
                astart(1, 0, 0),
                ablock(0, text_block.clone()),
                adelta(0, json!({"type": "text_delta", "text": "Hi"})),
                astop(0),
                aend("max_tokens", 1)[0].clone(),
                aend("max_tokens", 1)[1].clone(),
            ]),
            vec!["role", "text Hi", "finish length", "done"],
        ),
    ]
}

/// `to_openai_cases`: parallel tool calls after text.
fn to_openai_tool_cases() -> Vec<(&'static str, bool, String, Vec<&'static str>)> {
    let text_block = json!({"type": "text", "text": ""});
    vec![(
        "two parallel tool calls after text: indexes 0 and 1",
        true,
        anthropic_sse(&[
            astart(1, 0, 0),
            ablock(0, text_block.clone()),
            adelta(0, json!({"type": "text_delta", "text": "ok"})),
            astop(0),
            ablock(
                1,
                json!({"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {}}),
            ),
            adelta(1, json!({"type": "input_json_delta", "partial_json": ""})),
            adelta(
                1,
                json!({"type": "input_json_delta", "partial_json": "{\"p\":1}"}),
            ),
            astop(1),
            ablock(
                2,
                json!({"type": "tool_use", "id": "aipx_632031", "name": "cat", "input": {}}),
            ),
            adelta(2, json!({"type": "input_json_delta", "partial_json": "{}"})),
            astop(2),
            aend("tool_use", 4)[0].clone(),
            aend("tool_use", 4)[1].clone(),
        ]),
        vec![
            "role",
            "text ok",
            "tool 0 toolu_1 ls",
            "args 0 {\"p\":1}",
            "tool 1 c 1 cat",
            "args 1 {}",
            "finish tool_calls",
            "usage prompt=1 completion=4 cached=0",
            "done",
        ],
    )]
}

/// `to_openai_cases`: interleaved blocks and stop reasons.
fn to_openai_thinking_and_stop_cases() -> Vec<(&'static str, bool, String, Vec<&'static str>)> {
    let text_block = json!({"type": "text", "text": ""});
    vec![
        (
            "thinking, text, tool interleaved",
            false,
            anthropic_sse(&[
                astart(1, 0, 0),
                ablock(
                    0,
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                ),
                adelta(0, json!({"type": "thinking_delta", "thinking": "hmm"})),
                adelta(0, json!({"type": "signature_delta", "signature": "sig"})),
                astop(0),
                ablock(1, text_block.clone()),
                adelta(1, json!({"type": "text_delta", "text": "t"})),
                astop(1),
                ablock(
                    2,
                    json!({"type": "tool_use", "id": "toolu_2", "name": "x", "input": {}}),
                ),
                astop(2),
                aend("tool_use", 4)[0].clone(),
                aend("tool_use", 4)[1].clone(),
            ]),
            vec![
                "role",
                "think hmm",
                "text t",
                "tool 0 toolu_2 x",
                "finish tool_calls",
                "done",
            ],
        ),
        (
            "refusal and pause_turn",
            false,
            anthropic_sse(&[
                astart(1, 0, 0),
                aend("refusal", 1)[0].clone(),
                aend("refusal", 1)[1].clone(),
            ]),
            vec!["role", "finish content_filter", "done"],
        ),
        (
            "unknown stop reason",
            false,
            anthropic_sse(&[
                astart(1, 0, 0),
                aend("pause_turn", 1)[0].clone(),
                aend("pause_turn", 1)[1].clone(),
            ]),
            vec!["role", "finish stop", "done"],
        ),
    ]
}

/// `to_openai_cases`: errors and streams that end early.
fn to_openai_error_cases() -> Vec<(&'static str, bool, String, Vec<&'static str>)> {
    let text_block = json!({"type": "text", "text": ""});
    vec![
        (
            "an error event mid-stream: an error chunk, no [DONE]",
            true,
            anthropic_sse(&[
                astart(1, 0, 0),
                ablock(0, text_block.clone()),
                adelta(0, json!({"type": "text_delta", "text": "par"})),
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ]),
            vec!["role", "text par", "error Overloaded"],
        ),
        (
            "the stream ends before message_stop",
            true,
            anthropic_sse(&[astart(1, 0, 0), ablock(0, text_block)]),
            vec!["role", "error upstream stream ended before message_stop"],
        ),
        (
            "an empty stream is never an empty 200",
            false,
            String::new(),
            vec!["error upstream stream ended before message_stop"],
        ),
    ]
}

#[test]
fn streams_to_anthropic() {
    let cases = to_anthropic_cases();
    for (name, upstream, want) in &cases {
        let got = summarize_anthropic(&stream(Direction::AnthropicToOpenai, false, upstream));
        assert_eq!(&got, want, "{name}");
    }
    assert!(cases.len() >= 12);
}

#[test]
fn streams_to_openai() {
    for (name, include_usage, upstream, want) in to_openai_cases() {
        let got = summarize_openai(&stream(
            Direction::OpenaiToAnthropic,
            include_usage,
            &upstream,
        ));
        assert_eq!(got, want, "{name}");
    }
}

fn req(direction: Direction, body: &Value) -> (Value, Vec<String>) {
    let t = translate::request(
        direction,
        body.to_string().as_bytes(),
        "up-model",
        Limits {
            default_max_tokens: 1000,
            max_tokens_cap: Some(8000),
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {body}"));
    (serde_json::from_slice(&t.body).unwrap(), t.dropped)
}

/// OpenAI chat requests → Anthropic Messages requests: (name, client body, upstream body,
/// dropped).
fn openai_request_cases() -> Vec<(&'static str, Value, Value, Vec<&'static str>)> {
    [openai_request_basic_cases(), openai_reasoning_cases()].concat()
}

/// `openai_request_cases`: `reasoning_effort` → `thinking`, and when Anthropic would refuse it.
fn openai_reasoning_cases() -> Vec<(&'static str, Value, Value, Vec<&'static str>)> {
    let user = json!([{"role": "user", "content": "q"}]);
    let up_user = json!([{"role": "user", "content": [{"type": "text", "text": "q"}]}]);
    let tool = json!([{"type": "function", "function": {"name": "t", "parameters": {}}}]);
    let up_tool = json!([{"name": "t", "input_schema": {}}]);
    vec![
        (
            "reasoning_effort high: a thinking budget; temperature and a low top_p dropped",
            json!({"model": "m", "reasoning_effort": "high", "max_completion_tokens": 40000, "temperature": 0.5, "top_p": 0.5, "messages": user}),
            json!({"model": "up-model", "max_tokens": 8000, "thinking": {"type": "enabled", "budget_tokens": 4000}, "messages": up_user}),
            vec!["temperature", "top_p"],
        ),
        (
            "reasoning_effort low keeps temperature 1 and top_p 0.95",
            json!({"model": "m", "reasoning_effort": "low", "max_tokens": 5000, "temperature": 1, "top_p": 0.95, "messages": user}),
            json!({"model": "up-model", "max_tokens": 5000, "temperature": 1.0, "top_p": 0.95,
                "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": up_user}),
            vec![],
        ),
        (
            "reasoning_effort none: no thinking, nothing dropped",
            json!({"model": "m", "reasoning_effort": "none", "messages": user}),
            json!({"model": "up-model", "max_tokens": 1000, "messages": up_user}),
            vec![],
        ),
        (
            "a budget under Anthropic's minimum (half of max_tokens) drops the effort",
            json!({"model": "m", "reasoning_effort": "medium", "messages": user}),
            json!({"model": "up-model", "max_tokens": 1000, "messages": up_user}),
            vec!["reasoning_effort"],
        ),
        (
            "a forced tool drops the effort",
            json!({"model": "m", "reasoning_effort": "low", "max_tokens": 5000, "tools": tool, "tool_choice": "required", "messages": user}),
            json!({"model": "up-model", "max_tokens": 5000, "tools": up_tool, "tool_choice": {"type": "any"}, "messages": up_user}),
            vec!["reasoning_effort"],
        ),
        (
            "mid tool loop (no signed thinking to send back) drops the effort",
            json!({"model": "m", "reasoning_effort": "low", "max_tokens": 5000, "tools": tool, "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "t", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c", "content": "r"}]}),
            json!({"model": "up-model", "max_tokens": 5000, "tools": up_tool, "messages": [
                {"role": "user", "content": [{"type": "text", "text": "q"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": "t", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c", "content": "r"}]}]}),
            vec!["reasoning_effort"],
        ),
    ]
}

/// `openai_request_cases`: system, content, tools, tool loops, `tool_choice`.
fn openai_request_basic_cases() -> Vec<(&'static str, Value, Value, Vec<&'static str>)> {
    vec![
        (
            "system and developer joined, max_tokens default, temperature clamped, stop",
            json!({"model": "m", "messages": [{"role": "system", "content": "a"}, {"role": "developer", "content": [{"type": "text", "text": "b"}]},
                {"role": "user", "content": "hi"}], "temperature": 1.7, "stop": "END", "user": "u1", "logprobs": true}),
            json!({"model": "up-model", "system": "a\nb", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "max_tokens": 1000, "temperature": 1.0, "stop_sequences": ["END"], "metadata": {"user_id": "u1"}}),
            vec!["logprobs"],
        ),
        (
            "max_completion_tokens wins, capped; images base64 and url; empty text dropped",
            json!({"model": "m", "max_tokens": 5, "max_completion_tokens": 99999, "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": [{"type": "text", "text": " "},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}}]}]}),
            json!({"model": "up-model", "max_tokens": 8000, "stream": true, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}}]}]}),
            vec!["image_url.detail"],
        ),
        (
            "tools, tool_choice required, parallel_tool_calls false, a tool loop merged into one user turn",
            json!({"model": "m", "tools": [{"type": "function", "function": {"name": "ls", "description": "list", "parameters": {"type": "object"}, "strict": true}}],
                "tool_choice": "required", "parallel_tool_calls": false, "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": "sure", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": "{\"p\":1}"}},
                    {"id": "functions.ls:1", "type": "function", "function": {"name": "ls", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a"},
                {"role": "tool", "tool_call_id": "functions.ls:1", "content": [{"type": "text", "text": "b"}]},
                {"role": "user", "content": "next"}]}),
            json!({"model": "up-model", "max_tokens": 1000,
                "tools": [{"name": "ls", "description": "list", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                "messages": [
                {"role": "user", "content": [{"type": "text", "text": "go"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "sure"},
                    {"type": "tool_use", "id": "call_1", "name": "ls", "input": {"p": 1}},
                    {"type": "tool_use", "id": "aipx_66756e6374696f6e732e6c733a31", "name": "ls", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "a"},
                    {"type": "tool_result", "tool_use_id": "aipx_66756e6374696f6e732e6c733a31", "content": [{"type": "text", "text": "b"}]},
                    {"type": "text", "text": "next"}]}]}),
            vec!["tools.function.strict"],
        ),
        (
            "tool_choice by name, none, auto",
            json!({"model": "m", "tools": [{"type": "function", "function": {"name": "ls"}}],
                "tool_choice": {"type": "function", "function": {"name": "ls"}}, "messages": [{"role": "user", "content": "x"}]}),
            json!({"model": "up-model", "max_tokens": 1000, "tools": [{"name": "ls", "input_schema": {"type": "object", "properties": {}}}],
                "tool_choice": {"type": "tool", "name": "ls"}, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
            vec![],
        ),
    ]
}

/// Anthropic Messages requests → OpenAI chat requests.
fn anthropic_request_cases() -> Vec<(&'static str, Value, Value, Vec<&'static str>)> {
    [anthropic_request_basic_cases(), anthropic_reasoning_cases()].concat()
}

/// `anthropic_request_cases`: `thinking` ⇄ `reasoning_effort`, and `reasoning_content` kept
/// on every assistant tool-call turn of a conversation with reasoning (DeepSeek, Kimi).
fn anthropic_reasoning_cases() -> Vec<(&'static str, Value, Value, Vec<&'static str>)> {
    let user = json!([{"role": "user", "content": "q"}]);
    let up_user = json!([{"role": "user", "content": "q"}]);
    vec![
        (
            "thinking enabled: the budget picks the effort",
            json!({"model": "m", "max_tokens": 20000, "thinking": {"type": "enabled", "budget_tokens": 10000}, "messages": user}),
            json!({"model": "up-model", "max_tokens": 8000, "reasoning_effort": "medium", "messages": up_user}),
            vec![],
        ),
        (
            "thinking enabled with a small and a large budget",
            json!({"model": "m", "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": user,
                "tools": [{"name": "t", "input_schema": {}}], "tool_choice": {"type": "auto"}}),
            json!({"model": "up-model", "max_tokens": 2000, "reasoning_effort": "low", "messages": up_user,
                "tools": [{"type": "function", "function": {"name": "t", "parameters": {}}}], "tool_choice": "auto"}),
            vec![],
        ),
        (
            "thinking disabled: no effort",
            json!({"model": "m", "max_tokens": 5, "thinking": {"type": "disabled"}, "messages": user}),
            json!({"model": "up-model", "max_tokens": 5, "messages": up_user}),
            vec![],
        ),
        (
            "a tool loop with reasoning: reasoning_content on every assistant tool-call turn, empty too",
            json!({"model": "m", "max_tokens": 50000, "thinking": {"type": "enabled", "budget_tokens": 32000}, "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "step 1", "signature": ""},
                    {"type": "tool_use", "id": "call_1", "name": "a", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "r1"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "call_2", "name": "a", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_2", "content": "r2"}]},
                {"role": "assistant", "content": "plain"},
                {"role": "user", "content": "more"}]}),
            json!({"model": "up-model", "max_tokens": 8000, "reasoning_effort": "high", "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": null, "reasoning_content": "step 1",
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "r1"},
                {"role": "assistant", "content": null, "reasoning_content": "",
                    "tool_calls": [{"id": "call_2", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_2", "content": "r2"},
                {"role": "assistant", "content": "plain"},
                {"role": "user", "content": "more"}]}),
            vec![],
        ),
        (
            "thinking of an unknown type is dropped and named",
            json!({"model": "m", "max_tokens": 5, "thinking": {"type": "turbo"}, "messages": user}),
            json!({"model": "up-model", "max_tokens": 5, "messages": up_user}),
            vec!["thinking"],
        ),
    ]
}

/// `anthropic_request_cases`: system, tools, tool loops, `tool_choice`.
fn anthropic_request_basic_cases() -> Vec<(&'static str, Value, Value, Vec<&'static str>)> {
    vec![
        (
            "system blocks with cache_control, stop_sequences, stream asks for usage, adaptive thinking sends no effort",
            json!({"model": "m", "max_tokens": 64000, "stream": true, "system": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "b"}],
                "messages": [{"role": "user", "content": "hi"}], "stop_sequences": ["X"], "thinking": {"type": "adaptive"},
                "context_management": {}, "output_config": {}, "metadata": {"user_id": "u"}, "top_k": 5}),
            json!({"model": "up-model", "max_tokens": 8000, "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "system", "content": "a\nb"}, {"role": "user", "content": "hi"}], "stop": ["X"], "user": "u"}),
            vec![
                "cache_control",
                "context_management",
                "output_config",
                "top_k",
            ],
        ),
        (
            "tool loop: tool_use to tool_calls, tool_result first, images after as a user message",
            json!({"model": "m", "max_tokens": 10,
                "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}, "strict": true, "defer_loading": false},
                    {"type": "web_search_20250305", "name": "web_search"}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                "messages": [
                {"role": "user", "content": [{"type": "text", "text": "go"}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "plan", "signature": "s"}, {"type": "text", "text": "ok"},
                    {"type": "tool_use", "id": "aipx_66756e6374696f6e732e426173683a30", "name": "Bash", "input": {"c": "ls"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "aipx_66756e6374696f6e732e426173683a30", "is_error": true,
                        "content": [{"type": "text", "text": "no"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QQ"}}]},
                    {"type": "text", "text": "then?"}]}]}),
            json!({"model": "up-model", "max_tokens": 10,
                "tools": [{"type": "function", "function": {"name": "Bash", "description": "run", "parameters": {"type": "object"}}}],
                "tool_choice": "required", "parallel_tool_calls": false,
                "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": "ok", "reasoning_content": "plan", "tool_calls": [
                    {"id": "functions.Bash:0", "type": "function", "function": {"name": "Bash", "arguments": "{\"c\":\"ls\"}"}}]},
                {"role": "tool", "tool_call_id": "functions.Bash:0", "content": "Error: no"},
                {"role": "user", "content": [{"type": "text", "text": "then?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,QQ"}}]}]}),
            vec![
                "tools.strict",
                "tools.defer_loading",
                "tools.web_search_20250305",
            ],
        ),
        (
            "an assistant turn of tool calls only has null content; tool_choice tool and none",
            json!({"model": "m", "max_tokens": 10, "tools": [{"name": "a", "input_schema": {}}], "tool_choice": {"type": "tool", "name": "a"},
                "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "a", "input": {}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}]}),
            json!({"model": "up-model", "max_tokens": 10, "tools": [{"type": "function", "function": {"name": "a", "parameters": {}}}],
                "tool_choice": {"type": "function", "function": {"name": "a"}},
                "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "t1", "content": ""}]}),
            vec![],
        ),
    ]
}

#[test]
fn requests_openai_to_anthropic() {
    for (name, client, want, dropped) in openai_request_cases() {
        let (got, got_dropped) = req(Direction::OpenaiToAnthropic, &client);
        assert_eq!(got, want, "{name}");
        let mut got_dropped = got_dropped;
        let mut dropped = dropped;
        got_dropped.sort_unstable();
        dropped.sort_unstable();
        assert_eq!(got_dropped, dropped, "{name}");
    }
}

#[test]
fn requests_anthropic_to_openai() {
    for (name, client, want, dropped) in anthropic_request_cases() {
        let (got, got_dropped) = req(Direction::AnthropicToOpenai, &client);
        assert_eq!(got, want, "{name}");
        let mut got_dropped = got_dropped;
        let mut dropped = dropped;
        got_dropped.sort_unstable();
        dropped.sort_unstable();
        assert_eq!(got_dropped, dropped, "{name}");
    }
}

#[test]
fn untranslatable_requests_are_refused_with_a_reason() {
    let cases = [
        (
            Direction::OpenaiToAnthropic,
            json!({"model": "m", "n": 2, "messages": []}),
            "`n`",
        ),
        (
            Direction::OpenaiToAnthropic,
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}]}]}),
            "image/bmp",
        ),
        (
            Direction::OpenaiToAnthropic,
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {}}]}]}),
            "input_audio",
        ),
        (
            Direction::OpenaiToAnthropic,
            json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
            {"id": "a", "function": {"name": "x", "arguments": "{nope"}}]}]}),
            "not JSON",
        ),
        (
            Direction::AnthropicToOpenai,
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "document", "source": {}}]}]}),
            "document",
        ),
        (
            Direction::AnthropicToOpenai,
            json!({"model": "m"}),
            "messages",
        ),
        (Direction::AnthropicToOpenai, json!([1]), "object"),
    ];
    for (direction, body, needle) in cases {
        let e = translate::request(
            direction,
            body.to_string().as_bytes(),
            "x",
            Limits::default(),
        )
        .unwrap_err();
        assert!(e.0.contains(needle), "{body}: {e}");
    }
}

fn json_response(direction: Direction, status: u16, body: &Value) -> Value {
    let mut t = ResponseTranslator::new(direction, status, false, false);
    let raw = body.to_string();
    let (a, b) = raw.as_bytes().split_at(raw.len() / 2);
    assert!(
        t.feed(a).is_empty() && t.feed(b).is_empty(),
        "a JSON body is held to its end"
    );
    serde_json::from_slice(&t.finish()).unwrap()
}

#[test]
fn json_responses_openai_to_anthropic_client() {
    let upstream = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "hi", "reasoning_content": "r", "tool_calls": [
            {"id": "functions.x:0", "type": "function", "function": {"name": "x", "arguments": "{\"a\":1}"}},
            {"id": "c2", "type": "function", "function": {"name": "y", "arguments": ""}}]},
        "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 4}}});
    let got = json_response(Direction::AnthropicToOpenai, 200, &upstream);
    assert_eq!(
        got,
        json!({"id": "msg_chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt",
        "content": [{"type": "thinking", "thinking": "r", "signature": ""}, {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "aipx_66756e6374696f6e732e783a30", "name": "x", "input": {"a": 1}},
            {"type": "tool_use", "id": "c2", "name": "y", "input": {}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 6, "output_tokens": 3, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 0}})
    );
    for (finish, stop) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("", "end_turn"),
        ("insufficient_system_resource", "end_turn"),
    ] {
        let up = json!({"choices": [{"message": {"content": "a"}, "finish_reason": finish}]});
        assert_eq!(
            json_response(Direction::AnthropicToOpenai, 200, &up)["stop_reason"],
            stop,
            "{finish}"
        );
    }
    let up = json!({"choices": [{"message": {"content": "a"}, "finish_reason": null}]});
    assert_eq!(
        json_response(Direction::AnthropicToOpenai, 200, &up)["stop_reason"],
        "end_turn"
    );
}

#[test]
fn json_responses_anthropic_to_openai_client() {
    let upstream = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "thinking", "thinking": "r", "signature": "s"}, {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "aipx_632031", "name": "x", "input": {"a": 1}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2}});
    let got = json_response(Direction::OpenaiToAnthropic, 200, &upstream);
    assert_eq!(got["object"], "chat.completion");
    assert_eq!(
        got["choices"][0],
        json!({"index": 0, "logprobs": null, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "hi", "reasoning_content": "r",
        "tool_calls": [{"id": "c 1", "type": "function", "function": {"name": "x", "arguments": "{\"a\":1}"}}]}})
    );
    assert_eq!(
        got["usage"],
        json!({"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14, "prompt_tokens_details": {"cached_tokens": 4}})
    );
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("pause_turn", "stop"),
        ("weird", "stop"),
    ] {
        let up = json!({"content": [{"type": "text", "text": "a"}], "stop_reason": stop});
        assert_eq!(
            json_response(Direction::OpenaiToAnthropic, 200, &up)["choices"][0]["finish_reason"],
            finish,
            "{stop}"
        );
    }
}

#[test]
fn errors_in_the_clients_shape_with_status_kept() {
    let anthropic_err =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let got = json_response(Direction::OpenaiToAnthropic, 529, &anthropic_err);
    assert_eq!(
        got,
        json!({"error": {"message": "Overloaded", "type": "overloaded_error", "param": null, "code": null}})
    );
    assert_eq!(
        translate::client_status(Direction::OpenaiToAnthropic, 529),
        503
    );
    assert_eq!(
        translate::client_status(Direction::AnthropicToOpenai, 429),
        429
    );
    let openai_err = json!({"error": {"message": "Rate limit", "type": "requests", "code": "rate_limit_exceeded"}});
    let got = json_response(Direction::AnthropicToOpenai, 429, &openai_err);
    assert_eq!(
        got,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit"}})
    );
    let got = json_response(
        Direction::AnthropicToOpenai,
        404,
        &json!({"detail": "nope"}),
    );
    assert_eq!(got["error"]["type"], "not_found_error");
    // A 200 whose body is not JSON is an error, never an empty success.
    let mut t = ResponseTranslator::new(Direction::AnthropicToOpenai, 200, false, false);
    t.feed(b"<html>");
    let got: Value = serde_json::from_slice(&t.finish()).unwrap();
    assert_eq!(got["type"], "error");
    // A stream cut by the network: the client's mid-stream error form.
    let mut t = ResponseTranslator::new(Direction::AnthropicToOpenai, 200, true, false);
    let mut out = t
        .feed(openai_sse(&[oc(json!({"content": "a"}), None)], false).as_bytes())
        .to_vec();
    out.extend_from_slice(&t.fail("connection reset"));
    assert_eq!(
        summarize_anthropic(&out).last().unwrap(),
        "error connection reset"
    );
    let mut t = ResponseTranslator::new(Direction::OpenaiToAnthropic, 200, true, false);
    let out = t.fail("connection reset");
    assert_eq!(summarize_openai(&out), vec!["error connection reset"]);
}

/// The SSE streams of every fixture, upstream side, with their direction.
pub fn all_streams() -> Vec<(Direction, bool, String)> {
    let mut v: Vec<(Direction, bool, String)> = to_anthropic_cases()
        .into_iter()
        .map(|(_, s, _)| (Direction::AnthropicToOpenai, false, s))
        .collect();
    v.extend(
        to_openai_cases()
            .into_iter()
            .map(|(_, u, s, _)| (Direction::OpenaiToAnthropic, u, s)),
    );
    v
}

fn normalize(bytes: &[u8]) -> String {
    // `created` is the clock's second: the only byte that may differ between two runs.
    let s = String::from_utf8(bytes.to_vec()).unwrap();
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find("\"created\":") {
        out.push_str(&rest[..i + 10]);
        rest = rest[i + 10..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('0');
    }
    out.push_str(rest);
    out
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn run(direction: Direction, include_usage: bool, pieces: &[&[u8]]) -> Vec<u8> {
        let mut t = ResponseTranslator::new(direction, 200, true, include_usage);
        let mut out = Vec::new();
        for p in pieces {
            out.extend_from_slice(&t.feed(p));
        }
        out.extend_from_slice(&t.finish());
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Every fixture stream cut at random byte boundaries translates to the same bytes.
        #[test]
        fn random_splits_give_identical_output(cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40)) {
            for (direction, include_usage, upstream) in all_streams() {
                let bytes = upstream.as_bytes();
                let whole = run(direction, include_usage, &[bytes]);
                let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
                at.sort_unstable();
                let mut pieces = Vec::new();
                let mut last = 0;
                for a in at {
                    pieces.push(&bytes[last..a]);
                    last = a;
                }
                pieces.push(&bytes[last..]);
                let split = run(direction, include_usage, &pieces);
                prop_assert_eq!(normalize(&whole), normalize(&split));
            }
        }
    }

    fn small_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0u64..5).prop_map(Value::from),
            prop::sample::select(vec![
                "",
                "a",
                "{",
                "{}",
                "0",
                "text",
                "tool_use",
                "call_1",
                "functions.x:0",
                "aipx_zz",
                "data:image/png;base64,AA",
                "https://x",
                "user",
                "assistant",
                "tool",
                "system"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "type",
                            "role",
                            "content",
                            "text",
                            "delta",
                            "index",
                            "id",
                            "name",
                            "arguments",
                            "function",
                            "tool_calls",
                            "choices",
                            "finish_reason",
                            "usage",
                            "message",
                            "content_block",
                            "partial_json",
                            "thinking",
                            "stop_reason",
                            "error",
                            "input",
                            "source",
                            "tool_use_id",
                            "image_url",
                            "url",
                            "reasoning_content",
                            "prompt_tokens",
                            "input_tokens",
                            "tools",
                            "tool_choice",
                            "system",
                            "messages",
                            "max_tokens",
                            "stop",
                            "n",
                            "temperature"
                        ]),
                        inner
                    ),
                    0..5
                )
                .prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    fn event_json() -> impl Strategy<Value = Value> {
        (prop::sample::select(vec!["message_start", "content_block_start", "content_block_delta",
            "content_block_stop", "message_delta", "message_stop", "ping", "error"]), small_json(), small_json(), 0u64..4)
            .prop_map(|(t, a, b, i)| json!({"type": t, "index": i, "delta": a, "content_block": b,
                "message": {"id": "m", "usage": {"input_tokens": i}}, "choices": [{"delta": a, "finish_reason": b}]}))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// Arbitrary requests never panic; a translated one is a JSON object with the model.
        #[test]
        fn requests_never_panic(body in small_json(), messages in prop::collection::vec(small_json(), 0..5)) {
            let mut body = body;
            if let Value::Object(o) = &mut body {
                o.insert("messages".into(), Value::Array(messages));
            }
            for direction in [Direction::OpenaiToAnthropic, Direction::AnthropicToOpenai] {
                if let Ok(t) = translate::request(direction, body.to_string().as_bytes(), "m", Limits::default()) {
                    let v: Value = serde_json::from_slice(&t.body).unwrap();
                    prop_assert_eq!(&v["model"], "m");
                    prop_assert!(v["max_tokens"].is_u64());
                }
            }
        }

        /// Arbitrary upstream events (and garbage) never panic, and the output always passes
        /// the client SDK's rules as the summaries check them.
        #[test]
        fn streams_never_panic_and_parse(events in prop::collection::vec(event_json(), 0..12), junk in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut anthropic_up = String::new();
            let mut openai_up = String::new();
            for e in &events {
                anthropic_up.push_str(&format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")));
                openai_up.push_str(&format!("data: {e}\n\n"));
            }
            for (direction, up) in [(Direction::AnthropicToOpenai, &openai_up), (Direction::OpenaiToAnthropic, &anthropic_up)] {
                for extra in [&[][..], &junk[..]] {
                    let out = run(direction, true, &[up.as_bytes(), extra]);
                    match direction {
                        Direction::AnthropicToOpenai => { summarize_anthropic(&out); }
                        Direction::OpenaiToAnthropic => { summarize_openai(&out); }
                    }
                    prop_assert!(!out.is_empty(), "never an empty body");
                }
            }
            for status in [200u16, 400, 529] {
                for direction in [Direction::OpenaiToAnthropic, Direction::AnthropicToOpenai] {
                    let mut t = ResponseTranslator::new(direction, status, false, false);
                    t.feed(&junk);
                    let v: Value = serde_json::from_slice(&t.finish()).unwrap();
                    prop_assert!(v.is_object());
                }
            }
        }
    }
}

/// The fixture tables' size per direction, printed for the record (`--nocapture`), and each
/// table non-empty so a lost table fails.
#[test]
fn fixture_counts() {
    let counts = [
        (
            "openai client -> anthropic upstream: requests",
            openai_request_cases().len(),
        ),
        (
            "openai client -> anthropic upstream: streams",
            to_openai_cases().len(),
        ),
        (
            "anthropic client -> openai upstream: requests",
            anthropic_request_cases().len(),
        ),
        (
            "anthropic client -> openai upstream: streams",
            to_anthropic_cases().len(),
        ),
    ];
    for (what, n) in counts {
        println!("MEASURED fixture cases, {what}: {n}");
        assert!(n > 0, "{what}");
    }
}
