//! HTTPS with the admin's own certificate (`TLS_CERT_FILE` + `TLS_KEY_FILE`): curl over
//! HTTP/1.1 and HTTP/2 trusting the pair, plain HTTP on the TLS port, the handshake under the
//! first-request deadline and the connection limit, reloads (SIGHUP, file change, a bad pair
//! rejected), the healthcheck in both modes, and the config errors. Certificates are made by
//! the `openssl` command; a missing `openssl` or `curl` fails the tests.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const YAML: &str = "providers: []\nmodels: []\n";

/// A fresh self-signed P-256 certificate for `localhost` and 127.0.0.1, as `NAME.crt` and
/// `NAME.key` in `dir`.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command is needed to make test certificates");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// Installs `NAME.crt`/`NAME.key` as the served `cert.pem`/`key.pem` (each file renamed
/// into place).
fn install(dir: &Path, cert: &Path, key: &Path) {
    for (from, to) in [(key, "key.pem"), (cert, "cert.pem")] {
        let tmp = dir.join(format!("{to}.tmp"));
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(to)).unwrap();
    }
}

/// A config directory serving a fresh pair `a` as `cert.pem`/`key.pem`.
fn tls_dir(extra: &str) -> PathBuf {
    let dir = config_dir(
        &default_env(&format!(
            "TLS_CERT_FILE=cert.pem\nTLS_KEY_FILE=key.pem\n{extra}"
        )),
        YAML,
    );
    let (cert, key) = self_signed(&dir, "a");
    install(&dir, &cert, &key);
    dir
}

/// `curl ARGS`: exit code and stdout.
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl is needed for the TLS tests");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// GET `path` over HTTPS trusting `ca`, with `version` (`--http1.1` or `--http2`): status
/// line check, body and the HTTP version curl used.
fn https_get(proxy: &Proxy, ca: &Path, version: &str, path: &str) -> Option<(String, String)> {
    let url = format!("https://localhost:{}{path}", proxy.addr.port());
    let (code, out) = curl(&[
        version,
        "--cacert",
        ca.to_str().unwrap(),
        "-H",
        &format!("authorization: Bearer {TOKEN}"),
        "-w",
        "\n%{http_version}",
        &url,
    ]);
    if code != 0 {
        return None;
    }
    let (body, version) = out.rsplit_once('\n').unwrap();
    Some((body.to_owned(), version.to_owned()))
}

/// `notAfter` of a PEM certificate as openssl reads it: seconds since the epoch and
/// `YYYY-MM-DDTHH:MM:SSZ`.
fn openssl_not_after(cert: &Path) -> (f64, String) {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let iso = text
        .trim()
        .strip_prefix("notAfter=")
        .unwrap()
        .replace(' ', "T");
    let out = Command::new("date")
        .args(["-u", "-d", &iso, "+%s"])
        .output()
        .unwrap();
    let secs = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (secs, iso)
}

fn metric_value(proxy: &Proxy, ca: &Path, series: &str) -> Option<f64> {
    let (text, _) = https_get(proxy, ca, "--http2", "/metrics").expect("GET /metrics");
    metric(&text, series)
}

#[test]
fn https_over_h1_and_h2_and_plain_http_is_refused() {
    let proxy = Proxy::start_in(tls_dir(""));
    let ca = proxy.dir.join("a.crt");
    assert!(
        proxy
            .wait_log("\"msg\":\"listening\"")
            .contains("\"scheme\":\"https\"")
    );

    let (body, version) = https_get(&proxy, &ca, "--http1.1", "/ping").expect("HTTP/1.1 over TLS");
    assert_eq!((body.as_str(), version.as_str()), ("pong", "1.1"));
    let (body, version) = https_get(&proxy, &ca, "--http2", "/ping").expect("HTTP/2 over TLS");
    assert_eq!((body.as_str(), version.as_str()), ("pong", "2"));
    // TLS 1.2 is offered too (clients that have no 1.3), and nothing older.
    assert!(
        curl(&[
            "--tlsv1.2",
            "--tls-max",
            "1.2",
            "--cacert",
            ca.to_str().unwrap(),
            &format!("https://localhost:{}/ping", proxy.addr.port())
        ])
        .0 == 0,
        "TLS 1.2 refused"
    );
    assert_ne!(
        curl(&[
            "--tls-max",
            "1.1",
            "--cacert",
            ca.to_str().unwrap(),
            &format!("https://localhost:{}/ping", proxy.addr.port())
        ])
        .0,
        0,
        "TLS 1.1 accepted"
    );

    // Plain HTTP on the TLS port: a short 400 saying what to do, never the answer.
    let mut plain = TcpStream::connect(proxy.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(plain, "GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("HTTPS only"), "{answer}");
    assert!(!answer.contains("pong"), "{answer}");
    // curl's own view, as a user would see it.
    let (code, out) = curl(&[&format!("http://127.0.0.1:{}/ping", proxy.addr.port())]);
    assert_eq!(
        (code, out.as_str()),
        (0, "This port speaks HTTPS only: use https://\n")
    );

    assert_eq!(
        metric_value(&proxy, &ca, "ai_proxy_tls_plaintext_rejected_total"),
        Some(2.0)
    );
    // A client that does not trust the certificate fails its handshake, and it is counted
    // (with the TLS 1.1 attempt above).
    assert_ne!(
        curl(&[&format!("https://localhost:{}/ping", proxy.addr.port())]).0,
        0
    );
    assert_eq!(
        metric_value(&proxy, &ca, "ai_proxy_tls_handshake_failures_total"),
        Some(2.0)
    );
}

#[test]
fn healthcheck_speaks_tls_when_env_turns_it_on() {
    let proxy = Proxy::start_in(tls_dir(""));
    let port = proxy.addr.port().to_string();
    let (code, _, err) = run(&["healthcheck", "--port", &port], &proxy.dir);
    assert_eq!(code, 0, "healthcheck over TLS failed: {err}");
    // The same check without the config's TLS setting speaks plain HTTP and gets the 400.
    let plain_dir = config_dir(&default_env(""), YAML);
    let (code, _, err) = run(&["healthcheck", "--port", &port], &plain_dir);
    assert_eq!(code, 1);
    assert!(err.contains("400"), "{err}");

    // A plain-HTTP proxy: the default check passes, a forced TLS check fails its handshake.
    let plain = Proxy::start_in(plain_dir);
    let port = plain.addr.port().to_string();
    assert_eq!(run(&["healthcheck", "--port", &port], &plain.dir).0, 0);
    assert_eq!(
        run(&["healthcheck", "--tls", "--port", &port], &plain.dir).0,
        1
    );
}

#[test]
fn sighup_reloads_the_pair_and_a_bad_pair_is_rejected() {
    // No polling: only the SIGHUP may reload.
    let proxy = Proxy::start_in(tls_dir("CONFIG_POLL_INTERVAL=0\n"));
    let dir = proxy.dir.clone();
    let a = dir.join("a.crt");
    let (b_cert, b_key) = self_signed(&dir, "b");
    install(&dir, &b_cert, &b_key);
    assert!(
        https_get(&proxy, &a, "--http1.1", "/ping").is_some(),
        "the new files were served before SIGHUP"
    );
    proxy.signal("HUP");
    let line = proxy.wait_log("certificate reloaded");
    let (b_not_after, b_iso) = openssl_not_after(&b_cert);
    assert!(
        line.contains(&format!("\"not_after\":\"{b_iso}\"")),
        "{line}"
    );
    assert!(
        https_get(&proxy, &b_cert, "--http1.1", "/ping").is_some(),
        "B not served after SIGHUP"
    );
    assert!(
        https_get(&proxy, &a, "--http1.1", "/ping").is_none(),
        "A still served after SIGHUP"
    );

    // A certificate with another certificate's key: rejected, B stays.
    let (c_cert, _) = self_signed(&dir, "c");
    install(&dir, &c_cert, &b_key);
    proxy.signal("HUP");
    let line = proxy.wait_log("certificate reload rejected");
    assert!(line.contains("not a pair"), "{line}");
    // Not PEM at all: rejected too.
    std::fs::write(dir.join("cert.pem"), "not a certificate\n").unwrap();
    proxy.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.logs().matches("certificate reload rejected").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "second rejection not logged:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        https_get(&proxy, &b_cert, "--http2", "/ping").is_some(),
        "B dropped after bad pairs"
    );
    assert_eq!(
        metric_value(&proxy, &b_cert, "ai_proxy_tls_reloads_total{result=\"ok\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &proxy,
            &b_cert,
            "ai_proxy_tls_reloads_total{result=\"rejected\"}"
        ),
        Some(2.0)
    );
    // The expiry metric follows the served certificate, not the rejected files: one series
    // per subjectAltName entry.
    for domain in ["localhost", "127.0.0.1"] {
        assert_eq!(
            metric_value(
                &proxy,
                &b_cert,
                &format!(
                    "ai_proxy_tls_certificate_expiry_timestamp_seconds{{domain=\"{domain}\"}}"
                )
            ),
            Some(b_not_after),
            "{domain}"
        );
    }
}

#[test]
fn a_changed_pair_is_picked_up_without_a_signal() {
    let proxy = Proxy::start_in(tls_dir("CONFIG_POLL_INTERVAL=200ms\n"));
    let (b_cert, b_key) = self_signed(&proxy.dir, "b");
    install(&proxy.dir, &b_cert, &b_key);
    let deadline = Instant::now() + Duration::from_secs(10);
    while https_get(&proxy, &b_cert, "--http1.1", "/ping").is_none() {
        assert!(
            Instant::now() < deadline,
            "B never served:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        proxy
            .wait_log("certificate reloaded")
            .contains("file_changed")
    );
}

#[test]
fn a_stalled_handshake_is_closed_at_the_first_request_deadline_and_evictable() {
    let proxy = Proxy::start_in(tls_dir("REQUEST_HEADER_TIMEOUT=1s\nMAX_CONNECTIONS=2\n"));
    let ca = proxy.dir.join("a.crt");
    // Two connections that start a TLS record and stall: they fill the limit.
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(proxy.addr).unwrap();
            s.write_all(&[0x16, 0x03, 0x01]).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A real client still gets in: the oldest silent connection is evicted for it.
    assert!(
        https_get(&proxy, &ca, "--http1.1", "/ping").is_some(),
        "locked out by stalled handshakes"
    );
    // The other is closed by the deadline, counted as a header timeout.
    let started = Instant::now();
    let last = stalled.pop().unwrap();
    last.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let n = (&last).read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "a stalled handshake got bytes back");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
    assert_eq!(
        metric_value(&proxy, &ca, "ai_proxy_connections_header_timeout_total"),
        Some(1.0)
    );
}

#[test]
fn tls_config_errors_stop_the_start() {
    let cases: [(&str, &[&str]); 5] = [
        ("TLS_CERT_FILE=cert.pem\n", &["TLS_KEY_FILE", "set both"]),
        ("TLS_KEY_FILE=key.pem\n", &["TLS_CERT_FILE", "set both"]),
        (
            "TLS_DOMAINS=api.example.com\nTLS_CERT_FILE=cert.pem\nTLS_KEY_FILE=key.pem\n",
            &["TLS_DOMAINS", "not both"],
        ),
        (
            "TLS_DOMAINS=*.example.com\n",
            &["TLS_DOMAINS", "not a DNS name"],
        ),
        (
            "TLS_DOMAINS=api.example.com\nACME_DIRECTORY=http://ca.example/dir\n",
            &["ACME_DIRECTORY", "letsencrypt-staging"],
        ),
    ];
    for (extra, needles) in cases {
        let dir = config_dir(&default_env(extra), YAML);
        for cmd in ["serve", "check-config"] {
            let (code, _, err) = run(&[cmd], &dir);
            assert_eq!(code, 2, "{cmd} with {extra:?}: {err}");
            for needle in needles {
                assert!(err.contains(needle), "{cmd} with {extra:?}: {err}");
            }
        }
    }
    // A pair that does not belong together.
    let dir = tls_dir("");
    let (_, other_key) = self_signed(&dir, "other");
    std::fs::copy(other_key, dir.join("key.pem")).unwrap();
    for cmd in ["serve", "check-config"] {
        let (code, _, err) = run(&[cmd], &dir);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("not a pair"), "{cmd}: {err}");
    }
    // A good pair: check-config names the mode and the files.
    let dir = tls_dir("");
    let (code, out, err) = run(&["check-config"], &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mode: files"), "{out}");
    let (_, iso) = openssl_not_after(&dir.join("a.crt"));
    assert!(
        err.contains(&format!(
            "TLS: serving {} for localhost, 127.0.0.1 (",
            dir.join("cert.pem").display()
        )),
        "{err}"
    );
    assert!(err.contains(&format!("expires {iso}")), "{err}");
}

#[test]
fn plain_http_beyond_loopback_warns() {
    let env = default_env("").replace("BIND=127.0.0.1", "BIND=0.0.0.0");
    let proxy = Proxy::start(&env, YAML);
    proxy.wait_log("serving plain HTTP on a non-loopback address");
    let quiet = Proxy::start(&default_env(""), YAML);
    quiet.wait_log("\"msg\":\"listening\"");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !quiet.logs().contains("plain HTTP on a non-loopback"),
        "{}",
        quiet.logs()
    );
}
