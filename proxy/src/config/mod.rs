//! Loads and validates the two configuration files: `.env` (process settings and secrets)
//! and `provider-config.yaml` (providers and models).

pub mod clients;
pub mod dotenv;
pub mod duration;
pub mod expand;
pub mod providers;
pub mod settings;

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use dotenv::{EnvSource, Origin};
pub use providers::{Kind, Model, Provider, ProviderConfig, Target, Timeouts};
pub use settings::{AUTH_TOKEN_PLACEHOLDER, LogFormat, MIN_AUTH_TOKEN_LEN, Settings};

/// Name of the settings file inside the config directory.
pub const ENV_FILE: &str = ".env";
/// Name of the providers file inside the config directory.
pub const PROVIDERS_FILE: &str = "provider-config.yaml";

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
            #[serde(skip_serializing_if = "Vec::is_empty")]
            clients: Vec<clients::ClientView<'a>>,
        }
        let view = View {
            config_dir: self.dir.display().to_string(),
            settings: &self.settings,
            providers: self.providers.provider_views(),
            models: self.providers.model_views(),
            clients: self.providers.clients.views(),
        };
        serde_norway::to_string(&view).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}
