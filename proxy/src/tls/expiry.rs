//! A certificate's `notAfter`, read from its DER with a minimal walk (certificate →
//! tbsCertificate → validity), so the expiry can be logged, shown by `check-config` and
//! exported as a metric without an X.509 crate.

/// One DER element: its tag, its content and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// `notAfter` of a DER certificate, in seconds since the Unix epoch.
#[must_use]
pub fn not_after(der: &[u8]) -> Option<i64> {
    validity(der).map(|(_, after)| after)
}

/// `notBefore` and `notAfter` of a DER certificate, in seconds since the Unix epoch.
#[must_use]
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = element(cert)? else {
        return None;
    };
    // The optional `[0] version`, then serial number, signature algorithm and issuer.
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs)?.2;
    }
    for _ in 0..3 {
        tbs = element(tbs)?.2;
    }
    let (SEQUENCE, validity, _) = element(tbs)? else {
        return None;
    };
    let (before_tag, before, after) = element(validity)?;
    let (after_tag, after, _) = element(after)?;
    Some((time(before_tag, before)?, time(after_tag, after)?))
}

/// A UTCTime or GeneralizedTime in seconds since the epoch.
fn time(tag: u8, time: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        // UTCTime, YYMMDDHHMMSSZ: years 50-99 are 19xx (RFC 5280).
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            format!("{}{}", if yy >= 50 { 19 } else { 20 }, text)
        }
        // GeneralizedTime, YYYYMMDDHHMMSSZ.
        0x18 => text.to_owned(),
        _ => return None,
    };
    parse_time(&full)
}

/// `YYYYMMDDHHMMSSZ` to seconds since the epoch.
fn parse_time(t: &str) -> Option<i64> {
    if t.len() != 15 || !t.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(n(0..4)?, n(4..6)?, n(6..8)?);
    Some(days * 86_400 + n(8..10)? * 3600 + n(10..12)? * 60 + n(12..14)?)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
#[must_use]
pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time("19700101000000Z"), Some(0));
        assert_eq!(
            parse_time("20261127215540Z").map(rfc3339).as_deref(),
            Some("2026-11-27T21:55:40Z")
        );
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_time("2026112721554Z"), None);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }
}
