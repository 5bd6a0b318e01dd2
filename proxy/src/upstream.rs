//! Upstream clients: one connection pool per provider (rustls with compiled-in roots,
//! HTTP/1.1 and HTTP/2 by ALPN), built at start and on reload, with the configuration they
//! serve.
//!
//! The pool is hyper's connection API with a list of senders per provider rather than
//! hyper-util's legacy client: that one hashes its pool key (SipHash) on every checkout and
//! return, formats the `Host` header per request, and spawns a task per request to put the
//! connection back; here a checkout scans the provider's few connections for a ready one, and
//! `Host` is built once.

use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connection as _, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tower_service::Service as _;

use crate::config::{Provider, ProviderConfig};
use crate::request_body::UpstreamBody;

/// A connection unused for this long is dropped at the provider's next checkout instead of
/// reused: the upstream (or a middlebox) may have forgotten it. Until then an idle connection
/// costs one socket; most upstreams close theirs sooner, and hyper then marks it closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type Connector = HttpsConnector<HttpConnector>;
type Io = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// The pooled client of one provider. Cloning shares the pool.
#[derive(Clone)]
pub struct HttpClient {
    pool: Arc<Pool>,
}

struct Pool {
    connector: Connector,
    /// `Host` for the provider's authority, built once.
    host: Option<(Authority, HeaderValue)>,
    /// The base URL's scheme, authority and path, parsed once: a request's URI is then
    /// assembled from them and only its path is parsed.
    base: Option<Base>,
    /// HTTP/1.1 connections, most recently used last; a busy one stays listed and is
    /// skipped until hyper says it is ready for the next request.
    http1: Mutex<Vec<Pooled>>,
    /// The HTTP/2 connection, shared by every request while it is open.
    http2: Mutex<Option<http2::SendRequest<UpstreamBody>>>,
}

struct Base {
    scheme: Scheme,
    authority: Authority,
    /// The base URL after its authority, as written (`/v1`, or empty).
    path: String,
}

impl Base {
    /// `None` for a URL the plain concatenation of [`HttpClient::uri`] cannot take apart
    /// (a query or fragment in it): such a URL is parsed whole per request, as before.
    fn parse(base_url: &str) -> Option<Self> {
        let uri = base_url.parse::<Uri>().ok()?;
        let scheme = uri.scheme()?.clone();
        let authority = uri.authority()?.clone();
        let path = base_url
            .strip_prefix(scheme.as_str())?
            .strip_prefix("://")?
            .strip_prefix(authority.as_str())?;
        if path.contains(['?', '#']) {
            return None;
        }
        Some(Self {
            scheme,
            authority,
            path: path.to_owned(),
        })
    }
}

struct Pooled {
    sender: http1::SendRequest<UpstreamBody>,
    /// When it was last handed out.
    used: Instant,
}

/// Why an upstream request failed: no connection (DNS, TCP, TLS), or the exchange on it.
#[derive(Debug)]
pub struct ClientError {
    connect: bool,
    source: Box<dyn StdError + Send + Sync>,
}

impl ClientError {
    /// Whether the request never reached the upstream: no connection could be made.
    #[must_use]
    pub fn is_connect(&self) -> bool {
        self.connect
    }

    fn connect(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            connect: true,
            source: source.into(),
        }
    }

    fn request(source: hyper::Error) -> Self {
        Self {
            connect: false,
            source: source.into(),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.connect {
            "client error (Connect)"
        } else {
            "client error (SendRequest)"
        })
    }
}

impl StdError for ClientError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

/// A connection taken from the pool or made for one request.
enum Sender {
    Http1(http1::SendRequest<UpstreamBody>, Reused),
    Http2(http2::SendRequest<UpstreamBody>),
}

/// Whether an HTTP/1 connection was used before: a request that finds it closed by the
/// upstream in the meantime, unsent, is retried once on a new connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reused {
    Yes,
    No,
}

impl HttpClient {
    /// The URI of `path` (and `query`) under the provider's base URL, the same as parsing
    /// `base_url + path + "?" + query` but without parsing the scheme and authority again;
    /// `None` when the result is not a valid URI or the base URL needs the whole parse.
    #[must_use]
    pub fn uri(&self, path: &str, query: Option<&str>) -> Option<Uri> {
        let base = self.pool.base.as_ref()?;
        let mut full = String::with_capacity(base.path.len() + path.len() + 64);
        full.push_str(&base.path);
        full.push_str(path);
        if let Some(q) = query {
            full.push('?');
            full.push_str(q);
        }
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(base.scheme.clone());
        parts.authority = Some(base.authority.clone());
        parts.path_and_query = Some(PathAndQuery::try_from(full).ok()?);
        Uri::from_parts(parts).ok()
    }

    /// Sends `req` (an absolute URI on the provider) and waits for the response headers.
    ///
    /// # Errors
    /// When no connection can be made, or the exchange fails.
    pub async fn request(
        &self,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, ClientError> {
        let pool = &self.pool;
        let mut sender = pool.checkout(req.uri()).await?;
        loop {
            match sender {
                Sender::Http2(mut h2) => {
                    return h2.send_request(req).await.map_err(ClientError::request);
                }
                Sender::Http1(mut h1, reused) => {
                    // `set_host` leaves only the path; a retry must connect to the original.
                    let target = (reused == Reused::Yes).then(|| req.uri().clone());
                    pool.set_host(&mut req);
                    match h1.try_send_request(req).await {
                        Ok(response) => {
                            pool.put(h1);
                            return Ok(response);
                        }
                        // The upstream closed the idle connection as the request went out,
                        // unsent: once more on a new one, as hyper-util's client did.
                        Err(mut e) if e.message().is_some() && target.is_some() => {
                            req = e.take_message().unwrap_or_else(|| unreachable!());
                            *req.uri_mut() = target.unwrap_or_else(|| unreachable!());
                            sender = pool.connect(req.uri()).await?;
                        }
                        Err(e) => return Err(ClientError::request(e.into_error())),
                    }
                }
            }
        }
    }
}

impl Pool {
    fn new(connector: Connector, base_url: &str) -> Self {
        let host = base_url
            .parse::<Uri>()
            .ok()
            .and_then(|uri| Some((uri.authority()?.clone(), uri)))
            .and_then(|(authority, uri)| Some((authority, host_header(&uri)?)));
        Self {
            connector,
            host,
            base: Base::parse(base_url),
            http1: Mutex::new(Vec::new()),
            http2: Mutex::new(None),
        }
    }

    /// A ready connection: the open HTTP/2 one, the most recently used ready HTTP/1 one
    /// (dropping closed and long-unused ones on the way), or a new one.
    async fn checkout(&self, uri: &Uri) -> Result<Sender, ClientError> {
        if let Some(h2) = lock(&self.http2).as_ref().filter(|s| !s.is_closed()) {
            return Ok(Sender::Http2(h2.clone()));
        }
        {
            let mut idle = lock(&self.http1);
            let now = Instant::now();
            idle.retain(|p| !p.sender.is_closed() && now.duration_since(p.used) < IDLE_TIMEOUT);
            if let Some(i) = idle.iter().rposition(|p| p.sender.is_ready()) {
                return Ok(Sender::Http1(idle.remove(i).sender, Reused::Yes));
            }
        }
        self.connect(uri).await
    }

    /// A new connection to `uri`'s host: HTTP/2 when TLS negotiated it, else HTTP/1.1.
    async fn connect(&self, uri: &Uri) -> Result<Sender, ClientError> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(ClientError::connect)?;
        let io: Io = connector
            .call(uri.clone())
            .await
            .map_err(ClientError::connect)?;
        if io.connected().is_negotiated_h2() {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(ClientError::connect)?;
            tokio::spawn(conn);
            *lock(&self.http2) = Some(sender.clone());
            return Ok(Sender::Http2(sender));
        }
        let (sender, conn) = http1::handshake(io).await.map_err(ClientError::connect)?;
        tokio::spawn(conn);
        Ok(Sender::Http1(sender, Reused::No))
    }

    /// Gives an HTTP/1 connection back, busy until its response body is read.
    fn put(&self, sender: http1::SendRequest<UpstreamBody>) {
        lock(&self.http1).push(Pooled {
            sender,
            used: Instant::now(),
        });
    }

    /// HTTP/1 takes the path as the request target and the authority as `Host`.
    fn set_host(&self, req: &mut Request<UpstreamBody>) {
        let host = match &self.host {
            Some((authority, value)) if req.uri().authority() == Some(authority) => {
                Some(value.clone())
            }
            _ => host_header(req.uri()),
        };
        if let Some(host) = host {
            req.headers_mut().entry(HOST).or_insert(host);
        }
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(path);
    }
}

/// `Host` for `uri`: its host, and its port unless the scheme's default.
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let value = match uri.port_u16() {
        Some(port) if port != default => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    HeaderValue::from_str(&value).ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds the TLS configuration once: ring, TLS 1.2/1.3, Mozilla's roots compiled in (the
/// image is `FROM scratch` and has no CA bundle).
#[must_use]
pub fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A pooled client for one provider.
#[must_use]
pub fn build_client(provider: &Provider, tls: &rustls::ClientConfig) -> HttpClient {
    HttpClient {
        pool: Arc::new(Pool::new(
            connector(provider.timeouts.connect, tls),
            &provider.base_url,
        )),
    }
}

/// TCP (no delay, keepalive probes) under TLS when the URL says `https`, offering h2 and
/// HTTP/1.1 by ALPN.
fn connector(connect_timeout: Duration, tls: &rustls::ClientConfig) -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_mins(1)));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http)
}

/// The `GET /v1/models` body listing `names`.
pub fn models_json<'a>(names: impl Iterator<Item = &'a str>) -> Bytes {
    let data: Vec<serde_json::Value> = names
        .map(|name| {
            serde_json::json!({
                "id": name, "object": "model", "created": 0, "owned_by": "ai-proxy"
            })
        })
        .collect();
    Bytes::from(serde_json::json!({ "object": "list", "data": data }).to_string())
}

/// The providers and models in force, with their clients. Replaced as a whole on SIGHUP;
/// requests in flight keep the one they started with.
pub struct Upstreams {
    /// The validated provider file.
    pub config: ProviderConfig,
    /// One pooled client per provider, in the same order.
    pub clients: Vec<HttpClient>,
    /// The prebuilt `GET /v1/models` body.
    pub models_json: Bytes,
}

impl Upstreams {
    /// Builds a client per provider.
    #[must_use]
    pub fn new(config: ProviderConfig, tls: &rustls::ClientConfig) -> Self {
        let clients = config
            .providers
            .iter()
            .map(|p| build_client(p, tls))
            .collect();
        let models_json = models_json(config.models.iter().map(|m| &*m.name));
        Self {
            config,
            clients,
            models_json,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bytes::Bytes;
    use http::{Request, Version};
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::net::TcpListener;

    use super::{HttpClient, Pool, connector, lock, tls_config};
    use crate::request_body::UpstreamBody;

    /// An HTTPS upstream that offers only h2 by ALPN, answers every request with its HTTP
    /// version, and counts its connections; and a client config trusting its certificate.
    async fn h2_upstream() -> (u16, Arc<AtomicUsize>, rustls::ClientConfig) {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = key.cert.der().clone();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
            )
            .unwrap();
        server.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let version = format!("{:?}", req.version());
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(version),
                        )))
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (port, accepted, client)
    }

    /// Requests to an upstream that negotiates h2 go over HTTP/2, concurrently, on one
    /// shared connection.
    #[tokio::test]
    async fn an_h2_upstream_is_spoken_to_over_one_shared_http2_connection() {
        let (port, accepted, tls) = h2_upstream().await;
        let base = format!("https://localhost:{port}/v1");
        let client = HttpClient {
            pool: Arc::new(Pool::new(connector(Duration::from_secs(5), &tls), &base)),
        };
        let send = |client: HttpClient, base: String| async move {
            let resp = client.request(empty_chat_post(&base)).await.unwrap();
            assert_eq!(resp.version(), Version::HTTP_2);
            resp.into_body().collect().await.unwrap().to_bytes()
        };
        // The first request makes the connection; the next ones run at once and share it.
        assert_eq!(send(client.clone(), base.clone()).await, "HTTP/2.0");
        let mut tasks = Vec::new();
        for _ in 0..4 {
            tasks.push(tokio::spawn(send(client.clone(), base.clone())));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), "HTTP/2.0");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    /// What the closing upstream's connections received: the first one's request, anything
    /// it got after the upstream closed it, and the second one's request.
    struct Received {
        first: String,
        first_after_close: Vec<u8>,
        second: String,
    }

    /// An HTTP/1.1 upstream on its own thread with std sockets, so that it runs while the test
    /// holds the runtime's only thread. It answers one request on a first connection, keeps
    /// it open, closes it when `close` says so, reports on `closed` once the client's kernel
    /// has taken the FIN in, then answers one request on a second connection.
    fn closing_upstream() -> (
        u16,
        std::sync::mpsc::Sender<()>,
        std::sync::mpsc::Receiver<()>,
        std::thread::JoinHandle<Received>,
    ) {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (close, close_rx) = std::sync::mpsc::channel();
        let (closed_tx, closed) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let first = read_request(&mut conn);
            conn.write_all(&answer("first")).unwrap();
            close_rx.recv().unwrap();
            conn.shutdown(std::net::Shutdown::Write).unwrap();
            wait_fin_acked(&conn);
            closed_tx.send(()).unwrap();
            let (mut retry, _) = listener.accept().unwrap();
            let second = read_request(&mut retry);
            retry.write_all(&answer("second")).unwrap();
            // The client closes the first connection without writing to it: EOF, no bytes.
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut first_after_close = Vec::new();
            if let Err(e) = conn.read_to_end(&mut first_after_close) {
                first_after_close.extend_from_slice(format!("<read error: {e}>").as_bytes());
            }
            Received {
                first,
                first_after_close,
                second,
            }
        });
        (port, close, closed, thread)
    }

    fn answer(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// One whole request (head and `content-length` body) from `conn`.
    fn read_request(conn: &mut std::net::TcpStream) -> String {
        use std::io::Read as _;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if buf.len() >= end + 4 + length {
                    return String::from_utf8(buf).unwrap();
                }
            }
            let n = conn.read(&mut chunk).unwrap();
            assert!(
                n > 0,
                "EOF mid-request: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Waits until the kernel shows `conn` in FIN_WAIT2 (`/proc/net/tcp` state 05): its FIN
    /// was acknowledged, so the peer's kernel has taken it in and queued the readiness event
    /// for the peer's epoll.
    fn wait_fin_acked(conn: &std::net::TcpStream) {
        let local = format!(":{:04X}", conn.local_addr().unwrap().port());
        let peer = format!(":{:04X}", conn.peer_addr().unwrap().port());
        loop {
            let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
            let state = table.lines().skip(1).find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let ours = fields.get(1)?.ends_with(&local) && fields.get(2)?.ends_with(&peer);
                ours.then(|| fields.get(3).map(|s| (*s).to_owned()))?
            });
            if state.as_deref() == Some("05") {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A `POST {base}/chat/completions` with the body `{}`.
    fn empty_chat_post(base: &str) -> Request<UpstreamBody> {
        Request::post(format!("{base}/chat/completions"))
            .body(UpstreamBody::new([
                Bytes::from_static(b"{}"),
                Bytes::new(),
                Bytes::new(),
            ]))
            .unwrap()
    }

    /// POSTs `{}` to `{base}/chat/completions`: the status and body, or the error and its
    /// source.
    async fn post(client: &HttpClient, base: &str) -> Result<(u16, Bytes), String> {
        let resp = client.request(empty_chat_post(base)).await.map_err(|e| {
            let source = std::error::Error::source(&e).map(ToString::to_string);
            format!("{e}: {}", source.unwrap_or_default())
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, body.to_bytes()))
    }

    /// A pooled connection the upstream closed while idle, found closed only when the next
    /// request is handed to it, sends that request again on a new connection.
    ///
    /// Deterministic on a current-thread runtime: the connection task runs only when this
    /// test yields. The upstream's FIN reaches the client's kernel while the test blocks the
    /// thread; then one `yield_now` lets the runtime poll its I/O driver, which marks the
    /// socket readable and schedules the connection task, and poll this test first (the
    /// `block_on` future goes before spawned tasks after a driver turn). The checkout still
    /// sees the connection open and ready and hands it the request; the connection task then
    /// reads EOF before writing, closes, and gives the request back unsent.
    #[tokio::test(flavor = "current_thread")]
    async fn a_reused_connection_found_closed_is_retried_on_a_new_one() {
        let (port, close, closed, upstream) = closing_upstream();
        let base = format!("http://127.0.0.1:{port}/v1");
        let client = HttpClient {
            pool: Arc::new(Pool::new(
                connector(Duration::from_secs(5), &tls_config()),
                &base,
            )),
        };
        assert_eq!(post(&client, &base).await, Ok((200, Bytes::from("first"))));
        // The connection is back in the pool once its task has read the end of the answer.
        while !lock(&client.pool.http1).iter().any(|p| p.sender.is_ready()) {
            tokio::task::yield_now().await;
        }
        close.send(()).unwrap();
        // Blocks the thread, so the connection task cannot see the FIN arrive.
        closed.recv().unwrap();
        tokio::task::yield_now().await;
        // The pool still offers the connection the upstream closed; `post` checks out before
        // its first await, so the request goes to that connection (not a vacuous pass on a
        // connection the pool had already dropped).
        assert!(
            lock(&client.pool.http1)
                .iter()
                .any(|p| p.sender.is_ready() && !p.sender.is_closed()),
            "the closed connection was already seen closed: the retry path was not reached"
        );
        assert_eq!(
            post(&client, &base).await,
            Ok((200, Bytes::from("second"))),
            "the request after the upstream closed the idle connection"
        );
        let received = upstream.join().unwrap();
        assert!(
            received
                .first
                .starts_with("POST /v1/chat/completions HTTP/1.1\r\n")
        );
        assert!(
            received.first_after_close.is_empty(),
            "the closed connection received {:?}",
            String::from_utf8_lossy(&received.first_after_close)
        );
        assert!(
            received
                .second
                .starts_with("POST /v1/chat/completions HTTP/1.1\r\n")
        );
        assert!(
            received.second.ends_with("\r\n\r\n{}"),
            "{}",
            received.second
        );
    }
}
