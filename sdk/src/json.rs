//! Parsing webhook bodies into clear errors.

use serde::de::DeserializeOwned;

/// Parses `body` as JSON into `T`; the error names where parsing stopped and why, fit for
/// `WebhookError::Malformed`.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON for this channel: {e}"))
}

/// Follows a `/`-separated path of object keys and array indexes (`entry/0/changes`) into
/// `value`.
pub fn pointer<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut current = value;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        current = match current {
            serde_json::Value::Object(map) => map.get(part)?,
            serde_json::Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The value at `path` as text: strings as they are, numbers and booleans printed.
pub fn text_at(value: &serde_json::Value, path: &str) -> Option<String> {
    match pointer(value, path)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Decodes `application/x-www-form-urlencoded` bytes (also query strings) into pairs.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_walks_objects_and_arrays() {
        let v: serde_json::Value = serde_json::json!({"a": [{"b": 7}, {"b": "x"}]});
        assert_eq!(text_at(&v, "a/0/b").as_deref(), Some("7"));
        assert_eq!(text_at(&v, "a/1/b").as_deref(), Some("x"));
        assert_eq!(text_at(&v, "a/2/b"), None);
        assert_eq!(text_at(&v, "a/x"), None);
    }

    #[test]
    fn form_pairs_decode_percent_and_plus() {
        let pairs = form_pairs(b"Body=Hi+there%21&From=%2B15551234567");
        assert_eq!(pairs[0], ("Body".into(), "Hi there!".into()));
        assert_eq!(pairs[1], ("From".into(), "+15551234567".into()));
    }

    #[test]
    fn parse_reports_position() {
        let err = parse::<serde_json::Value>(b"{\"a\":").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }
}
