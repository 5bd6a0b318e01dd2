//! Log lines on stdout: one JSON object per line (default) or `key=value` text, handed to
//! one writer thread through a bounded queue so that a slow or stuck stdout never blocks a
//! request (a full queue drops the line and counts it). Callers pass names, ids and numbers;
//! secrets are a [`crate::secret::Secret`] and never reach here.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::LogFormat;

static FORMAT: OnceLock<LogFormat> = OnceLock::new();
static QUEUE: OnceLock<SyncSender<String>> = OnceLock::new();
/// Lines handed to the writer and not yet written.
static PENDING: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Sets the format and starts the writer thread with a queue of `queue_lines`, once, at
/// start. Lines logged before are written directly, as JSON.
pub fn init(format: LogFormat, queue_lines: usize) {
    let _ = FORMAT.set(format);
    let (tx, rx) = sync_channel(queue_lines);
    let started = std::thread::Builder::new()
        .name("ai-proxy-log".to_owned())
        .spawn(move || write_lines(&rx));
    if started.is_ok() {
        let _ = QUEUE.set(tx);
    }
}

/// The writer thread: writes what is queued, several lines per `write` when they pile up.
fn write_lines(rx: &Receiver<String>) {
    let mut batch = String::with_capacity(64 * 1024);
    while let Ok(line) = rx.recv() {
        batch.push_str(&line);
        let mut n = 1;
        while batch.len() < 60 * 1024
            && let Ok(line) = rx.try_recv()
        {
            batch.push_str(&line);
            n += 1;
        }
        // A closed stdout is ignored: logging must not stop serving.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(batch.as_bytes()).and_then(|()| out.flush());
        drop(out);
        PENDING.fetch_sub(n, Ordering::Relaxed);
        batch.clear();
    }
}

/// Waits up to `limit` for queued lines to be written (at exit).
pub fn flush(limit: Duration) {
    let deadline = Instant::now() + limit;
    while PENDING.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lines dropped because the queue was full (`ai_proxy_log_lines_dropped_total`).
#[must_use]
pub fn dropped_total() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// A budget of lines per second for a class of lines a client can cause at will (401, 404):
/// past it lines are suppressed, counted, and summarised in one line when the next second
/// starts.
pub struct RateLimit {
    per_sec: u32,
    /// Start of the current second, lines written in it, lines suppressed in it.
    window: Mutex<(Instant, u32, u64)>,
    suppressed: AtomicU64,
}

impl RateLimit {
    /// At most `per_sec` lines a second.
    #[must_use]
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec,
            window: Mutex::new((Instant::now(), 0, 0)),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether one more line may be written now.
    pub fn allow(&self) -> bool {
        let per_sec = self.per_sec;
        let mut w = self
            .window
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if now.duration_since(w.0) >= Duration::from_secs(1) {
            let suppressed = w.2;
            *w = (now, 0, 0);
            if suppressed > 0 {
                warn("log lines suppressed")
                    .str("class", "rejected requests (401, 404)")
                    .u64("lines", suppressed)
                    .u64("per_sec", u64::from(per_sec))
                    .emit();
            }
        }
        if w.1 < per_sec {
            w.1 += 1;
            true
        } else {
            w.2 += 1;
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Lines suppressed so far (`ai_proxy_log_lines_suppressed_total`).
    #[must_use]
    pub fn suppressed_total(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }
}

fn json() -> bool {
    FORMAT.get().is_none_or(|f| *f == LogFormat::Json)
}

/// One log line under construction; [`Line::emit`] writes it with a single `write`.
#[must_use = "a log line does nothing until emitted"]
pub struct Line {
    buf: String,
    json: bool,
}

impl Line {
    /// Starts a line with timestamp, level and message.
    pub fn new(level: &str, msg: &str) -> Self {
        let json = json();
        let mut line = Self {
            buf: String::with_capacity(320),
            json,
        };
        if json {
            line.buf.push_str("{\"ts\":\"");
            write_timestamp(&mut line.buf);
            line.buf.push('"');
        } else {
            line.buf.push_str("ts=");
            write_timestamp(&mut line.buf);
        }
        line.str("level", level).str("msg", msg)
    }

    /// Starts a field: the separator and the key, ready for the value.
    fn key(&mut self, key: &str) {
        if self.json {
            self.buf.push_str(",\"");
            self.buf.push_str(key);
            self.buf.push_str("\":");
        } else {
            self.buf.push(' ');
            self.buf.push_str(key);
            self.buf.push('=');
        }
    }

    /// Adds a string field. Escapes straight into the line: the request log runs once per
    /// request, so it allocates nothing per field.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        if !self.json
            && !value.is_empty()
            && !value.contains(|c: char| c.is_whitespace() || c == '"' || c == '=')
        {
            self.buf.push_str(value);
        } else {
            push_json_string(&mut self.buf, value);
        }
        self
    }

    /// Adds a string field when `value` is `Some`.
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    /// Adds an integer field when `value` is `Some`.
    pub fn opt_u64(self, key: &str, value: Option<u64>) -> Self {
        match value {
            Some(v) => self.u64(key, v),
            None => self,
        }
    }

    /// Adds an integer field.
    pub fn u64(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.buf, "{value}");
        self
    }

    /// Adds a duration in milliseconds with three decimals, from integer microseconds
    /// (formatting an `f64` costs several times more on every request).
    pub fn ms(mut self, key: &str, value: Duration) -> Self {
        self.key(key);
        let micros = value.as_micros();
        let _ = write!(self.buf, "{}.{:03}", micros / 1000, micros % 1000);
        self
    }

    /// Adds a boolean field.
    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.buf.push_str(if value { "true" } else { "false" });
        self
    }

    /// Queues the line for stdout, or drops and counts it when the queue is full; never
    /// waits. Before [`init`], writes directly.
    pub fn emit(mut self) {
        if self.json {
            self.buf.push('}');
        }
        self.buf.push('\n');
        let Some(queue) = QUEUE.get() else {
            let _ = std::io::stdout().lock().write_all(self.buf.as_bytes());
            return;
        };
        PENDING.fetch_add(1, Ordering::Relaxed);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = queue.try_send(self.buf)
        {
            PENDING.fetch_sub(1, Ordering::Relaxed);
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Shorthand for a message with no fields.
pub fn info(msg: &str) -> Line {
    Line::new("info", msg)
}

/// Shorthand for a warning.
pub fn warn(msg: &str) -> Line {
    Line::new("warn", msg)
}

/// Shorthand for an error.
pub fn error(msg: &str) -> Line {
    Line::new("error", msg)
}

/// Appends `value` as a JSON string literal.
fn push_json_string(buf: &mut String, value: &str) {
    buf.push('"');
    for c in value.chars() {
        match c {
            '"' => buf.push_str("\\\""),
            '\\' => buf.push_str("\\\\"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            '\t' => buf.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(buf, "\\u{:04x}", u32::from(c));
            }
            c => buf.push(c),
        }
    }
    buf.push('"');
}

/// Appends RFC 3339 UTC time with milliseconds, without pulling in a date crate.
fn write_timestamp(buf: &mut String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        buf,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    );
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
#[allow(
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_possible_truncation,
    reason = "the ranges are bounded by the algorithm for any date after 1970"
)]
fn civil_from_days(days: u64) -> (i64, u32, u32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::{civil_from_days, push_json_string};

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn json_strings_round_trip() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\n\r\t",
            "ctl\u{1}\u{1f}",
            "ünï😀",
        ] {
            let mut buf = String::new();
            push_json_string(&mut buf, s);
            assert_eq!(serde_json::from_str::<String>(&buf).unwrap(), s, "{buf}");
        }
    }
}
