//! Upstream stream fixtures and the summaries that make translated output readable in a
//! table: one line per client event.

use ai_proxy::translate::sse::{Event, Parser};
use serde_json::{Value, json};

/// An OpenAI stream: one `data:` line per chunk, then `[DONE]` unless `done` is false.
pub fn openai_sse(chunks: &[Value], done: bool) -> String {
    let mut s = String::new();
    for c in chunks {
        s.push_str(&format!("data: {c}\n\n"));
    }
    if done {
        s.push_str("data: [DONE]\n\n");
    }
    s
}

/// An OpenAI chunk with `delta` and `finish_reason`.
pub fn oc(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

/// OpenAI's usage chunk.
pub fn ousage(prompt: u64, completion: u64, cached: u64) -> Value {
    json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
        "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion, "prompt_tokens_details": {"cached_tokens": cached}}})
}

/// An Anthropic stream: each value's `type` as its event name.
pub fn anthropic_sse(events: &[Value]) -> String {
    let mut s = String::new();
    for e in events {
        s.push_str(&format!(
            "event: {}\ndata: {e}\n\n",
            e["type"].as_str().unwrap()
        ));
    }
    s
}

/// Anthropic `message_start` with input usage.
pub fn astart(input: u64, cache_read: u64, cache_write: u64) -> Value {
    json!({"type": "message_start", "message": {"id": "msg_9", "type": "message", "role": "assistant",
        "model": "claude-x", "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": input, "output_tokens": 1, "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write}}})
}

/// `content_block_start`.
pub fn ablock(index: u64, block: Value) -> Value {
    json!({"type": "content_block_start", "index": index, "content_block": block})
}

/// `content_block_delta`.
pub fn adelta(index: u64, delta: Value) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": delta})
}

/// `content_block_stop`.
pub fn astop(index: u64) -> Value {
    json!({"type": "content_block_stop", "index": index})
}

/// `message_delta` then `message_stop`.
pub fn aend(stop: &str, output: u64) -> [Value; 2] {
    [
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": output}}),
        json!({"type": "message_stop"}),
    ]
}

/// The events of an SSE text.
pub fn events(bytes: &[u8]) -> Vec<Event> {
    let mut p = Parser::default();
    let mut v = Vec::new();
    p.feed(bytes, |e| v.push(e));
    p.finish(|e| v.push(e));
    v
}

/// One line per Anthropic event, after checking what the anthropic SDK's accumulator
/// requires: every event named as its `type`, `message_start` first and once, contiguous
/// block indexes from 0, one open block at a time, deltas only to the open block, nothing
/// after `message_stop` or `error`.
pub fn summarize_anthropic(bytes: &[u8]) -> Vec<String> {
    let mut s = AnthropicSummary::default();
    for e in events(bytes) {
        assert!(!s.ended, "event after the end: {e:?}");
        assert!(
            !e.comment,
            "Anthropic clients get ping events, not comments"
        );
        let v: Value = serde_json::from_str(&e.data).expect("every data is JSON");
        let kind = v["type"].as_str().expect("type").to_owned();
        assert_eq!(e.name, kind, "event name and type differ");
        if kind != "error" && kind != "ping" {
            assert_eq!(
                s.started,
                kind != "message_start",
                "message_start must come first, once"
            );
        }
        match kind.as_str() {
            "message_start" => s.message_start(&v),
            "content_block_start" => s.block_start(&v),
            "content_block_delta" => s.block_delta(&v),
            "content_block_stop" => s.block_stop(&v),
            "message_delta" => s.message_delta(&v),
            "message_stop" => {
                s.ended = true;
                s.out.push("stop".to_owned());
            }
            "error" => {
                s.ended = true;
                s.out
                    .push(format!("error {}", v["error"]["message"].as_str().unwrap()));
            }
            "ping" => s.out.push("ping".to_owned()),
            other => panic!("unknown event {other}"),
        }
    }
    s.out
}

/// The state `summarize_anthropic` carries from event to event, with one method per event
/// kind that checks it and pushes its line.
#[derive(Default)]
struct AnthropicSummary {
    out: Vec<String>,
    started: bool,
    ended: bool,
    open: Option<u64>,
    next: u64,
}

impl AnthropicSummary {
    fn message_start(&mut self, v: &Value) {
        self.started = true;
        assert!(v["message"]["usage"]["input_tokens"].is_u64());
        assert!(v["message"]["usage"]["output_tokens"].is_u64());
        self.out.push("start".to_owned());
    }

    fn block_start(&mut self, v: &Value) {
        let next = self.next;
        assert_eq!(self.open, None, "a block opened while another is open");
        assert_eq!(v["index"], next, "block indexes are contiguous");
        self.open = Some(next);
        let b = &v["content_block"];
        let line = match b["type"].as_str().unwrap() {
            "tool_use" => {
                assert_eq!(b["input"], json!({}), "tool input only by deltas");
                format!(
                    "open {next} tool {} {}",
                    b["id"].as_str().unwrap(),
                    b["name"].as_str().unwrap()
                )
            }
            t => format!("open {next} {t}"),
        };
        self.out.push(line);
    }

    fn block_delta(&mut self, v: &Value) {
        assert_eq!(
            Some(v["index"].as_u64().unwrap()),
            self.open,
            "delta to a block not open"
        );
        let d = &v["delta"];
        let line = match d["type"].as_str().unwrap() {
            "text_delta" => format!("text {}", d["text"].as_str().unwrap()),
            "thinking_delta" => format!("think {}", d["thinking"].as_str().unwrap()),
            "input_json_delta" => format!("json {}", d["partial_json"].as_str().unwrap()),
            t => panic!("unexpected delta {t}"),
        };
        self.out.push(line);
    }

    fn block_stop(&mut self, v: &Value) {
        assert_eq!(
            Some(v["index"].as_u64().unwrap()),
            self.open,
            "stop of a block not open"
        );
        self.open = None;
        self.next += 1;
        self.out.push("close".to_owned());
    }

    fn message_delta(&mut self, v: &Value) {
        assert_eq!(self.open, None, "message_delta with a block open");
        let u = &v["usage"];
        self.out.push(format!(
            "delta {} in={} out={} cache_read={} cache_write={}",
            v["delta"]["stop_reason"]
                .as_str()
                .expect("stop_reason never null"),
            u["input_tokens"],
            u["output_tokens"],
            u["cache_read_input_tokens"],
            u["cache_creation_input_tokens"]
        ));
    }
}

/// One line per OpenAI chunk, after checking what the openai SDK's accumulator requires:
/// the first chunk gives the role, tool indexes dense from 0 with `id`, `type` and `name`
/// in the first delta of each, `function` in every tool delta, `finish_reason` once and on the
/// last choice chunk, the usage chunk after it, `[DONE]` last.
pub fn summarize_openai(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen_tools = 0u64;
    let mut finished = false;
    let mut ended = false;
    let mut chunks = 0;
    for e in events(bytes) {
        assert!(!ended, "chunk after the end: {e:?}");
        if e.comment {
            out.push("keepalive".to_owned());
            continue;
        }
        assert!(e.name.is_empty(), "OpenAI chunks have no event name");
        if e.data == "[DONE]" {
            ended = true;
            out.push("done".to_owned());
            continue;
        }
        let v: Value = serde_json::from_str(&e.data).expect("every data is JSON");
        if let Some(err) = v.get("error") {
            ended = true;
            out.push(format!("error {}", err["message"].as_str().unwrap()));
            continue;
        }
        assert_eq!(v["object"], "chat.completion.chunk");
        let choices = v["choices"].as_array().expect("choices");
        if choices.is_empty() {
            assert!(finished, "usage chunk before finish_reason");
            let u = &v["usage"];
            out.push(format!(
                "usage prompt={} completion={} cached={}",
                u["prompt_tokens"],
                u["completion_tokens"],
                u["prompt_tokens_details"]["cached_tokens"]
            ));
            continue;
        }
        assert!(!finished, "a choice chunk after finish_reason");
        let c = &choices[0];
        let d = &c["delta"];
        if chunks == 0 {
            assert_eq!(d["role"], "assistant", "the first delta gives the role");
            out.push("role".to_owned());
        }
        chunks += 1;
        if let Some(t) = d["content"].as_str().filter(|t| !t.is_empty()) {
            out.push(format!("text {t}"));
        }
        if let Some(t) = d["reasoning_content"].as_str() {
            out.push(format!("think {t}"));
        }
        for call in d["tool_calls"].as_array().into_iter().flatten() {
            let i = call["index"].as_u64().expect("tool index");
            assert!(
                call["function"].is_object(),
                "every tool delta has function"
            );
            if call.get("id").is_some() {
                assert_eq!(i, seen_tools, "tool indexes are dense");
                seen_tools += 1;
                assert_eq!(call["type"], "function");
                out.push(format!(
                    "tool {i} {} {}",
                    call["id"].as_str().unwrap(),
                    call["function"]["name"].as_str().unwrap()
                ));
            } else {
                assert!(i < seen_tools, "arguments before the call's first delta");
                out.push(format!(
                    "args {i} {}",
                    call["function"]["arguments"].as_str().unwrap()
                ));
            }
        }
        if let Some(f) = c["finish_reason"].as_str() {
            finished = true;
            out.push(format!("finish {f}"));
        }
    }
    out
}
