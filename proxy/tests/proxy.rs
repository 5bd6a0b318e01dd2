//! Routing, model rewrite, auth in both directions, error shapes, fallback, metrics and
//! logs, against the real binary and recording mock upstreams.

mod common;

use common::*;
use http_body_util::BodyExt;

const OK_CHAT: &str = r#"{"id":"c1","object":"chat.completion","choices":[]}"#;
const OK_MSG: &str = r#"{"id":"m1","type":"message","content":[]}"#;

async fn two_kinds() -> (Mock, Mock, Proxy) {
    let oa = Mock::start(Reply::Json(200, OK_CHAT)).await;
    let an = Mock::start(Reply::Json(200, OK_MSG)).await;
    let yaml = yaml(
        &[
            ("oa", "openai", &format!("{}/v1", oa.base()), ""),
            ("an", "anthropic", &an.base(), ""),
        ],
        "  - name: fast\n    targets:\n      - provider: oa\n        model: upstream-fast\n  - name: claude\n    targets:\n      - provider: an\n        model: claude-up\n  - name: same\n    targets:\n      - provider: oa\n",
    );
    let proxy = Proxy::start(&default_env(""), &yaml);
    (oa, an, proxy)
}

#[tokio::test]
async fn routes_by_model_and_rewrites_only_the_model() {
    let (oa, an, proxy) = two_kinds().await;
    // Odd spacing and a nested "model" must survive byte for byte.
    let body = r#"{ "messages":[{"role":"user","content":"hi","model":"nested"}],  "model" : "fast","temperature":0.5}"#;
    let (status, headers, text) = post(&proxy.url("/v1/chat/completions"), body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, OK_CHAT);
    let got = oa.last();
    assert_eq!(got.path, "/v1/chat/completions");
    assert_eq!(
        std::str::from_utf8(&got.body).unwrap(),
        body.replace("\"fast\"", "\"upstream-fast\"")
    );
    // A model that keeps its name is forwarded as the very same bytes.
    let body2 = r#"{"model":"same","input":"x"}"#;
    assert_eq!(post(&proxy.url("/v1/embeddings"), body2).await.0, 200);
    assert_eq!(oa.last().path, "/v1/embeddings");
    assert_eq!(&oa.last().body[..], body2.as_bytes());

    let server_timing = headers.get("server-timing").unwrap().to_str().unwrap();
    assert!(
        server_timing.starts_with("proxy;dur=") && server_timing.contains("upstream;dur="),
        "{server_timing}"
    );
    assert_eq!(an.calls(), 0);
    // A length-delimited answer read to its end is `complete`, not `client_closed`: hyper
    // never polls past the declared length.
    let line = proxy.wait_log("\"model\":\"fast\"");
    assert!(line.contains("\"outcome\":\"complete\""), "{line}");

    let msg = r#"{"model":"claude","max_tokens":5,"messages":[]}"#;
    let resp = send(
        &proxy.url("/v1/messages?beta=true"),
        "POST",
        &[
            ("x-api-key", TOKEN),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "tools-2024"),
        ],
        msg.to_owned(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let got = an.last();
    assert_eq!(got.path, "/v1/messages?beta=true");
    assert_eq!(
        &got.body[..],
        msg.replace("\"claude\"", "\"claude-up\"").as_bytes()
    );
}

#[tokio::test]
async fn upstream_auth_is_the_providers_and_the_client_token_never_leaves() {
    let (oa, an, proxy) = two_kinds().await;
    assert_eq!(
        post(&proxy.url("/v1/chat/completions"), r#"{"model":"fast"}"#)
            .await
            .0,
        200
    );
    let resp = send(
        &proxy.url("/v1/messages"),
        "POST",
        &[
            ("x-api-key", TOKEN),
            ("anthropic-version", "2023-06-01"),
            ("authorization", &format!("Bearer {TOKEN}")),
        ],
        r#"{"model":"claude"}"#.to_owned(),
    )
    .await;
    assert_eq!(resp.status(), 200);

    let o = oa.last().headers;
    assert_eq!(o["authorization"], format!("Bearer {OPENAI_KEY}").as_str());
    assert!(o.get("x-api-key").is_none());
    let a = an.last().headers;
    assert_eq!(a["x-api-key"], ANTHROPIC_KEY);
    assert_eq!(a["anthropic-version"], "2023-06-01");
    assert!(a.get("authorization").is_none());
    for rec in [oa.last(), an.last()] {
        for (name, value) in &header_map_values(&rec.headers) {
            assert!(
                !value.contains(TOKEN),
                "client token leaked upstream in {name}"
            );
        }
    }
    // A client without anthropic-version still gets a valid upstream request.
    let resp = send(
        &proxy.url("/v1/messages"),
        "POST",
        &[("x-api-key", TOKEN)],
        r#"{"model":"claude"}"#.to_owned(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(an.last().headers["anthropic-version"], "2023-06-01");
}

#[tokio::test]
async fn client_auth_both_ways_and_401_otherwise() {
    let (oa, _an, proxy) = two_kinds().await;
    let url = proxy.url("/v1/chat/completions");
    let body = r#"{"model":"fast"}"#;
    let bearer = format!("Bearer {TOKEN}");
    for headers in [
        vec![("authorization", bearer.as_str())],
        vec![("x-api-key", TOKEN)],
    ] {
        assert_eq!(
            send(&url, "POST", &headers, body.to_owned()).await.status(),
            200
        );
    }
    for headers in [
        vec![],
        vec![("authorization", "Bearer client-token-0123456789abcdeX")],
        vec![("x-api-key", "client-token-0123456789abcde")],
        vec![("authorization", TOKEN)],
    ] {
        let resp = send(&url, "POST", &headers, body.to_owned()).await;
        assert_eq!(resp.status(), 401, "{headers:?}");
        let v = json(&String::from_utf8_lossy(
            &resp.into_body().collect().await.unwrap().to_bytes(),
        ));
        assert_eq!(v["error"]["code"], "invalid_api_key");
    }
    assert_eq!(
        oa.calls(),
        2,
        "unauthenticated requests must not reach the upstream"
    );

    // Anthropic's shape on /v1/messages.
    let resp = send(
        &proxy.url("/v1/messages"),
        "POST",
        &[("x-api-key", "nope")],
        r#"{"model":"claude"}"#.to_owned(),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let v = json(&String::from_utf8_lossy(
        &resp.into_body().collect().await.unwrap().to_bytes(),
    ));
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");

    // /ping is open; /v1/models and /metrics are not.
    let ping = send(&proxy.url("/ping"), "GET", &[], "").await;
    assert_eq!(ping.status(), 200);
    assert_eq!(
        &ping.into_body().collect().await.unwrap().to_bytes()[..],
        b"pong"
    );
    for path in ["/v1/models", "/metrics"] {
        assert_eq!(
            send(&proxy.url(path), "GET", &[], "").await.status(),
            401,
            "{path}"
        );
        assert_eq!(
            send(&proxy.url(path), "GET", &[("x-api-key", TOKEN)], "")
                .await
                .status(),
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn models_list_in_openai_form() {
    let (_oa, _an, proxy) = two_kinds().await;
    let resp = send(
        &proxy.url("/v1/models"),
        "GET",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        "",
    )
    .await;
    let v = json(&String::from_utf8_lossy(
        &resp.into_body().collect().await.unwrap().to_bytes(),
    ));
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fast", "claude", "same"]);
    assert_eq!(v["data"][0]["object"], "model");
}

#[tokio::test]
async fn bad_inputs_get_the_documented_status_and_shape() {
    let (oa, an, proxy) = {
        let oa = Mock::start(Reply::Json(200, OK_CHAT)).await;
        let an = Mock::start(Reply::Json(200, OK_MSG)).await;
        let yaml = yaml(
            &[
                ("oa", "openai", &oa.base(), ""),
                ("an", "anthropic", &an.base(), ""),
            ],
            "  - name: fast\n    targets:\n      - provider: oa\n  - name: claude\n    targets:\n      - provider: an\n",
        );
        (
            oa,
            an,
            Proxy::start(&default_env("MAX_BODY_BYTES=1024\n"), &yaml),
        )
    };
    let chat = proxy.url("/v1/chat/completions");
    let cases: [(&str, String, u16, &str); 5] = [
        (
            "malformed",
            "{\"model\": ".to_owned(),
            400,
            "invalid_request",
        ),
        (
            "missing model",
            r#"{"messages":[]}"#.to_owned(),
            400,
            "missing_model",
        ),
        (
            "model not a string",
            r#"{"model":7}"#.to_owned(),
            400,
            "invalid_request",
        ),
        (
            "unknown model",
            r#"{"model":"nope"}"#.to_owned(),
            404,
            "model_not_found",
        ),
        (
            "too large",
            format!(r#"{{"model":"fast","pad":"{}"}}"#, "x".repeat(2000)),
            413,
            "request_too_large",
        ),
    ];
    for (name, body, status, code) in cases {
        let (got, _, text) = post(&chat, &body).await;
        assert_eq!(got, status, "{name}: {text}");
        let v = json(&text);
        assert_eq!(v["error"]["code"], code, "{name}: {text}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 10, "{name}");
    }
    chunked_upload_over_the_limit_gets_413(&proxy).await;
    anthropic_shape_on_messages(&proxy).await;

    assert_eq!(
        send(&proxy.url("/v2/whatever"), "POST", &[], "")
            .await
            .status(),
        404
    );
    assert_eq!(
        oa.calls() + an.calls(),
        0,
        "no bad request may reach an upstream"
    );
}

/// A chunked upload has no content-length to reject early: the limit applies while reading.
async fn chunked_upload_over_the_limit_gets_413(proxy: &Proxy) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let chunk = format!("320\r\n{}\r\n", " ".repeat(0x320));
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}{chunk}0\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 12];
    tcp.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"HTTP/1.1 413");
}

async fn anthropic_shape_on_messages(proxy: &Proxy) {
    // Anthropic shape on /v1/messages*: count_tokens on a model served first by an
    // openai-kind target is a 404 (clients then estimate locally); /v1/messages translates,
    // so a body it cannot translate is a 400.
    let resp = send(
        &proxy.url("/v1/messages/count_tokens?beta=true"),
        "POST",
        &[("x-api-key", TOKEN)],
        r#"{"model":"fast","messages":[]}"#.to_owned(),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let v = json(&String::from_utf8_lossy(
        &resp.into_body().collect().await.unwrap().to_bytes(),
    ));
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "not_found_error");
    let resp = send(
        &proxy.url("/v1/messages"),
        "POST",
        &[("x-api-key", TOKEN)],
        r#"{"model":"fast"}"#.to_owned(),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v = json(&String::from_utf8_lossy(
        &resp.into_body().collect().await.unwrap().to_bytes(),
    ));
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("messages"));
    let resp = send(
        &proxy.url("/v1/messages"),
        "POST",
        &[("x-api-key", TOKEN)],
        "not json".to_owned(),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v = json(&String::from_utf8_lossy(
        &resp.into_body().collect().await.unwrap().to_bytes(),
    ));
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

const HANG_RETRIED: &str = "first_byte_timeout: 300ms\nretry_ambiguous: true";

#[tokio::test]
async fn falls_back_across_refused_500_429_and_timeout_then_relays_the_last_answer() {
    let p500 = Mock::start(Reply::Json(500, r#"{"error":"boom"}"#)).await;
    let p429 = Mock::start(Reply::WithHeaders(
        429,
        r#"{"error":"slow down"}"#,
        vec![("retry-after", "7")],
    ))
    .await;
    let hang = Mock::start(Reply::Hang).await;
    let good = Mock::start(Reply::Json(200, OK_CHAT)).await;
    let p503 = Mock::start(Reply::Json(503, r#"{"error":"down"}"#)).await;
    let p400 = Mock::start(Reply::Json(400, r#"{"error":{"message":"bad"}}"#)).await;
    let refused = format!("http://{}", refused_addr());
    let yaml = yaml(
        &[
            ("refused", "openai", &refused, ""),
            ("p500", "openai", &p500.base(), ""),
            ("p429", "openai", &p429.base(), ""),
            // A timeout may mean the upstream got the request: fallback only when allowed.
            ("hang", "openai", &hang.base(), HANG_RETRIED),
            ("good", "openai", &good.base(), ""),
            ("p503", "openai", &p503.base(), ""),
            ("p400", "openai", &p400.base(), ""),
        ],
        "  - name: chain\n    targets:\n      - provider: refused\n      - provider: p500\n      - provider: p429\n      - provider: hang\n      - provider: good\n        model: good-model\n  - name: doomed\n    targets:\n      - provider: p500\n      - provider: p503\n  - name: client-error\n    targets:\n      - provider: p400\n      - provider: good\n  - name: limited\n    targets:\n      - provider: p503\n      - provider: p429\n  - name: unreachable\n    targets:\n      - provider: p429\n      - provider: refused\n",
    );
    let proxy = Proxy::start(&default_env(""), &yaml);
    let url = proxy.url("/v1/chat/completions");

    let (status, _, text) = post(&url, r#"{"model":"chain","stream":false}"#).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(text, OK_CHAT);
    assert_eq!(
        (p500.calls(), p429.calls(), hang.calls(), good.calls()),
        (1, 1, 1, 1)
    );
    assert_eq!(
        &good.last().body[..],
        br#"{"model":"good-model","stream":false}"#
    );
    // The line is written when the relayed body is dropped, just after the client has it.
    let log = json(&proxy.wait_log("\"model\":\"chain\""));
    assert_eq!(log["attempts"], 5);
    assert_eq!(log["provider"], "good");

    // Every target failed and the last one answered: its status and body are relayed (the
    // SDKs pick their exception by status and honour retry-after), and the log says why.
    let (status, _, text) = post(&url, r#"{"model":"doomed"}"#).await;
    assert_eq!((status, text.as_str()), (503, r#"{"error":"down"}"#));
    let log = json(&proxy.wait_log("\"model\":\"doomed\""));
    assert_eq!(
        (
            &log["outcome"],
            &log["level"],
            &log["status"],
            &log["attempts"]
        ),
        (
            &serde_json::json!("upstream_refused"),
            &serde_json::json!("warn"),
            &serde_json::json!(503),
            &serde_json::json!(2)
        )
    );
    let message = log["error"].as_str().unwrap();
    assert!(
        message.contains("HTTP 503") && message.contains("p503"),
        "{message}"
    );
    let (status, headers, text) = post(&url, r#"{"model":"limited"}"#).await;
    assert_eq!((status, text.as_str()), (429, r#"{"error":"slow down"}"#));
    assert_eq!(headers["retry-after"], "7");
    // When the last failure is not an answer, the proxy's own 502 names it.
    let (status, _, text) = post(&url, r#"{"model":"unreachable"}"#).await;
    assert_eq!(status, 502, "{text}");
    let message = json(&text)["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("refused"), "{message}");

    // A 4xx other than 429 is the client's problem: passed through, no fallback.
    let (status, _, text) = post(&url, r#"{"model":"client-error"}"#).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(good.calls(), 1);

    // Metrics are recorded with the log line, when the relayed body is dropped.
    proxy.wait_log("\"model\":\"client-error\"");
    proxy.wait_log("\"model\":\"limited\"");
    fallback_metrics_are_counted(&proxy).await;
}

/// The metrics of `falls_back_across_refused_500_429_and_timeout_then_relays_the_last_answer`.
async fn fallback_metrics_are_counted(proxy: &Proxy) {
    let metrics = metrics_text(proxy).await;
    for needle in [
        "ai_proxy_requests_total{model=\"chain\",provider=\"good\",status=\"200\"} 1",
        "ai_proxy_requests_total{model=\"doomed\",provider=\"p503\",status=\"503\"} 1",
        "ai_proxy_requests_total{model=\"limited\",provider=\"p429\",status=\"429\"} 1",
        "ai_proxy_requests_total{model=\"unreachable\",provider=\"refused\",status=\"502\"} 1",
        "ai_proxy_upstream_errors_total{provider=\"refused\",kind=\"connect\"} 2",
        "ai_proxy_upstream_errors_total{provider=\"p500\",kind=\"status_5xx\"} 2",
        "ai_proxy_upstream_errors_total{provider=\"p503\",kind=\"status_5xx\"} 2",
        "ai_proxy_upstream_errors_total{provider=\"p429\",kind=\"status_429\"} 3",
        "ai_proxy_upstream_errors_total{provider=\"hang\",kind=\"timeout\"} 1",
        "ai_proxy_fallbacks_total{reason=\"timeout\",decision=\"taken\"} 1",
        "ai_proxy_fallbacks_total{reason=\"connect\",decision=\"taken\"} 1",
        // A failure with no target after it is no fallback: chain's p500 and p429, doomed's
        // p500, limited's p503, unreachable's p429 were followed by another attempt.
        "ai_proxy_fallbacks_total{reason=\"status_5xx\",decision=\"taken\"} 3",
        "ai_proxy_fallbacks_total{reason=\"status_429\",decision=\"taken\"} 2",
        "ai_proxy_in_flight_requests 0",
        "ai_proxy_request_duration_seconds_count{model=\"chain\",provider=\"good\"} 1",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
}

#[tokio::test]
async fn request_ids_logs_and_no_secret_anywhere() {
    let (oa, _an, proxy) = two_kinds().await;
    let resp = send(
        &proxy.url("/v1/chat/completions"),
        "POST",
        &[
            ("authorization", &format!("Bearer {TOKEN}")),
            ("x-request-id", "req-abc.123"),
        ],
        r#"{"model":"fast"}"#.to_owned(),
    )
    .await;
    assert_eq!(resp.headers()["x-request-id"], "req-abc.123");
    resp.into_body().collect().await.unwrap();
    assert_eq!(oa.last().headers["x-request-id"], "req-abc.123");
    // A generated id when the client sends none (or a strange one).
    let (_, headers, _) = post(&proxy.url("/v1/chat/completions"), r#"{"model":"fast"}"#).await;
    assert_eq!(headers["x-request-id"].len(), 32);
    // Error paths, with secrets offered in every place a careless log might echo them.
    let _ = send(
        &proxy.url("/v1/chat/completions"),
        "POST",
        &[("authorization", &format!("Bearer {OPENAI_KEY}"))],
        format!(r#"{{"model":"{ANTHROPIC_KEY}"}}"#),
    )
    .await;
    let _ = post(
        &proxy.url("/v1/chat/completions"),
        &format!(r#"{{"model":"{TOKEN}"}}"#),
    )
    .await;
    let _ = send(&proxy.url(&format!("/x/{TOKEN}")), "GET", &[], "").await;

    let line = proxy.wait_log("req-abc.123");
    let v = json(&line);
    for key in [
        "request_id",
        "method",
        "path",
        "model",
        "provider",
        "status",
        "upstream_ms",
        "total_ms",
        "bytes_in",
        "bytes_out",
        "streamed",
    ] {
        assert!(v.get(key).is_some(), "log line lacks {key}: {line}");
    }
    assert_eq!(v["model"], "fast");
    assert_eq!(v["provider"], "oa");
    assert_eq!(v["status"], 200);
    assert_eq!(v["bytes_out"], OK_CHAT.len());
    proxy.wait_log("/x/");
    let all = format!("{}\n{}", proxy.logs(), proxy.stderr.lock().unwrap());
    for secret in [OPENAI_KEY, ANTHROPIC_KEY] {
        assert!(!all.contains(secret), "a key reached the logs:\n{all}");
    }
    assert!(
        !all.contains(TOKEN),
        "the client token reached the logs:\n{all}"
    );
    assert!(all.contains("model `***` is not configured"), "{all}");
}

/// A body the first target's API cannot carry (a BMP image for an anthropic-kind target) goes
/// to the next target natively; with no other target it is a 400 naming the reason, and the
/// upstream never sees it. A translated request lists what it dropped.
#[tokio::test]
async fn untranslatable_bodies_fall_back_to_a_native_target() {
    let oa = Mock::start(Reply::Json(
        200,
        r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
    ))
    .await;
    let an = Mock::start(Reply::Json(
        200,
        r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#,
    ))
    .await;
    let yaml = yaml(
        &[
            ("oa", "openai", &oa.base(), ""),
            ("an", "anthropic", &an.base(), ""),
        ],
        "  - name: both\n    targets:\n      - provider: an\n      - provider: oa\n  - name: claude\n    targets:\n      - provider: an\n        max_tokens_cap: 50\n",
    );
    let proxy = Proxy::start(&default_env(""), &yaml);
    let chat = proxy.url("/v1/chat/completions");
    let bmp = r#"{"model":"MODEL","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,AA"}}]}]}"#;
    let (status, _, text) = post(&chat, &bmp.replace("MODEL", "both")).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["choices"][0]["message"]["content"], "ok");
    assert_eq!((an.calls(), oa.calls()), (0, 1));
    let (status, _, text) = post(&chat, &bmp.replace("MODEL", "claude")).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        json(&text)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image/bmp"),
        "{text}"
    );
    assert_eq!(an.calls(), 0);
    // Translated: capped max_tokens, dropped names listed, the answer in the client's shape.
    let (status, headers, text) = post(
        &chat,
        r#"{"model":"claude","max_tokens":4000,"seed":1,"logprobs":true,"messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-ai-proxy-dropped"], "logprobs, seed");
    let v = json(&text);
    assert_eq!(v["choices"][0]["message"]["content"], "hi");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let sent = json(&String::from_utf8_lossy(&an.last().body));
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(an.last().path, "/v1/messages");
}
