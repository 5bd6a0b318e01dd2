//! What every request shares: settings, the swappable upstreams, metrics, the body budget.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;

use crate::auth::TokenDigest;
use crate::config::{Config, Settings};
use crate::metrics::Metrics;
use crate::upstream::Upstreams;

/// Shared by all connections.
pub struct AppState {
    /// `.env` settings (fixed for the process lifetime).
    pub settings: Settings,
    /// The digest of `AUTH_TOKEN`, which requests are checked against.
    pub token: TokenDigest,
    /// The provider configuration and clients in force; a reload swaps it.
    pub upstreams: ArcSwap<Upstreams>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// `MAX_INFLIGHT_BODY_BYTES`, one permit a byte, held while a request body is buffered.
    pub body_budget: Arc<Semaphore>,
    /// TLS settings reused when clients are rebuilt on reload.
    pub tls: rustls::ClientConfig,
    /// Where the configuration was read from, for reloads.
    pub config_dir: PathBuf,
    /// The content hash of the provider file last loaded or rejected.
    pub config_hash: Mutex<Option<u64>>,
    /// The clients' rate-limit and concurrency counters (per process).
    pub limits: crate::limits::Registry,
}

impl AppState {
    /// Replaces every known secret (the client token, provider keys, header values and any
    /// value that came from a `${VAR}`) in `text` with `***`. Used on error paths, where
    /// client input (a model name, a path) or an upstream URL is logged.
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        let upstreams = self.upstreams.load();
        let mut secrets: Vec<&str> = upstreams.config.secrets().collect();
        secrets.push(self.settings.auth_token.expose());
        crate::secret::redact(text, &mut secrets)
    }

    /// Builds the state and one client per provider.
    #[must_use]
    pub fn new(config: Config) -> Self {
        let tls = crate::upstream::tls_config();
        let upstreams = Upstreams::new(config.providers, &tls);
        let budget = config.settings.max_inflight_body_bytes;
        Self {
            token: TokenDigest::of(config.settings.auth_token.expose().as_bytes()),
            metrics: Arc::new(Metrics::new(config.settings.log_rejected_per_sec)),
            body_budget: Arc::new(Semaphore::new(budget)),
            limits: crate::limits::Registry::new(config.settings.rate_limit_window),
            settings: config.settings,
            upstreams: ArcSwap::from_pointee(upstreams),
            tls,
            config_hash: Mutex::new(crate::reload::content_hash(&config.dir)),
            config_dir: config.dir,
        }
    }
}
