//! The listener: accepts connections (HTTP/1.1 and HTTP/2, detected per connection), serves
//! them, and on shutdown stops accepting and lets in-flight requests finish within the grace
//! period.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::log;
use crate::pipeline;
use crate::state::AppState;

/// Serves `listener` until `shutdown` resolves, then drains for at most `grace`.
pub async fn serve(
    state: Arc<AppState>,
    listener: TcpListener,
    shutdown: impl Future<Output = &'static str>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Slow or idle clients must not hold a connection open forever before a request.
        .header_read_timeout(Duration::from_secs(30));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);

    let signal = loop {
        tokio::select! {
            signal = &mut shutdown => break signal,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Usually EMFILE: wait a little instead of spinning.
                        log::error("accept failed").str("error", &e.to_string()).emit();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let service = service_fn(move |req| pipeline::handle(state.clone(), req));
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // Client-side errors (resets, bad requests) are the client's business.
                    let _ = conn.await;
                });
            }
        }
    };
    drop(listener);
    let grace = state.settings.shutdown_grace;
    log::info("shutting down")
        .str("signal", signal)
        .u64("grace_secs", grace.as_secs())
        .u64(
            "in_flight_requests",
            u64::try_from(
                state
                    .metrics
                    .in_flight_requests
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
            .unwrap_or(0),
        )
        .emit();
    tokio::select! {
        () = graceful.shutdown() => log::info("all connections closed").emit(),
        () = tokio::time::sleep(grace) => log::warn("grace period over; closing remaining connections").emit(),
    }
}
