//! The `ai-proxy` command: argument parsing, the runtime, exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use ai_proxy::config::settings::TlsMode;
use ai_proxy::config::{Config, ENV_FILE, EnvSource};
use ai_proxy::{healthcheck, log, reload, server, signals, state::AppState, tls};

mod allocator;

/// Exit code for a configuration error.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a runtime failure (cannot listen, unhealthy).
const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "ai-proxy",
    version,
    about = "A small, fast OpenAI- and Anthropic-compatible AI gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve(ConfigDir),
    /// Exit 0 only when GET /ping answers 200 within 2 s (over TLS, unverified, when the
    /// config's .env turns TLS on).
    Healthcheck {
        /// Port to check [default: $PORT, else 8080].
        #[arg(long)]
        port: Option<u16>,
        /// Host to check.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Speak TLS even if the config does not say so.
        #[arg(long)]
        tls: bool,
        #[command(flatten)]
        dir: ConfigDir,
    },
    /// Validate .env and provider-config.yaml and print the effective configuration, secrets redacted.
    CheckConfig(ConfigDir),
    /// Client keys: make one, or hash one read on stdin. Writes no file.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Print a new random key for client NAME (once) and the `clients:` entry to paste.
    New {
        /// The client's name: letters, digits, - _ .
        name: String,
        /// Make COUNT clients NAME-1 … NAME-COUNT (for benchmarks): the entries go to
        /// stdout, `name key` lines to stderr.
        #[arg(long)]
        count: Option<u32>,
    },
    /// Read a key on stdin and print its SHA-256, the `key_sha256` of its entry.
    Hash,
}

#[derive(clap::Args)]
struct ConfigDir {
    /// Directory holding .env and provider-config.yaml.
    #[arg(long, env = "AI_PROXY_CONFIG_DIR", default_value = "/app/config")]
    config_dir: PathBuf,
}

fn main() -> ExitCode {
    if let Err(e) = signals::hold_sighup() {
        eprintln!("ai-proxy: cannot install the SIGHUP handler: {e}");
        return ExitCode::from(EXIT_FAILURE);
    }
    let cli = Cli::parse();
    match cli.command {
        None => serve(&ConfigDir::parse_default()),
        Some(Command::Serve(dir)) => serve(&dir),
        Some(Command::CheckConfig(dir)) => check_config(&dir),
        Some(Command::Keys { action }) => keys(&action),
        Some(Command::Healthcheck {
            port,
            host,
            tls,
            dir,
        }) => {
            let port = port
                .or_else(|| {
                    std::env::var("PORT")
                        .ok()
                        .and_then(|p| p.trim().parse().ok())
                })
                .unwrap_or(8080);
            // Whether the listener speaks TLS is in `.env`; a missing or broken file means
            // the defaults (plain HTTP), and the check then says what answered.
            let tls = tls
                || EnvSource::load(&dir.config_dir.join(ENV_FILE))
                    .and_then(|env| ai_proxy::config::settings::tls_mode(&env))
                    .is_ok_and(|mode| mode.is_on());
            match healthcheck::check(&host, port, tls) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ai-proxy healthcheck: unhealthy: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
    }
}

impl ConfigDir {
    /// `ai-proxy` with no subcommand serves with the defaults (and `AI_PROXY_CONFIG_DIR`).
    fn parse_default() -> Self {
        Self {
            config_dir: std::env::var_os("AI_PROXY_CONFIG_DIR")
                .map_or_else(|| PathBuf::from("/app/config"), PathBuf::from),
        }
    }
}

fn keys(action: &KeysAction) -> ExitCode {
    let out = match action {
        KeysAction::New {
            name,
            count: Some(count),
        } => ai_proxy::keys::new_entries(name, *count).map(|(entries, keys)| {
            eprint!("{keys}");
            entries
        }),
        KeysAction::New { name, count: None } => ai_proxy::keys::new_entry(name),
        KeysAction::Hash => ai_proxy::keys::hash_input(std::io::stdin().lock()),
    };
    match out {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ai-proxy keys: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `check-config`'s TLS lines on stderr: the mode, and the certificate (files) or the cache.
fn report_tls(settings: &ai_proxy::config::Settings) -> Result<(), String> {
    let expires = |pair: &rustls::sign::CertifiedKey| {
        tls::not_after(pair).map_or_else(|| "?".to_owned(), tls::expiry::rfc3339)
    };
    match &settings.tls {
        TlsMode::Off if !settings.bind.is_loopback() => eprintln!("{PLAIN_WARNING}"),
        TlsMode::Off => {}
        TlsMode::Files {
            cert_file,
            key_file,
        } => {
            let pair = tls::load_pair(cert_file, key_file).map_err(|e| e.to_string())?;
            eprintln!(
                "TLS: serving {} for {} ({} certificates in the chain, expires {}) and its key {}",
                cert_file.display(),
                tls::names(&pair).join(", "),
                pair.cert.len(),
                expires(&pair),
                key_file.display()
            );
        }
        TlsMode::Acme(acme) => {
            eprintln!(
                "TLS: automatic certificates (ACME, TLS-ALPN-01 on port {}) for {} from {}",
                settings.port,
                acme.domains.join(", "),
                acme.directory
            );
            let cache = tls::cache::Cache::new(&acme.cache_dir, &acme.directory, &acme.domains);
            let path = cache.certificate_path();
            match cache.certificate() {
                Ok(Some(pem)) => match tls::pair_from_pem(&pem, &path.display().to_string()) {
                    Ok(pair) => eprintln!(
                        "TLS: cached certificate {} for {} expires {}",
                        path.display(),
                        tls::names(&pair).join(", "),
                        expires(&pair)
                    ),
                    Err(e) => eprintln!(
                        "warning: cached certificate unusable ({e}); a new one will be ordered"
                    ),
                },
                Ok(None) => eprintln!(
                    "TLS: no cached certificate in {} yet: the first start orders one (HTTPS handshakes fail until then)",
                    acme.cache_dir.display()
                ),
                Err(e) => eprintln!("warning: {}: cannot read: {e}", path.display()),
            }
        }
    }
    Ok(())
}

fn check_config(dir: &ConfigDir) -> ExitCode {
    match Config::load(&dir.config_dir) {
        Ok(config) => {
            print!("{}", config.redacted_yaml());
            if let Err(e) = report_tls(&config.settings) {
                eprintln!("ai-proxy: configuration error: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
            for p in config.providers.not_configured() {
                eprintln!(
                    "warning: provider `{}` is not configured: set {} in {}",
                    p.name,
                    p.missing_vars.join(", "),
                    dir.config_dir.join(ai_proxy::config::ENV_FILE).display()
                );
            }
            eprintln!("configuration OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ai-proxy: configuration error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn serve(dir: &ConfigDir) -> ExitCode {
    allocator::purge_in_background();
    // The runtime and the signal handlers come first, before the config is read or the port
    // bound: a SIGHUP's default action is to kill the process, and an orchestrator may send
    // one at any time after start.
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ai-proxy: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let signals = {
        let _context = runtime.enter();
        match signals::Signals::install() {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("ai-proxy: cannot install signal handlers: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    };
    let config = match Config::load(&dir.config_dir) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ai-proxy: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    log::init(config.settings.log_format, config.settings.log_queue_lines);
    let code = runtime.block_on(run(config, signals));
    log::flush(std::time::Duration::from_secs(2));
    code
}

/// The async runtime: one thread when the process may use one CPU (a container limited to
/// 0.5 or 1 CPU, the bench's pinned core), else a worker per CPU. On one CPU a multi-thread
/// runtime only adds work: its worker times every task poll (two clock reads and a `pow`) to
/// tune its queues, and the accept loop runs on a second thread that has to wake it.
/// `TOKIO_WORKER_THREADS` overrides the count, as tokio's own builder reads it.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let mut builder = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().thread_name("ai-proxy").build()
}

/// Said at start (and by `check-config`) when plain HTTP listens beyond loopback.
const PLAIN_WARNING: &str = "warning: serving plain HTTP on a non-loopback address: client tokens, prompts and answers cross the network in clear; set TLS_CERT_FILE and TLS_KEY_FILE, or BIND=127.0.0.1 behind a TLS terminator";

/// What serves the listener's certificates.
enum TlsSource {
    Files(Arc<tls::files::CertFiles>),
    Acme(Arc<tls::acme::Manager>),
}

/// The certificate source of the TLS mode, loaded; `Ok(None)` for plain HTTP.
fn load_tls(
    mode: &TlsMode,
    metrics: &Arc<ai_proxy::metrics::Metrics>,
) -> Result<Option<TlsSource>, String> {
    match mode {
        TlsMode::Off => Ok(None),
        TlsMode::Files {
            cert_file,
            key_file,
        } => tls::files::CertFiles::load(cert_file.clone(), key_file.clone())
            .map(|files| Some(TlsSource::Files(Arc::new(files))))
            .map_err(|e| e.to_string()),
        TlsMode::Acme(settings) => tls::acme::Manager::load(settings.clone(), metrics.clone())
            .map(|m| Some(TlsSource::Acme(Arc::new(m)))),
    }
}

fn log_listening(state: &AppState, local: std::net::SocketAddr, https: bool) {
    let up = state.upstreams.load();
    log::info("listening")
        .str("addr", &local.to_string())
        .str("scheme", if https { "https" } else { "http" })
        .u64("port", u64::from(local.port()))
        .str("version", env!("CARGO_PKG_VERSION"))
        .u64("providers", up.config.providers.len() as u64)
        .u64("models", up.config.models.len() as u64)
        .emit();
}

/// The TLS acceptor for `tls_source`, with its certificate watcher or ACME manager spawned;
/// `None` serves plain HTTP, with a warning when `local` is reachable from elsewhere.
/// Must run inside the Tokio runtime.
fn start_tls(
    tls_source: Option<TlsSource>,
    state: &AppState,
    local: std::net::SocketAddr,
    cert_hangup: tokio::signal::unix::Signal,
) -> Option<tls::Acceptor> {
    match tls_source {
        None => {
            if !local.ip().is_loopback() {
                log::warn(PLAIN_WARNING.trim_start_matches("warning: ")).emit();
            }
            None
        }
        Some(TlsSource::Files(files)) => {
            log::info("serving TLS with the configured certificate")
                .opt_str("not_after", files.note_expiry(&state.metrics).as_deref())
                .emit();
            let acceptor = tls::Acceptor::new(files.certs.clone(), false);
            tokio::spawn(files.watch(
                cert_hangup,
                state.settings.config_poll_interval,
                state.metrics.clone(),
            ));
            Some(acceptor)
        }
        Some(TlsSource::Acme(manager)) => {
            let acceptor = tls::Acceptor::new(manager.certs.clone(), true);
            tokio::spawn(manager.run());
            Some(acceptor)
        }
    }
}

async fn run(config: Config, signals: signals::Signals) -> ExitCode {
    // A second SIGHUP stream for the certificate files: every stream sees every signal.
    let cert_hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ai-proxy: cannot install signal handlers: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let addr = std::net::SocketAddr::new(config.settings.bind, config.settings.port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "ai-proxy: cannot listen on {addr}: {e} (is PORT in use? set PORT/BIND in .env)"
            );
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let local = listener.local_addr().map_or(addr, |a| a);
    for p in config.providers.not_configured() {
        signals::warn_not_configured(p);
    }
    let state = Arc::new(AppState::new(config));
    let tls_source = match load_tls(&state.settings.tls, &state.metrics) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("ai-proxy: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    log_listening(&state, local, tls_source.is_some());
    let acceptor = start_tls(tls_source, &state, local, cert_hangup);
    let signals::Signals {
        terminate,
        interrupt,
        hangup,
    } = signals;
    tokio::spawn(signals::reload_on_sighup(state.clone(), hangup));
    tokio::spawn(reload::watch(state.clone()));
    server::serve(
        state,
        listener,
        acceptor,
        signals::termination(terminate, interrupt),
    )
    .await;
    log::info("stopped").emit();
    ExitCode::SUCCESS
}
