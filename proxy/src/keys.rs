//! `ai-proxy keys`: makes a client key and the `clients:` entry to paste, or hashes a key
//! read on stdin. Nothing is written to disk (the config is mounted read-only in the
//! container); the key is printed once and only its SHA-256 goes in the config.

use std::fmt::Write as _;
use std::io::Read;

use crate::config::clients::{OPERATOR, digest, to_hex, valid_name};

/// The prefix of every key made here, so a leaked one is recognisable (secret scanners,
/// logs) as an ai-proxy key.
pub const PREFIX: &str = "aip_";
/// Random bytes in a key: 256 bits.
pub const KEY_BYTES: usize = 32;
/// The longest key `keys hash` accepts.
const MAX_KEY_LEN: usize = 4096;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The name is not usable as a client name.
    #[error(
        "`{0}` is not a valid client name: use 1 to 64 letters, digits, - _ . (and not `operator`)"
    )]
    BadName(String),
    /// The OS random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// stdin could not be read.
    #[error("cannot read the key on stdin: {0}")]
    Stdin(std::io::Error),
    /// stdin held no key, or too much.
    #[error("expected one key on stdin (at most {MAX_KEY_LEN} bytes, no spaces)")]
    BadKey,
}

/// A new key: [`PREFIX`] and [`KEY_BYTES`] bytes from the OS random number generator, in hex.
pub fn new_key() -> Result<String, KeysError> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; KEY_BYTES];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeysError::Random)?;
    Ok(bytes.iter().fold(String::from(PREFIX), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// What `keys new NAME` prints: the key once, and the entry to paste.
pub fn new_entry(name: &str) -> Result<String, KeysError> {
    if !valid_name(name) || name == OPERATOR {
        return Err(KeysError::BadName(crate::echo::clip(name).into_owned()));
    }
    let key = new_key()?;
    let hash = to_hex(&digest(key.as_bytes()));
    Ok(format!(
        "# The key for `{name}`, shown only now (the proxy keeps only its SHA-256):\n{key}\n\n# Add under `clients:` in provider-config.yaml, then reload: docker kill --signal HUP ai-proxy\n  - name: {name}\n    key_sha256: {hash}\n"
    ))
}

/// Many clients at once, for benchmarks and tests: `NAME-1` … `NAME-count`. Returns the
/// entries to paste (stdout) and the keys, one `name key` line each (stderr), so the keys
/// never land in the config by a paste.
pub fn new_entries(name: &str, count: u32) -> Result<(String, String), KeysError> {
    let mut entries = String::new();
    let mut keys = String::new();
    for i in 1..=count {
        let client = format!("{name}-{i}");
        if !valid_name(&client) || name == OPERATOR {
            return Err(KeysError::BadName(crate::echo::clip(&client).into_owned()));
        }
        let key = new_key()?;
        let hash = to_hex(&digest(key.as_bytes()));
        let _ = writeln!(keys, "{client} {key}");
        let _ = writeln!(entries, "  - name: {client}\n    key_sha256: {hash}");
    }
    Ok((entries, keys))
}

/// What `keys hash` prints for the key on `input`.
pub fn hash_input(mut input: impl Read) -> Result<String, KeysError> {
    let mut buf = Vec::with_capacity(128);
    input
        .by_ref()
        .take(MAX_KEY_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(KeysError::Stdin)?;
    let key = buf.trim_ascii();
    if key.is_empty() || buf.len() > MAX_KEY_LEN || key.iter().any(u8::is_ascii_whitespace) {
        return Err(KeysError::BadKey);
    }
    Ok(format!("{}\n", to_hex(&digest(key))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_prefixed_and_distinct() {
        let (a, b) = (new_key().unwrap(), new_key().unwrap());
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 2 * KEY_BYTES);
        assert_ne!(a, b);
    }

    #[test]
    fn entry_hash_matches_the_key() {
        let out = new_entry("alice").unwrap();
        let key = out.lines().find(|l| l.starts_with(PREFIX)).unwrap();
        let hash = hash_input(format!("{key}\n").as_bytes()).unwrap();
        assert!(out.contains(&format!("key_sha256: {}", hash.trim())));
        assert!(new_entry("operator").is_err());
        assert!(new_entry("a b").is_err());
        assert!(hash_input(&b"  \n"[..]).is_err());
    }

    #[test]
    fn many_entries_pair_with_their_keys() {
        let (entries, keys) = new_entries("bench", 3).unwrap();
        assert_eq!(entries.matches("  - name: bench-").count(), 3);
        for line in keys.lines() {
            let (name, key) = line.split_once(' ').unwrap();
            let hash = hash_input(key.as_bytes()).unwrap();
            assert!(entries.contains(&format!(
                "  - name: {name}\n    key_sha256: {}",
                hash.trim()
            )));
        }
    }
}
