//! Hostile clients, on 127.0.0.1 with bounded loops: silent sockets and partial HTTP/2
//! prefaces, a connection flood under a low open-file limit, concurrent large bodies, a
//! never-ending upload, a huge model name and path, an unauthenticated flood, and a stdout
//! nobody reads. Each test prints what it measured (run with `--nocapture` to see it);
//! `AI_PROXY_TEST_BIN=/path/to/old/ai-proxy` measures another build the same way.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OK_CHAT: &str = r#"{"id":"c1","object":"chat.completion","choices":[]}"#;
const MODELS: &str = "  - name: m\n    targets:\n      - provider: up\n";

fn one_openai(base: &str) -> String {
    yaml(&[("up", "openai", base, "")], MODELS)
}

/// Waits (at most `limit`) for the peer to close `stream`; the time it took, from `since`.
async fn closed_after(mut stream: TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// The slowest close of `streams`, or `None` if one stayed open past `limit`.
async fn slowest_close(
    streams: Vec<TcpStream>,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    let waits: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::spawn(closed_after(s, since, limit)))
        .collect();
    let mut slowest = Duration::ZERO;
    for w in waits {
        slowest = slowest.max(w.await.unwrap()?);
    }
    Some(slowest)
}

/// An HTTP/1.1 keep-alive connection after one request, and when it became idle.
async fn idle_http1(proxy: &Proxy) -> (TcpStream, Instant) {
    let mut h1 = TcpStream::connect(proxy.addr).await.unwrap();
    h1.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = h1.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    (h1, Instant::now())
}

/// An HTTP/2 connection after one request (hyper's client answers PINGs); resolves to how
/// long it stayed open once idle (15 s at most).
fn idle_http2(proxy: &Proxy) -> impl std::future::Future<Output = Duration> + use<> {
    let addr = proxy.addr;
    let url = proxy.url("/ping");
    async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut h2, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        let closed = tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(15), conn).await;
            Instant::now()
        });
        let req = http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = h2.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        drop(resp);
        let idle_from = Instant::now();
        closed.await.unwrap().duration_since(idle_from)
    }
}

/// Item 1: no connection outlives the deadline to its first request head, whatever it
/// sent, and an idle connection (HTTP/1 keep-alive or HTTP/2 answering PINGs) is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_partial_prefaces_and_idle_connections_are_closed() {
    let env = default_env("REQUEST_HEADER_TIMEOUT=1s\nCLIENT_IDLE_TIMEOUT=2s\n");
    let proxy = Proxy::start(&env, &one_openai("http://127.0.0.1:9/v1"));
    let pid = proxy.child.id();
    let rss_idle = proc_status_kb(pid, "VmRSS");
    let start = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..2000 {
        silent.push(TcpStream::connect(proxy.addr).await.unwrap());
    }
    let mut partial = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..23])
            .await
            .unwrap();
        partial.push(s);
    }
    let connecting = start.elapsed();
    // Each deadline runs from that socket's accept, at the latest about now.
    let connected = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_held = proc_status_kb(pid, "VmRSS");

    let (h1, h1_idle_from) = idle_http1(&proxy).await;
    let h2_close = tokio::spawn(idle_http2(&proxy));
    let limit = Duration::from_secs(15);
    let silent_close = slowest_close(silent, connected, limit).await;
    let partial_close = slowest_close(partial, connected, limit).await;
    let h1_close = closed_after(h1, h1_idle_from, limit).await;
    let h2_close = h2_close.await.unwrap();
    println!(
        "MEASURED item 1: RSS idle {rss_idle} kB, with 2050 silent sockets {rss_held} kB; \
         connecting took {connecting:?}; slowest close after the last connect: 2000 silent {silent_close:?}, 50 partial HTTP/2 prefaces {partial_close:?} \
         (REQUEST_HEADER_TIMEOUT=1s); idle HTTP/1 keep-alive {h1_close:?} (waits for a head: 1s), idle HTTP/2 {h2_close:?} \
         (CLIENT_IDLE_TIMEOUT=2s)"
    );
    let slack = Duration::from_secs(3);
    for (what, closed, deadline) in [
        ("silent sockets", silent_close, Duration::from_secs(1)),
        ("partial prefaces", partial_close, Duration::from_secs(1)),
        ("idle HTTP/1", h1_close, Duration::from_secs(2)),
    ] {
        let closed = closed.unwrap_or_else(|| panic!("{what} still open after {limit:?}"));
        assert!(closed <= deadline + slack, "{what} closed after {closed:?}");
    }
    assert!(
        h2_close >= Duration::from_secs(2) - Duration::from_millis(100)
            && h2_close <= Duration::from_secs(2) + slack,
        "idle HTTP/2 closed after {h2_close:?}"
    );
    let text = metrics_text(&proxy).await;
    assert!(
        metric(&text, "ai_proxy_connections_header_timeout_total").unwrap_or(0.0) >= 2050.0,
        "{text}"
    );
}

/// Runs the container's own healthcheck command once: success and how long it took.
fn healthcheck(port: u16) -> (bool, Duration) {
    let started = Instant::now();
    let ok = bin()
        .args(["healthcheck", "--port", &port.to_string()])
        .output()
        .unwrap()
        .status
        .success();
    (ok, started.elapsed())
}

/// Item 1: with the open-file limit at 1,024 and more silent sockets than connections
/// allowed, the healthcheck still answers and the proxy does not spin on EMFILE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answers_while_max_connections_silent_sockets_are_held() {
    // A long header deadline, so it is the connection limit that keeps /ping working.
    let env = default_env("REQUEST_HEADER_TIMEOUT=60s\n");
    let dir = config_dir(&env, &one_openai("http://127.0.0.1:9/v1"));
    let proxy = Proxy::launch(
        dir,
        &Launch {
            nofile: Some(1024),
            ..Launch::default()
        },
    );
    let mut held = Vec::new();
    let connecting = Instant::now();
    for _ in 0..1100 {
        if connecting.elapsed() > Duration::from_secs(20) {
            break;
        }
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(proxy.addr)).await
        {
            held.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let port = proxy.addr.port();
    let mut checks = Vec::new();
    for _ in 0..10 {
        checks.push(
            tokio::task::spawn_blocking(move || healthcheck(port))
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ok = checks.iter().filter(|(ok, _)| *ok).count();
    let slowest = checks.iter().map(|(_, d)| *d).max().unwrap();
    let accept_errors = proxy
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("accept failed"))
        .count();
    let text = metrics_text(&proxy).await;
    let evicted = metric(&text, "ai_proxy_connections_evicted_total");
    println!(
        "MEASURED item 1: nofile 1024, {} silent sockets connected; healthcheck {ok}/10 ok, \
         slowest {slowest:?}; evicted {evicted:?}; `accept failed` log lines: {accept_errors}",
        held.len()
    );
    assert_eq!(ok, 10, "the healthcheck failed while sockets were held");
    assert!(evicted.unwrap_or(0.0) > 0.0, "{text}");
    assert!(accept_errors <= 5, "EMFILE logged {accept_errors} times");
    drop(held);
}

/// Item 2: 24 concurrent 16 MiB bodies stay within the body budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_large_bodies_stay_under_the_budget() {
    let up = Mock::start(Reply::Json(200, OK_CHAT)).await;
    let proxy = Proxy::start(&default_env(""), &one_openai(&up.base()));
    let pid = proxy.child.id();
    let size = 16 * 1024 * 1024;
    let mut body = br#"{"model":"m","pad":""#.to_vec();
    body.resize(size - 2, b'x');
    body.extend_from_slice(b"\"}");
    let body = Bytes::from(body);
    let url = Arc::new(proxy.url("/v1/chat/completions"));
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let (body, url) = (body.clone(), url.clone());
            tokio::spawn(async move {
                let req = http::Request::post(url.as_str())
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .body(Full::new(body))
                    .unwrap();
                let resp = match client().request(req).await {
                    Ok(resp) => resp,
                    Err(e) => return (0, false, format!("{e:?}")),
                };
                let status = resp.status().as_u16();
                let retry_after = resp.headers().contains_key("retry-after");
                let text = resp.into_body().collect().await.unwrap().to_bytes();
                (
                    status,
                    retry_after,
                    String::from_utf8_lossy(&text).into_owned(),
                )
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let peak_kb = proc_status_kb(pid, "VmHWM");
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let busy = results.iter().filter(|r| r.0 == 503).count();
    println!(
        "MEASURED item 2: 24 x 16 MiB concurrent: peak RSS {} MiB; {ok} answered 200, {busy} got 503",
        peak_kb / 1024
    );
    for (status, retry_after, text) in &results {
        match status {
            200 => {}
            503 => {
                assert!(retry_after, "503 without Retry-After");
                assert_eq!(json(text)["error"]["code"], "overloaded", "{text}");
            }
            other => panic!("unexpected {other}: {text}\n{}", proxy.logs()),
        }
    }
    assert!(ok >= 1, "no request was admitted");
    assert!(peak_kb < 300 * 1024, "peak RSS {peak_kb} kB");
    let text = metrics_text(&proxy).await;
    #[allow(clippy::cast_precision_loss, reason = "at most 24")]
    let counted = busy as f64;
    assert_eq!(
        metric(&text, "ai_proxy_body_budget_rejected_total"),
        Some(counted),
        "{text}"
    );
}

/// Item 3: an upload that never ends gets 408 at `BODY_READ_TIMEOUT`.
#[tokio::test]
async fn never_ending_upload_gets_408() {
    let up = Mock::start(Reply::Json(200, OK_CHAT)).await;
    let proxy = Proxy::start(
        &default_env("BODY_READ_TIMEOUT=1s\n"),
        &one_openai(&up.base()),
    );
    let mut results = Vec::new();
    for head in [
        "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"mod\r\n",
        "Content-Length: 1000\r\n\r\n{\"model\":",
    ] {
        let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
        let started = Instant::now();
        tcp.write_all(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{head}"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = [0u8; 12];
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut buf)).await;
        results.push((read.is_ok_and(|r| r.is_ok()), buf, started.elapsed()));
    }
    for (answered, status, after) in &results {
        println!(
            "MEASURED item 3: stalled upload answered {:?} after {after:?} (BODY_READ_TIMEOUT=1s)",
            answered.then(|| String::from_utf8_lossy(status).into_owned())
        );
    }
    for (answered, status, after) in results {
        assert!(answered, "no answer within 10 s");
        assert_eq!(&status, b"HTTP/1.1 408");
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(4),
            "{after:?}"
        );
    }
    assert_eq!(up.calls(), 0);
}

/// Item 4: a 16 MiB model name and a 60 KB path come back, and are logged, short; an
/// unauthenticated flood is logged at most `LOG_REJECTED_PER_SEC` lines a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_client_strings_are_clipped_and_rejected_floods_rate_limited() {
    let up = Mock::start(Reply::Json(200, OK_CHAT)).await;
    let proxy = Proxy::start(
        &default_env("LOG_REJECTED_PER_SEC=10\n"),
        &one_openai(&up.base()),
    );
    let name = "n".repeat(16 * 1024 * 1024 - 64);
    let (status, _, text) = post(
        &proxy.url("/v1/chat/completions"),
        &format!(r#"{{"model":"{name}"}}"#),
    )
    .await;
    assert_eq!(status, 404);
    let model_line = proxy.wait_log("\"status\":404");
    let path = format!("/{}", "p".repeat(60_000));
    let resp = send(&proxy.url(&path), "GET", &[], "").await;
    assert_eq!(resp.status(), 404);
    let path_body = resp.into_body().collect().await.unwrap().to_bytes();
    let path_line = proxy.wait_log("\"path\":\"/ppp");
    println!(
        "MEASURED item 4: 16 MiB model name -> 404 body {} B, log line {} B; 60 KB path -> 404 body {} B, log line {} B",
        text.len(),
        model_line.len(),
        path_body.len(),
        path_line.len()
    );
    assert!(text.len() < 1024, "404 body of {} bytes", text.len());
    assert!(
        model_line.len() < 2048,
        "log line of {} bytes",
        model_line.len()
    );
    assert!(path_body.len() < 1024 && path_line.len() < 2048);

    let before = proxy.request_logs().len();
    let started = Instant::now();
    let url = proxy.url("/v1/chat/completions");
    for _ in 0..300 {
        let resp = send(&url, "POST", &[], "{}").await;
        assert_eq!(resp.status(), 401);
    }
    let secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logged = proxy.request_logs().len() - before;
    let text = metrics_text(&proxy).await;
    let suppressed = metric(&text, "ai_proxy_log_lines_suppressed_total").unwrap_or(0.0);
    println!(
        "MEASURED item 4: 300 unauthenticated requests in {secs:.2} s -> {logged} request log lines, {suppressed} suppressed"
    );
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a few seconds"
    )]
    let allowed = 10 * (secs.ceil() as usize + 1);
    assert!(
        logged <= allowed,
        "{logged} lines logged, at most {allowed} allowed"
    );
    assert!(suppressed >= 1.0, "{text}");
    assert_eq!(up.calls(), 0);
}

/// Item 5: with stdout never read (and one worker thread), requests and `/ping` still
/// answer, and the dropped lines are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_stdout_blocks_neither_requests_nor_ping() {
    let env = default_env("LOG_QUEUE_LINES=64\n");
    let dir = config_dir(&env, &one_openai("http://127.0.0.1:9/v1"));
    let proxy = Proxy::launch(
        dir,
        &Launch {
            drain_stdout: false,
            env: vec![("TOKIO_WORKER_THREADS".to_owned(), "1".to_owned())],
            ..Launch::default()
        },
    );
    let url = proxy.url("/v1/models");
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    for _ in 0..2000 {
        let started = Instant::now();
        let sent = tokio::time::timeout(
            Duration::from_secs(2),
            send(&url, "GET", &[("x-api-key", TOKEN)], ""),
        )
        .await;
        let Ok(resp) = sent else { break };
        assert_eq!(resp.status(), 200);
        answered += 1;
        slowest = slowest.max(started.elapsed());
    }
    let port = proxy.addr.port();
    let (ping_ok, ping_after) = tokio::task::spawn_blocking(move || healthcheck(port))
        .await
        .unwrap();
    let text = metrics_text(&proxy).await;
    let dropped = metric(&text, "ai_proxy_log_lines_dropped_total");
    println!(
        "MEASURED item 5: stdout not drained, 1 worker: {answered}/2000 requests answered \
         (slowest {slowest:?}); healthcheck ok={ping_ok} in {ping_after:?}; dropped lines {dropped:?}"
    );
    assert_eq!(answered, 2000, "a request hung behind the log");
    assert!(ping_ok, "/ping hung behind the log");
    assert!(dropped.unwrap_or(0.0) > 0.0, "{text}");
}
