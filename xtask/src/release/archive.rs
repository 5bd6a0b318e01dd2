//! The release tarball, built so the same inputs always give the same bytes: entries sorted by
//! name, one fixed mtime, uid/gid 0 with empty owner names, modes chosen here rather than read
//! from disk, and a gzip header with neither a timestamp nor a file name.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

/// The file name users download and the installer looks for.
pub const ARCHIVE_NAME: &str = "ai-proxy-release.tar.gz";

/// gzip's "unknown" operating system byte, the same whichever host builds the release.
const GZIP_OS_UNKNOWN: u8 = 255;

/// One file of the tarball: where its bytes come from and the mode it gets in the archive.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: &'static str,
    pub mode: u32,
    pub content: Content,
}

#[derive(Debug, Clone)]
pub enum Content {
    /// A file shipped as it is on disk (only its bytes are used, never its metadata).
    File(PathBuf),
    /// A rendered template.
    Rendered(String),
}

/// A file as it is stored in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

/// Reads every source's bytes; a missing file is reported with what ships it.
pub fn collect(sources: Vec<Source>) -> Result<Vec<Entry>> {
    sources
        .into_iter()
        .map(|source| {
            let data = match source.content {
                Content::File(path) => std::fs::read(&path).with_context(|| {
                    format!(
                        "reading {}, which ships in the tarball as `{}`: restore the file",
                        path.display(),
                        source.name
                    )
                })?,
                Content::Rendered(text) => text.into_bytes(),
            };
            Ok(Entry {
                name: source.name.to_owned(),
                mode: source.mode,
                data,
            })
        })
        .collect()
}

/// Builds the gzip-compressed tarball in memory.
pub fn build(entries: &[Entry], mtime: u64) -> Result<Vec<u8>> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].name == pair[1].name) {
        bail!("the tarball would hold `{}` twice", pair[0].name);
    }

    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(Vec::new(), Compression::best());
    let mut tar = tar::Builder::new(gz);
    for entry in sorted {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(entry.data.len() as u64);
        header.set_mode(entry.mode);
        header.set_uid(0);
        header.set_gid(0);
        header
            .set_username("")
            .context("clearing the tar owner name")?;
        header
            .set_groupname("")
            .context("clearing the tar group name")?;
        header.set_mtime(mtime);
        tar.append_data(&mut header, &entry.name, entry.data.as_slice())
            .with_context(|| format!("adding {} to the tarball", entry.name))?;
    }
    let gz = tar.into_inner().context("finishing the tar stream")?;
    let mut bytes = gz.finish().context("finishing the gzip stream")?;
    bytes.flush().context("flushing the tarball")?;
    Ok(bytes)
}

/// An entry as read back from a tarball, with every header field the release promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub username: String,
    pub groupname: String,
    pub mtime: u64,
    pub regular: bool,
    pub data: Vec<u8>,
}

/// Reads a gzip-compressed tarball back, in archive order.
pub fn read(tar_gz: &[u8]) -> Result<Vec<Listed>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tar_gz));
    let mut listed = Vec::new();
    for entry in archive.entries().context("reading the tarball")? {
        let mut entry = entry.context("reading a tarball entry")?;
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .context("reading a tarball entry's data")?;
        let text = |field: Result<Option<&str>, std::str::Utf8Error>| {
            field.ok().flatten().unwrap_or_default().to_owned()
        };
        listed.push(Listed {
            name: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            mode: header.mode().context("reading an entry mode")?,
            uid: header.uid().context("reading an entry uid")?,
            gid: header.gid().context("reading an entry gid")?,
            username: text(header.username()),
            groupname: text(header.groupname()),
            mtime: header.mtime().context("reading an entry mtime")?,
            regular: header.entry_type() == tar::EntryType::Regular,
            data,
        });
    }
    Ok(listed)
}

/// The gzip header fields that would make two builds differ: (mtime, whether a name is stored).
pub fn gzip_header(tar_gz: &[u8]) -> Result<(u32, bool)> {
    ensure!(
        tar_gz.get(..2) == Some(&[0x1f, 0x8b][..]),
        "not a gzip stream"
    );
    let header = tar_gz.get(..10).context("the gzip header is truncated")?;
    let mtime = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let has_name = header[3] & 0x08 != 0;
    Ok((mtime, has_name))
}

/// The mtime of every entry: `SOURCE_DATE_EPOCH` when set (the reproducible-builds convention),
/// else the time of the last commit, so a release of one commit is the same on every machine.
pub fn source_date_epoch(sh: &Shell) -> Result<(u64, &'static str)> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        let epoch = value.trim().parse().with_context(|| {
            format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds since 1970; unset it")
        })?;
        return Ok((epoch, "SOURCE_DATE_EPOCH"));
    }
    let out = cmd!(sh, "git log -1 --format=%ct")
        .quiet()
        .ignore_stderr()
        .read()
        .context(
            "reading the last commit time (`git log -1 --format=%ct`); outside a git checkout set \
         SOURCE_DATE_EPOCH to a fixed number of seconds since 1970",
        )?;
    let epoch = out
        .trim()
        .parse()
        .with_context(|| format!("`git log -1 --format=%ct` printed {out:?}, not a number"))?;
    Ok((epoch, "the last commit"))
}

/// Lowercase hex sha256, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// The `.sha256` file: `sha256sum` format, so `sha256sum -c` accepts it next to the tarball.
pub fn checksum_line(sha256: &str, file_name: &str) -> String {
    format!("{sha256}  {file_name}\n")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::release::contents::{CONTENTS, Entry as ContentsEntry};
    use std::path::Path;

    /// Writes the release's files ([`CONTENTS`]) into `dir` with the given on-disk mode and mtime and collects them.
    fn sources_in(dir: &Path, disk_mode: u32, disk_mtime: SystemTime) -> Vec<Entry> {
        std::fs::create_dir_all(dir).unwrap();
        let sources = CONTENTS
            .iter()
            .map(|&ContentsEntry { name, mode, .. }| {
                let path = dir.join(name);
                std::fs::write(&path, format!("contents of {name}\n")).unwrap();
                let file = std::fs::File::options().write(true).open(&path).unwrap();
                file.set_modified(disk_mtime).unwrap();
                file.set_permissions(std::fs::Permissions::from_mode(disk_mode))
                    .unwrap();
                Source {
                    name,
                    mode,
                    content: Content::File(path),
                }
            })
            .collect();
        collect(sources).unwrap()
    }

    #[test]
    fn same_inputs_give_the_same_bytes_whatever_the_files_on_disk_say() {
        let root = crate::fs::scratch_dir("archive-determinism");
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let a = build(&sources_in(&root.join("a"), 0o600, old), 1_700_000_000).unwrap();
        let mut reversed = sources_in(&root.join("b"), 0o777, SystemTime::now());
        reversed.reverse();
        let b = build(&reversed, 1_700_000_000).unwrap();
        assert_eq!(sha256_hex(&a), sha256_hex(&b));
        assert_eq!(a, b);
        // The commit time is an input: another one must change the bytes.
        let c = build(&reversed, 1_700_000_001).unwrap();
        assert_ne!(a, c);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn holds_exactly_the_contents_sorted_with_fixed_owners_and_modes() {
        let root = crate::fs::scratch_dir("archive-listing");
        let bytes = build(&sources_in(&root, 0o600, SystemTime::now()), 42).unwrap();
        let listed = read(&bytes).unwrap();
        let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
        let mut expected: Vec<&str> = CONTENTS.iter().map(|e| e.name).collect();
        expected.sort_unstable();
        assert_eq!(names, expected, "sorted by name, nothing else");
        for entry in &listed {
            let contents = CONTENTS.iter().find(|e| e.name == entry.name).unwrap();
            assert_eq!(entry.mode, contents.mode, "{}", entry.name);
            assert_eq!((entry.uid, entry.gid), (0, 0), "{}", entry.name);
            assert_eq!(
                (entry.username.as_str(), entry.groupname.as_str()),
                ("", "")
            );
            assert_eq!(entry.mtime, 42);
            assert!(entry.regular);
            assert_eq!(
                entry.data,
                format!("contents of {}\n", entry.name).into_bytes()
            );
        }
        assert_eq!(gzip_header(&bytes).unwrap(), (0, false));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn system_tar_reads_it() {
        // The installer unpacks with GNU tar, not with this crate: check that tar agrees.
        let root = crate::fs::scratch_dir("archive-gnu-tar");
        let bytes = build(&sources_in(&root.join("in"), 0o644, SystemTime::now()), 42).unwrap();
        let path = root.join(ARCHIVE_NAME);
        std::fs::write(&path, bytes).unwrap();
        let sh = Shell::new().unwrap();
        let listing = cmd!(sh, "tar --numeric-owner -tvzf {path}").read().unwrap();
        assert_eq!(listing.lines().count(), CONTENTS.len(), "{listing}");
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("-rwxr-xr-x 0/0") && l.ends_with(" ai-proxy"))
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn refuses_duplicate_names() {
        let entry = Entry {
            name: "LICENSE".into(),
            mode: 0o644,
            data: vec![],
        };
        let err = build(&[entry.clone(), entry], 0).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn checksum_file_is_in_sha256sum_format() {
        let sha = sha256_hex(b"abc");
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            checksum_line(&sha, ARCHIVE_NAME),
            format!("{sha}  {ARCHIVE_NAME}\n")
        );
    }
}
