"""OpenAI ⇄ Anthropic translation (issue 12) with the official SDKs as oracles: each scenario is
served by a scripted upstream of the other API, once as JSON and once streamed, and the SDK's
own stream accumulator (anthropic `messages.stream()`, openai `chat.completions.stream()`) must
build the same final message from the translated stream as the SDK parses from the translated
JSON. Also: a Claude Code request shape replayed over a three-turn tool loop, errors, and the
routes that stay native."""

import json
import re
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading

import anthropic
import openai
import pytest

from conftest import TOKEN, Proxy

ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")


class Scripted:
    """An upstream whose answer each test sets: `reply(body) -> (status, headers, bytes|list)`;
    a list is sent as SSE events one write at a time. Records every request."""

    def __init__(self):
        self.requests = []
        self.reply = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                body = json.loads(raw)
                outer.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                status, headers, payload = outer.reply(body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if isinstance(payload, list):
                    self.send_header("content-type", "text/event-stream")
                    self.end_headers()
                    for event in payload:
                        self.wfile.write(event.encode())
                        self.wfile.flush()
                        time.sleep(0.005)
                    self.close_connection = True
                else:
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last(self):
        assert self.requests, "the upstream got no request"
        return self.requests[-1]


@pytest.fixture(scope="module")
def scripted():
    s = Scripted()
    yield s
    s.server.shutdown()


@pytest.fixture(scope="module")
def tproxy(scripted):
    running = Proxy(scripted)
    yield running
    running.stop()


@pytest.fixture
def claude(tproxy):
    # gpt-4o-mini is served only by the openai-kind provider: Anthropic clients are translated.
    return anthropic.Anthropic(base_url=tproxy.url, api_key=TOKEN, max_retries=0)


@pytest.fixture
def oai(tproxy):
    # claude-haiku-4-5 is served only by the anthropic-kind provider.
    return openai.OpenAI(base_url=f"{tproxy.url}/v1", api_key=TOKEN, max_retries=0)


# ---- what an OpenAI upstream says, as JSON and as a stream, from one list of parts ----

def openai_reply(parts, finish, usage, error_after=None):
    """parts: ("think", s) | ("text", s) | ("tool", id, name, args)."""
    def reply(body):
        if not body.get("stream"):
            msg = {"role": "assistant", "content": "".join(p[1] for p in parts if p[0] == "text") or None}
            think = "".join(p[1] for p in parts if p[0] == "think")
            if think:
                msg["reasoning_content"] = think
            calls = [{"id": p[1], "type": "function", "function": {"name": p[2], "arguments": p[3]}} for p in parts if p[0] == "tool"]
            if calls:
                msg["tool_calls"] = calls
            return 200, {}, json.dumps({"id": "chatcmpl-7", "object": "chat.completion", "created": 1, "model": "up",
                                        "choices": [{"index": 0, "message": msg, "finish_reason": finish}], "usage": usage}).encode()
        assert body["stream_options"] == {"include_usage": True}, "the proxy asks for the usage chunk"
        def chunk(delta, fin=None):
            return "data: " + json.dumps({"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1, "model": "up",
                                          "choices": [{"index": 0, "delta": delta, "finish_reason": fin}]}) + "\n\n"
        events = [chunk({"role": "assistant", "content": ""})]
        tool_index = 0
        for n, p in enumerate(parts):
            if error_after is not None and n == error_after:
                events.append('data: {"error": {"message": "upstream exploded", "type": "server_error"}}\n\n')
                return 200, {}, events
            if p[0] == "think":
                for piece in (p[1][:3], p[1][3:]):
                    events.append(chunk({"reasoning_content": piece}))
            elif p[0] == "text":
                for piece in (p[1][:2], p[1][2:]):
                    events.append(chunk({"content": piece}))
            else:
                events.append(chunk({"tool_calls": [{"index": tool_index, "id": p[1], "type": "function", "function": {"name": p[2], "arguments": ""}}]}))
                half = len(p[3]) // 2
                for piece in (p[3][:half], p[3][half:]):
                    events.append(chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": piece}}]}))
                tool_index += 1
        events.append(chunk({}, finish))
        events.append("data: " + json.dumps({"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1, "model": "up", "choices": [], "usage": usage}) + "\n\n")
        events.append("data: [DONE]\n\n")
        return 200, {}, events
    return reply


# ---- what an Anthropic upstream says ----

def anthropic_reply(parts, stop, usage, error_after=None):
    def reply(body):
        content = []
        for p in parts:
            if p[0] == "think":
                content.append({"type": "thinking", "thinking": p[1], "signature": "sig"})
            elif p[0] == "text":
                content.append({"type": "text", "text": p[1]})
            else:
                content.append({"type": "tool_use", "id": p[1], "name": p[2], "input": json.loads(p[3])})
        if not body.get("stream"):
            return 200, {}, json.dumps({"id": "msg_7", "type": "message", "role": "assistant", "model": "up", "content": content,
                                        "stop_reason": stop, "stop_sequence": None, "usage": usage}).encode()
        def ev(d):
            return f"event: {d['type']}\ndata: {json.dumps(d)}\n\n"
        start_usage = {k: v for k, v in usage.items() if k != "output_tokens"} | {"output_tokens": 1}
        events = [ev({"type": "message_start", "message": {"id": "msg_7", "type": "message", "role": "assistant", "model": "up",
                                                           "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
                  ev({"type": "ping"})]
        for i, p in enumerate(parts):
            if error_after is not None and i == error_after:
                events.append(ev({"type": "error", "error": {"type": "overloaded_error", "message": "upstream exploded"}}))
                return 200, {}, events
            if p[0] == "think":
                events += [ev({"type": "content_block_start", "index": i, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
                           ev({"type": "content_block_delta", "index": i, "delta": {"type": "thinking_delta", "thinking": p[1]}}),
                           ev({"type": "content_block_delta", "index": i, "delta": {"type": "signature_delta", "signature": "sig"}})]
            elif p[0] == "text":
                events += [ev({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}),
                           ev({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": p[1][:2]}}),
                           ev({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": p[1][2:]}})]
            else:
                half = len(p[3]) // 2
                events += [ev({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": p[1], "name": p[2], "input": {}}}),
                           ev({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": p[3][:half]}}),
                           ev({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": p[3][half:]}})]
            events.append(ev({"type": "content_block_stop", "index": i}))
        events += [ev({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": usage["output_tokens"]}}),
                   ev({"type": "message_stop"})]
        return 200, {}, events
    return reply


SCENARIOS = {
    "text": ([("text", "Hello world")], "stop", "end_turn"),
    "two_parallel_tools": ([("tool", "call_a", "ls", '{"path": "/tmp"}'), ("tool", "call_b", "cat", '{"file": "x"}')], "tool_calls", "tool_use"),
    "thinking_text_tool": ([("think", "Let me think"), ("text", "I will look."), ("tool", "functions.Bash:0", "Bash", '{"cmd": "ls"}')], "tool_calls", "tool_use"),
}

IMAGE = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def anthropic_view(m):
    return {"id": m.id, "role": m.role, "stop_reason": m.stop_reason, "content": [b.model_dump() for b in m.content],
            "usage": {k: getattr(m.usage, k) for k in ("input_tokens", "output_tokens", "cache_read_input_tokens")}}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_anthropic_sdk_on_openai_upstream(claude, scripted, name):
    parts, finish, stop = SCENARIOS[name]
    usage = {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29, "prompt_tokens_details": {"cached_tokens": 5}}
    scripted.reply = openai_reply(parts, finish, usage)
    kwargs = dict(model="gpt-4o-mini", max_tokens=100, messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": IMAGE}}]}])
    plain = claude.messages.create(**kwargs)
    sent = scripted.last()
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE}"}}
    with claude.messages.stream(**kwargs) as stream:
        streamed = stream.get_final_message()
    assert anthropic_view(streamed) == anthropic_view(plain)
    assert plain.stop_reason == stop
    assert plain.usage.input_tokens == 15 and plain.usage.cache_read_input_tokens == 5 and plain.usage.output_tokens == 9
    for block in plain.content:
        if block.type == "tool_use":
            assert ID_RE.match(block.id), block.id
    kinds = [b.type for b in streamed.content]
    assert kinds == [{"think": "thinking", "text": "text", "tool": "tool_use"}[p[0]] for p in parts]


def test_anthropic_sdk_on_interleaved_parallel_tool_calls(claude, scripted):
    """An upstream that starts both calls, then alternates their argument fragments: the
    stream is reordered into one block per call, equal to the JSON answer."""
    calls = [("call_a", "ls", '{"path": "/tmp", "all": true}'), ("call_b", "cat", '{"file": "x.txt"}')]
    base = openai_reply([("tool", *c) for c in calls], "tool_calls", {"prompt_tokens": 3, "completion_tokens": 2})

    def reply(body):
        if not body.get("stream"):
            return base(body)
        def chunk(delta, fin=None):
            return "data: " + json.dumps({"id": "chatcmpl-8", "object": "chat.completion.chunk", "created": 1, "model": "up",
                                          "choices": [{"index": 0, "delta": delta, "finish_reason": fin}]}) + "\n\n"
        events = [chunk({"role": "assistant", "content": None})]
        events += [chunk({"tool_calls": [{"index": i, "id": c[0], "type": "function", "function": {"name": c[1], "arguments": ""}}]})
                   for i, c in enumerate(calls)]
        pieces = [[c[2][j:j + 5] for j in range(0, len(c[2]), 5)] for c in calls]
        for j in range(max(len(p) for p in pieces)):
            for i, p in enumerate(pieces):
                if j < len(p):
                    events.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": p[j]}}]}))
        events += [chunk({}, "tool_calls"), "data: [DONE]\n\n"]
        return 200, {}, events

    scripted.reply = reply
    kwargs = dict(model="gpt-4o-mini", max_tokens=100, messages=[{"role": "user", "content": "look"}])
    plain = claude.messages.create(**kwargs)
    with claude.messages.stream(**kwargs) as stream:
        streamed = stream.get_final_message()
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in plain.content]
    assert [(b.id, b.name, b.input) for b in streamed.content] == [(c[0], c[1], json.loads(c[2])) for c in calls]


def test_thinking_tool_loop_on_a_reasoning_openai_upstream(claude, scripted):
    """thinking with a budget asks the OpenAI-kind upstream for reasoning_effort; its
    reasoning_content comes back as thinking blocks, and when the client replays them in a tool
    loop, every assistant tool-call turn carries reasoning_content again, empty when it had
    none (DeepSeek and Kimi refuse the turn otherwise)."""
    turns = [[("think", "First, list."), ("tool", "call_1", "ls", '{"p": "."}')],
             [("tool", "call_2", "ls", '{"p": ".."}')],
             [("text", "done")]]
    messages = [{"role": "user", "content": "look around"}]
    for n, parts in enumerate(turns):
        scripted.reply = openai_reply(parts, "tool_calls" if parts[-1][0] == "tool" else "stop", {"prompt_tokens": 1, "completion_tokens": 1})
        with claude.messages.stream(model="gpt-4o-mini", max_tokens=20000, thinking={"type": "enabled", "budget_tokens": 8000},
                                    messages=messages) as stream:
            reply = stream.get_final_message()
        up = scripted.last()["body"]
        assert up["reasoning_effort"] == "medium" and "thinking" not in up
        assistants = [m for m in up["messages"] if m["role"] == "assistant"]
        assert [m.get("reasoning_content") for m in assistants] == ["First, list.", ""][:n]
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in reply.content]})
        if parts[-1][0] == "tool":
            messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": reply.content[-1].id, "content": "ok"}]})
    assert [b.type for b in reply.content] == ["text"]


def openai_view(c):
    m = c.choices[0].message
    return {"id": c.id, "finish_reason": c.choices[0].finish_reason, "content": m.content,
            "reasoning": (m.model_extra or {}).get("reasoning_content"),
            "tool_calls": [(t.id, t.function.name, json.loads(t.function.arguments)) for t in (m.tool_calls or [])],
            "usage": (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.prompt_tokens_details.cached_tokens)}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_openai_sdk_on_anthropic_upstream(oai, scripted, name):
    parts, finish, stop = SCENARIOS[name]
    parts = [("tool", "toolu_" + p[1].replace(".", "").replace(":", ""), p[2], p[3]) if p[0] == "tool" else p for p in parts]
    usage = {"input_tokens": 12, "output_tokens": 8, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2}
    scripted.reply = anthropic_reply(parts, stop, usage)
    kwargs = dict(model="claude-haiku-4-5", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE}"}}]}])
    plain = oai.chat.completions.create(**kwargs)
    sent = scripted.last()
    assert sent["path"] == "/v1/messages"
    assert sent["body"]["system"] == "be brief"
    assert sent["body"]["max_tokens"] == 4096
    assert sent["body"]["messages"][0]["content"][1]["source"] == {"type": "base64", "media_type": "image/png", "data": IMAGE}
    with oai.chat.completions.stream(stream_options={"include_usage": True}, **kwargs) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_completion()
    assert openai_view(streamed) == openai_view(plain)
    assert plain.choices[0].finish_reason == finish
    assert openai_view(plain)["usage"] == (17, 8, 3)


def test_mid_stream_errors_reach_both_sdks(claude, oai, scripted):
    parts = SCENARIOS["thinking_text_tool"][0]
    scripted.reply = openai_reply(parts, "tool_calls", {"prompt_tokens": 1, "completion_tokens": 1}, error_after=2)
    with pytest.raises(anthropic.APIStatusError, match="upstream exploded"):
        with claude.messages.stream(model="gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": "x"}]) as s:
            s.get_final_message()
    scripted.reply = anthropic_reply([("text", "partial"), ("text", "more")], "end_turn",
                                     {"input_tokens": 1, "output_tokens": 1}, error_after=1)
    with pytest.raises(openai.APIError, match="upstream exploded"):
        with oai.chat.completions.stream(model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}]) as s:
            for _ in s:
                pass


def test_upstream_errors_in_the_callers_shape(claude, oai, scripted):
    # A 4xx other than 429 is relayed at once (no fallback), in the caller's shape.
    scripted.reply = lambda body: (400, {"retry-after": "7"}, json.dumps(
        {"error": {"message": "context too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}).encode())
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(model="gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert err.value.body == {"type": "error", "error": {"type": "invalid_request_error", "message": "context too long"}}
    assert err.value.response.headers["retry-after"] == "7"
    scripted.reply = lambda body: (413, {}, json.dumps(
        {"type": "error", "error": {"type": "request_too_large", "message": "Request exceeds the maximum size"}}).encode())
    with pytest.raises(openai.APIStatusError) as err:
        oai.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 413
    assert err.value.body["message"] == "Request exceeds the maximum size"
    assert err.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError, match="image/bmp"):
        oai.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}]}])
    with pytest.raises(openai.BadRequestError, match="`n`"):
        oai.chat.completions.create(model="claude-haiku-4-5", n=2, messages=[{"role": "user", "content": "x"}])


# Each target's upstream model names how it fails; the model names say which targets are tried.
FAILING_MODELS = "".join(
    f"  - name: {name}\n    targets:\n" + "".join(f"      - provider: {p}\n        model: {m}\n" for p, m in targets)
    for name, targets in {
        "oa-then-claude": [("openai", "fail-500"), ("anthropic", "fail-529")],
        "claude-then-oa": [("anthropic", "fail-529"), ("openai", "fail-429")],
        "native-oa": [("openai", "fail-500")],
        "native-claude": [("anthropic", "fail-529")],
    }.items())

FAILURES = {
    "fail-500": (500, {}, {"error": {"message": "upstream broke", "type": "server_error", "code": None}}),
    "fail-529": (529, {"retry-after": "3"}, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    "fail-429": (429, {"retry-after": "7"}, {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
}


@pytest.fixture(scope="module")
def fproxy(scripted):
    running = Proxy(scripted, models=FAILING_MODELS)
    yield running
    running.stop()


def fail_by_model(body):
    status, headers, payload = FAILURES[body["model"]]
    return status, headers, json.dumps(payload).encode()


def test_the_last_targets_429_or_5xx_is_relayed_in_the_callers_shape(fproxy, scripted):
    """Every target failed: the client gets the last one's status, retry-after and body (in
    its own API's shape), so each SDK raises the class it would raise on that provider."""
    scripted.reply = fail_by_model
    oai = openai.OpenAI(base_url=f"{fproxy.url}/v1", api_key=TOKEN, max_retries=0)
    claude = anthropic.Anthropic(base_url=fproxy.url, api_key=TOKEN, max_retries=0)
    msgs = [{"role": "user", "content": "x"}]
    before = len(scripted.requests)
    # An OpenAI client whose last target is Anthropic's 529: 503 with overloaded_error.
    with pytest.raises(openai.InternalServerError) as err:
        oai.chat.completions.create(model="oa-then-claude", messages=msgs)
    assert err.value.status_code == 503
    assert err.value.body == {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}
    assert err.value.response.headers["retry-after"] == "3"
    assert [r["path"] for r in scripted.requests[before:]] == ["/v1/chat/completions", "/v1/messages"]
    # An Anthropic client whose last target is an OpenAI-kind 429: rate_limit_error.
    with pytest.raises(anthropic.RateLimitError) as err:
        claude.messages.create(model="claude-then-oa", max_tokens=10, messages=msgs)
    assert err.value.body == {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}}
    assert err.value.response.headers["retry-after"] == "7"
    # Native: the upstream's own status and body.
    with pytest.raises(openai.InternalServerError) as err:
        oai.chat.completions.create(model="native-oa", messages=msgs)
    assert err.value.status_code == 500
    assert err.value.body == FAILURES["fail-500"][2]["error"]
    with pytest.raises(anthropic.OverloadedError) as err:
        claude.messages.create(model="native-claude", max_tokens=10, messages=msgs)
    assert err.value.status_code == 529
    assert err.value.response.headers["retry-after"] == "3"
    # A streamed request fails the same way: before any byte, with the status.
    with pytest.raises(anthropic.RateLimitError):
        with claude.messages.stream(model="claude-then-oa", max_tokens=10, messages=msgs) as s:
            s.get_final_message()
    with pytest.raises(openai.APIStatusError) as err:
        with oai.chat.completions.stream(model="oa-then-claude", messages=msgs) as s:
            for _ in s:
                pass
    assert err.value.status_code == 503
    lines = [json.loads(line) for line in fproxy.lines if '"msg":"request"' in line]
    refused = [l for l in lines if l.get("outcome") == "upstream_refused"]
    assert {(l["model"], l["status"]) for l in refused} == {
        ("oa-then-claude", 503), ("claude-then-oa", 429), ("native-oa", 500), ("native-claude", 529)}


def test_native_routes_and_count_tokens(claude, oai, tproxy):
    with pytest.raises(anthropic.NotFoundError) as err:
        claude.messages.count_tokens(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(openai.NotFoundError):
        oai.embeddings.create(model="claude-haiku-4-5", input="x")
    req = urllib.request.Request(tproxy.url + "/", method="HEAD")
    assert urllib.request.urlopen(req, timeout=5).status == 200


def post(url, body, headers):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, dict(r.headers), json.loads(r.read())


def tokens_total(proxy, model, kind):
    req = urllib.request.Request(f"{proxy.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = urllib.request.urlopen(req, timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("ai_proxy_tokens_total{") and f'model="{model}"' in line and f'type="{kind}"' in line)


def test_claude_code_tool_loop_on_an_openai_upstream(tproxy, scripted):
    """Claude Code's request shape (?beta=true, anthropic-beta, thinking adaptive, cache_control,
    tools with strict/defer_loading), three turns of a tool loop, checked turn by turn."""
    turns = [
        [("tool", "functions.Bash:0", "Bash", '{"command": "ls"}')],
        [("tool", "functions.Read:1", "Read", '{"path": "a.txt"}')],
        [("text", "Done: a.txt says hi")],
    ]
    headers = {"x-api-key": TOKEN, "anthropic-version": "2023-06-01",
               "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14"}
    tools = [{"name": "Bash", "description": "run", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
              "strict": True, "cache_control": {"type": "ephemeral"}},
             {"name": "Read", "description": "read", "input_schema": {"type": "object"}, "defer_loading": True}]
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is in a.txt?", "cache_control": {"type": "ephemeral"}}]}]
    before = tokens_total(tproxy, "gpt-4o-mini", "output")
    for n, parts in enumerate(turns):
        finish = "tool_calls" if parts[0][0] == "tool" else "stop"
        scripted.reply = openai_reply(parts, finish, {"prompt_tokens": 10, "completion_tokens": 4})
        body = {"model": "gpt-4o-mini", "max_tokens": 32000, "thinking": {"type": "adaptive"}, "stream": False,
                "system": [{"type": "text", "text": "You are Claude Code."}], "tools": tools, "messages": messages,
                "context_management": {"edits": []}, "metadata": {"user_id": "session-1"}}
        status, got_headers, reply = post(f"{tproxy.url}/v1/messages?beta=true", body, headers)
        assert status == 200
        sent = scripted.last()
        assert sent["path"] == "/v1/chat/completions", "no query string on a translated request"
        assert "anthropic-beta" not in sent["headers"] and "anthropic-version" not in sent["headers"]
        dropped = got_headers["x-ai-proxy-dropped"].split(", ")
        for name in ("cache_control", "context_management", "tools.strict", "tools.defer_loading"):
            assert name in dropped, (name, dropped)
        up = sent["body"]
        # Adaptive thinking leaves the upstream model's default: no reasoning_effort, nothing dropped.
        assert "thinking" not in dropped and "reasoning_effort" not in up and "thinking" not in up
        assert up["messages"][0] == {"role": "system", "content": "You are Claude Code."}
        assert [t["function"]["name"] for t in up["tools"]] == ["Bash", "Read"]
        assert "strict" not in json.dumps(up["tools"]) and "defer_loading" not in json.dumps(up["tools"])
        if n > 0:
            # The previous turn's tool call and result come back under the upstream's own id.
            prev_id = turns[n - 1][0][1]
            assert up["messages"][-2]["tool_calls"][0]["id"] == prev_id
            assert up["messages"][-1] == {"role": "tool", "tool_call_id": prev_id, "content": f"result {n}"}
        messages.append({"role": "assistant", "content": reply["content"]})
        if parts[0][0] == "tool":
            block = reply["content"][0]
            assert block["type"] == "tool_use" and ID_RE.match(block["id"])
            assert block["input"] == json.loads(parts[0][3])
            assert reply["stop_reason"] == "tool_use"
            messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": f"result {n + 1}"}]})
        else:
            assert reply["content"] == [{"type": "text", "text": "Done: a.txt says hi"}]
            assert reply["stop_reason"] == "end_turn"
    # Usage is counted from the upstream's (OpenAI) format: 3 turns x 4 completion tokens.
    for _ in range(100):
        if tokens_total(tproxy, "gpt-4o-mini", "output") - before >= 12:
            break
        time.sleep(0.02)
    assert tokens_total(tproxy, "gpt-4o-mini", "output") - before == 12
