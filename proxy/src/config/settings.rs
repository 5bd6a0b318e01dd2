//! `.env` process settings: the table of keys (name, default, how a value is read), read
//! once at start with errors naming the file, line and key.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::duration::{parse_bounded, serialize_duration};
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
/// Default `MAX_CONNECTIONS`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default `MAX_INFLIGHT_BODY_BYTES`: a quarter of the 512 MiB container limit.
pub const DEFAULT_MAX_INFLIGHT_BODY_BYTES: usize = 128 * 1024 * 1024;
/// The largest `MAX_INFLIGHT_BODY_BYTES` (and so `MAX_BODY_BYTES`): 4 GiB - 1.
pub const MAX_INFLIGHT_BODY_BYTES_LIMIT: usize = u32::MAX as usize;

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
    /// Client connections and their deadlines.
    #[serde(flatten)]
    pub connections: ConnectionLimits,
    /// `MAX_INFLIGHT_BODY_BYTES`: request body bytes buffered at once, all requests together.
    pub max_inflight_body_bytes: usize,
    /// `BODY_READ_TIMEOUT`: longest time to receive a request body (default 60 s).
    #[serde(serialize_with = "serialize_duration")]
    pub body_read_timeout: Duration,
    /// `LOG_QUEUE_LINES`: log lines waiting for the writer before new ones are dropped.
    pub log_queue_lines: usize,
    /// `LOG_REJECTED_PER_SEC`: log lines per second for 401 and 404 responses; the rest are
    /// counted and summarised.
    pub log_rejected_per_sec: u32,
    /// `CONFIG_POLL_INTERVAL`: how often `provider-config.yaml` is checked for a change (0
    /// disables).
    #[serde(serialize_with = "serialize_duration")]
    pub config_poll_interval: Duration,
    /// `RATE_LIMIT_WINDOW`: the window of the clients' `requests_per_minute` and
    /// `tokens_per_minute` (default 1 minute; shorter only for tests).
    #[serde(serialize_with = "serialize_duration")]
    pub rate_limit_window: Duration,
    /// How the listener speaks: plain HTTP, or TLS with the admin's certificate files.
    pub tls: TlsMode,
}

/// Let's Encrypt's production directory, the default `ACME_DIRECTORY`.
pub const LETSENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory, `ACME_DIRECTORY=letsencrypt-staging`.
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The listener's protocol, from `TLS_CERT_FILE` + `TLS_KEY_FILE` or `TLS_DOMAINS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain HTTP (neither key set).
    Off,
    /// TLS with the admin's PEM chain and key, re-read on SIGHUP and when they change.
    Files {
        /// `TLS_CERT_FILE`: the certificate chain, leaf first (PEM).
        cert_file: PathBuf,
        /// `TLS_KEY_FILE`: the private key (PEM: PKCS#8, PKCS#1 or SEC1).
        key_file: PathBuf,
    },
    /// TLS with certificates obtained and renewed over ACME (TLS-ALPN-01 on this port).
    Acme(AcmeSettings),
}

/// `TLS_DOMAINS` mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcmeSettings {
    /// `TLS_DOMAINS`: the names of the one certificate.
    pub domains: Vec<String>,
    /// `ACME_EMAIL`: the account's contact, optional.
    pub email: Option<String>,
    /// `ACME_DIRECTORY`: the CA's directory URL.
    pub directory: String,
    /// `ACME_CA_FILE`: PEM roots trusted for the ACME server itself (default: the public roots).
    pub ca_file: Option<PathBuf>,
    /// `TLS_CACHE_DIR`: account and certificate keys (default `/app/tls`).
    pub cache_dir: PathBuf,
    /// `ACME_RETRY_BASE`: the first retry after a failure; then ×10, ×100, then daily. Also the
    /// shortest wait between two fetches of the CA's renewal window (ARI).
    #[serde(serialize_with = "serialize_duration")]
    pub retry_base: Duration,
}

impl TlsMode {
    /// Whether the listener speaks TLS.
    #[must_use]
    pub fn is_on(&self) -> bool {
        !matches!(self, Self::Off)
    }
}

/// Limits on client connections.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConnectionLimits {
    /// `MAX_CONNECTIONS`: open client connections at most.
    pub max_connections: usize,
    /// `REQUEST_HEADER_TIMEOUT`: from accept (or the end of the previous response) to a
    /// complete request head.
    #[serde(serialize_with = "serialize_duration")]
    pub request_header_timeout: Duration,
    /// `CLIENT_IDLE_TIMEOUT`: a connection with no request in flight for this long is closed
    /// (HTTP/1 keep-alive and HTTP/2 alike).
    #[serde(serialize_with = "serialize_duration")]
    pub client_idle_timeout: Duration,
    /// `HTTP2_KEEPALIVE_INTERVAL`: PING an HTTP/2 client this often.
    #[serde(serialize_with = "serialize_duration")]
    pub http2_keepalive_interval: Duration,
    /// `HTTP2_KEEPALIVE_TIMEOUT`: close an HTTP/2 connection whose PING is not answered in this time.
    #[serde(serialize_with = "serialize_duration")]
    pub http2_keepalive_timeout: Duration,
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
const BIND: Key<IpAddr> = optional(
    "BIND",
    IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    parse_bind,
);
const LOG_FORMAT: Key<LogFormat> = optional("LOG_FORMAT", LogFormat::Json, parse_log_format);
const MAX_BODY_BYTES: Key<usize> = optional(
    "MAX_BODY_BYTES",
    DEFAULT_MAX_BODY_BYTES,
    parse_positive_bytes,
);
const SHUTDOWN_GRACE_SECS: Key<Duration> = optional(
    "SHUTDOWN_GRACE_SECS",
    Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS),
    parse_grace,
);

const MAX_CONNECTIONS: Key<usize> = optional(
    "MAX_CONNECTIONS",
    DEFAULT_MAX_CONNECTIONS,
    parse_connections,
);
const REQUEST_HEADER_TIMEOUT: Key<Duration> = duration_key("REQUEST_HEADER_TIMEOUT", 10);
const CLIENT_IDLE_TIMEOUT: Key<Duration> = duration_key("CLIENT_IDLE_TIMEOUT", 60);
const HTTP2_KEEPALIVE_INTERVAL: Key<Duration> = duration_key("HTTP2_KEEPALIVE_INTERVAL", 30);
const HTTP2_KEEPALIVE_TIMEOUT: Key<Duration> = duration_key("HTTP2_KEEPALIVE_TIMEOUT", 20);
const MAX_INFLIGHT_BODY_BYTES: Key<usize> = optional(
    "MAX_INFLIGHT_BODY_BYTES",
    DEFAULT_MAX_INFLIGHT_BODY_BYTES,
    parse_positive_bytes,
);
const BODY_READ_TIMEOUT: Key<Duration> = duration_key("BODY_READ_TIMEOUT", 60);
const LOG_QUEUE_LINES: Key<usize> = optional("LOG_QUEUE_LINES", 4096, parse_queue);
const LOG_REJECTED_PER_SEC: Key<u32> = optional("LOG_REJECTED_PER_SEC", 20, parse_per_sec);
const CONFIG_POLL_INTERVAL: Key<Duration> = optional(
    "CONFIG_POLL_INTERVAL",
    Duration::from_secs(5),
    parse_bounded,
);

/// A key with a default.
const fn optional<T>(
    name: &'static str,
    default: T,
    parse: fn(&str) -> Result<T, String>,
) -> Key<T> {
    Key {
        name,
        default: Some(default),
        missing: "",
        parse,
    }
}

const RATE_LIMIT_WINDOW: Key<Duration> = duration_key("RATE_LIMIT_WINDOW", 60);
const TLS_CERT_FILE: Key<Option<PathBuf>> = optional("TLS_CERT_FILE", None, parse_path);
const TLS_KEY_FILE: Key<Option<PathBuf>> = optional("TLS_KEY_FILE", None, parse_path);
const TLS_DOMAINS: Key<Option<Vec<String>>> = optional("TLS_DOMAINS", None, parse_domains);
const ACME_EMAIL: Key<Option<PathBuf>> = optional("ACME_EMAIL", None, parse_path);
const ACME_DIRECTORY: Key<String> = Key {
    name: "ACME_DIRECTORY",
    default: None,
    missing: "",
    parse: parse_directory,
};
const ACME_CA_FILE: Key<Option<PathBuf>> = optional("ACME_CA_FILE", None, parse_path);
const TLS_CACHE_DIR: Key<Option<PathBuf>> = optional("TLS_CACHE_DIR", None, parse_path);
const ACME_RETRY_BASE: Key<Duration> = duration_key("ACME_RETRY_BASE", 60);

/// A duration key with a default in seconds; it must be above zero.
const fn duration_key(name: &'static str, default_secs: u64) -> Key<Duration> {
    optional(
        name,
        Duration::from_secs(default_secs),
        parse_positive_duration,
    )
}

impl Settings {
    /// Reads the settings from `env`, naming the file and key on every error.
    pub fn from_env(env: &EnvSource) -> Result<Self, ConfigError> {
        let settings = Self {
            port: PORT.read(env)?,
            auth_token: AUTH_TOKEN.read(env)?,
            bind: BIND.read(env)?,
            log_format: LOG_FORMAT.read(env)?,
            max_body_bytes: MAX_BODY_BYTES.read(env)?,
            shutdown_grace: SHUTDOWN_GRACE_SECS.read(env)?,
            connections: ConnectionLimits {
                max_connections: MAX_CONNECTIONS.read(env)?,
                request_header_timeout: REQUEST_HEADER_TIMEOUT.read(env)?,
                client_idle_timeout: CLIENT_IDLE_TIMEOUT.read(env)?,
                http2_keepalive_interval: HTTP2_KEEPALIVE_INTERVAL.read(env)?,
                http2_keepalive_timeout: HTTP2_KEEPALIVE_TIMEOUT.read(env)?,
            },
            max_inflight_body_bytes: MAX_INFLIGHT_BODY_BYTES.read(env)?,
            body_read_timeout: BODY_READ_TIMEOUT.read(env)?,
            log_queue_lines: LOG_QUEUE_LINES.read(env)?,
            log_rejected_per_sec: LOG_REJECTED_PER_SEC.read(env)?,
            config_poll_interval: CONFIG_POLL_INTERVAL.read(env)?,
            rate_limit_window: RATE_LIMIT_WINDOW.read(env)?,
            tls: tls_mode(env)?,
        };
        if settings.max_body_bytes > settings.max_inflight_body_bytes {
            return Err(ConfigError::Invalid {
                location: env.describe(MAX_BODY_BYTES.name, None),
                message: format!(
                    "MAX_BODY_BYTES ({}) is larger than MAX_INFLIGHT_BODY_BYTES ({}): one request could never be admitted; raise MAX_INFLIGHT_BODY_BYTES or lower MAX_BODY_BYTES",
                    settings.max_body_bytes, settings.max_inflight_body_bytes
                ),
            });
        }
        Ok(settings)
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

/// The TLS mode from its keys: both files or neither; relative paths are taken from the
/// directory of `.env`. Public for `healthcheck`, which needs only this.
pub fn tls_mode(env: &EnvSource) -> Result<TlsMode, ConfigError> {
    let cert = TLS_CERT_FILE.read(env)?;
    let key = TLS_KEY_FILE.read(env)?;
    let invalid = |name: &str, message: String| ConfigError::Invalid {
        location: env.describe(name, env.get(name).map(|v| v.origin)),
        message,
    };
    let dir = env.path().parent().unwrap_or(Path::new("."));
    if let Some(domains) = TLS_DOMAINS.read(env)? {
        if cert.is_some() || key.is_some() {
            return Err(invalid(
                TLS_DOMAINS.name,
                "set together with TLS_CERT_FILE/TLS_KEY_FILE: choose automatic certificates (TLS_DOMAINS) or your own (TLS_CERT_FILE + TLS_KEY_FILE), not both".to_owned(),
            ));
        }
        let directory = match env.get(ACME_DIRECTORY.name) {
            Some(v) if !v.value.trim().is_empty() => ACME_DIRECTORY.read(env)?,
            _ => LETSENCRYPT_PRODUCTION.to_owned(),
        };
        return Ok(TlsMode::Acme(AcmeSettings {
            domains,
            email: ACME_EMAIL
                .read(env)?
                .map(|p| p.to_string_lossy().into_owned()),
            directory,
            ca_file: ACME_CA_FILE.read(env)?.map(|p| dir.join(p)),
            cache_dir: TLS_CACHE_DIR
                .read(env)?
                .map_or_else(|| PathBuf::from("/app/tls"), |p| dir.join(p)),
            retry_base: ACME_RETRY_BASE.read(env)?,
        }));
    }
    match (cert, key) {
        (None, None) => Ok(TlsMode::Off),
        (Some(cert), Some(key)) => Ok(TlsMode::Files {
            cert_file: dir.join(cert),
            key_file: dir.join(key),
        }),
        (Some(_), None) => Err(invalid(
            TLS_KEY_FILE.name,
            "not set while TLS_CERT_FILE is: set both (the certificate chain and its private key, PEM) or neither".to_owned(),
        )),
        (None, Some(_)) => Err(invalid(
            TLS_CERT_FILE.name,
            "not set while TLS_KEY_FILE is: set both (the certificate chain and its private key, PEM) or neither".to_owned(),
        )),
    }
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "every key's parser has the same signature"
)]
fn parse_path(v: &str) -> Result<Option<PathBuf>, String> {
    Ok(Some(PathBuf::from(v.trim())))
}

fn parse_domains(v: &str) -> Result<Option<Vec<String>>, String> {
    let mut domains = Vec::new();
    for d in v.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let d = d.to_ascii_lowercase();
        let ok = d.len() <= 253
            && d.contains('.')
            && d.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return Err(format!(
                "`{d}` is not a DNS name (wildcards cannot be validated with TLS-ALPN-01): write api.example.com[,other.example.com]"
            ));
        }
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    if domains.is_empty() {
        return Err("names no domain: write api.example.com[,other.example.com]".to_owned());
    }
    Ok(Some(domains))
}

fn parse_directory(v: &str) -> Result<String, String> {
    match v.trim() {
        "letsencrypt" => Ok(LETSENCRYPT_PRODUCTION.to_owned()),
        "letsencrypt-staging" => Ok(LETSENCRYPT_STAGING.to_owned()),
        url if url.starts_with("https://") => Ok(url.to_owned()),
        other => Err(format!(
            "`{other}` is not an ACME directory: use letsencrypt, letsencrypt-staging or an https:// URL"
        )),
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
        Ok(n) if n > 0 && n <= MAX_INFLIGHT_BODY_BYTES_LIMIT => Ok(n),
        _ => Err(format!(
            "`{v}` is not a number of bytes between 1 and {MAX_INFLIGHT_BODY_BYTES_LIMIT}"
        )),
    }
}

/// A whole number in `1..=max`, or a message naming what it counts.
fn parse_count(v: &str, max: u64, what: &str) -> Result<u64, String> {
    match v.trim().parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{v}` is not a number of {what} between 1 and {max}"
        )),
    }
}

fn parse_connections(v: &str) -> Result<usize, String> {
    parse_count(v, 1_000_000, "connections").map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

fn parse_queue(v: &str) -> Result<usize, String> {
    parse_count(v, 1_000_000, "lines").map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

fn parse_per_sec(v: &str) -> Result<u32, String> {
    parse_count(v, 1_000_000, "lines per second").map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn parse_positive_duration(v: &str) -> Result<Duration, String> {
    match parse_bounded(v)? {
        d if d.is_zero() => Err(format!("`{v}` must be greater than zero")),
        d => Ok(d),
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
