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
                base_url: &p.base_url,
                api_key: p.api_key.as_ref(),
                headers: p.headers.iter().map(|(h, _)| (h.as_str(), "***")).collect(),
                timeouts: p.timeouts,
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
    base_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<&'a Secret>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<&'a str, &'static str>,
    timeouts: Timeouts,
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
}
