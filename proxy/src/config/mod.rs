//! Loads and validates the two configuration files: `.env` (process settings and secrets)
//! and `provider-config.yaml` (providers and models).

pub mod dotenv;
pub mod providers;

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use dotenv::{EnvSource, Origin};
pub use providers::{Kind, Model, Provider, ProviderConfig, Target, Timeouts};

use crate::secret::Secret;

/// Name of the settings file inside the config directory.
pub const ENV_FILE: &str = ".env";
/// Name of the providers file inside the config directory.
pub const PROVIDERS_FILE: &str = "provider-config.yaml";
/// The value `.env.example` ships with; the proxy refuses to start with it.
pub const AUTH_TOKEN_PLACEHOLDER: &str = "replace-with-a-long-random-token";
/// The shortest client token accepted.
pub const MIN_AUTH_TOKEN_LEN: usize = 16;

/// A configuration problem, located as precisely as we can (file, line, column, key).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file was read but is wrong.
    #[error("{location}: {message}")]
    Invalid {
        /// `file[:line[:column]]` and, where known, the key.
        location: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (default).
    Json,
    /// `key=value` pairs, for reading in a terminal.
    Text,
}

/// Process settings from `.env` (the process environment wins). Read once at start.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Address to listen on (`BIND`, default `0.0.0.0`).
    pub bind: IpAddr,
    /// Port to listen on (`PORT`, required).
    pub port: u16,
    /// The token clients must send (`AUTH_TOKEN`, required).
    pub auth_token: Secret,
    /// `LOG_FORMAT`: `json` (default) or `text`.
    pub log_format: LogFormat,
    /// `MAX_BODY_BYTES`: largest accepted request body (default 16 MiB).
    pub max_body_bytes: usize,
    /// `SHUTDOWN_GRACE_SECS`: how long in-flight requests may finish after SIGTERM (default 8).
    #[serde(serialize_with = "providers::serialize_duration")]
    pub shutdown_grace: Duration,
}

/// Default `MAX_BODY_BYTES`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Default `SHUTDOWN_GRACE_SECS`: below docker's 10 s stop timeout, so we exit on our own.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 8;

impl Settings {
    /// Reads the settings from `env`, naming the file and key on every error.
    #[allow(
        clippy::too_many_lines,
        reason = "one block per key, read top to bottom"
    )]
    pub fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let invalid = |key: &str, origin: Option<Origin>, message: String| ConfigError::Invalid {
            location: env.describe(key, origin),
            message,
        };

        let port = match env.get("PORT") {
            None => {
                return Err(invalid(
                    "PORT",
                    None,
                    "not set: add a line like PORT=8080".to_owned(),
                ));
            }
            Some(v) => match v.value.trim().parse::<u16>() {
                // 0 lets the OS pick a free port (the test suites use it and read the
                // chosen port from the `listening` log line).
                Ok(p) => p,
                Err(_) => {
                    return Err(invalid(
                        "PORT",
                        Some(v.origin),
                        format!("`{}` is not a port number between 1 and 65535", v.value),
                    ));
                }
            },
        };

        let auth_token = match env.get("AUTH_TOKEN") {
            None => {
                return Err(invalid(
                    "AUTH_TOKEN",
                    None,
                    "not set: add AUTH_TOKEN=<random string of at least 16 characters>, e.g. from `openssl rand -hex 32`".to_owned(),
                ));
            }
            Some(v) => {
                let token = v.value.trim();
                let problem = if token.is_empty() {
                    Some("is empty".to_owned())
                } else if token == AUTH_TOKEN_PLACEHOLDER {
                    Some("is still the placeholder from .env.example".to_owned())
                } else if token.chars().count() < MIN_AUTH_TOKEN_LEN {
                    Some(format!("is shorter than {MIN_AUTH_TOKEN_LEN} characters"))
                } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
                    Some(
                        "must be printable ASCII without spaces (it is sent in an HTTP header)"
                            .to_owned(),
                    )
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(invalid(
                        "AUTH_TOKEN",
                        Some(v.origin),
                        format!(
                            "{problem}: set it to a random string of at least {MIN_AUTH_TOKEN_LEN} characters, e.g. from `openssl rand -hex 32`"
                        ),
                    ));
                }
                Secret::new(token)
            }
        };

        let bind = match env.get("BIND") {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(v) if v.value.trim().is_empty() => IpAddr::from([0, 0, 0, 0]),
            Some(v) => v.value.trim().parse().map_err(|_| {
                invalid(
                    "BIND",
                    Some(v.origin),
                    format!(
                        "`{}` is not an IP address (e.g. 0.0.0.0, 127.0.0.1 or ::)",
                        v.value
                    ),
                )
            })?,
        };

        let log_format = match env.get("LOG_FORMAT") {
            None => LogFormat::Json,
            Some(v) => match v.value.trim() {
                "" | "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => {
                    return Err(invalid(
                        "LOG_FORMAT",
                        Some(v.origin),
                        format!("`{other}` is not a log format: use json or text"),
                    ));
                }
            },
        };

        let max_body_bytes = match env.get("MAX_BODY_BYTES") {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(v) if v.value.trim().is_empty() => DEFAULT_MAX_BODY_BYTES,
            Some(v) => match v.value.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(invalid(
                        "MAX_BODY_BYTES",
                        Some(v.origin),
                        format!("`{}` is not a positive number of bytes", v.value),
                    ));
                }
            },
        };

        let shutdown_grace = match env.get("SHUTDOWN_GRACE_SECS") {
            None => Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS),
            Some(v) if v.value.trim().is_empty() => {
                Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS)
            }
            Some(v) => match v.value.trim().parse::<u64>() {
                Ok(n) if n <= 300 => Duration::from_secs(n),
                _ => {
                    return Err(invalid(
                        "SHUTDOWN_GRACE_SECS",
                        Some(v.origin),
                        format!(
                            "`{}` is not a number of seconds between 0 and 300 (keep it below `docker stop`'s timeout, 10 s by default)",
                            v.value
                        ),
                    ));
                }
            },
        };

        Ok(Self {
            bind,
            port,
            auth_token,
            log_format,
            max_body_bytes,
            shutdown_grace,
        })
    }
}

/// Everything loaded from a config directory.
#[derive(Debug)]
pub struct Config {
    /// The directory both files were read from.
    pub dir: PathBuf,
    /// `.env` settings.
    pub settings: Settings,
    /// `provider-config.yaml`.
    pub providers: ProviderConfig,
}

impl Config {
    /// Loads and validates `.env` and `provider-config.yaml` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let env = EnvSource::load(&dir.join(ENV_FILE))?;
        let settings = Settings::from_env(&env)?;
        let providers = ProviderConfig::load(&dir.join(PROVIDERS_FILE), &env)?;
        Ok(Self {
            dir: dir.to_owned(),
            settings,
            providers,
        })
    }

    /// Re-reads `provider-config.yaml` (with `${VAR}`s from a fresh read of `.env`), for
    /// SIGHUP. Settings from `.env` itself (port, token…) need a restart.
    pub fn reload_providers(dir: &Path) -> Result<ProviderConfig, ConfigError> {
        let env = EnvSource::load(&dir.join(ENV_FILE))?;
        ProviderConfig::load(&dir.join(PROVIDERS_FILE), &env)
    }

    /// The effective configuration as YAML with every secret redacted, for `check-config`.
    #[must_use]
    pub fn redacted_yaml(&self) -> String {
        #[derive(Serialize)]
        struct View<'a> {
            config_dir: String,
            settings: &'a Settings,
            providers: Vec<providers::ProviderView<'a>>,
            models: Vec<providers::ModelView<'a>>,
        }
        let view = View {
            config_dir: self.dir.display().to_string(),
            settings: &self.settings,
            providers: self.providers.provider_views(),
            models: self.providers.model_views(),
        };
        serde_norway::to_string(&view).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}
