//! Finds the top-level `model` of a JSON request body and replaces its value without
//! re-serializing the rest, so the upstream gets the client's bytes unchanged.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;

use crate::error::ProxyError;

/// The `model` of a request body and where its value sits.
#[derive(Debug)]
pub struct ModelField<'a> {
    /// The model name (unescaped).
    pub name: Cow<'a, str>,
    /// Byte range of the JSON string value, quotes included; `None` if the scanner could not
    /// find it (an escaped key such as `"mod\u0065l"`), in which case rewriting re-serializes.
    span: Option<(usize, usize)>,
}

#[derive(Deserialize)]
struct OnlyModel<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
}

/// Validates `body` as a JSON object and extracts its `model`.
pub fn parse(body: &[u8]) -> Result<ModelField<'_>, ProxyError> {
    // serde checks the whole document (and rejects duplicate `model` keys) without
    // building a tree; the scanner below then only has to walk valid JSON.
    let parsed: OnlyModel<'_> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ProxyError::InvalidBody(format!(
                "{e} (the body must be a JSON object with a string `model`)"
            ))
        } else {
            ProxyError::MalformedJson(e.to_string())
        }
    })?;
    let name = parsed.model.ok_or(ProxyError::MissingModel)?;
    Ok(ModelField {
        name,
        span: find_model_value(body),
    })
}

/// Returns `body` with the model replaced by `new`; the same `Bytes` when nothing changes.
#[must_use]
pub fn rewrite(body: &Bytes, field: &ModelField<'_>, new: &str) -> Bytes {
    if field.name == new {
        return body.clone();
    }
    let encoded = serde_json::to_string(new).unwrap_or_default();
    if let Some((start, end)) = field.span {
        let mut out = BytesMut::with_capacity(body.len() - (end - start) + encoded.len());
        out.put_slice(&body[..start]);
        out.put_slice(encoded.as_bytes());
        out.put_slice(&body[end..]);
        return out.freeze();
    }
    // Correctness over speed for the rare body the scanner cannot read.
    let mut value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "model".to_owned(),
            serde_json::Value::String(new.to_owned()),
        );
    }
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting at `b[i] == '"'`.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// End (exclusive) of the value starting at `b[i]`, for valid JSON.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            Some(j)
        }
    }
}

fn find_model_value(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = skip_ws(b, 0);
    if *b.get(i)? != b'{' {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        if *b.get(i)? != b'"' {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key = &b[i + 1..key_end - 1];
        i = skip_ws(b, key_end);
        if *b.get(i)? != b':' {
            return None;
        }
        i = skip_ws(b, i + 1);
        let end = value_end(b, i)?;
        if key == b"model" {
            return (b[i] == b'"').then_some((i, end));
        }
        i = skip_ws(b, end);
        if *b.get(i)? != b',' {
            return None;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(body: &str, new: &str) -> String {
        let bytes = Bytes::copy_from_slice(body.as_bytes());
        let field = parse(&bytes).unwrap();
        String::from_utf8(rewrite(&bytes, &field, new).to_vec()).unwrap()
    }

    #[test]
    fn rewrites_only_the_top_level_model() {
        assert_eq!(
            rw(
                r#"{"messages":[{"model":"inner","c":"}\"]"}], "model" : "a", "x":1}"#,
                "up/b"
            ),
            r#"{"messages":[{"model":"inner","c":"}\"]"}], "model" : "up/b", "x":1}"#
        );
        assert_eq!(rw(r#"{"model":"a"}"#, "a"), r#"{"model":"a"}"#);
        assert_eq!(
            rw(r#"{"model":"a","s":"q\"x"}"#, "say \"hi\""),
            r#"{"model":"say \"hi\"","s":"q\"x"}"#
        );
    }

    #[test]
    fn escaped_key_falls_back_to_reserializing() {
        let out: serde_json::Value =
            serde_json::from_str(&rw(r#"{"mod\u0065l":"a","n":[1]}"#, "b")).unwrap();
        assert_eq!(out["model"], "b");
        assert_eq!(out["n"][0], 1);
    }

    #[test]
    fn errors() {
        assert!(matches!(parse(b"{nope"), Err(ProxyError::MalformedJson(_))));
        assert!(matches!(parse(b"{\"x\":1}"), Err(ProxyError::MissingModel)));
        assert!(matches!(
            parse(b"{\"model\":3}"),
            Err(ProxyError::InvalidBody(_))
        ));
        assert!(matches!(parse(b"[1]"), Err(ProxyError::InvalidBody(_))));
        assert!(matches!(
            parse(b"{\"model\":\"a\",\"model\":\"b\"}"),
            Err(ProxyError::InvalidBody(_))
        ));
    }
}
