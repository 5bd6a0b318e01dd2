//! What every request shares: settings, the swappable upstreams, metrics.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Config, Settings};
use crate::metrics::Metrics;
use crate::upstream::Upstreams;

/// Shared by all connections.
pub struct AppState {
    /// `.env` settings (fixed for the process lifetime).
    pub settings: Settings,
    /// The provider configuration and clients in force; SIGHUP swaps it.
    pub upstreams: ArcSwap<Upstreams>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// TLS settings reused when clients are rebuilt on reload.
    pub tls: rustls::ClientConfig,
    /// Where the configuration was read from, for reloads.
    pub config_dir: PathBuf,
}

impl AppState {
    /// Replaces every known secret (the client token, provider keys) in `text` with `***`.
    /// Used on error paths, where client input (a model name, a path) is logged and a
    /// client may have pasted a key into it.
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(self.settings.auth_token.expose(), "***");
        let upstreams = self.upstreams.load();
        for p in &upstreams.config.providers {
            if let Some(key) = &p.api_key
                && !key.expose().is_empty()
            {
                out = out.replace(key.expose(), "***");
            }
        }
        out
    }

    /// Builds the state and one client per provider.
    #[must_use]
    pub fn new(config: Config) -> Self {
        let tls = crate::upstream::tls_config();
        let upstreams = Upstreams::new(config.providers, &tls);
        Self {
            settings: config.settings,
            upstreams: ArcSwap::from_pointee(upstreams),
            metrics: Arc::new(Metrics::default()),
            tls,
            config_dir: config.dir,
        }
    }
}
