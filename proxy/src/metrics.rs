//! Prometheus counters, gauges and histograms, rendered in the text exposition format at
//! `/metrics`. Labels come from configuration (model and provider names), never from
//! client input, so their number stays bounded.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::auth::Identity;
use crate::limits::Reason;
use crate::outcome::UpstreamFailure;
use crate::usage::{TokenType, Tokens};

/// The `client` label of `AUTH_TOKEN`'s requests.
static OPERATOR: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| Arc::from(crate::config::clients::OPERATOR));

/// Where a config object (a model's target, a client) keeps its resolved series: filled on
/// the first request after the config was loaded, so later requests count with atomics
/// only, without a lock or a label lookup.
pub type Slot<T> = OnceLock<Arc<T>>;

/// The statuses counted in a [`PairSeries`] array; others (rare) go to a locked map.
const STATUSES: std::ops::RangeInclusive<u16> = 100..=599;

/// Histogram bucket bounds in seconds.
const BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// A [`Histogram`] the hot path updates with atomics: each observation counts in its own
/// bucket only; [`AtomicHistogram::snapshot`] makes the counts cumulative.
#[derive(Debug, Default)]
struct AtomicHistogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// The sum's `f64` bits, added to in observation order as [`Histogram`] does.
    sum: AtomicU64,
}

impl AtomicHistogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|bound| secs <= *bound) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + secs).to_bits())
            });
    }

    fn snapshot(&self) -> Histogram {
        let mut h = Histogram::default();
        let mut below = 0;
        for (out, count) in h.counts.iter_mut().zip(&self.counts) {
            below += count.load(Ordering::Relaxed);
            *out = below;
        }
        h.count = self.count.load(Ordering::Relaxed);
        h.sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        h
    }
}

/// The series of one (model, provider) pair, resolved once per config load (see [`Slot`]).
pub struct PairSeries {
    model: Arc<str>,
    provider: Arc<str>,
    /// The provider's own series; `None` for a request no target was tried for.
    upstream: Option<Arc<ProviderSeries>>,
    /// `ai_proxy_requests_total` by status, from [`STATUSES`]' start.
    statuses: Box<[AtomicU64]>,
    duration: AtomicHistogram,
    /// `AUTH_TOKEN`'s tokens by [`TokenType`]; configured clients' are in [`Families`].
    operator_tokens: [AtomicU64; 4],
}

impl std::fmt::Debug for PairSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairSeries")
            .field("model", &self.model)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// The series of one provider.
#[derive(Debug, Default)]
pub struct ProviderSeries {
    upstream: AtomicHistogram,
}

/// The series of one client (or the operator).
#[derive(Debug, Default)]
pub struct ClientSeries {
    requests: AtomicU64,
}

/// Every resolved series by its labels: kept across reloads, so a model that stays keeps
/// counting and one removed keeps its last values, as a label map would.
#[derive(Default)]
struct Registry {
    pairs: BTreeMap<(Arc<str>, Arc<str>), Arc<PairSeries>>,
    providers: BTreeMap<Arc<str>, Arc<ProviderSeries>>,
    clients: BTreeMap<Arc<str>, Arc<ClientSeries>>,
}

/// client, model, provider, type.
type TokenSeries = (Arc<str>, Arc<str>, Arc<str>, TokenType);

/// The label maps `/metrics` renders; the hot path's series are merged in at render time.
#[derive(Default, Clone)]
struct Families {
    requests: BTreeMap<(Arc<str>, Arc<str>, u16), u64>,
    duration: BTreeMap<(Arc<str>, Arc<str>), Histogram>,
    upstream: BTreeMap<Arc<str>, Histogram>,
    upstream_errors: BTreeMap<(Arc<str>, UpstreamFailure), u64>,
    /// Failed attempts by reason and whether the next target was tried.
    fallbacks: BTreeMap<(UpstreamFailure, bool), u64>,
    overhead: Histogram,
    /// Tokens by client, model, provider and type.
    tokens: BTreeMap<TokenSeries, u64>,
    /// Requests by client (the policy's refusals included).
    client_requests: BTreeMap<Arc<str>, u64>,
    /// Policy refusals by client and reason.
    client_rejected: BTreeMap<(Arc<str>, Reason), u64>,
}

/// Why an ACME issuance or renewal failed: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeFailure {
    /// The CA could not be reached (connection, TLS, HTTP).
    Unreachable,
    /// The CA answered with an error document (rate limit, bad request, account…).
    Rejected,
    /// The CA could not validate a name (TLS-ALPN-01 failed).
    Validation,
    /// The CA did not finish in time.
    Timeout,
    /// The cache could not be written or read.
    Storage,
    /// Anything else.
    Other,
}

impl AcmeFailure {
    /// Every reason, in label order.
    pub const ALL: [Self; 6] = [
        Self::Unreachable,
        Self::Rejected,
        Self::Validation,
        Self::Timeout,
        Self::Storage,
        Self::Other,
    ];

    /// The label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Rejected => "rejected",
            Self::Validation => "validation",
            Self::Timeout => "timeout",
            Self::Storage => "storage",
            Self::Other => "other",
        }
    }
}

/// Which rule chose a certificate's renewal time: the `rule` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewalRule {
    /// A random time inside the CA's suggested window (ACME Renewal Information).
    Ari,
    /// A third of the lifetime left (half under 10 days): the CA offers no window.
    Lifetime,
}

impl RenewalRule {
    /// The label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ari => "ari",
            Self::Lifetime => "lifetime",
        }
    }
}

/// What an ACME order is for: the `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeOrder {
    /// No certificate yet.
    Issuance,
    /// A certificate is served and due for renewal.
    Renewal,
}

impl AcmeOrder {
    /// Every kind, in label order.
    pub const ALL: [Self; 2] = [Self::Issuance, Self::Renewal];

    /// The label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issuance => "issuance",
            Self::Renewal => "renewal",
        }
    }
}

/// The served certificate and its renewal plan, for the TLS gauges.
#[derive(Default)]
struct TlsCertificate {
    /// Its subjectAltName entries: the `domain` label.
    names: Vec<String>,
    /// Its `notAfter`, seconds since the epoch; `None` when nothing is served.
    not_after: Option<i64>,
    /// When it is to be renewed, and by which rule (automatic certificates only).
    renewal: Option<(i64, RenewalRule)>,
}

/// All metrics of the process.
pub struct Metrics {
    families: Mutex<Families>,
    registry: Mutex<Registry>,
    operator: Slot<ClientSeries>,
    overhead: AtomicHistogram,
    /// Requests being proxied now.
    pub in_flight_requests: AtomicI64,
    /// Upstream SSE streams being relayed now.
    pub in_flight_streams: AtomicI64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    /// Client connections open now.
    pub connections_open: AtomicI64,
    /// Connections closed at accept because `MAX_CONNECTIONS` were open and none was silent.
    pub connections_rejected: AtomicU64,
    /// Silent connections (no request yet) closed to make room for a new one at the limit.
    pub connections_evicted: AtomicU64,
    /// Connections closed for sending no complete request head in time.
    pub connections_header_timeout: AtomicU64,
    /// Connections closed after `CLIENT_IDLE_TIMEOUT` with no request in flight.
    pub connections_idle_timeout: AtomicU64,
    /// Requests refused with 503 because the body budget was spent.
    pub body_budget_rejected: AtomicU64,
    /// The log-line budget for rejected (401, 404) requests.
    pub rejected_log: crate::log::RateLimit,
    /// TLS handshakes that failed (untrusted certificate, no common version or cipher…).
    pub tls_handshake_failures: AtomicU64,
    /// Plain-HTTP requests answered 400 on the TLS port.
    pub tls_plaintext_rejected: AtomicU64,
    tls_reloads_ok: AtomicU64,
    tls_reloads_failed: AtomicU64,
    tls_certificate: Mutex<TlsCertificate>,
    acme_orders: [AtomicU64; AcmeOrder::ALL.len()],
    acme_failures: [AtomicU64; AcmeFailure::ALL.len()],
    /// Renewal-information fetches that succeeded and that failed.
    acme_renewal_info: [AtomicU64; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(20)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves counters that are still valid numbers.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Metrics with a budget of `rejected_per_sec` log lines for rejected requests.
    #[must_use]
    pub fn new(rejected_per_sec: u32) -> Self {
        Self {
            families: Mutex::default(),
            registry: Mutex::default(),
            operator: Slot::new(),
            overhead: AtomicHistogram::default(),
            in_flight_requests: AtomicI64::default(),
            in_flight_streams: AtomicI64::default(),
            reloads_ok: AtomicU64::default(),
            reloads_failed: AtomicU64::default(),
            connections_open: AtomicI64::default(),
            connections_rejected: AtomicU64::default(),
            connections_evicted: AtomicU64::default(),
            connections_header_timeout: AtomicU64::default(),
            connections_idle_timeout: AtomicU64::default(),
            body_budget_rejected: AtomicU64::default(),
            rejected_log: crate::log::RateLimit::new(rejected_per_sec),
            tls_handshake_failures: AtomicU64::default(),
            tls_plaintext_rejected: AtomicU64::default(),
            tls_reloads_ok: AtomicU64::default(),
            tls_reloads_failed: AtomicU64::default(),
            tls_certificate: Mutex::default(),
            acme_orders: Default::default(),
            acme_failures: Default::default(),
            acme_renewal_info: Default::default(),
        }
    }

    /// Counts a failed upstream attempt and whether the next target was tried after it.
    pub fn record_fallback(&self, reason: UpstreamFailure, taken: bool) {
        *lock(&self.families)
            .fallbacks
            .entry((reason, taken))
            .or_default() += 1;
    }

    /// The series of `model` answered by `provider` (`None`: no target was tried), from
    /// `slot` once it is filled. A `None` slot looks the labels up (error paths only).
    pub fn pair(
        &self,
        slot: Option<&Slot<PairSeries>>,
        model: &Arc<str>,
        provider: Option<&Arc<str>>,
    ) -> Arc<PairSeries> {
        let resolve = || {
            let mut r = lock(&self.registry);
            let upstream = provider.map(|p| r.providers.entry(p.clone()).or_default().clone());
            let provider = provider.cloned().unwrap_or_else(|| Arc::from(""));
            r.pairs
                .entry((model.clone(), provider.clone()))
                .or_insert_with(|| {
                    Arc::new(PairSeries {
                        model: model.clone(),
                        provider,
                        upstream,
                        statuses: STATUSES.map(|_| AtomicU64::new(0)).collect(),
                        duration: AtomicHistogram::default(),
                        operator_tokens: Default::default(),
                    })
                })
                .clone()
        };
        match slot {
            Some(slot) => slot.get_or_init(resolve).clone(),
            None => resolve(),
        }
    }

    /// The series of a client, from its config entry's slot once it is filled.
    fn client<'a>(&'a self, identity: &'a Identity) -> &'a ClientSeries {
        let (slot, name) = match identity {
            Identity::SharedToken => (&self.operator, &*OPERATOR),
            Identity::Client(c) => (&c.metrics, &c.name),
        };
        slot.get_or_init(|| {
            lock(&self.registry)
                .clients
                .entry(name.clone())
                .or_default()
                .clone()
        })
    }

    /// Counts one finished request and its total duration.
    pub fn record_request(&self, series: &PairSeries, status: u16, total: Duration) {
        match series
            .statuses
            .get(usize::from(status.wrapping_sub(*STATUSES.start())))
        {
            Some(count) => {
                count.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                *lock(&self.families)
                    .requests
                    .entry((series.model.clone(), series.provider.clone(), status))
                    .or_default() += 1;
            }
        }
        series.duration.observe(total);
    }

    /// Counts a client's request, its tokens, and a policy refusal. The `client` label is a
    /// configured name (or `operator`), so the series stay bounded by the config.
    pub fn record_client(
        &self,
        identity: &Identity,
        series: &PairSeries,
        tokens: &Tokens,
        rejected: Option<Reason>,
    ) {
        self.client(identity)
            .requests
            .fetch_add(1, Ordering::Relaxed);
        match identity {
            Identity::SharedToken => {
                for ((_, n), count) in tokens.by_type().into_iter().zip(&series.operator_tokens) {
                    if n > 0 {
                        count.fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
            Identity::Client(c) if tokens.by_type().iter().any(|(_, n)| *n > 0) => {
                let mut f = lock(&self.families);
                for (kind, n) in tokens.by_type() {
                    if n > 0 {
                        let key = (
                            c.name.clone(),
                            series.model.clone(),
                            series.provider.clone(),
                            kind,
                        );
                        *f.tokens.entry(key).or_default() += n;
                    }
                }
            }
            Identity::Client(_) => {}
        }
        if let Some(reason) = rejected {
            let client = Arc::from(identity.name());
            *lock(&self.families)
                .client_rejected
                .entry((client, reason))
                .or_default() += 1;
        }
    }

    /// Records the wait for an upstream's response headers and the proxy's own overhead.
    pub fn record_upstream(&self, series: &PairSeries, wait: Duration, overhead: Duration) {
        if let Some(upstream) = &series.upstream {
            upstream.upstream.observe(wait);
        }
        self.overhead.observe(overhead);
    }

    /// Counts an upstream failure.
    pub fn record_upstream_error(&self, provider: &Arc<str>, kind: UpstreamFailure) {
        *lock(&self.families)
            .upstream_errors
            .entry((provider.clone(), kind))
            .or_default() += 1;
    }

    /// Counts a SIGHUP reload.
    pub fn record_reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a reload of the certificate files.
    pub fn record_tls_reload(&self, ok: bool) {
        let counter = if ok {
            &self.tls_reloads_ok
        } else {
            &self.tls_reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn lock_tls(&self) -> std::sync::MutexGuard<'_, TlsCertificate> {
        self.tls_certificate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes the served certificate's names and `notAfter` (seconds since the epoch).
    pub fn set_tls_certificate(&self, names: Vec<String>, not_after: Option<i64>) {
        let mut tls = self.lock_tls();
        tls.names = names;
        tls.not_after = not_after;
    }

    /// Notes when the served certificate is to be renewed (seconds since the epoch), and why.
    pub fn set_tls_renewal(&self, at: i64, rule: RenewalRule) {
        self.lock_tls().renewal = Some((at, rule));
    }

    /// Counts an ACME order.
    pub fn record_acme_order(&self, kind: AcmeOrder) {
        self.acme_orders[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a fetch of the CA's renewal information.
    pub fn record_acme_renewal_info(&self, ok: bool) {
        self.acme_renewal_info[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed ACME order.
    pub fn record_acme_failure(&self, reason: AcmeFailure) {
        self.acme_failures[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let f = self.snapshot();
        let _ = writeln!(
            out,
            "# HELP ai_proxy_build_info Build information.\n# TYPE ai_proxy_build_info gauge\nai_proxy_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out.push_str("# HELP ai_proxy_requests_total Proxied requests by model, provider and status.\n# TYPE ai_proxy_requests_total counter\n");
        for ((model, provider, status), n) in &f.requests {
            let _ = writeln!(
                out,
                "ai_proxy_requests_total{{model=\"{}\",provider=\"{}\",status=\"{status}\"}} {n}",
                escape(model),
                escape(provider)
            );
        }
        out.push_str("# HELP ai_proxy_request_duration_seconds Total request time until the response body ended.\n# TYPE ai_proxy_request_duration_seconds histogram\n");
        for ((model, provider), h) in &f.duration {
            let labels = format!(
                "model=\"{}\",provider=\"{}\"",
                escape(model),
                escape(provider)
            );
            h.render(&mut out, "ai_proxy_request_duration_seconds", &labels);
        }
        out.push_str("# HELP ai_proxy_upstream_response_seconds Time from sending upstream to its response headers.\n# TYPE ai_proxy_upstream_response_seconds histogram\n");
        for (provider, h) in &f.upstream {
            let labels = format!("provider=\"{}\"", escape(provider));
            h.render(&mut out, "ai_proxy_upstream_response_seconds", &labels);
        }
        out.push_str("# HELP ai_proxy_overhead_seconds Time spent in the proxy itself before the response headers.\n# TYPE ai_proxy_overhead_seconds histogram\n");
        f.overhead.render(&mut out, "ai_proxy_overhead_seconds", "");
        out.push_str("# HELP ai_proxy_upstream_errors_total Upstream failures by provider and kind.\n# TYPE ai_proxy_upstream_errors_total counter\n");
        for ((provider, kind), n) in &f.upstream_errors {
            let _ = writeln!(
                out,
                "ai_proxy_upstream_errors_total{{provider=\"{}\",kind=\"{}\"}} {n}",
                escape(provider),
                kind.as_str()
            );
        }
        out.push_str("# HELP ai_proxy_fallbacks_total Failed upstream attempts by reason that were followed by another target (decision=taken), or after which the next target was not tried because the request may have reached the upstream (decision=refused).\n# TYPE ai_proxy_fallbacks_total counter\n");
        for ((reason, taken), n) in &f.fallbacks {
            let decision = if *taken { "taken" } else { "refused" };
            let _ = writeln!(
                out,
                "ai_proxy_fallbacks_total{{reason=\"{}\",decision=\"{decision}\"}} {n}",
                reason.as_str()
            );
        }
        render_clients(&f, &mut out);
        self.render_process(&mut out);
        let _ = writeln!(
            out,
            "# HELP ai_proxy_in_flight_requests Requests being proxied.\n# TYPE ai_proxy_in_flight_requests gauge\nai_proxy_in_flight_requests {}",
            self.in_flight_requests.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ai_proxy_in_flight_streams SSE streams being relayed.\n# TYPE ai_proxy_in_flight_streams gauge\nai_proxy_in_flight_streams {}",
            self.in_flight_streams.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ai_proxy_config_reloads_total SIGHUP reloads of provider-config.yaml.\n# TYPE ai_proxy_config_reloads_total counter\nai_proxy_config_reloads_total{{result=\"ok\"}} {}\nai_proxy_config_reloads_total{{result=\"rejected\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed)
        );
        self.render_tls(&mut out);
        out
    }

    /// The label maps with the resolved series merged in, in the maps' label order.
    fn snapshot(&self) -> Families {
        let mut f = lock(&self.families).clone();
        let r = lock(&self.registry);
        for ((model, provider), series) in &r.pairs {
            for (status, count) in STATUSES.zip(&series.statuses) {
                let n = count.load(Ordering::Relaxed);
                if n > 0 {
                    *f.requests
                        .entry((model.clone(), provider.clone(), status))
                        .or_default() += n;
                }
            }
            let duration = series.duration.snapshot();
            if duration.count > 0 {
                f.duration
                    .insert((model.clone(), provider.clone()), duration);
            }
            for (kind, count) in Tokens::default()
                .by_type()
                .iter()
                .zip(&series.operator_tokens)
            {
                let n = count.load(Ordering::Relaxed);
                if n > 0 {
                    let key = (OPERATOR.clone(), model.clone(), provider.clone(), kind.0);
                    *f.tokens.entry(key).or_default() += n;
                }
            }
        }
        for (provider, series) in &r.providers {
            let upstream = series.upstream.snapshot();
            if upstream.count > 0 {
                f.upstream.insert(provider.clone(), upstream);
            }
        }
        for (client, series) in &r.clients {
            let n = series.requests.load(Ordering::Relaxed);
            if n > 0 {
                *f.client_requests.entry(client.clone()).or_default() += n;
            }
        }
        f.overhead = self.overhead.snapshot();
        f
    }

    /// The TLS listener's counters.
    fn render_tls(&self, out: &mut String) {
        out.push_str("# HELP ai_proxy_acme_orders_total ACME orders by kind (first issuance, renewal).\n# TYPE ai_proxy_acme_orders_total counter\n");
        for kind in AcmeOrder::ALL {
            let _ = writeln!(
                out,
                "ai_proxy_acme_orders_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                self.acme_orders[kind as usize].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP ai_proxy_acme_renewal_info_total Fetches of the CA's renewal information (ARI).\n# TYPE ai_proxy_acme_renewal_info_total counter\nai_proxy_acme_renewal_info_total{{result=\"ok\"}} {}\nai_proxy_acme_renewal_info_total{{result=\"failed\"}} {}",
            self.acme_renewal_info[0].load(Ordering::Relaxed),
            self.acme_renewal_info[1].load(Ordering::Relaxed)
        );
        out.push_str("# HELP ai_proxy_acme_failures_total Failed ACME orders by reason.\n# TYPE ai_proxy_acme_failures_total counter\n");
        for reason in AcmeFailure::ALL {
            let _ = writeln!(
                out,
                "ai_proxy_acme_failures_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                self.acme_failures[reason as usize].load(Ordering::Relaxed)
            );
        }
        self.render_tls_certificate(out);
        let _ = writeln!(
            out,
            "# HELP ai_proxy_tls_reloads_total Reloads of TLS_CERT_FILE and TLS_KEY_FILE.\n# TYPE ai_proxy_tls_reloads_total counter\nai_proxy_tls_reloads_total{{result=\"ok\"}} {}\nai_proxy_tls_reloads_total{{result=\"rejected\"}} {}",
            self.tls_reloads_ok.load(Ordering::Relaxed),
            self.tls_reloads_failed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ai_proxy_tls_handshake_failures_total TLS handshakes that failed.\n# TYPE ai_proxy_tls_handshake_failures_total counter\nai_proxy_tls_handshake_failures_total {}",
            self.tls_handshake_failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ai_proxy_tls_plaintext_rejected_total Plain-HTTP requests answered 400 on the TLS port.\n# TYPE ai_proxy_tls_plaintext_rejected_total counter\nai_proxy_tls_plaintext_rejected_total {}",
            self.tls_plaintext_rejected.load(Ordering::Relaxed)
        );
    }
}

impl Metrics {
    /// The served certificate's expiry by name, and its planned renewal.
    fn render_tls_certificate(&self, out: &mut String) {
        let tls = self.lock_tls();
        if let Some(not_after) = tls.not_after {
            out.push_str("# HELP ai_proxy_tls_certificate_expiry_timestamp_seconds When the served certificate expires (notAfter), by subjectAltName.\n# TYPE ai_proxy_tls_certificate_expiry_timestamp_seconds gauge\n");
            // A certificate without subjectAltName still has an expiry worth alerting on.
            let unnamed = [String::new()];
            let names = if tls.names.is_empty() {
                &unnamed[..]
            } else {
                &tls.names[..]
            };
            for name in names {
                let _ = writeln!(
                    out,
                    "ai_proxy_tls_certificate_expiry_timestamp_seconds{{domain=\"{}\"}} {not_after}",
                    escape(name)
                );
            }
        }
        if let Some((at, rule)) = tls.renewal {
            let _ = writeln!(
                out,
                "# HELP ai_proxy_tls_certificate_renewal_timestamp_seconds When the automatic certificate is to be renewed, and the rule that chose the time.\n# TYPE ai_proxy_tls_certificate_renewal_timestamp_seconds gauge\nai_proxy_tls_certificate_renewal_timestamp_seconds{{rule=\"{}\"}} {at}",
                rule.as_str()
            );
        }
    }

    /// Connection, body-budget and log counters.
    fn render_process(&self, out: &mut String) {
        let counters: [(&str, &str, &str, u64); 8] = [
            (
                "ai_proxy_connections_open",
                "gauge",
                "Client connections open.",
                u64::try_from(self.connections_open.load(Ordering::Relaxed)).unwrap_or(0),
            ),
            (
                "ai_proxy_connections_rejected_total",
                "counter",
                "Connections closed at accept: MAX_CONNECTIONS open and none silent.",
                self.connections_rejected.load(Ordering::Relaxed),
            ),
            (
                "ai_proxy_connections_evicted_total",
                "counter",
                "Silent connections (no request yet) closed to admit a new one at MAX_CONNECTIONS.",
                self.connections_evicted.load(Ordering::Relaxed),
            ),
            (
                "ai_proxy_connections_header_timeout_total",
                "counter",
                "Connections closed for no complete request head within REQUEST_HEADER_TIMEOUT.",
                self.connections_header_timeout.load(Ordering::Relaxed),
            ),
            (
                "ai_proxy_connections_idle_timeout_total",
                "counter",
                "Connections closed after CLIENT_IDLE_TIMEOUT with no request in flight.",
                self.connections_idle_timeout.load(Ordering::Relaxed),
            ),
            (
                "ai_proxy_body_budget_rejected_total",
                "counter",
                "Requests refused with 503: MAX_INFLIGHT_BODY_BYTES in use.",
                self.body_budget_rejected.load(Ordering::Relaxed),
            ),
            (
                "ai_proxy_log_lines_dropped_total",
                "counter",
                "Log lines dropped because the log queue was full (stdout not drained).",
                crate::log::dropped_total(),
            ),
            (
                "ai_proxy_log_lines_suppressed_total",
                "counter",
                "Log lines of rejected requests (401, 404) over LOG_REJECTED_PER_SEC.",
                self.rejected_log.suppressed_total(),
            ),
        ];
        for (name, kind, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
}

/// The per-client families.
fn render_clients(f: &Families, out: &mut String) {
    out.push_str("# HELP ai_proxy_tokens_total Tokens reported by the upstreams, by client, model, provider and type (input, output, cache_read, cache_write).\n# TYPE ai_proxy_tokens_total counter\n");
    for ((client, model, provider, kind), n) in &f.tokens {
        let _ = writeln!(
            out,
            "ai_proxy_tokens_total{{client=\"{}\",model=\"{}\",provider=\"{}\",type=\"{}\"}} {n}",
            escape(client),
            escape(model),
            escape(provider),
            kind.as_str()
        );
    }
    out.push_str("# HELP ai_proxy_client_requests_total Requests by client (AUTH_TOKEN is client=\"operator\"), refusals included.\n# TYPE ai_proxy_client_requests_total counter\n");
    for (client, n) in &f.client_requests {
        let _ = writeln!(
            out,
            "ai_proxy_client_requests_total{{client=\"{}\"}} {n}",
            escape(client)
        );
    }
    out.push_str("# HELP ai_proxy_client_rejected_total Client requests refused by the client's models list (403) or limits (429), by reason.\n# TYPE ai_proxy_client_rejected_total counter\n");
    for ((client, reason), n) in &f.client_rejected {
        let _ = writeln!(
            out,
            "ai_proxy_client_rejected_total{{client=\"{}\",reason=\"{}\"}} {n}",
            escape(client),
            reason.as_str()
        );
    }
}

fn escape(label: &str) -> Cow<'_, str> {
    if label.contains(['\\', '"', '\n']) {
        Cow::Owned(
            label
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n"),
        )
    } else {
        Cow::Borrowed(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        let model: Arc<str> = Arc::from("m\"1");
        let provider: Arc<str> = Arc::from("p");
        let series = m.pair(None, &model, Some(&provider));
        m.record_request(&series, 200, Duration::from_millis(30));
        m.record_upstream(
            &series,
            Duration::from_millis(20),
            Duration::from_micros(50),
        );
        m.record_upstream_error(&provider, UpstreamFailure::Timeout);
        let text = m.render();
        assert!(
            text.contains(
                "ai_proxy_requests_total{model=\"m\\\"1\",provider=\"p\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("ai_proxy_request_duration_seconds_bucket{model=\"m\\\"1\",provider=\"p\",le=\"0.05\"} 1"), "{text}");
        assert!(text.contains("ai_proxy_request_duration_seconds_bucket{model=\"m\\\"1\",provider=\"p\",le=\"0.025\"} 0"), "{text}");
        assert!(
            text.contains("ai_proxy_upstream_errors_total{provider=\"p\",kind=\"timeout\"} 1"),
            "{text}"
        );
        assert!(text.contains("ai_proxy_overhead_seconds_count 1"), "{text}");
    }

    /// The histogram as the label maps kept it before the atomics: every bucket at or above
    /// the observation counted at once.
    fn observed(ds: &[Duration]) -> Histogram {
        let mut h = Histogram::default();
        for d in ds {
            let secs = d.as_secs_f64();
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
                if secs <= *bound {
                    *count += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
        h
    }

    #[test]
    fn atomic_histograms_render_as_the_label_maps_did() {
        let ds: Vec<Duration> = (0..2000u64)
            .map(|i| Duration::from_nanos(i * i * 97_531 + i * 13))
            .chain([Duration::ZERO, Duration::from_secs(301)])
            .collect();
        let atomic = AtomicHistogram::default();
        for d in &ds {
            atomic.observe(*d);
        }
        let (mut got, mut want) = (String::new(), String::new());
        atomic.snapshot().render(&mut got, "h", "a=\"b\"");
        observed(&ds).render(&mut want, "h", "a=\"b\"");
        assert_eq!(got, want);
    }

    #[test]
    fn series_outlive_reloads_and_merge_in_label_order() {
        let m = Metrics::default();
        let (model, b, a): (Arc<str>, Arc<str>, Arc<str>) = ("m".into(), "b".into(), "a".into());
        // Two loads of the same config: fresh slots, the same series.
        for _ in 0..2 {
            let slot = Slot::new();
            let series = m.pair(Some(&slot), &model, Some(&b));
            assert!(Arc::ptr_eq(&series, &m.pair(Some(&slot), &model, Some(&b))));
            m.record_request(&series, 200, Duration::from_millis(3));
        }
        let first = m.pair(None, &model, Some(&a));
        m.record_request(&first, 799, Duration::from_millis(3));
        m.record_request(&first, 404, Duration::from_millis(3));
        m.record_request(&m.pair(None, &model, None), 400, Duration::ZERO);
        let tokens = Tokens {
            input: 3,
            output: 0,
            cache_read: 0,
            cache_write: 5,
        };
        m.record_client(&Identity::SharedToken, &first, &tokens, None);
        let text = m.render();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("ai_proxy_requests_total")
                    || l.starts_with("ai_proxy_tokens_total")
                    || l.starts_with("ai_proxy_client_requests_total")
                    || l.starts_with("ai_proxy_request_duration_seconds_count")
            })
            .collect();
        assert_eq!(
            lines,
            [
                "ai_proxy_requests_total{model=\"m\",provider=\"\",status=\"400\"} 1",
                "ai_proxy_requests_total{model=\"m\",provider=\"a\",status=\"404\"} 1",
                "ai_proxy_requests_total{model=\"m\",provider=\"a\",status=\"799\"} 1",
                "ai_proxy_requests_total{model=\"m\",provider=\"b\",status=\"200\"} 2",
                "ai_proxy_request_duration_seconds_count{model=\"m\",provider=\"\"} 1",
                "ai_proxy_request_duration_seconds_count{model=\"m\",provider=\"a\"} 2",
                "ai_proxy_request_duration_seconds_count{model=\"m\",provider=\"b\"} 2",
                "ai_proxy_tokens_total{client=\"operator\",model=\"m\",provider=\"a\",type=\"input\"} 3",
                "ai_proxy_tokens_total{client=\"operator\",model=\"m\",provider=\"a\",type=\"cache_write\"} 5",
                "ai_proxy_client_requests_total{client=\"operator\"} 1",
            ],
            "{text}"
        );
    }
}
