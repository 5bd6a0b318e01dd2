//! Streaming: chunk-by-chunk relay, keepalive comments, idle timeout, no fallback once bytes
//! went out, and a client hang-up cancelling the upstream request.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;

fn concat(frames: &[(Instant, Bytes)]) -> String {
    frames
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect()
}

async fn stream_request(proxy: &Proxy, model: &str) -> http::Response<hyper::body::Incoming> {
    send(
        &proxy.url("/v1/chat/completions"),
        "POST",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        format!(r#"{{"model":"{model}","stream":true}}"#),
    )
    .await
}

fn one_provider(mock: &Mock, extra: &str) -> String {
    yaml(
        &[("up", "openai", &mock.base(), extra)],
        "  - name: m\n    targets:\n      - provider: up\n",
    )
}

const TEN: [&str; 10] = [
    "data: 0\n\n",
    "data: 1\n\n",
    "data: 2\n\n",
    "data: 3\n\n",
    "data: 4\n\n",
    "data: 5\n\n",
    "data: 6\n\n",
    "data: 7\n\n",
    "data: 8\n\n",
    "data: [DONE]\n\n",
];

#[tokio::test]
async fn chunks_reach_the_client_as_they_arrive() {
    let up = Mock::start(Reply::Sse {
        chunks: TEN.to_vec(),
        interval: Duration::from_millis(100),
        then_abort: false,
    })
    .await;
    let proxy = Proxy::start(&default_env(""), &one_provider(&up, ""));
    let resp = stream_request(&proxy, "m").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (frames, err) = frames(resp).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(concat(&frames), TEN.concat());
    // Buffered relays deliver everything at the end; ours spreads over the ~900 ms the
    // upstream takes.
    assert!(frames.len() >= 5, "only {} frames", frames.len());
    let spread = frames.last().unwrap().0 - frames.first().unwrap().0;
    assert!(
        spread >= Duration::from_millis(500),
        "frames arrived within {spread:?}"
    );
    let log = proxy.wait_log("\"streamed\":true");
    assert!(log.contains("\"outcome\":\"complete\""), "{log}");
}

#[tokio::test]
async fn keepalive_comments_only_between_events() {
    let up = Mock::start(Reply::Sse {
        chunks: vec!["data: 1\n\n", "data: 2\n\n", "data: {\"part\":", "1}\n\n"],
        interval: Duration::from_millis(600),
        then_abort: false,
    })
    .await;
    let proxy = Proxy::start(
        &default_env(""),
        &one_provider(&up, "keepalive_interval: 100ms"),
    );
    let (frames, err) = frames(stream_request(&proxy, "m").await).await;
    assert!(err.is_none(), "{err:?}");
    let text = concat(&frames);
    let without: String = text.replace(": keepalive\n\n", "");
    assert_eq!(
        without, "data: 1\n\ndata: 2\n\ndata: {\"part\":1}\n\n",
        "{text:?}"
    );
    let between_events = &text[..text.find("data: 2").unwrap()];
    assert!(between_events.contains(": keepalive\n\n"), "{text:?}");
    // Inside the split event nothing may be inserted.
    assert!(text.contains("data: {\"part\":1}\n\n"), "{text:?}");
}

#[tokio::test]
async fn idle_upstream_is_cut() {
    let up = Mock::start(Reply::Sse {
        chunks: vec!["data: 1\n\n", "data: 2\n\n"],
        interval: Duration::from_secs(30),
        then_abort: false,
    })
    .await;
    let proxy = Proxy::start(
        &default_env(""),
        &one_provider(&up, "idle_timeout: 300ms\nkeepalive_interval: 0s"),
    );
    let (frames, err) = frames(stream_request(&proxy, "m").await).await;
    assert_eq!(concat(&frames), "data: 1\n\n");
    assert!(
        err.is_some(),
        "the client must see the stream fail, not end cleanly"
    );
    let log = proxy.wait_log("idle_timeout\"");
    assert!(log.contains("\"status\":200"), "{log}");
}

#[tokio::test]
async fn no_fallback_once_bytes_were_sent() {
    let broken = Mock::start(Reply::Sse {
        chunks: vec!["data: 1\n\n"],
        interval: Duration::from_millis(10),
        then_abort: true,
    })
    .await;
    let good = Mock::start(Reply::Json(200, "{}")).await;
    let yaml = yaml(
        &[
            ("broken", "openai", &broken.base(), ""),
            ("good", "openai", &good.base(), ""),
        ],
        "  - name: m\n    targets:\n      - provider: broken\n      - provider: good\n",
    );
    let proxy = Proxy::start(&default_env(""), &yaml);
    let (frames, err) = frames(stream_request(&proxy, "m").await).await;
    assert_eq!(concat(&frames), "data: 1\n\n");
    assert!(
        err.is_some(),
        "a broken upstream stream must reach the client as an error"
    );
    assert_eq!(good.calls(), 0, "fell back after bytes had been sent");
    let log = proxy.wait_log("upstream_error");
    assert!(log.contains("\"provider\":\"broken\""), "{log}");
}

#[tokio::test]
async fn client_hang_up_cancels_the_upstream() {
    let up = Mock::start(Reply::Sse {
        chunks: vec!["data: x\n\n"; 200],
        interval: Duration::from_millis(50),
        then_abort: false,
    })
    .await;
    let proxy = Proxy::start(&default_env(""), &one_provider(&up, ""));
    let resp = stream_request(&proxy, "m").await;
    let mut body = resp.into_body();
    for _ in 0..2 {
        http_body_util::BodyExt::frame(&mut body)
            .await
            .unwrap()
            .unwrap();
    }
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(5);
    let sent = loop {
        if let Some(sent) = *up.cancelled.lock().unwrap() {
            break sent;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream kept streaming after the client left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(sent < 100, "upstream sent {sent} chunks before noticing");
    let log = proxy.wait_log("client_closed");
    assert!(log.contains("\"streamed\":true"), "{log}");
    let metrics = send(&proxy.url("/metrics"), "GET", &[("x-api-key", TOKEN)], "").await;
    let metrics = http_body_util::BodyExt::collect(metrics.into_body())
        .await
        .unwrap()
        .to_bytes();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("ai_proxy_in_flight_streams 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn client_hang_up_before_the_response_cancels_the_upstream() {
    use tokio::io::AsyncWriteExt;
    let up = Mock::start(Reply::Hang).await;
    let proxy = Proxy::start(&default_env(""), &one_provider(&up, ""));
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let body = r#"{"model":"m"}"#;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while up.calls() == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(tcp);
    while up.cancelled.lock().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the upstream request outlived the client"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = proxy.wait_log("\"status\":499");
    assert!(
        log.contains("client_closed") && log.contains("\"model\":\"m\""),
        "{log}"
    );
    let metrics = send(&proxy.url("/metrics"), "GET", &[("x-api-key", TOKEN)], "").await;
    let metrics = http_body_util::BodyExt::collect(metrics.into_body())
        .await
        .unwrap()
        .to_bytes();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("ai_proxy_in_flight_requests 0"),
        "{metrics}"
    );
}

/// An Anthropic client on an openai-kind upstream: the translated stream is relayed event by
/// event, keepalives are `ping` events, and an upstream cut becomes the client's
/// `event: error` (no `message_stop`) on a body that ends cleanly.
#[tokio::test]
async fn translated_stream_pings_and_reports_a_cut() {
    let up = Mock::start(Reply::Sse {
        chunks: vec![
            "data: {\"id\":\"c\",\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            "data: {\"id\":\"c\",\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
        ],
        interval: Duration::from_millis(500),
        then_abort: true,
    })
    .await;
    let proxy = Proxy::start(
        &default_env(""),
        &one_provider(&up, "keepalive_interval: 100ms"),
    );
    let resp = send(
        &proxy.url("/v1/messages?beta=true"),
        "POST",
        &[
            ("x-api-key", TOKEN),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "claude-code-20250219"),
        ],
        r#"{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            .to_owned(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (frames, err) = frames(resp).await;
    assert!(err.is_none(), "{err:?}");
    let text = concat(&frames);
    let first_text = text.find("\"text\":\"Hel\"").expect(&text);
    let second_text = text.find("\"text\":\"lo\"").expect(&text);
    assert!(
        text[first_text..second_text].contains("event: ping\ndata: {\"type\": \"ping\"}\n\n"),
        "{text}"
    );
    assert!(!text.contains(": keepalive"), "{text}");
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert!(
        text.trim_end()
            .rsplit("\n\n")
            .next()
            .unwrap()
            .starts_with("event: error\n"),
        "{text}"
    );
    assert!(!text.contains("message_stop"), "{text}");
    // Translated frames leave as they are made, not at the end.
    assert!(frames.len() >= 3, "only {} frames", frames.len());
    let sent = up.last();
    assert_eq!(sent.path, "/chat/completions", "no query string");
    assert!(sent.headers.get("anthropic-version").is_none());
    assert!(sent.headers.get("anthropic-beta").is_none());
}

/// A silent upstream behind a translated stream: the chat-completions client gets the idle timeout as
/// its mid-stream error chunk (no `[DONE]`), not a cut connection.
#[tokio::test]
async fn translated_idle_upstream_is_an_error_chunk() {
    let up = Mock::start(Reply::Sse {
        chunks: vec![
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"up\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ],
        interval: Duration::from_secs(30),
        then_abort: false,
    })
    .await;
    let proxy = Proxy::start(
        &default_env(""),
        &yaml(
            &[(
                "up",
                "anthropic",
                &up.base(),
                "idle_timeout: 300ms\nkeepalive_interval: 0s",
            )],
            "  - name: m\n    targets:\n      - provider: up\n",
        ),
    );
    let resp = send(
        &proxy.url("/v1/chat/completions"),
        "POST",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#.to_owned(),
    )
    .await;
    let (frames, err) = frames(resp).await;
    assert!(err.is_none(), "{err:?}");
    let text = concat(&frames);
    assert!(text.starts_with("data: {"), "{text}");
    assert!(text.contains("\"role\":\"assistant\""), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("data: {\"error\""), "{text}");
    assert!(last.contains("idle_timeout"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    proxy.wait_log("idle_timeout\"");
}

/// A chat-completions client on an anthropic-kind upstream: the proxy's keepalives while the upstream
/// is silent are `: keepalive` comments, as are the upstream's `ping` events (the translate
/// fixtures pin that one down); no Anthropic event reaches the client.
#[tokio::test]
async fn translated_stream_to_an_openai_client_keeps_alive_with_comments() {
    let up = Mock::start(Reply::Sse {
        chunks: vec![
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"up\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
            "event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ],
        interval: Duration::from_millis(400),
        then_abort: false,
    })
    .await;
    let proxy = Proxy::start(
        &default_env(""),
        &yaml(
            &[("up", "anthropic", &up.base(), "keepalive_interval: 100ms")],
            "  - name: m\n    targets:\n      - provider: up\n",
        ),
    );
    let resp = send(
        &proxy.url("/v1/chat/completions"),
        "POST",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#.to_owned(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let (frames, err) = frames(resp).await;
    assert!(err.is_none(), "{err:?}");
    let text = concat(&frames);
    assert!(!text.contains("event:"), "{text}");
    // Silent gaps of 400 ms with a 100 ms interval: several comments, between the events.
    let keepalives = text.matches(": keepalive\n\n").count();
    assert!(keepalives >= 4, "{keepalives} keepalives in {text}");
    let role = text.find("\"role\":\"assistant\"").expect(&text);
    let hi = text.find("\"content\":\"Hi\"").expect(&text);
    assert!(text[role..hi].contains(": keepalive\n\n"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
}
