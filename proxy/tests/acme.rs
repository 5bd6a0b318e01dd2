//! Automatic certificates against a real ACME server: Debian's `pebble` and
//! `pebble-challtestsrv` (its DNS answers every name with 127.0.0.1), all on 127.0.0.1.
//! Pebble validates TLS-ALPN-01 on its `tlsPort`, so the proxy listens there. Evidence comes
//! from outside the proxy where it can: pebble's own log (orders), curl trusting pebble's
//! root, file modes from the file system, `/metrics` scraped over HTTPS. Missing `pebble` fails
//! these tests (install it with `apt-get install pebble`); they never skip.
//!
//! Debian's pebble (2.4.0) has no renewal information (ARI): its directory lacks
//! `renewalInfo`, so it shows the lifetime rule. For ARI, [`FakeAri`] (a few lines of Python)
//! serves pebble's directory with `renewalInfo` added and the windows the test chooses;
//! everything else — account, orders, validation, certificates — is pebble's.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const DOMAIN: &str = "gw.example.test";
const YAML: &str = "providers: []\nmodels: []\n";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed to make pebble's certificate");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and pebble's own HTTPS certificate (for 127.0.0.1) in `dir`: `ca.pem`, `cert.pem`,
/// `key.pem`.
fn pebble_certificate(dir: &Path) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=pebble test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "srv.csr",
        ],
        dir,
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
        dir,
    );
}

/// A running pebble and its DNS, with a fresh CA for pebble's own HTTPS.
struct Pebble {
    children: Vec<Child>,
    dir: PathBuf,
    /// The ACME directory URL.
    url: String,
    /// The port pebble validates TLS-ALPN-01 on: the proxy's port.
    tls_port: u16,
    management: u16,
}

impl Pebble {
    /// Starts challtestsrv and pebble issuing certificates valid for `validity_secs`.
    fn start(validity_secs: u64) -> Self {
        for bin in ["pebble", "pebble-challtestsrv"] {
            let found = Command::new(bin).arg("-h").output().is_ok();
            assert!(
                found,
                "`{bin}` is missing: install the Debian package `pebble` (apt-get install pebble)"
            );
        }
        let dir = config_dir("", "");
        pebble_certificate(&dir);
        let (acme, management, dns, chall, tls_port) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        std::fs::write(
            dir.join("pebble.json"),
            format!(
                r#"{{"pebble":{{"listenAddress":"127.0.0.1:{acme}","managementListenAddress":"127.0.0.1:{management}","certificate":"cert.pem","privateKey":"key.pem","httpPort":{http},"tlsPort":{tls_port},"ocspResponderURL":"","externalAccountBindingRequired":false,"certificateValidityPeriod":{validity_secs}}}}}"#,
                http = free_port()
            ),
        )
        .unwrap();
        let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(name)).unwrap());
        let challtestsrv = Command::new("pebble-challtestsrv")
            .args([
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
                "-dns01",
                &format!("127.0.0.1:{dns}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{chall}"),
            ])
            .stdout(log("challtestsrv.log"))
            .stderr(log("challtestsrv.err"))
            .spawn()
            .unwrap();
        let pebble = Command::new("pebble")
            .args([
                "-config",
                "pebble.json",
                "-strict=false",
                "-dnsserver",
                &format!("127.0.0.1:{dns}"),
            ])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .current_dir(&dir)
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .unwrap();
        let me = Self {
            children: vec![challtestsrv, pebble],
            url: format!("https://127.0.0.1:{acme}/dir"),
            dir,
            tls_port,
            management,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while me.curl_ca(&[&me.url]).0 != 0 {
            assert!(
                Instant::now() < deadline,
                "pebble did not start: {}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    fn curl_ca(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5", "--cacert"])
            .arg(self.dir.join("ca.pem"))
            .args(args)
            .output()
            .expect("curl is needed");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Pebble's root for the certificates it issues (regenerated at every start).
    fn root(&self) -> PathBuf {
        let (code, pem) =
            self.curl_ca(&[&format!("https://127.0.0.1:{}/roots/0", self.management)]);
        assert_eq!(code, 0);
        let path = self.dir.join("root.pem");
        std::fs::write(&path, pem).unwrap();
        path
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }

    /// Orders pebble received.
    fn orders(&self) -> usize {
        self.log().matches("POST /order-plz").count()
    }

    /// The `.env` of a proxy on pebble's TLS port for `DOMAIN`.
    fn env(&self, cache: &Path, extra: &str) -> String {
        default_env(&format!(
            "TLS_DOMAINS={DOMAIN}\nACME_DIRECTORY={}\nACME_CA_FILE={}\nTLS_CACHE_DIR={}\nACME_RETRY_BASE=1s\n{extra}",
            self.url,
            self.dir.join("ca.pem").display(),
            cache.display()
        ))
        .replace("PORT=0", &format!("PORT={}", self.tls_port))
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs in front of pebble: `GET /dir` is pebble's directory plus `renewalInfo`, and
/// `GET /renewal-info/ID` answers from `windows.json` — `first` for the first certificate
/// asked about, `later` for any other — with its `Retry-After`. Every path asked is appended
/// to `ari.log`.
const FAKE_ARI: &str = r#"
import json, os, ssl, sys, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
workdir, upstream = sys.argv[1], sys.argv[2]
path = lambda name: os.path.join(workdir, name)
to_pebble = ssl.create_default_context(cafile=path("ca.pem"))
first = []
stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_GET(self):
        with open(path("ari.log"), "a") as log:
            log.write(self.path + "\n")
        if self.path == "/dir":
            directory = json.load(urllib.request.urlopen(upstream, context=to_pebble))
            directory["renewalInfo"] = "https://127.0.0.1:%d/renewal-info" % self.server.server_port
            return self.reply(directory, {})
        cert_id = self.path.rsplit("/", 1)[-1]
        if not first:
            first.append(cert_id)
        with open(path("windows.json")) as f:
            window = json.load(f)["first" if cert_id == first[0] else "later"]
        self.reply({"suggestedWindow": {"start": stamp(window["start"]), "end": stamp(window["end"])}},
                   {"Retry-After": str(window["retry_after"])})
    def reply(self, body, headers):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(path("cert.pem"), path("key.pem"))
server.socket = tls.wrap_socket(server.socket, server_side=True)
with open(path("ari.port.tmp"), "w") as f:
    f.write(str(server.server_port))
os.rename(path("ari.port.tmp"), path("ari.port"))
server.serve_forever()
"#;

/// [`FAKE_ARI`] running beside pebble (with pebble's HTTPS certificate).
struct FakeAri {
    child: Child,
    dir: PathBuf,
    /// The directory URL to give the proxy.
    url: String,
}

impl FakeAri {
    fn start(pebble: &Pebble) -> Self {
        std::fs::write(pebble.dir.join("fake_ari.py"), FAKE_ARI).unwrap();
        let child = Command::new("python3")
            .arg(pebble.dir.join("fake_ari.py"))
            .arg(&pebble.dir)
            .arg(&pebble.url)
            .stderr(Stdio::from(
                std::fs::File::create(pebble.dir.join("ari.err")).unwrap(),
            ))
            .spawn()
            .expect("python3 is needed for the renewal-information stand-in");
        let port_file = pebble.dir.join("ari.port");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !port_file.exists() {
            assert!(
                Instant::now() < deadline,
                "the ARI stand-in did not start: {}",
                std::fs::read_to_string(pebble.dir.join("ari.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let port = std::fs::read_to_string(port_file).unwrap();
        Self {
            child,
            dir: pebble.dir.clone(),
            url: format!("https://127.0.0.1:{port}/dir"),
        }
    }

    /// Sets the windows (seconds since the epoch) and the `Retry-After` of both.
    fn windows(&self, first: (u64, u64), later: (u64, u64), retry_after: u64) {
        let json = format!(
            r#"{{"first":{{"start":{},"end":{},"retry_after":{retry_after}}},"later":{{"start":{},"end":{},"retry_after":{retry_after}}}}}"#,
            first.0, first.1, later.0, later.1
        );
        let tmp = self.dir.join("windows.json.tmp");
        std::fs::write(&tmp, json).unwrap();
        std::fs::rename(tmp, self.dir.join("windows.json")).unwrap();
    }

    /// Renewal-information requests received.
    fn polls(&self) -> usize {
        std::fs::read_to_string(self.dir.join("ari.log"))
            .unwrap_or_default()
            .matches("/renewal-info/")
            .count()
    }
}

impl Drop for FakeAri {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One series of the proxy's `/metrics`, fetched over HTTPS trusting `root`.
fn scrape(port: u16, root: &Path, series: &str) -> Option<f64> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{DOMAIN}:{port}:127.0.0.1"), "-H"])
        .arg(format!("authorization: Bearer {TOKEN}"))
        .arg(format!("https://{DOMAIN}:{port}/metrics"))
        .output()
        .unwrap();
    metric(&String::from_utf8_lossy(&out.stdout), series)
}

/// The proxy's log lines containing `needle`, parsed.
fn lines_with(proxy: &Proxy, needle: &str) -> Vec<serde_json::Value> {
    proxy
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits up to `secs` for `n` log lines containing `needle`.
fn wait_lines(proxy: &Proxy, needle: &str, n: usize, secs: u64) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let found = lines_with(proxy, needle);
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} `{needle}` lines after {secs} s:\n{}",
            proxy.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET /ping over HTTPS to `DOMAIN` on 127.0.0.1 trusting `root`: the HTTP version used.
fn ping(port: u16, root: &Path, version: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", version, "--cacert"])
        .arg(root)
        .args([
            "--resolve",
            &format!("{DOMAIN}:{port}:127.0.0.1"),
            "-w",
            " %{http_version}",
        ])
        .arg(format!("https://{DOMAIN}:{port}/ping"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.strip_prefix("pong ").map(str::to_owned)
}

/// The serial of the certificate served on `port`, read by openssl.
fn served_serial(port: u16) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} -servername {DOMAIN} </dev/null 2>/dev/null | openssl x509 -noout -serial"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn issues_over_tls_alpn_and_a_restart_reuses_the_cache() {
    let pebble = Pebble::start(3600);
    let root = pebble.root();
    let work = config_dir("", "");
    let cache = work.join("tls");
    let env = pebble.env(&cache, "");
    let dir = config_dir(&env, YAML);
    let started = Instant::now();
    let mut proxy = Proxy::start_in(dir.clone());
    let issued = proxy.wait_log("certificate issued");
    eprintln!(
        "MEASURED first issuance: {:?} from start ({issued})",
        started.elapsed()
    );
    assert_eq!(pebble.orders(), 1, "{}", pebble.log());
    assert_eq!(
        ping(pebble.tls_port, &root, "--http1.1").as_deref(),
        Some("1.1")
    );
    assert_eq!(
        ping(pebble.tls_port, &root, "--http2").as_deref(),
        Some("2")
    );
    // The healthcheck speaks TLS on its own (TLS_DOMAINS in .env).
    let port = pebble.tls_port.to_string();
    assert_eq!(run(&["healthcheck", "--port", &port], &dir).0, 0);

    // The cache: 0700, every file 0600, nothing else.
    assert_eq!(mode(&cache), 0o700);
    let files: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }

    // check-config names the mode and the cached certificate.
    let (code, out, err) = run(&["check-config"], &dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mode: acme"), "{out}");
    assert!(
        err.contains("TLS: cached certificate") && err.contains(DOMAIN),
        "{err}"
    );

    // A restart serves the cached certificate at once and orders nothing.
    proxy.signal("TERM");
    assert!(proxy.wait_exit(Duration::from_secs(10)).success());
    drop(proxy);
    let restarted = Instant::now();
    // A new config directory (the old one went with the process), the same cache.
    let proxy = Proxy::start_in(config_dir(&env, YAML));
    proxy.wait_log("serving the cached certificate");
    assert_eq!(
        ping(pebble.tls_port, &root, "--http2").as_deref(),
        Some("2")
    );
    eprintln!(
        "MEASURED restart with cache: first HTTPS answer {:?} after start",
        restarted.elapsed()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        pebble.orders(),
        1,
        "the restart ordered again: {}",
        pebble.log()
    );
    assert!(
        !proxy.logs().contains("certificate issued"),
        "{}",
        proxy.logs()
    );
}

#[test]
fn short_certificates_are_renewed_while_a_client_polls() {
    // 60-second certificates: renewed at half their lifetime, so within ~30 s.
    let pebble = Pebble::start(60);
    let root = pebble.root();
    let cache = config_dir("", "").join("tls");
    let proxy = Proxy::start_in(config_dir(&pebble.env(&cache, ""), YAML));
    proxy.wait_log("certificate issued");
    let first = served_serial(pebble.tls_port);
    assert!(first.starts_with("serial="), "{first}");
    let deadline = Instant::now() + Duration::from_secs(50);
    let (mut polls, mut renewed) = (0, false);
    while Instant::now() < deadline {
        assert!(
            ping(pebble.tls_port, &root, "--http2").is_some(),
            "a request failed after {polls} polls:\n{}",
            proxy.logs()
        );
        polls += 1;
        if proxy.logs().matches("certificate issued").count() >= 2
            && served_serial(pebble.tls_port) != first
        {
            renewed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(renewed, "no renewal within 50 s:\n{}", proxy.logs());
    assert!(ping(pebble.tls_port, &root, "--http1.1").is_some());
    assert_eq!(pebble.orders(), 2, "{}", pebble.log());

    // Debian's pebble offers no renewal window: the lifetime rule chose the time, half of
    // the 60-second lifetime before the end.
    let (_, directory) = pebble.curl_ca(&[&pebble.url]);
    assert!(!directory.contains("renewalInfo"), "{directory}");
    let plans = lines_with(&proxy, "renewal scheduled");
    assert!(
        !plans.is_empty() && plans.iter().all(|p| p["rule"] == "lifetime"),
        "{}",
        proxy.logs()
    );
    let port = pebble.tls_port;
    let expiry = scrape(
        port,
        &root,
        &format!("ai_proxy_tls_certificate_expiry_timestamp_seconds{{domain=\"{DOMAIN}\"}}"),
    )
    .unwrap();
    let renewal = scrape(
        port,
        &root,
        "ai_proxy_tls_certificate_renewal_timestamp_seconds{rule=\"lifetime\"}",
    )
    .unwrap();
    eprintln!(
        "MEASURED lifetime rule: renewal {} s before notAfter",
        expiry - renewal
    );
    assert!(
        (29.0..=31.0).contains(&(expiry - renewal)),
        "{expiry} {renewal}"
    );
    for (series, want) in [
        ("ai_proxy_acme_orders_total{kind=\"issuance\"}", 1.0),
        ("ai_proxy_acme_orders_total{kind=\"renewal\"}", 1.0),
        ("ai_proxy_acme_renewal_info_total{result=\"ok\"}", 0.0),
    ] {
        assert_eq!(scrape(port, &root, series), Some(want), "{series}");
    }
}

#[test]
fn renewal_follows_the_cas_window_when_it_offers_one() {
    // One-hour certificates: the lifetime rule would renew 30 minutes in. The CA's window
    // says 25 to 28 minutes, then moves to a few seconds from now.
    let pebble = Pebble::start(3600);
    let root = pebble.root();
    let ari = FakeAri::start(&pebble);
    let t0 = unix_now();
    let far = (t0 + 1500, t0 + 1680);
    ari.windows(far, far, 1);
    let cache = config_dir("", "").join("tls");
    let env = pebble.env(&cache, "").replace(
        &format!("ACME_DIRECTORY={}", pebble.url),
        &format!("ACME_DIRECTORY={}", ari.url),
    );
    let proxy = Proxy::start_in(config_dir(&env, YAML));
    wait_lines(&proxy, "certificate issued", 1, 20);
    let plan = wait_lines(&proxy, "renewal scheduled", 1, 10).remove(0);
    assert_eq!(plan["rule"], "ari", "{plan}");
    let port = pebble.tls_port;
    let at = scrape(
        port,
        &root,
        "ai_proxy_tls_certificate_renewal_timestamp_seconds{rule=\"ari\"}",
    )
    .unwrap();
    let secs = |t: u64| f64::from(u32::try_from(t).unwrap());
    assert!(
        (secs(far.0)..=secs(far.1)).contains(&at),
        "{at} outside {far:?}"
    );
    // The window is fetched again at its Retry-After (1 s, the floor ACME_RETRY_BASE allows).
    let deadline = Instant::now() + Duration::from_secs(10);
    while ari.polls() < 4 {
        assert!(Instant::now() < deadline, "{} polls", ari.polls());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(pebble.orders(), 1, "{}", pebble.log());
    let first = served_serial(port);

    // The CA moves the window to 2-4 s from now: the next fetch sees it, the renewal follows.
    let moved_at = unix_now();
    let near = (moved_at + 2, moved_at + 4);
    ari.windows(near, far, 1);
    let issued = wait_lines(&proxy, "certificate issued", 2, 20);
    let renewed_at = unix_now();
    assert_eq!(issued[1]["kind"], "renewal");
    assert!(renewed_at >= near.0, "renewed before the window opened");
    assert_ne!(served_serial(port), first);
    let chosen = lines_with(&proxy, "renewal scheduled")
        .into_iter()
        .find(|p| p["in_secs"].as_u64().is_some_and(|s| s <= 4))
        .expect("a plan inside the moved window");
    // The renewal order named the certificate it replaces. Pebble 2.4 ignores the field and
    // does not echo it, so the proxy ordered again without it; a CA that honours it takes the
    // first order.
    let refused = lines_with(&proxy, "ordering without `replaces`");
    assert!(refused.len() <= 1, "{}", proxy.logs());
    eprintln!(
        "MEASURED ARI: window moved to +2..+4 s at {moved_at}, plan {chosen}, renewed {} s after the move, orders refused for `replaces`: {}; the lifetime rule said +1800 s after notBefore",
        renewed_at - moved_at,
        refused.len()
    );
    assert_eq!(pebble.orders(), 2 + refused.len(), "{}", pebble.log());

    // The new certificate gets its own (far) window and is not renewed again.
    let plans = wait_lines(&proxy, "renewal scheduled", 3, 10);
    assert_eq!(plans.last().unwrap()["rule"], "ari");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lines_with(&proxy, "certificate issued").len(), 2);
    for (series, want) in [
        ("ai_proxy_acme_orders_total{kind=\"issuance\"}", 1.0),
        ("ai_proxy_acme_orders_total{kind=\"renewal\"}", 1.0),
        ("ai_proxy_acme_renewal_info_total{result=\"failed\"}", 0.0),
    ] {
        assert_eq!(scrape(port, &root, series), Some(want), "{series}");
    }
    assert!(
        scrape(
            port,
            &root,
            "ai_proxy_acme_renewal_info_total{result=\"ok\"}"
        )
        .unwrap()
            >= 5.0
    );
}

#[test]
fn an_unreachable_ca_is_retried_on_the_schedule_and_nothing_is_served_in_clear() {
    let work = config_dir("", "");
    let dir = config_dir(
        &default_env(&format!(
            "TLS_DOMAINS={DOMAIN}\nACME_DIRECTORY=https://{}/dir\nTLS_CACHE_DIR={}\nACME_RETRY_BASE=1s\n",
            refused_addr(),
            work.join("tls").display()
        )),
        YAML,
    );
    let (code, _, err) = run(&["check-config"], &dir);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no cached certificate"), "{err}");
    let proxy = Proxy::start_in(dir.clone());
    // Attempts at 0 s and 1 s; the next only at 11 s.
    std::thread::sleep(Duration::from_secs(5));
    let failures: Vec<serde_json::Value> = proxy
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("certificate issuance failed"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(failures.len(), 2, "{}", proxy.logs());
    assert_eq!(failures[0]["reason"], "unreachable");
    assert_eq!(failures[0]["retry_in_secs"], 1);
    assert_eq!(failures[1]["retry_in_secs"], 10);
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("new account"),
        "{}",
        failures[0]
    );
    // No certificate: the healthcheck fails, a TLS client fails, plain HTTP gets the 400.
    let port = proxy.addr.port().to_string();
    assert_eq!(run(&["healthcheck", "--port", &port], &dir).0, 1);
    assert!(ping(proxy.addr.port(), Path::new("/dev/null"), "--http1.1").is_none());
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            &format!("http://127.0.0.1:{port}/ping"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "This port speaks HTTPS only: use https://\n"
    );
}

#[test]
fn a_failed_validation_is_logged_and_retried() {
    let pebble = Pebble::start(3600);
    // The proxy listens elsewhere than pebble's tlsPort: validation connects to nothing.
    let cache = config_dir("", "").join("tls");
    let env = pebble
        .env(&cache, "")
        .replace(&format!("PORT={}", pebble.tls_port), "PORT=0");
    let proxy = Proxy::start_in(config_dir(&env, YAML));
    let deadline = Instant::now() + Duration::from_secs(20);
    while proxy.logs().matches("certificate issuance failed").count() < 2 {
        assert!(Instant::now() < deadline, "{}", proxy.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = proxy.wait_log("certificate issuance failed");
    assert!(
        line.contains("connection refused") || line.contains("validation"),
        "{line}"
    );
    assert_eq!(
        pebble.orders(),
        2,
        "one order per attempt: {}",
        pebble.log()
    );
}
