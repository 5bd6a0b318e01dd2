//! `provider-config.yaml`: the providers (where to send requests, with which key) and the
//! models clients may ask for (which providers serve them, in fallback order).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::{ConfigError, EnvSource};
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

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: DEFAULT_CONNECT_TIMEOUT,
            first_byte: DEFAULT_FIRST_BYTE_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
            keepalive: DEFAULT_KEEPALIVE_INTERVAL,
        }
    }
}

/// Serializes a duration the way the YAML accepts it (`1.5s`, `250ms`).
pub fn serialize_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if d.subsec_millis() == 0 && d.subsec_nanos() == 0 {
        s.serialize_str(&format!("{}s", d.as_secs()))
    } else {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }
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
    by_name: HashMap<Arc<str>, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawTimeouts,
    providers: Vec<RawProvider>,
    models: Vec<RawModel>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    connect_timeout: Option<Dur>,
    first_byte_timeout: Option<Dur>,
    idle_timeout: Option<Dur>,
    keepalive_interval: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: String,
    kind: Kind,
    base_url: String,
    api_key: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    connect_timeout: Option<Dur>,
    first_byte_timeout: Option<Dur>,
    idle_timeout: Option<Dur>,
    keepalive_interval: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: String,
    targets: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    provider: String,
    model: Option<String>,
}

/// A duration written as `250ms`, `10s`, `1.5m`, `1h` or a bare number of seconds.
#[derive(Clone, Copy)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 10s, 2m or a number of seconds")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_secs(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|v| Dur(Duration::from_secs(v)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dur, E> {
                Duration::try_from_secs_f64(v)
                    .map(Dur)
                    .map_err(|_| E::custom(format!("`{v}` is not a valid number of seconds")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).ok_or_else(|| {
                    E::custom(format!(
                        "`{v}` is not a duration: write e.g. 500ms, 10s, 2m or 1h"
                    ))
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    Duration::try_from_secs_f64(value * scale).ok()
}

/// A `${VAR}` reference that could not be expanded.
enum ExpandError {
    Undefined(String),
    Malformed,
}

/// Expands `${VAR}` from `env`; records variables that are defined but empty.
fn expand(value: &str, env: &EnvSource, empty: &mut Vec<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(ExpandError::Malformed)?;
        let name = &after[..end];
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ExpandError::Malformed);
        }
        let found = env
            .get(name)
            .ok_or_else(|| ExpandError::Undefined(name.to_owned()))?;
        if found.value.is_empty() && !empty.iter().any(|e| e == name) {
            empty.push(name.to_owned());
        }
        out.push_str(&found.value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The 1-based line and column of the first occurrence of `needle` outside a comment line.
fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        if line.trim_start().starts_with('#') {
            return None;
        }
        line.find(needle).map(|col| (i + 1, col + 1))
    })
}

/// Checks that a base URL is an absolute http(s) URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("`{url}` must start with https:// or http://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("`{url}` must not have a query string"));
    }
    Ok(())
}

fn valid_provider_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
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
    #[allow(
        clippy::too_many_lines,
        reason = "one linear pass of checks, each naming its key; splitting it scatters the messages"
    )]
    pub fn parse(path: &Path, text: &str, env: &EnvSource) -> Result<Self, ConfigError> {
        let file = path.display();
        let raw: RawFile = serde_norway::from_str(text).map_err(|e| {
            let location = match e.location() {
                Some(l) => format!("{file}:{}:{}", l.line(), l.column()),
                None => file.to_string(),
            };
            ConfigError::Invalid {
                location,
                message: e.to_string(),
            }
        })?;
        // Semantic errors have no parser position: find the offending text in the file and
        // name the key path, so the message still points at a line.
        let at = |key: &str, needle: &str, message: String| {
            let location = match locate(text, needle) {
                Some((line, col)) => format!("{file}:{line}:{col} ({key})"),
                None => format!("{file} ({key})"),
            };
            ConfigError::Invalid { location, message }
        };

        let defaults = Timeouts {
            connect: raw
                .defaults
                .connect_timeout
                .map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.0),
            first_byte: raw
                .defaults
                .first_byte_timeout
                .map_or(DEFAULT_FIRST_BYTE_TIMEOUT, |d| d.0),
            idle: raw
                .defaults
                .idle_timeout
                .map_or(DEFAULT_IDLE_TIMEOUT, |d| d.0),
            keepalive: raw
                .defaults
                .keepalive_interval
                .map_or(DEFAULT_KEEPALIVE_INTERVAL, |d| d.0),
        };

        let mut providers = Vec::with_capacity(raw.providers.len());
        let mut by_name: HashMap<Arc<str>, usize> = HashMap::new();
        for (i, p) in raw.providers.into_iter().enumerate() {
            let key = |field: &str| format!("providers[{i}].{field}");
            if !valid_provider_name(&p.name) {
                return Err(at(
                    &key("name"),
                    &format!("name: {}", p.name),
                    format!(
                        "`{}` is not a valid provider name: use letters, digits, - _ .",
                        p.name
                    ),
                ));
            }
            let name: Arc<str> = Arc::from(p.name.as_str());
            if by_name.contains_key(&name) {
                return Err(at(
                    &key("name"),
                    &format!("name: {}", p.name),
                    format!("duplicate provider name `{}`: names must be unique", p.name),
                ));
            }

            let mut missing = Vec::new();
            let mut expand_field = |field: &str, value: &str| {
                expand(value, env, &mut missing).map_err(|e| match e {
                    ExpandError::Undefined(var) => at(
                        &key(field),
                        &format!("${{{var}}}"),
                        format!("variable `{var}` is not defined: add `{var}=` to {} (leave it empty to keep provider `{}` disabled) or set it in the environment", env.path().display(), p.name),
                    ),
                    ExpandError::Malformed => at(
                        &key(field),
                        value,
                        "malformed `${...}`: write ${NAME} with letters, digits and _".to_owned(),
                    ),
                })
            };
            let base_url = expand_field("base_url", &p.base_url)?;
            let api_key = p
                .api_key
                .as_deref()
                .map(|v| expand_field("api_key", v))
                .transpose()?;
            let mut headers_raw = Vec::with_capacity(p.headers.len());
            for (h, v) in &p.headers {
                headers_raw.push((h.clone(), expand_field(&format!("headers.{h}"), v)?));
            }
            if api_key.as_deref() == Some("") && missing.is_empty() {
                return Err(at(
                    &key("api_key"),
                    "api_key:",
                    format!(
                        "provider `{}` has an empty api_key: use api_key: ${{VAR}} with VAR in .env, or remove the line if the upstream needs no key",
                        p.name
                    ),
                ));
            }
            let configured = missing.is_empty();

            let base_url = base_url.trim_end_matches('/').to_owned();
            if configured {
                check_url(&base_url).map_err(|m| at(&key("base_url"), &p.base_url, m))?;
            }

            let auth_header = match (&api_key, configured) {
                (Some(k), true) => {
                    let (name, value) = match p.kind {
                        Kind::Openai => (http::header::AUTHORIZATION, format!("Bearer {k}")),
                        Kind::Anthropic => (HeaderName::from_static("x-api-key"), k.clone()),
                    };
                    let mut value = HeaderValue::from_str(&value).map_err(|_| {
                        at(
                            &key("api_key"),
                            "api_key:",
                            "the key contains characters not allowed in an HTTP header (a newline or control character?)".to_owned(),
                        )
                    })?;
                    value.set_sensitive(true);
                    Some((name, value))
                }
                _ => None,
            };

            let mut headers = Vec::with_capacity(headers_raw.len());
            if configured {
                for (h, v) in headers_raw {
                    let hn = HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                        at(
                            &key("headers"),
                            &h,
                            format!("`{h}` is not a valid header name"),
                        )
                    })?;
                    let mut hv = HeaderValue::from_str(&v).map_err(|_| {
                        at(
                            &key(&format!("headers.{h}")),
                            &h,
                            "the value contains characters not allowed in an HTTP header"
                                .to_owned(),
                        )
                    })?;
                    hv.set_sensitive(true);
                    headers.push((hn, hv));
                }
            }

            let timeouts = Timeouts {
                connect: p.connect_timeout.map_or(defaults.connect, |d| d.0),
                first_byte: p.first_byte_timeout.map_or(defaults.first_byte, |d| d.0),
                idle: p.idle_timeout.map_or(defaults.idle, |d| d.0),
                keepalive: p.keepalive_interval.map_or(defaults.keepalive, |d| d.0),
            };
            for (field, d) in [
                ("connect_timeout", timeouts.connect),
                ("first_byte_timeout", timeouts.first_byte),
                ("idle_timeout", timeouts.idle),
            ] {
                if d.is_zero() {
                    return Err(at(
                        &key(field),
                        field,
                        format!("{field} must be greater than zero"),
                    ));
                }
            }

            by_name.insert(name.clone(), i);
            providers.push(Arc::new(Provider {
                name,
                kind: p.kind,
                base_url,
                api_key: api_key.filter(|_| configured).map(Secret::new),
                auth_header,
                headers,
                missing_vars: missing,
                timeouts,
            }));
        }

        let mut models = Vec::with_capacity(raw.models.len());
        let mut model_names: HashMap<String, usize> = HashMap::new();
        for (i, m) in raw.models.into_iter().enumerate() {
            let key = |field: &str| format!("models[{i}].{field}");
            if m.name.trim().is_empty() {
                return Err(at(
                    &key("name"),
                    "name:",
                    "a model name cannot be empty".to_owned(),
                ));
            }
            if model_names.insert(m.name.clone(), i).is_some() {
                return Err(at(
                    &key("name"),
                    &format!("name: {}", m.name),
                    format!("duplicate model name `{}`: names must be unique", m.name),
                ));
            }
            if m.targets.is_empty() {
                return Err(at(
                    &key("targets"),
                    &format!("name: {}", m.name),
                    format!(
                        "model `{}` has no targets: list at least one provider",
                        m.name
                    ),
                ));
            }
            let mut targets = Vec::with_capacity(m.targets.len());
            for (j, t) in m.targets.into_iter().enumerate() {
                let Some(&provider) = by_name.get(t.provider.as_str()) else {
                    let known: Vec<&str> = providers.iter().map(|p| &*p.name).collect();
                    return Err(at(
                        &format!("models[{i}].targets[{j}].provider"),
                        &format!("provider: {}", t.provider),
                        format!(
                            "unknown provider `{}`: known providers are [{}]",
                            t.provider,
                            known.join(", ")
                        ),
                    ));
                };
                let upstream = t.model.unwrap_or_else(|| m.name.clone());
                if upstream.trim().is_empty() {
                    return Err(at(
                        &format!("models[{i}].targets[{j}].model"),
                        "model:",
                        "an upstream model name cannot be empty".to_owned(),
                    ));
                }
                targets.push(Target {
                    provider,
                    upstream_model: Arc::from(upstream.as_str()),
                });
            }
            models.push(Model {
                name: Arc::from(m.name.as_str()),
                targets,
            });
        }

        let by_name = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), i))
            .collect();
        Ok(Self {
            providers,
            models,
            by_name,
        })
    }

    /// The model clients call `name`.
    #[must_use]
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.by_name.get(name).map(|&i| &self.models[i])
    }

    /// Providers that are not configured, with the variables to set.
    pub fn not_configured(&self) -> impl Iterator<Item = &Provider> {
        self.providers
            .iter()
            .map(AsRef::as_ref)
            .filter(|p| !p.is_configured())
    }

    pub(super) fn provider_views(&self) -> Vec<ProviderView<'_>> {
        self.providers
            .iter()
            .map(|p| ProviderView {
                name: &p.name,
                kind: p.kind,
                status: if p.is_configured() {
                    "configured".to_owned()
                } else {
                    format!("not configured: set {} in .env", p.missing_vars.join(", "))
                },
                base_url: &p.base_url,
                api_key: p.api_key.as_ref(),
                headers: p.headers.iter().map(|(h, _)| (h.as_str(), "***")).collect(),
                timeouts: p.timeouts,
            })
            .collect()
    }

    pub(super) fn model_views(&self) -> Vec<ModelView<'_>> {
        self.models
            .iter()
            .map(|m| ModelView {
                name: &m.name,
                targets: m
                    .targets
                    .iter()
                    .map(|t| TargetView {
                        provider: &self.providers[t.provider].name,
                        model: &t.upstream_model,
                    })
                    .collect(),
            })
            .collect()
    }
}

#[derive(Serialize)]
pub(super) struct ProviderView<'a> {
    name: &'a str,
    kind: Kind,
    status: String,
    base_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<&'a Secret>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<&'a str, &'static str>,
    timeouts: Timeouts,
}

#[derive(Serialize)]
pub(super) struct ModelView<'a> {
    name: &'a str,
    targets: Vec<TargetView<'a>>,
}

#[derive(Serialize)]
struct TargetView<'a> {
    provider: &'a str,
    model: &'a str,
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

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_mins(2)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("soon"), None);
    }
}
