//! Field rules of the inputs: seed 000's authorize checks (spec §4: general
//! shape, then the platform-specific shape) and the shape of
//! `register_store` and of store references. Each check names the field
//! and the rule; the first failing check answers.
//!
//! What does not live here: the existence, state and claim checks, which
//! need the engine's state (see `engine`).

use crate::config::{CredentialForm, Profile};
use crate::error::Refusal;
use crate::message::{AuthInfo, AuthType, Authorize, Lenient, RegisterStore, StoreRef};
use crate::platform::KeyCredential;
use crate::secret::Secret;

/// Maximum length of ids.
pub const ID_MAX: usize = 64;
/// Maximum length of each auth_info value.
pub const AUTH_INFO_MAX: usize = 2048;
/// Maximum length of redirect_url.
pub const REDIRECT_URL_MAX: usize = 255;
/// Maximum length of notify_url and notify_secret.
pub const NOTIFY_MAX: usize = 2048;

/// `field` is 1–`max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), Refusal> {
    if value.is_empty() {
        return Err(Refusal::illegal(field, "is required"));
    }
    // Count lazily so a huge value is refused without a full scan.
    if value.len() > max && value.chars().nth(max).is_some() {
        return Err(Refusal::illegal(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// A control character: U+0000–U+001F and U+007F–U+009F (Unicode `Cc`).
pub fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Whether `value` holds a control character ([`is_control`]), read a byte
/// at a time: U+0000–U+001F and U+007F are those bytes, U+0080–U+009F are
/// 0xC2 followed by 0x80–0x9F (no other UTF-8 sequence holds 0xC2 as a
/// continuation, so no char boundary is needed).
fn has_control(value: &str) -> bool {
    let b = value.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c < 0x20
            || c == 0x7f
            || (c == 0xc2 && b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
    })
}

/// `field` holds no control character (spec §4: ids, and `auth_info`
/// values, which go into HTTP headers where CR/LF would split them).
pub fn no_controls(field: &str, value: &str) -> Result<(), Refusal> {
    if has_control(value) {
        return Err(Refusal::illegal(
            field,
            "must not contain control characters (U+0000-U+001F, U+007F-U+009F)",
        ));
    }
    Ok(())
}

/// The id rule of spec §4 beyond its length: no leading or trailing white
/// space (Unicode `White_Space`, which is what `char::is_whitespace`
/// tests), no control characters. Without it `"s1 "` would be a store,
/// and a seller claimed, apart from `"s1"`.
pub fn id_chars(field: &str, value: &str) -> Result<(), Refusal> {
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(Refusal::illegal(
            field,
            "must not start or end with white space",
        ));
    }
    no_controls(field, value)
}

/// `client_id` and `store_id` of every input that names a store: their
/// lengths, then the id rule, in the order of spec §4.
pub fn store_ref(r: &StoreRef) -> Result<(), Refusal> {
    ids(&r.client_id, &r.store_id)
}

fn ids(client_id: &str, store_id: &str) -> Result<(), Refusal> {
    text("client_id", client_id, ID_MAX)?;
    text("store_id", store_id, ID_MAX)?;
    id_chars("client_id", client_id)?;
    id_chars("store_id", store_id)
}

/// An absolute http(s) URL without user info or fragment, in the form it
/// will be sent: the parsed, normalized text (so that what goes out is what
/// every HTTP client reads the same way, e.g. `https:/x` becomes `https://x/`).
pub fn url_as_sent(field: &str, value: &str) -> Result<String, Refusal> {
    let u = crate::config::check_url(value).map_err(|rule| Refusal::illegal(field, rule))?;
    if u.fragment().is_some() {
        return Err(Refusal::illegal(field, "must not have a fragment"));
    }
    Ok(u.into())
}

/// Shape of `register_store` (the platform's existence is checked by the
/// engine). The engine stores `notify_url` as [`url_as_sent`] gives it.
pub fn register(r: &RegisterStore) -> Result<(), Refusal> {
    ids(&r.client_id, &r.store_id)?;
    text("platform", &r.platform, ID_MAX)?;
    if let Some(u) = &r.notify_url {
        text("notify_url", u, NOTIFY_MAX)?;
        url_as_sent("notify_url", u)?;
    }
    if let Some(s) = &r.notify_secret {
        text("notify_secret", s.expose(), NOTIFY_MAX)?;
    }
    Ok(())
}

/// An authorize request after the general shape checks: ignored fields are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shaped {
    /// URL or KEY.
    pub auth_type: AuthType,
    /// The seller id, if given.
    pub seller_id: Option<String>,
    /// KEY credentials.
    pub key: Option<KeyCredential>,
    /// URL redirect target.
    pub redirect_url: Option<String>,
}

/// Spec §4 "shape" rows, in order. `auth_info` is looked at only for KEY
/// and `redirect_url` only for URL: for the other type they are ignored,
/// their type included.
pub fn authorize_shape(a: &Authorize) -> Result<Shaped, Refusal> {
    text("client_id", &a.client_id, ID_MAX)?;
    text("store_id", &a.store_id, ID_MAX)?;
    let auth_type = match a.auth_type.as_str() {
        "URL" => AuthType::Url,
        "KEY" => AuthType::Key,
        "" => return Err(Refusal::illegal("auth_type", "is required (URL or KEY)")),
        _ => return Err(Refusal::illegal("auth_type", "must be exactly URL or KEY")),
    };
    if let Some(s) = &a.seller_id {
        text("seller_id", s, ID_MAX)?;
    }
    id_chars("client_id", &a.client_id)?;
    id_chars("store_id", &a.store_id)?;
    if let Some(s) = &a.seller_id {
        id_chars("seller_id", s)?;
    }
    let key = match auth_type {
        AuthType::Key => {
            let info = a
                .auth_info
                .as_ref()
                .ok_or_else(|| Refusal::illegal("auth_info", "is required for KEY"))?;
            auth_info_controls(info)?;
            Some(key_credential(info)?)
        }
        AuthType::Url => None,
    };
    let redirect_url = match (auth_type, &a.redirect_url) {
        (AuthType::Url, Some(u)) => {
            let u = typed("redirect_url", u)?;
            text("redirect_url", &u, REDIRECT_URL_MAX)?;
            Some(url_as_sent("redirect_url", &u)?)
        }
        _ => None,
    };
    Ok(Shaped {
        auth_type,
        seller_id: a.seller_id.clone(),
        key,
        redirect_url,
    })
}

/// The value of a [`Lenient`] field where it applies, or the field error
/// (its path and rule, never the value).
fn typed<T: Clone + serde::de::DeserializeOwned>(
    field: &str,
    v: &Lenient<T>,
) -> Result<T, Refusal> {
    match v {
        Lenient::Typed(t) => Ok(t.clone()),
        Lenient::Untyped(raw) => match crate::typed::from_value::<T>(raw.clone()) {
            Ok(t) => Ok(t),
            Err(p) => {
                let rule = p.rule();
                Err(Refusal::illegal(p.under(field).path, rule))
            }
        },
    }
}

const INFO_FIELDS: [&str; 3] = ["token", "api_key", "api_secret"];
/// Their paths, as refusals name them.
const INFO_PATHS: [&str; 3] = [
    "auth_info.token",
    "auth_info.api_key",
    "auth_info.api_secret",
];

/// Spec §4 "auth_info values" row: every value given as text, whatever the
/// shape of the rest, holds no control character.
fn auth_info_controls(info: &Lenient<AuthInfo>) -> Result<(), Refusal> {
    let values: [Option<&str>; 3] = match info {
        Lenient::Typed(i) => {
            [&i.token, &i.api_key, &i.api_secret].map(|v| v.as_ref().map(Secret::expose))
        }
        Lenient::Untyped(raw) => {
            INFO_FIELDS.map(|f| raw.get(f).and_then(serde_json::Value::as_str))
        }
    };
    for (path, v) in INFO_PATHS.iter().zip(values) {
        if let Some(v) = v {
            no_controls(path, v)?;
        }
    }
    Ok(())
}

fn key_credential(info: &Lenient<AuthInfo>) -> Result<KeyCredential, Refusal> {
    if let Lenient::Untyped(raw) = info {
        if !raw.is_object() {
            return Err(Refusal::illegal("auth_info", "must be an object"));
        }
    }
    // Borrowed when it is typed already (no copy of the secrets).
    let info: std::borrow::Cow<'_, AuthInfo> = match info {
        Lenient::Typed(t) => std::borrow::Cow::Borrowed(t),
        Lenient::Untyped(_) => std::borrow::Cow::Owned(typed("auth_info", info)?),
    };
    let check = |f: &str, v: &Option<Secret>| -> Result<(), Refusal> {
        match v {
            Some(s) => text(f, s.expose(), AUTH_INFO_MAX),
            None => Ok(()),
        }
    };
    check("auth_info.token", &info.token)?;
    check("auth_info.api_key", &info.api_key)?;
    check("auth_info.api_secret", &info.api_secret)?;
    match (&info.token, &info.api_key, &info.api_secret) {
        (Some(t), None, None) => Ok(KeyCredential::Token { token: t.clone() }),
        (None, Some(k), Some(s)) => Ok(KeyCredential::Pair {
            api_key: k.clone(),
            api_secret: s.clone(),
        }),
        (None, None, None) => Err(Refusal::illegal(
            "auth_info",
            "must carry token or the pair api_key + api_secret",
        )),
        (Some(_), _, _) => Err(Refusal::illegal(
            "auth_info",
            "must carry exactly one of token or the pair api_key + api_secret",
        )),
        (None, Some(_), None) => Err(Refusal::illegal(
            "auth_info.api_secret",
            "is required with api_key",
        )),
        (None, None, Some(_)) => Err(Refusal::illegal(
            "auth_info.api_key",
            "is required with api_secret",
        )),
    }
}

/// Spec §4 "platform" rows, in order.
pub fn authorize_platform(profile: &Profile, s: &Shaped) -> Result<(), Refusal> {
    match s.auth_type {
        AuthType::Url if !profile.takes_url() => {
            return Err(Refusal::illegal(
                "auth_type",
                format!("URL is not supported by platform {}", profile.name),
            ));
        }
        AuthType::Key => match (profile.key_form(), &s.key) {
            (None, _) => {
                return Err(Refusal::illegal(
                    "auth_type",
                    format!("KEY is not supported by platform {}", profile.name),
                ));
            }
            (Some(CredentialForm::Token), Some(KeyCredential::Pair { .. })) => {
                return Err(Refusal::illegal(
                    "auth_info",
                    format!("platform {} requires token", profile.name),
                ));
            }
            (Some(CredentialForm::ApiKeySecret), Some(KeyCredential::Token { .. })) => {
                return Err(Refusal::illegal(
                    "auth_info",
                    format!("platform {} requires api_key + api_secret", profile.name),
                ));
            }
            _ => {}
        },
        _ => {}
    }
    if profile.seller_id_required() && s.seller_id.is_none() {
        return Err(Refusal::illegal(
            "seller_id",
            format!("is required by platform {}", profile.name),
        ));
    }
    if let Some(h) = &s.seller_id {
        profile
            .platform()
            .check_seller(h)
            .map_err(|rule| Refusal::illegal("seller_id", rule))?;
    }
    Ok(())
}

/// A DNS host label: letters, digits, `-`; 1–63; no `-` at either end.
pub fn is_host_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_labels() {
        assert!(is_host_label("my-shop1"));
        assert!(!is_host_label("-a"));
        assert!(!is_host_label("a-"));
        assert!(!is_host_label("a.b"));
        assert!(!is_host_label(&"a".repeat(64)));
        assert!(is_host_label(&"a".repeat(63)));
    }

    #[test]
    fn control_bytes_are_the_control_chars() {
        // Every char up to U+0800 and a few beyond, alone and between
        // others: the byte test agrees with the char test.
        for c in (0u32..0x800)
            .chain([0xfeff, 0x1f600])
            .filter_map(char::from_u32)
        {
            for s in [c.to_string(), format!("a{c}b"), format!("\u{c2}{c}")] {
                assert_eq!(has_control(&s), s.chars().any(is_control), "{c:?}");
            }
        }
    }

    #[test]
    fn lengths_count_scalar_values() {
        assert!(text("f", &"店".repeat(64), 64).is_ok());
        assert!(text("f", &"店".repeat(65), 64).is_err());
        assert_eq!(text("f", "", 64), Err(Refusal::illegal("f", "is required")));
    }
}
