//! Durations in the configuration: `250ms`, `10s`, `1.5m`, `1h` or a bare number of
//! seconds, read from YAML and `.env` and written back the same way, each at most
//! [`MAX_DURATION`].

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// The longest duration any setting accepts. Deadlines are added to the current time on
/// the request path; a bound keeps that from overflowing (a panic) whatever the file says.
pub const MAX_DURATION: Duration = Duration::from_hours(24);

/// Why a duration was refused, for the error message.
const TOO_LONG: &str = "is longer than 24h, the longest duration accepted";

/// Serializes a duration the way the YAML accepts it (`1.5s`, `250ms`).
pub fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        s.serialize_str(&format!("{}s", d.as_secs()))
    } else {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }
}

/// A duration written as `250ms`, `10s`, `1.5m`, `1h` or a bare number of seconds.
#[derive(Clone, Copy)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 10s, 2m or a number of seconds")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                bounded(Duration::from_secs(v), &v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                let v = u64::try_from(v).map_err(|_| E::custom("a duration cannot be negative"))?;
                self.visit_u64(v)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                let d = Duration::try_from_secs_f64(v).map_err(|_| {
                    E::custom(format!(
                        "`{v}` is not a valid number of seconds (0 to 86400)"
                    ))
                })?;
                bounded(d, &v.to_string()).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_bounded(v).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

fn bounded(d: Duration, text: &str) -> Result<Dur, String> {
    if d > MAX_DURATION {
        Err(format!("`{text}` {TOO_LONG}"))
    } else {
        Ok(Dur(d))
    }
}

/// Parses `text` as a duration of at most [`MAX_DURATION`], or says what is wrong.
pub fn parse_bounded(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text).ok_or_else(|| {
        format!("`{text}` is not a duration: write e.g. 500ms, 10s, 2m or 1h (at most 24h)")
    })?;
    bounded(d, text).map(|d| d.0)
}

/// Parses `text` as a duration, unbounded; `None` when it is not one.
#[must_use]
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    Duration::try_from_secs_f64(value * scale).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_mins(2)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_bounded("24h"), Ok(MAX_DURATION));
        assert!(
            parse_bounded("24.001h")
                .unwrap_err()
                .contains("longer than 24h")
        );
        assert!(
            parse_bounded("1e19")
                .unwrap_err()
                .contains("longer than 24h")
        );
        assert!(parse_bounded("1e400").is_err());
    }
}
