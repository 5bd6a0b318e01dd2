//! `provider-config.yaml`: the providers (where to send requests, with which key) and the
//! models clients may ask for (which providers serve them, in fallback order) — the
//! validated types, loading, and lookups. The file's shape is in [`schema`], its lowering
//! into these types in [`lower`], the redacted view in [`view`].

pub(crate) mod lower;
mod schema;
mod view;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

pub use view::{ModelView, ProviderView};

use super::duration::serialize_duration;
use super::{ConfigError, EnvSource};
use crate::config::clients::Clients;
use crate::secret::Secret;

/// Which API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The OpenAI API and everything compatible with it (Groq, OpenRouter, vLLM, Ollama…).
    Openai,
    /// The Anthropic Messages API.
    Anthropic,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
        })
    }
}

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait for response headers: long, because a non-streaming reasoning request sends
/// nothing until it is done.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_mins(5);
/// Default longest silence between two body chunks.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_mins(2);
/// Default silence after which a `: keepalive` comment goes to an SSE client.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Per-provider timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    /// TCP (and TLS) connect.
    #[serde(serialize_with = "serialize_duration")]
    pub connect: Duration,
    /// From sending the request to the response headers.
    #[serde(serialize_with = "serialize_duration")]
    pub first_byte: Duration,
    /// Longest silence between body chunks before the response is cut.
    #[serde(serialize_with = "serialize_duration")]
    pub idle: Duration,
    /// Silence on an SSE stream after which `: keepalive` is sent; zero disables it.
    #[serde(serialize_with = "serialize_duration")]
    pub keepalive: Duration,
}

/// A configured upstream.
#[derive(Debug)]
pub struct Provider {
    /// Unique name, used by model targets, logs and metrics.
    pub name: Arc<str>,
    /// API flavour.
    pub kind: Kind,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// `base_url` as written, `${VAR}`s unexpanded, for the redacted view.
    pub base_url_template: String,
    /// The upstream key, if any.
    pub api_key: Option<Secret>,
    /// The prebuilt upstream auth header (`authorization` or `x-api-key`), marked sensitive.
    pub auth_header: Option<(HeaderName, HeaderValue)>,
    /// Extra headers sent on every request (values marked sensitive).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Variables the provider references that are defined but empty. Non-empty means the
    /// provider is "not configured": requests skip it, or get 503 naming these.
    pub missing_vars: Vec<String>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Whether a failure that may have reached the upstream (connection lost after sending,
    /// first-byte timeout) falls back to the next target.
    pub retry_ambiguous: bool,
    /// Every value that came from a `${VAR}` and every header value: masked in logs and errors.
    pub secrets: Vec<Secret>,
}

impl Provider {
    /// Whether requests may go to this provider.
    #[must_use]
    pub fn is_configured(&self) -> bool {
        self.missing_vars.is_empty()
    }
}

/// One step of a model's fallback chain.
#[derive(Debug, Clone)]
pub struct Target {
    /// Index into [`ProviderConfig::providers`].
    pub provider: usize,
    /// The model name sent upstream.
    pub upstream_model: Arc<str>,
    /// `max_tokens` sent when a translated request gives none (Anthropic requires it).
    pub max_tokens: Option<u64>,
    /// The most `max_tokens` a translated request sends to this target.
    pub max_tokens_cap: Option<u64>,
    /// The (model, provider) metric series, resolved by the first request after a load.
    pub metrics: crate::metrics::Slot<crate::metrics::PairSeries>,
}

/// A model clients may ask for.
#[derive(Debug, Clone)]
pub struct Model {
    /// The name clients send as `model`.
    pub name: Arc<str>,
    /// Targets in fallback order.
    pub targets: Vec<Target>,
}

/// The validated `provider-config.yaml`.
#[derive(Debug)]
pub struct ProviderConfig {
    /// Providers in file order.
    pub providers: Vec<Arc<Provider>>,
    /// Models in file order.
    pub models: Vec<Model>,
    /// The `clients:` section: per-client keys, models and limits.
    pub clients: Clients,
    by_name: HashMap<Arc<str>, usize>,
}

impl ProviderConfig {
    /// Reads and validates `path`, expanding `${VAR}` from `env`.
    pub fn load(path: &Path, env: &EnvSource) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text, env)
    }

    /// Validates `text` as the contents of `path`.
    pub fn parse(path: &Path, text: &str, env: &EnvSource) -> Result<Self, ConfigError> {
        let raw: schema::RawFile = serde_norway::from_str(text).map_err(|e| {
            let file = path.display();
            let location = match e.location() {
                Some(l) => format!("{file}:{}:{}", l.line(), l.column()),
                None => file.to_string(),
            };
            ConfigError::Invalid {
                location,
                message: e.to_string(),
            }
        })?;
        lower::lower(raw, env, &lower::Locator::new(path, text))
    }

    fn new(providers: Vec<Arc<Provider>>, models: Vec<Model>, clients: Clients) -> Self {
        let by_name = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), i))
            .collect();
        Self {
            providers,
            models,
            clients,
            by_name,
        }
    }

    /// The model clients call `name`.
    #[must_use]
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.by_name.get(name).map(|&i| &self.models[i])
    }

    /// Every secret value of every provider (keys, header values, `${VAR}` values).
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.providers
            .iter()
            .flat_map(|p| p.secrets.iter().chain(p.api_key.iter()))
            .map(Secret::expose)
    }

    /// Providers that are not configured, with the variables to set.
    pub fn not_configured(&self) -> impl Iterator<Item = &Provider> {
        self.providers
            .iter()
            .map(AsRef::as_ref)
            .filter(|p| !p.is_configured())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn env(pairs: &[(&str, &str)]) -> EnvSource {
        EnvSource::from_pairs(&PathBuf::from("/cfg/.env"), pairs)
    }

    fn parse(text: &str, pairs: &[(&str, &str)]) -> Result<ProviderConfig, String> {
        ProviderConfig::parse(&PathBuf::from("/cfg/p.yaml"), text, &env(pairs))
            .map_err(|e| e.to_string())
    }

    const GOOD: &str = "providers:\n  - name: oa\n    kind: openai\n    base_url: https://api.example.com/v1/\n    api_key: ${AI_PROXY_TEST_KEY_A}\nmodels:\n  - name: m1\n    targets:\n      - provider: oa\n        model: up1\n  - name: m2\n    targets:\n      - provider: oa\n";

    #[test]
    fn accepts_the_canonical_form() {
        let c = parse(GOOD, &[("AI_PROXY_TEST_KEY_A", "sk-1")]).unwrap();
        assert_eq!(c.providers[0].base_url, "https://api.example.com/v1");
        assert_eq!(c.providers[0].api_key.as_ref().unwrap().expose(), "sk-1");
        assert_eq!(&*c.model("m1").unwrap().targets[0].upstream_model, "up1");
        assert_eq!(&*c.model("m2").unwrap().targets[0].upstream_model, "m2");
        assert!(c.model("m3").is_none());
    }

    #[test]
    fn target_max_tokens_fields() {
        let text = GOOD.replace(
            "        model: up1\n",
            "        model: up1\n        max_tokens: 2048\n        max_tokens_cap: 8192\n",
        );
        let c = parse(&text, &[("AI_PROXY_TEST_KEY_A", "sk-1")]).unwrap();
        let t = &c.model("m1").unwrap().targets[0];
        assert_eq!((t.max_tokens, t.max_tokens_cap), (Some(2048), Some(8192)));
        let t = &c.model("m2").unwrap().targets[0];
        assert_eq!((t.max_tokens, t.max_tokens_cap), (None, None));
        // check-config shows them where they are set.
        let views = serde_json::to_value(c.model_views()).unwrap();
        assert_eq!(
            views[0]["targets"][0],
            serde_json::json!({"provider": "oa", "model": "up1",
                "max_tokens": 2048, "max_tokens_cap": 8192})
        );
        assert!(views[1]["targets"][0].get("max_tokens").is_none());
        let zero = GOOD.replace(
            "        model: up1\n",
            "        model: up1\n        max_tokens_cap: 0\n",
        );
        let e = parse(&zero, &[("AI_PROXY_TEST_KEY_A", "sk-1")]).unwrap_err();
        assert!(e.contains("models[0].targets[0].max_tokens_cap"), "{e}");
    }

    #[test]
    fn empty_key_means_not_configured() {
        let c = parse(GOOD, &[("AI_PROXY_TEST_KEY_A", "")]).unwrap();
        assert_eq!(c.providers[0].missing_vars, vec!["AI_PROXY_TEST_KEY_A"]);
        assert!(c.providers[0].auth_header.is_none());
    }

    #[test]
    fn undefined_variable_names_line_and_variable() {
        let e = parse(GOOD, &[]).unwrap_err();
        assert!(e.contains("/cfg/p.yaml:5:"), "{e}");
        assert!(e.contains("AI_PROXY_TEST_KEY_A"), "{e}");
        assert!(e.contains("providers[0].api_key"), "{e}");
    }

    #[test]
    fn unknown_field_names_line_and_column() {
        let text = GOOD.replace("    kind: openai", "    kind: openai\n    bse_url: x");
        let e = parse(&text, &[("AI_PROXY_TEST_KEY_A", "k")]).unwrap_err();
        assert!(e.starts_with("/cfg/p.yaml:4:5: "), "{e}");
        assert!(e.contains("unknown field `bse_url`"), "{e}");
    }

    #[test]
    fn rejects_unknown_provider_duplicates_and_bad_urls() {
        let k = &[("AI_PROXY_TEST_KEY_A", "k")];
        let e = parse(
            &GOOD.replace("provider: oa\n        model", "provider: ob\n        model"),
            k,
        )
        .unwrap_err();
        assert!(
            e.contains("unknown provider `ob`") && e.contains(":9:"),
            "{e}"
        );
        let e = parse(&GOOD.replace("name: m2", "name: m1"), k).unwrap_err();
        assert!(e.contains("duplicate model name `m1`"), "{e}");
        let e = parse(&GOOD.replace("https://api.example.com/v1/", "ftp://x"), k).unwrap_err();
        assert!(e.contains("providers[0].base_url"), "{e}");
        let e = parse(&GOOD.replace("kind: openai", "kind: opnai"), k).unwrap_err();
        assert!(e.contains(":3:"), "{e}");
    }
}
