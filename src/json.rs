//! The JSON entry point for inputs: one text in, an [`Input`] or the reason
//! it is not one. It tells apart what is not an input at all (not JSON, not
//! an object, no or unknown `type`: the C ABI's `INVALID_ARGUMENT`) from an
//! input of a known type with a bad field (`REJECTED`, 900002 naming the
//! field). Error texts never echo a value (it could be a secret).
//!
//! What does not live here: any rule beyond the JSON types (`validate`).

use crate::error::{InputError, Refusal};
use crate::message::Input;
use serde::Deserialize;

/// The `type` names the engine knows.
pub const INPUT_TYPES: [&str; 10] = [
    "register_store",
    "remove_store",
    "authorize",
    "oauth_redirect",
    "http_response",
    "http_failure",
    "token_rejected",
    "revoke",
    "query",
    "credentials",
];

/// Parses one input text.
pub fn parse_input(text: &str) -> Result<Input, InputError> {
    let mut de = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Input>(&mut de) {
        Ok(input) => match de.end() {
            Ok(()) => Ok(input),
            Err(_) => Err(InputError::Invalid(
                "is not valid JSON (trailing characters)".into(),
            )),
        },
        Err(e) => Err(classify(text, e)),
    }
}

fn classify(text: &str, err: serde_path_to_error::Error<serde_json::Error>) -> InputError {
    // Only on the error path: find out what kind of wrong this is.
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "type")]
        kind: Option<serde_json::Value>,
    }
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return InputError::Invalid("is not valid JSON (or nests too deeply)".into());
        }
        Err(_) => return InputError::Invalid("is not valid JSON".into()),
    };
    if !value.is_object() {
        return InputError::Invalid("is not a JSON object".into());
    }
    let probe: Probe = serde_json::from_value(value).unwrap_or(Probe { kind: None });
    let kind = match probe.kind {
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return InputError::Invalid("type must be a string".into()),
        None => return InputError::Invalid("has no type".into()),
    };
    if !INPUT_TYPES.contains(&kind.as_str()) {
        return InputError::Invalid("has an unknown type".into());
    }
    let path = err.path().to_string();
    let inner = err.into_inner();
    let msg = inner.to_string();
    // serde's messages quote offending values between backticks; keep the
    // field names (from "missing field `x`") and drop values.
    let rule = if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or("");
        return InputError::Field(Refusal::illegal(field, "is required"));
    } else if msg.starts_with("invalid type") {
        let expected = msg.rsplit("expected ").next().unwrap_or("another type");
        let expected = expected.split(" at line").next().unwrap_or(expected);
        format!("has the wrong type (expected {expected})")
    } else if msg.starts_with("invalid value") || msg.starts_with("invalid length") {
        "has an invalid value".to_owned()
    } else {
        "is malformed".to_owned()
    };
    let field = if path.is_empty() || path == "." {
        "input".to_owned()
    } else {
        path
    };
    InputError::Field(Refusal::illegal(field, rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(t: &str) -> bool {
        matches!(parse_input(t), Err(InputError::Invalid(_)))
    }

    #[test]
    fn classifies_non_inputs() {
        assert!(invalid(""));
        assert!(invalid("nul"));
        assert!(invalid("[1,2]"));
        assert!(invalid("\"x\""));
        assert!(invalid("{}"));
        assert!(invalid(r#"{"type":5}"#));
        assert!(invalid(r#"{"type":"nope"}"#));
        assert!(invalid(&("[".repeat(10_000) + &"]".repeat(10_000))));
        assert!(invalid(&format!(
            r#"{{"type":"query","x":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        )));
        assert!(invalid(r#"{"type":"query"} x"#));
    }

    #[test]
    fn field_errors_name_the_field_and_hide_the_value() {
        match parse_input(r#"{"type":"authorize","client_id":"c","store_id":12345678}"#) {
            Err(InputError::Field(Refusal::IllegalParam { field, rule })) => {
                assert_eq!(field, "store_id");
                assert!(rule.contains("wrong type"), "{rule}");
                assert!(!rule.contains("12345678"));
            }
            other => panic!("{other:?}"),
        }
        match parse_input(r#"{"type":"authorize","auth_info":{"token":987654321}}"#) {
            Err(InputError::Field(Refusal::IllegalParam { field, rule })) => {
                assert!(field.contains("token"), "{field}");
                assert!(!rule.contains("987654321"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_inputs() {
        let i =
            parse_input(r#"{"type":"query","client_id":"c","store_id":"s","extra":1}"#).unwrap();
        assert_eq!(i.type_name(), "query");
        let i = parse_input(r#"{"type":"http_response","request_id":"req-0-1","status":200,"headers":[["a","b"]],"body":"{}"}"#).unwrap();
        assert_eq!(i.type_name(), "http_response");
    }
}
