//! Automatic certificates (`TLS_DOMAINS`): the ACME account, orders answered with TLS-ALPN-01
//! on the service port, the cache, and the schedule — renew when a third of the lifetime is
//! left (half for certificates under 10 days), retry a failure after 1, 10 and 100 times
//! `ACME_RETRY_BASE` (1 minute), then daily, and keep serving the current certificate while it
//! is valid. instant-acme speaks the protocol; serving, storage and scheduling are here.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, ChallengeType, Identifier,
    NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::sign::CertifiedKey;

use super::cache::Cache;
use super::{Certs, expiry, pair_from_pem};
use crate::config::settings::AcmeSettings;
use crate::log;
use crate::metrics::{AcmeFailure, Metrics};

/// The longest wait between retries, and between checks of a certificate far from renewal.
const DAY: Duration = Duration::from_hours(24);

/// Obtains and renews the certificate of `TLS_DOMAINS`.
pub struct Manager {
    settings: AcmeSettings,
    cache: Cache,
    /// What the listener serves.
    pub certs: Arc<Certs>,
    metrics: Arc<Metrics>,
}

/// A failed issuance: why (the metric label) and what happened.
#[derive(Debug)]
struct Failure {
    reason: AcmeFailure,
    message: String,
}

impl Failure {
    fn new(reason: AcmeFailure, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// Sorts a protocol error: the server unreachable, or an answer refusing us.
    fn from_acme(doing: &str, e: &instant_acme::Error) -> Self {
        let reason = match e {
            instant_acme::Error::Api(_) => AcmeFailure::Rejected,
            instant_acme::Error::Timeout(_) => AcmeFailure::Timeout,
            instant_acme::Error::Http(_) => AcmeFailure::Unreachable,
            // Our HTTP client's connection errors arrive boxed.
            instant_acme::Error::Other(inner)
                if inner.is::<hyper_util::client::legacy::Error>()
                    || inner.is::<std::io::Error>() =>
            {
                AcmeFailure::Unreachable
            }
            _ => AcmeFailure::Other,
        };
        let mut message = format!("{doing}: {e}");
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            let _ = write!(message, ": {s}");
            source = s.source();
        }
        Self::new(reason, message)
    }
}

impl Manager {
    /// Prepares the cache directory and serves the cached certificate, if any.
    pub fn load(settings: AcmeSettings, metrics: Arc<Metrics>) -> Result<Self, String> {
        let cache = Cache::new(&settings.cache_dir, &settings.directory, &settings.domains);
        cache.prepare().map_err(|e| {
            format!(
                "TLS_CACHE_DIR {}: cannot create it with mode 0700: {e}",
                settings.cache_dir.display()
            )
        })?;
        let cached = cache
            .certificate()
            .map_err(|e| format!("{}: cannot read: {e}", cache.certificate_path().display()))?;
        let first = cached.and_then(|pem| {
            let origin = cache.certificate_path().display().to_string();
            match pair_from_pem(&pem, &origin) {
                Ok(pair) => Some(pair),
                Err(e) => {
                    log::warn("cached certificate unusable; a new one will be ordered")
                        .str("error", &e.to_string())
                        .emit();
                    None
                }
            }
        });
        Ok(Self {
            certs: Certs::new(first),
            cache,
            settings,
            metrics,
        })
    }

    /// Exports the served certificate's expiry; returns it for log lines.
    fn note_expiry(&self) -> Option<String> {
        let not_after = self.certs.not_after();
        self.metrics.set_tls_not_after(not_after);
        not_after.map(expiry::rfc3339)
    }

    /// Issues when there is no certificate, renews when due, retries failures on the
    /// schedule; forever.
    pub async fn run(self: Arc<Self>) {
        let mut failures: u32 = 0;
        if let Some(not_after) = self.note_expiry() {
            log::info("serving the cached certificate")
                .str("domains", &self.settings.domains.join(","))
                .str("not_after", &not_after)
                .emit();
        }
        loop {
            let wait = self.until_renewal();
            if !wait.is_zero() {
                tokio::time::sleep(wait.min(DAY)).await;
                continue;
            }
            self.metrics.record_acme_attempt();
            let started = std::time::Instant::now();
            match self.issue().await {
                Ok(pair) => {
                    self.certs.replace(pair);
                    failures = 0;
                    log::info("certificate issued")
                        .str("domains", &self.settings.domains.join(","))
                        .opt_str("not_after", self.note_expiry().as_deref())
                        .u64(
                            "ms",
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        )
                        .emit();
                }
                Err(failure) => {
                    self.certs.clear_challenges();
                    self.metrics.record_acme_failure(failure.reason);
                    let retry = retry_delay(failures, self.settings.retry_base);
                    failures = failures.saturating_add(1);
                    log::error(if self.certs.current().is_some() {
                        "certificate renewal failed; still serving the current certificate"
                    } else {
                        "certificate issuance failed; HTTPS handshakes fail until it succeeds"
                    })
                    .str("domains", &self.settings.domains.join(","))
                    .str("reason", failure.reason.as_str())
                    .str("error", &failure.message)
                    .u64("failures", u64::from(failures))
                    .u64("retry_in_secs", retry.as_secs())
                    .emit();
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }

    /// Zero when an order is due: no certificate, or its renewal time has come.
    fn until_renewal(&self) -> Duration {
        let Some(current) = self.certs.current() else {
            return Duration::ZERO;
        };
        let Some((before, after)) = current
            .end_entity_cert()
            .ok()
            .and_then(|der| expiry::validity(der))
        else {
            return Duration::ZERO;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let at = renewal_time(before, after);
        Duration::from_secs(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
    }

    /// One order from account to stored certificate.
    async fn issue(&self) -> Result<CertifiedKey, Failure> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .settings
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| Failure::from_acme("new order", &e))?;
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| Failure::from_acme("authorization", &e))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(Failure::new(
                        AcmeFailure::Validation,
                        format!("authorization is {other:?}"),
                    ));
                }
            }
            let mut challenge = authz.challenge(ChallengeType::TlsAlpn01).ok_or_else(|| {
                Failure::new(
                    AcmeFailure::Rejected,
                    "the CA offers no tls-alpn-01 challenge",
                )
            })?;
            let domain = challenge.identifier().to_string();
            let digest = challenge.key_authorization().digest();
            let cert = challenge_certificate(&domain, digest.as_ref())?;
            self.certs.set_challenge(domain, cert);
            challenge
                .set_ready()
                .await
                .map_err(|e| Failure::from_acme("challenge ready", &e))?;
        }
        let polling = RetryPolicy::new().timeout(Duration::from_secs(90));
        let status = order
            .poll_ready(&polling)
            .await
            .map_err(|e| Failure::from_acme("waiting for validation", &e))?;
        if status != OrderStatus::Ready {
            let detail = order
                .refresh()
                .await
                .ok()
                .and_then(|s| s.error.as_ref().map(ToString::to_string))
                .unwrap_or_default();
            return Err(Failure::new(
                AcmeFailure::Validation,
                format!("the CA did not validate the names (order {status:?}) {detail}"),
            ));
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| Failure::from_acme("finalize", &e))?;
        let chain_pem = order
            .poll_certificate(&polling)
            .await
            .map_err(|e| Failure::from_acme("download", &e))?;
        self.certs.clear_challenges();
        let pem = format!("{chain_pem}\n{key_pem}");
        let origin = self.cache.certificate_path().display().to_string();
        let pair = pair_from_pem(pem.as_bytes(), &origin)
            .map_err(|e| Failure::new(AcmeFailure::Other, e.to_string()))?;
        self.cache.store_certificate(pem.as_bytes()).map_err(|e| {
            Failure::new(AcmeFailure::Storage, format!("{origin}: cannot write: {e}"))
        })?;
        Ok(pair)
    }

    /// The cached account, or a new one (stored before use).
    async fn account(&self) -> Result<Account, Failure> {
        let storage = |e: std::io::Error| Failure::new(AcmeFailure::Storage, e.to_string());
        let builder = || Account::builder_with_http(Box::new(AcmeHttp(self.http_client())));
        if let Some(json) = self.cache.account().map_err(storage)? {
            if let Ok(credentials) = serde_json::from_slice::<AccountCredentials>(&json) {
                return builder()
                    .from_credentials(credentials)
                    .await
                    .map_err(|e| Failure::from_acme("account", &e));
            }
            log::warn("cached ACME account unreadable; registering a new one").emit();
        }
        let contact = self.settings.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.settings.directory.clone(),
                None,
            )
            .await
            .map_err(|e| Failure::from_acme("new account", &e))?;
        let json = serde_json::to_vec(&credentials)
            .map_err(|e| Failure::new(AcmeFailure::Other, e.to_string()))?;
        self.cache.store_account(&json).map_err(storage)?;
        Ok(account)
    }

    /// The HTTPS client for the CA: the public roots (the image has no system store), or
    /// `ACME_CA_FILE`'s.
    fn http_client(
        &self,
    ) -> HyperClient<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        BodyWrapper<Bytes>,
    > {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(file) = &self.settings.ca_file {
            roots = rustls::RootCertStore::empty();
            match CertificateDer::pem_file_iter(file)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            {
                Ok(certs) => {
                    roots.add_parsable_certificates(certs);
                }
                Err(e) => log::error("ACME_CA_FILE unreadable; the CA cannot be verified")
                    .str("file", &file.display().to_string())
                    .str("error", &e.to_string())
                    .emit(),
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        HyperClient::builder(TokioExecutor::new()).build(connector)
    }
}

/// The HTTPS client instant-acme talks to the CA through.
struct AcmeHttp(
    HyperClient<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        BodyWrapper<Bytes>,
    >,
);

impl instant_acme::HttpClient for AcmeHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<instant_acme::BytesResponse, instant_acme::Error>,
                > + Send,
        >,
    > {
        let sent = self.0.request(req);
        Box::pin(async move {
            sent.await
                .map(instant_acme::BytesResponse::from)
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))
        })
    }
}

/// The self-signed certificate answering a TLS-ALPN-01 validation of `domain` (RFC 8737).
fn challenge_certificate(domain: &str, digest: &[u8]) -> Result<CertifiedKey, Failure> {
    let fail =
        |e: rcgen::Error| Failure::new(AcmeFailure::Other, format!("challenge certificate: {e}"));
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()]).map_err(fail)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension the validation needs.
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| Failure::new(AcmeFailure::Other, format!("challenge key: {e}")))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}

/// When to renew a certificate valid from `before` to `after` (seconds since the epoch): a
/// third of its lifetime before the end, half for lifetimes under 10 days.
#[must_use]
pub fn renewal_time(before: i64, after: i64) -> i64 {
    let lifetime = after.saturating_sub(before).max(0);
    let left = if lifetime < 10 * 86_400 {
        lifetime / 2
    } else {
        lifetime / 3
    };
    after - left
}

/// The wait after the `failures`-th consecutive failure (0-based): `base`, 10 × `base`,
/// 100 × `base`, then daily.
#[must_use]
pub fn retry_delay(failures: u32, base: Duration) -> Duration {
    match failures {
        0 => base,
        1 => base * 10,
        2 => base * 100,
        _ => DAY,
    }
    .min(DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_at_a_third_or_half_of_the_lifetime() {
        let day = 86_400;
        assert_eq!(renewal_time(0, 90 * day), 60 * day);
        assert_eq!(renewal_time(0, 60), 30);
        assert_eq!(renewal_time(0, 6 * day), 3 * day);
    }

    #[test]
    fn retry_schedule_is_lets_encrypts() {
        let m = Duration::from_mins(1);
        let got: Vec<u64> = (0..5).map(|n| retry_delay(n, m).as_secs()).collect();
        assert_eq!(got, [60, 600, 6000, 86_400, 86_400]);
    }
}
