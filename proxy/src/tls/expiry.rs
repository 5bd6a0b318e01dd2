//! What renewal and reporting need from a certificate, read from its DER with a minimal walk
//! (certificate → tbsCertificate → validity, extensions) without an X.509 crate: the validity
//! (logs, `check-config`, the expiry metric, the lifetime rule), the subjectAltName entries
//! (the metric's `domain` label, `check-config`), and the serial number and authority key
//! identifier that name the certificate to the CA's renewal information (ARI, RFC 9773).

use std::net::{Ipv4Addr, Ipv6Addr};

const SEQUENCE: u8 = 0x30;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
/// `id-ce-subjectAltName`, 2.5.29.17, as DER content.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// `id-ce-authorityKeyIdentifier`, 2.5.29.35, as DER content.
const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];

/// The facts read from one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    /// `notBefore`, seconds since the Unix epoch.
    pub not_before: i64,
    /// `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
    /// The serial number's DER content (sign byte included), as ARI wants it.
    pub serial: &'a [u8],
    /// The authority key identifier's `keyIdentifier`, when the certificate has one.
    pub authority_key_id: Option<&'a [u8]>,
    /// The subjectAltName DNS names and IP addresses, in certificate order.
    pub names: Vec<String>,
}

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
    read(der).map(|f| (f.not_before, f.not_after))
}

/// The subjectAltName entries of a DER certificate (empty when unreadable).
#[must_use]
pub fn names(der: &[u8]) -> Vec<String> {
    read(der).map(|f| f.names).unwrap_or_default()
}

/// Reads a DER certificate's facts; `None` when it is not one.
#[must_use]
pub fn read(der: &[u8]) -> Option<Facts<'_>> {
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
    let (0x02, serial, rest) = element(tbs)? else {
        return None;
    };
    tbs = element(element(rest)?.2)?.2;
    let (SEQUENCE, validity, rest) = element(tbs)? else {
        return None;
    };
    let (before_tag, before, after) = element(validity)?;
    let (after_tag, after, _) = element(after)?;
    // Subject and public key, then the optional unique identifiers and `[3] extensions`.
    tbs = element(element(rest)?.2)?.2;
    let mut facts = Facts {
        not_before: time(before_tag, before)?,
        not_after: time(after_tag, after)?,
        serial,
        authority_key_id: None,
        names: Vec::new(),
    };
    while let Some((tag, content, rest)) = element(tbs) {
        if tag == 0xa3 {
            read_extensions(content, &mut facts)?;
        }
        tbs = rest;
    }
    Some(facts)
}

/// Fills the names and the authority key identifier from `[3] extensions`' content.
fn read_extensions<'a>(explicit: &'a [u8], facts: &mut Facts<'a>) -> Option<()> {
    let (SEQUENCE, mut list, _) = element(explicit)? else {
        return None;
    };
    while let Some((SEQUENCE, extension, rest)) = element(list) {
        list = rest;
        let (OID, oid, mut fields) = element(extension)? else {
            return None;
        };
        // The optional `critical` BOOLEAN, then the value.
        let value = loop {
            let (tag, content, next) = element(fields)?;
            if tag == OCTET_STRING {
                break content;
            }
            fields = next;
        };
        let (SEQUENCE, mut inner, _) = element(value)? else {
            continue;
        };
        while let Some((tag, content, next)) = element(inner) {
            inner = next;
            match (oid, tag, content.len()) {
                // dNSName [2] and iPAddress [7] of a GeneralName.
                (SUBJECT_ALT_NAME, 0x82, _) => {
                    facts
                        .names
                        .push(String::from_utf8_lossy(content).into_owned());
                }
                (SUBJECT_ALT_NAME, 0x87, 4) => {
                    let octets: [u8; 4] = content.try_into().ok()?;
                    facts.names.push(Ipv4Addr::from(octets).to_string());
                }
                (SUBJECT_ALT_NAME, 0x87, 16) => {
                    let octets: [u8; 16] = content.try_into().ok()?;
                    facts.names.push(Ipv6Addr::from(octets).to_string());
                }
                // keyIdentifier [0] of AuthorityKeyIdentifier.
                (AUTHORITY_KEY_ID, 0x80, _) => facts.authority_key_id = Some(content),
                _ => {}
            }
        }
    }
    Some(())
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
    fn names_serial_and_authority_key_id_are_read() {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(vec![]).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_id = ca.key_identifier(&ca_key);
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let mut leaf =
            rcgen::CertificateParams::new(vec!["a.example".into(), "127.0.0.1".into()]).unwrap();
        leaf.serial_number = Some(vec![0x00, 0x9f, 0x01].into());
        leaf.use_authority_key_identifier_extension = true;
        let cert = leaf
            .signed_by(&rcgen::KeyPair::generate().unwrap(), &issuer)
            .unwrap();
        let facts = read(cert.der()).unwrap();
        assert_eq!(facts.names, ["a.example", "127.0.0.1"]);
        assert_eq!(facts.serial, [0x00, 0x9f, 0x01]);
        assert_eq!(facts.authority_key_id, Some(ca_id.as_slice()));
        assert!(facts.not_before < facts.not_after);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }
}
