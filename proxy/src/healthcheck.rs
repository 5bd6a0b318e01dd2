//! `ai-proxy healthcheck`: the image has no shell or curl, so the binary checks itself with
//! a minimal HTTP/1.1 GET of `/ping` — over TLS when the listener speaks it, without
//! verifying the certificate (the check runs on loopback and sends no token) but through the
//! real handshake, so a listener that cannot present a certificate is unhealthy.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Whole-check budget.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// `Ok` when `GET http://host:port/ping` (`https://` with `tls`) answers 200 within
/// [`TIMEOUT`].
pub fn check(host: &str, port: u16, tls: bool) -> Result<(), String> {
    let deadline = Instant::now() + TIMEOUT;
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?;
    let mut last = format!("{host}:{port} resolved to no address");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match try_addr(addr, host, port, tls, deadline, left) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn try_addr(
    addr: std::net::SocketAddr,
    host: &str,
    port: u16,
    tls: bool,
    deadline: Instant,
    left: Duration,
) -> Result<(), String> {
    let stream = TcpStream::connect_timeout(&addr, left)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let remaining = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream
        .set_write_timeout(Some(remaining()))
        .and_then(|()| stream.set_read_timeout(Some(remaining())))
        .map_err(|e| e.to_string())?;
    if tls {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
        let conn = rustls::ClientConnection::new(Arc::new(unverified_client()), name)
            .map_err(|e| format!("cannot start TLS: {e}"))?;
        get_ping(rustls::StreamOwned::new(conn, stream), addr, host, port)
    } else {
        get_ping(stream, addr, host, port)
    }
}

/// Sends `GET /ping` on `stream` and reads the status line.
fn get_ping(
    mut stream: impl Read + Write,
    addr: std::net::SocketAddr,
    host: &str,
    port: u16,
) -> Result<(), String> {
    // One write: `write!` sends each formatted piece separately, and a server that answers
    // the first piece (the TLS port's plain-HTTP refusal) would meet a broken pipe.
    let request = format!("GET /ping HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        let read = stream
            .read(&mut buf[n..])
            .map_err(|e| format!("no answer from {addr} within {TIMEOUT:?}: {e}"))?;
        if read == 0 {
            break;
        }
        n += read;
    }
    let status_line = String::from_utf8_lossy(&buf[..n]);
    if status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!(
            "{addr} answered `{}` instead of 200",
            status_line.lines().next().unwrap_or("").trim()
        ))
    }
}

/// A TLS client for loopback: any certificate is accepted, but the handshake's signatures
/// are still checked, so the server must hold the key of what it presents.
fn unverified_client() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
