"""The official SDKs over HTTPS: ai-proxy serving the admin's own certificate
(TLS_CERT_FILE + TLS_KEY_FILE), the clients trusting only that certificate, over HTTP/1.1 and
HTTP/2 (the version each response came over is recorded, not assumed)."""

import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from conftest import TOKEN, Proxy


@pytest.fixture(scope="module")
def tls_proxy(upstream):
    certs = Path(tempfile.mkdtemp(prefix="ai-proxy-tls-"))
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(certs / "key.pem"), "-out", str(certs / "cert.pem")],
        capture_output=True, text=True,
    )
    assert made.returncode == 0, made.stderr
    running = Proxy(
        upstream,
        env_extra=f"TLS_CERT_FILE={certs / 'cert.pem'}\nTLS_KEY_FILE={certs / 'key.pem'}\n",
    )
    running.url = f"https://localhost:{running.port}"
    running.ca = certs / "cert.pem"
    yield running
    running.stop()
    shutil.rmtree(certs, ignore_errors=True)
    assert running.process.returncode == 0, "ai-proxy did not exit cleanly on SIGTERM"


def _http_client(proxy, http2, versions):
    context = ssl.create_default_context(cafile=str(proxy.ca))
    return httpx2.Client(
        verify=context, http1=not http2, http2=http2,
        event_hooks={"response": [lambda r: versions.append(r.http_version)]},
    )


@pytest.mark.parametrize("http2,version", [(False, "HTTP/1.1"), (True, "HTTP/2")])
def test_openai_over_https(tls_proxy, upstream, http2, version):
    versions = []
    client = openai.OpenAI(
        base_url=f"{tls_proxy.url}/v1", api_key=TOKEN, max_retries=0,
        http_client=_http_client(tls_proxy, http2, versions),
    )
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello from upstream"
    assert upstream.last()["body"]["model"] == "upstream-gpt"
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from upstream"
    assert versions == [version, version]


@pytest.mark.parametrize("http2,version", [(False, "HTTP/1.1"), (True, "HTTP/2")])
def test_anthropic_over_https(tls_proxy, upstream, http2, version):
    versions = []
    client = anthropic.Anthropic(
        base_url=tls_proxy.url, api_key=TOKEN, max_retries=0,
        http_client=_http_client(tls_proxy, http2, versions),
    )
    reply = client.messages.create(
        model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text == "Hello from claude"
    assert upstream.last()["body"]["model"] == "upstream-claude"
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Hello from claude"
    assert versions == [version, version]


def test_sdk_refuses_an_untrusted_certificate(tls_proxy):
    """Without the pair's certificate in its roots the SDK fails: nothing works by accident
    in clear or unverified."""
    client = openai.OpenAI(base_url=f"{tls_proxy.url}/v1", api_key=TOKEN, max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.models.list()
