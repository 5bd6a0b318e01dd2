//! Reloading `provider-config.yaml` in place — on SIGHUP, and when its content changes (polled
//! every `CONFIG_POLL_INTERVAL`, which also sees a Kubernetes ConfigMap's symlink swap). A bad
//! file is rejected, logged and counted; the running configuration stays.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, PROVIDERS_FILE};
use crate::log;
use crate::signals::warn_not_configured;
use crate::state::AppState;
use crate::upstream::Upstreams;

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A SIGHUP.
    Sighup,
    /// The file's content changed.
    FileChanged,
}

impl Trigger {
    /// The log label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sighup => "sighup",
            Self::FileChanged => "file_changed",
        }
    }
}

/// A hash of the file's content, `None` when it cannot be read. Reading the path follows
/// symlinks, so a swapped link counts as a change of content.
#[must_use]
pub fn content_hash(dir: &Path) -> Option<u64> {
    let bytes = std::fs::read(dir.join(PROVIDERS_FILE)).ok()?;
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// Re-reads and validates `provider-config.yaml`; swaps it in only when valid. Requests in
/// flight finish with the configuration they started with.
pub fn reload(state: &AppState, trigger: Trigger) {
    // Noted first, so a rejected file is reported once, not at every poll.
    *state
        .config_hash
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = content_hash(&state.config_dir);
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
                .str("trigger", trigger.as_str())
                .u64("providers", n_providers as u64)
                .u64("models", n_models as u64)
                .emit();
        }
        Err(e) => {
            state.metrics.record_reload(false);
            log::error("configuration reload rejected; keeping the running configuration")
                .str("trigger", trigger.as_str())
                .str("error", &state.redact(&e.to_string()))
                .emit();
        }
    }
}

/// Polls the file's content every `CONFIG_POLL_INTERVAL` and reloads when it changed; an
/// unreadable file (mid-swap, removed) is skipped until it reads again.
pub async fn watch(state: Arc<AppState>) {
    let interval = state.settings.config_poll_interval;
    if interval.is_zero() {
        return;
    }
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let dir = state.config_dir.clone();
        let Ok(Some(now)) = tokio::task::spawn_blocking(move || content_hash(&dir)).await else {
            continue;
        };
        let last = *state
            .config_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last != Some(now) {
            reload(&state, Trigger::FileChanged);
        }
    }
}
