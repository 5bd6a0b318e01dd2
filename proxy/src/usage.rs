//! The usage observer: sees every chunk of a relayed response body as it passes, without
//! buffering. Today it counts the bytes; token counts (from a JSON body's `usage` or a
//! stream's last events) are read here when client keys need metering.

use bytes::Bytes;

/// What a relayed response body has carried so far.
#[derive(Debug, Default, Clone, Copy)]
pub struct UsageObserver {
    /// Body bytes received from the upstream and passed on.
    pub upstream_bytes: u64,
}

impl UsageObserver {
    /// Sees one chunk.
    pub fn observe(&mut self, chunk: &Bytes) {
        self.upstream_bytes += chunk.len() as u64;
    }
}
