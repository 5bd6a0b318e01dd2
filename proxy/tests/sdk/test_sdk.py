"""The official openai and anthropic SDKs, configured with only base_url and api_key, talk to
ai-proxy exactly as they would to the real APIs — streaming and not."""

import anthropic
import openai
import pytest

from conftest import ANTHROPIC_KEY, OPENAI_KEY, TOKEN


@pytest.fixture
def oai(proxy):
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=TOKEN, max_retries=0)


@pytest.fixture
def claude(proxy):
    return anthropic.Anthropic(base_url=proxy.url, api_key=TOKEN, max_retries=0)


def _no_client_token(request):
    for name, value in request["headers"].items():
        assert TOKEN not in value, f"client token reached the upstream in {name}"


def test_openai_chat(oai, upstream):
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello from upstream"
    sent = upstream.last()
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["model"] == "upstream-gpt"
    assert sent["body"]["messages"] == [{"role": "user", "content": "hi"}]
    assert sent["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    _no_client_token(sent)


def test_openai_chat_streaming(oai, upstream):
    stream = oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello from upstream"
    assert upstream.last()["body"]["stream"] is True


def test_openai_embeddings_and_models(oai, upstream):
    out = oai.embeddings.create(model="text-embedding-3-small", input="x")
    assert out.data[0].embedding == [0.1, 0.2, 0.3]
    assert upstream.last()["body"]["model"] == "text-embedding-3-small"
    ids = [m.id for m in oai.models.list()]
    assert ids == ["gpt-4o-mini", "text-embedding-3-small", "claude-haiku-4-5"]


def test_anthropic_messages(claude, upstream):
    reply = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.content[0].text == "Hello from claude"
    sent = upstream.last()
    assert sent["path"].split("?")[0] == "/v1/messages"
    assert sent["body"]["model"] == "upstream-claude"
    assert sent["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert sent["headers"]["anthropic-version"]
    assert "authorization" not in sent["headers"]
    _no_client_token(sent)


def test_anthropic_messages_streaming(claude, upstream):
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from claude"
    assert final.stop_reason == "end_turn"
    assert upstream.last()["body"]["stream"] is True


def test_anthropic_count_tokens(claude, upstream):
    out = claude.messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}])
    assert out.input_tokens == 42
    assert upstream.last()["body"]["model"] == "upstream-claude"


def test_errors_are_sdk_exceptions(proxy):
    bad = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="wrong-token-0123456789", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o-mini", messages=[])
    good = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=TOKEN, max_retries=0)
    with pytest.raises(openai.NotFoundError) as err:
        good.chat.completions.create(model="no-such-model", messages=[])
    assert err.value.body["code"] == "model_not_found"
    bad_claude = anthropic.Anthropic(base_url=proxy.url, api_key="wrong-token-0123456789", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad_claude.messages.create(model="claude-haiku-4-5", max_tokens=1, messages=[])


def test_logs_carry_no_secret(proxy, oai):
    oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    logs = "".join(proxy.lines)
    assert '"msg":"request"' in logs
    for secret in (TOKEN, OPENAI_KEY, ANTHROPIC_KEY):
        assert secret not in logs
