"""Client keys (issue 13) through the official openai and anthropic SDKs: keys made by
`ai-proxy keys new` and pasted into the config, per-key models, a limit and its window, and
token usage counted exactly — the usage chunk the proxy asks for never reaches a client that
did not ask for it."""

import subprocess
import time
import urllib.request

import anthropic
import openai
import pytest

from conftest import STREAM_USAGE, TOKEN, Proxy, _binary

HI = [{"role": "user", "content": "hi"}]


def keys_new(name):
    """The key and the `clients:` entry `ai-proxy keys new NAME` prints."""
    out = subprocess.run(
        [_binary(), "keys", "new", name], capture_output=True, text=True, check=True, env={}
    ).stdout
    key = next(line for line in out.splitlines() if line.startswith("aip_"))
    entry = out[out.index("  - name:"):]
    hash_ = next(line.split(":", 1)[1].strip() for line in entry.splitlines() if "key_sha256" in line)
    return {"key": key, "entry": entry, "hash": hash_}


@pytest.fixture(scope="module")
def keys():
    return {name: keys_new(name) for name in ("alice", "bob", "limited")}


@pytest.fixture(scope="module")
def kproxy(upstream, keys):
    clients = (
        "clients:\n"
        + keys["alice"]["entry"] + "    models: [gpt-4o-mini]\n"
        + keys["bob"]["entry"]
        + keys["limited"]["entry"] + "    requests_per_minute: 1\n"
    )
    running = Proxy(upstream, clients=clients, env_extra="RATE_LIMIT_WINDOW=2s\n")
    yield running
    running.stop()


def oai(proxy, key):
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)


def claude(proxy, key):
    return anthropic.Anthropic(base_url=proxy.url, api_key=key, max_retries=0)


def metric(proxy, series):
    req = urllib.request.Request(f"{proxy.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = urllib.request.urlopen(req, timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def tokens(proxy, client, model, provider, kind):
    return metric(
        proxy,
        f'ai_proxy_tokens_total{{client="{client}",model="{model}",provider="{provider}",type="{kind}"}}',
    )


def settled(read, before, want):
    """Waits for a counter to move by `want` (the count lands when the response ends)."""
    for _ in range(100):
        if read() - before >= want:
            break
        time.sleep(0.02)
    return read() - before


def test_two_keys_and_the_operator(kproxy, keys):
    assert oai(kproxy, keys["alice"]["key"]).chat.completions.create(
        model="gpt-4o-mini", messages=HI).choices[0].message.content == "Hello from upstream"
    reply = claude(kproxy, keys["bob"]["key"]).messages.create(
        model="claude-haiku-4-5", max_tokens=8, messages=HI)
    assert reply.content[0].text == "Hello from claude"
    assert oai(kproxy, TOKEN).chat.completions.create(model="gpt-4o-mini", messages=HI).choices
    with pytest.raises(openai.AuthenticationError):
        oai(kproxy, "aip_" + "0" * 64).chat.completions.create(model="gpt-4o-mini", messages=HI)
    # A client key reads no metrics.
    req = urllib.request.Request(f"{kproxy.url}/metrics", headers={"x-api-key": keys["bob"]["key"]})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 403


def test_disallowed_model_is_403_and_not_listed(kproxy, keys, upstream):
    alice = keys["alice"]["key"]
    calls = len(upstream.requests)
    with pytest.raises(openai.PermissionDeniedError) as err:
        oai(kproxy, alice).embeddings.create(model="text-embedding-3-small", input="x")
    assert err.value.body["code"] == "model_not_allowed"
    with pytest.raises(anthropic.PermissionDeniedError) as err:
        claude(kproxy, alice).messages.create(model="claude-haiku-4-5", max_tokens=8, messages=HI)
    assert err.value.body["error"]["type"] == "permission_error"
    assert len(upstream.requests) == calls, "a refused request reached the upstream"
    assert [m.id for m in oai(kproxy, alice).models.list()] == ["gpt-4o-mini"]
    assert [m.id for m in oai(kproxy, keys["bob"]["key"]).models.list()] == [
        "gpt-4o-mini", "text-embedding-3-small", "claude-haiku-4-5"]


def test_openai_json_usage_is_counted(kproxy, keys):
    read = lambda kind: tokens(kproxy, "bob", "gpt-4o-mini", "openai", kind)  # noqa: E731
    before = read("input"), read("output")
    reply = oai(kproxy, keys["bob"]["key"]).chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert settled(lambda: read("output"), before[1], reply.usage.completion_tokens) == reply.usage.completion_tokens
    assert read("input") - before[0] == reply.usage.prompt_tokens


def test_openai_stream_without_include_usage(kproxy, keys, upstream):
    """The proxy asks for the usage chunk, counts it, and removes it: the client gets exactly
    the chunks it would have got without the proxy."""
    read = lambda: tokens(kproxy, "alice", "gpt-4o-mini", "openai", "output")  # noqa: E731
    before = read()
    stream = oai(kproxy, keys["alice"]["key"]).chat.completions.create(
        model="gpt-4o-mini", messages=HI, stream=True)
    chunks = list(stream)
    assert upstream.last()["body"]["stream_options"] == {"include_usage": True}
    assert chunks and all(c.choices for c in chunks), "a chunk without choices reached the client"
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from upstream"
    assert settled(read, before, STREAM_USAGE["completion_tokens"]) == STREAM_USAGE["completion_tokens"]
    assert tokens(kproxy, "alice", "gpt-4o-mini", "openai", "input") >= STREAM_USAGE["prompt_tokens"]


def test_openai_stream_with_include_usage(kproxy, keys, upstream):
    read = lambda: tokens(kproxy, "alice", "gpt-4o-mini", "openai", "input")  # noqa: E731
    before = read()
    stream = oai(kproxy, keys["alice"]["key"]).chat.completions.create(
        model="gpt-4o-mini", messages=HI, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == STREAM_USAGE["prompt_tokens"]
    assert upstream.last()["body"]["stream_options"] == {"include_usage": True}
    assert settled(read, before, STREAM_USAGE["prompt_tokens"]) == STREAM_USAGE["prompt_tokens"]


def test_anthropic_usage_json_and_stream(kproxy, keys):
    client = claude(kproxy, keys["bob"]["key"])
    read = lambda kind: tokens(kproxy, "bob", "claude-haiku-4-5", "anthropic", kind)  # noqa: E731
    before = read("input"), read("output")
    reply = client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=HI)
    want_in, want_out = reply.usage.input_tokens, reply.usage.output_tokens
    assert settled(lambda: read("output"), before[1], want_out) == want_out
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=8, messages=HI) as stream:
        "".join(stream.text_stream)
        final = stream.get_final_message()
    # The SDK's own sum of message_start and message_delta.
    want_in += final.usage.input_tokens
    want_out += final.usage.output_tokens
    assert settled(lambda: read("output"), before[1], want_out) == want_out
    assert read("input") - before[0] == want_in


def test_requests_per_minute_429_then_allowed(kproxy, keys):
    key = keys["limited"]["key"]
    # Start from a fresh window.
    time.sleep(2.1)
    oai(kproxy, key).chat.completions.create(model="gpt-4o-mini", messages=HI)
    with pytest.raises(openai.RateLimitError) as err:
        oai(kproxy, key).chat.completions.create(model="gpt-4o-mini", messages=HI)
    h = err.value.response.headers
    assert int(h["retry-after"]) in (1, 2)
    assert h["x-ratelimit-limit-requests"] == "1"
    assert h["x-ratelimit-remaining-requests"] == "0"
    assert h["x-ratelimit-reset-requests"].endswith("s")
    assert err.value.body["code"] == "rate_limit_exceeded"
    time.sleep(2.1)
    claude(kproxy, key).messages.create(model="claude-haiku-4-5", max_tokens=8, messages=HI)
    with pytest.raises(anthropic.RateLimitError) as err:
        claude(kproxy, key).messages.create(model="claude-haiku-4-5", max_tokens=8, messages=HI)
    assert err.value.body["error"]["type"] == "rate_limit_error"
    assert "retry-after" in err.value.response.headers
    assert metric(kproxy, 'ai_proxy_client_rejected_total{client="limited",reason="requests_per_minute"}') == 2


def test_no_key_or_hash_in_logs(kproxy, keys):
    oai(kproxy, keys["alice"]["key"]).chat.completions.create(model="gpt-4o-mini", messages=HI)
    time.sleep(0.1)
    logs = "".join(kproxy.lines)
    assert '"client":"alice"' in logs
    for k in keys.values():
        assert k["key"] not in logs
        assert k["hash"] not in logs
