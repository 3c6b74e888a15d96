//! Shopline: the authorize URL on the store's own host, the signed redirect
//! (`customField` nonce, `appkey`, `code`, `handle`, `timestamp`, `sign`),
//! the signed token create and refresh calls and their answers.
//!
//! Signatures are lower-case hex HMAC-SHA256 keyed by the app secret: over
//! `k=v&k=v` (sorted by name, `sign` left out) for the redirect, over
//! `body + timestamp` for API calls.
//!
//! What does not live here: the host-label rule for handles (`validate`).
//!
//! Also here: its settings (`ShoplineApp`) and the reading of `apps.shopline`, and its `Platform` implementation.

use super::{
    Ctx, Malformed, Outcome, Outgoing, Tokens, absolute_expiry, describe, json_answer, json_text,
    retryable_status, whole,
};
use crate::config::CredentialForm;
use crate::config::{
    AppEntry, Profile, app_entry, origin_template, rate, required_secret, required_text, url_field,
};
use crate::encoding::pct;
use crate::error::ConfigError;
use crate::keys::{ct_eq, hmac_hex};
use crate::message::{Purpose, Reason};
use crate::platform::Kind;
use crate::secret::Secret;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Shopline handles are host labels, normalised by the one shared rule.
pub use super::normalize_handle;

/// The shop origin of a handle.
pub fn shop_origin(app: &ShoplineApp, handle: &str) -> String {
    app.shop_url
        .replace("{seller_id}", &normalize_handle(handle))
}

/// `https://{handle}.myshopline.com/admin/oauth-web/#/oauth/authorize?appKey=…&responseType=code&scope=…&redirectUri=…&customField=…`.
pub fn authorize_url(app: &ShoplineApp, handle: &str, nonce: &str) -> String {
    format!(
        "{}/admin/oauth-web/#/oauth/authorize?appKey={}&responseType=code&scope={}&redirectUri={}&customField={}",
        shop_origin(app, handle),
        pct(&app.app_key),
        pct(&app.scope),
        pct(&app.redirect_uri),
        pct(nonce)
    )
}

/// The signature of a redirect's parameters.
pub fn redirect_sign(secret: &str, params: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    for (k, v) in params.iter().filter(|(k, _)| k.as_str() != "sign") {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    hmac_hex(secret.as_bytes(), &[s.as_bytes()])
}

/// Verifies a redirect: signature, app key and handle.
pub fn check_redirect(
    app: &ShoplineApp,
    params: &BTreeMap<String, String>,
    handle: &str,
) -> Result<(), &'static str> {
    let sign = params.get("sign").ok_or("the redirect has no sign")?;
    let expected = redirect_sign(app.app_secret.expose(), params);
    if !ct_eq(expected.as_bytes(), sign.to_ascii_lowercase().as_bytes()) {
        return Err("the redirect's sign does not verify");
    }
    if params.get("appkey").is_some_and(|k| k != &app.app_key) {
        return Err("the redirect is for another appkey");
    }
    match params.get("handle") {
        Some(h) if h.eq_ignore_ascii_case(handle) => Ok(()),
        _ => Err("the redirect's handle is not the store's seller_id"),
    }
}

/// The API signature: `hex(HMAC(app_secret, body + timestamp))`.
pub fn api_sign(secret: &str, body: &str, timestamp: &str) -> String {
    hmac_hex(secret.as_bytes(), &[body.as_bytes(), timestamp.as_bytes()])
}

/// Token create (`{"code": …}`) or refresh (empty body).
pub fn build(app: &ShoplineApp, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
    let origin = shop_origin(app, ctx.seller_id.unwrap_or(""));
    let (url, body) = if purpose == Purpose::TokenRefresh {
        (format!("{origin}/admin/oauth/token/refresh"), String::new())
    } else {
        (
            format!("{origin}/admin/oauth/token/create"),
            serde_json::json!({ "code": ctx.code.unwrap_or("") }).to_string(),
        )
    };
    let ts = ctx.now.to_string();
    let sign = api_sign(app.app_secret.expose(), &body, &ts);
    Outgoing {
        method: "POST",
        url,
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("appkey".to_owned(), app.app_key.clone()),
            ("timestamp".to_owned(), ts),
            ("sign".to_owned(), sign),
        ],
        body: Some(body),
    }
}

/// Parses `expireTime`: RFC 3339 with or without fractions and offset (no
/// offset means UTC), or epoch milliseconds (a number or numeric string).
/// A time after year 9999 (a year of five or more digits, as chrono and
/// JavaScript write them) reads as `i64::MAX`, for the caller to cut to ten
/// years (`platform::absolute_expiry`).
pub fn parse_expire_time(v: &Value) -> Result<i64, Malformed> {
    let s = match v {
        Value::String(s) => s.trim(),
        Value::Null => return Err(Malformed::Missing),
        other => return whole(other),
    };
    if let Some(t) = text_time(s) {
        return Ok(t);
    }
    if let Some(far) = beyond_9999(s) {
        return far;
    }
    whole(v).map_err(|_| Malformed::NotATime)
}

/// The date-time forms Shopline has been seen to send.
fn text_time(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc).timestamp_millis());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc).timestamp_millis());
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// A date-time whose year has more than four digits (beyond what chrono
/// represents, for the longest ones): `None` when the text is not of that
/// shape; else `i64::MAX` when the rest of it is a valid date-time (checked
/// with a stand-in year of the same leap-ness: the Gregorian calendar
/// repeats every 400 years), or [`Malformed::NotATime`].
fn beyond_9999(s: &str) -> Option<Result<i64, Malformed>> {
    let body = s.strip_prefix('+').unwrap_or(s);
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    if body.as_bytes().get(digits) != Some(&b'-') {
        return None;
    }
    let year = body[..digits].trim_start_matches('0');
    if year.len() <= 4 {
        return None;
    }
    let cycle = year
        .bytes()
        .fold(0u32, |r, d| (r * 10 + u32::from(d - b'0')) % 400);
    let stand_in = format!("{}{}", 2000 + cycle, &body[digits..]);
    Some(
        text_time(&stand_in)
            .map(|_| i64::MAX)
            .ok_or(Malformed::NotATime),
    )
}

/// Reads a token answer `{code, message, data: {accessToken, expireTime, scope}}`.
pub fn read_token(
    purpose: Purpose,
    status: u16,
    body: &str,
    ctx: &Ctx<'_>,
) -> Result<Tokens, Outcome> {
    let v = json_answer(status, body, "Shopline")?;
    let code = json_text(v.get("code")).unwrap_or_else(|| status.to_string());
    let data = v.get("data").filter(|d| d.is_object());
    let token = data
        .and_then(|d| d.get("accessToken"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let refresh = purpose == Purpose::TokenRefresh;
    match (code.as_str(), token) {
        ("200" | "0" | "SUCCESS", Some(token)) if (200..300).contains(&status) => {
            let expire = data
                .and_then(|d| d.get("expireTime"))
                .map_or(Err(Malformed::Missing), parse_expire_time)
                .and_then(|t| absolute_expiry(t, ctx.now))
                .map_err(|e| {
                    Outcome::Retry(describe(
                        status,
                        &format!("Shopline answer: expireTime {e}"),
                    ))
                })?;
            Ok(Tokens {
                access: Secret::new(token),
                refresh: None,
                access_expires_at: Some(expire),
                refresh_expires_at: None,
                refreshable: true,
                obtained_at: ctx.now,
                sellers: Some(vec![
                    normalize_handle(ctx.seller_id.unwrap_or("")).into_owned(),
                ]),
            })
        }
        (code, _) => {
            let msg = describe(
                status,
                &format!(
                    "Shopline error {code}: {}",
                    v.get("message").and_then(Value::as_str).unwrap_or("")
                ),
            );
            Err(classify(refresh, status, code, msg))
        }
    }
}

/// Classifies a Shopline error answer.
pub fn classify(refresh: bool, status: u16, code: &str, msg: String) -> Outcome {
    let rejected = if refresh {
        Reason::RefreshRejected
    } else {
        Reason::PlatformRejected
    };
    match code {
        "429" | "500" | "502" | "503" | "504" => Outcome::Retry(msg),
        // Bad sign / appkey / parameters: our request.
        "400" | "412" | "415" => Outcome::HostBroken(msg),
        // Authorization gone (code invalid, app uninstalled, token refused).
        "401" | "403" | "404" | "410" => Outcome::Rejected(rejected, msg),
        _ if retryable_status(status) => Outcome::Retry(msg),
        _ if status == 401 || status == 403 => Outcome::Rejected(rejected, msg),
        _ => Outcome::HostBroken(msg),
    }
}

impl super::Platform for ShoplineApp {
    fn flow(&self) -> super::Flow {
        super::Flow::Redirect
    }
    fn authorize_url(&self, a: &super::UrlArgs<'_>) -> String {
        authorize_url(self, a.seller_id.unwrap_or(""), a.nonce)
    }
    fn nonce_param(&self) -> &'static str {
        "customField"
    }
    fn check_redirect(
        &self,
        params: &BTreeMap<String, String>,
        seller_id: Option<&str>,
        _now: i64,
    ) -> Result<super::Checked, &'static str> {
        check_redirect(self, params, seller_id.unwrap_or("")).map(|()| super::Checked::default())
    }
    fn build(&self, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
        build(self, purpose, ctx)
    }
    fn read(&self, purpose: Purpose, status: u16, body: &str, ctx: &Ctx<'_>) -> Outcome {
        read_token(purpose, status, body, ctx).map_or_else(|o| o, Outcome::Tokens)
    }
    fn key_form(&self) -> Option<CredentialForm> {
        Some(CredentialForm::Token)
    }
    fn check_seller(&self, seller_id: &str) -> Result<(), &'static str> {
        if crate::validate::is_host_label(seller_id) {
            Ok(())
        } else {
            Err(
                "must be a Shopline handle: letters, digits and '-', 1-63 characters, not starting or ending with '-'",
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

/// Shopline settings.
#[derive(Debug, Clone)]
pub struct ShoplineApp {
    /// App key.
    pub app_key: String,
    /// App secret.
    pub app_secret: Secret,
    /// Registered callback.
    pub redirect_uri: String,
    /// Scope.
    pub scope: String,
    /// Shop origin template with `{seller_id}`.
    pub shop_url: String,
}

/// The fields its `apps` entry takes.
pub(crate) fn entry_fields() -> &'static [&'static str] {
    crate::typed::fields_of::<Entry>()
}

/// The `apps` entry of `apps.shopline`: only these fields apply.
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
    shop_url: Option<String>,
    #[serde(default)]
    rate_limit_per_s: Option<u32>,
}

/// Reads `apps.shopline`.
pub(crate) fn profile(name: &str, app: &AppEntry) -> Result<Profile, ConfigError> {
    let at = |f: &str| format!("apps.{name}.{f}");
    let app: Entry = app_entry(app, name)?;
    let shop_url = origin_template(
        app.shop_url.as_deref(),
        "https://{seller_id}.myshopline.com",
        &at("shop_url"),
    )?;
    Ok(Profile::new(
        name,
        Kind::new(ShoplineApp {
            app_key: required_text(&app.app_key, &at("app_key"))?,
            app_secret: required_secret(&app.app_secret, &at("app_secret"))?,
            redirect_uri: url_field(app.redirect_uri.as_deref(), &at("redirect_uri"))?,
            scope: app.scope.clone().unwrap_or_default(),
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

    fn app() -> ShoplineApp {
        ShoplineApp {
            app_key: "60ef9ba14340a7c4d0a72cb4391fa09807b1ca18".into(),
            app_secret: Secret::new("sl-secret"),
            redirect_uri: "https://dev-store-center-auth.pingpongx.com/api/v1/auth/shopline/cb"
                .into(),
            scope: "read_orders".into(),
            shop_url: "https://{seller_id}.myshopline.com".into(),
        }
    }

    #[test]
    fn authorize_url_has_seed_000_shape() {
        assert_eq!(
            authorize_url(&app(), "8288sellerId", "SD2310250004697640"),
            "https://8288sellerid.myshopline.com/admin/oauth-web/#/oauth/authorize?appKey=60ef9ba14340a7c4d0a72cb4391fa09807b1ca18&responseType=code&scope=read_orders&redirectUri=https%3A%2F%2Fdev-store-center-auth.pingpongx.com%2Fapi%2Fv1%2Fauth%2Fshopline%2Fcb&customField=SD2310250004697640"
        );
    }

    #[test]
    fn redirect_signature_is_checked() {
        let mut p = BTreeMap::from([
            ("appkey".to_owned(), app().app_key),
            ("code".to_owned(), "c1".to_owned()),
            ("customField".to_owned(), "1_x".to_owned()),
            ("handle".to_owned(), "myshop".to_owned()),
            ("timestamp".to_owned(), "1700000000000".to_owned()),
        ]);
        // Independent computation of the signed string.
        let s = format!(
            "appkey={}&code=c1&customField=1_x&handle=myshop&timestamp=1700000000000",
            app().app_key
        );
        let sig = hmac_hex(b"sl-secret", &[s.as_bytes()]);
        p.insert("sign".into(), sig.clone());
        assert_eq!(check_redirect(&app(), &p, "MyShop"), Ok(()));
        assert!(check_redirect(&app(), &p, "other").is_err());
        p.insert("code".into(), "c2".into());
        assert!(check_redirect(&app(), &p, "myshop").is_err());
    }

    #[test]
    fn api_requests_are_signed_over_body_and_timestamp() {
        let ctx = Ctx {
            now: 1700000000123,
            seller_id: Some("myshop"),
            code: Some("c\"1"),
            pkce_verifier: None,
            tokens: None,
            key: None,
            learned: &[],
        };
        let r = build(&app(), Purpose::TokenCreate, &ctx);
        assert_eq!(
            r.url,
            "https://myshop.myshopline.com/admin/oauth/token/create"
        );
        let body = r.body.clone().unwrap();
        assert_eq!(body, r#"{"code":"c\"1"}"#);
        let want = hmac_hex(b"sl-secret", &[format!("{body}1700000000123").as_bytes()]);
        assert!(r.headers.contains(&("sign".to_owned(), want)));
        let r = build(&app(), Purpose::TokenRefresh, &ctx);
        assert_eq!(
            r.url,
            "https://myshop.myshopline.com/admin/oauth/token/refresh"
        );
        assert_eq!(r.body.as_deref(), Some(""));
        let want = hmac_hex(b"sl-secret", &[b"1700000000123"]);
        assert!(r.headers.contains(&("sign".to_owned(), want)));
    }

    #[test]
    fn expire_time_forms() {
        let t = 1673608835000;
        for s in [
            "2023-01-13T11:20:35Z",
            "2023-01-13T11:20:35.000+00:00",
            "2023-01-13T19:20:35+08:00",
            "2023-01-13T11:20:35",
            "2023-01-13T19:20:35.000+0800",
        ] {
            assert_eq!(parse_expire_time(&Value::String(s.into())), Ok(t), "{s}");
        }
        assert_eq!(parse_expire_time(&serde_json::json!(t)), Ok(t));
    }

    #[test]
    fn far_future_expire_times() {
        for s in [
            "+10000-01-01T00:00:00.000Z",
            "10000-01-01T00:00:00Z",
            "+275760-09-13T00:00:00.000Z",
            "99999999999999999999-12-31T23:59:59Z",
            "+10000-02-29T00:00:00Z",
        ] {
            assert_eq!(parse_expire_time(&json!(s)), Ok(i64::MAX), "{s}");
        }
        // 10001 is no leap year; month 13 is no month.
        for s in [
            "+10001-02-29T00:00:00Z",
            "10000-13-01T00:00:00Z",
            "10000-01-01",
        ] {
            assert_eq!(
                parse_expire_time(&json!(s)),
                Err(Malformed::NotATime),
                "{s}"
            );
        }
        assert_eq!(parse_expire_time(&json!(u64::MAX)), Ok(i64::MAX));
        assert_eq!(
            parse_expire_time(&json!("1e+16")),
            Ok(10_000_000_000_000_000)
        );
        assert_eq!(parse_expire_time(&json!(true)), Err(Malformed::NotANumber));
        assert_eq!(parse_expire_time(&json!("NaN")), Err(Malformed::NotATime));
        assert_eq!(parse_expire_time(&Value::Null), Err(Malformed::Missing));
    }

    #[test]
    fn reads_answers() {
        let ctx = Ctx {
            now: 1_673_000_000_000,
            seller_id: Some("MyShop"),
            code: None,
            pkce_verifier: None,
            tokens: None,
            key: None,
            learned: &[],
        };
        let t = read_token(
            Purpose::TokenCreate,
            200,
            r#"{"code":200,"message":null,"data":{"accessToken":"AT","expireTime":"2023-01-13T11:20:35.411+00:00","scope":"read_orders"}}"#,
            &ctx,
        )
        .unwrap();
        assert_eq!(t.access_expires_at, Some(1673608835411));
        assert_eq!(t.sellers, Some(vec!["myshop".to_owned()]));
        assert!(matches!(
            read_token(
                Purpose::TokenRefresh,
                200,
                r#"{"code":401,"message":"unauthorized"}"#,
                &ctx
            ),
            Err(Outcome::Rejected(Reason::RefreshRejected, _))
        ));
        assert!(matches!(
            read_token(
                Purpose::TokenCreate,
                200,
                r#"{"code":400,"message":"sign error"}"#,
                &ctx
            ),
            Err(Outcome::HostBroken(_))
        ));
        assert!(matches!(
            read_token(Purpose::TokenCreate, 503, "", &ctx),
            Err(Outcome::Retry(_))
        ));
    }
}
