"""The official SDKs over HTTPS: ai-proxy serving the admin's own certificate
(TLS_CERT_FILE + TLS_KEY_FILE), then a certificate it obtained from a real ACME server (Debian's
pebble, on 127.0.0.1), the clients trusting only that certificate or pebble's root, over
HTTP/1.1 and HTTP/2 (the version each response came over is recorded, not assumed)."""

import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
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


DOMAIN = "gw.example.test"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args, cwd):
    made = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr


@pytest.fixture(scope="module")
def acme_proxy(upstream):
    """pebble + its DNS (every name is 127.0.0.1), and ai-proxy with TLS_DOMAINS on pebble's
    TLS-ALPN-01 port, once its certificate is issued. A missing pebble fails, never skips."""
    for tool in ("pebble", "pebble-challtestsrv"):
        assert shutil.which(tool), f"{tool} is missing: apt-get install pebble"
    work = Path(tempfile.mkdtemp(prefix="ai-proxy-acme-"))
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-days", "2", "-subj", "/CN=pebble test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign", "-keyout", "ca.key", "-out", "ca.pem", cwd=work)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "srv.csr", cwd=work)
    (work / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "ext.cnf", "-out", "cert.pem", cwd=work)
    acme, management, dns, chall, tls_port = (_free_port() for _ in range(5))
    (work / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{acme}", "managementListenAddress": f"127.0.0.1:{management}",
        "certificate": "cert.pem", "privateKey": "key.pem", "httpPort": _free_port(), "tlsPort": tls_port,
        "ocspResponderURL": "", "externalAccountBindingRequired": False,
        "certificateValidityPeriod": 3600}}))
    children = [
        subprocess.Popen(["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                          "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                          "-management", f"127.0.0.1:{chall}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(["pebble", "-config", "pebble.json", "-strict=false", "-dnsserver", f"127.0.0.1:{dns}"],
                         cwd=work, env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        pebble_ca = ssl.create_default_context(cafile=str(work / "ca.pem"))
        deadline = time.monotonic() + 15
        while True:
            try:
                root = httpx2.get(f"https://127.0.0.1:{management}/roots/0", verify=pebble_ca).text
                break
            except httpx2.HTTPError:
                assert time.monotonic() < deadline, "pebble did not start"
                time.sleep(0.1)
        (work / "root.pem").write_text(root)
        running = Proxy(upstream, env_extra=(
            f"TLS_DOMAINS={DOMAIN}\nACME_DIRECTORY=https://127.0.0.1:{acme}/dir\n"
            f"ACME_CA_FILE={work / 'ca.pem'}\nTLS_CACHE_DIR={work / 'tls'}\n"
            f"PORT={tls_port}\n"  # the later PORT line wins: pebble validates on tls_port
        ))
        deadline = time.monotonic() + 20
        while not any('"msg":"certificate issued"' in line for line in running.lines):
            assert time.monotonic() < deadline, "no certificate issued:\n" + "".join(running.lines)
            time.sleep(0.05)
        running.url = f"https://{DOMAIN}:{running.port}"
        running.ca = work / "root.pem"
        yield running
        running.stop()
        assert running.process.returncode == 0, "ai-proxy did not exit cleanly on SIGTERM"
    finally:
        for child in children:
            child.kill()
            child.wait()
        shutil.rmtree(work, ignore_errors=True)


def _to_loopback(request):
    """DOMAIN resolves nowhere: connect to 127.0.0.1, but send and verify the name (SNI, Host),
    as curl's --resolve does."""
    if request.url.host == DOMAIN:
        request.url = request.url.copy_with(host="127.0.0.1")
        request.extensions["sni_hostname"] = DOMAIN


def _http_client(proxy, http2, versions):
    context = ssl.create_default_context(cafile=str(proxy.ca))
    return httpx2.Client(
        verify=context, http1=not http2, http2=http2,
        event_hooks={"request": [_to_loopback],
                     "response": [lambda r: versions.append(r.http_version)]},
    )


@pytest.fixture(params=["own_certificate", "acme"])
def https_proxy(request):
    return request.getfixturevalue("tls_proxy" if request.param == "own_certificate" else "acme_proxy")


@pytest.mark.parametrize("http2,version", [(False, "HTTP/1.1"), (True, "HTTP/2")])
def test_openai_over_https(https_proxy, upstream, http2, version):
    tls_proxy = https_proxy
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
def test_anthropic_over_https(https_proxy, upstream, http2, version):
    tls_proxy = https_proxy
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
