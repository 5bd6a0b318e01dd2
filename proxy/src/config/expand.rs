//! `${VAR}` expansion of provider-config values from `.env` and the process environment.

use super::EnvSource;

/// A `${VAR}` reference that could not be expanded.
pub enum ExpandError {
    /// The variable is not defined anywhere.
    Undefined(String),
    /// `${` without a valid name and `}`.
    Malformed,
}

/// What expanding a provider's fields found.
#[derive(Default)]
pub struct Found {
    /// Variables that are defined but empty.
    pub empty: Vec<String>,
    /// The values substituted: treated as secrets wherever they appear.
    pub values: Vec<String>,
}

/// Expands `${VAR}` from `env`, noting empty variables and the values used in `found`.
pub fn expand(value: &str, env: &EnvSource, found: &mut Found) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(ExpandError::Malformed)?;
        let name = &after[..end];
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ExpandError::Malformed);
        }
        let value = env
            .get(name)
            .ok_or_else(|| ExpandError::Undefined(name.to_owned()))?
            .value;
        if value.is_empty() && !found.empty.iter().any(|e| e == name) {
            found.empty.push(name.to_owned());
        }
        out.push_str(&value);
        if !value.is_empty() {
            found.values.push(value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
