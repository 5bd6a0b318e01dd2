//! `Secret`: a string that never prints, and `redact`, which masks known secrets inside other
//! text. Tokens and keys live in a `Secret` so that no log line,
//! error or `check-config` output can show one by accident.

use std::fmt;

/// A secret string. `Debug`, `Display` and `Serialize` all print `***`; only
/// [`Secret::expose`] gives the value, and only code that must send it calls that.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps `value`.
    #[must_use]
    pub fn new(value: impl Into<Box<str>>) -> Self {
        Self(value.into())
    }

    /// The secret value itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// The shortest secret masked inside other text: shorter values (`v1`, a port) would mask
/// innocent text everywhere; they are still never printed as a field of their own.
pub const MIN_MASKED_LEN: usize = 4;

/// `text` with every occurrence of each of `secrets` (of at least [`MIN_MASKED_LEN`] bytes)
/// replaced by `***`, longest first so a secret containing another is masked whole.
#[must_use]
pub fn redact(text: &str, secrets: &mut [&str]) -> String {
    secrets.sort_unstable_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= MIN_MASKED_LEN) {
        if out.contains(s) {
            out = out.replace(s, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Secret, redact};

    #[test]
    fn redacts_substrings_longest_first() {
        assert_eq!(
            redact(
                "https://u:sk-abcdef@h/v1 sk-abc",
                &mut ["sk-abc", "sk-abcdef", "v1"]
            ),
            "https://u:***@h/v1 ***"
        );
    }

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "sk-very-secret");
    }
}
