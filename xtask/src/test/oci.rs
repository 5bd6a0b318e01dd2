//! The `oci` and `kubernetes` steps: `pkg/ai-proxy-oci.tar` checked against the OCI image spec
//! and loaded, run and used in Docker and Podman; `pkg/kubernetes/` validated against the
//! Kubernetes schemas, held to the hardening policy and played with `podman kube play`. The
//! engine parts are the pytest suite in `xtask/tests/oci/`.

use anyhow::{Context, Result, ensure};
use xshell::cmd;

use super::{Ctx, Outcome};
use crate::paths;
use crate::release::archive;
use crate::release::oci::OCI_CHECKSUM_NAME;
use crate::release::oci::{self, OCI_NAME, verify};
use crate::release::{CONTAINER_GID, CONTAINER_UID, DEFAULT_PORT};
use crate::tools::have as on_path;

pub fn image(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let path = ctx.pkg_file(OCI_NAME)?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let checked = verify::verify(&bytes)?;
    check_against_release(ctx, &checked, &archive::sha256_hex(&bytes))?;
    println!(
        "  {OCI_NAME}: OCI layout and manifest.json valid; image {}, {} bytes, diff_id {}",
        checked.manifest_digest,
        bytes.len(),
        checked.diff_id
    );

    if !on_path("skopeo") {
        return ctx.unavailable("skopeo is not installed", "apt-get install skopeo");
    }
    skopeo_keeps_the_digest(ctx, &path, &checked.manifest_digest)?;

    for engine in ["docker", "podman"] {
        if let Some(outcome) = engine_missing(ctx, engine)? {
            return Ok(outcome);
        }
        pytest_file(ctx, "test_image.py", Some(engine))?;
    }
    Ok(Outcome::Passed)
}

pub fn kubernetes(ctx: &mut Ctx<'_>) -> Result<Outcome> {
    let dir = paths::pkg_dir().join(oci::kubernetes::DIR_NAME);
    for name in [
        oci::kubernetes::MANIFEST_NAME,
        oci::kubernetes::KUSTOMIZATION_NAME,
    ] {
        ctx.pkg_file(&format!("{}/{name}", oci::kubernetes::DIR_NAME))?;
    }
    if !on_path("kubernetes-validate") {
        return ctx.unavailable(
            "kubernetes-validate is not installed",
            "pip install -r .ci/requirements.txt",
        );
    }
    pytest_file(ctx, "test_manifests.py", None)?;
    println!("  {}: schemas and hardening policy pass", dir.display());

    if let Some(outcome) = engine_missing(ctx, "podman")? {
        return Ok(outcome);
    }
    if !on_path("catatonit") {
        return ctx.unavailable(
            "catatonit is not installed (podman's pod infra container needs it)",
            "apt-get install catatonit",
        );
    }
    ctx.pkg_file(OCI_NAME)?;
    pytest_file(ctx, "test_kube.py", None)?;
    Ok(Outcome::Passed)
}

/// The facts the release promises, taken from its constants rather than restated.
fn check_against_release(
    ctx: &Ctx<'_>,
    checked: &verify::Verified,
    file_sha256: &str,
) -> Result<()> {
    let config = &checked.config["config"];
    let user = format!("{CONTAINER_UID}:{CONTAINER_GID}");
    ensure!(
        config["User"] == user.as_str(),
        "the image's User is {}, expected {user}",
        config["User"]
    );
    let port = format!("{DEFAULT_PORT}/tcp");
    ensure!(
        config["ExposedPorts"].get(&port).is_some(),
        "the image does not expose {port}: {}",
        config["ExposedPorts"]
    );
    ensure!(
        config["Healthcheck"]["Test"][0] == "CMD",
        "the image has no exec-form healthcheck: {}",
        config["Healthcheck"]
    );

    let tarball = ctx.pkg_tarball()?;
    let binary = tarball
        .iter()
        .find(|e| e.name == "ai-proxy")
        .context("no ai-proxy in the tarball")?;
    let in_layer = checked
        .layer
        .get("app/ai-proxy")
        .context("the layer has no app/ai-proxy")?;
    ensure!(
        in_layer.sha256 == archive::sha256_hex(&binary.data)
            && in_layer.mode == 0o755
            && (in_layer.uid, in_layer.gid) == (0, 0),
        "the layer's app/ai-proxy ({in_layer:?}) is not the tarball's binary, mode 0755, owned by root"
    );
    let version = checked.config["config"]["Labels"]["org.opencontainers.image.version"]
        .as_str()
        .context("the image has no version label")?;
    ensure!(
        checked.repo_tags == [format!("{}:{version}", oci::IMAGE_REPOSITORY)]
            && checked.ref_name == version,
        "the archive names the image {:?} / ref {}, expected ai-proxy:{version}",
        checked.repo_tags,
        checked.ref_name
    );

    let sums = std::fs::read_to_string(ctx.pkg_file(OCI_CHECKSUM_NAME)?)
        .context("reading the checksum file")?;
    let line = archive::checksum_line(file_sha256, OCI_NAME);
    ensure!(
        sums.lines().any(|l| format!("{l}\n") == line),
        "{OCI_CHECKSUM_NAME} does not list {OCI_NAME} with its sha256 {file_sha256}"
    );
    Ok(())
}

/// `skopeo copy` to another layout keeps the manifest bytes, so the digest a registry reports
/// after `skopeo copy oci-archive:… docker://…` is the one the release printed.
fn skopeo_keeps_the_digest(
    ctx: &Ctx<'_>,
    archive_path: &std::path::Path,
    digest: &str,
) -> Result<()> {
    let source = format!("oci-archive:{}", archive_path.display());
    let inspected = cmd!(ctx.sh, "skopeo inspect --raw {source}")
        .read()
        .context("skopeo inspect --raw on the image archive")?;
    ensure!(
        format!("sha256:{}", archive::sha256_hex(inspected.as_bytes())) == digest,
        "skopeo reads a manifest whose digest is not {digest}"
    );
    let dir = crate::fs::scratch_dir("test-oci-skopeo");
    let target = format!("oci:{}:copied", dir.join("layout").display());
    cmd!(ctx.sh, "skopeo copy --quiet {source} {target}")
        .run()
        .context("skopeo copy oci-archive: → oci:")?;
    let copied = cmd!(ctx.sh, "skopeo inspect --raw {target}")
        .read()
        .context("skopeo inspect on the copy")?;
    let _ = std::fs::remove_dir_all(&dir);
    ensure!(
        copied == inspected,
        "skopeo copy changed the manifest, so a pushed image would have another digest than {digest}"
    );
    println!("  skopeo: reads it, and a copy keeps the manifest and digest {digest}");
    Ok(())
}

/// `Some(outcome)` when `engine` is not usable here (a failure under CI).
fn engine_missing(ctx: &Ctx<'_>, engine: &str) -> Result<Option<Outcome>> {
    let usable = on_path(engine)
        && cmd!(ctx.sh, "{engine} info")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok();
    if usable {
        return Ok(None);
    }
    ctx.unavailable(
        &format!("`{engine} info` fails: the engine is not usable"),
        &format!("install {engine} and start it (see .ci/engines.sh), until `{engine} info` works"),
    )
    .map(Some)
}

fn pytest_file(ctx: &Ctx<'_>, file: &str, engine: Option<&str>) -> Result<()> {
    let path = paths::project_root().join("xtask/tests/oci").join(file);
    let mut command = cmd!(ctx.sh, "python3 -m pytest -q -s -p no:cacheprovider {path}")
        .env("AI_PROXY_PKG", paths::pkg_dir());
    if let Some(engine) = engine {
        command = command.env("ENGINE", engine);
    }
    command.run().with_context(|| {
        format!(
            "xtask/tests/oci/{file} failed{} (above)",
            engine
                .map(|e| format!(" with ENGINE={e}"))
                .unwrap_or_default()
        )
    })
}
