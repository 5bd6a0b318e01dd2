//! Load from `wrk`: the same POST over keep-alive connections, latency from its histogram.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

const SCRIPT: &str = include_str!("../../bench/post.lua");

/// Writes the wrk Lua script that POSTs `body` with the bench token and `headers` (a peer's
/// routing headers; none for ai-proxy and nginx).
pub fn write_script(path: &Path, body: &str, token: &str, headers: &[(&str, &str)]) -> Result<()> {
    if body.contains("]==]") {
        bail!("request body would end the Lua long string");
    }
    let mut script = SCRIPT.replace("@BODY@", body).replace("@TOKEN@", token);
    for (name, value) in headers {
        if [name, value].iter().any(|t| t.contains(['"', '\\', '\n'])) {
            bail!("header {name}: {value} would break the Lua string");
        }
        let _ = writeln!(script, "wrk.headers[\"{name}\"] = \"{value}\"");
    }
    fs::write(path, script).with_context(|| format!("writing {}", path.display()))
}

/// What one wrk run measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

pub struct Load<'a> {
    pub script: &'a Path,
    pub url: &'a str,
    pub connections: u32,
    pub threads: u32,
    pub seconds: u32,
    pub pin: Option<usize>,
}

pub fn run(load: &Load<'_>) -> Result<Outcome> {
    let mut cmd = super::servers::command(Path::new("wrk"), load.pin);
    cmd.arg("--latency")
        .arg(format!("-t{}", load.threads.min(load.connections)))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.seconds))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(load.script)
        .arg(load.url);
    let out = cmd
        .output()
        .context("running wrk (install it with `apt-get install nginx wrk`)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk {} failed ({}): {}{}",
            load.url,
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&text).with_context(|| format!("parsing wrk output for {}:\n{text}", load.url))
}

/// Microseconds from wrk's `123.45us` / `1.20ms` / `2.00s` / `1.00m`.
fn parse_time_us(text: &str) -> Result<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("time {text:?} has no unit"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().with_context(|| format!("time {text:?}"))?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => bail!("unknown time unit in {text:?}"),
    };
    Ok(value * scale)
}

pub fn parse(text: &str) -> Result<Outcome> {
    let mut out = Outcome::default();
    let (mut p50, mut p90, mut p99) = (None, None, None);
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", t] => p50 = Some(parse_time_us(t)?),
            ["90%", t] => p90 = Some(parse_time_us(t)?),
            ["99%", t] => p99 = Some(parse_time_us(t)?),
            [n, "requests", "in", secs, ..] => {
                out.requests = n.parse().context("request count")?;
                out.seconds = parse_time_us(secs.trim_end_matches(','))? / 1e6;
            }
            ["Requests/sec:", r] => out.rps = r.parse().context("requests/sec")?,
            ["Non-2xx", "or", "3xx", "responses:", n] => out.non_2xx = n.parse()?,
            ["Socket", "errors:", rest @ ..] => {
                out.socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    out.p50_us = p50.context("no 50% line (wrk without --latency?)")?;
    out.p90_us = p90.context("no 90% line")?;
    out.p99_us = p99.context("no 99% line")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_latency_output() {
        let text = "Running 1s test @ http://127.0.0.1:1/v1/chat/completions
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   310.05us  120.00us   5.01ms   90.00%
  Latency Distribution
     50%  290.00us
     75%  320.00us
     90%  400.00us
     99%    1.20ms
  51234 requests in 1.00s, 25.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  51234.00
Transfer/sec:     25.00MB
";
        let o = parse(text).unwrap();
        assert_eq!(o.requests, 51234);
        assert!((o.p50_us - 290.0).abs() < 1e-9);
        assert!((o.p99_us - 1200.0).abs() < 1e-9);
        assert!((o.rps - 51234.0).abs() < 1e-9);
        assert_eq!((o.non_2xx, o.socket_errors), (7, 3));
        assert!((o.seconds - 1.0).abs() < 1e-9);
    }
}
