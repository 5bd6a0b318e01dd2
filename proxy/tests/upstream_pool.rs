//! The upstream connection pool: sequential requests share one upstream connection, and a
//! connection the upstream closed while idle is not used again (or is retried on a new one),
//! so no client sees the upstream's keep-alive ending. Against a raw TCP upstream that counts
//! its connections. Here the retry on a new connection happens only when the upstream's close
//! races the checkout; `upstream::tests::a_reused_connection_found_closed_is_retried_on_a_new_one`
//! (a unit test) goes through it on every run.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ANSWER: &str = r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;

/// An upstream that answers every request with [`ANSWER`] and counts accepted connections;
/// with `close_after_answer` it closes each connection right after its first answer, without
/// saying so (no `Connection: close`), as an upstream whose keep-alive timed out does.
async fn upstream(close_after_answer: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if !request_complete(&buf) {
                        continue;
                    }
                    buf.clear();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ANSWER}",
                        ANSWER.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() || close_after_answer {
                        return;
                    }
                }
            });
        }
    });
    (base, accepted)
}

/// Whether `buf` holds a whole request with a `content-length` body.
fn request_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    buf.len() >= end + 4 + length
}

fn proxy_for(base: &str) -> Proxy {
    Proxy::start(
        &default_env(""),
        &yaml(
            &[("up", "openai", base, "")],
            "  - name: m\n    targets:\n      - provider: up\n",
        ),
    )
}

const BODY: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let (base, accepted) = upstream(false).await;
    let proxy = proxy_for(&base);
    for i in 0..5 {
        let (status, _, body) = post(&proxy.url("/v1/chat/completions"), BODY).await;
        assert_eq!(status, 200, "request {i}: {body}");
        // Give the finished connection a moment to be marked ready again.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "upstream connections");
}

#[tokio::test]
async fn an_upstream_closing_idle_connections_is_invisible_to_clients() {
    let (base, accepted) = upstream(true).await;
    let proxy = proxy_for(&base);
    for i in 0..5 {
        let (status, _, body) = post(&proxy.url("/v1/chat/completions"), BODY).await;
        assert_eq!(status, 200, "request {i}: {body}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5, "upstream connections");
}
