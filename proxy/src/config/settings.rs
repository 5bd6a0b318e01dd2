//! `.env` process settings: the table of keys (name, default, how a value is read), read
//! once at start with errors naming the file, line and key.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::duration::serialize_duration;
use super::{ConfigError, EnvSource};
use crate::secret::Secret;

/// The value `.env.example` ships with; the proxy refuses to start with it.
pub const AUTH_TOKEN_PLACEHOLDER: &str = "replace-with-a-long-random-token";
/// The shortest client token accepted.
pub const MIN_AUTH_TOKEN_LEN: usize = 16;
/// Default `MAX_BODY_BYTES`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Default `SHUTDOWN_GRACE_SECS`: below docker's 10 s stop timeout, so we exit on our own.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 8;

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
    #[serde(serialize_with = "serialize_duration")]
    pub shutdown_grace: Duration,
}

/// One `.env` key: its name, what an absent (or, with a default, empty) value means, and how
/// a value is read. A parser returns what is wrong and what to do.
struct Key<T> {
    name: &'static str,
    /// Used when the key is absent or empty; `None` makes the key required.
    default: Option<T>,
    /// The message for a required key that is absent.
    missing: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

// The table of keys.
const PORT: Key<u16> = Key {
    name: "PORT",
    default: None,
    missing: "not set: add a line like PORT=8080",
    parse: parse_port,
};
const AUTH_TOKEN: Key<Secret> = Key {
    name: "AUTH_TOKEN",
    default: None,
    missing: "not set: add AUTH_TOKEN=<random string of at least 16 characters>, e.g. from `openssl rand -hex 32`",
    parse: parse_token,
};
const BIND: Key<IpAddr> = Key {
    name: "BIND",
    default: Some(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
    missing: "",
    parse: parse_bind,
};
const LOG_FORMAT: Key<LogFormat> = Key {
    name: "LOG_FORMAT",
    default: Some(LogFormat::Json),
    missing: "",
    parse: parse_log_format,
};
const MAX_BODY_BYTES: Key<usize> = Key {
    name: "MAX_BODY_BYTES",
    default: Some(DEFAULT_MAX_BODY_BYTES),
    missing: "",
    parse: parse_positive_bytes,
};
const SHUTDOWN_GRACE_SECS: Key<Duration> = Key {
    name: "SHUTDOWN_GRACE_SECS",
    default: Some(Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS)),
    missing: "",
    parse: parse_grace,
};

impl Settings {
    /// Reads the settings from `env`, naming the file and key on every error.
    pub fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            port: PORT.read(env)?,
            auth_token: AUTH_TOKEN.read(env)?,
            bind: BIND.read(env)?,
            log_format: LOG_FORMAT.read(env)?,
            max_body_bytes: MAX_BODY_BYTES.read(env)?,
            shutdown_grace: SHUTDOWN_GRACE_SECS.read(env)?,
        })
    }
}

impl<T: Clone> Key<T> {
    fn read(&self, env: &EnvSource) -> Result<T, ConfigError> {
        let value = env.get(self.name);
        match (&value, &self.default) {
            (None, Some(default)) => return Ok(default.clone()),
            (Some(v), Some(default)) if v.value.trim().is_empty() => return Ok(default.clone()),
            _ => {}
        }
        let Some(v) = value else {
            return Err(ConfigError::Invalid {
                location: env.describe(self.name, None),
                message: self.missing.to_owned(),
            });
        };
        (self.parse)(&v.value).map_err(|message| ConfigError::Invalid {
            location: env.describe(self.name, Some(v.origin)),
            message,
        })
    }
}

fn parse_port(v: &str) -> Result<u16, String> {
    // 0 lets the OS pick a free port (the test suites use it and read the chosen port from
    // the `listening` log line).
    v.trim()
        .parse()
        .map_err(|_| format!("`{v}` is not a port number between 1 and 65535"))
}

fn parse_token(v: &str) -> Result<Secret, String> {
    let token = v.trim();
    let problem = if token.is_empty() {
        "is empty".to_owned()
    } else if token == AUTH_TOKEN_PLACEHOLDER {
        "is still the placeholder from .env.example".to_owned()
    } else if token.chars().count() < MIN_AUTH_TOKEN_LEN {
        format!("is shorter than {MIN_AUTH_TOKEN_LEN} characters")
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        "must be printable ASCII without spaces (it is sent in an HTTP header)".to_owned()
    } else {
        return Ok(Secret::new(token));
    };
    Err(format!(
        "{problem}: set it to a random string of at least {MIN_AUTH_TOKEN_LEN} characters, e.g. from `openssl rand -hex 32`"
    ))
}

fn parse_bind(v: &str) -> Result<IpAddr, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("`{v}` is not an IP address (e.g. 0.0.0.0, 127.0.0.1 or ::)"))
}

fn parse_log_format(v: &str) -> Result<LogFormat, String> {
    match v.trim() {
        "json" => Ok(LogFormat::Json),
        "text" => Ok(LogFormat::Text),
        other => Err(format!("`{other}` is not a log format: use json or text")),
    }
}

fn parse_positive_bytes(v: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{v}` is not a positive number of bytes")),
    }
}

fn parse_grace(v: &str) -> Result<Duration, String> {
    match v.trim().parse::<u64>() {
        Ok(n) if n <= 300 => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "`{v}` is not a number of seconds between 0 and 300 (keep it below `docker stop`'s timeout, 10 s by default)"
        )),
    }
}
