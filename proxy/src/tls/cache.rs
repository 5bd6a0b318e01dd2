//! `TLS_CACHE_DIR`: the ACME account's credentials and the certificate with its key, kept
//! across restarts so a restart makes no new order. The directory is 0700 and every file 0600,
//! written whole to a temporary file, synced and renamed into place, so a crash leaves the old
//! file or the new one, never half of one; the certificate and its key share one file so they
//! cannot drift apart.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::digest;

/// The cache directory for one ACME directory and one set of names.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    account_file: String,
    cert_file: String,
}

impl Cache {
    /// The files for `directory_url` (one account per CA) and `domains` (one certificate per
    /// set of names) under `dir`.
    #[must_use]
    pub fn new(dir: &Path, directory_url: &str, domains: &[String]) -> Self {
        let short = |text: &str| {
            digest::digest(&digest::SHA256, text.as_bytes())
                .as_ref()
                .iter()
                .take(8)
                .fold(String::new(), |mut s, b| {
                    let _ = write!(s, "{b:02x}");
                    s
                })
        };
        Self {
            dir: dir.to_owned(),
            account_file: format!("account-{}.json", short(directory_url)),
            cert_file: format!(
                "certificate-{}-{}.pem",
                domains.first().map_or("", String::as_str),
                short(&format!("{directory_url} {}", domains.join(",")))
            ),
        }
    }

    /// Creates the directory 0700 (tightening an existing one).
    pub fn prepare(&self) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
    }

    /// The account credentials (JSON), if stored.
    pub fn account(&self) -> io::Result<Option<Vec<u8>>> {
        read_optional(&self.dir.join(&self.account_file))
    }

    /// Stores the account credentials.
    pub fn store_account(&self, json: &[u8]) -> io::Result<()> {
        write_atomic(&self.dir, &self.account_file, json)
    }

    /// The certificate chain and its key (PEM, one text), if stored.
    pub fn certificate(&self) -> io::Result<Option<Vec<u8>>> {
        read_optional(&self.dir.join(&self.cert_file))
    }

    /// Stores the certificate chain and its key.
    pub fn store_certificate(&self, pem: &[u8]) -> io::Result<()> {
        write_atomic(&self.dir, &self.cert_file, pem)
    }

    /// Where the certificate is stored, for messages.
    #[must_use]
    pub fn certificate_path(&self) -> PathBuf {
        self.dir.join(&self.cert_file)
    }
}

fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `name` in `dir` as a whole: a 0600 temporary file, synced, renamed, the directory
/// synced.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))?;
    fs::File::open(dir)?.sync_all()
}
