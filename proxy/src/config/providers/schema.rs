//! The shape of `provider-config.yaml` as written, for serde: every field the file may
//! have, unknown fields refused.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Kind;
use crate::config::duration::Dur;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    #[serde(default)]
    pub defaults: RawTimeouts,
    pub providers: Vec<RawProvider>,
    pub models: Vec<RawModel>,
    #[serde(default)]
    pub clients: Vec<crate::config::clients::RawClient>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub connect_timeout: Option<Dur>,
    pub first_byte_timeout: Option<Dur>,
    pub idle_timeout: Option<Dur>,
    pub keepalive_interval: Option<Dur>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    pub kind: Kind,
    pub base_url: String,
    pub api_key: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub connect_timeout: Option<Dur>,
    pub first_byte_timeout: Option<Dur>,
    pub idle_timeout: Option<Dur>,
    pub keepalive_interval: Option<Dur>,
    #[serde(default)]
    pub retry_ambiguous: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: String,
    pub targets: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub provider: String,
    pub model: Option<String>,
    pub max_tokens: Option<u64>,
    pub max_tokens_cap: Option<u64>,
}
