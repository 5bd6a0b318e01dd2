//! The parse phase: finds the top-level `model` of a JSON request body, with the exact byte
//! range of its value, and rewrites that value without re-serializing (or copying) the rest,
//! so the upstream gets the client's bytes unchanged.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ProxyError;
use crate::request_body::UpstreamBody;

/// The `model` of a request body and where its value sits.
#[derive(Debug)]
pub struct ModelField<'a> {
    /// The model name (unescaped).
    pub name: Cow<'a, str>,
    /// Byte range of the JSON string value in the body, quotes included.
    span: (usize, usize),
    /// Whether the top-level `stream` is `true`.
    pub stream: bool,
    /// Byte range of the top-level `stream_options` value, if present.
    pub stream_options: Option<(usize, usize)>,
    /// A second value to splice in (`stream_options`, see [`crate::usage::ask_for_usage`]):
    /// the byte range it replaces (empty for an insertion) and the new bytes.
    pub extra: Option<((usize, usize), Bytes)>,
}

#[derive(Deserialize)]
struct OnlyModel<'a> {
    // serde matches the key after unescaping, so `"mod\u0065l"` is found too, and the raw
    // value borrows the exact slice of the body.
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    stream: Option<&'a RawValue>,
    // `null` included: it is replaced, not followed by a second `stream_options`.
    #[serde(borrow, default, deserialize_with = "present")]
    stream_options: Option<&'a RawValue>,
}

/// A member that is present, whatever its value (`Option<&RawValue>` reads `null` as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

const SHAPE: &str = "the body must be a JSON object with a string `model`";

/// Validates `body` as a JSON object and extracts its `model`.
pub fn parse(body: &[u8]) -> Result<ModelField<'_>, ProxyError> {
    // serde checks the whole document (and rejects duplicate `model` keys) without
    // building a tree.
    let parsed: OnlyModel<'_> = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ProxyError::InvalidBody(format!("{e} ({SHAPE})"))
        } else {
            ProxyError::MalformedJson(e.to_string())
        }
    })?;
    // A derived struct also accepts a JSON array (fields by position): only objects count.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ProxyError::InvalidBody(format!(
            "the body is a JSON array or scalar ({SHAPE})"
        )));
    }
    let raw = parsed.model.ok_or(ProxyError::MissingModel)?.get();
    let name: Cow<'_, str> = serde_json::from_str(raw)
        .map_err(|e| ProxyError::InvalidBody(format!("`model`: {e} ({SHAPE})")))?;
    let span_of = |raw: &str| {
        let start = raw.as_ptr() as usize - body.as_ptr() as usize;
        (start, start + raw.len())
    };
    Ok(ModelField {
        name,
        span: span_of(raw),
        stream: parsed.stream.is_some_and(|s| s.get() == "true"),
        stream_options: parsed.stream_options.map(|r| span_of(r.get())),
        extra: None,
    })
}

/// The body to send with the model replaced by `new`: the bytes before and after the value
/// are slices of `body`, not copies; nothing changes when the name is the same.
#[must_use]
pub fn rewrite(body: &Bytes, field: &ModelField<'_>, new: &str) -> UpstreamBody {
    let model = (field.name != new).then(|| {
        let encoded = serde_json::to_string(new).unwrap_or_default();
        (field.span, Bytes::from(encoded))
    });
    match (model.as_ref(), field.extra.as_ref()) {
        (None, None) => UpstreamBody::new([body.clone(), Bytes::new(), Bytes::new()]),
        (Some(((start, end), value)), None) | (None, Some(((start, end), value))) => {
            UpstreamBody::new([body.slice(..*start), value.clone(), body.slice(*end..)])
        }
        (Some(a), Some(b)) => {
            let (first, second) = if a.0.0 <= b.0.0 { (a, b) } else { (b, a) };
            let ((s1, e1), v1) = first;
            let ((s2, e2), v2) = second;
            UpstreamBody::spliced([
                body.slice(..*s1),
                v1.clone(),
                body.slice(*e1..*s2),
                v2.clone(),
                body.slice(*e2..),
            ])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(body: &str, new: &str) -> String {
        let bytes = Bytes::copy_from_slice(body.as_bytes());
        let field = parse(&bytes).unwrap();
        String::from_utf8(rewrite(&bytes, &field, new).to_bytes().to_vec()).unwrap()
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
    fn escaped_key_is_found_in_place() {
        assert_eq!(
            rw(r#"{"mod\u0065l":"a","n":[1]}"#, "b"),
            r#"{"mod\u0065l":"b","n":[1]}"#
        );
        assert_eq!(
            rw(r#" {"model":"\u0061","n":1}"#, "b"),
            r#" {"model":"b","n":1}"#
        );
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
        assert!(matches!(parse(b"[\"a\"]"), Err(ProxyError::InvalidBody(_))));
        assert!(matches!(
            parse(b"{\"model\":\"a\",\"model\":\"b\"}"),
            Err(ProxyError::InvalidBody(_))
        ));
    }
}
