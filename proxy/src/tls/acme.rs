//! Automatic certificates (`TLS_DOMAINS`): the ACME account, orders answered with TLS-ALPN-01
//! on the service port, the cache, and the loop that renews when [`schedule`] says — inside
//! the CA's renewal window (ARI) when it offers one, naming the certificate replaced, else at
//! a third of the lifetime left — retries failures on Let's Encrypt's schedule, and keeps
//! serving the current certificate while it is valid. instant-acme speaks the protocol;
//! serving, storage and scheduling are here.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, CertificateIdentifier,
    ChallengeType, Identifier, NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, Der};
use rustls::sign::CertifiedKey;

use super::cache::Cache;
use super::schedule::{self, AriPick, DAY};
use super::{Certs, expiry, pair_from_pem};
use crate::config::settings::AcmeSettings;
use crate::log;
use crate::metrics::{AcmeFailure, AcmeOrder, Metrics, RenewalRule};

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

/// When the served certificate is to be renewed, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// Seconds since the epoch.
    at: i64,
    rule: RenewalRule,
    /// The CA's window, under ARI.
    window: Option<(i64, i64)>,
    /// When to look again if `at` is later: the window may move.
    recheck: Duration,
    /// The certificate's name for the CA, sent with the renewal order under ARI.
    replaces: Option<CertificateIdentifier<'static>>,
}

/// What the CA says about renewing one certificate.
enum RenewalInfo {
    /// The suggested window (seconds since the epoch) and when to ask again.
    Window(i64, i64, Duration),
    /// The directory has no `renewalInfo`.
    Unsupported,
    /// The CA or its answer failed.
    Failed(String),
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

    /// Exports the served certificate's names and expiry; returns the expiry for log lines.
    fn note_expiry(&self) -> Option<String> {
        super::note_certificate(&self.certs, &self.metrics)
    }

    /// Issues when there is no certificate, renews when due, retries failures on the
    /// schedule; forever.
    pub async fn run(self: Arc<Self>) {
        let mut failures: u32 = 0;
        let mut pick = AriPick::default();
        let mut shown: Option<Plan> = None;
        if let Some(not_after) = self.note_expiry() {
            log::info("serving the cached certificate")
                .str("domains", &self.settings.domains.join(","))
                .str("not_after", &not_after)
                .emit();
        }
        loop {
            let plan = match self.certs.current() {
                Some(current) => Some(self.plan(&current, &mut pick).await),
                None => None,
            };
            if let Some(plan) = &plan {
                self.show(plan, &mut shown);
                let wait = u64::try_from(plan.at.saturating_sub(now())).unwrap_or(0);
                if wait > 0 {
                    let wait = Duration::from_secs(wait).min(plan.recheck).min(DAY);
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            let replaces = plan.and_then(|p| p.replaces);
            self.order(replaces.as_ref(), &mut failures).await;
        }
    }

    /// Logs and exports a renewal plan when it differs from the last one shown.
    fn show(&self, plan: &Plan, shown: &mut Option<Plan>) {
        let same = shown
            .as_ref()
            .is_some_and(|s| (s.at, s.rule, s.window) == (plan.at, plan.rule, plan.window));
        if same {
            return;
        }
        self.metrics.set_tls_renewal(plan.at, plan.rule);
        let mut line = log::info("renewal scheduled")
            .str("domains", &self.settings.domains.join(","))
            .str("rule", plan.rule.as_str())
            .str("at", &expiry::rfc3339(plan.at))
            .u64(
                "in_secs",
                u64::try_from(plan.at.saturating_sub(now())).unwrap_or(0),
            );
        if let Some((start, end)) = plan.window {
            line = line
                .str("window_start", &expiry::rfc3339(start))
                .str("window_end", &expiry::rfc3339(end))
                .u64("recheck_in_secs", plan.recheck.as_secs());
        }
        line.emit();
        *shown = Some(plan.clone());
    }

    /// One order, its outcome logged and counted; after a failure, waits as the retry
    /// schedule says.
    async fn order(&self, replaces: Option<&CertificateIdentifier<'static>>, failures: &mut u32) {
        let kind = if self.certs.current().is_some() {
            AcmeOrder::Renewal
        } else {
            AcmeOrder::Issuance
        };
        self.metrics.record_acme_order(kind);
        let started = std::time::Instant::now();
        match self.issue(replaces).await {
            Ok(pair) => {
                self.certs.replace(pair);
                *failures = 0;
                log::info("certificate issued")
                    .str("domains", &self.settings.domains.join(","))
                    .str("kind", kind.as_str())
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
                let retry = schedule::retry_delay(*failures, self.settings.retry_base);
                *failures = failures.saturating_add(1);
                log::error(if self.certs.current().is_some() {
                    "certificate renewal failed; still serving the current certificate"
                } else {
                    "certificate issuance failed; HTTPS handshakes fail until it succeeds"
                })
                .str("domains", &self.settings.domains.join(","))
                .str("reason", failure.reason.as_str())
                .str("error", &failure.message)
                .u64("failures", u64::from(*failures))
                .u64("retry_in_secs", retry.as_secs())
                .emit();
                tokio::time::sleep(retry).await;
            }
        }
    }

    /// When to renew `current`: inside the CA's window if it has one for it, else by the
    /// lifetime rule. An unreadable certificate is renewed at once.
    async fn plan(&self, current: &CertifiedKey, pick: &mut AriPick) -> Plan {
        let facts = current.end_entity_cert().ok().and_then(|d| expiry::read(d));
        let Some(facts) = facts else {
            return Plan {
                at: 0,
                rule: RenewalRule::Lifetime,
                window: None,
                recheck: DAY,
                replaces: None,
            };
        };
        let lifetime = Plan {
            at: schedule::renewal_time(facts.not_before, facts.not_after),
            rule: RenewalRule::Lifetime,
            window: None,
            recheck: DAY,
            replaces: None,
        };
        // Without an authority key identifier the certificate cannot be named to the CA.
        let Some(aki) = facts.authority_key_id else {
            return lifetime;
        };
        let id = CertificateIdentifier::new(Der::from_slice(aki), Der::from_slice(facts.serial))
            .into_owned();
        let problem = match self.renewal_info(&id).await {
            RenewalInfo::Unsupported => return lifetime,
            RenewalInfo::Window(start, end, retry_after) => {
                let recheck = schedule::poll_interval(retry_after, self.settings.retry_base);
                if schedule::window_usable(start, end, facts.not_after) {
                    return Plan {
                        at: pick.at(start, end, random_u64()),
                        rule: RenewalRule::Ari,
                        window: Some((start, end)),
                        recheck,
                        replaces: Some(id),
                    };
                }
                format!(
                    "the suggested window {} to {} ends after the certificate expires",
                    expiry::rfc3339(start),
                    expiry::rfc3339(end)
                )
            }
            RenewalInfo::Failed(e) => e,
        };
        log::warn("no usable renewal window from the CA; renewing by the lifetime rule")
            .str("error", &problem)
            .u64("recheck_in_secs", schedule::ARI_MAX_POLL.as_secs())
            .emit();
        Plan {
            recheck: schedule::ARI_MAX_POLL,
            ..lifetime
        }
    }

    /// The CA's renewal window for the certificate `id`, counted in the metrics.
    async fn renewal_info(&self, id: &CertificateIdentifier<'_>) -> RenewalInfo {
        let account = match self.account().await {
            Ok(account) => account,
            Err(failure) => {
                self.metrics.record_acme_renewal_info(false);
                return RenewalInfo::Failed(failure.message);
            }
        };
        let info = match account.renewal_info(id).await {
            Ok((info, retry_after)) => RenewalInfo::Window(
                info.suggested_window.start.unix_timestamp(),
                info.suggested_window.end.unix_timestamp(),
                retry_after,
            ),
            Err(instant_acme::Error::Unsupported(_)) => return RenewalInfo::Unsupported,
            Err(e) => RenewalInfo::Failed(Failure::from_acme("renewal information", &e).message),
        };
        self.metrics
            .record_acme_renewal_info(matches!(info, RenewalInfo::Window(..)));
        info
    }

    /// A new order for the names; naming the certificate it replaces when given. A CA that
    /// refuses that (an earlier order already replaced it, or it does not echo the field)
    /// gets a plain order: the renewal matters more than the CA's bookkeeping.
    async fn new_order(
        &self,
        account: &Account,
        identifiers: &[Identifier],
        replaces: Option<&CertificateIdentifier<'static>>,
    ) -> Result<Order, Failure> {
        if let Some(id) = replaces {
            let named = NewOrder::new(identifiers).replaces(id.clone());
            match account.new_order(&named).await {
                Ok(order) => return Ok(order),
                Err(e) => {
                    let failure = Failure::from_acme("new order replacing the certificate", &e);
                    if matches!(
                        failure.reason,
                        AcmeFailure::Unreachable | AcmeFailure::Timeout
                    ) {
                        return Err(failure);
                    }
                    log::warn("the CA refused the order naming the certificate it replaces; ordering without `replaces`")
                        .str("replaces", &id.to_string())
                        .str("error", &failure.message)
                        .emit();
                }
            }
        }
        account
            .new_order(&NewOrder::new(identifiers))
            .await
            .map_err(|e| Failure::from_acme("new order", &e))
    }

    /// One order from account to stored certificate.
    async fn issue(
        &self,
        replaces: Option<&CertificateIdentifier<'static>>,
    ) -> Result<CertifiedKey, Failure> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .settings
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = self.new_order(&account, &identifiers, replaces).await?;
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

/// Seconds since the epoch.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A random number from the operating system, to pick a time inside the CA's window.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Without randomness the window's start is still a time the CA accepts.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_le_bytes(bytes)
}
