//! Shopee Open Platform v2 (spec §5.4): the signed `auth_partner` link with
//! the state nonce carried inside `redirect`, the callback's `shop_id`
//! (the seller, claimed when the seller comes back), the signed
//! `/api/v2/auth/token/get` and `/api/v2/auth/access_token/get` calls, the
//! single-use rotating refresh token and the classification of Shopee's
//! `error` values.
//!
//! Sources followed (read with the `search` tool):
//! - `congminh1254/shopee-sdk`, `src/utils/signature.ts` (the signature:
//!   the parts joined without separator, HMAC-SHA256 keyed by the partner
//!   key's UTF-8 bytes, lower-case hex) and its test
//!   `src/__tests__/utils/signature.test.ts` (the vector in the tests below);
//! - the same SDK's `src/fetch.ts` (a public call is signed over
//!   `partner_id + path + timestamp`, timestamp in Unix seconds; the query
//!   carries `partner_id`, `timestamp`, `sign`; JSON body, `Content-Type:
//!   application/json`; any non-empty `error` in a JSON answer is an error,
//!   whatever the HTTP status);
//! - `src/sdk.ts` (`getAuthorizationUrl`: `/api/v2/shop/auth_partner` with
//!   `partner_id`, `timestamp`, `redirect`, `sign`, signed with that path);
//! - `src/managers/auth.manager.ts` (`getAccessToken`: `/auth/token/get` with
//!   `{code, partner_id, shop_id}`; `getRefreshToken`:
//!   `/auth/access_token/get` with `{partner_id, refresh_token, shop_id}`,
//!   numbers as JSON numbers; answers read through `expire_in`).
//!
//! Where those differ from the spec (the README lists it): the JSON bodies
//! keep the SDK's field order; the `redirect` value is percent-encoded (the
//! SDK appends it raw, which breaks once it carries its own query, as ours
//! does with `state`). The classification of `error` values is the spec's:
//! the SDK only throws on a non-empty `error`.
//!
//! What does not live here: refresh timing, retries, claims (the engine's).

use super::{
    Checked, Ctx, Flow, Malformed, Outcome, Outgoing, Platform, Tokens, UrlArgs, access_lifetime_s,
    describe, expiry_after, json_answer,
};
use crate::config::{AppEntry, Profile, app_entry, rate, required_secret, url_field, url_or};
use crate::encoding::{append_query, pct};
use crate::error::ConfigError;
use crate::keys::hmac_hex;
use crate::message::{Purpose, Reason};
use crate::platform::Kind;
use crate::secret::Secret;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Path of the authorize link (also what it is signed with).
pub const AUTH_PATH: &str = "/api/v2/shop/auth_partner";
/// Path of token create.
pub const CREATE_PATH: &str = "/api/v2/auth/token/get";
/// Path of token refresh.
pub const REFRESH_PATH: &str = "/api/v2/auth/access_token/get";
/// Default API host.
pub const API_URL: &str = "https://partner.shopeemobile.com";
/// Default validity of a refresh token from its issue: 30 days.
pub const REFRESH_TTL_S: i64 = 2_592_000;
/// Validity of an authorization code (seconds).
pub const CODE_TTL_S: u64 = 600;

/// Shopee settings.
#[derive(Debug, Clone)]
pub struct ShopeeApp {
    /// The partner id (`app_key`), digits.
    pub partner_id: String,
    /// The partner key (`app_secret`).
    pub partner_key: Secret,
    /// Registered callback; the link's `redirect` is this with `state` added.
    pub redirect_uri: String,
    /// The authorize link's endpoint (default `{api_url}/api/v2/shop/auth_partner`).
    pub authorize_url: String,
    /// The path the authorize link is signed with (that of `authorize_url`).
    pub authorize_path: String,
    /// API base, without a trailing `/`.
    pub api_url: String,
    /// Validity of each refresh token from its issue (seconds).
    pub refresh_ttl_s: i64,
}

/// The signature of a public call: lower-case hex HMAC-SHA256, keyed by the
/// partner key's UTF-8 bytes, over `partner_id + path + timestamp` (seconds).
pub fn sign(partner_key: &str, partner_id: &str, path: &str, timestamp_s: &str) -> String {
    hmac_hex(
        partner_key.as_bytes(),
        &[
            partner_id.as_bytes(),
            path.as_bytes(),
            timestamp_s.as_bytes(),
        ],
    )
}

/// Unix seconds of an engine time (ms; the engine's times are never negative).
fn seconds(now_ms: i64) -> String {
    now_ms.div_euclid(1000).to_string()
}

/// The `redirect` the link carries: the callback with `state={nonce}` added.
pub fn redirect_with_state(app: &ShopeeApp, nonce: &str) -> String {
    append_query(&app.redirect_uri, [("state", nonce)])
}

/// `{authorize}?partner_id=…&timestamp=…&sign=…&redirect=…`, signed at `now` (ms).
pub fn authorize_url(app: &ShopeeApp, nonce: &str, now: i64) -> String {
    let ts = seconds(now);
    let signature = sign(
        app.partner_key.expose(),
        &app.partner_id,
        &app.authorize_path,
        &ts,
    );
    let redirect = redirect_with_state(app, nonce);
    append_query(
        &app.authorize_url,
        [
            ("partner_id", app.partner_id.as_str()),
            ("timestamp", ts.as_str()),
            ("sign", signature.as_str()),
            ("redirect", redirect.as_str()),
        ],
    )
}

/// Whether `s` is a Shopee numeric id (a shop or partner id): 1–20 ASCII
/// digits that fit an unsigned 64-bit number.
pub fn is_numeric_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u64>().is_ok()
}

/// Checks a callback: with a code it must name the shop (`shop_id`, digits);
/// a main-account login (`main_account_id` without `shop_id`) is out of scope.
pub fn check_redirect(params: &BTreeMap<String, String>) -> Result<Checked, &'static str> {
    let has_code = params.get("code").is_some_and(|c| !c.is_empty());
    match params.get("shop_id").filter(|s| !s.is_empty()) {
        Some(shop) if is_numeric_id(shop) => Ok(Checked {
            seller: has_code.then(|| shop.clone()),
        }),
        Some(_) => Err("the redirect's shop_id is not a Shopee shop id (digits)"),
        None if !has_code => Ok(Checked::default()),
        None if params.contains_key("main_account_id") => {
            Err("main-account logins (main_account_id) are not supported; authorize a shop")
        }
        None => Err("the redirect names no shop_id"),
    }
}

/// Token create (`{"code", "partner_id", "shop_id"}`) or refresh
/// (`{"partner_id", "refresh_token", "shop_id"}`), signed at `ctx.now`.
pub fn build(app: &ShopeeApp, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
    let refresh = purpose == Purpose::TokenRefresh;
    let path = if refresh { REFRESH_PATH } else { CREATE_PATH };
    let ts = seconds(ctx.now);
    let signature = sign(app.partner_key.expose(), &app.partner_id, path, &ts);
    // The shop the callback named (the engine claimed it as the learned
    // seller); digits by `check_redirect`, so it is written as a number.
    let shop = ctx
        .learned
        .iter()
        .find(|s| is_numeric_id(s))
        .map_or("0", String::as_str);
    let text = |s: &str| Value::String(s.to_owned()).to_string();
    let body = if refresh {
        let rt = ctx
            .tokens
            .and_then(|t| t.refresh.as_ref())
            .map_or("", Secret::expose);
        format!(
            r#"{{"partner_id":{},"refresh_token":{},"shop_id":{}}}"#,
            app.partner_id,
            text(rt),
            shop
        )
    } else {
        format!(
            r#"{{"code":{},"partner_id":{},"shop_id":{}}}"#,
            text(ctx.code.unwrap_or("")),
            app.partner_id,
            shop
        )
    };
    Outgoing {
        method: "POST",
        url: format!(
            "{}{}?partner_id={}&timestamp={}&sign={}",
            app.api_url,
            path,
            pct(&app.partner_id),
            ts,
            signature
        ),
        headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
        body: Some(body),
    }
}

/// Whether a message says the refresh token is invalid or expired.
fn names_refresh_token(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("refresh_token") || m.contains("refresh token"))
        && (m.contains("invalid") || m.contains("expire") || m.contains("not exist"))
}

/// Classifies a Shopee `error` (spec §5.4).
pub fn classify(purpose: Purpose, error: &str, message: &str, text: String) -> Outcome {
    let refresh = purpose == Purpose::TokenRefresh;
    match error {
        // Throttling and platform trouble: try again.
        "error_busy"
        | "error_server"
        | "error_inner"
        | "error_network"
        | "error_timeout"
        | "error_system"
        | "error_too_many_request"
        | "error_rate_limit" => Outcome::Retry(text),
        // The refresh token is dead: re-authorization needed.
        "invalid_refresh_token" | "refresh_token_expired" if refresh => {
            Outcome::Rejected(Reason::RefreshRejected, text)
        }
        _ if refresh && names_refresh_token(message) => {
            Outcome::Rejected(Reason::RefreshRejected, text)
        }
        // The code is not (or no longer) good.
        "invalid_code" if !refresh => Outcome::Rejected(Reason::PlatformRejected, text),
        // Our partner id, key, signature or parameters (Shopee answers
        // `error_auth` for a bad signature too): the host's setup.
        "error_auth" | "error_sign" | "error_param" | "error_partner" | "error_permission" => {
            Outcome::HostBroken(text)
        }
        // Anything else: the exchange was refused; a refresh is retried
        // (noted as system_error) until the access token expires.
        _ if refresh => Outcome::HostBroken(text),
        _ => Outcome::Rejected(Reason::PlatformRejected, text),
    }
}

/// Reads a token answer `{access_token, refresh_token, expire_in, error, message, request_id}`.
pub fn read_token(
    app: &ShopeeApp,
    purpose: Purpose,
    status: u16,
    body: &str,
    ctx: &Ctx<'_>,
) -> Result<Tokens, Outcome> {
    let v = json_answer(status, body, "Shopee")?;
    let error = v.get("error").and_then(Value::as_str).unwrap_or("");
    if !error.is_empty() {
        let message = v.get("message").and_then(Value::as_str).unwrap_or("");
        let text = describe(status, &format!("Shopee error {error}: {message}"));
        return Err(classify(purpose, error, message, text));
    }
    if !(200..300).contains(&status) {
        return Err(Outcome::HostBroken(describe(
            status,
            "Shopee refused without an error",
        )));
    }
    let nonempty = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let access = nonempty("access_token").ok_or_else(|| {
        Outcome::HostBroken(describe(status, "Shopee answer has no access_token"))
    })?;
    let malformed = |field: &str, e: Malformed| {
        Outcome::Retry(describe(status, &format!("Shopee answer: {field} {e}")))
    };
    let expire_in = access_lifetime_s(v.get("expire_in"))
        .and_then(|n| n.ok_or(Malformed::Missing))
        .map_err(|e| malformed("expire_in", e))?;
    // Single use: every answer brings the next refresh token; one without
    // it cannot be refreshed again (the one sent is spent), so it is
    // malformed and tried again.
    let refresh =
        nonempty("refresh_token").ok_or_else(|| malformed("refresh_token", Malformed::Missing))?;
    let now = ctx.now;
    Ok(Tokens {
        access: Secret::new(access),
        refresh: Some(Secret::new(refresh)),
        access_expires_at: Some(expiry_after(now, expire_in)),
        // Each refresh token lives refresh_ttl_s from its issue (not IOP's min).
        refresh_expires_at: Some(expiry_after(now, app.refresh_ttl_s)),
        refreshable: true,
        obtained_at: now,
        // The seller is the callback's shop_id, already claimed.
        sellers: None,
    })
}

impl Platform for ShopeeApp {
    fn flow(&self) -> Flow {
        Flow::Redirect
    }
    fn authorize_url(&self, a: &UrlArgs<'_>) -> String {
        authorize_url(self, a.nonce, a.now)
    }
    fn fresh_url_on_repeat(&self) -> bool {
        // The link is good for 5 minutes after its timestamp.
        true
    }
    fn check_redirect(
        &self,
        params: &BTreeMap<String, String>,
        _seller_id: Option<&str>,
        _now: i64,
    ) -> Result<Checked, &'static str> {
        check_redirect(params)
    }
    fn retries_host_errors_on_create(&self) -> bool {
        true
    }
    fn build(&self, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
        build(self, purpose, ctx)
    }
    fn read(&self, purpose: Purpose, status: u16, body: &str, ctx: &Ctx<'_>) -> Outcome {
        read_token(self, purpose, status, body, ctx).map_or_else(|o| o, Outcome::Tokens)
    }
    fn check_seller(&self, seller_id: &str) -> Result<(), &'static str> {
        if is_numeric_id(seller_id) {
            Ok(())
        } else {
            Err("must be a Shopee shop_id (digits)")
        }
    }
    fn secrets(&self) -> Vec<&str> {
        vec![self.partner_key.expose()]
    }
}

/// The fields its `apps` entry takes.
pub(crate) fn entry_fields() -> &'static [&'static str] {
    crate::typed::fields_of::<Entry>()
}

/// The `apps` entry of `apps.shopee`: only these fields apply.
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
    api_url: Option<String>,
    #[serde(default)]
    authorize_url: Option<String>,
    #[serde(default)]
    refresh_ttl_s: Option<u32>,
    #[serde(default)]
    rate_limit_per_s: Option<u32>,
}

/// Reads `apps.shopee`.
pub(crate) fn profile(name: &str, app: &AppEntry) -> Result<Profile, ConfigError> {
    let at = |f: &str| format!("apps.{name}.{f}");
    let app: Entry = app_entry(app, name)?;
    let partner_id = match app.app_key.as_deref() {
        None | Some("") => return Err(ConfigError::new(at("app_key"), "is required (non-empty)")),
        Some(k) if !is_numeric_id(k) => {
            return Err(ConfigError::new(
                at("app_key"),
                "must be the Shopee partner id (digits)",
            ));
        }
        Some(k) => k.to_owned(),
    };
    let api_url = url_or(app.api_url.as_deref(), API_URL, &at("api_url"))?
        .trim_end_matches('/')
        .to_owned();
    let authorize_url = url_or(
        app.authorize_url.as_deref(),
        &format!("{api_url}{AUTH_PATH}"),
        &at("authorize_url"),
    )?;
    let authorize_path = crate::config::check_url(&authorize_url)
        .map(|u| u.path().to_owned())
        .map_err(|rule| ConfigError::new(at("authorize_url"), rule))?;
    if authorize_url.contains('?') || authorize_url.contains('#') {
        return Err(ConfigError::new(
            at("authorize_url"),
            "must not carry a query or fragment (the link is signed over its path)",
        ));
    }
    let refresh_ttl_s = match app.refresh_ttl_s {
        Some(0) => return Err(ConfigError::new(at("refresh_ttl_s"), "must be at least 1")),
        Some(n) => i64::from(n),
        None => REFRESH_TTL_S,
    };
    let mut p = Profile::new(
        name,
        Kind::new(ShopeeApp {
            partner_id,
            partner_key: required_secret(&app.app_secret, &at("app_secret"))?,
            redirect_uri: url_field(app.redirect_uri.as_deref(), &at("redirect_uri"))?,
            authorize_url,
            authorize_path,
            api_url,
            refresh_ttl_s,
        }),
        rate(app.rate_limit_per_s, &at("rate_limit_per_s"))?,
        false,
    );
    p.code_ttl_s = CODE_TTL_S;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::parse_query;

    const KEY: &str = "shpk-demo-partner-key";
    const T: i64 = 1_700_000_000_123;

    fn app() -> ShopeeApp {
        ShopeeApp {
            partner_id: "2001887".into(),
            partner_key: Secret::new(KEY),
            redirect_uri: "https://host.example/cb/shopee".into(),
            authorize_url: format!("{API_URL}{AUTH_PATH}"),
            authorize_path: AUTH_PATH.into(),
            api_url: API_URL.into(),
            refresh_ttl_s: REFRESH_TTL_S,
        }
    }

    fn ctx<'a>(
        now: i64,
        code: Option<&'a str>,
        tokens: Option<&'a Tokens>,
        learned: &'a [String],
    ) -> Ctx<'a> {
        Ctx {
            now,
            seller_id: None,
            code,
            pkce_verifier: None,
            tokens,
            key: None,
            learned,
        }
    }

    #[test]
    fn the_sdk_signature_vector() {
        // congminh1254/shopee-sdk src/__tests__/utils/signature.test.ts:
        // the parts joined, HMAC-SHA256 keyed by the partner key.
        assert_eq!(
            hmac_hex(
                b"test_partner_key",
                &[b"/api/v2/auth/token/get123456test_partner_idtest_shop_idtest_main_account_id"]
            ),
            "37c864bd9821ff5f2c2f46b2faca14eb1811a718d1fdc6dcf383cba7c74bf9e9"
        );
    }

    #[test]
    fn public_call_vectors_computed_with_python_hmac() {
        // python3: hmac.new(b"shpk-demo-partner-key",
        //   b"2001887" + path + b"1700000000", hashlib.sha256).hexdigest()
        assert_eq!(
            sign(KEY, "2001887", AUTH_PATH, "1700000000"),
            "2422f4140e1e22a08a21822d7d58dd1c01f314c73846349b3018636f2bd73bcf"
        );
        assert_eq!(
            sign(KEY, "2001887", CREATE_PATH, "1700000000"),
            "a027e56ecde05d7d9bb9ac757e70215526c3d26d65073f4b73d0696405cbb3da"
        );
        assert_eq!(
            sign(KEY, "2001887", REFRESH_PATH, "1700000000"),
            "7d0045659369de47969ce873f1581169f8971a6f9f683b88843b01ac96396cce"
        );
    }

    #[test]
    fn authorize_url_is_signed_in_seconds_and_carries_state_inside_redirect() {
        let url = authorize_url(&app(), "n0nce_x", T);
        assert_eq!(
            url,
            "https://partner.shopeemobile.com/api/v2/shop/auth_partner?partner_id=2001887&timestamp=1700000000&sign=2422f4140e1e22a08a21822d7d58dd1c01f314c73846349b3018636f2bd73bcf&redirect=https%3A%2F%2Fhost.example%2Fcb%2Fshopee%3Fstate%3Dn0nce_x"
        );
        let q = parse_query(url.split_once('?').unwrap().1);
        assert_eq!(
            q["redirect"],
            "https://host.example/cb/shopee?state=n0nce_x"
        );
        // A minute later: same nonce, a new timestamp and signature.
        let later = authorize_url(&app(), "n0nce_x", T + 60_000);
        assert!(later.contains("timestamp=1700000060&"), "{later}");
        assert_ne!(later, url);
        // A callback that has a query keeps it.
        let mut a = app();
        a.redirect_uri = "https://host.example/cb?p=shopee".into();
        assert_eq!(
            redirect_with_state(&a, "n"),
            "https://host.example/cb?p=shopee&state=n"
        );
    }

    #[test]
    fn callbacks_name_a_numeric_shop() {
        let p = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            check_redirect(&p(&[("code", "c"), ("shop_id", "123"), ("state", "n")])),
            Ok(Checked {
                seller: Some("123".into())
            })
        );
        assert!(check_redirect(&p(&[("code", "c"), ("state", "n")])).is_err());
        assert!(check_redirect(&p(&[("code", "c"), ("shop_id", "12a")])).is_err());
        assert!(check_redirect(&p(&[("code", "c"), ("shop_id", "-1")])).is_err());
        assert!(check_redirect(&p(&[("code", "c"), ("shop_id", "99999999999999999999")])).is_err());
        assert!(check_redirect(&p(&[("code", "c"), ("main_account_id", "9")])).is_err());
        // An error redirect: nothing to claim.
        assert_eq!(
            check_redirect(&p(&[("error", "access_denied")])),
            Ok(Checked::default())
        );
    }

    #[test]
    fn create_and_refresh_requests() {
        let learned = vec!["123456".to_owned()];
        let r = build(
            &app(),
            Purpose::TokenCreate,
            &ctx(T, Some("c\"o/de"), None, &learned),
        );
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.url,
            "https://partner.shopeemobile.com/api/v2/auth/token/get?partner_id=2001887&timestamp=1700000000&sign=a027e56ecde05d7d9bb9ac757e70215526c3d26d65073f4b73d0696405cbb3da"
        );
        assert_eq!(
            r.body.as_deref(),
            Some(r#"{"code":"c\"o/de","partner_id":2001887,"shop_id":123456}"#)
        );
        let t = Tokens {
            access: Secret::new("A"),
            refresh: Some(Secret::new("R1")),
            access_expires_at: Some(T + 1),
            refresh_expires_at: Some(T + 2),
            refreshable: true,
            obtained_at: T,
            sellers: None,
        };
        let r = build(
            &app(),
            Purpose::TokenRefresh,
            &ctx(T, None, Some(&t), &learned),
        );
        assert!(r.url.ends_with(&format!(
            "{REFRESH_PATH}?partner_id=2001887&timestamp=1700000000&sign=7d0045659369de47969ce873f1581169f8971a6f9f683b88843b01ac96396cce"
        )));
        assert_eq!(
            r.body.as_deref(),
            Some(r#"{"partner_id":2001887,"refresh_token":"R1","shop_id":123456}"#)
        );
    }

    #[test]
    fn refresh_rotates_and_restarts_the_window() {
        let learned = vec!["1".to_owned()];
        let body = r#"{"access_token":"A1","refresh_token":"R1","expire_in":14400,"request_id":"x","error":"","message":""}"#;
        let a = app();
        let t = read_token(
            &a,
            Purpose::TokenCreate,
            200,
            body,
            &ctx(T, None, None, &learned),
        )
        .unwrap();
        assert_eq!(t.access_expires_at, Some(T + 14_400_000));
        assert_eq!(t.refresh_expires_at, Some(T + 2_592_000_000));
        assert!(t.refreshable && t.sellers.is_none());
        let later = T + 10_000_000;
        let body = r#"{"access_token":"A2","refresh_token":"R2","expire_in":"14400"}"#;
        let r = read_token(
            &a,
            Purpose::TokenRefresh,
            200,
            body,
            &ctx(later, None, Some(&t), &learned),
        )
        .unwrap();
        assert_eq!(r.refresh.as_ref().map(Secret::expose), Some("R2"));
        // A fresh 30 days from this refresh (not min(old, new)).
        assert_eq!(r.refresh_expires_at, Some(later + 2_592_000_000));
        // No refresh token in a success answer: malformed, retried.
        assert!(matches!(
            read_token(
                &a,
                Purpose::TokenRefresh,
                200,
                r#"{"access_token":"A2","expire_in":14400}"#,
                &ctx(later, None, Some(&t), &learned)
            ),
            Err(Outcome::Retry(_))
        ));
        // expire_in missing or zero: malformed, retried.
        for b in [
            r#"{"access_token":"A","refresh_token":"R"}"#,
            r#"{"access_token":"A","refresh_token":"R","expire_in":0}"#,
        ] {
            assert!(matches!(
                read_token(
                    &a,
                    Purpose::TokenCreate,
                    200,
                    b,
                    &ctx(T, None, None, &learned)
                ),
                Err(Outcome::Retry(_))
            ));
        }
    }

    #[test]
    fn classifies_every_error_class() {
        let a = app();
        let learned: Vec<String> = vec![];
        let c = ctx(T, None, None, &learned);
        let err = |p: Purpose, status: u16, error: &str, message: &str| {
            read_token(
                &a,
                p,
                status,
                &format!(r#"{{"error":"{error}","message":"{message}","request_id":"r"}}"#),
                &c,
            )
            .unwrap_err()
        };
        use Purpose::{TokenCreate as C, TokenRefresh as R};
        // Refresh token dead.
        for (e, m) in [
            ("invalid_refresh_token", ""),
            ("refresh_token_expired", ""),
            ("error_param", "Invalid refresh_token."),
            ("error_auth", "refresh token expired"),
        ] {
            assert!(
                matches!(
                    err(R, 200, e, m),
                    Outcome::Rejected(Reason::RefreshRejected, _)
                ),
                "{e} {m}"
            );
        }
        // The code.
        assert!(matches!(
            err(C, 200, "invalid_code", "Invalid code"),
            Outcome::Rejected(Reason::PlatformRejected, _)
        ));
        assert!(matches!(
            err(C, 400, "invalid_code", ""),
            Outcome::Rejected(Reason::PlatformRejected, _)
        ));
        // The host's setup: system_error.
        for e in ["error_auth", "error_sign", "error_param", "error_partner"] {
            assert!(matches!(err(C, 200, e, "m"), Outcome::HostBroken(_)), "{e}");
            assert!(matches!(err(R, 403, e, "m"), Outcome::HostBroken(_)), "{e}");
        }
        // Retry: busy/server codes, 429, 5xx, not JSON.
        for e in ["error_busy", "error_server", "error_inner"] {
            assert!(matches!(err(R, 200, e, ""), Outcome::Retry(_)), "{e}");
        }
        for status in [429, 500, 502, 503] {
            assert!(matches!(
                err(C, status, "error_auth", ""),
                Outcome::Retry(_)
            ));
        }
        assert!(matches!(
            read_token(&a, C, 200, "<html>", &c),
            Err(Outcome::Retry(_))
        ));
        // Unknown: create refused, refresh retried as system_error.
        assert!(matches!(
            err(C, 200, "error_whatever", ""),
            Outcome::Rejected(Reason::PlatformRejected, _)
        ));
        assert!(matches!(
            err(R, 200, "error_whatever", ""),
            Outcome::HostBroken(_)
        ));
        // A 4xx without an error, a 2xx without a token.
        assert!(matches!(
            read_token(&a, C, 403, "{}", &c),
            Err(Outcome::HostBroken(_))
        ));
        assert!(matches!(
            read_token(&a, C, 200, r#"{"error":""}"#, &c),
            Err(Outcome::HostBroken(_))
        ));
    }

    #[test]
    fn the_entry_is_checked_by_field() {
        let entry = |v: serde_json::Value| -> AppEntry { serde_json::from_value(v).unwrap() };
        let ok = serde_json::json!({"app_key": "2001887", "app_secret": KEY, "redirect_uri": "https://h.example/cb"});
        assert!(profile("shopee", &entry(ok.clone())).is_ok());
        let bad = |patch: serde_json::Value| {
            let mut v = ok.clone();
            v.as_object_mut()
                .unwrap()
                .extend(patch.as_object().unwrap().clone());
            profile("shopee", &entry(v)).unwrap_err().to_string()
        };
        let e = bad(serde_json::json!({"app_key": "partner-x"}));
        assert!(
            e.contains("apps.shopee.app_key") && !e.contains("partner-x"),
            "{e}"
        );
        assert!(bad(serde_json::json!({"refresh_ttl_s": 0})).contains("refresh_ttl_s"));
        assert!(bad(serde_json::json!({"api_url": "ftp://x"})).contains("api_url"));
        assert!(bad(serde_json::json!({"scope": "x"})).contains("apps.shopee.scope"));
        let e = bad(serde_json::json!({"authorize_url": "https://x.example/a?b=1"}));
        assert!(e.contains("authorize_url"), "{e}");
        // The China host is an api_url override; the link follows it.
        let cn = serde_json::json!({"app_key": "1", "app_secret": "k", "redirect_uri": "https://h.example/cb", "api_url": "https://openplatform.shopee.cn/"});
        let p = profile("shopee", &entry(cn)).unwrap();
        let url = p.platform().authorize_url(&UrlArgs {
            nonce: "n",
            seller_id: None,
            pkce_challenge: None,
            now: 0,
        });
        assert!(
            url.starts_with(
                "https://openplatform.shopee.cn/api/v2/shop/auth_partner?partner_id=1&timestamp=0&"
            ),
            "{url}"
        );
        assert!(!format!("{p:?}").contains(KEY));
    }
}
