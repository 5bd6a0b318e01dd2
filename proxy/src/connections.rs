//! Client connections: the `MAX_CONNECTIONS` limit and each connection's deadlines. A
//! connection must send a complete request head within `REQUEST_HEADER_TIMEOUT` of its
//! accept (whatever the protocol: this covers HTTP/1-vs-2 detection and a partial HTTP/2
//! preface) and is closed after `CLIENT_IDLE_TIMEOUT` with no request in flight (HTTP/1
//! keep-alive and HTTP/2, which answers PINGs, alike). At the limit, the oldest connection
//! that has not sent a request yet is closed to admit the new one, so silent sockets cannot
//! lock out a real client such as the container's healthcheck; when every connection is busy,
//! the new one is closed at once. Both are counted and logged at most once a second.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::settings::ConnectionLimits;
use crate::log;
use crate::metrics::Metrics;

/// File descriptors kept free for upstream connections, the config files and the log.
const FD_RESERVE: usize = 64;

/// All open client connections.
pub struct Connections {
    max: usize,
    open: AtomicUsize,
    /// Connections that have not sent a request yet, oldest first (some entries stale).
    silent: Mutex<VecDeque<Weak<Conn>>>,
    metrics: Arc<Metrics>,
    /// When the last "limit reached" line was written, in ms since `epoch`.
    last_warned_ms: AtomicU64,
    epoch: Instant,
}

/// One client connection's state, shared by its task and its requests.
pub struct Conn {
    requested: AtomicBool,
    in_flight: AtomicUsize,
    /// When the connection last became idle, in ms since `epoch`.
    idle_since_ms: AtomicU64,
    epoch: Instant,
    close: Notify,
}

/// A connection's place under the limit, given back when dropped.
pub struct Slot {
    connections: Arc<Connections>,
    /// The connection.
    pub conn: Arc<Conn>,
}

impl Slot {
    /// The metrics the connection reports to.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.connections.metrics
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::Relaxed);
        self.connections
            .metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connections {
    /// At most `max` connections, lowered to fit the process's open-file limit.
    #[must_use]
    pub fn new(max: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        let max = match open_files_limit() {
            Some(nofile) if nofile.saturating_sub(FD_RESERVE) < max => {
                let fitted = nofile.saturating_sub(FD_RESERVE).max(1);
                log::warn("MAX_CONNECTIONS lowered to fit the open-file limit")
                    .u64("max_connections", max as u64)
                    .u64("nofile", nofile as u64)
                    .u64("effective", fitted as u64)
                    .emit();
                fitted
            }
            _ => max,
        };
        Arc::new(Self {
            max,
            open: AtomicUsize::new(0),
            silent: Mutex::new(VecDeque::new()),
            metrics,
            last_warned_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// Admits a new connection, closing the oldest silent one if at the limit; `None` when
    /// every connection is busy with requests (the caller drops the socket).
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut silent = self
            .silent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.open.load(Ordering::Relaxed) >= self.max {
            let evicted = std::iter::from_fn(|| silent.pop_front())
                .filter_map(|w| w.upgrade())
                .find(|c| !c.requested.load(Ordering::Relaxed));
            if let Some(victim) = evicted {
                victim.close.notify_one();
                self.metrics
                    .connections_evicted
                    .fetch_add(1, Ordering::Relaxed);
                self.warn("MAX_CONNECTIONS reached; closed the oldest silent connection");
            } else {
                self.metrics
                    .connections_rejected
                    .fetch_add(1, Ordering::Relaxed);
                self.warn("MAX_CONNECTIONS reached; closing new connections");
                return None;
            }
        }
        let conn = Arc::new(Conn {
            requested: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch: self.epoch,
            close: Notify::new(),
        });
        conn.idle_since_ms.store(conn.now_ms(), Ordering::Relaxed);
        if silent.len() >= self.max.saturating_mul(2) {
            silent.retain(|w| {
                w.upgrade()
                    .is_some_and(|c| !c.requested.load(Ordering::Relaxed))
            });
        }
        silent.push_back(Arc::downgrade(&conn));
        drop(silent);
        self.open.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            connections: self.clone(),
            conn,
        })
    }

    /// The effective limit.
    #[must_use]
    pub fn max(&self) -> usize {
        self.max
    }

    /// Logs `msg` at most once a second: a flood must not become a log flood.
    fn warn(&self, msg: &str) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_warned_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= 1000)
            && self
                .last_warned_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log::warn(msg)
                .u64("max_connections", self.max as u64)
                .u64(
                    "rejected_total",
                    self.metrics.connections_rejected.load(Ordering::Relaxed),
                )
                .u64(
                    "evicted_total",
                    self.metrics.connections_evicted.load(Ordering::Relaxed),
                )
                .emit();
        }
    }
}

/// Why a connection was closed by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No complete request head in time.
    Header,
    /// Idle (no request in flight) too long.
    Idle,
    /// Closed to admit a new connection at the limit.
    Evicted,
}

impl Conn {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A request arrived (its head is complete): counted until the guard is dropped, which
    /// the server ties to the response body.
    #[must_use]
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.requested.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// Resolves when the connection must be closed: its deadline passed with no request in
    /// flight, or it was evicted.
    pub async fn expired(&self, limits: &ConnectionLimits) -> Expiry {
        loop {
            let (limit, expiry) = if self.requested.load(Ordering::Relaxed) {
                (limits.client_idle_timeout, Expiry::Idle)
            } else {
                (limits.request_header_timeout, Expiry::Header)
            };
            let wait = if self.in_flight.load(Ordering::Relaxed) > 0 {
                limit
            } else {
                let idle_for = self
                    .now_ms()
                    .saturating_sub(self.idle_since_ms.load(Ordering::Relaxed));
                let left = limit.saturating_sub(Duration::from_millis(idle_for));
                if left.is_zero() {
                    return expiry;
                }
                left
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.close.notified() => return Expiry::Evicted,
            }
        }
    }
}

/// Marks a request of a connection as in flight until dropped.
pub struct RequestGuard(Arc<Conn>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.idle_since_ms.store(conn.now_ms(), Ordering::Relaxed);
        conn.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The soft `RLIMIT_NOFILE`, read from `/proc/self/limits` (no libc call needed).
fn open_files_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
