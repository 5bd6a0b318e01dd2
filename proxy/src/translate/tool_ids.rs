//! Tool-call ids that Anthropic rejects (anything but `^[a-zA-Z0-9_-]+$`, e.g. Kimi's
//! `functions.Bash:0`) are rewritten reversibly, so the next turn maps back to the original.

use std::borrow::Cow;

/// The prefix of a rewritten id: `aipx_` and the original's bytes in hex.
pub const PREFIX: &str = "aipx_";

fn valid(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The id an Anthropic API accepts for `id`.
#[must_use]
pub fn encode(id: &str) -> Cow<'_, str> {
    if valid(id) && !id.starts_with(PREFIX) {
        return Cow::Borrowed(id);
    }
    let mut out = String::with_capacity(PREFIX.len() + id.len() * 2);
    out.push_str(PREFIX);
    for b in id.bytes() {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    Cow::Owned(out)
}

/// The original of an id made by [`encode`] (any other id is returned as it is).
#[must_use]
pub fn decode(id: &str) -> Cow<'_, str> {
    let Some(hex) = id.strip_prefix(PREFIX) else {
        return Cow::Borrowed(id);
    };
    if hex.len() % 2 != 0 {
        return Cow::Borrowed(id);
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect();
    match bytes.and_then(|b| String::from_utf8(b).ok()) {
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_valid_ids() {
        for id in ["functions.Bash:0", "call 1", "aipx_zz", "x", "ü:1", ""] {
            let e = encode(id);
            assert!(valid(&e), "{e}");
            assert_eq!(decode(&e), id);
        }
        assert_eq!(encode("toolu_01A-b"), "toolu_01A-b");
        assert_eq!(decode("call_abc"), "call_abc");
    }
}
