"""Fixtures for the SDK end-to-end tests: a recording mock upstream speaking the OpenAI and
Anthropic APIs, and the real ai-proxy binary (env AI_PROXY_BIN) in front of it."""

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TOKEN = "sdk-client-token-0123456789abcdef"
OPENAI_KEY = "sk-sdk-upstream-openai-1234"
ANTHROPIC_KEY = "sk-ant-sdk-upstream-5678"

ROOT = Path(__file__).resolve().parents[3]


def _binary():
    path = os.environ.get("AI_PROXY_BIN")
    if path:
        return path
    for candidate in ("target/debug/ai-proxy", "target/release/ai-proxy"):
        if (ROOT / candidate).exists():
            return str(ROOT / candidate)
    pytest.fail("set AI_PROXY_BIN to a built ai-proxy binary (cargo build -p ai-proxy)")


def _sse(handler, events):
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.send_header("cache-control", "no-cache")
    handler.end_headers()
    for event in events:
        handler.wfile.write(event.encode())
        handler.wfile.flush()
        time.sleep(0.02)
    handler.close_connection = True


def _json(handler, status, body):
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


# The usage a streamed chat completion reports in its final chunk, when asked.
STREAM_USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


def _openai_chat(handler, body):
    model = body["model"]
    if body.get("stream"):
        # As the real API: a usage chunk (empty choices) only with stream_options.include_usage,
        # and then `"usage": null` on every other chunk.
        include_usage = (body.get("stream_options") or {}).get("include_usage") is True
        events = []
        for i, piece in enumerate(["Hello", " from", " upstream"]):
            delta = {"content": piece}
            if i == 0:
                delta["role"] = "assistant"
            chunk = {
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
            if include_usage:
                chunk["usage"] = None
            events.append(f"data: {json.dumps(chunk)}\n\n")
        last = {
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        if include_usage:
            last["usage"] = None
        events.append(f"data: {json.dumps(last)}\n\n")
        if include_usage:
            usage = {
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [], "usage": STREAM_USAGE,
            }
            events.append(f"data: {json.dumps(usage)}\n\n")
        events.append("data: [DONE]\n\n")
        _sse(handler, events)
    else:
        _json(handler, 200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from upstream"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
        })


def _anthropic_message(handler, body):
    model = body["model"]
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    if body.get("stream"):
        def ev(name, data):
            return f"event: {name}\ndata: {json.dumps(data)}\n\n"
        events = [
            ev("message_start", {"type": "message_start", "message": message}),
            ev("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}}),
            ev("ping", {"type": "ping"}),
        ]
        for piece in ["Hello", " from", " claude"]:
            events.append(ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                     "delta": {"type": "text_delta", "text": piece}}))
        events += [
            ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": 3}}),
            ev("message_stop", {"type": "message_stop"}),
        ]
        _sse(handler, events)
    else:
        message["content"] = [{"type": "text", "text": "Hello from claude"}]
        message["stop_reason"] = "end_turn"
        _json(handler, 200, message)


class Upstream:
    """A mock upstream that records every request it gets."""

    def __init__(self):
        self.requests = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                body = json.loads(raw)
                upstream.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "raw": raw})
                path = self.path.split("?")[0]
                if path == "/v1/chat/completions":
                    _openai_chat(self, body)
                elif path == "/v1/embeddings":
                    _json(self, 200, {"object": "list", "model": body["model"], "data": [
                        {"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                        "usage": {"prompt_tokens": 1, "total_tokens": 1}})
                elif path == "/v1/messages":
                    _anthropic_message(self, body)
                elif path == "/v1/messages/count_tokens":
                    _json(self, 200, {"input_tokens": 42})
                else:
                    _json(self, 404, {"error": {"message": f"mock has no {path}"}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last(self):
        assert self.requests, "the upstream got no request"
        return self.requests[-1]


class Proxy:
    """The real binary on an OS-chosen port, with its log lines collected."""

    def __init__(self, upstream, clients="", env_extra="", models=""):
        """`clients`: a `clients:` section to append; `env_extra`: more `.env` lines;
        `models`: more entries of the `models:` list."""
        self.dir = Path(tempfile.mkdtemp(prefix="ai-proxy-sdk-"))
        (self.dir / ".env").write_text(
            f"PORT=0\nBIND=127.0.0.1\nAUTH_TOKEN={TOKEN}\n"
            f"OPENAI_API_KEY={OPENAI_KEY}\nANTHROPIC_API_KEY={ANTHROPIC_KEY}\n{env_extra}"
        )
        base = f"http://127.0.0.1:{upstream.port}"
        (self.dir / "provider-config.yaml").write_text(
            "providers:\n"
            f"  - name: openai\n    kind: openai\n    base_url: {base}/v1\n    api_key: ${{OPENAI_API_KEY}}\n"
            f"  - name: anthropic\n    kind: anthropic\n    base_url: {base}\n    api_key: ${{ANTHROPIC_API_KEY}}\n"
            "models:\n"
            "  - name: gpt-4o-mini\n    targets:\n      - provider: openai\n        model: upstream-gpt\n"
            "  - name: text-embedding-3-small\n    targets:\n      - provider: openai\n"
            "  - name: claude-haiku-4-5\n    targets:\n      - provider: anthropic\n        model: upstream-claude\n"
            + models
            + clients
        )
        self.lines = []
        listening = queue.Queue()
        self.process = subprocess.Popen(
            [_binary(), "serve", "--config-dir", str(self.dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )

        def read():
            for line in self.process.stdout:
                self.lines.append(line)
                if '"msg":"listening"' in line:
                    listening.put(json.loads(line)["port"])

        threading.Thread(target=read, daemon=True).start()
        try:
            self.port = listening.get(timeout=20)
        except queue.Empty:
            self.process.kill()
            pytest.fail(f"ai-proxy did not start: {self.process.stderr.read()}")
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def upstream():
    server = Upstream()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="session")
def proxy(upstream):
    running = Proxy(upstream)
    yield running
    running.stop()
    assert running.process.returncode == 0, "ai-proxy did not exit cleanly on SIGTERM"
