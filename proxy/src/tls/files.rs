//! The admin's certificate files (`TLS_CERT_FILE`, `TLS_KEY_FILE`): re-read on SIGHUP and
//! when their content changes (polled every `CONFIG_POLL_INTERVAL`). A bad pair is rejected,
//! logged and counted; the certificate in force stays. Open connections are not touched.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::signal::unix::Signal;

use super::{Certs, TlsError, load_pair};
use crate::log;
use crate::metrics::Metrics;
use crate::reload::Trigger;

/// The pair of files behind the served certificate.
pub struct CertFiles {
    cert_file: PathBuf,
    key_file: PathBuf,
    /// What the listener serves.
    pub certs: Arc<Certs>,
    /// The content hash of the pair last loaded or rejected.
    last: Mutex<Option<u64>>,
}

impl CertFiles {
    /// Loads the pair; an error here stops the start.
    pub fn load(cert_file: PathBuf, key_file: PathBuf) -> Result<Self, TlsError> {
        let last = content_hash(&cert_file, &key_file);
        let certs = Certs::new(Some(load_pair(&cert_file, &key_file)?));
        Ok(Self {
            cert_file,
            key_file,
            certs,
            last: Mutex::new(last),
        })
    }

    /// Re-reads the pair and serves it from the next handshake if it is valid.
    pub fn reload(&self, trigger: Trigger, metrics: &Metrics) {
        // Noted first, so a rejected pair is reported once, not at every poll.
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            content_hash(&self.cert_file, &self.key_file);
        match load_pair(&self.cert_file, &self.key_file) {
            Ok(pair) => {
                self.certs.replace(pair);
                metrics.record_tls_reload(true);
                log::info("certificate reloaded")
                    .str("trigger", trigger.as_str())
                    .str("cert_file", &self.cert_file.display().to_string())
                    .opt_str("not_after", self.note_expiry(metrics).as_deref())
                    .emit();
            }
            Err(e) => {
                metrics.record_tls_reload(false);
                log::error("certificate reload rejected; keeping the certificate in force")
                    .str("trigger", trigger.as_str())
                    .str("error", &e.to_string())
                    .emit();
            }
        }
    }

    /// Exports the served certificate's expiry; returns it for the log line.
    pub fn note_expiry(&self, metrics: &Metrics) -> Option<String> {
        super::note_certificate(&self.certs, metrics)
    }

    /// Reloads on every SIGHUP, and when the files' content changed (checked every `poll`,
    /// never when zero); runs forever.
    pub async fn watch(self: Arc<Self>, mut hangup: Signal, poll: Duration, metrics: Arc<Metrics>) {
        let mut ticks = tokio::time::interval(if poll.is_zero() {
            Duration::from_hours(1)
        } else {
            poll
        });
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                got = hangup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    self.reload(Trigger::Sighup, &metrics);
                }
                _ = ticks.tick(), if !poll.is_zero() => {
                    let (cert, key) = (self.cert_file.clone(), self.key_file.clone());
                    let Ok(Some(now)) =
                        tokio::task::spawn_blocking(move || content_hash(&cert, &key)).await
                    else {
                        continue;
                    };
                    let last = *self
                        .last
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if last != Some(now) {
                        self.reload(Trigger::FileChanged, &metrics);
                    }
                }
            }
        }
    }
}

/// A hash of both files' content, `None` when either cannot be read (mid-swap).
fn content_hash(cert_file: &std::path::Path, key_file: &std::path::Path) -> Option<u64> {
    let mut h = DefaultHasher::new();
    std::fs::read(cert_file).ok()?.hash(&mut h);
    std::fs::read(key_file).ok()?.hash(&mut h);
    Some(h.finish())
}
