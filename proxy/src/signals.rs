//! Signals: SIGTERM/SIGINT start a graceful shutdown; SIGHUP reloads
//! `provider-config.yaml`. The handlers are installed once, first thing at start.

use std::sync::Arc;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::log;
use crate::reload;
use crate::state::AppState;

/// Makes SIGHUP harmless from the first instruction of `main`, before the runtime exists:
/// its default action kills the process, and an orchestrator may send it at any time after
/// start. The async handlers installed later by [`Signals::install`] then receive it.
pub fn hold_sighup() -> std::io::Result<()> {
    #[allow(
        unsafe_code,
        reason = "registering an action that does nothing is async-signal-safe; it runs before any other thread exists, as signal-hook-registry asks"
    )]
    // SAFETY: the action is empty, so it cannot break async-signal-safety, and no other
    // thread is running yet to race the registration.
    let registered = unsafe { signal_hook_registry::register(libc::SIGHUP, || {}) };
    registered.map(drop)
}

/// The installed handlers. From the moment they exist a signal is queued for us instead of
/// taking its default action (for SIGHUP: killing the process).
pub struct Signals {
    /// SIGTERM.
    pub terminate: Signal,
    /// SIGINT.
    pub interrupt: Signal,
    /// SIGHUP.
    pub hangup: Signal,
}

impl Signals {
    /// Installs the three handlers; needs the runtime's context.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }
}

/// Resolves with the signal's name on the first SIGTERM or SIGINT.
pub async fn termination(mut terminate: Signal, mut interrupt: Signal) -> &'static str {
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    }
}

/// Reloads on every SIGHUP, forever.
pub async fn reload_on_sighup(state: Arc<AppState>, mut hangup: Signal) {
    while hangup.recv().await.is_some() {
        reload::reload(&state, reload::Trigger::Sighup);
    }
}

/// Logs that `p` is not configured and which variables to set.
pub fn warn_not_configured(p: &crate::config::Provider) {
    log::warn("provider not configured; requests routed only to it get 503")
        .str("provider", &p.name)
        .str("set", &p.missing_vars.join(", "))
        .emit();
}
