//! Log lines on stdout: one JSON object per line (default) or `key=value` text, handed to
//! one writer thread through a bounded queue so that a slow or stuck stdout never blocks a
//! request (a full queue drops the line and counts it). Callers pass names, ids and numbers;
//! secrets are a [`crate::secret::Secret`] and never reach here.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::LogFormat;

static FORMAT: OnceLock<LogFormat> = OnceLock::new();
static QUEUE: OnceLock<Queue> = OnceLock::new();
/// Lines queued or being written, not yet written.
static PENDING: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How long the writer gathers lines after the first one arrives before it writes them: one
/// wake-up and one `write` per batch, not per request (a wake-up per line cost a futex call
/// and a context switch on the proxy's core for every request).
const BATCH_DELAY: Duration = Duration::from_millis(5);
/// A batch this large is written without waiting for [`BATCH_DELAY`] to pass.
const BATCH_BYTES: usize = 32 * 1024;

/// The lines waiting for the writer thread: one buffer, appended to under a lock that the
/// writer holds only to swap it for an empty one.
struct Queue {
    waiting: Mutex<Waiting>,
    wake: Condvar,
    /// At most this many lines wait; more are dropped.
    capacity: usize,
}

struct Waiting {
    text: Vec<u8>,
    lines: usize,
    writer: Writer,
    /// Write now: the process is exiting.
    urgent: bool,
}

/// What the writer thread is doing, so that a request wakes it only when it has to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Asleep until a line arrives.
    Idle,
    /// Gathering a batch until [`BATCH_DELAY`] passes or it reaches [`BATCH_BYTES`].
    Gathering,
    /// Woken, or writing: needs no wake-up.
    Busy,
}

impl Queue {
    fn new(capacity: usize) -> Self {
        Self {
            waiting: Mutex::new(Waiting {
                text: Vec::new(),
                lines: 0,
                writer: Writer::Busy,
                urgent: false,
            }),
            wake: Condvar::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `line`, or drops and counts it when `capacity` lines wait already.
    fn push(&self, line: &[u8]) {
        let mut w = self.lock();
        if w.lines >= self.capacity {
            drop(w);
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        w.text.extend_from_slice(line);
        w.lines += 1;
        PENDING.fetch_add(1, Ordering::Relaxed);
        let wake = match w.writer {
            Writer::Idle => true,
            Writer::Gathering => w.text.len() >= BATCH_BYTES,
            Writer::Busy => false,
        };
        if wake {
            w.writer = Writer::Busy;
            drop(w);
            self.wake.notify_one();
        }
    }

    /// Waits for lines, gathers a batch, and swaps it into `batch`; returns how many lines.
    fn take(&self, batch: &mut Vec<u8>) -> usize {
        let mut w = self.lock();
        while w.lines == 0 {
            w.writer = Writer::Idle;
            w = self.wake.wait(w).unwrap_or_else(PoisonError::into_inner);
        }
        let deadline = Instant::now() + BATCH_DELAY;
        while w.text.len() < BATCH_BYTES && !w.urgent {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            w.writer = Writer::Gathering;
            w = self
                .wake
                .wait_timeout(w, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        w.writer = Writer::Busy;
        std::mem::swap(&mut w.text, batch);
        std::mem::take(&mut w.lines)
    }
}

/// Sets the format and starts the writer thread with a queue of `queue_lines`, once, at
/// start. Lines logged before are written directly, as JSON.
pub fn init(format: LogFormat, queue_lines: usize) {
    let _ = FORMAT.set(format);
    if QUEUE.set(Queue::new(queue_lines)).is_err() {
        return;
    }
    let started = std::thread::Builder::new()
        .name("ai-proxy-log".to_owned())
        .spawn(write_lines);
    if started.is_err() {
        // No writer: lines would only pile up. Count them as dropped from now on.
        if let Some(q) = QUEUE.get() {
            q.lock().lines = usize::MAX;
        }
    }
}

/// The writer thread: one `write` per batch of queued lines.
fn write_lines() {
    let Some(queue) = QUEUE.get() else { return };
    let mut batch = Vec::new();
    loop {
        let n = queue.take(&mut batch);
        // A closed stdout is ignored: logging must not stop serving.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        drop(out);
        PENDING.fetch_sub(n, Ordering::Relaxed);
        batch.clear();
    }
}

/// Waits up to `limit` for queued lines to be written (at exit).
pub fn flush(limit: Duration) {
    if let Some(queue) = QUEUE.get() {
        queue.lock().urgent = true;
        queue.wake.notify_one();
    }
    let deadline = Instant::now() + limit;
    while PENDING.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
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
    #[cfg(test)]
    if let Some(json) = TEST_JSON.get() {
        return json;
    }
    FORMAT.get().is_none_or(|f| *f == LogFormat::Json)
}

#[cfg(test)]
thread_local! {
    /// The format [`render_for_test`] asks for, on this test's thread only.
    static TEST_JSON: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// The bytes the line `make` builds would be written as, in JSON or text, with the
/// timestamp replaced by `2026-01-02T03:04:05.678Z` so that tests can pin whole lines.
#[cfg(test)]
pub(crate) fn render_for_test(json: bool, make: impl FnOnce() -> Line) -> String {
    TEST_JSON.set(Some(json));
    let mut line = make();
    TEST_JSON.set(None);
    line.end();
    let mut text = String::from_utf8(line.buf).expect("a line is UTF-8");
    let ts = if json {
        "{\"ts\":\"".len()
    } else {
        "ts=".len()
    };
    let fixed = "2026-01-02T03:04:05.678Z";
    assert!(text[ts..ts + fixed.len()].ends_with('Z'), "{text}");
    text.replace_range(ts..ts + fixed.len(), fixed);
    text
}

/// Bytes a line buffer starts with: a request's line is some 450–500 bytes, and a buffer
/// that had to grow once cost a `realloc` and a copy on every request.
const LINE_CAPACITY: usize = 640;
/// A buffer this large after its line (a long error message) is freed, not kept.
const SPARE_LIMIT: usize = 4 * 1024;

thread_local! {
    /// The buffer of this thread's last line, kept for its next one: with it a line costs no
    /// allocation and no free.
    static SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A line's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something failed or needs the operator's attention; serving goes on.
    Warn,
    /// An operation failed and was not done (an accept, a reload, a certificate order).
    Error,
}

impl Level {
    /// The `level` field's value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// One log line under construction; [`Line::emit`] writes it with a single `write`.
///
/// The field writers are always inlined: a line is built from literal keys, which inlined
/// become fixed-size copies instead of calls to `memcpy` (left to itself the compiler kept
/// them out of line, and the request line's 22 keys cost 2,200 instructions per request).
#[must_use = "a log line does nothing until emitted"]
pub struct Line {
    /// UTF-8: only `&str` values and ASCII are appended.
    buf: Vec<u8>,
    json: bool,
}

#[allow(
    clippy::inline_always,
    reason = "measured: the field writers are only fast inlined into the line's builder"
)]
impl Line {
    /// Starts a line with timestamp, level and message.
    pub fn new(level: Level, msg: &str) -> Self {
        let json = json();
        let mut buf = SPARE.take();
        buf.reserve(LINE_CAPACITY);
        push_timestamp(&mut buf, json);
        Self { buf, json }
            .label("level", level.as_str())
            .str("msg", msg)
    }

    /// Starts a field: the separator and the key, then `open` (what begins the value).
    #[inline(always)]
    fn key(&mut self, key: &str, open: &[u8]) {
        if self.json {
            self.push_parts([b",\"", key.as_bytes(), b"\":", open]);
        } else {
            self.push_parts([b" ", key.as_bytes(), b"=", open]);
        }
    }

    /// Appends `parts` with one capacity check and one copy. Inlined, the parts are literals
    /// and a key of known length, so composing them on the stack is a few fixed-size moves;
    /// appended one at a time, each part checked the capacity again.
    #[inline(always)]
    fn push_parts(&mut self, parts: [&[u8]; 4]) {
        let mut field = [0u8; 48];
        let mut len = 0;
        for part in parts {
            let Some(slot) = field.get_mut(len..len + part.len()) else {
                // A key longer than any this project logs: one copy each.
                for part in parts {
                    self.buf.extend_from_slice(part);
                }
                return;
            };
            slot.copy_from_slice(part);
            len += part.len();
        }
        self.buf.extend_from_slice(&field[..len]);
    }

    /// Adds a string field. Escapes straight into the line: the request log runs once per
    /// request, so it allocates nothing per field.
    #[inline(always)]
    pub fn str(mut self, key: &str, value: &str) -> Self {
        if self.json {
            // The value's opening quote goes with the key.
            self.key(key, b"\"");
            push_json_string_tail(&mut self.buf, value);
        } else {
            self.key(key, b"");
            if !value.is_empty()
                && !value.contains(|c: char| c.is_whitespace() || c == '"' || c == '=')
            {
                self.buf.extend_from_slice(value.as_bytes());
            } else {
                self.buf.push(b'"');
                push_json_string_tail(&mut self.buf, value);
            }
        }
        self
    }

    /// Adds a string field whose value is a fixed name (an enum's label, an HTTP method:
    /// RFC 9110 tokens), which needs no escaping or quoting in either format, without
    /// scanning it for characters that would (the request line's four labels and their scans
    /// cost some 300 instructions per request as strings).
    #[inline(always)]
    pub fn label(mut self, key: &str, value: &str) -> Self {
        debug_assert!(
            !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"\"\\=".contains(&b)),
            "{value:?} is not a label"
        );
        if self.json {
            self.key(key, b"\"");
            self.buf.extend_from_slice(value.as_bytes());
            self.buf.push(b'"');
        } else {
            self.key(key, b"");
            self.buf.extend_from_slice(value.as_bytes());
        }
        self
    }

    /// Adds a [`Line::label`] field when `value` is `Some`.
    #[inline(always)]
    pub fn opt_label(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.label(key, v),
            None => self,
        }
    }

    /// Adds a string field when `value` is `Some`.
    #[inline(always)]
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    /// Adds an integer field when `value` is `Some`.
    #[inline(always)]
    pub fn opt_u64(self, key: &str, value: Option<u64>) -> Self {
        match value {
            Some(v) => self.u64(key, v),
            None => self,
        }
    }

    /// Adds an integer field.
    #[inline(always)]
    pub fn u64(mut self, key: &str, value: u64) -> Self {
        self.key(key, b"");
        push_u64(&mut self.buf, value);
        self
    }

    /// Adds a duration in milliseconds with three decimals, from integer microseconds
    /// (formatting an `f64` costs several times more on every request).
    #[inline(always)]
    pub fn ms(mut self, key: &str, value: Duration) -> Self {
        self.key(key, b"");
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        push_u64(&mut self.buf, micros / 1000);
        let frac = micros % 1000;
        let [tens, ones] = digit_pair(frac % 100);
        self.buf
            .extend_from_slice(&[b'.', digit_pair(frac / 100)[1], tens, ones]);
        self
    }

    /// Adds a boolean field.
    #[inline(always)]
    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key, b"");
        // Two fixed-size copies, not one of a length chosen at run time.
        if value {
            self.buf.extend_from_slice(b"true");
        } else {
            self.buf.extend_from_slice(b"false");
        }
        self
    }

    /// Queues the line for stdout, or drops and counts it when the queue is full; never
    /// waits for stdout. Before [`init`], writes directly.
    pub fn emit(mut self) {
        self.end();
        match QUEUE.get() {
            Some(queue) => queue.push(&self.buf),
            None => {
                let _ = std::io::stdout().lock().write_all(&self.buf);
            }
        }
        if self.buf.capacity() <= SPARE_LIMIT {
            self.buf.clear();
            SPARE.set(self.buf);
        }
    }

    /// Closes the line.
    fn end(&mut self) {
        if self.json {
            self.buf.extend_from_slice(b"}\n");
        } else {
            self.buf.push(b'\n');
        }
    }
}

/// Shorthand for a message with no fields.
pub fn info(msg: &str) -> Line {
    Line::new(Level::Info, msg)
}

/// Shorthand for a warning.
pub fn warn(msg: &str) -> Line {
    Line::new(Level::Warn, msg)
}

/// Shorthand for an error.
pub fn error(msg: &str) -> Line {
    Line::new(Level::Error, msg)
}

/// Appends `value` and the closing quote of a JSON string literal whose opening quote is
/// written. Most values need no escaping, checked without stopping early so that it
/// compiles to a vector loop (a request's line has some 100 bytes of values).
#[inline(always)]
#[allow(clippy::inline_always, reason = "as the field writers that call it")]
fn push_json_string_tail(buf: &mut Vec<u8>, value: &str) {
    let plain = value.bytes().fold(0u8, |any, b| {
        any | u8::from(b < b' ') | u8::from(b == b'"') | u8::from(b == b'\\')
    }) == 0;
    if plain {
        buf.extend_from_slice(value.as_bytes());
    } else {
        push_escaped(buf, value);
    }
    buf.push(b'"');
}

/// Appends `value` escaped for a JSON string. Copies the runs between characters that need
/// escaping whole (they are ASCII, so byte positions are character boundaries): a
/// character at a time cost more than the rest of the line.
#[cold]
fn push_escaped(buf: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            b if b < b' ' => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let (high, low) = (usize::from(b >> 4), usize::from(b & 0xf));
            buf.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[high], HEX[low]]);
        } else {
            buf.extend_from_slice(escape);
        }
    }
    buf.extend_from_slice(&bytes[run..]);
}

/// Appends `value` as a JSON string literal.
#[cfg(test)]
fn push_json_string(buf: &mut Vec<u8>, value: &str) {
    buf.push(b'"');
    push_json_string_tail(buf, value);
}

/// The two decimal digits of `n` (below 100), from a table: one lookup for two digits.
#[inline]
fn digit_pair(n: u64) -> [u8; 2] {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let at = usize::try_from(n % 100).unwrap_or(0) * 2;
    [PAIRS[at], PAIRS[at + 1]]
}

/// Appends `value` in decimal (`core::fmt` costs several times more, on every request): two
/// digits at a time, into a fixed-size array that is copied whole and trimmed to the
/// number's length, since a copy of a length known only at run time is a call to `memcpy`.
#[inline]
fn push_u64(buf: &mut Vec<u8>, mut value: u64) {
    const MAX: usize = 20;
    // Most of a request line's numbers are short (attempts and whole milliseconds one digit,
    // the status three): those go straight in.
    if value < 10 {
        buf.push(digit_pair(value)[1]);
        return;
    }
    if value < 100 {
        buf.extend_from_slice(&digit_pair(value));
        return;
    }
    if value < 1000 {
        let [tens, ones] = digit_pair(value % 100);
        buf.extend_from_slice(&[digit_pair(value / 100)[1], tens, ones]);
        return;
    }
    let len = value.checked_ilog10().map_or(1, |l| l as usize + 1);
    let mut digits = [b'0'; MAX];
    let mut at = len;
    while value >= 100 {
        at -= 2;
        digits[at..at + 2].copy_from_slice(&digit_pair(value));
        value /= 100;
    }
    if value >= 10 {
        digits[..2].copy_from_slice(&digit_pair(value));
    } else {
        digits[0] = digit_pair(value)[1];
    }
    buf.extend_from_slice(&digits);
    buf.truncate(buf.len() - (MAX - len));
}

/// Appends the line's start, `{"ts":"` and RFC 3339 UTC time with milliseconds and `"` or
/// `ts=` and the time, without pulling in a date crate. The date and time to the second are
/// formatted once a second per thread and reused: every request logs a line, and formatting
/// six fields cost more than the rest of the line.
#[inline]
fn push_timestamp(buf: &mut Vec<u8>, json: bool) {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (cached, mut second) = SECOND.get();
    if cached != secs {
        let mut s = String::with_capacity(19);
        format_second(&mut s, secs);
        second.copy_from_slice(s.as_bytes());
        SECOND.set((secs, second));
    }
    let ms = u64::from(now.subsec_millis());
    let [tens, ones] = digit_pair(ms % 100);
    let mut ts = [0u8; 24];
    ts[..19].copy_from_slice(&second);
    ts[19..].copy_from_slice(&[b'.', digit_pair(ms / 100)[1], tens, ones, b'Z']);
    if json {
        buf.extend_from_slice(b"{\"ts\":\"");
        buf.extend_from_slice(&ts);
        buf.push(b'"');
    } else {
        buf.extend_from_slice(b"ts=");
        buf.extend_from_slice(&ts);
    }
}

/// `YYYY-MM-DDTHH:MM:SS` for `secs` since the epoch (19 bytes for years 1970–9999).
fn format_second(buf: &mut String, secs: u64) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        buf,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
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
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::{
        Queue, Writer, civil_from_days, format_second, push_json_string, push_timestamp, push_u64,
    };

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    /// Lines queued while the writer sleeps reach it in one batch, in order; past the
    /// capacity they are dropped and counted, and a full queue takes lines again once the
    /// writer has taken its batch.
    #[test]
    fn lines_are_batched_bounded_and_counted() {
        let queue: &'static Queue = Box::leak(Box::new(Queue::new(3)));
        let writer = std::thread::spawn(|| {
            let mut batch = Vec::new();
            let lines = queue.take(&mut batch);
            (lines, batch)
        });
        // Let the writer go to sleep first, so the first line must wake it.
        while queue.lock().writer != Writer::Idle {
            std::thread::yield_now();
        }
        let dropped = super::dropped_total();
        for i in 0..5 {
            queue.push(format!("line {i}\n").as_bytes());
        }
        assert_eq!(super::dropped_total() - dropped, 2);
        let (lines, batch) = writer.join().unwrap();
        assert_eq!(lines, 3);
        assert_eq!(batch, b"line 0\nline 1\nline 2\n");
        queue.push(b"again\n");
        assert_eq!(queue.lock().lines, 1);
    }

    /// Every kind of field in both formats, with the values text must quote.
    #[test]
    fn fields_in_both_formats() {
        let line = |json| {
            super::render_for_test(json, || {
                super::info("a \"b\"")
                    .str("empty", "")
                    .str("eq", "a=b")
                    .str("plain", "ünï")
                    .bool("t", true)
                    .bool("f", false)
                    .u64("n", 0)
                    .opt_str("none", None)
                    .opt_u64("absent", None)
                    .opt_u64("n2", Some(7))
                    .ms("d", std::time::Duration::from_micros(1))
                    .u64(&"k".repeat(50), 1)
            })
        };
        let long_key = "k".repeat(50);
        assert_eq!(
            line(true),
            [
                r#"{"ts":"2026-01-02T03:04:05.678Z","level":"info","msg":"a \"b\"","empty":"","#,
                r#""eq":"a=b","plain":"ünï","t":true,"f":false,"n":0,"n2":7,"d":0.001,"#,
                &format!("\"{long_key}\":1}}\n"),
            ]
            .concat()
        );
        assert_eq!(
            line(false),
            [
                r#"ts=2026-01-02T03:04:05.678Z level=info msg="a \"b\"" empty="" eq="a=b" "#,
                "plain=ünï t=true f=false n=0 n2=7 d=0.001 ",
                &format!("{long_key}=1\n"),
            ]
            .concat()
        );
    }

    #[test]
    fn numbers() {
        let mut every_length = vec![0, 9, 10, 99, 100, 101, u64::MAX];
        every_length.extend((1..20).flat_map(|p| [10u64.pow(p) - 1, 10u64.pow(p) + 7]));
        for n in every_length {
            let mut s = b"x".to_vec();
            push_u64(&mut s, n);
            assert_eq!(s, format!("x{n}").as_bytes());
        }
        let line = super::Line {
            buf: Vec::new(),
            json: true,
        }
        .ms("a", std::time::Duration::from_micros(12_034))
        .ms("b", std::time::Duration::from_micros(5))
        .ms("c", std::time::Duration::from_micros(999_999_100));
        assert_eq!(line.buf, b",\"a\":12.034,\"b\":0.005,\"c\":999999.100");
    }

    #[test]
    fn timestamps() {
        let mut s = String::new();
        format_second(&mut s, 1_709_164_800 + 3_661);
        assert_eq!(s, "2024-02-29T01:01:01");
        let second = |s: u64| {
            let mut t = String::new();
            format_second(&mut t, s);
            t
        };
        let now = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        // Three times: the first formats the second, the others may reuse it.
        for json in [true, false, true] {
            let before = now();
            let mut line = Vec::new();
            push_timestamp(&mut line, json);
            let after = now();
            let line = String::from_utf8(line).unwrap();
            let t = if json {
                line.strip_prefix("{\"ts\":\"")
                    .and_then(|t| t.strip_suffix('"'))
            } else {
                line.strip_prefix("ts=")
            }
            .unwrap_or_else(|| panic!("{line}"));
            assert_eq!(t.len(), 24, "{t}");
            assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
            assert!(t[20..23].bytes().all(|b| b.is_ascii_digit()), "{t}");
            assert!(
                t[..19] == second(before) || t[..19] == second(after),
                "{t} is not now"
            );
        }
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
            "\"",
            "ü\"ü\\\u{7f}\u{0}end",
            "",
        ] {
            let mut buf = Vec::new();
            push_json_string(&mut buf, s);
            let buf = String::from_utf8(buf).unwrap();
            assert_eq!(serde_json::from_str::<String>(&buf).unwrap(), s, "{buf}");
        }
    }
}
