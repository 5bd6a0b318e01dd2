//! Reads an image archive back and checks it against the OCI image-layout and image-manifest
//! specs, independently of the writer: the media types and layout strings are spelt here from
//! the spec, not taken from the writer's constants, so a typo in one cannot pass in both.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::release::archive;

/// What a valid archive holds, for the caller's own checks.
#[derive(Debug, Clone)]
pub struct Verified {
    /// `sha256:…` of the image manifest.
    pub manifest_digest: String,
    /// The image config as JSON.
    pub config: Value,
    /// `sha256:…` of the uncompressed layer (equal to the config's only `diff_id`).
    pub diff_id: String,
    /// The layer's files and directories by path.
    pub layer: BTreeMap<String, LayerEntry>,
    /// The tags in `manifest.json` (Docker's view).
    pub repo_tags: Vec<String>,
    /// The `org.opencontainers.image.ref.name` of the index entry.
    pub ref_name: String,
}

/// One file or directory of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Lowercase hex sha256 of the contents (of nothing, for a directory).
    pub sha256: String,
}

/// Checks `bytes` (an image archive) and returns what it holds, or names the first violation.
pub fn verify(bytes: &[u8]) -> Result<Verified> {
    let files = read_tar(bytes)?;
    let file = |name: &str| {
        files
            .get(name)
            .with_context(|| format!("the archive has no `{name}`"))
    };
    let json = |name: &str| -> Result<Value> {
        serde_json::from_slice(file(name)?).with_context(|| format!("`{name}` is not JSON"))
    };

    check_blobs(&files)?;
    ensure!(
        json("oci-layout")?["imageLayoutVersion"] == "1.0.0",
        "oci-layout: imageLayoutVersion is not 1.0.0"
    );

    let index = json("index.json")?;
    versioned(
        &index,
        "application/vnd.oci.image.index.v1+json",
        "index.json",
    )?;
    let (entry, ref_name) = sole_manifest(&index)?;
    let (manifest_digest, manifest_bytes) = blob(
        &files,
        entry,
        "application/vnd.oci.image.manifest.v1+json",
        "index.json's manifest",
    )?;
    let manifest: Value =
        serde_json::from_slice(manifest_bytes).context("the manifest is not JSON")?;
    versioned(
        &manifest,
        "application/vnd.oci.image.manifest.v1+json",
        "the manifest",
    )?;
    let (config_digest, config_bytes) = blob(
        &files,
        &manifest["config"],
        "application/vnd.oci.image.config.v1+json",
        "the manifest's config",
    )?;
    let config: Value = serde_json::from_slice(config_bytes).context("the config is not JSON")?;
    let layers = manifest["layers"]
        .as_array()
        .context("manifest: no layers")?;
    ensure!(
        layers.len() == 1,
        "manifest lists {} layers, expected 1",
        layers.len()
    );
    let (layer_digest, layer_gz) = blob(
        &files,
        &layers[0],
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "the manifest's layer",
    )?;

    let (uncompressed, diff_id) = unpack_layer(layer_gz, &config)?;
    let layer = layer_listing(&uncompressed)?;

    let repo_tags = docker_view(&json("manifest.json")?, &config_digest, &layer_digest)?;

    Ok(Verified {
        manifest_digest,
        config,
        diff_id,
        layer,
        repo_tags,
        ref_name,
    })
}

/// The one manifest entry `index.json` must list, and its `ref.name` annotation.
fn sole_manifest(index: &Value) -> Result<(&Value, String)> {
    let manifests = index["manifests"]
        .as_array()
        .context("index.json: no manifests array")?;
    ensure!(
        manifests.len() == 1,
        "index.json lists {} manifests, expected 1",
        manifests.len()
    );
    let entry = &manifests[0];
    let ref_name = entry["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .context("index.json: the manifest has no org.opencontainers.image.ref.name")?
        .to_owned();
    Ok((entry, ref_name))
}

/// Gunzips the layer and checks `config` against it: its `diff_ids` must be the sha256 of
/// the uncompressed layer. Returns the uncompressed layer and that diff id.
fn unpack_layer(layer_gz: &[u8], config: &Value) -> Result<(Vec<u8>, String)> {
    let mut uncompressed = Vec::new();
    flate2::read::GzDecoder::new(layer_gz)
        .read_to_end(&mut uncompressed)
        .context("the layer is not gzip")?;
    let diff_id = format!("sha256:{}", archive::sha256_hex(&uncompressed));
    ensure!(
        config["rootfs"]["type"] == "layers"
            && config["rootfs"]["diff_ids"] == serde_json::json!([diff_id]),
        "config: rootfs.diff_ids is {}, expected [{diff_id}] (the sha256 of the uncompressed layer)",
        config["rootfs"]["diff_ids"]
    );
    for field in ["architecture", "os"] {
        ensure!(config[field].is_string(), "config: no `{field}`");
    }
    Ok((uncompressed, diff_id))
}

/// Docker's `manifest.json` must name the same config and layer blobs; returns its tags.
fn docker_view(docker: &Value, config_digest: &str, layer_digest: &str) -> Result<Vec<String>> {
    let docker = docker
        .as_array()
        .filter(|a| a.len() == 1)
        .context("manifest.json is not a one-image array")?;
    let blob_path = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    ensure!(
        docker[0]["Config"] == blob_path(config_digest)
            && docker[0]["Layers"] == serde_json::json!([blob_path(layer_digest)]),
        "manifest.json does not name the OCI manifest's config and layer blobs"
    );
    docker[0]["RepoTags"]
        .as_array()
        .context("manifest.json: no RepoTags")?
        .iter()
        .map(|t| {
            t.as_str()
                .map(str::to_owned)
                .context("manifest.json: a tag is not a string")
        })
        .collect()
}

/// An index or manifest: `schemaVersion` 2 and its own media type.
fn versioned(document: &Value, media_type: &str, what: &str) -> Result<()> {
    ensure!(
        document["schemaVersion"] == 2 && document["mediaType"] == media_type,
        "{what}: schemaVersion {} and mediaType {}, expected 2 and {media_type}",
        document["schemaVersion"],
        document["mediaType"]
    );
    Ok(())
}

/// Every blob is named by its own sha256.
fn check_blobs(files: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    for (name, data) in files {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            ensure!(
                archive::sha256_hex(data) == hex,
                "blob {name} does not have the sha256 its name says"
            );
        }
    }
    Ok(())
}

/// A descriptor's blob: the media type, the size and the digest must match the bytes.
fn blob<'a>(
    files: &'a BTreeMap<String, Vec<u8>>,
    descriptor: &Value,
    media_type: &str,
    what: &str,
) -> Result<(String, &'a [u8])> {
    ensure!(
        descriptor["mediaType"] == media_type,
        "{what}: mediaType is {}, expected {media_type}",
        descriptor["mediaType"]
    );
    let digest = descriptor["digest"]
        .as_str()
        .with_context(|| format!("{what}: no digest"))?;
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .with_context(|| format!("{what}: digest {digest} is not sha256:<64 lowercase hex>"))?;
    let data = files
        .get(&format!("blobs/sha256/{hex}"))
        .with_context(|| format!("{what}: blob {digest} is not in blobs/sha256/"))?;
    ensure!(
        descriptor["size"] == data.len(),
        "{what}: size is {}, the blob has {} bytes",
        descriptor["size"],
        data.len()
    );
    Ok((digest.to_owned(), data))
}

/// Every regular file of an (uncompressed) tar by name; refuses links and devices.
fn read_tar(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let mut tar = tar::Archive::new(bytes);
    for entry in tar.entries().context("reading the image archive")? {
        let mut entry = entry.context("reading an image archive entry")?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Directory => {}
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .with_context(|| format!("reading {name}"))?;
                ensure!(
                    files.insert(name.clone(), data).is_none(),
                    "{name} is in the archive twice"
                );
            }
            other => bail!("{name} is a {other:?}, not a file or directory"),
        }
    }
    Ok(files)
}

fn layer_listing(uncompressed: &[u8]) -> Result<BTreeMap<String, LayerEntry>> {
    let mut listing = BTreeMap::new();
    let mut tar = tar::Archive::new(uncompressed);
    for entry in tar.entries().context("reading the layer")? {
        let mut entry = entry.context("reading a layer entry")?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .with_context(|| format!("reading {name} in the layer"))?;
        let listed = LayerEntry {
            mode: header.mode().context("layer entry mode")?,
            uid: header.uid().context("layer entry uid")?,
            gid: header.gid().context("layer entry gid")?,
            sha256: archive::sha256_hex(&data),
        };
        ensure!(
            listing.insert(name.clone(), listed).is_none(),
            "{name} is in the layer twice"
        );
    }
    Ok(listing)
}
