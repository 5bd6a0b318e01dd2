//! The redacted view of the providers and models, as `check-config` prints it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Kind, ProviderConfig, Timeouts};
use crate::secret::Secret;

impl ProviderConfig {
    pub(crate) fn provider_views(&self) -> Vec<ProviderView<'_>> {
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
                base_url: masked_template(&p.base_url_template),
                api_key: p.api_key.as_ref(),
                headers: p.headers.iter().map(|(h, _)| (h.as_str(), "***")).collect(),
                timeouts: p.timeouts,
                retry_ambiguous: p.retry_ambiguous,
            })
            .collect()
    }

    pub(crate) fn model_views(&self) -> Vec<ModelView<'_>> {
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
                        max_tokens: t.max_tokens,
                        max_tokens_cap: t.max_tokens_cap,
                    })
                    .collect(),
            })
            .collect()
    }
}

#[derive(Serialize)]
pub struct ProviderView<'a> {
    name: &'a str,
    kind: Kind,
    status: String,
    base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<&'a Secret>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<&'a str, &'static str>,
    timeouts: Timeouts,
    retry_ambiguous: bool,
}

#[derive(Serialize)]
pub struct ModelView<'a> {
    name: &'a str,
    targets: Vec<TargetView<'a>>,
}

#[derive(Serialize)]
struct TargetView<'a> {
    provider: &'a str,
    model: &'a str,
    /// For translated requests: the default `max_tokens` and its cap (absent when not set).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens_cap: Option<u64>,
}

/// `base_url` as written, each `${VAR}` shown as `***`: a variable's value may be a secret
/// (a key in the URL's path or user part), and masking by template is exact.
fn masked_template(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            rest = &rest[start..];
            break;
        };
        out.push_str("***");
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out.trim_end_matches('/').to_owned()
}
