//! Upstream clients: one pooled HTTP client per provider (rustls with compiled-in roots,
//! HTTP/1.1 and HTTP/2), built at start and on reload, with the configuration they serve.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{Provider, ProviderConfig};
use crate::request_body::UpstreamBody;

/// The pooled client type used for every provider.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

/// Builds the TLS configuration once: ring, TLS 1.2/1.3, Mozilla's roots compiled in (the
/// image is `FROM scratch` and has no CA bundle).
#[must_use]
pub fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A pooled client for one provider.
#[must_use]
pub fn build_client(provider: &Provider, tls: &rustls::ClientConfig) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(provider.timeouts.connect));
    http.set_keepalive(Some(Duration::from_mins(1)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https)
}

/// The `GET /v1/models` body listing `names`.
pub fn models_json<'a>(names: impl Iterator<Item = &'a str>) -> Bytes {
    let data: Vec<serde_json::Value> = names
        .map(|name| {
            serde_json::json!({
                "id": name, "object": "model", "created": 0, "owned_by": "ai-proxy"
            })
        })
        .collect();
    Bytes::from(serde_json::json!({ "object": "list", "data": data }).to_string())
}

/// The providers and models in force, with their clients. Replaced as a whole on SIGHUP;
/// requests in flight keep the one they started with.
pub struct Upstreams {
    /// The validated provider file.
    pub config: ProviderConfig,
    /// One pooled client per provider, in the same order.
    pub clients: Vec<HttpClient>,
    /// The prebuilt `GET /v1/models` body.
    pub models_json: Bytes,
}

impl Upstreams {
    /// Builds a client per provider.
    #[must_use]
    pub fn new(config: ProviderConfig, tls: &rustls::ClientConfig) -> Self {
        let clients = config
            .providers
            .iter()
            .map(|p| build_client(p, tls))
            .collect();
        let models_json = models_json(config.models.iter().map(|m| &*m.name));
        Self {
            config,
            clients,
            models_json,
        }
    }
}
