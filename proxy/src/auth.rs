//! The authenticate phase: `Authorization: Bearer <AUTH_TOKEN>` (OpenAI SDKs) or
//! `x-api-key: <AUTH_TOKEN>` (Anthropic SDKs), compared as keyed hashes (SipHash, a random
//! key per process) and then in constant time (so neither the content nor the length of the
//! token leaks through timing), giving the client's [`Identity`]: the operator (`AUTH_TOKEN`)
//! or one of the `clients:` of `provider-config.yaml`, found by the SHA-256 digest of the
//! presented key (hashed once per header, and only when the key is not `AUTH_TOKEN`).

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;

use crate::config::clients::{Client, Clients, OPERATOR};
use crate::error::ProxyError;
use crate::headers::X_API_KEY;

/// Who sent a request.
#[derive(Debug, Clone)]
pub enum Identity {
    /// The holder of `AUTH_TOKEN`: every model, `/metrics`, no limits.
    SharedToken,
    /// A configured client (the entry in force when the request arrived).
    Client(Arc<Client>),
}

impl Identity {
    /// The `client` label of logs and metrics.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::SharedToken => OPERATOR,
            Self::Client(c) => &c.name,
        }
    }

    /// The client entry, for a client key.
    #[must_use]
    pub fn client(&self) -> Option<&Arc<Client>> {
        match self {
            Self::SharedToken => None,
            Self::Client(c) => Some(c),
        }
    }
}

/// The configured token, and its keyed hash computed once.
///
/// A presented token is checked by its SipHash under a random per-process key (~150
/// instructions, where SHA-256 cost ~2.5k per request): the time taken depends only on the
/// presented length, and which hashes match says nothing about the token without the key.
/// Only a matching hash is followed by the byte comparison, itself constant-time.
pub struct TokenDigest {
    keys: RandomState,
    hash: u64,
    token: Box<[u8]>,
}

impl TokenDigest {
    /// The check for `token`.
    #[must_use]
    pub fn of(token: &[u8]) -> Self {
        let keys = RandomState::new();
        Self {
            hash: keys.hash_one(token),
            keys,
            token: token.into(),
        }
    }

    /// Whether `presented` is the token.
    fn matches(&self, presented: &[u8]) -> bool {
        self.keys.hash_one(presented) == self.hash && bool::from(self.token.ct_eq(presented))
    }
}

/// The SHA-256 digest of a presented client key, as `key_sha256` holds it.
fn sha256(key: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(***)")
    }
}

/// Accepts the request when either header carries the token whose digest is `token`, or
/// the key of one of `clients`. Each presented value is hashed once; the operator's digest
/// is compared in constant time, a client's is looked up and then compared in constant time.
pub fn authenticate(
    headers: &HeaderMap,
    token: &TokenDigest,
    clients: &Clients,
) -> Result<Identity, ProxyError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| strip_bearer(v.as_bytes()));
    let api_key = headers.get(X_API_KEY).map(http::HeaderValue::as_bytes);
    // Both are evaluated so the time taken does not say which header was tried.
    let operator =
        bearer.is_some_and(|b| token.matches(b)) | api_key.is_some_and(|k| token.matches(k));
    if operator {
        return Ok(Identity::SharedToken);
    }
    if clients.is_empty() {
        return Err(ProxyError::Unauthorized);
    }
    let bearer = bearer.map(sha256);
    let api_key = api_key.map(sha256);
    bearer
        .and_then(|d| clients.find(&d))
        .or_else(|| api_key.and_then(|d| clients.find(&d)))
        .map(|c| Identity::Client(c.clone()))
        .ok_or(ProxyError::Unauthorized)
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
    use crate::config::clients::Clients;
    use http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), HeaderValue::from_static(v)))
            .collect()
    }

    fn auth(h: &HeaderMap, t: &TokenDigest) -> Result<super::Identity, crate::error::ProxyError> {
        authenticate(h, t, &Clients::default())
    }

    #[test]
    fn accepts_either_header() {
        let t = &TokenDigest::of(b"0123456789abcdef");
        assert!(auth(&headers(&[("authorization", "Bearer 0123456789abcdef")]), t).is_ok());
        assert!(auth(&headers(&[("authorization", "bearer 0123456789abcdef")]), t).is_ok());
        assert!(auth(&headers(&[("x-api-key", "0123456789abcdef")]), t).is_ok());
        assert!(auth(&headers(&[("authorization", "Bearer 0123456789abcdeX")]), t).is_err());
        assert!(auth(&headers(&[("authorization", "0123456789abcdef")]), t).is_err());
        assert!(auth(&headers(&[("x-api-key", "0123456789abcde")]), t).is_err());
        assert!(auth(&headers(&[]), t).is_err());
    }
}
