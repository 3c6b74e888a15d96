//! TikTok Shop Partner API (`tiktok_shop`, kind `tiktok`): the authorize
//! URL on TikTok's services host (`service_id` + `state`), the token
//! create and refresh calls (`GET /api/v2/token/get` and
//! `/api/v2/token/refresh`, the app secret in the query string), the token
//! answer with its absolute expiries and its seller (`open_id`), and the
//! classification of TikTok's error codes.
//!
//! Sources (read before building):
//! - david-yappeter/go-tiktok `auth.go` (`GenerateAuthURL`:
//!   `https://services.tiktokshop.com/open/authorize?service_id=…&state=…`;
//!   `GetAccessToken` / `RefreshToken`: GET with `app_key`, `app_secret`,
//!   `auth_code` + `grant_type=authorized_code` / `refresh_token` +
//!   `grant_type=refresh_token`), `client.go` (base hosts
//!   `services.tiktokshop.com`, `auth.tiktok-shops.com`; `code != 0` is an
//!   error) and `response.go` (the answer's fields, `seller_base_region`,
//!   `user_type`).
//! - hsib19/tiktok-shop-sdk `src/modules/AuthModule.ts`,
//!   `src/client/AuthRequest.ts`, `src/types/AuthTypes.ts`,
//!   `src/utils/handleResponse.ts` (the same two GET calls; throws on
//!   `code !== 0`).
//! - EcomPHP/tiktokshop-php `src/Auth.php` (`getToken` / `refreshNewToken`,
//!   the same; its `createAuthRequest` still builds the legacy
//!   `https://auth.tiktok-shops.com/oauth/authorize?app_key=…&state=…`).
//! - No SDK classifies error codes (they only throw on a non-zero code);
//!   the classification below is the spec's (§5.5), with TikTok's common
//!   errors 36009002 (too many requests) and 36009003 (internal error,
//!   "retry request") as the rate-limit and server codes, as public
//!   clients retry them.
//!
//! The token URL carries the app secret, the code and the refresh token:
//! it is as secret as a body. [`Outgoing`] has no `Debug`, the engine's
//! `HttpRequest` prints its URL without the query, and `secrets()` names
//! the app secret so that an echo of it is redacted from `last_error`.
//!
//! What does not live here: refresh timing, retries, claims (the engine's).
//!
//! Also here: its settings (`TiktokApp`), the reading of `apps.tiktok_shop`
//! and its `Platform` implementation.

use super::{
    Ctx, MAX_LIFETIME_S, Malformed, Outcome, Outgoing, Tokens, absolute_expiry, describe,
    expiry_after, json_answer, json_i64, json_text, whole,
};
use crate::config::{
    AppEntry, Profile, app_entry, rate, required_secret, required_text, url_field, url_or,
};
use crate::encoding::append_query;
use crate::error::ConfigError;
use crate::message::{Purpose, Reason};
use crate::platform::Kind;
use crate::secret::Secret;
use serde::Deserialize;
use serde_json::Value;

/// The authorize page of sellers outside the US.
pub const AUTHORIZE_URL: &str = "https://services.tiktokshop.com/open/authorize";
/// The authorize page of US sellers.
pub const US_AUTHORIZE_URL: &str = "https://services.us.tiktokshop.com/open/authorize";
/// The token API's host.
pub const API_URL: &str = "https://auth.tiktok-shops.com";
/// Path of token create.
pub const GET_PATH: &str = "/api/v2/token/get";
/// Path of token refresh.
pub const REFRESH_PATH: &str = "/api/v2/token/refresh";

/// Values below this are lifetimes in seconds, not Unix times (spec §5.5:
/// 10^9 s is September 2001).
const ABSOLUTE_FROM: i64 = 1_000_000_000;

/// `{authorize_url}?service_id=…&state=…`.
pub fn authorize_url(app: &TiktokApp, nonce: &str) -> String {
    append_query(
        &app.authorize_url,
        [("service_id", app.service_id.as_str()), ("state", nonce)],
    )
}

/// Token create (`auth_code`) or refresh (`refresh_token`): a GET whose
/// query carries the app secret.
pub fn build(app: &TiktokApp, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
    let secret = app.app_secret.expose();
    let (path, params): (&str, [(&str, &str); 4]) = if purpose == Purpose::TokenRefresh {
        let rt = ctx
            .tokens
            .and_then(|t| t.refresh.as_ref())
            .map_or("", Secret::expose);
        (
            REFRESH_PATH,
            [
                ("app_key", &app.app_key),
                ("app_secret", secret),
                ("refresh_token", rt),
                ("grant_type", "refresh_token"),
            ],
        )
    } else {
        (
            GET_PATH,
            [
                ("app_key", &app.app_key),
                ("app_secret", secret),
                ("auth_code", ctx.code.unwrap_or("")),
                ("grant_type", "authorized_code"),
            ],
        )
    };
    Outgoing {
        method: "GET",
        url: append_query(&format!("{}{}", app.api_url, path), params),
        headers: Vec::new(),
        body: None,
    }
}

/// Reads one of TikTok's expiries (`access_token_expire_in`,
/// `refresh_token_expire_in`): Unix seconds, or — below 10^9 — a lifetime
/// in seconds; either way cut to ten years from `now` (ms). `Ok(None)` for
/// 0 where `zero_is_none` (a refresh lifetime of 0: no refresh, as seed
/// 003's); missing, negative, fractional or non-numeric values, an access
/// expiry of 0 and an absolute time not after `now` are malformed.
pub fn expiry(v: Option<&Value>, now: i64, zero_is_none: bool) -> Result<Option<i64>, Malformed> {
    let n = match v {
        None | Some(Value::Null) => return Err(Malformed::Missing),
        Some(v) => whole(v)?,
    };
    match n {
        n if n < 0 => Err(Malformed::Negative),
        0 if zero_is_none => Ok(None),
        0 => Err(Malformed::Zero),
        n if n < ABSOLUTE_FROM => Ok(Some(expiry_after(now, n.min(MAX_LIFETIME_S)))),
        n => absolute_expiry(n.saturating_mul(1000), now).map(Some),
    }
}

/// Classifies a non-zero `code` (spec §5.5; the SDKs only throw on it).
pub fn classify(purpose: Purpose, code: i64, message: String) -> Outcome {
    let refresh = purpose == Purpose::TokenRefresh;
    match code {
        // Too many requests; internal error ("retry request").
        36009002 | 36009003 => Outcome::Retry(message),
        // Refresh token expired; no such authorization.
        36004001 | 36004005 if refresh => Outcome::Rejected(Reason::RefreshRejected, message),
        // Anything else on refresh: our side (retried until the access
        // token expires, noted in last_error).
        _ if refresh => Outcome::HostBroken(message),
        // 36004004 (invalid auth code) and any other refusal of the exchange.
        _ => Outcome::Rejected(Reason::PlatformRejected, message),
    }
}

/// Reads a token answer `{code, message, data: {…}, request_id}`.
pub fn read_token(
    purpose: Purpose,
    status: u16,
    body: &str,
    ctx: &Ctx<'_>,
) -> Result<Tokens, Outcome> {
    let v = json_answer(status, body, "TikTok Shop")?;
    let Some(code) = json_i64(v.get("code")) else {
        return Err(Outcome::HostBroken(describe(
            status,
            "TikTok Shop answered without a code",
        )));
    };
    if code != 0 {
        let msg = describe(
            status,
            &format!(
                "TikTok Shop error {code}: {}",
                v.get("message").and_then(Value::as_str).unwrap_or("")
            ),
        );
        return Err(classify(purpose, code, msg));
    }
    if !(200..300).contains(&status) {
        return Err(Outcome::HostBroken(describe(
            status,
            "TikTok Shop refused with code 0",
        )));
    }
    let data = v.get("data").filter(|d| d.is_object());
    let field = |name: &str| data.and_then(|d| d.get(name));
    let text = |name: &str| json_text(field(name)).filter(|s| !s.is_empty());
    let access = text("access_token").ok_or_else(|| {
        Outcome::HostBroken(describe(status, "TikTok Shop answer has no access_token"))
    })?;
    let now = ctx.now;
    let malformed = |name: &str, e: Malformed| {
        Outcome::Retry(describe(status, &format!("TikTok Shop answer: {name} {e}")))
    };
    let access_at = expiry(field("access_token_expire_in"), now, false)
        .map_err(|e| malformed("access_token_expire_in", e))?;
    let old = ctx.tokens.filter(|_| purpose == Purpose::TokenRefresh);
    let new_refresh = text("refresh_token");
    let (refresh, refresh_at, refreshable) = match (new_refresh, old) {
        // TikTok answers the refresh token's own absolute expiry: taken as
        // answered (never IOP's min), also on refresh.
        (Some(r), _) => {
            let at = expiry(field("refresh_token_expire_in"), now, true)
                .map_err(|e| malformed("refresh_token_expire_in", e))?;
            (Some(Secret::new(r)), at, at.is_some())
        }
        // A refresh answer without one keeps the old token and its expiry.
        (None, Some(o)) => (o.refresh.clone(), o.refresh_expires_at, o.refreshable),
        (None, None) => (None, None, false),
    };
    let sellers = match (text("open_id"), old) {
        (Some(open_id), _) => Some(vec![open_id]),
        (None, Some(o)) => o.sellers.clone(),
        (None, None) => {
            return Err(malformed("open_id", Malformed::Missing));
        }
    };
    Ok(Tokens {
        access: Secret::new(access),
        refresh,
        access_expires_at: access_at,
        refresh_expires_at: refresh_at,
        refreshable,
        obtained_at: now,
        sellers,
    })
}

impl super::Platform for TiktokApp {
    fn flow(&self) -> super::Flow {
        super::Flow::Redirect
    }
    fn authorize_url(&self, a: &super::UrlArgs<'_>) -> String {
        authorize_url(self, a.nonce)
    }
    fn build(&self, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
        build(self, purpose, ctx)
    }
    fn read(&self, purpose: Purpose, status: u16, body: &str, ctx: &Ctx<'_>) -> Outcome {
        read_token(purpose, status, body, ctx).map_or_else(|o| o, Outcome::Tokens)
    }
    fn secrets(&self) -> Vec<&str> {
        vec![self.app_secret.expose()]
    }
}

/// TikTok Shop settings.
#[derive(Debug, Clone)]
pub struct TiktokApp {
    /// App key.
    pub app_key: String,
    /// App secret (travels in the token URLs).
    pub app_secret: Secret,
    /// The service id of the app's authorize link.
    pub service_id: String,
    /// The callback registered with the app (TikTok sends sellers there;
    /// no request names it).
    pub redirect_uri: String,
    /// Authorize page (regional: see the README).
    pub authorize_url: String,
    /// Token API base.
    pub api_url: String,
}

/// The fields its `apps` entry takes.
pub(crate) fn entry_fields() -> &'static [&'static str] {
    crate::typed::fields_of::<Entry>()
}

/// The `apps` entry of `apps.tiktok_shop`: only these fields apply.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    app_key: Option<String>,
    #[serde(default)]
    app_secret: Option<Secret>,
    #[serde(default)]
    service_id: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    authorize_url: Option<String>,
    #[serde(default)]
    api_url: Option<String>,
    #[serde(default)]
    rate_limit_per_s: Option<u32>,
}

/// Reads `apps.tiktok_shop`.
pub(crate) fn profile(name: &str, app: &AppEntry) -> Result<Profile, ConfigError> {
    let at = |f: &str| format!("apps.{name}.{f}");
    let app: Entry = app_entry(app, name)?;
    Ok(Profile::new(
        name,
        Kind::new(TiktokApp {
            app_key: required_text(&app.app_key, &at("app_key"))?,
            app_secret: required_secret(&app.app_secret, &at("app_secret"))?,
            service_id: required_text(&app.service_id, &at("service_id"))?,
            redirect_uri: url_field(app.redirect_uri.as_deref(), &at("redirect_uri"))?,
            authorize_url: url_or(
                app.authorize_url.as_deref(),
                AUTHORIZE_URL,
                &at("authorize_url"),
            )?,
            api_url: url_or(app.api_url.as_deref(), API_URL, &at("api_url"))?
                .trim_end_matches('/')
                .to_owned(),
        }),
        rate(app.rate_limit_per_s, &at("rate_limit_per_s"))?,
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn app(authorize: &str) -> TiktokApp {
        TiktokApp {
            app_key: "6abc123".into(),
            app_secret: Secret::new("tt-secret"),
            service_id: "7584563551361271565".into(),
            redirect_uri: "https://host.example/cb/tiktok_shop".into(),
            authorize_url: authorize.into(),
            api_url: API_URL.into(),
        }
    }

    fn ctx<'a>(code: Option<&'a str>, tokens: Option<&'a Tokens>) -> Ctx<'a> {
        Ctx {
            now: NOW,
            seller_id: None,
            code,
            pkce_verifier: None,
            tokens,
            key: None,
            learned: &[],
        }
    }

    #[test]
    fn authorize_urls_of_every_region() {
        assert_eq!(
            authorize_url(&app(AUTHORIZE_URL), "1_n-x"),
            "https://services.tiktokshop.com/open/authorize?service_id=7584563551361271565&state=1_n-x"
        );
        assert_eq!(
            authorize_url(&app(US_AUTHORIZE_URL), "1_n-x"),
            "https://services.us.tiktokshop.com/open/authorize?service_id=7584563551361271565&state=1_n-x"
        );
        // An override with a query of its own keeps it.
        assert_eq!(
            authorize_url(&app("https://sim.example/open/authorize?lang=en"), "n"),
            "https://sim.example/open/authorize?lang=en&service_id=7584563551361271565&state=n"
        );
    }

    #[test]
    fn token_calls_are_gets_with_the_secret_in_the_query() {
        let r = build(
            &app(AUTHORIZE_URL),
            Purpose::TokenCreate,
            &ctx(Some("TTP_a+b/c"), None),
        );
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.url,
            "https://auth.tiktok-shops.com/api/v2/token/get?app_key=6abc123&app_secret=tt-secret&auth_code=TTP_a%2Bb%2Fc&grant_type=authorized_code"
        );
        assert_eq!(r.body, None);
        let t = Tokens {
            access: Secret::new("A"),
            refresh: Some(Secret::new("R 1")),
            access_expires_at: Some(NOW + 1),
            refresh_expires_at: Some(NOW + 2),
            refreshable: true,
            obtained_at: NOW,
            sellers: None,
        };
        let r = build(
            &app(AUTHORIZE_URL),
            Purpose::TokenRefresh,
            &ctx(None, Some(&t)),
        );
        assert_eq!(
            r.url,
            "https://auth.tiktok-shops.com/api/v2/token/refresh?app_key=6abc123&app_secret=tt-secret&refresh_token=R%201&grant_type=refresh_token"
        );
    }

    #[test]
    fn expiries_are_absolute_seconds_or_lifetimes() {
        let s = NOW / 1000;
        // Absolute Unix seconds.
        assert_eq!(
            expiry(Some(&json!(s + 604_800)), NOW, false),
            Ok(Some(NOW + 604_800_000))
        );
        assert_eq!(
            expiry(Some(&json!((s + 60).to_string())), NOW, false),
            Ok(Some(NOW + 60_000))
        );
        // Below 10^9: a lifetime.
        assert_eq!(
            expiry(Some(&json!(604_800)), NOW, false),
            Ok(Some(NOW + 604_800_000))
        );
        assert_eq!(
            expiry(Some(&json!(999_999_999)), NOW, false),
            Ok(Some(NOW + 315_360_000_000))
        );
        // A century ahead (seen: 4903858076): cut to ten years.
        assert_eq!(
            expiry(Some(&json!(4_903_858_076_i64)), NOW, true),
            Ok(Some(NOW + 315_360_000_000))
        );
        assert_eq!(
            expiry(Some(&json!(u64::MAX)), NOW, true),
            Ok(Some(NOW + 315_360_000_000))
        );
        // Past, missing, zero, negative, fractional, not a number.
        assert_eq!(
            expiry(Some(&json!(s - 1)), NOW, false),
            Err(Malformed::NotAhead)
        );
        assert_eq!(
            expiry(Some(&json!(s)), NOW, false),
            Err(Malformed::NotAhead)
        );
        assert_eq!(expiry(None, NOW, false), Err(Malformed::Missing));
        assert_eq!(
            expiry(Some(&Value::Null), NOW, true),
            Err(Malformed::Missing)
        );
        assert_eq!(expiry(Some(&json!(0)), NOW, false), Err(Malformed::Zero));
        assert_eq!(expiry(Some(&json!(0)), NOW, true), Ok(None));
        assert_eq!(
            expiry(Some(&json!(-3)), NOW, true),
            Err(Malformed::Negative)
        );
        assert_eq!(
            expiry(Some(&json!(1.5)), NOW, true),
            Err(Malformed::NotWhole)
        );
        assert_eq!(
            expiry(Some(&json!("soon")), NOW, true),
            Err(Malformed::NotANumber)
        );
        assert_eq!(
            expiry(Some(&json!(true)), NOW, true),
            Err(Malformed::NotANumber)
        );
    }

    fn answer(data: Value) -> String {
        json!({"code": 0, "message": "success", "data": data, "request_id": "2023"}).to_string()
    }

    #[test]
    fn reads_the_token_answer_and_its_seller() {
        let s = NOW / 1000;
        let body = answer(json!({
            "access_token": "ROW_AT", "access_token_expire_in": s + 604_800,
            "refresh_token": "ROW_RT", "refresh_token_expire_in": 4_903_858_076_i64,
            "open_id": "7010736057180325637", "seller_name": "Jjj test shop",
            "seller_base_region": "ID", "user_type": 0
        }));
        let t = read_token(Purpose::TokenCreate, 200, &body, &ctx(None, None)).unwrap();
        assert_eq!(t.access.expose(), "ROW_AT");
        assert_eq!(t.access_expires_at, Some(NOW + 604_800_000));
        assert_eq!(t.refresh_expires_at, Some(NOW + 315_360_000_000));
        assert!(t.refreshable);
        assert_eq!(t.sellers, Some(vec!["7010736057180325637".to_owned()]));
        // A refresh answer's own expiry is taken as answered; without a new
        // refresh token the old one and its expiry stay; without open_id the
        // old sellers stay.
        let later = Ctx {
            now: NOW + 1000,
            ..ctx(None, Some(&t))
        };
        let r = read_token(
            Purpose::TokenRefresh,
            200,
            &answer(json!({"access_token": "AT2", "access_token_expire_in": s + 7200})),
            &later,
        )
        .unwrap();
        assert_eq!(r.refresh, t.refresh);
        assert_eq!(r.refresh_expires_at, t.refresh_expires_at);
        assert_eq!(r.sellers, t.sellers);
        assert_eq!(r.access_expires_at, Some(NOW + 7_200_000));
        let r = read_token(
            Purpose::TokenRefresh,
            200,
            &answer(
                json!({"access_token": "AT3", "access_token_expire_in": s + 7200,
                           "refresh_token": "RT3", "refresh_token_expire_in": s + 100}),
            ),
            &later,
        )
        .unwrap();
        assert_eq!(r.refresh_expires_at, Some(NOW + 100_000));
        // A create answer without open_id, or with a malformed expiry, is retried.
        for bad in [
            json!({"access_token": "A", "access_token_expire_in": s + 60, "refresh_token": "R", "refresh_token_expire_in": s + 60}),
            json!({"access_token": "A", "open_id": "o", "access_token_expire_in": 0}),
            json!({"access_token": "A", "open_id": "o"}),
            json!({"access_token": "A", "open_id": "o", "access_token_expire_in": s - 5}),
            json!({"access_token": "A", "open_id": "o", "access_token_expire_in": s + 60, "refresh_token": "R"}),
        ] {
            assert!(
                matches!(
                    read_token(
                        Purpose::TokenCreate,
                        200,
                        &answer(bad.clone()),
                        &ctx(None, None)
                    ),
                    Err(Outcome::Retry(_))
                ),
                "{bad}"
            );
        }
        // A refresh lifetime of 0: no refresh.
        let z = read_token(
            Purpose::TokenCreate,
            200,
            &answer(
                json!({"access_token": "A", "open_id": "o", "access_token_expire_in": s + 60,
                           "refresh_token": "R", "refresh_token_expire_in": 0}),
            ),
            &ctx(None, None),
        )
        .unwrap();
        assert!(!z.can_refresh(NOW));
    }

    #[test]
    fn classifies_every_error_class() {
        let c = ctx(None, None);
        let err = |p, status: u16, body: &str| read_token(p, status, body, &c).unwrap_err();
        let code = |n: i64| json!({"code": n, "message": "m", "request_id": "r"}).to_string();
        let create = Purpose::TokenCreate;
        let refresh = Purpose::TokenRefresh;
        assert!(matches!(
            err(create, 200, &code(36004004)),
            Outcome::Rejected(Reason::PlatformRejected, _)
        ));
        assert!(matches!(
            err(create, 200, &code(12345)),
            Outcome::Rejected(Reason::PlatformRejected, _)
        ));
        assert!(matches!(
            err(refresh, 200, &code(36004001)),
            Outcome::Rejected(Reason::RefreshRejected, _)
        ));
        assert!(matches!(
            err(refresh, 200, &code(36004005)),
            Outcome::Rejected(Reason::RefreshRejected, _)
        ));
        assert!(matches!(
            err(refresh, 200, &code(36004004)),
            Outcome::HostBroken(_)
        ));
        assert!(matches!(
            err(refresh, 200, &code(12345)),
            Outcome::HostBroken(_)
        ));
        for p in [create, refresh] {
            assert!(matches!(err(p, 200, &code(36009002)), Outcome::Retry(_)));
            assert!(matches!(err(p, 200, &code(36009003)), Outcome::Retry(_)));
            assert!(matches!(err(p, 429, ""), Outcome::Retry(_)));
            assert!(matches!(err(p, 503, &code(0)), Outcome::Retry(_)));
            assert!(matches!(err(p, 200, "<html>"), Outcome::Retry(_)));
            assert!(matches!(err(p, 200, "{}"), Outcome::HostBroken(_)));
            assert!(matches!(err(p, 200, &code(0)), Outcome::HostBroken(_)));
            assert!(matches!(err(p, 404, &code(0)), Outcome::HostBroken(_)));
        }
        // The code as a numeric string counts too.
        assert!(matches!(
            err(
                create,
                200,
                r#"{"code":"36009002","message":"too many requests"}"#
            ),
            Outcome::Retry(_)
        ));
    }
}
