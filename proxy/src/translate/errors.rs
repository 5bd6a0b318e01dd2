//! Error bodies in either API's shape, and an upstream error body rewritten into the other.

use serde_json::{Value, json};

/// An error body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"error":{"message","type","param","code"}}`
    Openai,
    /// `{"type":"error","error":{"type","message"}}`
    Anthropic,
}

/// Anthropic's error `type` for an HTTP status.
#[must_use]
pub fn anthropic_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// An error body of `shape` for `status` with `message`.
#[must_use]
pub fn body(shape: Shape, status: u16, message: &str) -> Vec<u8> {
    let v = match shape {
        Shape::Anthropic => {
            json!({"type": "error", "error": {"type": anthropic_type(status), "message": message}})
        }
        Shape::Openai => json!({"error": {
            "message": message,
            "type": openai_type(anthropic_type(status)),
            "param": null,
            "code": null
        }}),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// OpenAI's error `type` for an Anthropic one.
fn openai_type(anthropic: &str) -> &str {
    match anthropic {
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            "invalid_request_error"
        }
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "rate_limit_error" => "rate_limit_error",
        other => other,
    }
}

/// The message and type of an error body in either shape (or its raw text).
#[must_use]
pub fn read(body: &[u8]) -> (String, Option<String>) {
    let text = || String::from_utf8_lossy(body).chars().take(1000).collect();
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (text(), None);
    };
    let e = v.get("error").unwrap_or(&v);
    let message = match e.get("message").and_then(Value::as_str) {
        Some(m) => m.to_owned(),
        None => match e.as_str() {
            Some(s) => s.to_owned(),
            None => text(),
        },
    };
    let kind = e.get("type").and_then(Value::as_str).map(str::to_owned);
    (message, kind)
}

/// An upstream error body of the other shape rewritten as `shape` (status kept).
#[must_use]
pub fn rewrite(shape: Shape, status: u16, upstream: &[u8]) -> Vec<u8> {
    let (message, kind) = read(upstream);
    let v = match shape {
        Shape::Anthropic => json!({"type": "error", "error": {
            "type": anthropic_type(status),
            "message": message
        }}),
        Shape::Openai => {
            let kind = kind.unwrap_or_else(|| anthropic_type(status).to_owned());
            json!({"error": {"message": message, "type": openai_type(&kind), "param": null, "code": null}})
        }
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_both_ways_with_status_kept() {
        let up = br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#;
        let v: Value = serde_json::from_slice(&rewrite(Shape::Openai, 529, up)).unwrap();
        assert_eq!(v["error"]["type"], "overloaded_error");
        assert_eq!(v["error"]["message"], "busy");
        let up =
            br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#;
        let v: Value = serde_json::from_slice(&rewrite(Shape::Anthropic, 429, up)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert_eq!(v["error"]["message"], "slow down");
        let v: Value =
            serde_json::from_slice(&rewrite(Shape::Anthropic, 502, b"<html>bad")).unwrap();
        assert_eq!(v["error"]["type"], "api_error");
        assert_eq!(v["error"]["message"], "<html>bad");
    }
}
