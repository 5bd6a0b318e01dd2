//! The command line and the process lifecycle: config errors, check-config, healthcheck,
//! not-configured providers, SIGHUP reload, graceful shutdown with a stream in flight.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use http_body_util::BodyExt;

const ONE: &str = "providers:\n  - name: oa\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\n    api_key: ${OPENAI_API_KEY}\nmodels:\n  - name: m\n    targets:\n      - provider: oa\n";

#[test]
fn version() {
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("ai-proxy {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn config_errors_name_file_line_and_key() {
    let cases: [(&str, String, &str, &[&str]); 6] = [
        (
            "placeholder token",
            default_env("").replace(TOKEN, "replace-with-a-long-random-token"),
            ONE,
            &[".env:3: AUTH_TOKEN", "placeholder"],
        ),
        (
            "short token",
            default_env("").replace(TOKEN, "short"),
            ONE,
            &[".env:3: AUTH_TOKEN", "shorter than 16"],
        ),
        (
            "empty token",
            default_env("").replace(TOKEN, ""),
            ONE,
            &[".env:3: AUTH_TOKEN", "empty"],
        ),
        (
            "missing port",
            default_env("").replace("PORT=0\n", ""),
            ONE,
            &[".env: PORT", "not set"],
        ),
        (
            "undefined variable",
            default_env("").replace("OPENAI_API_KEY=", "OTHER="),
            ONE,
            &[
                "provider-config.yaml:5:14 (providers[0].api_key)",
                "OPENAI_API_KEY",
            ],
        ),
        (
            "unknown field",
            default_env(""),
            "",
            &["provider-config.yaml:4:5", "unknown field `bse_url`"],
        ),
    ];
    for (name, env, yaml, needles) in cases {
        let yaml = if yaml.is_empty() {
            ONE.replace("    base_url:", "    bse_url:")
        } else {
            yaml.to_owned()
        };
        let dir = config_dir(&env, &yaml);
        for cmd in ["check-config", "serve"] {
            let (code, _, stderr) = run(&[cmd], &dir);
            assert_eq!(code, 2, "{name} ({cmd}): {stderr}");
            for needle in needles {
                assert!(
                    stderr.contains(needle),
                    "{name} ({cmd}): {needle:?} not in {stderr}"
                );
            }
            assert!(!stderr.contains(OPENAI_KEY), "{name}: key in the error");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn check_config_redacts_and_reports_unconfigured_providers() {
    let yaml = format!("{ONE}  - name: c\n    targets:\n      - provider: an\nx: 1\n")
        .replace("x: 1\n", "");
    let yaml = yaml.replace(
        "models:",
        "  - name: an\n    kind: anthropic\n    base_url: https://api.anthropic.com\n    api_key: ${ANTHROPIC_API_KEY}\n    headers:\n      x-extra: ${OPENAI_API_KEY}\nmodels:",
    );
    let dir = config_dir(&default_env("").replace(ANTHROPIC_KEY, ""), &yaml);
    let (code, stdout, stderr) = run(&["check-config"], &dir);
    assert_eq!(code, 0, "{stderr}");
    for secret in [TOKEN, OPENAI_KEY] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "secret printed:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.contains("auth_token: '***'"), "{stdout}");
    assert!(
        stdout.contains("not configured: set ANTHROPIC_API_KEY"),
        "{stdout}"
    );
    assert!(stderr.contains("ANTHROPIC_API_KEY"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn shipped_templates_pass_once_the_token_is_set() {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    let env = std::fs::read_to_string(templates.join(".env.example")).unwrap();
    let yaml = std::fs::read_to_string(templates.join("provider-config.yaml")).unwrap();
    assert!(env.lines().any(|l| l == "PORT=8080"));
    assert!(
        env.lines()
            .any(|l| l == "AUTH_TOKEN=replace-with-a-long-random-token")
    );
    assert!(
        env.lines().any(|l| l == "OPENAI_API_KEY=")
            && env.lines().any(|l| l == "ANTHROPIC_API_KEY=")
    );
    let dir = config_dir(&env, &yaml);
    let (code, _, stderr) = run(&["check-config"], &dir);
    assert_eq!(code, 2, "the placeholder token must be refused: {stderr}");
    std::fs::write(
        dir.join(".env"),
        env.replace(
            "replace-with-a-long-random-token",
            "a-random-installer-token-0123",
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = run(&["check-config"], &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("not configured: set OPENAI_API_KEY"),
        "{stdout}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn not_configured_provider_gives_503_naming_the_variable_and_is_skipped() {
    let good = Mock::start(Reply::Json(200, "{}")).await;
    let yaml = format!(
        "providers:\n  - name: off\n    kind: openai\n    base_url: https://api.openai.com/v1\n    api_key: ${{UNSET_KEY}}\n  - name: on\n    kind: openai\n    base_url: {}\n    api_key: ${{OPENAI_API_KEY}}\nmodels:\n  - name: only-off\n    targets:\n      - provider: off\n  - name: off-then-on\n    targets:\n      - provider: off\n      - provider: on\n",
        good.base()
    );
    let proxy = Proxy::start(&default_env("UNSET_KEY=\n"), &yaml);
    proxy.wait_log("\"set\":\"UNSET_KEY\"");
    let (status, _, text) = post(
        &proxy.url("/v1/chat/completions"),
        r#"{"model":"only-off"}"#,
    )
    .await;
    assert_eq!(status, 503, "{text}");
    assert!(
        json(&text)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("UNSET_KEY"),
        "{text}"
    );
    let (status, _, _) = post(
        &proxy.url("/v1/chat/completions"),
        r#"{"model":"off-then-on"}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(good.calls(), 1);
}

#[tokio::test]
async fn healthcheck_command() {
    let proxy = Proxy::start(&default_env(""), ONE);
    let port = proxy.addr.port().to_string();
    let ok = bin()
        .args(["healthcheck", "--port", &port])
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = bin()
        .args(["healthcheck"])
        .env("PORT", &port)
        .status()
        .unwrap();
    assert!(ok.success(), "healthcheck must default to $PORT");
    let closed = refused_addr().port().to_string();
    let out = bin()
        .args(["healthcheck", "--port", &closed])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));
}

async fn model_ids(proxy: &Proxy) -> Vec<String> {
    let resp = send(&proxy.url("/v1/models"), "GET", &[("x-api-key", TOKEN)], "").await;
    let v = json(&String::from_utf8_lossy(
        &resp.into_body().collect().await.unwrap().to_bytes(),
    ));
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sighup_reloads_a_good_file_and_keeps_the_old_one_on_a_bad_file() {
    let a = Mock::start(Reply::Json(200, r#"{"from":"a"}"#)).await;
    let b = Mock::start(Reply::Json(200, r#"{"from":"b"}"#)).await;
    let providers = |extra_model: &str| {
        format!(
            "providers:\n  - name: a\n    kind: openai\n    base_url: {}\n    api_key: ${{OPENAI_API_KEY}}\n  - name: b\n    kind: openai\n    base_url: {}\n    api_key: ${{OPENAI_API_KEY}}\nmodels:\n  - name: m\n    targets:\n      - provider: {extra_model}\n",
            a.base(),
            b.base()
        )
    };
    let proxy = Proxy::start(&default_env(""), &providers("a"));
    let url = proxy.url("/v1/chat/completions");
    assert_eq!(post(&url, r#"{"model":"m"}"#).await.2, r#"{"from":"a"}"#);

    // Good file: model m now goes to b, and m2 exists.
    let good = format!(
        "{}  - name: m2\n    targets:\n      - provider: a\n",
        providers("b")
    );
    std::fs::write(proxy.dir.join("provider-config.yaml"), good).unwrap();
    proxy.signal("HUP");
    proxy.wait_log("configuration reloaded");
    assert_eq!(model_ids(&proxy).await, ["m", "m2"]);
    assert_eq!(post(&url, r#"{"model":"m"}"#).await.2, r#"{"from":"b"}"#);

    // Bad file: rejected with a log line naming the place; the running config stays.
    std::fs::write(
        proxy.dir.join("provider-config.yaml"),
        providers("b").replace("kind: openai", "kind: opneai"),
    )
    .unwrap();
    proxy.signal("HUP");
    let line = proxy.wait_log("reload rejected");
    assert!(line.contains("provider-config.yaml:3:"), "{line}");
    assert_eq!(model_ids(&proxy).await, ["m", "m2"]);
    assert_eq!(post(&url, r#"{"model":"m2"}"#).await.2, r#"{"from":"a"}"#);
}

/// Points `dir/..data` at a fresh `dir/..N` holding `yaml`, atomically, as the kubelet
/// updates a mounted `ConfigMap` (`provider-config.yaml -> ..data/provider-config.yaml`).
fn configmap_swap(dir: &Path, n: u32, yaml: &str) {
    let version = dir.join(format!("..{n}"));
    std::fs::create_dir(&version).unwrap();
    std::fs::write(version.join("provider-config.yaml"), yaml).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{n}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

/// Issue 15: a ConfigMap-style symlink swap is noticed within `CONFIG_POLL_INTERVAL` and
/// applied; a bad file swapped in is rejected, logged and counted, and the old config kept.
#[tokio::test]
async fn content_change_by_symlink_swap_reloads_without_a_signal() {
    let one = |model: &str| {
        format!(
            "providers:\n  - name: a\n    kind: openai\n    base_url: http://127.0.0.1:9/v1\nmodels:\n  - name: {model}\n    targets:\n      - provider: a\n"
        )
    };
    let dir = config_dir(&default_env("CONFIG_POLL_INTERVAL=300ms\n"), "");
    std::fs::remove_file(dir.join("provider-config.yaml")).unwrap();
    configmap_swap(&dir, 1, &one("old"));
    std::os::unix::fs::symlink(
        "..data/provider-config.yaml",
        dir.join("provider-config.yaml"),
    )
    .unwrap();
    let proxy = Proxy::start_in(dir.clone());
    assert_eq!(model_ids(&proxy).await, ["old"]);

    configmap_swap(&dir, 2, &one("new"));
    let swapped = Instant::now();
    while model_ids(&proxy).await != ["new"] {
        assert!(
            swapped.elapsed() < Duration::from_secs(5),
            "not reloaded; logs:\n{}",
            proxy.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let applied_after = swapped.elapsed();
    let line = proxy.wait_log("configuration reloaded");
    assert!(line.contains("\"trigger\":\"file_changed\""), "{line}");

    configmap_swap(&dir, 3, &one("bad").replace("kind: openai", "kind: opneai"));
    let line = proxy.wait_log("reload rejected");
    assert!(
        line.contains("file_changed") && line.contains("provider-config.yaml:3:"),
        "{line}"
    );
    assert_eq!(model_ids(&proxy).await, ["new"]);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let rejected = proxy
        .lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("reload rejected"))
        .count();
    assert_eq!(
        rejected, 1,
        "a bad file is reported once, not at every poll"
    );
    let resp = send(&proxy.url("/metrics"), "GET", &[("x-api-key", TOKEN)], "").await;
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("ai_proxy_config_reloads_total{result=\"rejected\"} 1"),
        "{text}"
    );
    println!(
        "MEASURED issue 15: symlink swap applied after {applied_after:?} (CONFIG_POLL_INTERVAL=300ms)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_stream_in_flight_finish_then_exits_0() {
    let chunks = vec!["data: x\n\n"; 10];
    let up = Mock::start(Reply::Sse {
        chunks: chunks.clone(),
        interval: Duration::from_millis(100),
        then_abort: false,
    })
    .await;
    let yaml = yaml(
        &[("up", "openai", &up.base(), "")],
        "  - name: m\n    targets:\n      - provider: up\n",
    );
    let mut proxy = Proxy::start(&default_env(""), &yaml);
    let resp = send(
        &proxy.url("/v1/chat/completions"),
        "POST",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        r#"{"model":"m","stream":true}"#.to_owned(),
    )
    .await;
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    proxy.signal("TERM");
    proxy.wait_log("shutting down");
    // New connections are refused once shutdown started.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(proxy.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let remaining = body
        .collect()
        .await
        .expect("the stream in flight was cut")
        .to_bytes();
    let mut all = first.to_vec();
    all.extend_from_slice(&remaining);
    assert_eq!(String::from_utf8_lossy(&all), chunks.concat());
    let status = tokio::task::block_in_place(|| proxy.wait_exit(Duration::from_secs(10)));
    assert!(status.success(), "exit status {status:?}");
}
