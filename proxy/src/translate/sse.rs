//! An incremental Server-Sent Events parser: bytes in, whatever the split, whole events out.

/// One event: its `event:` name (empty when none) and its joined `data:` lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field.
    pub name: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// A block of comment lines and no data: an upstream keepalive (`: keepalive`,
    /// OpenRouter's `: OPENROUTER PROCESSING`). SSE clients ignore it; the translators pass it
    /// on as the client's own keepalive.
    pub comment: bool,
}

/// The keepalive an OpenAI (or native) SSE client gets: a comment, which SSE clients ignore.
pub const KEEPALIVE: &[u8] = b": keepalive\n\n";
/// The keepalive an Anthropic client gets on a translated stream: its `ping` event.
pub const PING: &[u8] = b"event: ping\ndata: {\"type\": \"ping\"}\n\n";

/// The longest line kept; a longer one is cut (a misbehaving upstream cannot grow memory).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// Parser state: the unfinished line and the event being built. Its buffers are reused from
/// one event to the next.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous byte was `\r` (a following `\n` belongs to it).
    after_cr: bool,
    event: Event,
    has_data: bool,
    has_comment: bool,
}

impl Parser {
    /// Feeds bytes, calling `emit` for each completed event.
    pub fn feed(&mut self, bytes: &[u8], mut emit: impl FnMut(Event)) {
        self.feed_ref(bytes, |e| emit(e.clone()));
    }

    /// Feeds bytes, calling `emit` with each completed event, lent: what the translators use,
    /// with no copy of the event.
    pub fn feed_ref(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&Event)) {
        while let Some(&first) = bytes.first() {
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            let Some(end) = memchr::memchr2(b'\n', b'\r', bytes) else {
                self.keep(bytes);
                return;
            };
            self.after_cr = bytes[end] == b'\r';
            if self.line.is_empty() {
                self.end_line(&bytes[..end.min(MAX_LINE)], &mut emit);
            } else {
                self.keep(&bytes[..end]);
                let line = std::mem::take(&mut self.line);
                self.end_line(&line, &mut emit);
                self.line = line;
                self.line.clear();
            }
            bytes = &bytes[end + 1..];
        }
    }

    /// The stream ended: a last event without its blank line still counts.
    pub fn finish(&mut self, mut emit: impl FnMut(Event)) {
        self.finish_ref(|e| emit(e.clone()));
    }

    /// [`Parser::finish`], the event lent.
    pub fn finish_ref(&mut self, mut emit: impl FnMut(&Event)) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.end_line(&line, &mut emit);
        }
        self.dispatch(&mut emit);
    }

    /// Keeps part of an unfinished line, up to [`MAX_LINE`] bytes.
    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn end_line(&mut self, line: &[u8], emit: &mut impl FnMut(&Event)) {
        let Some(&first) = line.first() else {
            self.dispatch(emit);
            return;
        };
        if first == b':' {
            self.has_comment = true;
            return;
        }
        // `:` is ASCII, so splitting the bytes then decoding is splitting the decoded line.
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                self.event.name.clear();
                push_lossy(&mut self.event.name, value);
            }
            b"data" => {
                if self.has_data {
                    self.event.data.push('\n');
                }
                push_lossy(&mut self.event.data, value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, emit: &mut impl FnMut(&Event)) {
        if self.has_data {
            emit(&self.event);
        } else if self.has_comment {
            emit(&Event {
                comment: true,
                ..Event::default()
            });
        }
        self.event.name.clear();
        self.event.data.clear();
        self.has_data = false;
        self.has_comment = false;
    }
}

/// Appends `bytes` as text, invalid UTF-8 replaced as `String::from_utf8_lossy` does; valid
/// text (nearly always) takes the much cheaper check.
fn push_lossy(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// Writes one SSE event.
pub fn write(out: &mut Vec<u8>, name: Option<&str>, data: &str) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::default();
        let mut v = Vec::new();
        for c in chunks {
            p.feed(c, |e| v.push(e));
        }
        p.finish(|e| v.push(e));
        v
    }

    #[test]
    fn splits_anywhere_and_handles_crlf() {
        let whole = all(&[b"event: a\r\ndata: 1\r\n\r\ndata: x\ndata: y\n\n: c\n\ndata: z"]);
        let split = all(&[
            b"event: a\r",
            b"\ndata",
            b": 1\r\n\r",
            b"\ndata: x\nda",
            b"ta: y\n\n: c\n\ndata: z",
        ]);
        assert_eq!(whole, split);
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0].name, "a");
        assert_eq!(whole[1].data, "x\ny");
        assert!(whole[2].comment && whole[2].data.is_empty());
        assert_eq!(whole[3].data, "z");
    }
}
