//! The authenticate phase: `Authorization: Bearer <AUTH_TOKEN>` (OpenAI SDKs) or
//! `x-api-key: <AUTH_TOKEN>` (Anthropic SDKs), compared as SHA-256 digests in constant time
//! (so neither the content nor the length of the token leaks through timing), giving the
//! client's [`Identity`].

use http::HeaderMap;
use http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

use crate::error::ProxyError;
use crate::headers::X_API_KEY;

/// Who sent a request. Today every client shares the one `AUTH_TOKEN`; per-client keys (and
/// the usage metered against them) become further variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The holder of `AUTH_TOKEN`.
    SharedToken,
}

/// The SHA-256 digest of a token, computed once for the configured one.
#[derive(Clone, Copy)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of `token`.
    #[must_use]
    pub fn of(token: &[u8]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, token);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    /// Constant-time comparison of two fixed-size digests.
    fn matches(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(***)")
    }
}

/// Accepts the request when either header carries the token whose digest is `token`.
pub fn authenticate(headers: &HeaderMap, token: &TokenDigest) -> Result<Identity, ProxyError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| strip_bearer(v.as_bytes()))
        .is_some_and(|t| token.matches(&TokenDigest::of(t)));
    let api_key = headers
        .get(X_API_KEY)
        .is_some_and(|v| token.matches(&TokenDigest::of(v.as_bytes())));
    // Both are evaluated so the time taken does not say which header was tried.
    if bearer | api_key {
        Ok(Identity::SharedToken)
    } else {
        Err(ProxyError::Unauthorized)
    }
}

fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::{TokenDigest, authenticate};
    use http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn accepts_either_header() {
        let t = &TokenDigest::of(b"0123456789abcdef");
        assert!(authenticate(&headers(&[("authorization", "Bearer 0123456789abcdef")]), t).is_ok());
        assert!(authenticate(&headers(&[("authorization", "bearer 0123456789abcdef")]), t).is_ok());
        assert!(authenticate(&headers(&[("x-api-key", "0123456789abcdef")]), t).is_ok());
        assert!(
            authenticate(&headers(&[("authorization", "Bearer 0123456789abcdeX")]), t).is_err()
        );
        assert!(authenticate(&headers(&[("authorization", "0123456789abcdef")]), t).is_err());
        assert!(authenticate(&headers(&[("x-api-key", "0123456789abcde")]), t).is_err());
        assert!(authenticate(&headers(&[]), t).is_err());
    }
}
