//! Amazon Selling Partner API through Login with Amazon (kind `lwa`, spec
//! §5.6): the Seller Central consent link (`state`, optionally
//! `version=beta` for draft apps), the callback's `spapi_oauth_code` and
//! `selling_partner_id` (the seller, claimed when the seller comes back),
//! the LWA token exchange and refresh at `https://api.amazon.com/auth/o2/token`,
//! the fixed 365-day authorization and the classification of LWA errors.
//!
//! Sources followed (read with the `search` tool):
//! - `lineofflight/peddler`, `lib/peddler/lwa.rb`: the LWA request is a form
//!   POST to `https://api.amazon.com/auth/o2/token` with `grant_type`,
//!   `client_id`, `client_secret` and the grant's own fields —
//!   `authorization_code` with `code` (and `redirect_uri`), `refresh_token`
//!   with `refresh_token`;
//! - `saleweaver/python-amazon-sp-api`, `sp_api/auth/access_token_client.py`
//!   and `access_token_response.py`: the refresh grant's form fields
//!   (`grant_type=refresh_token`, `client_id`, `refresh_token`,
//!   `client_secret`) and the answer (`access_token`, `refresh_token`,
//!   `expires_in`, `token_type`);
//! - `amzn/selling-partner-api-models`,
//!   `clients/sellingpartner-api-aa-java/src/com/amazon/SellingPartnerAPIAA/LWAExceptionErrorCode.java`:
//!   the LWA error codes classified below (`access_denied`, `invalid_grant`,
//!   `invalid_request`, `invalid_scope`, `server_error`,
//!   `temporarily_unavailable`, `unauthorized_client`, `invalid_client`).
//!
//! Where the sources differ from the spec (the README lists it): Amazon's
//! own Java client (`LWAClient.java`) posts the same fields as a JSON body;
//! the form body of the spec is what peddler and python-amazon-sp-api send,
//! and what Amazon's documentation shows, so it is kept. The consent link
//! and its parameters are the spec's (from Amazon's "Website authorization
//! workflow" documentation; no SDK builds it).
//!
//! What does not live here: refresh timing, retries, claims (the engine's).

use super::{
    Checked, Ctx, Flow, Malformed, Outcome, Outgoing, Platform, Tokens, UrlArgs, access_lifetime_s,
    describe, expiry_after,
};
use crate::config::{
    AppEntry, Profile, app_entry, rate, required_secret, required_text, url_field, url_or,
};
use crate::encoding::{append_query, form};
use crate::error::ConfigError;
use crate::message::{Purpose, Reason};
use crate::platform::Kind;
use crate::secret::Secret;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Default Seller Central (North America; one per region).
pub const SELLER_CENTRAL_URL: &str = "https://sellercentral.amazon.com";
/// Path of the consent page under Seller Central.
pub const CONSENT_PATH: &str = "/apps/authorize/consent";
/// Default LWA host.
pub const API_URL: &str = "https://api.amazon.com";
/// Path of the LWA token endpoint.
pub const TOKEN_PATH: &str = "/auth/o2/token";
/// How long a seller's authorization lasts from consent: 365 days.
pub const AUTHORIZATION_TTL_S: i64 = 365 * 86_400;
/// Validity of an `spapi_oauth_code` (seconds).
pub const CODE_TTL_S: u64 = 300;

/// Amazon SP-API (LWA) settings.
#[derive(Debug, Clone)]
pub struct LwaApp {
    /// The LWA client id (`app_key`).
    pub client_id: String,
    /// The LWA client secret (`app_secret`).
    pub client_secret: Secret,
    /// The app's `amzn1.sp.solution…` id.
    pub application_id: String,
    /// Registered callback.
    pub redirect_uri: String,
    /// The consent page (default `{seller_central_url}/apps/authorize/consent`).
    pub authorize_url: String,
    /// The token endpoint (`{api_url}/auth/o2/token`).
    pub token_url: String,
    /// A draft app: the link adds `version=beta`.
    pub draft: bool,
}

/// `{consent}?application_id=…&state=…&redirect_uri=…[&version=beta]`.
pub fn authorize_url(app: &LwaApp, nonce: &str) -> String {
    let mut p: Vec<(&str, &str)> = vec![
        ("application_id", &app.application_id),
        ("state", nonce),
        ("redirect_uri", &app.redirect_uri),
    ];
    if app.draft {
        p.push(("version", "beta"));
    }
    append_query(&app.authorize_url, p)
}

/// Whether `s` has the form of a selling partner id (a merchant token):
/// ASCII letters and digits.
pub fn is_partner_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Checks a callback: with a code it must name the selling partner.
pub fn check_redirect(params: &BTreeMap<String, String>) -> Result<Checked, &'static str> {
    let has_code = params
        .get("spapi_oauth_code")
        .is_some_and(|c| !c.is_empty());
    match params.get("selling_partner_id").filter(|s| !s.is_empty()) {
        Some(id) if is_partner_id(id) => Ok(Checked {
            seller: has_code.then(|| id.clone()),
        }),
        Some(_) => Err("the redirect's selling_partner_id is not letters and digits"),
        None if has_code => Err("the redirect names no selling_partner_id"),
        None => Ok(Checked::default()),
    }
}

/// The code exchange or the refresh: a form POST to the token endpoint.
pub fn build(app: &LwaApp, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
    let mut p: Vec<(&str, &str)> = Vec::with_capacity(5);
    if purpose == Purpose::TokenRefresh {
        let rt = ctx
            .tokens
            .and_then(|t| t.refresh.as_ref())
            .map_or("", Secret::expose);
        p.push(("grant_type", "refresh_token"));
        p.push(("refresh_token", rt));
    } else {
        p.push(("grant_type", "authorization_code"));
        p.push(("code", ctx.code.unwrap_or("")));
        p.push(("redirect_uri", &app.redirect_uri));
    }
    p.push(("client_id", &app.client_id));
    p.push(("client_secret", app.client_secret.expose()));
    Outgoing {
        method: "POST",
        url: app.token_url.clone(),
        headers: vec![
            (
                "Content-Type".to_owned(),
                "application/x-www-form-urlencoded;charset=UTF-8".to_owned(),
            ),
            ("Accept".to_owned(), "application/json".to_owned()),
        ],
        body: Some(form(p)),
    }
}

/// Classifies an LWA `error` (`LWAExceptionErrorCode`, spec §5.6).
pub fn classify(purpose: Purpose, error: &str, text: String) -> Outcome {
    let refresh = purpose == Purpose::TokenRefresh;
    match error {
        // The code or the refresh token is not (or no longer) good; a
        // refresh token dies when the seller's authorization ends or is
        // withdrawn.
        "invalid_grant" if refresh => Outcome::Rejected(Reason::RefreshRejected, text),
        "invalid_grant" => Outcome::Rejected(Reason::PlatformRejected, text),
        "access_denied" if refresh => Outcome::Rejected(Reason::RefreshRejected, text),
        "access_denied" => Outcome::Rejected(Reason::Denied, text),
        "server_error" | "temporarily_unavailable" => Outcome::Retry(text),
        // invalid_client, unauthorized_client, invalid_request,
        // invalid_scope, unsupported_grant_type and anything unknown: our
        // app's credentials or request.
        _ => Outcome::HostBroken(text),
    }
}

/// Reads an LWA answer `{access_token, refresh_token, token_type, expires_in}`
/// or `{error, error_description}`.
pub fn read_token(
    purpose: Purpose,
    status: u16,
    body: &str,
    ctx: &Ctx<'_>,
) -> Result<Tokens, Outcome> {
    let (v, access) = super::oauth2::answer(status, body, "LWA", |error, v| {
        (!error.is_empty()).then(|| {
            let description = v
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("");
            let text = describe(status, &format!("LWA error {error}: {description}"));
            classify(purpose, error, text)
        })
    })?;
    let nonempty = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    // LWA always says how long the access token lives (3600 s).
    let expires_in = access_lifetime_s(v.get("expires_in"))
        .and_then(|n| n.ok_or(Malformed::Missing))
        .map_err(|e| Outcome::Retry(describe(status, &format!("LWA answer: expires_in {e}"))))?;
    let now = ctx.now;
    let new_refresh = nonempty("refresh_token").map(Secret::new);
    let (refresh, refresh_expires_at, refreshable) =
        match ctx.tokens.filter(|_| purpose == Purpose::TokenRefresh) {
            // The refresh token does not change on refresh, and the
            // authorization's end is fixed at its start.
            Some(old) => (
                new_refresh.or_else(|| old.refresh.clone()),
                old.refresh_expires_at,
                old.refreshable,
            ),
            None => {
                let live = new_refresh.is_some();
                (
                    new_refresh,
                    live.then(|| expiry_after(now, AUTHORIZATION_TTL_S)),
                    live,
                )
            }
        };
    Ok(Tokens {
        access,
        refresh,
        access_expires_at: Some(expiry_after(now, expires_in)),
        refresh_expires_at,
        refreshable,
        obtained_at: now,
        // The seller is the callback's selling_partner_id, already claimed.
        sellers: None,
    })
}

impl Platform for LwaApp {
    fn flow(&self) -> Flow {
        Flow::Redirect
    }
    fn authorize_url(&self, a: &UrlArgs<'_>) -> String {
        authorize_url(self, a.nonce)
    }
    fn code_param(&self) -> &'static str {
        "spapi_oauth_code"
    }
    fn check_redirect(
        &self,
        params: &BTreeMap<String, String>,
        _seller_id: Option<&str>,
        _now: i64,
    ) -> Result<Checked, &'static str> {
        check_redirect(params)
    }
    fn build(&self, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
        build(self, purpose, ctx)
    }
    fn read(&self, purpose: Purpose, status: u16, body: &str, ctx: &Ctx<'_>) -> Outcome {
        read_token(purpose, status, body, ctx).map_or_else(|o| o, Outcome::Tokens)
    }
    fn check_seller(&self, seller_id: &str) -> Result<(), &'static str> {
        if is_partner_id(seller_id) {
            Ok(())
        } else {
            Err("must be an Amazon selling_partner_id (letters and digits)")
        }
    }
    fn secrets(&self) -> Vec<&str> {
        vec![self.client_secret.expose()]
    }
}

/// The fields its `apps` entry takes.
pub(crate) fn entry_fields() -> &'static [&'static str] {
    crate::typed::fields_of::<Entry>()
}

/// The `apps` entry of `apps.amazon_sp`: only these fields apply.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    app_key: Option<String>,
    #[serde(default)]
    app_secret: Option<Secret>,
    #[serde(default)]
    application_id: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    seller_central_url: Option<String>,
    #[serde(default)]
    draft: Option<bool>,
    #[serde(default)]
    authorize_url: Option<String>,
    #[serde(default)]
    api_url: Option<String>,
    #[serde(default)]
    rate_limit_per_s: Option<u32>,
}

/// Reads `apps.amazon_sp`. `authorize_url`, when given, is the whole
/// consent page and wins over `seller_central_url`.
pub(crate) fn profile(name: &str, app: &AppEntry) -> Result<Profile, ConfigError> {
    let at = |f: &str| format!("apps.{name}.{f}");
    let app: Entry = app_entry(app, name)?;
    let seller_central = url_or(
        app.seller_central_url.as_deref(),
        SELLER_CENTRAL_URL,
        &at("seller_central_url"),
    )?;
    let authorize_url = url_or(
        app.authorize_url.as_deref(),
        &format!("{}{CONSENT_PATH}", seller_central.trim_end_matches('/')),
        &at("authorize_url"),
    )?;
    let api_url = url_or(app.api_url.as_deref(), API_URL, &at("api_url"))?;
    let mut p = Profile::new(
        name,
        Kind::new(LwaApp {
            client_id: required_text(&app.app_key, &at("app_key"))?,
            client_secret: required_secret(&app.app_secret, &at("app_secret"))?,
            application_id: required_text(&app.application_id, &at("application_id"))?,
            redirect_uri: url_field(app.redirect_uri.as_deref(), &at("redirect_uri"))?,
            authorize_url,
            token_url: format!("{}{TOKEN_PATH}", api_url.trim_end_matches('/')),
            draft: app.draft.unwrap_or(false),
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

    const T: i64 = 1_700_000_000_000;

    fn app(draft: bool) -> LwaApp {
        LwaApp {
            client_id: "amzn1.application-oa2-client.demo".into(),
            client_secret: Secret::new("lwa-secret"),
            application_id: "amzn1.sp.solution.demo-app".into(),
            redirect_uri: "https://host.example/cb/amazon_sp".into(),
            authorize_url: format!("{SELLER_CENTRAL_URL}{CONSENT_PATH}"),
            token_url: format!("{API_URL}{TOKEN_PATH}"),
            draft,
        }
    }

    fn ctx<'a>(now: i64, code: Option<&'a str>, tokens: Option<&'a Tokens>) -> Ctx<'a> {
        Ctx {
            now,
            seller_id: None,
            code,
            pkce_verifier: None,
            tokens,
            key: None,
            learned: &[],
        }
    }

    #[test]
    fn consent_link_shape() {
        assert_eq!(
            authorize_url(&app(false), "n_1"),
            "https://sellercentral.amazon.com/apps/authorize/consent?application_id=amzn1.sp.solution.demo-app&state=n_1&redirect_uri=https%3A%2F%2Fhost.example%2Fcb%2Famazon_sp"
        );
        assert!(authorize_url(&app(true), "n_1").ends_with("&version=beta"));
    }

    #[test]
    fn callbacks_name_the_selling_partner() {
        let p = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            check_redirect(&p(&[
                ("spapi_oauth_code", "ANd"),
                ("selling_partner_id", "A3EXAMPLE9"),
                ("state", "n")
            ])),
            Ok(Checked {
                seller: Some("A3EXAMPLE9".into())
            })
        );
        assert!(check_redirect(&p(&[("spapi_oauth_code", "c")])).is_err());
        assert!(
            check_redirect(&p(&[
                ("spapi_oauth_code", "c"),
                ("selling_partner_id", "A B")
            ]))
            .is_err()
        );
        assert_eq!(
            check_redirect(&p(&[("error", "access_denied")])),
            Ok(Checked::default())
        );
    }

    #[test]
    fn exchange_and_refresh_bodies() {
        let r = build(
            &app(false),
            Purpose::TokenCreate,
            &ctx(T, Some("ANd/c+1"), None),
        );
        assert_eq!(r.url, "https://api.amazon.com/auth/o2/token");
        assert_eq!(
            r.body.as_deref(),
            Some(
                "grant_type=authorization_code&code=ANd%2Fc%2B1&redirect_uri=https%3A%2F%2Fhost.example%2Fcb%2Famazon_sp&client_id=amzn1.application-oa2-client.demo&client_secret=lwa-secret"
            )
        );
        let t = Tokens {
            access: Secret::new("Atza|1"),
            refresh: Some(Secret::new("Atzr|R")),
            access_expires_at: Some(T + 3_600_000),
            refresh_expires_at: Some(T + AUTHORIZATION_TTL_S * 1000),
            refreshable: true,
            obtained_at: T,
            sellers: None,
        };
        let r = build(&app(false), Purpose::TokenRefresh, &ctx(T, None, Some(&t)));
        assert_eq!(
            r.body.as_deref(),
            Some(
                "grant_type=refresh_token&refresh_token=Atzr%7CR&client_id=amzn1.application-oa2-client.demo&client_secret=lwa-secret"
            )
        );
    }

    #[test]
    fn the_authorization_ends_365_days_after_consent() {
        let body = r#"{"access_token":"Atza|1","refresh_token":"Atzr|R","token_type":"bearer","expires_in":3600}"#;
        let t = read_token(Purpose::TokenCreate, 200, body, &ctx(T, None, None)).unwrap();
        assert_eq!(t.access_expires_at, Some(T + 3_600_000));
        assert_eq!(t.refresh_expires_at, Some(T + 31_536_000_000));
        let later = T + 86_400_000;
        let r = read_token(
            Purpose::TokenRefresh,
            200,
            r#"{"access_token":"Atza|2","token_type":"bearer","expires_in":"3600"}"#,
            &ctx(later, None, Some(&t)),
        )
        .unwrap();
        assert_eq!(r.refresh, t.refresh);
        assert_eq!(r.refresh_expires_at, t.refresh_expires_at);
        assert_eq!(r.access_expires_at, Some(later + 3_600_000));
        // No refresh token at create: not refreshable.
        let n = read_token(
            Purpose::TokenCreate,
            200,
            r#"{"access_token":"A","expires_in":3600}"#,
            &ctx(T, None, None),
        )
        .unwrap();
        assert!(!n.can_refresh(T));
        // expires_in missing: malformed, retried.
        assert!(matches!(
            read_token(
                Purpose::TokenCreate,
                200,
                r#"{"access_token":"A"}"#,
                &ctx(T, None, None)
            ),
            Err(Outcome::Retry(_))
        ));
    }

    #[test]
    fn classifies_every_lwa_error() {
        let c = ctx(T, None, None);
        let err = |p, status, e: &str| {
            read_token(
                p,
                status,
                &format!(r#"{{"error":"{e}","error_description":"d"}}"#),
                &c,
            )
            .unwrap_err()
        };
        use Purpose::{TokenCreate as C, TokenRefresh as R};
        assert!(matches!(
            err(C, 400, "invalid_grant"),
            Outcome::Rejected(Reason::PlatformRejected, _)
        ));
        assert!(matches!(
            err(R, 400, "invalid_grant"),
            Outcome::Rejected(Reason::RefreshRejected, _)
        ));
        assert!(matches!(
            err(C, 400, "access_denied"),
            Outcome::Rejected(Reason::Denied, _)
        ));
        assert!(matches!(
            err(R, 400, "access_denied"),
            Outcome::Rejected(Reason::RefreshRejected, _)
        ));
        for e in [
            "invalid_client",
            "unauthorized_client",
            "invalid_request",
            "invalid_scope",
            "unsupported_grant_type",
            "other",
        ] {
            assert!(matches!(err(C, 401, e), Outcome::HostBroken(_)), "{e}");
            assert!(matches!(err(R, 400, e), Outcome::HostBroken(_)), "{e}");
        }
        for e in ["server_error", "temporarily_unavailable"] {
            assert!(matches!(err(R, 400, e), Outcome::Retry(_)), "{e}");
        }
        for status in [429, 500, 503] {
            assert!(matches!(err(C, status, "invalid_grant"), Outcome::Retry(_)));
        }
        assert!(matches!(read_token(C, 200, "", &c), Err(Outcome::Retry(_))));
        assert!(matches!(
            read_token(C, 400, "{}", &c),
            Err(Outcome::HostBroken(_))
        ));
        assert!(matches!(
            read_token(C, 200, "{}", &c),
            Err(Outcome::HostBroken(_))
        ));
    }

    #[test]
    fn the_entry_is_checked_by_field() {
        let entry = |v: serde_json::Value| -> AppEntry { serde_json::from_value(v).unwrap() };
        let ok = serde_json::json!({"app_key": "cid", "app_secret": "lwa-secret", "application_id": "amzn1.sp.solution.x", "redirect_uri": "https://h.example/cb", "seller_central_url": "https://sellercentral-europe.amazon.com/", "draft": true});
        let p = profile("amazon_sp", &entry(ok.clone())).unwrap();
        assert_eq!(p.code_ttl_s(), 300);
        let url = p.platform().authorize_url(&UrlArgs {
            nonce: "n",
            seller_id: None,
            pkce_challenge: None,
            now: 0,
        });
        assert!(
            url.starts_with("https://sellercentral-europe.amazon.com/apps/authorize/consent?application_id=amzn1.sp.solution.x&state=n&"),
            "{url}"
        );
        assert!(url.ends_with("&version=beta"));
        assert!(!format!("{p:?}").contains("lwa-secret"));
        let mut missing = ok.clone();
        missing.as_object_mut().unwrap().remove("application_id");
        let e = profile("amazon_sp", &entry(missing))
            .unwrap_err()
            .to_string();
        assert!(e.contains("apps.amazon_sp.application_id"), "{e}");
        let mut bad = ok;
        bad["draft"] = serde_json::json!("yes");
        let e = profile("amazon_sp", &entry(bad)).unwrap_err().to_string();
        assert!(
            e.contains("apps.amazon_sp.draft") && !e.contains("yes"),
            "{e}"
        );
    }
}
