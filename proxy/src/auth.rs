//! The authenticate phase: `Authorization: Bearer <AUTH_TOKEN>` (OpenAI SDKs) or
//! `x-api-key: <AUTH_TOKEN>` (Anthropic SDKs), compared in constant time, giving the
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

/// Accepts the request when either header carries `token`.
pub fn authenticate(headers: &HeaderMap, token: &[u8]) -> Result<Identity, ProxyError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| strip_bearer(v.as_bytes()))
        .is_some_and(|t| bool::from(t.ct_eq(token)));
    let api_key = headers
        .get(X_API_KEY)
        .is_some_and(|v| bool::from(v.as_bytes().ct_eq(token)));
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
    use super::authenticate;
    use http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn accepts_either_header() {
        let t = b"0123456789abcdef";
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
