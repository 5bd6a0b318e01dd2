//! Serving TLS: the server config (rustls with ring, TLS 1.2 and 1.3, ALPN `h2` and
//! `http/1.1`), the certificate in force (swapped whole on reload), and the handshake of one
//! accepted connection — a plain-HTTP request on the TLS port gets a short 400 and a close,
//! never an answer in clear.

pub mod acme;
pub mod cache;
pub mod expiry;
pub mod files;
pub mod schedule;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::metrics::Metrics;

/// The first byte of a TLS record carrying a handshake message (a ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The whole answer to a plain-HTTP request on the TLS port.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 42\r\nconnection: close\r\n\r\nThis port speaks HTTPS only: use https://\n";

/// A certificate pair that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The chain file cannot be read or holds no certificate.
    #[error("{path}: {message}")]
    Chain {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The key file cannot be read or holds no private key.
    #[error("{path}: {message}")]
    Key {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The key is not the certificate's, or is of a kind ring cannot sign with.
    #[error("{cert} and {key} are not a pair: {message}")]
    Pair {
        /// The chain file.
        cert: String,
        /// The key file.
        key: String,
        /// What rustls said.
        message: String,
    },
}

/// The ALPN protocol of TLS-ALPN-01 validation connections (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Reads a PEM chain (leaf first) and its private key, and checks that they belong together.
pub fn load_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let shown = |p: &Path| p.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(Iterator::collect)
        .map_err(|e| TlsError::Chain {
            path: shown(cert_file),
            message: format!("cannot read a PEM certificate chain: {e}"),
        })?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::Key {
        path: shown(key_file),
        message: format!("cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
    })?;
    pair_of(chain, key, &shown(cert_file), &shown(key_file))
}

/// A chain and key from PEM text (both in one text, as the ACME cache stores them).
pub fn pair_from_pem(pem: &[u8], origin: &str) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Chain {
            path: origin.to_owned(),
            message: format!("cannot read a PEM certificate chain: {e}"),
        })?;
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Key {
        path: origin.to_owned(),
        message: format!("cannot read a PEM private key: {e}"),
    })?;
    pair_of(chain, key, origin, origin)
}

fn pair_of(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_origin: &str,
    key_origin: &str,
) -> Result<CertifiedKey, TlsError> {
    if chain.is_empty() {
        return Err(TlsError::Chain {
            path: cert_origin.to_owned(),
            message: "holds no `BEGIN CERTIFICATE` block".to_owned(),
        });
    }
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|e| TlsError::Pair {
        cert: cert_origin.to_owned(),
        key: key_origin.to_owned(),
        message: e.to_string(),
    })
}

/// The certificate served to every client (none yet before a first ACME issuance: the
/// handshake then fails), and the TLS-ALPN-01 challenge certificates by name. A reload or a
/// renewal swaps it; handshakes in progress keep the one they started with.
pub struct Certs {
    current: ArcSwapOption<CertifiedKey>,
    challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl fmt::Debug for Certs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certs").finish_non_exhaustive()
    }
}

impl Certs {
    /// Serves `first` (if any) until [`Certs::replace`].
    #[must_use]
    pub fn new(first: Option<CertifiedKey>) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwapOption::from(first.map(Arc::new)),
            challenges: Mutex::default(),
        })
    }

    /// Serves `next` from the next handshake on.
    pub fn replace(&self, next: CertifiedKey) {
        self.current.store(Some(Arc::new(next)));
    }

    /// The served certificate, if any.
    #[must_use]
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }

    /// The served leaf certificate's `notAfter` (seconds since the epoch).
    #[must_use]
    pub fn not_after(&self) -> Option<i64> {
        not_after(self.current.load().as_deref()?)
    }

    /// Answers TLS-ALPN-01 validations for `domain` with `cert`.
    pub fn set_challenge(&self, domain: String, cert: CertifiedKey) {
        self.lock_challenges().insert(domain, Arc::new(cert));
    }

    /// Forgets every challenge certificate.
    pub fn clear_challenges(&self) {
        self.lock_challenges().clear();
    }

    fn lock_challenges(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CertifiedKey>>> {
        self.challenges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if acme {
            let name = hello.server_name()?.to_ascii_lowercase();
            return self.lock_challenges().get(&name).cloned();
        }
        self.current.load_full()
    }
}

/// A pair's leaf `notAfter` (seconds since the epoch).
#[must_use]
pub fn not_after(pair: &CertifiedKey) -> Option<i64> {
    expiry::validity(pair.end_entity_cert().ok()?).map(|(_, after)| after)
}

/// A pair's leaf subjectAltName entries (DNS names, IP addresses).
#[must_use]
pub fn names(pair: &CertifiedKey) -> Vec<String> {
    pair.end_entity_cert()
        .map(|der| expiry::names(der))
        .unwrap_or_default()
}

/// Exports the served certificate's names and expiry to the metrics; returns the expiry for
/// log lines.
pub fn note_certificate(certs: &Certs, metrics: &Metrics) -> Option<String> {
    let current = certs.current();
    let not_after = current.as_deref().and_then(not_after);
    metrics.set_tls_certificate(current.as_deref().map(names).unwrap_or_default(), not_after);
    not_after.map(expiry::rfc3339)
}

/// The TLS side of the listener.
#[derive(Clone)]
pub struct Acceptor {
    inner: TlsAcceptor,
}

impl Acceptor {
    /// TLS 1.2 and 1.3 with ring, ALPN `h2` then `http/1.1`, certificates from `certs`;
    /// with `acme`, `acme-tls/1` too, for validation connections, which are closed after
    /// their handshake.
    #[must_use]
    pub fn new(certs: Arc<Certs>, acme: bool) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
            .with_no_client_auth()
            .with_cert_resolver(certs);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        if acme {
            config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
        }
        Self {
            inner: TlsAcceptor::from(Arc::new(config)),
        }
    }

    /// The handshake of one accepted connection; `None` when it failed or was not TLS (the
    /// socket then closes). The caller bounds it with the connection's first-request deadline.
    pub async fn accept(
        &self,
        stream: TcpStream,
        metrics: &Metrics,
    ) -> Option<TlsStream<TcpStream>> {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1..) if first[0] == TLS_HANDSHAKE_RECORD => {}
            Ok(1..) => {
                metrics
                    .tls_plaintext_rejected
                    .fetch_add(1, Ordering::Relaxed);
                refuse_plain(stream).await;
                return None;
            }
            _ => return None,
        }
        let handshake = self.inner.accept(stream).await;
        if handshake.is_err() {
            // A client that does not trust the certificate ends here: its business, counted
            // but not logged per connection.
            metrics
                .tls_handshake_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        let tls = handshake.ok()?;
        // A validation connection has seen what it came for: it carries no HTTP.
        (tls.get_ref().1.alpn_protocol() != Some(ACME_TLS_ALPN)).then_some(tls)
    }
}

/// Answers a plain-HTTP request with a short 400 naming the fix, then closes. The request
/// head is read first, up to its blank line (or 4 KiB), even when it arrives in several
/// segments: closing with unread bytes would reset the answer away, and a client still
/// writing its head would see a broken pipe instead of the 400.
async fn refuse_plain(mut stream: TcpStream) {
    let mut request = [0u8; 4096];
    let mut n = 0;
    while n < request.len() && !request[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut request[n..]).await {
            Ok(0) | Err(_) => break,
            Ok(read) => n += read,
        }
    }
    let _ = stream.write_all(PLAIN_HTTP_ANSWER).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::PLAIN_HTTP_ANSWER;

    #[test]
    fn plain_answer_length_matches_its_body() {
        let text = std::str::from_utf8(PLAIN_HTTP_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }
}
