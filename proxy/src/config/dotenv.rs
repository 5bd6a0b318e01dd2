//! Reads a `.env` file (`KEY=VALUE` lines, comments, quotes) and looks keys up with the
//! process environment taking precedence over the file.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// Where a value came from, so errors can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The process environment (it wins over the file).
    Process,
    /// A line of the `.env` file (1-based).
    File(usize),
}

/// The `.env` file plus the process environment.
#[derive(Debug, Clone)]
pub struct EnvSource {
    path: PathBuf,
    found: bool,
    vars: HashMap<String, (String, usize)>,
}

/// A looked-up value and where it came from.
#[derive(Debug, Clone)]
pub struct EnvValue {
    /// The value, unquoted.
    pub value: String,
    /// Where it was set.
    pub origin: Origin,
}

impl EnvSource {
    /// Reads `path`. A missing file is not an error (everything may come from the process
    /// environment); the keys that are then missing are reported by name.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut source = Self {
            path: path.to_owned(),
            found: text.is_some(),
            vars: HashMap::new(),
        };
        if let Some(text) = text {
            source.vars = parse(&text).map_err(|(line, message)| ConfigError::Invalid {
                location: format!("{}:{line}", path.display()),
                message,
            })?;
        }
        Ok(source)
    }

    /// An empty source with only the process environment, for tests.
    #[must_use]
    pub fn from_pairs(path: &Path, pairs: &[(&str, &str)]) -> Self {
        Self {
            path: path.to_owned(),
            found: true,
            vars: pairs
                .iter()
                .enumerate()
                .map(|(i, (k, v))| ((*k).to_owned(), ((*v).to_owned(), i + 1)))
                .collect(),
        }
    }

    /// The file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file existed.
    #[must_use]
    pub fn found(&self) -> bool {
        self.found
    }

    /// Looks `key` up: process environment first, then the file.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<EnvValue> {
        if let Some(value) = std::env::var_os(key) {
            return Some(EnvValue {
                value: value.to_string_lossy().into_owned(),
                origin: Origin::Process,
            });
        }
        self.vars.get(key).map(|(value, line)| EnvValue {
            value: value.clone(),
            origin: Origin::File(*line),
        })
    }

    /// Names where `key` was (or should be) set, for error messages.
    #[must_use]
    pub fn describe(&self, key: &str, origin: Option<Origin>) -> String {
        match origin {
            Some(Origin::Process) => format!("{key} (from the process environment)"),
            Some(Origin::File(line)) => format!("{}:{line}: {key}", self.path.display()),
            None if self.found => format!("{}: {key}", self.path.display()),
            None => format!("{} (file not found): {key}", self.path.display()),
        }
    }
}

/// Parses `.env` text into `key -> (value, line)`. Errors carry the 1-based line.
fn parse(text: &str) -> Result<HashMap<String, (String, usize)>, (usize, String)> {
    let mut vars = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            return Err((
                line_no,
                "expected KEY=VALUE (comments start with #)".to_owned(),
            ));
        };
        let key = key.trim();
        if key.is_empty()
            || key.starts_with(|c: char| c.is_ascii_digit())
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err((
                line_no,
                format!(
                    "invalid key `{key}`: use letters, digits and _ (not starting with a digit)"
                ),
            ));
        }
        let value = parse_value(value.trim()).map_err(|m| (line_no, format!("{key}: {m}")))?;
        vars.insert(key.to_owned(), (value, line_no));
    }
    Ok(vars)
}

fn parse_value(value: &str) -> Result<String, String> {
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::with_capacity(rest.len());
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    let tail = chars.as_str().trim();
                    if !tail.is_empty() && !tail.starts_with('#') {
                        return Err("unexpected text after the closing quote".to_owned());
                    }
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => break,
                },
                other => out.push(other),
            }
        }
        Err("missing closing double quote".to_owned())
    } else if let Some(rest) = value.strip_prefix('\'') {
        let Some((inner, tail)) = rest.split_once('\'') else {
            return Err("missing closing single quote".to_owned());
        };
        let tail = tail.trim();
        if !tail.is_empty() && !tail.starts_with('#') {
            return Err("unexpected text after the closing quote".to_owned());
        }
        Ok(inner.to_owned())
    } else {
        // An unquoted value ends at ` #`, so `KEY=abc # note` is `abc`; a `#` inside a
        // token (`KEY=a#b`) stays, as in docker's and python-dotenv's readers.
        let end = value.find(" #").or_else(|| value.find("\t#"));
        Ok(end.map_or(value, |e| &value[..e]).trim_end().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_comments_quotes_and_export() {
        let vars = parse(
            "# c\n\nPORT=8080\nexport A=\"x y\\n\" # c\nB='lit $x' \nC=abc # note\nD=a#b\nE=\n",
        )
        .unwrap();
        assert_eq!(vars["PORT"], ("8080".to_owned(), 3));
        assert_eq!(vars["A"].0, "x y\n");
        assert_eq!(vars["B"].0, "lit $x");
        assert_eq!(vars["C"].0, "abc");
        assert_eq!(vars["D"].0, "a#b");
        assert_eq!(vars["E"].0, "");
    }

    #[test]
    fn reports_the_line() {
        assert_eq!(parse("A=1\nnot a pair\n").unwrap_err().0, 2);
        assert_eq!(parse("A=\"open\n").unwrap_err().0, 1);
        assert_eq!(parse("1A=x\n").unwrap_err().0, 1);
    }
}
