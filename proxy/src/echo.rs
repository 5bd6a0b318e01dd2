//! Client-supplied strings (model names, paths, header values) bounded before they are
//! echoed in a response or written to a log: at most [`MAX_ECHO`] bytes and a marker.

use std::borrow::Cow;

/// The most bytes of a client string the proxy repeats.
pub const MAX_ECHO: usize = 256;

/// `text` cut to [`MAX_ECHO`] bytes (on a character boundary) with a marker saying how long
/// it was; unchanged when short enough.
#[must_use]
pub fn clip(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_ECHO {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_ECHO;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}…[truncated, {} bytes]",
        &text[..end],
        text.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::{MAX_ECHO, clip};

    #[test]
    fn clips_long_strings_on_a_char_boundary() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(MAX_ECHO);
        let clipped = clip(&long);
        assert!(clipped.len() < MAX_ECHO + 40, "{clipped}");
        assert!(clipped.ends_with(&format!("…[truncated, {} bytes]", long.len())));
    }
}
