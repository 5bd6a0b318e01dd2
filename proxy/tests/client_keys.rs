//! Client keys end to end (issue 13), on the real binary with recording mocks: keys made by
//! `ai-proxy keys new`, per-key models, limits and their windows, exact token usage in the
//! log line and `/metrics`, a hang-up mid-stream, SIGHUP adding and removing keys, and no key
//! or hash in any output.

#![allow(
    clippy::doc_markdown,
    reason = "product names such as OpenAI are prose, not code"
)]

mod common;

use std::time::Duration;

use common::{Mock, Proxy, Reply, TOKEN, bin, default_env, json, metric, send, yaml};
use http::Response;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A key made by `ai-proxy keys new NAME`, and the entry it printed.
struct Made {
    name: String,
    key: String,
    hash: String,
    entry: String,
}

fn keys_new(name: &str) -> Made {
    let out = bin().args(["keys", "new", name]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text
        .lines()
        .find(|l| l.starts_with("aip_"))
        .expect("a key line")
        .to_owned();
    // aip_ + 64 hex digits: 256 random bits.
    assert_eq!(key.len(), 4 + 64, "{key}");
    let entry: String = text
        .lines()
        .skip_while(|l| !l.starts_with("  - name:"))
        .flat_map(|l| [l, "\n"])
        .collect();
    let hash = entry
        .lines()
        .find_map(|l| l.trim().strip_prefix("key_sha256: "))
        .expect("a key_sha256 line")
        .to_owned();
    // `keys hash` agrees with `keys new`.
    let mut child = bin()
        .args(["keys", "hash"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{key}\n").as_bytes())
        .unwrap();
    let hashed = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(hashed.stdout).unwrap().trim(), hash);
    Made {
        name: name.to_owned(),
        key,
        hash,
        entry,
    }
}

/// `entry` with extra fields (`models: [..]`, limits), indented under it.
fn client(made: &Made, extra: &[&str]) -> String {
    let mut s = made.entry.clone();
    for line in extra {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

const MODELS: &str = "  - name: cheap\n    targets:\n      - provider: oa\n  - name: dear\n    targets:\n      - provider: oa\n  - name: claude\n    targets:\n      - provider: an\n";

fn config(oa: &Mock, an: &Mock, clients: &str) -> String {
    let mut y = yaml(
        &[
            ("oa", "openai", &format!("{}/v1", oa.base()), ""),
            ("an", "anthropic", &an.base(), ""),
        ],
        MODELS,
    );
    y.push_str("clients:\n");
    y.push_str(clients);
    y
}

/// A mock streaming `chunks`, one every `ms` milliseconds.
async fn sse(chunks: Vec<&'static str>, ms: u64) -> Mock {
    Mock::start(Reply::Sse {
        chunks,
        interval: Duration::from_millis(ms),
        then_abort: false,
    })
    .await
}

/// POSTs `body` with `key`; the response with its body unread.
async fn open(proxy: &Proxy, path: &str, key: &str, body: &str) -> Response<Incoming> {
    let auth = format!("Bearer {key}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    send(&proxy.url(path), "POST", &headers, body.to_owned()).await
}

/// POSTs `body` with `key`: status, headers, body.
async fn call(proxy: &Proxy, path: &str, key: &str, body: &str) -> (u16, http::HeaderMap, String) {
    let resp = open(proxy, path, key, body).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

async fn get(proxy: &Proxy, path: &str, key: &str) -> (u16, String) {
    let resp = send(&proxy.url(path), "GET", &[("x-api-key", key)], "").await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn metrics(proxy: &Proxy) -> String {
    get(proxy, "/metrics", TOKEN).await.1
}

/// The request log line of the `n`-th request (waiting for it).
fn request_log(proxy: &Proxy, n: usize) -> serde_json::Value {
    for _ in 0..1500 {
        let logs = proxy.request_logs();
        if logs.len() > n {
            return logs[n].clone();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no request log line #{n}; logs:\n{}", proxy.logs());
}

const OPENAI_JSON: &str = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":8,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":5}}}"#;
const ANTHROPIC_SSE: [&str; 4] = [
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":40,\"cache_read_input_tokens\":6,\"cache_creation_input_tokens\":4,\"output_tokens\":1}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":17}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

/// Two client keys and the operator token: per-key models (403 in each API's shape,
/// `/v1/models` filtered), `/metrics` for the operator only, 401 for an unknown key, and
/// exact usage of a JSON response in the log line and `/metrics`.
#[tokio::test]
async fn keys_models_and_json_usage() {
    let oa = Mock::start(Reply::Json(200, OPENAI_JSON)).await;
    let an = sse(ANTHROPIC_SSE.to_vec(), 5).await;
    let (alice, bob) = (keys_new("alice"), keys_new("bob"));
    let clients = client(&alice, &["models: [cheap]"]) + &client(&bob, &[]);
    let proxy = Proxy::start(&default_env(""), &config(&oa, &an, &clients));
    let chat =
        |m: &str| format!(r#"{{"model":"{m}","messages":[{{"role":"user","content":"x"}}]}}"#);

    let (s, _, body) = call(&proxy, "/v1/chat/completions", &alice.key, &chat("cheap")).await;
    assert_eq!(s, 200, "{body}");
    let line = request_log(&proxy, 0);
    assert_eq!(line["client"], "alice");
    assert_eq!(line["input_tokens"], 16, "21 prompt - 5 cached: {line}");
    assert_eq!(line["output_tokens"], 8);
    assert_eq!(line["cache_read_tokens"], 5);
    assert_eq!(line["cache_write_tokens"], 0);
    assert_eq!(line["usage"], "complete");

    // Not in alice's list: 403, OpenAI shape; the mock is not called.
    let calls = oa.calls();
    let (s, _, body) = call(&proxy, "/v1/chat/completions", &alice.key, &chat("dear")).await;
    assert_eq!(s, 403, "{body}");
    let v = json(&body);
    assert_eq!(v["error"]["type"], "permission_error");
    assert_eq!(v["error"]["code"], "model_not_allowed");
    assert_eq!(oa.calls(), calls);
    // Anthropic shape on /v1/messages.
    let msg = r#"{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#;
    let (s, _, body) = call(&proxy, "/v1/messages", &alice.key, msg).await;
    assert_eq!(s, 403, "{body}");
    let v = json(&body);
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("permission_error"))
    );

    // bob may use every model; his Anthropic stream's usage is summed from both events.
    let (s, _, body) = call(&proxy, "/v1/messages", &bob.key, msg).await;
    assert_eq!(s, 200, "{body}");
    let (s, _, _) = call(&proxy, "/v1/chat/completions", TOKEN, &chat("dear")).await;
    assert_eq!(s, 200);

    let ids = |body: &str| -> Vec<String> {
        json(body)["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&get(&proxy, "/v1/models", &alice.key).await.1),
        ["cheap"]
    );
    assert_eq!(
        ids(&get(&proxy, "/v1/models", &bob.key).await.1),
        ["cheap", "dear", "claude"]
    );
    assert_eq!(get(&proxy, "/metrics", &bob.key).await.0, 403);
    assert_eq!(get(&proxy, "/v1/models", "aip_0000").await.0, 401);
    let (s, _, _) = call(&proxy, "/v1/chat/completions", "aip_nope", &chat("cheap")).await;
    assert_eq!(s, 401);

    let m = metrics(&proxy).await;
    assert_json_usage_metrics(&m);

    assert_no_secrets(&proxy, &m, &[&alice, &bob]);
}

/// `/metrics` after `keys_models_and_json_usage`'s requests: each client's exact token usage,
/// and alice's requests and rejections.
fn assert_json_usage_metrics(m: &str) {
    let tokens = |c: &str, model: &str, p: &str, t: &str| {
        metric(
            m,
            &format!(
                "ai_proxy_tokens_total{{client=\"{c}\",model=\"{model}\",provider=\"{p}\",type=\"{t}\"}}"
            ),
        )
    };
    assert_eq!(tokens("alice", "cheap", "oa", "input"), Some(16.0), "{m}");
    assert_eq!(tokens("alice", "cheap", "oa", "output"), Some(8.0));
    assert_eq!(tokens("alice", "cheap", "oa", "cache_read"), Some(5.0));
    assert_eq!(tokens("bob", "claude", "an", "input"), Some(40.0));
    assert_eq!(tokens("bob", "claude", "an", "output"), Some(17.0));
    assert_eq!(tokens("bob", "claude", "an", "cache_read"), Some(6.0));
    assert_eq!(tokens("bob", "claude", "an", "cache_write"), Some(4.0));
    assert_eq!(tokens("operator", "dear", "oa", "output"), Some(8.0));
    assert_eq!(
        metric(m, "ai_proxy_client_requests_total{client=\"alice\"}"),
        Some(3.0)
    );
    assert_eq!(
        metric(
            m,
            "ai_proxy_client_rejected_total{client=\"alice\",reason=\"model_not_allowed\"}"
        ),
        Some(2.0)
    );
}

/// No key and no hash anywhere: logs, metrics, stderr, nor `check-config` (which names the
/// clients).
fn assert_no_secrets(proxy: &Proxy, m: &str, made: &[&Made]) {
    // No key and no hash anywhere: logs, metrics, stderr.
    let everything = format!("{}\n{m}\n{}", proxy.logs(), proxy.stderr.lock().unwrap());
    for made in made {
        assert!(!everything.contains(&made.key));
        assert!(!everything.contains(&made.hash));
    }
    // Nor in check-config, which names the clients.
    let out = bin()
        .args(["check-config", "--config-dir"])
        .arg(&proxy.dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        made.iter()
            .all(|c| text.contains(&format!("name: {}", c.name))),
        "{text}"
    );
    for made in made {
        assert!(
            !text.contains(&made.key) && !text.contains(&made.hash),
            "{text}"
        );
    }
}

const OPENAI_SSE: [&str; 4] = [
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":30,\"total_tokens\":42}}\n\n",
    "data: [DONE]\n\n",
];

/// OpenAI streams: when the client did not ask for usage the proxy asks for it and removes
/// the usage chunk; when it asked, the chunk reaches it. Both count the same tokens.
#[tokio::test]
async fn openai_stream_usage_asked_for_and_removed() {
    let oa = sse(OPENAI_SSE.to_vec(), 5).await;
    let an = Mock::start(Reply::Json(200, "{}")).await;
    let alice = keys_new("alice");
    let proxy = Proxy::start(&default_env(""), &config(&oa, &an, &client(&alice, &[])));

    let plain = r#"{"model":"cheap","stream":true,"messages":[]}"#;
    let (s, _, body) = call(&proxy, "/v1/chat/completions", &alice.key, plain).await;
    assert_eq!(s, 200);
    let sent = json(std::str::from_utf8(&oa.last().body).unwrap());
    assert_eq!(sent["stream_options"]["include_usage"], true, "{sent}");
    assert_eq!(sent["messages"], serde_json::json!([]));
    let expected: String = [OPENAI_SSE[0], OPENAI_SSE[1], OPENAI_SSE[3]].concat();
    assert_eq!(body, expected, "the usage chunk must not reach the client");

    let asked =
        r#"{"model":"cheap","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
    let (s, _, body) = call(&proxy, "/v1/chat/completions", &alice.key, asked).await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        OPENAI_SSE.concat(),
        "the client asked for the usage chunk"
    );
    assert_eq!(oa.last().body.as_ref(), asked.as_bytes(), "sent unchanged");

    for n in 0..2 {
        let line = request_log(&proxy, n);
        assert_eq!(
            (
                line["input_tokens"].as_u64(),
                line["output_tokens"].as_u64()
            ),
            (Some(12), Some(30)),
            "{line}"
        );
    }
    let m = metrics(&proxy).await;
    assert_eq!(
        metric(
            &m,
            "ai_proxy_tokens_total{client=\"alice\",model=\"cheap\",provider=\"oa\",type=\"output\"}"
        ),
        Some(60.0),
        "{m}"
    );
}

/// A client that hangs up mid-stream: the usage reported before (Anthropic's
/// `message_start`) is counted, and the line says the usage is incomplete.
#[tokio::test]
async fn hang_up_counts_usage_reported_so_far() {
    let oa = Mock::start(Reply::Json(200, "{}")).await;
    // The proxy notices the hang-up when a write fails, a chunk or two later: the output
    // usage (`message_delta`) comes well after that.
    let delta = ANTHROPIC_SSE[1];
    let chunks = vec![
        ANTHROPIC_SSE[0],
        delta,
        delta,
        delta,
        delta,
        delta,
        ANTHROPIC_SSE[2],
        ANTHROPIC_SSE[3],
    ];
    let an = sse(chunks, 700).await;
    let alice = keys_new("alice");
    let proxy = Proxy::start(&default_env(""), &config(&oa, &an, &client(&alice, &[])));
    // A raw connection, closed after the first event: the client has gone.
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let body = r#"{"model":"claude","max_tokens":5,"stream":true,"messages":[]}"#;
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: {}\r\nContent-Length: {}\r\n\r\n{body}",
        alice.key,
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("message_start") {
        let mut buf = [0u8; 4096];
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the first event");
        got.extend_from_slice(&buf[..n]);
    }
    drop(tcp);
    let line = request_log(&proxy, 0);
    let mut waited = 0;
    while an.cancelled.lock().unwrap().is_none() {
        assert!(waited < 100, "the upstream stream was not cancelled");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let sent = an.cancelled.lock().unwrap().unwrap();
    assert!(
        sent < 6,
        "cancelled after {sent} chunks, before message_delta"
    );
    assert_eq!(line["outcome"], "client_closed", "{line}");
    assert_eq!(line["usage"], "incomplete");
    assert_eq!(line["input_tokens"], 40);
    assert_eq!(line["output_tokens"], 1);
    let m = metrics(&proxy).await;
    assert_eq!(
        metric(
            &m,
            "ai_proxy_tokens_total{client=\"alice\",model=\"claude\",provider=\"an\",type=\"input\"}"
        ),
        Some(40.0)
    );
}

/// An upstream stream that breaks mid-way: the usage reported before the break is counted and
/// marked incomplete.
#[tokio::test]
async fn upstream_break_counts_usage_reported_so_far() {
    let oa = Mock::start(Reply::Json(200, "{}")).await;
    let an = Mock::start(Reply::Sse {
        chunks: vec![ANTHROPIC_SSE[0], ANTHROPIC_SSE[1]],
        interval: Duration::from_millis(5),
        then_abort: true,
    })
    .await;
    let alice = keys_new("alice");
    let proxy = Proxy::start(&default_env(""), &config(&oa, &an, &client(&alice, &[])));
    let msg = r#"{"model":"claude","max_tokens":5,"stream":true,"messages":[]}"#;
    let resp = open(&proxy, "/v1/messages", &alice.key, msg).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.into_body().collect().await.is_err(),
        "the break reaches the client"
    );
    let line = request_log(&proxy, 0);
    assert_eq!(line["outcome"], "upstream_error", "{line}");
    assert_eq!(line["usage"], "incomplete");
    assert_eq!(
        (
            line["input_tokens"].as_u64(),
            line["output_tokens"].as_u64()
        ),
        (Some(40), Some(1))
    );
}

fn assert_limited(headers: &http::HeaderMap, body: &str, kind: &str) {
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    for h in ["limit", "remaining", "reset"] {
        assert!(
            headers.contains_key(format!("x-ratelimit-{h}-{kind}").as_str()),
            "{h}-{kind}: {headers:?}"
        );
    }
    assert_eq!(json(body)["error"]["code"], "rate_limit_exceeded");
}

/// Each limit gives 429 with `Retry-After` and the `x-ratelimit-*` trios, and the request
/// is allowed again after the window (`RATE_LIMIT_WINDOW=2s`) or when a slot frees.
#[tokio::test]
async fn limits_refuse_then_allow_again() {
    let oa = Mock::start(Reply::Json(200, OPENAI_JSON)).await;
    let slow = sse(ANTHROPIC_SSE.to_vec(), 400).await;
    let (rpm, tpm, conc) = (keys_new("rpm"), keys_new("tpm"), keys_new("conc"));
    let clients = client(&rpm, &["requests_per_minute: 2"])
        + &client(&tpm, &["tokens_per_minute: 30"])
        + &client(&conc, &["max_concurrent: 1"]);
    let proxy = Proxy::start(
        &default_env("RATE_LIMIT_WINDOW=2s\n"),
        &config(&oa, &slow, &clients),
    );
    let chat = r#"{"model":"cheap","messages":[]}"#;

    // requests_per_minute: 2 per window.
    for _ in 0..2 {
        assert_eq!(
            call(&proxy, "/v1/chat/completions", &rpm.key, chat).await.0,
            200
        );
    }
    let (s, h, body) = call(&proxy, "/v1/chat/completions", &rpm.key, chat).await;
    assert_eq!(s, 429, "{body}");
    assert_limited(&h, &body, "requests");
    assert_eq!(h["x-ratelimit-remaining-requests"], "0");
    assert_eq!(h["x-ratelimit-limit-requests"], "2");
    // Another client is not affected, nor the operator.
    assert_eq!(
        call(&proxy, "/v1/chat/completions", TOKEN, chat).await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        call(&proxy, "/v1/chat/completions", &rpm.key, chat).await.0,
        200
    );

    // tokens_per_minute: 30; one response uses 29, the next fits, the one after does not.
    assert_eq!(
        call(&proxy, "/v1/chat/completions", &tpm.key, chat).await.0,
        200
    );
    assert_eq!(
        call(&proxy, "/v1/chat/completions", &tpm.key, chat).await.0,
        200
    );
    // Tokens are counted when the response ends (the finish), just after the client has it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (s, h, body) = call(&proxy, "/v1/chat/completions", &tpm.key, chat).await;
    assert_eq!(s, 429, "{body}");
    assert_limited(&h, &body, "tokens");
    assert_eq!(json(&body)["error"]["type"], "tokens");
    assert_eq!(h["x-ratelimit-remaining-tokens"], "0");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        call(&proxy, "/v1/chat/completions", &tpm.key, chat).await.0,
        200
    );

    // max_concurrent: 1; the slot is held until the stream's last byte.
    let msg = r#"{"model":"claude","max_tokens":5,"stream":true,"messages":[]}"#;
    let stream = open(&proxy, "/v1/messages", &conc.key, msg).await;
    assert_eq!(stream.status(), 200);
    let (s, h, body) = call(&proxy, "/v1/messages", &conc.key, msg).await;
    assert_eq!(s, 429, "{body}");
    assert!(h.contains_key("retry-after"));
    let v = json(&body);
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("rate_limit_error"))
    );
    let all = stream.into_body().collect().await.unwrap().to_bytes();
    assert!(all.ends_with(ANTHROPIC_SSE[3].as_bytes()));
    // The finish (which frees the slot) runs as the body ends; give it a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(call(&proxy, "/v1/messages", &conc.key, msg).await.0, 200);

    let m = metrics(&proxy).await;
    for (c, reason) in [
        ("rpm", "requests_per_minute"),
        ("tpm", "tokens_per_minute"),
        ("conc", "max_concurrent"),
    ] {
        assert_eq!(
            metric(
                &m,
                &format!("ai_proxy_client_rejected_total{{client=\"{c}\",reason=\"{reason}\"}}")
            ),
            Some(1.0),
            "{m}"
        );
    }
}

/// SIGHUP adds a key (works at once) and removes one (refused at once) while a stream on the
/// removed key runs to its end.
#[tokio::test]
async fn sighup_adds_and_removes_keys_while_a_stream_finishes() {
    let oa = Mock::start(Reply::Json(200, OPENAI_JSON)).await;
    let an = sse(ANTHROPIC_SSE.to_vec(), 400).await;
    let (old, new) = (keys_new("old"), keys_new("new"));
    let env = default_env("CONFIG_POLL_INTERVAL=0\n");
    let proxy = Proxy::start(&env, &config(&oa, &an, &client(&old, &[])));
    let chat = r#"{"model":"cheap","messages":[]}"#;
    assert_eq!(
        call(&proxy, "/v1/chat/completions", &new.key, chat).await.0,
        401
    );

    let msg = r#"{"model":"claude","max_tokens":5,"stream":true,"messages":[]}"#;
    let stream = open(&proxy, "/v1/messages", &old.key, msg).await;
    assert_eq!(stream.status(), 200);

    std::fs::write(
        proxy.dir.join("provider-config.yaml"),
        config(&oa, &an, &client(&new, &[])),
    )
    .unwrap();
    proxy.signal("HUP");
    proxy.wait_log("configuration reloaded");
    assert_eq!(
        call(&proxy, "/v1/chat/completions", &new.key, chat).await.0,
        200
    );
    assert_eq!(
        call(&proxy, "/v1/chat/completions", &old.key, chat).await.0,
        401
    );

    let all = stream.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        all.as_ref(),
        ANTHROPIC_SSE.concat().as_bytes(),
        "the stream in flight finishes"
    );
    // The stream is the only request logged for `old` (its refusal has no client).
    let line = json(&proxy.wait_log("\"client\":\"old\""));
    assert_eq!(line["path"], "/v1/messages");
    assert_eq!(line["outcome"], "complete");
    assert_eq!(line["output_tokens"], 17);
}

/// Bad `clients:` entries are refused with the file, line and key, never echoing a hash.
#[test]
fn invalid_clients_are_refused_with_their_place() {
    let base = "providers:\n  - name: oa\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\nmodels:\n  - name: m\n    targets:\n      - provider: oa\n";
    let hash = "ab".repeat(32);
    let cases = [
        (
            format!("clients:\n  - name: a b\n    key_sha256: {hash}\n"),
            "clients[0].name",
        ),
        (
            format!("clients:\n  - name: operator\n    key_sha256: {hash}\n"),
            "reserved",
        ),
        (
            "clients:\n  - name: a\n    key_sha256: 12ab\n".to_owned(),
            "clients[0].key_sha256",
        ),
        (
            format!("clients:\n  - name: a\n    key_sha256: {hash}\n    models: [nope]\n"),
            "unknown model `nope`",
        ),
        (
            format!("clients:\n  - name: a\n    key_sha256: {hash}\n    max_concurrent: 0\n"),
            "at least 1",
        ),
        (
            format!("clients:\n  - name: a\n    key_sha256: {hash}\n    rpm: 3\n"),
            "unknown field `rpm`",
        ),
        (
            format!(
                "clients:\n  - name: a\n    key_sha256: {hash}\n  - name: b\n    key_sha256: {hash}\n"
            ),
            "same key_sha256",
        ),
        (
            format!(
                "clients:\n  - name: a\n    key_sha256: {hash}\n  - name: a\n    key_sha256: {}\n",
                "cd".repeat(32)
            ),
            "duplicate client name",
        ),
    ];
    for (clients, needle) in cases {
        let dir = common::config_dir(&default_env(""), &format!("{base}{clients}"));
        let out = bin()
            .args(["check-config", "--config-dir"])
            .arg(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{clients}: {err}");
        assert!(err.contains(needle), "{clients}: want {needle:?} in {err}");
        assert!(err.contains("provider-config.yaml:"), "{err}");
        assert!(!err.contains(&hash), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
