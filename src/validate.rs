//! Field rules of the inputs: seed 000's authorize checks (spec §4: general
//! shape, then the platform-specific shape) and the shape of
//! `register_store` and of store references. Each check names the field
//! and the rule; the first failing check answers.
//!
//! What does not live here: the existence, state and claim checks, which
//! need the engine's state (see `engine`).

use crate::config::{CredentialForm, Profile};
use crate::error::Refusal;
use crate::message::{AuthInfo, AuthType, Authorize, RegisterStore, StoreRef};
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

/// `client_id` and `store_id`.
pub fn store_ref(r: &StoreRef) -> Result<(), Refusal> {
    text("client_id", &r.client_id, ID_MAX)?;
    text("store_id", &r.store_id, ID_MAX)
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
    text("client_id", &r.client_id, ID_MAX)?;
    text("store_id", &r.store_id, ID_MAX)?;
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

/// Spec §4 "shape" rows, in order.
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
    let key = match auth_type {
        AuthType::Key => Some(key_credential(a.auth_info.as_ref())?),
        AuthType::Url => None,
    };
    let redirect_url = match (auth_type, &a.redirect_url) {
        (AuthType::Url, Some(u)) => {
            text("redirect_url", u, REDIRECT_URL_MAX)?;
            Some(url_as_sent("redirect_url", u)?)
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

fn key_credential(info: Option<&AuthInfo>) -> Result<KeyCredential, Refusal> {
    let info = info.ok_or_else(|| Refusal::illegal("auth_info", "is required for KEY"))?;
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
    if profile.seller_case_insensitive() {
        if let Some(h) = &s.seller_id {
            if !is_host_label(h) {
                return Err(Refusal::illegal(
                    "seller_id",
                    "must be a Shopline handle: letters, digits and '-', 1-63 characters, not starting or ending with '-'",
                ));
            }
        }
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
    fn lengths_count_scalar_values() {
        assert!(text("f", &"店".repeat(64), 64).is_ok());
        assert!(text("f", &"店".repeat(65), 64).is_err());
        assert_eq!(text("f", "", 64), Err(Refusal::illegal("f", "is required")));
    }
}
