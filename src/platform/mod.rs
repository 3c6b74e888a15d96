//! The platform layer: one file per protocol behind one trait,
//! [`Platform`]; a profile holds its kind's implementation as a [`Kind`]
//! (the engine never matches on which kind it runs). Each protocol builds its requests from a [`Ctx`]
//! (never from the engine's internals), reads every answer into the one
//! [`Outcome`] type, and classifies every error code it knows in one place.
//!
//! The built-in platforms are listed once, in the registry `BUILT_IN` (a
//! name and the reader of its `apps` entry); each kind's file holds its
//! settings, the reading of its configuration entry (its own struct, unknown
//! fields denied), its requests and its answers. Adding a platform kind is
//! one file, one registry line and its tests.
//!
//! - `oauth2`: RFC 6749 code flow with PKCE (host-defined platforms).
//! - `key`: KEY credentials, with an optional verification request.
//! - `iop`: Taobao Taiwan and Lazada (seed 003).
//! - `shopline`: Shopline's signed OAuth.
//! - `checker`: Taobao through a status-check service (seeds 001, 002).
//! - `shopee`: Shopee Open Platform v2 (signed link, `shop_id` from the callback).
//! - `amazon_sp`: Amazon Selling Partner API through Login with Amazon (`lwa`).
//! - `tiktok`: TikTok Shop Partner API (absolute expiries, `open_id`).
//! - `shopify`: Shopify's OAuth with its HMAC-signed callback and
//!   expiring offline tokens.
//!
//! Shared by them: the one reader of lifetimes and absolute expiries
//! (`lifetime_s`, `absolute_expiry`: whole seconds, cut to ten years,
//! anything else malformed) and the linear de-duplication of seller lists
//! (`first_of_each`, with the limits [`MAX_SELLERS`] and
//! [`SELLER_MAX_CHARS`]).
//!
//! What does not live here: state, timers, claims, retries (the engine's),
//! and anything about the C ABI.

pub mod amazon_sp;
pub mod checker;
pub mod iop;
pub mod key;
pub mod oauth2;
pub mod shopee;
pub mod shopify;
pub mod shopline;
pub mod tiktok;

use crate::config::{AppEntry, CredentialForm, Profile};
use crate::error::ConfigError;
use crate::message::{Purpose, Reason};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An HTTP request to send, before the engine gives it an id.
#[derive(Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Method.
    pub method: &'static str,
    /// URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<String>,
}

/// KEY credentials handed in by the business party. Read by hand (see
/// below); written as derived, `{"form": …, fields…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum KeyCredential {
    /// A token.
    Token {
        /// The token.
        token: Secret,
    },
    /// A pair.
    Pair {
        /// The key.
        api_key: Secret,
        /// The secret.
        api_secret: Secret,
    },
}

/// The reader of [`KeyCredential`]: what serde derives for an internally
/// tagged enum, without its buffering of the whole object (an allocation
/// and a second pass per store on restore). It takes what the derived one
/// takes: the fields in any order; `form` once, as the variant's name;
/// each field of the form once, as a string; fields of the other form
/// (of any value, any number of times) and unknown fields ignored; and the
/// sequence `[form, fields…]`.
impl<'de> Deserialize<'de> for KeyCredential {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(credential_de::CredentialVisitor)
    }
}

mod credential_de {
    use super::KeyCredential;
    use crate::secret::Secret;
    use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    const FORMS: &[&str] = &["token", "pair"];
    const FIELDS: [&str; 3] = ["token", "api_key", "api_secret"];

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Form {
        Token,
        Pair,
    }

    /// The variant identifier, as derived (a name, or its index).
    impl<'de> Deserialize<'de> for Form {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Form;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("variant identifier")
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Form, E> {
                    match v {
                        0 => Ok(Form::Token),
                        1 => Ok(Form::Pair),
                        _ => Err(E::invalid_value(
                            de::Unexpected::Unsigned(v),
                            &"variant index 0 <= i < 2",
                        )),
                    }
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Form, E> {
                    match v {
                        "token" => Ok(Form::Token),
                        "pair" => Ok(Form::Pair),
                        _ => Err(E::unknown_variant(v, FORMS)),
                    }
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Form, E> {
                    match v {
                        b"token" => Ok(Form::Token),
                        b"pair" => Ok(Form::Pair),
                        _ => Err(E::unknown_variant(&String::from_utf8_lossy(v), FORMS)),
                    }
                }
            }
            d.deserialize_identifier(V)
        }
    }

    /// A field's value before the form is known: a string, or anything
    /// else (read and dropped).
    enum Value {
        Str(String),
        Other,
    }

    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Value;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("any value")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                    Ok(Value::Str(v.to_owned()))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                    Ok(Value::Str(v))
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
                    Ok(std::str::from_utf8(v).map_or(Value::Other, |s| Value::Str(s.to_owned())))
                }
                fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
                    Ok(Value::Other)
                }
                fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
                    Ok(Value::Other)
                }
                fn visit_u64<E: de::Error>(self, _: u64) -> Result<Value, E> {
                    Ok(Value::Other)
                }
                fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
                    Ok(Value::Other)
                }
                fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                    Ok(Value::Other)
                }
                fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                    Ok(Value::Other)
                }
                fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                    IgnoredAny::deserialize(d).map(|_| Value::Other)
                }
                fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
                    IgnoredAny.visit_seq(seq).map(|_| Value::Other)
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
                    IgnoredAny.visit_map(map).map(|_| Value::Other)
                }
            }
            d.deserialize_any(V)
        }
    }

    /// A map key: `form`, one of the fields, or another (ignored).
    enum Key {
        Form,
        Field(usize),
        Other,
    }

    impl<'de> Deserialize<'de> for Key {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Key;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a field name")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                    self.visit_bytes(v.as_bytes())
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Key, E> {
                    Ok(match v {
                        b"form" => Key::Form,
                        _ => FIELDS
                            .iter()
                            .position(|f| f.as_bytes() == v)
                            .map_or(Key::Other, Key::Field),
                    })
                }
                fn visit_u64<E: de::Error>(self, _: u64) -> Result<Key, E> {
                    Ok(Key::Other)
                }
            }
            d.deserialize_identifier(V)
        }
    }

    pub(super) struct CredentialVisitor;

    impl<'de> Visitor<'de> for CredentialVisitor {
        type Value = KeyCredential;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("internally tagged enum KeyCredential")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyCredential, A::Error> {
            let mut form: Option<Form> = None;
            // Per field: the first value seen, and whether it was seen twice.
            let mut values: [(Option<Value>, bool); 3] = Default::default();
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Form => {
                        if form.is_some() {
                            return Err(de::Error::duplicate_field("form"));
                        }
                        form = Some(map.next_value()?);
                    }
                    Key::Field(i) => {
                        let v = map.next_value::<Value>()?;
                        let slot = &mut values[i];
                        if slot.0.is_some() {
                            slot.1 = true;
                        } else {
                            slot.0 = Some(v);
                        }
                    }
                    Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            let form = form.ok_or_else(|| de::Error::missing_field("form"))?;
            let mut take = |i: usize| -> Result<Secret, A::Error> {
                match std::mem::take(&mut values[i]) {
                    (_, true) => Err(de::Error::duplicate_field(FIELDS[i])),
                    (Some(Value::Str(s)), false) => Ok(Secret::new(s)),
                    (Some(Value::Other), false) => Err(de::Error::invalid_type(
                        de::Unexpected::Other("a value that is not a string"),
                        &"a string",
                    )),
                    (None, false) => Err(de::Error::missing_field(FIELDS[i])),
                }
            };
            Ok(match form {
                Form::Token => KeyCredential::Token { token: take(0)? },
                Form::Pair => KeyCredential::Pair {
                    api_key: take(1)?,
                    api_secret: take(2)?,
                },
            })
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyCredential, A::Error> {
            let form: Form = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(0, &self))?;
            let mut next = |n: usize, of: &'static str| -> Result<Secret, A::Error> {
                seq.next_element()?
                    .ok_or_else(|| de::Error::invalid_length(n, &of))
            };
            let credential = match form {
                Form::Token => KeyCredential::Token {
                    token: next(0, "struct variant KeyCredential::Token with 1 element")?,
                },
                Form::Pair => {
                    let of = "struct variant KeyCredential::Pair with 2 elements";
                    KeyCredential::Pair {
                        api_key: next(0, of)?,
                        api_secret: next(1, of)?,
                    }
                }
            };
            if seq.next_element::<IgnoredAny>()?.is_some() {
                return Err(de::Error::invalid_length(2, &"fewer elements in sequence"));
            }
            Ok(credential)
        }
    }
}

/// Tokens obtained from a platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// The access token.
    pub access: Secret,
    /// The refresh token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Secret>,
    /// When the access token expires (ms), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<i64>,
    /// When the refresh token expires (ms), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_at: Option<i64>,
    /// Whether a refresh is possible at all.
    pub refreshable: bool,
    /// When these tokens were obtained (ms).
    pub obtained_at: i64,
    /// Sellers the platform named (None: it named none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sellers: Option<Vec<String>>,
}

impl Tokens {
    /// Whether a refresh can be attempted at `now`.
    pub fn can_refresh(&self, now: i64) -> bool {
        self.refreshable && self.refresh_expires_at.is_none_or(|r| r > now)
    }
}

/// What a platform's answer said: the one outcome type of every request
/// (token create and refresh, status check, KEY verification). What each
/// outcome does to the store depends on the request's purpose and is the
/// engine's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// New tokens (token create / refresh).
    Tokens(Tokens),
    /// The seller authorizes (a status check's `subAuthorize`) or the KEY
    /// credentials work.
    Authorized {
        /// Metered cost.
        cost: Option<i64>,
    },
    /// Not (or no longer) authorized; keep polling.
    NotYet {
        /// Metered cost.
        cost: Option<i64>,
        /// A link the seller should use (vv-tool 302).
        link: Option<String>,
    },
    /// Try again later (transport, 429, 5xx, a rate-limit code).
    Retry(String),
    /// The platform said no: the attempt fails / the store expires with this reason.
    Rejected(Reason, String),
    /// Our request or the host's own account or setup is broken: `system_error`.
    HostBroken(String),
    /// This store's parameters are bad.
    BadParam(String),
}

/// How a platform's `URL` authorizations proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The seller is redirected back with a state nonce and a code.
    Redirect,
    /// The engine polls a status service (no redirect, no tokens).
    Poll,
    /// No `URL` authorizations: KEY credentials only.
    KeyOnly,
}

/// What an authorize URL is built from.
pub struct UrlArgs<'a> {
    /// The attempt's state nonce (`""` for a kind without redirects).
    pub nonce: &'a str,
    /// The requested seller id.
    pub seller_id: Option<&'a str>,
    /// The PKCE challenge, when the kind uses PKCE.
    pub pkce_challenge: Option<&'a str>,
    /// The engine's now (ms): kinds whose links are signed with a time
    /// (Shopee) sign with it.
    pub now: i64,
}

/// What a redirect that passed the kind's checks tells the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// The seller the redirect names (Shopee's `shop_id`, Amazon's
    /// `selling_partner_id`), claimed under the binding rules when the
    /// seller comes back.
    pub seller: Option<String>,
}

/// The one interface of a platform kind. The engine calls only these; each
/// kind implements them in its own file. Defaults are those of a kind that
/// has nothing to say (no PKCE, nonce in `state`, code in `code`, no
/// redirect checks, …).
pub trait Platform: std::fmt::Debug + Send + Sync {
    /// How `URL` authorizations proceed.
    fn flow(&self) -> Flow;
    /// The authorize URL of a URL attempt (`""` for a kind without one).
    fn authorize_url(&self, args: &UrlArgs<'_>) -> String;
    /// Whether a repeated `authorize` on a `requested` store answers a
    /// freshly built URL (same attempt, same nonce) instead of the one
    /// given first: kinds whose links expire soon after their timestamp.
    fn fresh_url_on_repeat(&self) -> bool {
        false
    }
    /// Whether URL attempts use PKCE.
    fn uses_pkce(&self) -> bool {
        false
    }
    /// The redirect parameter that carries the nonce.
    fn nonce_param(&self) -> &'static str {
        "state"
    }
    /// The redirect parameter that carries the authorization code.
    fn code_param(&self) -> &'static str {
        "code"
    }
    /// Kind-specific checks of a redirect (a signature, a time window, the
    /// seller it names), at the engine's `now` (ms), for redirects with a
    /// code and with an error alike (the seller of an error redirect is not
    /// taken). An error is the rule that failed (`invalid_state`; the nonce
    /// stays valid).
    fn check_redirect(
        &self,
        _params: &BTreeMap<String, String>,
        _seller_id: Option<&str>,
        _now: i64,
    ) -> Result<Checked, &'static str> {
        Ok(Checked::default())
    }
    /// Whether a token create answered with a host-side error
    /// ([`Outcome::HostBroken`]: the app's signature, key or parameters) is
    /// retried with `system_error` noted in `last_error` until the code's
    /// validity ends, instead of failing the attempt at once (Shopee, whose
    /// spec says such errors are never a store failure by themselves).
    fn retries_host_errors_on_create(&self) -> bool {
        false
    }
    /// Builds the request of `purpose`.
    fn build(&self, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing;
    /// Reads the answer to a request of `purpose`.
    fn read(&self, purpose: Purpose, status: u16, body: &str, ctx: &Ctx<'_>) -> Outcome;
    /// The credential form a `KEY` authorization needs, if the kind takes KEY.
    fn key_form(&self) -> Option<CredentialForm> {
        None
    }
    /// Whether KEY credentials are verified by a request.
    fn verifies_key(&self) -> bool {
        false
    }
    /// The re-check interval of authorized stores (polling kinds only).
    fn recheck_interval_s(&self) -> Option<u64> {
        None
    }
    /// Why `seller_id` is no seller of this kind (a rule, never the value).
    fn check_seller(&self, _seller_id: &str) -> Result<(), &'static str> {
        Ok(())
    }
    /// The claim key of a seller id: the form in which two ids naming the
    /// same seller compare equal (Shopline handles: lower case).
    fn normalize_seller<'a>(&self, seller_id: &'a str) -> std::borrow::Cow<'a, str> {
        std::borrow::Cow::Borrowed(seller_id)
    }
    /// The app's own secrets, redacted from every message.
    fn secrets(&self) -> Vec<&str>;
}

/// A platform kind's implementation with its settings: what a profile
/// holds. Shared, so cloning settings clones no platform.
#[derive(Debug, Clone)]
pub struct Kind(std::sync::Arc<dyn Platform>);

impl Kind {
    /// Wraps a kind's implementation.
    pub fn new(platform: impl Platform + 'static) -> Kind {
        Kind(std::sync::Arc::new(platform))
    }

    /// The implementation behind this kind.
    pub fn platform(&self) -> &dyn Platform {
        &*self.0
    }
}

/// Reads a built-in platform's `apps` entry into its profile.
pub(crate) type ReadApp = fn(&str, &AppEntry) -> Result<Profile, ConfigError>;

/// A built-in platform: its name, the reader of its `apps` entry, and the
/// fields that entry takes (`typed::fields_of` of the kind's entry type).
pub(crate) struct BuiltIn {
    /// The platform's name (the `platform` of stores, the `apps` key).
    pub name: &'static str,
    /// Reads its `apps` entry into its profile.
    pub read: ReadApp,
    /// The fields its `apps` entry takes.
    pub fields: fn() -> &'static [&'static str],
}

/// The registry of built-in platforms, in the order error messages list
/// them. Adding a built-in platform is one line here (and its file).
const BUILT_IN: &[BuiltIn] = &[
    BuiltIn {
        name: "taobao_tw",
        read: iop::profile,
        fields: iop::entry_fields,
    },
    BuiltIn {
        name: "lazada",
        read: iop::profile,
        fields: iop::entry_fields,
    },
    BuiltIn {
        name: "shopline",
        read: shopline::profile,
        fields: shopline::entry_fields,
    },
    BuiltIn {
        name: "taobao",
        read: checker::profile,
        fields: checker::entry_fields,
    },
    BuiltIn {
        name: "shopee",
        read: shopee::profile,
        fields: shopee::entry_fields,
    },
    BuiltIn {
        name: "amazon_sp",
        read: amazon_sp::profile,
        fields: amazon_sp::entry_fields,
    },
    BuiltIn {
        name: "tiktok_shop",
        read: tiktok::profile,
        fields: tiktok::entry_fields,
    },
    BuiltIn {
        name: "shopify",
        read: shopify::profile,
        fields: shopify::entry_fields,
    },
];

/// The reader of the built-in platform called `name`, if there is one.
pub(crate) fn built_in(name: &str) -> Option<ReadApp> {
    BUILT_IN.iter().find(|b| b.name == name).map(|b| b.read)
}

/// Names of the built-in platforms.
pub fn built_in_names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|b| b.name).collect()
}

/// Whether some kind's `apps` entry takes a field called `field` (so an
/// entry of another kind that has it names a misplaced field, not an
/// unknown one).
pub(crate) fn some_entry_takes(field: &str) -> bool {
    BUILT_IN
        .iter()
        .map(|b| b.fields)
        .chain([oauth2::entry_fields as fn() -> &'static [&'static str]])
        .any(|fields| fields().contains(&field))
}

/// What a request builder may read.
pub struct Ctx<'a> {
    /// The engine's now (ms).
    pub now: i64,
    /// The requested seller id.
    pub seller_id: Option<&'a str>,
    /// The authorization code (token create).
    pub code: Option<&'a str>,
    /// The PKCE verifier of the attempt.
    pub pkce_verifier: Option<&'a str>,
    /// Current tokens (refresh).
    pub tokens: Option<&'a Tokens>,
    /// KEY credentials (verify).
    pub key: Option<&'a KeyCredential>,
    /// The sellers the store learned from the platform (claim keys; a
    /// seller named by the redirect is here by the token create).
    pub learned: &'a [String],
}

/// Whether `status` is retryable by itself (429 or 5xx).
pub fn retryable_status(status: u16) -> bool {
    status == 429 || status >= 500
}

/// How long a 429 or 503 answer asks the client to wait (ms), from its
/// `Retry-After` header (RFC 9110 §10.2.3: delay-seconds or an HTTP date,
/// read against `now`); `None` for other statuses, no header, or a value of
/// neither form. The caller bounds it.
pub fn retry_after_ms(status: u16, headers: &[(String, String)], now: i64) -> Option<i64> {
    if status != 429 && status != 503 {
        return None;
    }
    let value = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))?
        .1
        .trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<i64>().unwrap_or(i64::MAX);
        return Some(secs.saturating_mul(1000));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(at.timestamp_millis().saturating_sub(now).max(0))
}

/// The JSON of a token endpoint's answer, or why to try again: HTTP 429 or
/// 5xx, or a body that is not JSON (a proxy's error page). `who` names the
/// platform in the message.
pub(crate) fn json_answer(
    status: u16,
    body: &str,
    who: &str,
) -> Result<serde_json::Value, Outcome> {
    if retryable_status(status) {
        return Err(Outcome::Retry(describe(
            status,
            &format!("{who} unavailable"),
        )));
    }
    serde_json::from_str(body)
        .map_err(|_| Outcome::Retry(describe(status, &format!("{who} answered no JSON"))))
}

// ------------------------------------------------------------ lifetimes

/// The longest lifetime taken from a platform: ten years, in seconds.
/// Longer ones (and absolute expiries further ahead) are cut to it.
pub const MAX_LIFETIME_S: i64 = 315_360_000;

/// Why a lifetime or expiry in a platform's answer is unusable: the answer
/// is malformed and treated as a retryable error. Messages name the rule,
/// never the value found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Required and absent (or null).
    #[error("is missing")]
    Missing,
    /// Not a JSON number or numeric string (`true`, `"NaN"`, an object, …).
    #[error("is not a number")]
    NotANumber,
    /// A number with a fraction.
    #[error("is not a whole number")]
    NotWhole,
    /// Below zero.
    #[error("is negative")]
    Negative,
    /// Zero where zero has no meaning (an access lifetime).
    #[error("is zero")]
    Zero,
    /// Text that is no time of a known form.
    #[error("is not a time")]
    NotATime,
    /// An absolute expiry not after the answer.
    #[error("is not in the future")]
    NotAhead,
}

/// A whole number from a JSON number or numeric string (exponent forms
/// such as `1e+16` included), saturating at the bounds of `i64`.
pub(crate) fn whole(v: &serde_json::Value) -> Result<i64, Malformed> {
    match v {
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if n.is_u64() {
                Ok(i64::MAX)
            } else {
                whole_f64(n.as_f64().ok_or(Malformed::NotANumber)?)
            }
        }
        serde_json::Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return Ok(i);
            }
            // Only the characters of a JSON number: Rust's float parser
            // also takes "NaN", "inf" and "infinity".
            let numeric = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
            if !numeric {
                return Err(Malformed::NotANumber);
            }
            whole_f64(s.parse::<f64>().map_err(|_| Malformed::NotANumber)?)
        }
        _ => Err(Malformed::NotANumber),
    }
}

/// A float that is a whole number, saturating (an overflowing exponent
/// string reads as infinity, which saturates too).
fn whole_f64(f: f64) -> Result<i64, Malformed> {
    if f.is_nan() {
        Err(Malformed::NotANumber)
    } else if f.is_finite() && f.fract() != 0.0 {
        Err(Malformed::NotWhole)
    } else {
        Ok(f as i64)
    }
}

/// The one reader of lifetimes in seconds (`expires_in`,
/// `refresh_expires_in`, `expire_in`, …), for every platform: `None` when
/// absent or null (what that means is the platform's rule), else a whole
/// number of seconds from 0 to [`MAX_LIFETIME_S`] (longer ones cut to ten
/// years). Negative, fractional and non-numeric values are malformed.
pub(crate) fn lifetime_s(v: Option<&serde_json::Value>) -> Result<Option<i64>, Malformed> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => match whole(v)? {
            n if n < 0 => Err(Malformed::Negative),
            n => Ok(Some(n.min(MAX_LIFETIME_S))),
        },
    }
}

/// An access lifetime: as [`lifetime_s`], but 0 is malformed.
pub(crate) fn access_lifetime_s(v: Option<&serde_json::Value>) -> Result<Option<i64>, Malformed> {
    match lifetime_s(v)? {
        Some(0) => Err(Malformed::Zero),
        n => Ok(n),
    }
}

/// The time a lifetime read by [`lifetime_s`] ends, from `now` (ms).
pub(crate) fn expiry_after(now: i64, lifetime_s: i64) -> i64 {
    crate::engine::at(now, lifetime_s.saturating_mul(1000))
}

/// An absolute expiry (ms, already read from the platform's form, saturated
/// when beyond every representable time): it must lie after `now`, and is
/// cut to ten years from `now`.
pub(crate) fn absolute_expiry(expires_at: i64, now: i64) -> Result<i64, Malformed> {
    if expires_at <= now {
        return Err(Malformed::NotAhead);
    }
    Ok(expires_at.min(expiry_after(now, MAX_LIFETIME_S)))
}

/// Reads a JSON number or numeric string as i64 (status codes and costs;
/// lifetimes go through [`lifetime_s`]).
pub(crate) fn json_i64(v: Option<&serde_json::Value>) -> Option<i64> {
    match v? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

// ------------------------------------------------------------ sellers

/// Most distinct sellers one store holds (requested and learned together).
pub const MAX_SELLERS: usize = 1_000;
/// Longest seller id, in Unicode scalar values (the shortest is 1).
pub const SELLER_MAX_CHARS: usize = 64;

/// The one place shop handles (Shopline's, Shopify's) are normalised: a
/// handle is a host label and compares case-insensitively, so it is
/// claimed, compared and put into URLs lower-cased.
pub fn normalize_handle(handle: &str) -> std::borrow::Cow<'_, str> {
    if handle.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(handle.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(handle)
    }
}

/// Whether a seller id named by a platform has an acceptable length (1–64
/// characters).
pub(crate) fn seller_len_ok(s: &str) -> bool {
    !s.is_empty() && s.chars().nth(SELLER_MAX_CHARS).is_none()
}

/// More than the allowed number of distinct items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("names more than the allowed number of distinct sellers")]
pub struct TooMany;

/// The first of each equal item of `items`, in their order, in linear time
/// (one hash-set insert per item, the set never above `limit + 1` entries);
/// [`TooMany`] as soon as more than `limit` distinct items are seen.
/// `hasher` is the engine's keyed one, so crafted ids cannot collide on
/// purpose and nothing depends on process randomness.
pub(crate) fn first_of_each<T, S>(items: Vec<T>, limit: usize, hasher: S) -> Result<Vec<T>, TooMany>
where
    T: std::hash::Hash + Eq,
    S: std::hash::BuildHasher,
{
    let mut keep = Vec::with_capacity(items.len());
    {
        let mut seen: std::collections::HashSet<&T, S> =
            std::collections::HashSet::with_capacity_and_hasher(
                items.len().min(limit.saturating_add(1)),
                hasher,
            );
        for item in &items {
            let new = seen.insert(item);
            if new && seen.len() > limit {
                return Err(TooMany);
            }
            keep.push(new);
        }
    }
    Ok(items
        .into_iter()
        .zip(keep)
        .filter_map(|(item, new)| new.then_some(item))
        .collect())
}

/// Reads a JSON string or number as text.
pub(crate) fn json_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A short, secret-free description of an unexpected body.
pub(crate) fn describe(status: u16, what: &str) -> String {
    format!("HTTP {status}: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::cell::Cell;
    use std::hash::{Hash, Hasher};

    /// What serde derives for `KeyCredential` (the reader before the
    /// hand-written one), to compare against.
    #[derive(Debug, Deserialize)]
    #[serde(tag = "form", rename_all = "snake_case")]
    enum Derived {
        Token { token: Secret },
        Pair { api_key: Secret, api_secret: Secret },
    }

    impl From<Derived> for KeyCredential {
        fn from(d: Derived) -> Self {
            match d {
                Derived::Token { token } => KeyCredential::Token { token },
                Derived::Pair {
                    api_key,
                    api_secret,
                } => KeyCredential::Pair {
                    api_key,
                    api_secret,
                },
            }
        }
    }

    #[test]
    fn key_credentials_read_as_the_derived_reader_reads_them() {
        let cases = [
            r#"{"form":"token","token":"t"}"#,
            r#"{"token":"t","form":"token"}"#,
            r#"{"form":"pair","api_key":"k","api_secret":"s"}"#,
            r#"{"api_secret":"s","form":"pair","api_key":"k"}"#,
            r#"{"form":"token","token":"t","api_key":7,"x":[1,{"a":null}]}"#,
            r#"{"form":"token","token":"t","api_key":"k","api_key":"k2"}"#,
            r#"{"form":"pair","api_key":"k","api_secret":"s","token":{"a":1}}"#,
            r#"{"form":"token","token":"tA
"}"#,
            r#"{"form":"token","token":"t"}"#,
            r#"{"form":"token","token":"t"}"#,
            r#"{"form":"token","token":"t","token":"u"}"#,
            r#"{"form":"token","form":"token","token":"t"}"#,
            r#"{"form":"token"}"#,
            r#"{"form":"pair","api_key":"k"}"#,
            r#"{"token":"t"}"#,
            r#"{"form":"Token","token":"t"}"#,
            r#"{"form":"api_key_secret","api_key":"k","api_secret":"s"}"#,
            r#"{"form":0,"token":"t"}"#,
            r#"{"form":1,"api_key":"k","api_secret":"s"}"#,
            r#"{"form":null,"token":"t"}"#,
            r#"{"form":"token","token":7}"#,
            r#"{"form":"token","token":null}"#,
            r#"{"form":"pair","api_key":"k","api_secret":["s"]}"#,
            r#"{}"#,
            r#"["token","t"]"#,
            r#"["pair","k","s"]"#,
            r#"["token"]"#,
            r#"["token","t","u"]"#,
            r#"["pair","k"]"#,
            r#"[0,"t"]"#,
            r#"["token",7]"#,
            r#"[]"#,
            r#""token""#,
            r#"7"#,
            r#"null"#,
            r#"{"form":"token","token":"t""#,
            r#"{"form":"token","token":"t",}"#,
        ];
        for text in cases {
            let derived = serde_json::from_str::<Derived>(text).map(KeyCredential::from);
            let ours = serde_json::from_str::<KeyCredential>(text);
            match (&derived, &ours) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => assert_eq!(a.classify(), b.classify(), "{text}"),
                _ => panic!("{text}: derived {derived:?}, ours {ours:?}"),
            }
            // From a buffered value too (a deserializer that is not serde_json's reader).
            if let Ok(v) = serde_json::from_str::<Value>(text) {
                let derived = Derived::deserialize(&v).map(KeyCredential::from);
                let ours = KeyCredential::deserialize(&v);
                assert_eq!(derived.ok(), ours.ok(), "{text} as a Value");
            }
        }
    }

    #[test]
    fn lifetimes_are_whole_bounded_seconds() {
        let ten_years = Ok(Some(MAX_LIFETIME_S));
        for v in [
            json!(1e16),
            json!(1e308),
            json!(i64::MAX),
            json!(u64::MAX),
            json!("1e+16"),
            json!("1E16"),
            json!(i64::MAX.to_string()),
            json!(u64::MAX.to_string()),
            json!("1e400"),
            json!(315_360_001),
            json!(315_360_000),
        ] {
            assert_eq!(lifetime_s(Some(&v)), ten_years, "{v}");
        }
        assert_eq!(lifetime_s(Some(&json!(259200))), Ok(Some(259200)));
        assert_eq!(lifetime_s(Some(&json!(" 259200 "))), Ok(Some(259200)));
        assert_eq!(lifetime_s(Some(&json!(7200.0))), Ok(Some(7200)));
        assert_eq!(lifetime_s(Some(&json!("1.5e1"))), Ok(Some(15)));
        assert_eq!(lifetime_s(Some(&json!(0))), Ok(Some(0)));
        assert_eq!(lifetime_s(None), Ok(None));
        assert_eq!(lifetime_s(Some(&Value::Null)), Ok(None));
        for (v, why) in [
            (json!(-5), Malformed::Negative),
            (json!("-5"), Malformed::Negative),
            (json!(-1e308), Malformed::Negative),
            (json!(0.5), Malformed::NotWhole),
            (json!("0.5"), Malformed::NotWhole),
            (json!("1e-3"), Malformed::NotWhole),
            (json!("NaN"), Malformed::NotANumber),
            (json!("inf"), Malformed::NotANumber),
            (json!("infinity"), Malformed::NotANumber),
            (json!(""), Malformed::NotANumber),
            (json!("12 s"), Malformed::NotANumber),
            (json!("0x10"), Malformed::NotANumber),
            (json!(true), Malformed::NotANumber),
            (json!([1]), Malformed::NotANumber),
            (json!({"s": 1}), Malformed::NotANumber),
        ] {
            assert_eq!(lifetime_s(Some(&v)), Err(why), "{v}");
        }
        assert_eq!(access_lifetime_s(Some(&json!(0))), Err(Malformed::Zero));
        assert_eq!(access_lifetime_s(Some(&json!("0"))), Err(Malformed::Zero));
        assert_eq!(access_lifetime_s(Some(&json!(1))), Ok(Some(1)));
    }

    #[test]
    fn expiries_never_pass_year_9999() {
        use crate::engine::MAX_TIME_MS;
        let now = 1_700_000_000_000;
        assert_eq!(expiry_after(now, MAX_LIFETIME_S), now + 315_360_000_000);
        assert_eq!(expiry_after(MAX_TIME_MS - 5, MAX_LIFETIME_S), MAX_TIME_MS);
        assert_eq!(expiry_after(now, i64::MAX), MAX_TIME_MS);
        assert_eq!(absolute_expiry(i64::MAX, now), Ok(now + 315_360_000_000));
        assert_eq!(absolute_expiry(now + 1, now), Ok(now + 1));
        assert_eq!(absolute_expiry(now, now), Err(Malformed::NotAhead));
        assert_eq!(absolute_expiry(i64::MIN, now), Err(Malformed::NotAhead));
        assert_eq!(absolute_expiry(i64::MAX, MAX_TIME_MS - 1), Ok(MAX_TIME_MS));
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let h = |v: &str| vec![("Retry-After".to_owned(), v.to_owned())];
        let now = 1_700_000_000_000; // 2023-11-14T22:13:20Z
        assert_eq!(retry_after_ms(429, &h("120"), now), Some(120_000));
        assert_eq!(retry_after_ms(503, &h(" 7 "), now), Some(7_000));
        assert_eq!(
            retry_after_ms(503, &h("99999999999999999999"), now),
            Some(i64::MAX)
        );
        assert_eq!(
            retry_after_ms(429, &h("Tue, 14 Nov 2023 22:14:20 GMT"), now),
            Some(60_000)
        );
        assert_eq!(
            retry_after_ms(429, &h("Tue, 14 Nov 2023 22:00:00 GMT"), now),
            Some(0)
        );
        let lower = vec![("retry-after".to_owned(), "3".to_owned())];
        assert_eq!(retry_after_ms(429, &lower, now), Some(3_000));
        assert_eq!(retry_after_ms(500, &h("120"), now), None);
        assert_eq!(retry_after_ms(200, &h("120"), now), None);
        assert_eq!(retry_after_ms(429, &h("-5"), now), None);
        assert_eq!(retry_after_ms(429, &h("soon"), now), None);
        assert_eq!(retry_after_ms(429, &[], now), None);
    }

    #[test]
    fn seller_lengths_count_characters() {
        assert!(!seller_len_ok(""));
        assert!(seller_len_ok("x"));
        assert!(seller_len_ok(&"店".repeat(64)));
        assert!(!seller_len_ok(&"a".repeat(65)));
    }

    thread_local! {
        static OPS: Cell<u64> = const { Cell::new(0) };
    }

    /// A seller id that counts every hash and equality operation on it.
    struct Counted(String);

    impl PartialEq for Counted {
        fn eq(&self, other: &Self) -> bool {
            OPS.with(|c| c.set(c.get() + 1));
            self.0 == other.0
        }
    }
    impl Eq for Counted {}
    impl Hash for Counted {
        fn hash<H: Hasher>(&self, h: &mut H) {
            OPS.with(|c| c.set(c.get() + 1));
            self.0.hash(h);
        }
    }

    /// Operations of de-duplicating `n` ids (each named twice), and the result.
    fn ops_of(n: usize) -> (u64, Vec<String>) {
        let items: Vec<Counted> = (0..2 * n)
            .map(|i| Counted(format!("seller-{}", i % n)))
            .collect();
        let hasher = crate::keys::Keys::derive(&[7; 32]).index_hasher();
        OPS.with(|c| c.set(0));
        let out = first_of_each(items, usize::MAX, hasher).expect("no limit");
        let ops = OPS.with(Cell::get);
        (ops, out.into_iter().map(|c| c.0).collect())
    }

    #[test]
    fn dedup_is_linear_in_the_number_of_sellers() {
        let (small, out) = ops_of(1_000);
        assert_eq!(out.len(), 1_000);
        assert_eq!(out[0], "seller-0");
        assert_eq!(out[999], "seller-999");
        let (large, out) = ops_of(10_000);
        assert_eq!(out.len(), 10_000);
        // One hash per item and an equality test per duplicate (plus the
        // rare tag collision): ten times the input, about ten times the work.
        // A pairwise scan would take about a hundred times as many.
        assert!(small >= 3 * 1_000, "{small}");
        assert!(large >= 3 * 10_000, "{large}");
        assert!(large <= 11 * small, "{small} → {large}");
        assert!(large <= 4 * 10_000, "{large}");
    }

    #[test]
    fn dedup_keeps_first_in_order_and_stops_past_the_limit() {
        let h = crate::keys::Keys::derive(&[7; 32]).index_hasher();
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            first_of_each(v(&["b", "a", "b", "c", "a"]), 3, h),
            Ok(v(&["b", "a", "c"]))
        );
        assert_eq!(first_of_each(v(&["b", "a", "b", "c"]), 2, h), Err(TooMany));
        let many: Vec<String> = (0..1_001).map(|i| i.to_string()).collect();
        assert_eq!(first_of_each(many.clone(), MAX_SELLERS, h), Err(TooMany));
        assert_eq!(
            first_of_each(many[..1_000].to_vec(), MAX_SELLERS, h).map(|v| v.len()),
            Ok(1_000)
        );
    }
}
