//! Signals: SIGTERM/SIGINT start a graceful shutdown; SIGHUP reloads
//! `provider-config.yaml` in place, keeping the running configuration if the new one is bad.

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::log;
use crate::state::AppState;
use crate::upstream::Upstreams;

/// Resolves with the signal's name on the first SIGTERM or SIGINT.
pub async fn termination() -> &'static str {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error("cannot install SIGTERM/SIGINT handlers; graceful shutdown is unavailable")
            .emit();
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Reloads on every SIGHUP, forever.
pub async fn reload_on_sighup(state: Arc<AppState>) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        log::error("cannot install the SIGHUP handler; reload needs a restart").emit();
        return;
    };
    while hup.recv().await.is_some() {
        reload(&state);
    }
}

/// Re-reads and validates `provider-config.yaml`; swaps it in only when valid. Requests in
/// flight finish with the configuration they started with.
pub fn reload(state: &AppState) {
    match Config::reload_providers(&state.config_dir) {
        Ok(providers) => {
            for p in providers.not_configured() {
                warn_not_configured(p);
            }
            let (n_providers, n_models) = (providers.providers.len(), providers.models.len());
            state
                .upstreams
                .store(Arc::new(Upstreams::new(providers, &state.tls)));
            state.metrics.record_reload(true);
            log::info("configuration reloaded")
                .u64("providers", n_providers as u64)
                .u64("models", n_models as u64)
                .emit();
        }
        Err(e) => {
            state.metrics.record_reload(false);
            log::error("configuration reload rejected; keeping the running configuration")
                .str("error", &e.to_string())
                .emit();
        }
    }
}

/// Logs that `p` is not configured and which variables to set.
pub fn warn_not_configured(p: &crate::config::Provider) {
    log::warn("provider not configured; requests routed only to it get 503")
        .str("provider", &p.name)
        .str("set", &p.missing_vars.join(", "))
        .emit();
}
