//! `pkg/kubernetes/`: the manifests rendered from `templates/kubernetes/` for the release's image,
//! with the container hardening of `installer.sh`'s `run` flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use askama::Template;

use crate::release::render::Params;

/// The directory under `pkg/` and its files.
pub const DIR_NAME: &str = "kubernetes";
pub const MANIFEST_NAME: &str = "ai-proxy.yaml";
pub const KUSTOMIZATION_NAME: &str = "kustomization.yaml";

/// Replicas for availability; the `HorizontalPodAutoscaler`'s minimum too.
pub const REPLICAS: u32 = 2;
pub const MAX_REPLICAS: u32 = 6;
/// The container limits, the same as the installer's `--memory 512m --cpus 0.5` (a unit test
/// compares them with templates/installer.sh).
pub const MEMORY: &str = "512Mi";
pub const CPU: &str = "500m";
/// The in-memory `/tmp`, the size of the installer's `--tmpfs /tmp:…,size=16m`.
pub const TMP_SIZE: &str = "16Mi";
/// How long the kubelet waits before SIGTERM, so endpoints are removed first.
pub const PRESTOP_SECS: u64 = 5;
/// Added to the pre-stop sleep and the proxy's drain so the kubelet never SIGKILLs a draining
/// proxy.
pub const TERMINATION_MARGIN_SECS: u64 = 2;

/// The proxy's source file that defines its default drain time.
const PROXY_CONFIG_SOURCE: &str = "proxy/src/config/settings.rs";
const DRAIN_CONST: &str = "pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 =";

#[derive(Template)]
#[template(path = "kubernetes/ai-proxy.yaml", escape = "none")]
struct Manifest<'a> {
    version: &'a str,
    image: &'a str,
    port: u16,
    uid: u32,
    gid: u32,
    replicas: u32,
    max_replicas: u32,
    memory: &'a str,
    cpu: &'a str,
    tmp_size: &'a str,
    prestop_secs: u64,
    drain_secs: u64,
    termination_grace_secs: u64,
    provider_config: &'a str,
}

#[derive(Template)]
#[template(path = "kubernetes/kustomization.yaml", escape = "none")]
struct Kustomization<'a> {
    version: &'a str,
    image: &'a str,
}

/// The rendered files, `(name, text)`.
pub fn render(
    p: &Params,
    image: &str,
    provider_config: &str,
    drain_secs: u64,
) -> Result<Vec<(&'static str, String)>> {
    let indented = indent(provider_config, "    ");
    let manifest = Manifest {
        version: &p.version,
        image,
        port: p.port,
        uid: p.uid,
        gid: p.gid,
        replicas: REPLICAS,
        max_replicas: MAX_REPLICAS,
        memory: MEMORY,
        cpu: CPU,
        tmp_size: TMP_SIZE,
        prestop_secs: PRESTOP_SECS,
        drain_secs,
        termination_grace_secs: PRESTOP_SECS + drain_secs + TERMINATION_MARGIN_SECS,
        provider_config: &indented,
    };
    let kustomization = Kustomization {
        version: &p.version,
        image,
    };
    Ok(vec![
        (MANIFEST_NAME, finish(manifest.render(), MANIFEST_NAME)?),
        (
            KUSTOMIZATION_NAME,
            finish(kustomization.render(), KUSTOMIZATION_NAME)?,
        ),
    ])
}

fn finish(rendered: askama::Result<String>, name: &str) -> Result<String> {
    let mut text = rendered.with_context(|| format!("rendering templates/{DIR_NAME}/{name}"))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// A YAML literal block's body: every non-blank line indented, no final newline.
fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|line| {
            if line.trim().is_empty() {
                String::new()
            } else {
                format!("{by}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The image reference and the rendered files for a release: the shipped
/// `provider-config.yaml` (from the tarball's entries) and the proxy's default drain time.
pub fn for_release(
    p: &Params,
    given_image: Option<&str>,
    image_digest: &str,
    entries: &[crate::release::archive::Entry],
) -> Result<(String, Vec<(&'static str, String)>)> {
    let image = image_reference(given_image, &p.version, image_digest)?;
    let config = entries
        .iter()
        .find(|e| e.name == "provider-config.yaml")
        .context("the tarball has no provider-config.yaml for the ConfigMap")?;
    let config = std::str::from_utf8(&config.data).context("provider-config.yaml is not UTF-8")?;
    let drain = proxy_drain_secs(&crate::paths::project_root())?;
    let files = render(p, &image, config, drain)?;
    Ok((image, files))
}

/// Writes the rendered files into `dir/kubernetes/` and returns that directory.
pub fn write(dir: &Path, files: &[(&'static str, String)]) -> Result<PathBuf> {
    let out = dir.join(DIR_NAME);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for (name, text) in files {
        crate::fs::write_atomic(&out.join(name), text.as_bytes(), 0o644)?;
    }
    Ok(out)
}

/// Moves `staging/kubernetes/` to `out/kubernetes/`, replacing the previous release's.
pub fn replace(staging: &Path, out: &Path) -> Result<PathBuf> {
    let target = out.join(DIR_NAME);
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("removing the previous {}", target.display()))?;
    }
    std::fs::rename(staging.join(DIR_NAME), &target)
        .with_context(|| format!("moving the manifests to {}", target.display()))?;
    Ok(target)
}

/// The proxy's default `SHUTDOWN_GRACE_SECS`, read from its source so the termination grace
/// period follows it.
pub fn proxy_drain_secs(root: &Path) -> Result<u64> {
    let path = root.join(PROXY_CONFIG_SOURCE);
    let source =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let value = source
        .lines()
        .find_map(|line| line.trim().strip_prefix(DRAIN_CONST))
        .with_context(|| {
            format!(
                "{PROXY_CONFIG_SOURCE} no longer has `{DRAIN_CONST} N;`: update \
                 xtask/src/release/kubernetes.rs, which sets terminationGracePeriodSeconds from it"
            )
        })?;
    value
        .trim()
        .trim_end_matches(';')
        .trim()
        .parse()
        .with_context(|| format!("{PROXY_CONFIG_SOURCE}: `{DRAIN_CONST}{value}` is not a number"))
}

/// The image the manifests run: `ai-proxy:VERSION` by default (the name `docker load`, `kind
/// load image-archive` and `k3s ctr images import` give the archive); a given reference without
/// a digest is pinned to this release's image digest (which `skopeo copy` keeps), one without a
/// tag gets `:VERSION` too.
pub fn image_reference(given: Option<&str>, version: &str, digest: &str) -> Result<String> {
    let Some(given) = given else {
        return Ok(format!("{}:{version}", super::IMAGE_REPOSITORY));
    };
    ensure!(
        !given.is_empty()
            && given
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".:/@_-".contains(&b)),
        "--image {given:?}: expected REGISTRY/NAME[:TAG][@sha256:DIGEST] (letters, digits, . : / @ _ -)"
    );
    if given.contains('@') {
        return Ok(given.to_owned());
    }
    let last = given.rsplit('/').next().unwrap_or(given);
    let tagged = if last.contains(':') {
        given.to_owned()
    } else {
        format!("{given}:{version}")
    };
    Ok(format!("{tagged}@{digest}"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn root() -> PathBuf {
        crate::paths::project_root()
    }

    fn rendered() -> Vec<(&'static str, String)> {
        let config =
            std::fs::read_to_string(root().join("templates/provider-config.yaml")).unwrap();
        let image =
            image_reference(Some("registry.example.com/ai-proxy"), "1.2.3", DIGEST).unwrap();
        render(
            &crate::release::oci::tests::fixed_params(),
            &image,
            &config,
            8,
        )
        .unwrap()
    }

    /// Same contract as render.rs's golden files: `UPDATE_GOLDEN=1 cargo test -p xtask` refreshes.
    #[test]
    fn manifests_match_golden() {
        for (name, text) in rendered() {
            crate::release::render::tests::check_golden(&format!("{DIR_NAME}/{name}"), &text);
        }
    }

    #[test]
    fn provider_config_is_embedded_verbatim() {
        let config =
            std::fs::read_to_string(root().join("templates/provider-config.yaml")).unwrap();
        let manifest = &rendered()[0].1;
        let start = manifest.find("  provider-config.yaml: |\n").unwrap() + 26;
        let end = manifest[start..].find("\n---\n").unwrap() + start;
        let body: Vec<&str> = manifest[start..end]
            .lines()
            .map(|l| l.strip_prefix("    ").unwrap_or(l))
            .collect();
        assert_eq!(body.join("\n"), config.trim_end());
    }

    #[test]
    fn grace_period_outlasts_prestop_and_drain() {
        let drain = proxy_drain_secs(&root()).unwrap();
        let manifest = &rendered()[0].1;
        let grace = PRESTOP_SECS + drain + TERMINATION_MARGIN_SECS;
        assert!(grace > PRESTOP_SECS + drain);
        assert!(manifest.contains(&format!(
            "terminationGracePeriodSeconds: {}\n",
            PRESTOP_SECS + 8 + 2
        )));
    }

    #[test]
    fn limits_match_the_installer() {
        let installer = std::fs::read_to_string(root().join("templates/installer.sh")).unwrap();
        let flag = |name: &str| {
            installer
                .lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .unwrap_or_else(|| panic!("installer.sh no longer runs with `{name}`"))
                .trim()
                .to_owned()
        };
        assert_eq!(
            format!("{}Mi", flag("--memory ").trim_end_matches('m')),
            MEMORY
        );
        let tmpfs = installer
            .split("tmpfs_options=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("installer.sh no longer sets tmpfs_options");
        assert!(
            tmpfs
                .split(',')
                .any(|o| o == format!("size={}m", TMP_SIZE.trim_end_matches("Mi"))),
            "{tmpfs}"
        );
        let millis: u32 = CPU.trim_end_matches('m').parse().unwrap();
        assert_eq!(flag("--cpus "), (f64::from(millis) / 1000.0).to_string());
    }

    #[test]
    fn image_references() {
        assert_eq!(
            image_reference(None, "1.2.3", DIGEST).unwrap(),
            "ai-proxy:1.2.3"
        );
        assert_eq!(
            image_reference(Some("reg.example:5000/team/ai-proxy"), "1.2.3", DIGEST).unwrap(),
            format!("reg.example:5000/team/ai-proxy:1.2.3@{DIGEST}")
        );
        assert_eq!(
            image_reference(Some("reg.example/ai-proxy:stable"), "1.2.3", DIGEST).unwrap(),
            format!("reg.example/ai-proxy:stable@{DIGEST}")
        );
        let pinned = format!("reg.example/ai-proxy:1.2.3@{DIGEST}");
        assert_eq!(
            image_reference(Some(&pinned), "1.2.3", DIGEST).unwrap(),
            pinned
        );
        for bad in ["", "reg/ai proxy", "reg/ai-proxy\"\nkind: Pod", "reg/{x}"] {
            assert!(
                image_reference(Some(bad), "1.2.3", DIGEST).is_err(),
                "{bad:?}"
            );
        }
    }
}
