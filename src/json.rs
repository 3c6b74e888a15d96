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
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use std::borrow::Cow;

/// Parses one input text: first only its `type` (every other field is
/// skipped, so this also checks that the text is one JSON object), then the
/// fields of that type, so that a field error names its path.
pub fn parse_input(text: &str) -> Result<Input, InputError> {
    if let Some(input) = leading_type(text).and_then(|kind| fast_fields(kind, text)) {
        return Ok(input);
    }
    #[derive(Deserialize)]
    struct Tag<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
    }
    let tag: Tag<'_> = serde_json::from_str(text).map_err(|e| {
        InputError::Invalid(
            match e.classify() {
                Category::Data => "is not a JSON object with a string type",
                _ => "is not valid JSON (or nests too deeply)",
            }
            .into(),
        )
    })?;
    let kind = tag
        .kind
        .ok_or_else(|| InputError::Invalid("has no type".into()))?;
    Ok(match kind.as_ref() {
        "register_store" => Input::RegisterStore(fields(text)?),
        "remove_store" => Input::RemoveStore(fields(text)?),
        "authorize" => Input::Authorize(fields(text)?),
        "oauth_redirect" => Input::OauthRedirect(fields(text)?),
        "http_response" => Input::HttpResponse(fields(text)?),
        "http_failure" => Input::HttpFailure(fields(text)?),
        "token_rejected" => Input::TokenRejected(fields(text)?),
        "revoke" => Input::Revoke(fields(text)?),
        "query" => Input::Query(fields(text)?),
        "credentials" => Input::Credentials(fields(text)?),
        _ => return Err(InputError::Invalid("has an unknown type".into())),
    })
}

/// The fast path for the usual text, one that opens with its type
/// (`{"type":"<name>"`, as every binding writes it): the fields are parsed
/// once, without the probe for `type`. Taken only where the probe could not
/// decide otherwise — no other `"type"` key later in the text (a duplicate
/// makes the probe refuse the text) and no `\u` escape (which could spell
/// one); a text the fields do not parse from goes the whole way below, so
/// every refusal is the same as without this path.
fn leading_type(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    let (kind, after) = rest.split_once('"')?;
    if after.contains(r#""type""#) || after.contains("\\u") {
        return None;
    }
    Some(kind)
}

/// The input of type `kind` if the fields parse from `text` (None also for
/// an unknown type: the probe path answers it).
fn fast_fields(kind: &str, text: &str) -> Option<Input> {
    fn f<T: DeserializeOwned>(text: &str) -> Option<T> {
        serde_json::from_str(text).ok()
    }
    Some(match kind {
        "register_store" => Input::RegisterStore(f(text)?),
        "remove_store" => Input::RemoveStore(f(text)?),
        "authorize" => Input::Authorize(f(text)?),
        "oauth_redirect" => Input::OauthRedirect(f(text)?),
        "http_response" => Input::HttpResponse(f(text)?),
        "http_failure" => Input::HttpFailure(f(text)?),
        "token_rejected" => Input::TokenRejected(f(text)?),
        "revoke" => Input::Revoke(f(text)?),
        "query" => Input::Query(f(text)?),
        "credentials" => Input::Credentials(f(text)?),
        _ => return None,
    })
}

/// The fields of one input type. A field error names the field's path and
/// the rule it breaks, never the value (which could be a secret); it is
/// worked out structurally by `typed`, never from serde's English texts.
fn fields<T: DeserializeOwned>(text: &str) -> Result<T, InputError> {
    crate::typed::from_str(text).map_err(|p| {
        let rule = p.rule();
        InputError::Field(Refusal::illegal(p.path_or("input"), rule))
    })
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
        // Deep nesting in a skipped field costs no stack and is ignored;
        // in a field the input uses it is a field error.
        let deep = |t: &str, f: &str| {
            format!(
                r#"{{"type":"{t}","{f}":{}1{}}}"#,
                "[".repeat(100_000),
                "]".repeat(100_000)
            )
        };
        assert!(parse_input(&deep("query", "x")).is_ok());
        assert!(matches!(
            parse_input(&deep("oauth_redirect", "params")),
            Err(InputError::Field(_))
        ));
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
        match parse_input(
            r#"{"type":"http_response","request_id":"r","status":98765,"headers":[["a",987654321]]}"#,
        ) {
            Err(InputError::Field(Refusal::IllegalParam { field, rule })) => {
                assert_eq!(field, "headers[0][1]");
                assert!(rule.contains("wrong type"), "{rule}");
                assert!(!rule.contains("987654321") && !rule.contains("98765"));
            }
            other => panic!("{other:?}"),
        }
        match parse_input(r#"{"type":"register_store","notify_secret":["SEKRIT-1"]}"#) {
            Err(InputError::Field(Refusal::IllegalParam { field, rule })) => {
                assert_eq!(field, "notify_secret");
                assert!(!rule.contains("SEKRIT"), "{rule}");
            }
            other => panic!("{other:?}"),
        }
        // auth_info and redirect_url are typed by validation, where they apply.
        assert!(parse_input(r#"{"type":"authorize","auth_info":"x","redirect_url":5}"#).is_ok());
    }

    #[test]
    fn the_fast_path_refuses_what_the_probe_refuses() {
        // Opens with its type, but the probe refuses it: a duplicate type
        // (also spelled with an escape), trailing text, not an object.
        for t in [
            r#"{"type":"query","client_id":"c","store_id":"s","type":"query"}"#,
            r#"{"type":"query","client_id":"c","store_id":"s","typ\u0065":"revoke"}"#,
            r#"{"type":"query","client_id":"c","store_id":"s"} x"#,
            r#"{"type":"query","client_id":"c","store_id":"s""#,
            r#"{"type":"nope","client_id":"c","store_id":"s"}"#,
        ] {
            assert!(invalid(t), "{t}");
        }
        // A field error is the same refusal either way.
        let slow = r#"{"client_id":"c","type":"query","store_id":5}"#;
        let fast = r#"{"type":"query","client_id":"c","store_id":5}"#;
        match (parse_input(slow), parse_input(fast)) {
            (Err(InputError::Field(a)), Err(InputError::Field(b))) => assert_eq!(a, b),
            other => panic!("{other:?}"),
        }
        // And an accepted one the same input.
        let a = parse_input(r#"{"client_id":"c","type":"query","store_id":"s"}"#).unwrap();
        let b = parse_input(r#"{"type":"query","client_id":"c","store_id":"s"}"#).unwrap();
        assert_eq!(a, b);
        // "type" inside a value sends the text the long way, to the same end.
        let c = parse_input(r#"{"type":"query","client_id":"\"type\"","store_id":"s"}"#).unwrap();
        assert_eq!(c.type_name(), "query");
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
