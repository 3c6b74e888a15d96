//! Shopify (kind `shopify`): the authorize URL on the shop's own host, the
//! HMAC-signed callback (`code`, `hmac`, `host`, `shop`, `state`,
//! `timestamp`), the token exchange and the refresh of expiring offline
//! tokens (`POST /admin/oauth/access_token`), their answers and errors.
//!
//! Sources (read before building):
//! - Shopify/shopify-api-js `packages/shopify-api/lib/utils/hmac-validator.ts`
//!   and `lib/utils/processed-query.ts` (the repository's last state; it
//!   moved to Shopify/shopify-app-js, whose
//!   `packages/apps/shopify-api/lib/utils/hmac-validator.ts` and
//!   `processed-query.ts` are followed where they differ): drop `hmac` and
//!   `signature`, sort the names with `localeCompare`, serialize with
//!   `URLSearchParams` — and, since shopify-app-js 667546359 ("Shopify signs
//!   using percent-encoding"), a space as `%20`, not `+` —, HMAC-SHA256
//!   under the app secret, lower-case hex, compared in constant time with
//!   the hmac exactly as given (`safe-compare.ts`); the timestamp must be an
//!   integer within 90 s of now, either way
//!   (`HMAC_TIMESTAMP_PERMITTED_CLOCK_TOLERANCE_SEC`).
//! - `lib/auth/oauth/oauth.ts` (`begin`: `client_id`, `scope`,
//!   `redirect_uri`, `state`, `grant_options[]` — empty for offline
//!   tokens; `callback`: a JSON body `{client_id, client_secret, code,
//!   expiring: "1"|"0"}` to `https://{shop}/admin/oauth/access_token`),
//!   `lib/auth/oauth/refresh-token.ts` (the same endpoint with
//!   `{client_id, client_secret, refresh_token, grant_type:
//!   "refresh_token"}`), `lib/auth/oauth/create-session.ts` (an offline
//!   answer's `expires_in`, `refresh_token`, `refresh_token_expires_in`,
//!   each window counted from the answer) and
//!   `lib/auth/oauth/__tests__/refresh-token.test.ts` (a dead refresh
//!   token: HTTP 400 `{"error": "invalid_grant"}`).
//!
//! `localeCompare` is ICU collation; names are compared here with its
//! order for ASCII (white space, then punctuation and symbols, then
//! digits, then letters, case deciding only between otherwise equal names,
//! lower case first), other characters after those by code point. For the
//! names Shopify sends (lower-case ASCII letters and `_`) it is byte order.
//!
//! What does not live here: the host-label rule (`validate::is_host_label`)
//! and the handle normalisation shared with Shopline
//! (`platform::normalize_handle`).
//!
//! Also here: its settings (`ShopifyApp`), the reading of `apps.shopify`
//! and its `Platform` implementation.

use super::{
    Ctx, Malformed, Outcome, Outgoing, Tokens, access_lifetime_s, describe, expiry_after,
    lifetime_s, normalize_handle,
};
use crate::config::{
    AppEntry, Profile, app_entry, origin_template, rate, required_secret, required_text, url_field,
};
use crate::encoding::append_query;
use crate::error::ConfigError;
use crate::keys::{ct_eq, hmac_hex};
use crate::message::{Purpose, Reason};
use crate::platform::Kind;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// How far a callback's `timestamp` may be from now, either way (s).
pub const TIMESTAMP_TOLERANCE_S: i64 = 90;

/// The shop's origin (`https://{handle}.myshopify.com` unless overridden).
pub fn shop_origin(app: &ShopifyApp, handle: &str) -> String {
    app.shop_url
        .replace("{seller_id}", &normalize_handle(handle))
}

/// `https://{handle}.myshopify.com/admin/oauth/authorize?client_id=…&scope=…&redirect_uri=…&state=…&grant_options%5B%5D=`.
pub fn authorize_url(app: &ShopifyApp, handle: &str, nonce: &str) -> String {
    append_query(
        &format!("{}/admin/oauth/authorize", shop_origin(app, handle)),
        [
            ("client_id", app.app_key.as_str()),
            ("scope", &app.scope),
            ("redirect_uri", &app.redirect_uri),
            ("state", nonce),
            // Offline access: an empty grant option, as the library sends it.
            ("grant_options[]", ""),
        ],
    )
}

/// `URLSearchParams`' serialization of one name or value (WHATWG URL,
/// application/x-www-form-urlencoded: ASCII letters, digits and `*-._`
/// kept, everything else percent-encoded as UTF-8 with upper-case hex),
/// with a space as `%20` (shopify-app-js `ProcessedQuery.stringify`).
pub fn js_form_encode(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// ICU root collation's primary order of the ASCII characters that are not
/// letters or digits (white space first, then punctuation and symbols).
const ASCII_SYMBOLS: &[u8] = b"\t\n\x0b\x0c\r _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

/// The primary weight of a character in `localeCompare`'s order, as far as
/// shopauth follows it (see the module doc); `None` for ignorable controls.
fn primary(c: char) -> Option<u32> {
    let symbols = ASCII_SYMBOLS.len() as u32;
    match c {
        '0'..='9' => Some(symbols + (c as u32 - '0' as u32)),
        'a'..='z' => Some(symbols + 10 + (c as u32 - 'a' as u32)),
        'A'..='Z' => Some(symbols + 10 + (c as u32 - 'A' as u32)),
        c if c.is_ascii_control() && !c.is_ascii_whitespace() && c != '\x0b' => None,
        c if c.is_ascii() => ASCII_SYMBOLS
            .iter()
            .position(|&s| u32::from(s) == c as u32)
            .map(|i| i as u32),
        c => Some(symbols + 36 + c as u32),
    }
}

/// Two parameter names in `localeCompare`'s order: by primary weights,
/// then lower case before upper case, then by bytes (so the order is total).
pub fn locale_cmp(a: &str, b: &str) -> Ordering {
    let weights = |s: &str| s.chars().filter_map(primary).collect::<Vec<u32>>();
    let case = |s: &str| {
        s.chars()
            .filter(|&c| primary(c).is_some())
            .map(|c| c.is_ascii_uppercase())
            .collect::<Vec<bool>>()
    };
    weights(a)
        .cmp(&weights(b))
        .then_with(|| case(a).cmp(&case(b)))
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The message a callback's `hmac` signs: every parameter but `hmac` and
/// `signature`, names in `localeCompare` order, `name=value` joined by `&`,
/// both serialized as `URLSearchParams` does (space as `%20`).
pub fn callback_message(params: &BTreeMap<String, String>) -> String {
    let mut pairs: Vec<(&String, &String)> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "hmac" && k.as_str() != "signature")
        .collect();
    pairs.sort_by(|a, b| locale_cmp(a.0, b.0));
    let mut s = String::with_capacity(256);
    for (k, v) in pairs {
        if !s.is_empty() {
            s.push('&');
        }
        js_form_encode(&mut s, k);
        s.push('=');
        js_form_encode(&mut s, v);
    }
    s
}

/// The `hmac` of a callback's parameters under `secret`.
pub fn callback_hmac(secret: &str, params: &BTreeMap<String, String>) -> String {
    hmac_hex(secret.as_bytes(), &[callback_message(params).as_bytes()])
}

/// Checks a callback at `now` (ms): an `hmac` present, a `timestamp` that
/// is an integer within [`TIMESTAMP_TOLERANCE_S`] of now, the `hmac`
/// verifying (constant time, as given), and `shop` being
/// `{handle}.myshopify.com` of the store (case-insensitively). The error
/// names the rule broken.
pub fn check_callback(
    app: &ShopifyApp,
    params: &BTreeMap<String, String>,
    handle: &str,
    now: i64,
) -> Result<(), &'static str> {
    let hmac = params
        .get("hmac")
        .filter(|h| !h.is_empty())
        .ok_or("the callback has no hmac")?;
    let timestamp = params
        .get("timestamp")
        .map(|t| t.trim())
        .filter(|t| {
            let digits = t.strip_prefix('-').unwrap_or(t);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        })
        .ok_or("the callback's timestamp is missing or not an integer")?;
    // Digits beyond i64 are a time no tolerance reaches.
    let ts = timestamp.parse::<i64>().unwrap_or(i64::MAX);
    let now_s = now.div_euclid(1000);
    if now_s.abs_diff(ts) > TIMESTAMP_TOLERANCE_S.unsigned_abs() {
        return Err("the callback's timestamp is not within 90 s of now");
    }
    let expected = callback_hmac(app.app_secret.expose(), params);
    if !ct_eq(expected.as_bytes(), hmac.as_bytes()) {
        return Err("the callback's hmac does not verify");
    }
    let shop = params.get("shop").map(String::as_str).unwrap_or("");
    let want = format!("{handle}.myshopify.com");
    if !shop.eq_ignore_ascii_case(&want) {
        return Err("the callback's shop is not the store's seller_id");
    }
    Ok(())
}

/// The JSON body of a token exchange, in the library's field order.
#[derive(Serialize)]
struct CreateBody<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    code: &'a str,
    expiring: &'a str,
}

/// The JSON body of a refresh, in the library's field order.
#[derive(Serialize)]
struct RefreshBody<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    refresh_token: &'a str,
    grant_type: &'a str,
}

/// Token exchange or refresh: `POST {shop}/admin/oauth/access_token`, JSON.
pub fn build(app: &ShopifyApp, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
    let secret = app.app_secret.expose();
    let body = if purpose == Purpose::TokenRefresh {
        let rt = ctx
            .tokens
            .and_then(|t| t.refresh.as_ref())
            .map_or("", Secret::expose);
        serde_json::to_string(&RefreshBody {
            client_id: &app.app_key,
            client_secret: secret,
            refresh_token: rt,
            grant_type: "refresh_token",
        })
    } else {
        serde_json::to_string(&CreateBody {
            client_id: &app.app_key,
            client_secret: secret,
            code: ctx.code.unwrap_or(""),
            expiring: if app.expiring { "1" } else { "0" },
        })
    }
    .expect("strings serialize");
    Outgoing {
        method: "POST",
        url: format!(
            "{}/admin/oauth/access_token",
            shop_origin(app, ctx.seller_id.unwrap_or(""))
        ),
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("Accept".to_owned(), "application/json".to_owned()),
        ],
        body: Some(body),
    }
}

/// Classifies an OAuth `error` of the token endpoint.
pub fn classify(purpose: Purpose, status: u16, code: &str) -> Outcome {
    let msg = describe(status, &format!("Shopify error {code}"));
    match code {
        // A used, expired or unknown code; a dead or reused refresh token.
        "invalid_grant" => Outcome::Rejected(
            if purpose == Purpose::TokenRefresh {
                Reason::RefreshRejected
            } else {
                Reason::PlatformRejected
            },
            msg,
        ),
        // invalid_client (wrong client id or secret), invalid_request and
        // anything else: our setup.
        _ => Outcome::HostBroken(msg),
    }
}

/// Reads a token answer: `access_token`, `scope`, and for expiring tokens
/// `expires_in`, `refresh_token`, `refresh_token_expires_in`.
pub fn read_token(
    purpose: Purpose,
    status: u16,
    body: &str,
    ctx: &Ctx<'_>,
) -> Result<Tokens, Outcome> {
    let (v, access) = super::oauth2::answer(status, body, "Shopify", |err, _| {
        Some(classify(purpose, status, err))
    })?;
    let now = ctx.now;
    let malformed = |field: &str, e: Malformed| {
        Outcome::Retry(describe(status, &format!("Shopify answer: {field} {e}")))
    };
    let expires_in =
        access_lifetime_s(v.get("expires_in")).map_err(|e| malformed("expires_in", e))?;
    let new_refresh = v
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    // Without `expires_in` the token does not expire and never refreshes.
    // With it, a refresh token (single use: each answer's replaces the
    // last) lives `refresh_token_expires_in` from this answer.
    let (refresh, refresh_expires_at) = match (expires_in, new_refresh) {
        (Some(_), Some(r)) => {
            match lifetime_s(v.get("refresh_token_expires_in"))
                .and_then(|n| n.ok_or(Malformed::Missing))
                .map_err(|e| malformed("refresh_token_expires_in", e))?
            {
                0 => (None, None),
                n => (Some(Secret::new(r)), Some(expiry_after(now, n))),
            }
        }
        _ => (None, None),
    };
    Ok(Tokens {
        access,
        refreshable: refresh.is_some(),
        refresh,
        access_expires_at: expires_in.map(|n| expiry_after(now, n)),
        refresh_expires_at,
        obtained_at: now,
        sellers: Some(vec![
            normalize_handle(ctx.seller_id.unwrap_or("")).into_owned(),
        ]),
    })
}

impl super::Platform for ShopifyApp {
    fn flow(&self) -> super::Flow {
        super::Flow::Redirect
    }
    fn authorize_url(&self, a: &super::UrlArgs<'_>) -> String {
        authorize_url(self, a.seller_id.unwrap_or(""), a.nonce)
    }
    fn check_redirect(
        &self,
        params: &BTreeMap<String, String>,
        seller_id: Option<&str>,
        now: i64,
    ) -> Result<super::Checked, &'static str> {
        check_callback(self, params, seller_id.unwrap_or(""), now)
            .map(|()| super::Checked::default())
    }
    fn build(&self, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
        build(self, purpose, ctx)
    }
    fn read(&self, purpose: Purpose, status: u16, body: &str, ctx: &Ctx<'_>) -> Outcome {
        read_token(purpose, status, body, ctx).map_or_else(|o| o, Outcome::Tokens)
    }
    fn check_seller(&self, seller_id: &str) -> Result<(), &'static str> {
        if crate::validate::is_host_label(seller_id) {
            Ok(())
        } else {
            Err(
                "must be a Shopify shop handle: letters, digits and '-', 1-63 characters, not starting or ending with '-'",
            )
        }
    }
    fn normalize_seller<'a>(&self, seller_id: &'a str) -> std::borrow::Cow<'a, str> {
        normalize_handle(seller_id)
    }
    fn secrets(&self) -> Vec<&str> {
        vec![self.app_secret.expose()]
    }
}

/// Shopify settings.
#[derive(Debug, Clone)]
pub struct ShopifyApp {
    /// Client id.
    pub app_key: String,
    /// Client secret (signs callbacks; sent in token bodies).
    pub app_secret: Secret,
    /// Registered callback.
    pub redirect_uri: String,
    /// Scopes (comma-separated, as Shopify takes them).
    pub scope: String,
    /// Whether token exchanges ask for expiring offline tokens.
    pub expiring: bool,
    /// Shop origin template with `{seller_id}`.
    pub shop_url: String,
}

/// The fields its `apps` entry takes.
pub(crate) fn entry_fields() -> &'static [&'static str] {
    crate::typed::fields_of::<Entry>()
}

/// The `apps` entry of `apps.shopify`: only these fields apply.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    app_key: Option<String>,
    #[serde(default)]
    app_secret: Option<Secret>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    expiring: Option<bool>,
    #[serde(default)]
    shop_url: Option<String>,
    #[serde(default)]
    rate_limit_per_s: Option<u32>,
}

/// Reads `apps.shopify`.
pub(crate) fn profile(name: &str, app: &AppEntry) -> Result<Profile, ConfigError> {
    let at = |f: &str| format!("apps.{name}.{f}");
    let app: Entry = app_entry(app, name)?;
    let shop_url = origin_template(
        app.shop_url.as_deref(),
        "https://{seller_id}.myshopify.com",
        &at("shop_url"),
    )?;
    Ok(Profile::new(
        name,
        Kind::new(ShopifyApp {
            app_key: required_text(&app.app_key, &at("app_key"))?,
            app_secret: required_secret(&app.app_secret, &at("app_secret"))?,
            redirect_uri: url_field(app.redirect_uri.as_deref(), &at("redirect_uri"))?,
            scope: app.scope.clone().unwrap_or_default(),
            expiring: app.expiring.unwrap_or(true),
            shop_url,
        }),
        rate(app.rate_limit_per_s, &at("rate_limit_per_s"))?,
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn app(secret: &str) -> ShopifyApp {
        ShopifyApp {
            app_key: "shpka_123".into(),
            app_secret: Secret::new(secret),
            redirect_uri: "https://host.example/cb/shopify".into(),
            scope: "read_orders,write_products".into(),
            expiring: true,
            shop_url: "https://{seller_id}.myshopify.com".into(),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// shopify-app-js `hmac-validator.test.ts`'s query ("correctly
    /// validates query objects and timestamp") at timestamp 1700000000;
    /// the hmac computed independently with Python's `hmac` module:
    /// `hmac.new(b'my super secret key', b'code=some%20code%20goes%20here&shop=the%20shop%20URL&state=some%20nonce%20passed%20from%20auth&timestamp=1700000000', hashlib.sha256).hexdigest()`.
    #[test]
    fn library_test_query_vector() {
        let p = map(&[
            ("code", "some code goes here"),
            ("shop", "the shop URL"),
            ("state", "some nonce passed from auth"),
            ("timestamp", "1700000000"),
        ]);
        assert_eq!(
            callback_message(&p),
            "code=some%20code%20goes%20here&shop=the%20shop%20URL&state=some%20nonce%20passed%20from%20auth&timestamp=1700000000"
        );
        assert_eq!(
            callback_hmac("my super secret key", &p),
            "10207991f5c2c65c114b70a3c3544ce1d00a236ea4ab034793de0d6407be9165"
        );
        // Its "spaces in param values are percent-encoded" query.
        let p = map(&[
            ("custom", "hello world"),
            ("shop", "myshop.myshopify.com"),
            ("timestamp", "1700000000"),
            ("hmac", "ignored"),
            ("signature", "ignored too"),
        ]);
        assert_eq!(
            callback_hmac("my super secret key", &p),
            "0a3f0b1091a26eab3ab75d96d4cdbba10a3f06e015b95cc989656ddf6c1ce1d9"
        );
    }

    /// Escaping: `+`, `/`, non-ASCII and `~` encoded, `*` kept (computed
    /// with Python: see the README's vectors).
    #[test]
    fn escaping_vector() {
        let p = map(&[
            ("code", "0907a61c0c8d55e99db179b68161bc00"),
            ("host", "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvbXlzaG9w"),
            ("shop", "myshop.myshopify.com"),
            ("state", "1_a~b"),
            ("timestamp", "1700000000"),
            ("extra", "a+b c*d/é"),
        ]);
        assert_eq!(
            callback_message(&p),
            "code=0907a61c0c8d55e99db179b68161bc00&extra=a%2Bb%20c*d%2F%C3%A9&host=YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvbXlzaG9w&shop=myshop.myshopify.com&state=1_a%7Eb&timestamp=1700000000"
        );
        assert_eq!(
            callback_hmac("hush", &p),
            "3849a9a465f13f21739af857ae36c710cf8657cd16cee5ab1a49f10fb1f33ad4"
        );
    }

    #[test]
    fn names_sort_as_locale_compare_does() {
        let mut names = vec![
            "b", "B", "a_b", "a1", "A", "a", "ab", "a-b", "~x", "10", "9",
        ];
        names.sort_by(|a, b| locale_cmp(a, b));
        assert_eq!(
            names,
            vec![
                "~x", "10", "9", "a", "A", "a_b", "a-b", "a1", "ab", "b", "B"
            ]
        );
        // Byte order for Shopify's own names.
        let mut own = vec!["timestamp", "state", "shop", "host", "code"];
        own.sort_by(|a, b| locale_cmp(a, b));
        assert_eq!(own, vec!["code", "host", "shop", "state", "timestamp"]);
    }

    fn signed(secret: &str, pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut p = map(pairs);
        let h = callback_hmac(secret, &p);
        p.insert("hmac".into(), h);
        p
    }

    #[test]
    fn callbacks_are_checked() {
        let a = app("hush");
        let ok = signed(
            "hush",
            &[
                ("code", "c"),
                ("host", "aG9zdA=="),
                ("shop", "MyShop.myshopify.com"),
                ("state", "1_x"),
                ("timestamp", "1700000000"),
            ],
        );
        assert_eq!(check_callback(&a, &ok, "myshop", NOW), Ok(()));
        // 90 s either way is still fine, 91 s is not.
        assert_eq!(check_callback(&a, &ok, "myshop", NOW + 90_999), Ok(()));
        assert!(check_callback(&a, &ok, "myshop", NOW + 91_000).is_err());
        assert!(check_callback(&a, &ok, "myshop", NOW - 91_000).is_err());
        // Another shop, a changed parameter, an upper-case hmac, no hmac.
        assert!(check_callback(&a, &ok, "other", NOW).is_err());
        let mut bad = ok.clone();
        bad.insert("code".into(), "c2".into());
        assert!(check_callback(&a, &bad, "myshop", NOW).is_err());
        let mut upper = ok.clone();
        let h = upper["hmac"].to_ascii_uppercase();
        upper.insert("hmac".into(), h);
        assert!(check_callback(&a, &upper, "myshop", NOW).is_err());
        let mut none = ok.clone();
        none.remove("hmac");
        assert_eq!(
            check_callback(&a, &none, "myshop", NOW),
            Err("the callback has no hmac")
        );
        // Timestamps that are not integers.
        for t in [
            "",
            "1.7e9",
            "abc",
            "1700000000.5",
            "99999999999999999999999",
        ] {
            let p = signed(
                "hush",
                &[
                    ("code", "c"),
                    ("shop", "myshop.myshopify.com"),
                    ("timestamp", t),
                ],
            );
            assert!(check_callback(&a, &p, "myshop", NOW).is_err(), "{t}");
        }
        let p = signed("hush", &[("code", "c"), ("shop", "myshop.myshopify.com")]);
        assert!(check_callback(&a, &p, "myshop", NOW).is_err());
        // Signed under another secret.
        let p = signed(
            "other",
            &[
                ("code", "c"),
                ("shop", "myshop.myshopify.com"),
                ("timestamp", "1700000000"),
            ],
        );
        assert_eq!(
            check_callback(&a, &p, "myshop", NOW),
            Err("the callback's hmac does not verify")
        );
    }

    #[test]
    fn authorize_url_has_the_library_shape() {
        assert_eq!(
            authorize_url(&app("s"), "MyShop", "1_n"),
            "https://myshop.myshopify.com/admin/oauth/authorize?client_id=shpka_123&scope=read_orders%2Cwrite_products&redirect_uri=https%3A%2F%2Fhost.example%2Fcb%2Fshopify&state=1_n&grant_options%5B%5D="
        );
    }

    fn ctx<'a>(code: Option<&'a str>, tokens: Option<&'a Tokens>) -> Ctx<'a> {
        Ctx {
            now: NOW,
            seller_id: Some("MyShop"),
            code,
            pkce_verifier: None,
            tokens,
            key: None,
            learned: &[],
        }
    }

    #[test]
    fn token_requests_are_json_posts() {
        let r = build(&app("s\"x"), Purpose::TokenCreate, &ctx(Some("c1"), None));
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.url,
            "https://myshop.myshopify.com/admin/oauth/access_token"
        );
        assert_eq!(
            r.body.as_deref(),
            Some(r#"{"client_id":"shpka_123","client_secret":"s\"x","code":"c1","expiring":"1"}"#)
        );
        assert!(
            r.headers
                .contains(&("Content-Type".to_owned(), "application/json".to_owned()))
        );
        let mut na = app("s");
        na.expiring = false;
        let r = build(&na, Purpose::TokenCreate, &ctx(Some("c1"), None));
        assert!(r.body.unwrap().ends_with(r#""expiring":"0"}"#));
        let t = Tokens {
            access: Secret::new("A"),
            refresh: Some(Secret::new("R1")),
            access_expires_at: Some(NOW + 1),
            refresh_expires_at: Some(NOW + 2),
            refreshable: true,
            obtained_at: NOW,
            sellers: None,
        };
        let r = build(&app("s"), Purpose::TokenRefresh, &ctx(None, Some(&t)));
        assert_eq!(
            r.body.as_deref(),
            Some(
                r#"{"client_id":"shpka_123","client_secret":"s","refresh_token":"R1","grant_type":"refresh_token"}"#
            )
        );
    }

    #[test]
    fn reads_expiring_and_non_expiring_answers() {
        let c = ctx(None, None);
        let t = read_token(
            Purpose::TokenCreate,
            200,
            &json!({"access_token": "shpat_1", "scope": "read_orders", "expires_in": 3600,
                    "refresh_token": "shprt_1", "refresh_token_expires_in": 7_776_000})
            .to_string(),
            &c,
        )
        .unwrap();
        assert_eq!(t.access_expires_at, Some(NOW + 3_600_000));
        assert_eq!(t.refresh_expires_at, Some(NOW + 7_776_000_000));
        assert!(t.refreshable);
        assert_eq!(t.sellers, Some(vec!["myshop".to_owned()]));
        // A refresh answer: a fresh window from its own time.
        let later = Ctx {
            now: NOW + 5_000,
            ..ctx(None, Some(&t))
        };
        let r = read_token(
            Purpose::TokenRefresh,
            200,
            &json!({"access_token": "shpat_2", "expires_in": 3600,
                    "refresh_token": "shprt_2", "refresh_token_expires_in": 7_776_000})
            .to_string(),
            &later,
        )
        .unwrap();
        assert_eq!(r.refresh.as_ref().map(Secret::expose), Some("shprt_2"));
        assert_eq!(r.refresh_expires_at, Some(NOW + 5_000 + 7_776_000_000));
        // Non-expiring: no expiry, no refresh.
        let n = read_token(
            Purpose::TokenCreate,
            200,
            r#"{"access_token":"shpat_n","scope":"read_orders"}"#,
            &c,
        )
        .unwrap();
        assert_eq!(n.access_expires_at, None);
        assert!(!n.refreshable);
        // Without a new refresh token a refresh answer ends the refreshing.
        let e = read_token(
            Purpose::TokenRefresh,
            200,
            r#"{"access_token":"shpat_3","expires_in":60}"#,
            &later,
        )
        .unwrap();
        assert!(!e.refreshable && e.refresh.is_none());
        // Malformed lifetimes: retried.
        for bad in [
            r#"{"access_token":"a","expires_in":0}"#,
            r#"{"access_token":"a","expires_in":"soon"}"#,
            r#"{"access_token":"a","expires_in":60,"refresh_token":"r"}"#,
            r#"{"access_token":"a","expires_in":60,"refresh_token":"r","refresh_token_expires_in":-1}"#,
        ] {
            assert!(
                matches!(
                    read_token(Purpose::TokenCreate, 200, bad, &c),
                    Err(Outcome::Retry(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn classifies_every_error_class() {
        let c = ctx(None, None);
        let err = |p, status: u16, body: &str| read_token(p, status, body, &c).unwrap_err();
        let create = Purpose::TokenCreate;
        let refresh = Purpose::TokenRefresh;
        let grant = r#"{"error":"invalid_grant","error_description":"The refresh token is invalid or expired"}"#;
        assert!(matches!(
            err(create, 400, grant),
            Outcome::Rejected(Reason::PlatformRejected, _)
        ));
        assert!(matches!(
            err(refresh, 400, grant),
            Outcome::Rejected(Reason::RefreshRejected, _)
        ));
        for p in [create, refresh] {
            assert!(matches!(
                err(p, 401, r#"{"error":"invalid_client"}"#),
                Outcome::HostBroken(_)
            ));
            assert!(matches!(
                err(p, 400, r#"{"error":"invalid_request"}"#),
                Outcome::HostBroken(_)
            ));
            assert!(matches!(
                err(p, 403, r#"{"errors":"[API] Invalid API key"}"#),
                Outcome::HostBroken(_)
            ));
            assert!(matches!(err(p, 200, "{}"), Outcome::HostBroken(_)));
            assert!(matches!(err(p, 429, ""), Outcome::Retry(_)));
            assert!(matches!(err(p, 500, grant), Outcome::Retry(_)));
            assert!(matches!(err(p, 503, ""), Outcome::Retry(_)));
            assert!(matches!(err(p, 200, "<html>"), Outcome::Retry(_)));
        }
    }
}
