//! The `clients:` section of `provider-config.yaml`: one key per person or app, stored only as
//! the SHA-256 of the key, with the models it may use and its limits — the file's shape,
//! validation, the redacted view, and the lookup by digest.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::ConfigError;
use super::providers::Model;
use super::providers::lower::Locator;

/// The label (in logs and metrics) of requests made with `AUTH_TOKEN`; no client may take it.
pub const OPERATOR: &str = "operator";

/// A `clients:` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    name: String,
    key_sha256: String,
    models: Option<Vec<String>>,
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u64>,
    max_concurrent: Option<u32>,
}

/// The SHA-256 digest of a key.
pub type Digest = [u8; 32];

/// A validated client.
#[derive(Debug)]
pub struct Client {
    /// Its name, shown in logs and metrics.
    pub name: Arc<str>,
    /// The digest of its key; its `Debug` prints `***`.
    digest: Redacted,
    /// The models it may use; `None` means every model (`"*"` or no `models:`).
    pub models: Option<Vec<Arc<str>>>,
    /// Requests per window at most.
    pub requests_per_minute: Option<u32>,
    /// Input + output tokens per window at most.
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at most.
    pub max_concurrent: Option<u32>,
    /// The `client` metric series, resolved by the first request after a load.
    pub metrics: crate::metrics::Slot<crate::metrics::ClientSeries>,
}

/// A digest whose `Debug` prints `***`.
struct Redacted(Digest);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Client {
    /// Whether this client may use the configured model `model`.
    #[must_use]
    pub fn allows(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|list| list.iter().any(|m| &**m == model))
    }
}

/// The validated clients, found by key digest.
#[derive(Debug, Default)]
pub struct Clients {
    list: Vec<Arc<Client>>,
    /// Index by the digest's first 8 bytes. Those bytes of a SHA-256 say nothing usable
    /// about the key, so a timing difference in the map lookup leaks nothing; the full
    /// digest is then compared in constant time.
    by_prefix: HashMap<u64, Vec<usize>>,
}

impl Clients {
    /// The client whose key has digest `digest`.
    #[must_use]
    pub fn find(&self, digest: &Digest) -> Option<&Arc<Client>> {
        let candidates = self.by_prefix.get(&prefix(digest))?;
        candidates
            .iter()
            .map(|&i| &self.list[i])
            .find(|c| bool::from(c.digest.0.ct_eq(digest)))
    }

    /// How many clients are configured.
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no client is configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The redacted view for `check-config`: names, models and limits; never the hash.
    #[must_use]
    pub fn views(&self) -> Vec<ClientView<'_>> {
        self.list
            .iter()
            .map(|c| ClientView {
                name: &c.name,
                key_sha256: "***",
                models: c
                    .models
                    .as_ref()
                    .map_or_else(|| vec!["*"], |m| m.iter().map(|m| &**m).collect()),
                requests_per_minute: c.requests_per_minute,
                tokens_per_minute: c.tokens_per_minute,
                max_concurrent: c.max_concurrent,
            })
            .collect()
    }
}

fn prefix(digest: &Digest) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(b)
}

/// A client as `check-config` prints it.
#[derive(Serialize)]
pub struct ClientView<'a> {
    name: &'a str,
    key_sha256: &'static str,
    models: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requests_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_per_minute: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_concurrent: Option<u32>,
}

/// Whether `name` is a valid client name: letters, digits, `-`, `_`, `.`.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Validates the `clients:` section against the configured `models`.
pub fn lower(
    raw: Vec<RawClient>,
    models: &[Model],
    loc: &Locator<'_>,
) -> Result<Clients, ConfigError> {
    let mut clients = Clients::default();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut digests: HashMap<Digest, usize> = HashMap::new();
    for (i, c) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("clients[{i}].{field}");
        check_name(&c, i, &mut names, &key, loc)?;
        let digest = check_key(&c, i, &mut digests, &key, loc)?;
        let allowed = client_models(&c, models, &key, loc)?;
        check_limits(&c, &key, loc)?;
        let index = clients.list.len();
        clients
            .by_prefix
            .entry(prefix(&digest))
            .or_default()
            .push(index);
        clients.list.push(Arc::new(Client {
            name: Arc::from(c.name.as_str()),
            digest: Redacted(digest),
            models: allowed,
            requests_per_minute: c.requests_per_minute,
            tokens_per_minute: c.tokens_per_minute,
            max_concurrent: c.max_concurrent,
            metrics: crate::metrics::Slot::new(),
        }));
    }
    Ok(clients)
}

/// Rejects a malformed, reserved or repeated client name; records it in `names`.
fn check_name(
    c: &RawClient,
    i: usize,
    names: &mut HashMap<String, usize>,
    key: &dyn Fn(&str) -> String,
    loc: &Locator<'_>,
) -> Result<(), ConfigError> {
    let at_name = format!("name: {}", c.name);
    if !valid_name(&c.name) {
        return Err(loc.at(
            &key("name"),
            &at_name,
            format!(
                "`{}` is not a valid client name: use 1 to 64 letters, digits, - _ .",
                crate::echo::clip(&c.name)
            ),
        ));
    }
    if c.name == OPERATOR {
        return Err(loc.at(
            &key("name"),
            &at_name,
            format!("the client name `{OPERATOR}` is reserved for AUTH_TOKEN; pick another"),
        ));
    }
    if let Some(first) = names.insert(c.name.clone(), i) {
        return Err(loc.at(
            &key("name"),
            &at_name,
            format!(
                "duplicate client name `{}` (also clients[{first}]): names must be unique",
                c.name
            ),
        ));
    }
    Ok(())
}

/// Parses the client's `key_sha256` and rejects one another client already has; records it
/// in `digests`.
fn check_key(
    c: &RawClient,
    i: usize,
    digests: &mut HashMap<Digest, usize>,
    key: &dyn Fn(&str) -> String,
    loc: &Locator<'_>,
) -> Result<Digest, ConfigError> {
    let at_name = format!("name: {}", c.name);
    // The messages below never quote the hash: it is not a secret, but the rule is
    // simpler to check when no hash is ever printed.
    let digest = parse_hex(&c.key_sha256).ok_or_else(|| {
        loc.at(
            &key("key_sha256"),
            "key_sha256:",
            format!(
                "client `{}`: key_sha256 must be 64 hex digits, the SHA-256 of the key: run `ai-proxy keys new {}` or `ai-proxy keys hash`",
                c.name, c.name
            ),
        )
    })?;
    if let Some(first) = digests.insert(digest, i) {
        return Err(loc.at(
            &key("key_sha256"),
            &at_name,
            format!(
                "client `{}` has the same key_sha256 as clients[{first}]: each client needs its own key",
                c.name
            ),
        ));
    }
    Ok(digest)
}

/// Rejects a limit of 0, which would lock the client out rather than leave it unlimited.
fn check_limits(
    c: &RawClient,
    key: &dyn Fn(&str) -> String,
    loc: &Locator<'_>,
) -> Result<(), ConfigError> {
    for (field, zero) in [
        ("requests_per_minute", c.requests_per_minute == Some(0)),
        ("tokens_per_minute", c.tokens_per_minute == Some(0)),
        ("max_concurrent", c.max_concurrent == Some(0)),
    ] {
        if zero {
            return Err(loc.at(
                &key(field),
                &format!("{field}:"),
                format!(
                    "client `{}`: {field} must be at least 1 (leave it out for no limit; remove the client to revoke it)",
                    c.name
                ),
            ));
        }
    }
    Ok(())
}

/// The client's model list: `None` for every model; each name must be a configured model.
fn client_models(
    c: &RawClient,
    models: &[Model],
    key: &dyn Fn(&str) -> String,
    loc: &Locator<'_>,
) -> Result<Option<Vec<Arc<str>>>, ConfigError> {
    let Some(list) = &c.models else {
        return Ok(None);
    };
    if list.iter().any(|m| m == "*") {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(list.len());
    for (j, name) in list.iter().enumerate() {
        let Some(model) = models.iter().find(|m| &*m.name == name) else {
            return Err(loc.at(
                &key(&format!("models[{j}]")),
                name,
                format!(
                    "client `{}`: unknown model `{}`: list names from `models:` (or \"*\" for every model)",
                    c.name,
                    crate::echo::clip(name)
                ),
            ));
        };
        out.push(model.name.clone());
    }
    Ok(Some(out))
}

/// 64 hex digits (either case) as 32 bytes.
fn parse_hex(text: &str) -> Option<Digest> {
    let text = text.trim().as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// The SHA-256 digest of `key`.
#[must_use]
pub fn digest(key: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// `digest` as 64 lowercase hex digits.
#[must_use]
pub fn to_hex(digest: &Digest) -> String {
    use std::fmt::Write as _;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let d = digest(b"aip_x");
        assert_eq!(parse_hex(&to_hex(&d)), Some(d));
        assert_eq!(parse_hex(&to_hex(&d).to_uppercase()), Some(d));
        assert_eq!(parse_hex("00"), None);
        assert_eq!(parse_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn names() {
        assert!(valid_name("alice.b-c_9"));
        assert!(!valid_name("al ice"));
        assert!(!valid_name(""));
        assert!(!valid_name("a\"b"));
    }
}
