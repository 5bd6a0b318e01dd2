//! Lowering: turns the file as written ([`super::schema`]) into the validated
//! [`ProviderConfig`] — `${VAR}`s expanded, defaults applied, per provider then per model —
//! with every error naming the file, line, column and key path.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use super::schema::{RawFile, RawModel, RawProvider, RawTimeouts};
use super::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_FIRST_BYTE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_KEEPALIVE_INTERVAL, Kind, Model, Provider, ProviderConfig, Target, Timeouts,
};
use crate::config::expand::{ExpandError, Found, expand};
use crate::config::{ConfigError, EnvSource};
use crate::headers::X_API_KEY;
use crate::secret::Secret;

/// Points errors at the file: semantic errors have no parser position, so the offending
/// text is found in the file and the key path named, and the message still points at a line.
pub struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl<'a> Locator<'a> {
    /// For `text`, read from `path`.
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        Self { path, text }
    }

    /// An error at the first occurrence of `needle`, for `key`.
    pub fn at(&self, key: &str, needle: &str, message: String) -> ConfigError {
        let file = self.path.display();
        let location = match locate(self.text, needle) {
            Some((line, col)) => format!("{file}:{line}:{col} ({key})"),
            None => format!("{file} ({key})"),
        };
        ConfigError::Invalid { location, message }
    }
}

/// Lowers the whole file.
pub fn lower(
    raw: RawFile,
    env: &EnvSource,
    loc: &Locator<'_>,
) -> Result<ProviderConfig, ConfigError> {
    let defaults = timeouts(&raw.defaults, &Timeouts::default());
    let mut providers: Vec<Arc<Provider>> = Vec::with_capacity(raw.providers.len());
    let mut by_name: HashMap<Arc<str>, usize> = HashMap::new();
    for (i, p) in raw.providers.into_iter().enumerate() {
        if by_name.contains_key(p.name.as_str()) && valid_provider_name(&p.name) {
            return Err(loc.at(
                &format!("providers[{i}].name"),
                &format!("name: {}", p.name),
                format!("duplicate provider name `{}`: names must be unique", p.name),
            ));
        }
        let provider = provider(i, &p, &defaults, env, loc)?;
        by_name.insert(provider.name.clone(), i);
        providers.push(Arc::new(provider));
    }
    let mut models = Vec::with_capacity(raw.models.len());
    let mut model_names: HashMap<String, usize> = HashMap::new();
    for (i, m) in raw.models.into_iter().enumerate() {
        if model_names.insert(m.name.clone(), i).is_some() {
            return Err(loc.at(
                &format!("models[{i}].name"),
                &format!("name: {}", m.name),
                format!("duplicate model name `{}`: names must be unique", m.name),
            ));
        }
        models.push(model(i, m, &providers, &by_name, loc)?);
    }
    let clients = crate::config::clients::lower(raw.clients, &models, loc)?;
    Ok(ProviderConfig::new(providers, models, clients))
}

/// `raw`'s timeouts, each falling back to `base`.
fn timeouts(raw: &RawTimeouts, base: &Timeouts) -> Timeouts {
    Timeouts {
        connect: raw.connect_timeout.map_or(base.connect, |d| d.0),
        first_byte: raw.first_byte_timeout.map_or(base.first_byte, |d| d.0),
        idle: raw.idle_timeout.map_or(base.idle, |d| d.0),
        keepalive: raw.keepalive_interval.map_or(base.keepalive, |d| d.0),
    }
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

/// Lowers `providers[i]`.
fn provider(
    i: usize,
    p: &RawProvider,
    defaults: &Timeouts,
    env: &EnvSource,
    loc: &Locator<'_>,
) -> Result<Provider, ConfigError> {
    let key = |field: &str| format!("providers[{i}].{field}");
    if !valid_provider_name(&p.name) {
        return Err(loc.at(
            &key("name"),
            &format!("name: {}", p.name),
            format!(
                "`{}` is not a valid provider name: use letters, digits, - _ .",
                p.name
            ),
        ));
    }
    let Expanded {
        base_url,
        api_key,
        headers: headers_raw,
        found,
    } = expand_fields(i, p, env, loc)?;
    let missing = found.empty;
    let mut secrets: Vec<Secret> = found.values.into_iter().map(Secret::new).collect();
    secrets.extend(headers_raw.iter().map(|(_, v)| Secret::new(v.as_str())));
    // An error message quoting an expanded value must not print it.
    let masked = |m: String| {
        let mut values: Vec<&str> = secrets.iter().map(Secret::expose).collect();
        crate::secret::redact(&m, &mut values)
    };
    if api_key.as_deref() == Some("") && missing.is_empty() {
        return Err(loc.at(
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
    let (auth_header, headers) = if configured {
        check_url(&base_url).map_err(|m| loc.at(&key("base_url"), &p.base_url, masked(m)))?;
        let auth = api_key
            .as_deref()
            .map(|k| auth_header(p.kind, k).map_err(|m| loc.at(&key("api_key"), "api_key:", m)))
            .transpose()?;
        (auth, extra_headers(headers_raw, &key, loc)?)
    } else {
        (None, Vec::new())
    };
    let timeouts = provider_timeouts(i, p, defaults, loc)?;
    Ok(Provider {
        name: Arc::from(p.name.as_str()),
        kind: p.kind,
        base_url,
        base_url_template: p.base_url.clone(),
        api_key: api_key.filter(|_| configured).map(Secret::new),
        auth_header,
        headers,
        missing_vars: missing,
        timeouts,
        retry_ambiguous: p.retry_ambiguous,
        secrets,
    })
}

/// A provider's string fields with `${VAR}` expanded.
struct Expanded {
    base_url: String,
    api_key: Option<String>,
    headers: Vec<(String, String)>,
    /// Variables referenced, empty ones and the values substituted.
    found: Found,
}

/// Expands `${VAR}` in `providers[i]`'s `base_url`, `api_key` and `headers`.
fn expand_fields(
    i: usize,
    p: &RawProvider,
    env: &EnvSource,
    loc: &Locator<'_>,
) -> Result<Expanded, ConfigError> {
    let key = |field: &str| format!("providers[{i}].{field}");
    let mut found = Found::default();
    let mut expand_field = |field: &str, value: &str| {
        expand(value, env, &mut found).map_err(|e| match e {
            ExpandError::Undefined(var) => loc.at(
                &key(field),
                &format!("${{{var}}}"),
                format!("variable `{var}` is not defined: add `{var}=` to {} (leave it empty to keep provider `{}` disabled) or set it in the environment", env.path().display(), p.name),
            ),
            ExpandError::Malformed => loc.at(
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
    Ok(Expanded {
        base_url,
        api_key,
        headers: headers_raw,
        found,
    })
}

/// `providers[i]`'s timeouts over `defaults`; the ones that must not be zero checked.
fn provider_timeouts(
    i: usize,
    p: &RawProvider,
    defaults: &Timeouts,
    loc: &Locator<'_>,
) -> Result<Timeouts, ConfigError> {
    let timeouts = timeouts(
        &RawTimeouts {
            connect_timeout: p.connect_timeout,
            first_byte_timeout: p.first_byte_timeout,
            idle_timeout: p.idle_timeout,
            keepalive_interval: p.keepalive_interval,
        },
        defaults,
    );
    for (field, d) in [
        ("connect_timeout", timeouts.connect),
        ("first_byte_timeout", timeouts.first_byte),
        ("idle_timeout", timeouts.idle),
    ] {
        if d.is_zero() {
            return Err(loc.at(
                &format!("providers[{i}].{field}"),
                field,
                format!("{field} must be greater than zero"),
            ));
        }
    }
    Ok(timeouts)
}

/// The prebuilt upstream auth header for `key`, marked sensitive.
fn auth_header(kind: Kind, key: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = match kind {
        Kind::Openai => (http::header::AUTHORIZATION, format!("Bearer {key}")),
        Kind::Anthropic => (X_API_KEY, key.to_owned()),
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        "the key contains characters not allowed in an HTTP header (a newline or control character?)".to_owned()
    })?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// The provider's extra headers, values marked sensitive.
fn extra_headers(
    raw: Vec<(String, String)>,
    key: &dyn Fn(&str) -> String,
    loc: &Locator<'_>,
) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
    let mut headers = Vec::with_capacity(raw.len());
    for (h, v) in raw {
        let hn = HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
            loc.at(
                &key("headers"),
                &h,
                format!("`{h}` is not a valid header name"),
            )
        })?;
        let mut hv = HeaderValue::from_str(&v).map_err(|_| {
            loc.at(
                &key(&format!("headers.{h}")),
                &h,
                "the value contains characters not allowed in an HTTP header".to_owned(),
            )
        })?;
        hv.set_sensitive(true);
        headers.push((hn, hv));
    }
    Ok(headers)
}

/// Lowers `models[i]`, resolving its targets' providers.
fn model(
    i: usize,
    m: RawModel,
    providers: &[Arc<Provider>],
    by_name: &HashMap<Arc<str>, usize>,
    loc: &Locator<'_>,
) -> Result<Model, ConfigError> {
    let key = |field: &str| format!("models[{i}].{field}");
    if m.name.trim().is_empty() {
        return Err(loc.at(
            &key("name"),
            "name:",
            "a model name cannot be empty".to_owned(),
        ));
    }
    if m.targets.is_empty() {
        return Err(loc.at(
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
            return Err(loc.at(
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
            return Err(loc.at(
                &format!("models[{i}].targets[{j}].model"),
                "model:",
                "an upstream model name cannot be empty".to_owned(),
            ));
        }
        for (key, value) in [
            ("max_tokens", t.max_tokens),
            ("max_tokens_cap", t.max_tokens_cap),
        ] {
            if value == Some(0) {
                return Err(loc.at(
                    &format!("models[{i}].targets[{j}].{key}"),
                    &format!("{key}:"),
                    format!("`{key}` must be at least 1"),
                ));
            }
        }
        targets.push(Target {
            provider,
            upstream_model: Arc::from(upstream.as_str()),
            max_tokens: t.max_tokens,
            max_tokens_cap: t.max_tokens_cap,
            metrics: crate::metrics::Slot::new(),
        });
    }
    Ok(Model {
        name: Arc::from(m.name.as_str()),
        targets,
    })
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
