//! Redaction of text that reaches `last_error` (spec §1): every secret the
//! engine holds for the store and its app — tokens, the authorization code,
//! KEY credentials, the notify secret, the app secret, a status service's
//! access token — is replaced by `[redacted]` wherever it occurs, and the
//! message is then cut to 256 characters (after redaction, so no fragment of
//! a secret survives the cut). Platforms echo what they were sent in their
//! own error texts; this is the one place that makes those texts safe.
//!
//! What does not live here: which errors a platform reports (`platform/*`).

use crate::config::Profile;
use crate::platform::KeyCredential;
use crate::store::Store;

/// The longest `last_error.message`, in characters.
pub const MESSAGE_MAX: usize = 256;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// The secrets held for `store` and its app.
fn secrets<'a>(store: &'a Store, profile: &'a Profile) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    if let Some(t) = store.tokens.as_deref() {
        v.push(t.access.expose());
        v.extend(t.refresh.as_ref().map(|r| r.expose()));
    }
    match store.key.as_deref() {
        Some(KeyCredential::Token { token }) => v.push(token.expose()),
        Some(KeyCredential::Pair {
            api_key,
            api_secret,
        }) => {
            v.push(api_key.expose());
            v.push(api_secret.expose());
        }
        None => {}
    }
    if let Some(c) = store.att().code.as_ref() {
        v.push(c.expose());
    }
    if let Some(s) = store.notify.as_deref().and_then(|n| n.secret.as_ref()) {
        v.push(s.expose());
    }
    v.extend(profile.platform().secrets());
    v.retain(|s| !s.is_empty());
    // Longest first, so a secret that contains another is replaced whole.
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v.dedup();
    v
}

/// `message` with every secret of `store` and its app replaced, at most
/// [`MESSAGE_MAX`] characters.
pub fn message(store: &Store, profile: &Profile, message: &str) -> String {
    let mut text = message.to_owned();
    for s in secrets(store, profile) {
        if text.contains(s) {
            text = text.replace(s, REDACTED);
        }
    }
    cut(text)
}

/// Whether `text` carries a secret of `store` or its app (text from outside
/// that would be shown whole, such as a status service's link, is then not
/// taken at all).
pub fn carries_secret(store: &Store, profile: &Profile, text: &str) -> bool {
    secrets(store, profile).iter().any(|s| text.contains(s))
}

fn cut(mut text: String) -> String {
    if let Some((i, _)) = text.char_indices().nth(MESSAGE_MAX) {
        text.truncate(i);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_counts_characters_not_bytes() {
        let t = "é".repeat(300);
        let c = cut(t);
        assert_eq!(c.chars().count(), MESSAGE_MAX);
        assert_eq!(cut("short".into()), "short");
    }
}
