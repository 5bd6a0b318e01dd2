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

/// Parser state: the unfinished line and the event being built.
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
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    self.end_line(&mut emit);
                }
                _ => {
                    if self.line.len() < MAX_LINE {
                        self.line.push(b);
                    }
                }
            }
        }
    }

    /// The stream ended: a last event without its blank line still counts.
    pub fn finish(&mut self, mut emit: impl FnMut(Event)) {
        if !self.line.is_empty() {
            self.end_line(&mut emit);
        }
        self.dispatch(&mut emit);
    }

    fn end_line(&mut self, emit: &mut impl FnMut(Event)) {
        if self.line.is_empty() {
            self.dispatch(emit);
            return;
        }
        if self.line[0] == b':' {
            self.has_comment = true;
            self.line.clear();
            return;
        }
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event.name),
            "data" => {
                if self.has_data {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, emit: &mut impl FnMut(Event)) {
        if self.has_data {
            emit(std::mem::take(&mut self.event));
        } else if self.has_comment {
            emit(Event {
                comment: true,
                ..Event::default()
            });
        }
        self.event = Event::default();
        self.has_data = false;
        self.has_comment = false;
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
