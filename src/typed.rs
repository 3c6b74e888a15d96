//! Typed deserialization whose errors say *where* and *which rule*, never
//! *what was found*: the error type ([`DeError`]) records the kind of
//! failure serde reports through its `de::Error` constructors (missing
//! field, wrong type, unknown field, …) instead of formatting an English
//! text that quotes the offending value. It is used to explain why an input
//! or a configuration does not deserialize (the happy path stays on
//! `serde_json`'s own fast deserializer), and to type fields whose typing
//! the spec defers to validation ([`crate::message::Lenient`]).
//!
//! How: the text is parsed into a `serde_json::Value` and deserialized again
//! through [`ValueDe`], a deserializer over that value whose error type is
//! [`DeError`]; `serde_path_to_error` tracks the path. No error message of
//! serde or serde_json is ever read or copied.
//!
//! What does not live here: the rules beyond JSON types (`validate`,
//! `config`), the classification of non-inputs (`json`).

use serde::de::value::{MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Value;
use serde_json::error::Category;
use std::fmt;

/// What broke, without the value found. `Display` is the rule, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeError {
    /// A required field is absent.
    Missing(&'static str),
    /// A field the type does not know (`deny_unknown_fields`).
    Unknown(String),
    /// A field appears twice.
    Duplicate(&'static str),
    /// A value of another JSON type.
    WrongType {
        /// The JSON type found (`a number`, `an array`, …).
        found: &'static str,
        /// What the type expects (serde's `Expected`, e.g. `a string`, `u32`).
        expected: String,
    },
    /// The right type but not an accepted value (e.g. out of range).
    BadValue {
        /// What the type expects.
        expected: String,
    },
    /// A sequence of the wrong length.
    BadLength {
        /// What the type expects.
        expected: String,
    },
    /// A name that is not one of a closed list.
    UnknownVariant {
        /// The accepted names.
        expected: &'static [&'static str],
    },
    /// Anything else (a custom error: its message is dropped, as it may
    /// quote the value).
    Other,
    /// The text is not JSON, or nests too deeply (no value: only where).
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Missing(_) => f.write_str("is required"),
            DeError::Unknown(_) => f.write_str("is not a known field"),
            DeError::Duplicate(_) => f.write_str("is given twice"),
            DeError::WrongType { found, expected } => {
                write!(f, "has the wrong type (found {found}, expected {expected})")
            }
            DeError::BadValue { expected } => {
                write!(f, "has an invalid value (expected {expected})")
            }
            DeError::BadLength { expected } => {
                write!(f, "has the wrong number of elements (expected {expected})")
            }
            DeError::UnknownVariant { expected } => {
                f.write_str("must be one of ")?;
                for (i, v) in expected.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "\"{v}\"")?;
                }
                Ok(())
            }
            DeError::Other => f.write_str("is malformed"),
            DeError::Syntax { line, column } => write!(
                f,
                "is not valid JSON or nests too deeply (line {line}, column {column})"
            ),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        DeError::Other
    }
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::WrongType {
            found: json_type(&unexp),
            expected: exp.to_string(),
        }
    }
    fn invalid_value(_unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::BadValue {
            expected: exp.to_string(),
        }
    }
    fn invalid_length(_len: usize, exp: &dyn de::Expected) -> Self {
        DeError::BadLength {
            expected: exp.to_string(),
        }
    }
    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::UnknownVariant { expected }
    }
    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        DeError::Unknown(field.to_owned())
    }
    fn missing_field(field: &'static str) -> Self {
        DeError::Missing(field)
    }
    fn duplicate_field(field: &'static str) -> Self {
        DeError::Duplicate(field)
    }
}

/// The JSON type of what serde found, without its value.
fn json_type(u: &Unexpected<'_>) -> &'static str {
    match u {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) | Unexpected::Float(_) => "a number",
        Unexpected::Char(_) | Unexpected::Str(_) => "a string",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit | Unexpected::Option => "null",
        Unexpected::Seq => "an array",
        Unexpected::Map => "an object",
        _ => "another type",
    }
}

/// Where a value breaks its type, and the rule. `path` is empty for the
/// root, else dotted names with `[i]` for array elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The JSON path of the field at fault ("" for the whole text).
    pub path: String,
    /// What broke.
    pub error: DeError,
}

impl Problem {
    /// The path, or `root` for the whole text.
    pub fn path_or(&self, root: &str) -> String {
        if self.path.is_empty() {
            root.to_owned()
        } else {
            self.path.clone()
        }
    }
    /// The path under `prefix` (a field that holds this value).
    pub fn under(mut self, prefix: &str) -> Problem {
        self.path = join(prefix, &self.path);
        self
    }
    /// The rule broken, in words.
    pub fn rule(&self) -> String {
        self.error.to_string()
    }
}

/// `a.b` from `a` and `b`, either possibly empty; `a[0]` stays `a[0]`.
pub(crate) fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_owned(),
        (true, false) => b.to_owned(),
        (false, false) if b.starts_with('[') => format!("{a}{b}"),
        (false, false) => format!("{a}.{b}"),
    }
}

fn path_of(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." { String::new() } else { s }
}

/// Types `value` as `T`; on failure, the path and the rule.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(ValueDe(value)).map_err(|e| {
        let path = path_of(e.path());
        let error = e.into_inner();
        // A field that is absent or unknown is named in the path itself
        // (for an unknown field the tracker may already have pushed it).
        let path = match &error {
            DeError::Missing(f) | DeError::Duplicate(f) => join(&path, f),
            DeError::Unknown(f) if path.rsplit('.').next() != Some(f.as_str()) => join(&path, f),
            _ => path,
        };
        Problem { path, error }
    })
}

/// Deserializes `text` as `T`. The happy path is `serde_json`'s own; a
/// failure is explained by [`from_value`] (or, where the text is not JSON,
/// by where the parser stopped), so the problem never carries a value.
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Problem> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(_) => Err(explain::<T>(text)),
    }
}

fn explain<T: DeserializeOwned>(text: &str) -> Problem {
    let syntax = |e: &serde_json::Error| DeError::Syntax {
        line: e.line(),
        column: e.column(),
    };
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        if let Err(p) = from_value::<T>(value) {
            return p;
        }
    }
    // Not JSON, too deep to hold as a value, or a failure only the text
    // shows (a duplicate field): say where the text pass stopped.
    let mut de = serde_json::Deserializer::from_str(text);
    let err = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => {
            return Problem {
                path: String::new(),
                error: match de.end() {
                    Err(e) => syntax(&e),
                    Ok(()) => DeError::Other,
                },
            };
        }
        Err(e) => e,
    };
    let path = path_of(err.path());
    let inner = err.into_inner();
    Problem {
        path,
        error: match inner.classify() {
            Category::Data => DeError::Other,
            _ => syntax(&inner),
        },
    }
}

/// A deserializer over a `serde_json::Value` whose errors are [`DeError`].
pub(crate) struct ValueDe(pub Value);

impl<'de> IntoDeserializer<'de, DeError> for ValueDe {
    type Deserializer = ValueDe;
    fn into_deserializer(self) -> ValueDe {
        self
    }
}

impl<'de> de::Deserializer<'de> for ValueDe {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Array(a) => {
                let mut seq = SeqDeserializer::new(a.into_iter().map(ValueDe));
                let v = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(v)
            }
            Value::Object(o) => {
                let mut map = MapDeserializer::new(o.into_iter().map(|(k, v)| (k, ValueDe(v))));
                let v = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(v)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(ValueDe(other)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Object(o) => visitor.visit_enum(MapAccessDeserializer::new(
                MapDeserializer::new(o.into_iter().map(|(k, v)| (k, ValueDe(v)))),
            )),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a string or an object",
            )),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

fn unexpected(v: &Value) -> Unexpected<'static> {
    match v {
        Value::Null => Unexpected::Unit,
        Value::Bool(_) => Unexpected::Bool(false),
        Value::Number(_) => Unexpected::Unsigned(0),
        Value::String(_) => Unexpected::Str(""),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// The field names a struct type's derived `Deserialize` takes, as serde
/// hands them to `deserialize_struct` (what `deny_unknown_fields` checks
/// against); empty for a type that is no struct.
pub(crate) fn fields_of<'de, T: de::Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe(&'static [&'static str]);
    impl<'de> de::Deserializer<'de> for &mut Probe {
        type Error = DeError;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, DeError> {
            Err(DeError::Missing("struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, DeError> {
            self.0 = fields;
            Err(DeError::Missing("struct"))
        }
        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut probe = Probe(&[]);
    let _ = T::deserialize(&mut probe);
    probe.0
}

/// The JSON type of a value, in words (for messages about a value that
/// must not be shown).
pub(crate) fn type_word(v: &Value) -> &'static str {
    json_type(&unexpected(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: String,
        #[serde(default)]
        n: Option<u16>,
        #[serde(default)]
        pairs: Vec<(String, String)>,
        #[serde(default)]
        e: Option<E>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum E {
        One,
        Two,
    }

    fn problem(text: &str) -> (String, String) {
        let p = from_str::<T>(text).unwrap_err();
        (p.path.clone(), p.rule())
    }

    #[test]
    fn fields_of_lists_a_structs_fields() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Entry {
            app_key: String,
            #[serde(default)]
            scope: Option<String>,
        }
        assert_eq!(fields_of::<Entry>(), ["app_key", "scope"]);
        assert!(fields_of::<String>().is_empty());
    }

    #[test]
    fn problems_name_the_path_and_the_rule_never_the_value() {
        let cases = [
            (
                r#"{"a":987654321}"#,
                "a",
                "has the wrong type (found a number, expected a string)",
            ),
            (
                r#"{"a":"x","n":70000}"#,
                "n",
                "has an invalid value (expected u16)",
            ),
            (
                r#"{"a":"x","n":"SEKRIT"}"#,
                "n",
                "has the wrong type (found a string, expected u16)",
            ),
            (r#"{"n":1}"#, "a", "is required"),
            (r#"{"a":"x","zz":"SEKRIT"}"#, "zz", "is not a known field"),
            (
                r#"{"a":"x","e":"SEKRIT"}"#,
                "e",
                r#"must be one of "one", "two""#,
            ),
            (
                r#"{"a":"x","pairs":[["k","v","SEKRIT"]]}"#,
                "pairs[0]",
                "has the wrong number of elements (expected 2 elements in sequence)",
            ),
            (
                r#"{"a":"x","pairs":[["k",true]]}"#,
                "pairs[0][1]",
                "has the wrong type (found a boolean, expected a string)",
            ),
            (r#"{"a":"x","a":"SEKRIT"}"#, "", "is malformed"),
            (
                r#"{"a":"SEKRIT"#,
                "a",
                "is not valid JSON or nests too deeply (line 1, column 12)",
            ),
            (
                r#"{"a":"x"} SEKRIT"#,
                "",
                "is not valid JSON or nests too deeply (line 1, column 11)",
            ),
        ];
        for (text, path, rule) in cases {
            let (p, r) = problem(text);
            assert_eq!((p.as_str(), r.as_str()), (path, rule), "{text}");
            assert!(!r.contains("SEKRIT") && !r.contains("987654321") && !r.contains("70000"));
        }
    }

    #[test]
    fn joins_paths() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a", ""), "a");
        assert_eq!(join("a", "b"), "a.b");
        assert_eq!(join("a", "[0]"), "a[0]");
    }
}
