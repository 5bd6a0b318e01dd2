//! How a request ended and how an upstream attempt failed: the typed values behind the log
//! line's `outcome` and the `kind` label of `ai_proxy_upstream_errors_total`, each label
//! string written once, here.

/// How a request's response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The response went out in full (an error response included: the status says more).
    Complete,
    /// The client went away before the response ended (status 499 if before the headers).
    ClientClosed,
    /// The upstream body failed while it was relayed.
    UpstreamError,
    /// The upstream body was silent longer than `idle_timeout`.
    IdleTimeout,
    /// Every target failed, and the last one's 429 or 5xx answer went out in full (its
    /// status, `retry-after` and body, in the client's shape).
    UpstreamRefused,
}

impl Outcome {
    /// The log label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::ClientClosed => "client_closed",
            Self::UpstreamError => "upstream_error",
            Self::IdleTimeout => "idle_timeout",
            Self::UpstreamRefused => "upstream_refused",
        }
    }

    /// Whether the log line is a warning: the proxy or an upstream failed the client.
    #[must_use]
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Self::UpstreamError | Self::IdleTimeout | Self::UpstreamRefused
        )
    }
}

/// Why one upstream attempt, or a relayed upstream body, failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum UpstreamFailure {
    // In label order, so the metric's lines keep the order they had as strings.
    /// TCP or TLS connect failed.
    Connect,
    /// The response body was silent longer than `idle_timeout`.
    IdleTimeout,
    /// The request failed after connecting, before response headers.
    Request,
    /// The upstream answered 429.
    Status429,
    /// The upstream answered 5xx.
    Status5xx,
    /// The response body failed mid-way.
    Stream,
    /// No response headers within `first_byte_timeout`.
    Timeout,
}

impl UpstreamFailure {
    /// The metric label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Request => "request",
            Self::Timeout => "timeout",
            Self::Status429 => "status_429",
            Self::Status5xx => "status_5xx",
            Self::IdleTimeout => "idle_timeout",
            Self::Stream => "stream",
        }
    }
}
