//! `pkg/ai-proxy-oci.tar`: the container image as an OCI image-layout archive, written without
//! Docker and byte-reproducible like the tarball.
//!
//! The image is the one `templates/Dockerfile` describes: its rendered text is parsed here
//! ([`ImageSpec::from_dockerfile`]), so user, ports, labels, healthcheck, entrypoint and command
//! are written once, in the template, and an instruction this module does not understand fails
//! the release instead of being dropped. `COPY` takes its bytes from the tarball's entries, the
//! files the installer builds the same image from.
//!
//! Besides the OCI layout (`oci-layout`, `index.json`, `blobs/sha256/…`) the archive carries a
//! Docker-style `manifest.json` naming the same blobs: Docker 20.10 loads nothing without it.
//! `podman load` (4.3) takes the OCI view and drops the healthcheck, which podman reads only from
//! a Docker-format config; `podman pull docker-archive:…` takes the Docker view and keeps it
//! (docs/kubernetes.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use flate2::{Compression, GzBuilder};
use serde_json::{Value, json};

use super::archive::{self, Entry};
use super::elf;
use super::render::Params;

pub mod kubernetes;
pub mod verify;

/// The file name of the image archive in `pkg/`.
pub const OCI_NAME: &str = "ai-proxy-oci.tar";
/// Its checksum file, in `sha256sum -c` format.
pub const OCI_CHECKSUM_NAME: &str = "ai-proxy-oci.tar.sha256";
/// The repository part of the name the image is loaded under (`ai-proxy:VERSION`).
pub const IMAGE_REPOSITORY: &str = "ai-proxy";

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The annotation naming the tag of an image in an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd (`ctr import`, kind, k3s) reads for the image's full name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// gzip's "unknown" operating system byte, as in the release tarball.
const GZIP_OS_UNKNOWN: u8 = 255;

/// A Dockerfile `HEALTHCHECK`, in the units of the Docker image config (nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", argv…]`.
    pub test: Vec<String>,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub start_period_ns: u64,
    pub retries: u64,
}

/// What the Dockerfile says the image is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageSpec {
    pub labels: BTreeMap<String, String>,
    /// `(source in the build context, absolute destination)`.
    pub copies: Vec<(String, String)>,
    pub user: String,
    /// `8080/tcp`.
    pub exposed_ports: Vec<String>,
    pub healthcheck: Option<Healthcheck>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

impl ImageSpec {
    /// Reads the subset of Dockerfile syntax `templates/Dockerfile` uses: one `FROM scratch`
    /// stage, `LABEL k="v" …` (with `\` continuations), `COPY src /dest`, exec-form `RUN`
    /// (a build-time smoke test, run by the release itself), `USER`, `EXPOSE`, `HEALTHCHECK
    /// [--opt=…] CMD [...]`, exec-form `ENTRYPOINT` and `CMD`. Anything else is an error naming
    /// the line, so the OCI image can never silently differ from the Dockerfile's.
    pub fn from_dockerfile(text: &str) -> Result<Self> {
        let mut spec = Self::default();
        let mut from_seen = false;
        for (line_no, instruction) in logical_lines(text) {
            let (keyword, rest) = instruction
                .split_once(char::is_whitespace)
                .map_or((instruction.as_str(), ""), |(k, r)| (k, r.trim()));
            let at = || format!("templates/Dockerfile line {line_no}: `{keyword}`");
            match keyword.to_ascii_uppercase().as_str() {
                "FROM" => {
                    ensure!(
                        rest == "scratch" && !from_seen,
                        "{}: the OCI image is built only for one `FROM scratch` stage",
                        at()
                    );
                    from_seen = true;
                }
                "LABEL" => {
                    for (key, value) in parse_labels(rest).with_context(at)? {
                        spec.labels.insert(key, value);
                    }
                }
                "COPY" => {
                    let parts: Vec<&str> = rest.split_whitespace().collect();
                    ensure!(
                        parts.len() == 2
                            && !parts[0].starts_with("--")
                            && parts[1].starts_with('/'),
                        "{}: only `COPY SOURCE /ABSOLUTE/DEST` is supported",
                        at()
                    );
                    spec.copies.push((parts[0].to_owned(), parts[1].to_owned()));
                }
                "RUN" => {
                    exec_form(rest).with_context(at)?;
                }
                "USER" => rest.clone_into(&mut spec.user),
                "EXPOSE" => {
                    for port in rest.split_whitespace() {
                        let port = if port.contains('/') {
                            port.to_owned()
                        } else {
                            format!("{port}/tcp")
                        };
                        spec.exposed_ports.push(port);
                    }
                }
                "HEALTHCHECK" => spec.healthcheck = Some(parse_healthcheck(rest).with_context(at)?),
                "ENTRYPOINT" => spec.entrypoint = exec_form(rest).with_context(at)?,
                "CMD" => spec.cmd = exec_form(rest).with_context(at)?,
                _ => bail!(
                    "{}: xtask/src/release/oci.rs does not translate this instruction into the \
                     OCI image config; teach it, so the two images stay the same",
                    at()
                ),
            }
        }
        ensure!(from_seen, "templates/Dockerfile has no `FROM scratch`");
        ensure!(
            !spec.entrypoint.is_empty(),
            "templates/Dockerfile has no ENTRYPOINT"
        );
        Ok(spec)
    }
}

/// Instructions with their first line number: comments and blank lines dropped, `\` line
/// continuations joined.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if current.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        let (start, mut joined) = current.take().unwrap_or((index + 1, String::new()));
        if let Some(head) = trimmed.strip_suffix('\\') {
            joined.push_str(head.trim_end());
            joined.push(' ');
            current = Some((start, joined));
        } else {
            joined.push_str(trimmed);
            out.push((start, joined));
        }
    }
    out.extend(current);
    out
}

/// `["a", "b"]`: a JSON array of strings, as Docker's exec form is.
fn exec_form(rest: &str) -> Result<Vec<String>> {
    serde_json::from_str(rest)
        .with_context(|| format!("`{rest}` is not exec form (a JSON array of strings)"))
}

/// `k="v" k2="v2"`: double-quoted values with `\"` and `\\` escapes.
fn parse_labels(rest: &str) -> Result<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut chars = rest.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(labels);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        ensure!(
            chars.next() == Some('"'),
            "label `{key}`: only double-quoted values are supported"
        );
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => value.extend(chars.next()),
                Some(c) => value.push(c),
                None => bail!("label `{key}`: unterminated value"),
            }
        }
        labels.push((key.trim().to_owned(), value));
    }
}

fn parse_healthcheck(rest: &str) -> Result<Healthcheck> {
    let (options, command) = rest
        .split_once("CMD ")
        .context("only `HEALTHCHECK [--option=value…] CMD [...]` is supported")?;
    let mut check = Healthcheck {
        test: std::iter::once("CMD".to_owned())
            .chain(exec_form(command.trim())?)
            .collect(),
        // Docker's defaults for an option the Dockerfile leaves out.
        interval_ns: 30 * NANOS_PER_SEC,
        timeout_ns: 30 * NANOS_PER_SEC,
        start_period_ns: 0,
        retries: 3,
    };
    for option in options.split_whitespace() {
        let (name, value) = option
            .strip_prefix("--")
            .and_then(|o| o.split_once('='))
            .with_context(|| format!("`{option}` is not --name=value"))?;
        match name {
            "interval" => check.interval_ns = duration_ns(value)?,
            "timeout" => check.timeout_ns = duration_ns(value)?,
            "start-period" => check.start_period_ns = duration_ns(value)?,
            "retries" => {
                check.retries = value
                    .parse()
                    .with_context(|| format!("--retries={value}"))?;
            }
            _ => bail!("HEALTHCHECK option --{name} is not translated into the OCI image"),
        }
    }
    Ok(check)
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// `5s`, `500ms`, `1m` in nanoseconds.
fn duration_ns(value: &str) -> Result<u64> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .with_context(|| format!("duration `{value}` has no unit"))?;
    let (number, unit) = value.split_at(split);
    let number: u64 = number
        .parse()
        .with_context(|| format!("duration `{value}`"))?;
    let scale = match unit {
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        _ => bail!("duration `{value}`: unit `{unit}` is not ms, s, m or h"),
    };
    Ok(number * scale)
}

/// One content-addressed blob of the layout.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Blob {
    /// `sha256:<hex>`.
    pub fn digest(&self) -> String {
        format!("sha256:{}", archive::sha256_hex(&self.bytes))
    }

    fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest(),
            "size": self.bytes.len(),
        })
    }

    fn path(&self) -> String {
        format!("blobs/sha256/{}", archive::sha256_hex(&self.bytes))
    }
}

/// The image as the release writes it.
#[derive(Debug, Clone)]
pub struct Image {
    /// `ai-proxy:VERSION`, the name `docker load` and `podman load` give it.
    pub name: String,
    pub manifest: Blob,
    pub layer: Blob,
    /// `sha256:<hex>` of the uncompressed layer tar, as the config's `rootfs.diff_ids` lists it.
    pub diff_id: String,
    /// The `.tar` file: the OCI layout plus `manifest.json`.
    pub archive: Vec<u8>,
}

impl Image {
    /// The digest a registry reports after `skopeo copy`, which keeps the manifest's bytes:
    /// what a pinned reference `REGISTRY/ai-proxy:VERSION@sha256:…` names.
    pub fn digest(&self) -> String {
        self.manifest.digest()
    }
}

/// The image and its manifests, built before anything is written.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub image: Image,
    pub manifests: Vec<(&'static str, String)>,
}

/// What a release wrote for containers and Kubernetes.
#[derive(Debug, Clone)]
pub struct ImageRelease {
    /// The image (manifest) digest, `sha256:…`.
    pub digest: String,
    /// `ai-proxy-oci.tar`.
    pub oci: PathBuf,
}

/// Builds the image from the tarball's entries — the Dockerfile's build context, rendered
/// Dockerfile included — and renders the manifests for it (`given_image`: `cargo xtask release
/// --image`).
pub fn prepare(
    params: &Params,
    given_image: Option<&str>,
    entries: &[Entry],
    mtime: u64,
) -> Result<Prepared> {
    let machine = elf::Machine::for_target(&params.target)?;
    let dockerfile = entries
        .iter()
        .find(|e| e.name == "Dockerfile")
        .context("the tarball has no Dockerfile to build the image from")?;
    let dockerfile =
        std::str::from_utf8(&dockerfile.data).context("the rendered Dockerfile is not UTF-8")?;
    let image = build(dockerfile, entries, machine, &params.version, mtime)?;
    println!(
        "      image {} ({}): layer {} bytes, diff_id {}",
        image.digest(),
        image.name,
        image.layer.bytes.len(),
        image.diff_id
    );
    let (image_ref, manifests) =
        kubernetes::for_release(params, given_image, &image.digest(), entries)?;
    println!("      kubernetes/ runs {image_ref}");
    Ok(Prepared { image, manifests })
}

impl Prepared {
    /// Writes the archive and the manifests into the staging directory; returns the archive's
    /// sha256 for the checksum file.
    pub fn stage(&self, staging: &Path) -> Result<String> {
        crate::fs::write_atomic(&staging.join(OCI_NAME), &self.image.archive, 0o644)?;
        kubernetes::write(staging, &self.manifests)?;
        Ok(archive::sha256_hex(&self.image.archive))
    }

    /// Moves what [`Prepared::stage`] wrote into the output directory.
    pub fn install(self, staging: &Path, out: &Path) -> Result<ImageRelease> {
        let oci = out.join(OCI_NAME);
        std::fs::rename(staging.join(OCI_NAME), &oci)
            .with_context(|| format!("moving {OCI_NAME} into {}", out.display()))?;
        kubernetes::replace(staging, out)?;
        Ok(ImageRelease {
            digest: self.image.digest(),
            oci,
        })
    }
}

/// The OCI `architecture` of a target's CPU.
pub fn oci_architecture(machine: elf::Machine) -> Result<&'static str> {
    Ok(match machine.arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "riscv64" => "riscv64",
        other => bail!("no OCI architecture name for {other}"),
    })
}

/// Builds the image from the rendered Dockerfile and the tarball's entries (the Dockerfile's
/// build context), every timestamp `mtime`.
pub fn build(
    dockerfile: &str,
    context: &[Entry],
    machine: elf::Machine,
    version: &str,
    mtime: u64,
) -> Result<Image> {
    let spec = ImageSpec::from_dockerfile(dockerfile)?;
    let uncompressed = layer_tar(&spec, context, mtime)?;
    let diff_id = format!("sha256:{}", archive::sha256_hex(&uncompressed));
    let layer = Blob {
        media_type: MEDIA_LAYER_GZIP,
        bytes: gzip(&uncompressed)?,
    };
    let created = rfc3339(mtime);
    let config = Blob {
        media_type: MEDIA_CONFIG,
        bytes: to_json(&config_json(
            &spec,
            oci_architecture(machine)?,
            &created,
            &diff_id,
        ))?,
    };
    let manifest = Blob {
        media_type: MEDIA_MANIFEST,
        bytes: to_json(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
        }))?,
    };
    let name = format!("{IMAGE_REPOSITORY}:{version}");
    let mut index_entry = manifest.descriptor();
    index_entry["annotations"] = json!({
        ANNOTATION_CONTAINERD_NAME: format!("docker.io/library/{name}"),
        ANNOTATION_REF_NAME: version,
    });
    let index = to_json(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [index_entry],
    }))?;
    let docker_manifest = to_json(&json!([{
        "Config": config.path(),
        "RepoTags": [name],
        "Layers": [layer.path()],
    }]))?;

    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            to_json(&json!({"imageLayoutVersion": "1.0.0"}))?,
        ),
        ("index.json".into(), index),
        ("manifest.json".into(), docker_manifest),
    ];
    for blob in [&layer, &config, &manifest] {
        files.push((blob.path(), blob.bytes.clone()));
    }
    let archive = outer_tar(files, mtime)?;
    Ok(Image {
        name,
        manifest,
        layer,
        diff_id,
        archive,
    })
}

/// The OCI image config, with Docker's `Healthcheck` (which the OCI spec does not define but
/// Docker and Podman read from the Docker-style view of the archive).
fn config_json(spec: &ImageSpec, architecture: &str, created: &str, diff_id: &str) -> Value {
    let mut config = json!({
        "User": spec.user,
        "ExposedPorts": spec.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
        "Entrypoint": spec.entrypoint,
        "Labels": spec.labels,
    });
    if !spec.cmd.is_empty() {
        config["Cmd"] = json!(spec.cmd);
    }
    if let Some(check) = &spec.healthcheck {
        config["Healthcheck"] = json!({
            "Test": check.test,
            "Interval": check.interval_ns,
            "Timeout": check.timeout_ns,
            "StartPeriod": check.start_period_ns,
            "Retries": check.retries,
        });
    }
    let history: Vec<Value> = spec
        .copies
        .iter()
        .map(|(src, dest)| {
            json!({
                "created": created,
                "created_by": format!("COPY {src} {dest} (cargo xtask release)"),
            })
        })
        .collect();
    json!({
        "created": created,
        "architecture": architecture,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": history,
    })
}

fn to_json(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value).context("serializing image metadata")
}

/// The layer: each `COPY` destination with its parent directories, owned by root, with the
/// source's mode from the tarball, as `docker build` makes it.
fn layer_tar(spec: &ImageSpec, context: &[Entry], mtime: u64) -> Result<Vec<u8>> {
    let mut dirs = std::collections::BTreeSet::new();
    let mut files = BTreeMap::new();
    for (src, dest) in &spec.copies {
        let entry = context
            .iter()
            .find(|e| e.name == *src)
            .with_context(|| format!("the Dockerfile copies `{src}`, which the tarball lacks"))?;
        let path = dest.trim_start_matches('/');
        let mut parent = std::path::Path::new(path).parent();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(format!("{}/", dir.display()));
            parent = dir.parent();
        }
        ensure!(
            files.insert(path.to_owned(), entry).is_none(),
            "the Dockerfile copies to {dest} twice"
        );
    }
    let mut tar = tar::Builder::new(Vec::new());
    for dir in &dirs {
        append(&mut tar, dir, tar::EntryType::Directory, 0o755, &[], mtime)?;
    }
    for (path, entry) in &files {
        append(
            &mut tar,
            path,
            tar::EntryType::Regular,
            entry.mode,
            &entry.data,
            mtime,
        )?;
    }
    tar.into_inner().context("finishing the layer tar")
}

/// The archive users load: directories, then files, each sorted, all owned by root.
fn outer_tar(mut files: Vec<(String, Vec<u8>)>, mtime: u64) -> Result<Vec<u8>> {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tar = tar::Builder::new(Vec::new());
    for dir in ["blobs/", "blobs/sha256/"] {
        append(&mut tar, dir, tar::EntryType::Directory, 0o755, &[], mtime)?;
    }
    for (name, data) in &files {
        append(&mut tar, name, tar::EntryType::Regular, 0o644, data, mtime)?;
    }
    tar.into_inner().context("finishing the image archive")
}

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    mode: u32,
    data: &[u8],
    mtime: u64,
) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header
        .set_username("")
        .and_then(|()| header.set_groupname(""))
        .context("clearing the tar owner names")?;
    tar.append_data(&mut header, name, data)
        .with_context(|| format!("adding {name} to the image"))
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(Vec::new(), Compression::best());
    gz.write_all(bytes).context("compressing the layer")?;
    gz.finish().context("finishing the layer's gzip stream")
}

/// `1970-01-01T00:00:00Z` for seconds since the epoch (UTC, proleptic Gregorian).
pub fn rfc3339(epoch: u64) -> String {
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::release::render;

    /// The fixed inputs of the golden files.
    pub(crate) fn fixed_params() -> render::Params {
        render::tests::fixed()
    }

    fn dockerfile() -> String {
        render::dockerfile(&fixed_params()).unwrap()
    }

    fn context() -> Vec<Entry> {
        vec![
            Entry {
                name: "ai-proxy".into(),
                mode: 0o755,
                data: b"\x7fELF not really".to_vec(),
            },
            Entry {
                name: "LICENSE".into(),
                mode: 0o644,
                data: b"MIT".to_vec(),
            },
        ]
    }

    fn image() -> Image {
        build(
            &dockerfile(),
            &context(),
            elf::X86_64,
            "1.2.3",
            1_700_000_000,
        )
        .unwrap()
    }

    #[test]
    fn reads_the_dockerfile() {
        let spec = ImageSpec::from_dockerfile(&dockerfile()).unwrap();
        assert_eq!(spec.user, "1001:1001");
        assert_eq!(spec.exposed_ports, ["8080/tcp"]);
        assert_eq!(spec.entrypoint, ["/app/ai-proxy"]);
        assert_eq!(spec.cmd, ["serve", "--config-dir", "/app/config"]);
        assert_eq!(
            spec.copies,
            [("ai-proxy".to_owned(), "/app/ai-proxy".to_owned())]
        );
        assert_eq!(
            spec.healthcheck,
            Some(Healthcheck {
                test: ["CMD", "/app/ai-proxy", "healthcheck", "--port", "8080"]
                    .map(String::from)
                    .to_vec(),
                interval_ns: 5_000_000_000,
                timeout_ns: 3_000_000_000,
                start_period_ns: u64::from(render::HEALTH_START_PERIOD_SECS) * 1_000_000_000,
                retries: 3,
            })
        );
        assert_eq!(spec.labels["org.opencontainers.image.version"], "1.2.3");
        assert_eq!(spec.labels["org.opencontainers.image.title"], "ai-proxy");
        assert_eq!(spec.labels.len(), 5, "{:?}", spec.labels);
    }

    #[test]
    fn refuses_what_it_cannot_translate() {
        for (text, expect) in [
            (
                "FROM scratch\nENV A=b\nENTRYPOINT [\"/x\"]\n",
                "line 2: `ENV`",
            ),
            ("FROM debian\nENTRYPOINT [\"/x\"]\n", "FROM scratch"),
            ("FROM scratch\nENTRYPOINT /x\n", "exec form"),
            (
                "FROM scratch\nHEALTHCHECK --foo=1s CMD [\"/x\"]\nENTRYPOINT [\"/x\"]\n",
                "--foo",
            ),
            ("FROM scratch\nCMD [\"x\"]\n", "no ENTRYPOINT"),
        ] {
            let err = format!("{:#}", ImageSpec::from_dockerfile(text).unwrap_err());
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }

    #[test]
    fn follows_the_spec_and_the_dockerfile() {
        let image = image();
        let checked = verify::verify(&image.archive).unwrap();
        assert_eq!(checked.manifest_digest, image.digest());
        assert_eq!(checked.diff_id, image.diff_id);
        assert_eq!(checked.repo_tags, ["ai-proxy:1.2.3"]);
        assert_eq!(checked.ref_name, "1.2.3");
        let config = &checked.config;
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["config"]["User"], "1001:1001");
        assert_eq!(config["config"]["ExposedPorts"], json!({"8080/tcp": {}}));
        assert_eq!(config["config"]["Entrypoint"], json!(["/app/ai-proxy"]));
        assert_eq!(
            config["config"]["Cmd"],
            json!(["serve", "--config-dir", "/app/config"])
        );
        assert_eq!(
            config["config"]["Healthcheck"]["Test"],
            json!(["CMD", "/app/ai-proxy", "healthcheck", "--port", "8080"])
        );
        assert_eq!(
            config["config"]["Healthcheck"]["Interval"],
            5_000_000_000_u64
        );
        assert_eq!(
            config["config"]["Labels"]["org.opencontainers.image.source"],
            "https://github.com/ai-proxy/ai-proxy"
        );
        // Exactly the Dockerfile's COPY: the binary, root-owned, with its parent directory.
        let layer: Vec<(&str, u32, u64, u64)> = checked
            .layer
            .iter()
            .map(|(name, e)| (name.as_str(), e.mode, e.uid, e.gid))
            .collect();
        assert_eq!(
            layer,
            [("app/", 0o755, 0, 0), ("app/ai-proxy", 0o755, 0, 0)]
        );
        assert_eq!(
            checked.layer["app/ai-proxy"].sha256,
            archive::sha256_hex(b"\x7fELF not really")
        );
    }

    #[test]
    fn is_byte_reproducible_and_changes_with_its_inputs() {
        let first = image();
        assert_eq!(first.archive, image().archive);
        let mut other = context();
        other[0].data.push(b'!');
        let changed = build(&dockerfile(), &other, elf::X86_64, "1.2.3", 1_700_000_000).unwrap();
        assert_ne!(changed.digest(), first.digest());
        let later = build(
            &dockerfile(),
            &context(),
            elf::X86_64,
            "1.2.3",
            1_700_000_001,
        )
        .unwrap();
        assert_ne!(later.digest(), first.digest());
        // The gzip header stores no time and no name.
        assert_eq!(&first.layer.bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(first.layer.bytes[3] & 0x08, 0);
    }

    #[test]
    fn verify_catches_a_tampered_blob() {
        let image = image();
        let hex = image
            .layer
            .digest()
            .trim_start_matches("sha256:")
            .to_owned();
        let mut bytes = image.archive.clone();
        // Flip one byte inside the layer blob's data (it follows its 512-byte tar header).
        let header = bytes
            .windows(hex.len())
            .position(|w| w == hex.as_bytes())
            .unwrap();
        let data = header - header % 512 + 512;
        bytes[data + 20] ^= 0xff;
        let err = format!("{:#}", verify::verify(&bytes).unwrap_err());
        assert!(err.contains("does not have the sha256"), "{err}");
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
