//! RFC 6749 authorization-code flow for host-defined `oauth2` platforms:
//! authorize URL (with PKCE S256, RFC 7636), token request
//! (`grant_type=authorization_code`), refresh (`grant_type=refresh_token`),
//! client authentication `client_secret_post` or `client_secret_basic`
//! (RFC 6749 §2.3.1), and the classification of the token endpoint's
//! answers (§5.1, §5.2).
//!
//! What does not live here: when to refresh, retries, claims (the engine's).
//!
//! Also here: its settings (`Oauth2App`, `Oauth2Platform`) and the reading of a host's oauth2 platform, and its `Platform` implementation.

use super::{
    Ctx, Malformed, Outcome, Outgoing, Tokens, access_lifetime_s, describe, expiry_after,
    json_answer, lifetime_s,
};
use crate::config::{
    AppEntry, Profile, Timing, app_entry, rate, required_secret, required_text, url_field,
};
use crate::encoding::{append_query, form, pct};
use crate::error::ConfigError;
use crate::message::{Purpose, Reason};
use crate::platform::Kind;
use crate::secret::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `authorize_url?response_type=code&client_id=…&redirect_uri=…&scope=…&state=…[&code_challenge=…&code_challenge_method=S256]` plus extra parameters.
pub fn authorize_url(app: &Oauth2App, nonce: &str, challenge: Option<&str>) -> String {
    let mut p: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &app.app_key),
        ("redirect_uri", &app.redirect_uri),
    ];
    if let Some(s) = &app.scope {
        p.push(("scope", s));
    }
    p.push(("state", nonce));
    if let Some(c) = challenge {
        p.push(("code_challenge", c));
        p.push(("code_challenge_method", "S256"));
    }
    for (k, v) in &app.extra_authorize_params {
        p.push((k, v));
    }
    append_query(&app.authorize_url, p)
}

/// The token request (create or refresh).
pub fn build(app: &Oauth2App, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
    let mut p: Vec<(&str, &str)> = Vec::with_capacity(6);
    match purpose {
        Purpose::TokenRefresh => {
            p.push(("grant_type", "refresh_token"));
            let rt = ctx
                .tokens
                .and_then(|t| t.refresh.as_ref())
                .map(Secret::expose);
            p.push(("refresh_token", rt.unwrap_or("")));
        }
        _ => {
            p.push(("grant_type", "authorization_code"));
            p.push(("code", ctx.code.unwrap_or("")));
            p.push(("redirect_uri", &app.redirect_uri));
            if let Some(v) = ctx.pkce_verifier {
                p.push(("code_verifier", v));
            }
        }
    }
    let mut headers = vec![
        (
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("Accept".to_owned(), "application/json".to_owned()),
    ];
    match app.client_auth {
        ClientAuth::ClientSecretPost => {
            p.push(("client_id", &app.app_key));
            p.push(("client_secret", app.app_secret.expose()));
        }
        ClientAuth::ClientSecretBasic => {
            // RFC 6749 §2.3.1: each part form-encoded, then Basic.
            let user = format!("{}:{}", pct(&app.app_key), pct(app.app_secret.expose()));
            headers.push((
                "Authorization".to_owned(),
                format!("Basic {}", STANDARD.encode(user)),
            ));
        }
    }
    Outgoing {
        method: "POST",
        url: app.token_url.clone(),
        headers,
        body: Some(form(p)),
    }
}

/// The part every RFC 6749 token answer (§5.1 / §5.2) is read by, for the
/// kinds that speak it (`oauth2`, Shopify, Amazon's LWA): the JSON (or why
/// to retry), an `error` code given to `classify` with the answer
/// (`None`: not an error after all), a non-2xx answer without one (our
/// setup), and the non-empty `access_token`. `who` names the endpoint in
/// messages.
pub(crate) fn answer(
    status: u16,
    body: &str,
    who: &str,
    classify: impl FnOnce(&str, &Value) -> Option<Outcome>,
) -> Result<(Value, Secret), Outcome> {
    let v = json_answer(status, body, who)?;
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        if let Some(outcome) = classify(err, &v) {
            return Err(outcome);
        }
    }
    if !(200..300).contains(&status) {
        return Err(Outcome::HostBroken(describe(
            status,
            &format!("{who} refused without an error code"),
        )));
    }
    let access = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Outcome::HostBroken(describe(
                status,
                &format!("{who} answer has no access_token"),
            ))
        })?;
    let access = Secret::new(access);
    Ok((v, access))
}

/// Reads a token endpoint answer (RFC 6749 §5.1 / §5.2).
pub fn read_token(
    purpose: Purpose,
    status: u16,
    body: &str,
    ctx: &Ctx<'_>,
) -> Result<Tokens, Outcome> {
    let (v, access) = answer(status, body, "token endpoint", |err, _| {
        Some(classify_error(purpose, status, err))
    })?;
    let now = ctx.now;
    let malformed = |field: &str, e: Malformed| {
        Outcome::Retry(describe(
            status,
            &format!("token endpoint answer: {field} {e}"),
        ))
    };
    // RFC 6749 §5.1: `expires_in` is only RECOMMENDED; without it the token
    // has no known expiry. When present it must be a lifetime of 1 s or more.
    let expires_in =
        access_lifetime_s(v.get("expires_in")).map_err(|e| malformed("expires_in", e))?;
    let new_refresh = v
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let refresh_in =
        lifetime_s(v.get("refresh_expires_in")).map_err(|e| malformed("refresh_expires_in", e))?;
    let old = ctx.tokens.filter(|_| purpose == Purpose::TokenRefresh);
    let refresh = new_refresh
        .map(Secret::new)
        .or_else(|| old.and_then(|t| t.refresh.clone()));
    let refresh_expires_at = match refresh_in {
        Some(s) if s > 0 => Some(expiry_after(now, s)),
        _ if new_refresh.is_none() => old.and_then(|t| t.refresh_expires_at),
        _ => None,
    };
    Ok(Tokens {
        access,
        refreshable: refresh.is_some() && refresh_in != Some(0),
        refresh,
        access_expires_at: expires_in.map(|s| expiry_after(now, s)),
        refresh_expires_at,
        obtained_at: now,
        sellers: old.and_then(|t| t.sellers.clone()),
    })
}

/// RFC 6749 §5.2 error codes.
pub fn classify_error(purpose: Purpose, status: u16, code: &str) -> Outcome {
    let msg = describe(status, &format!("token endpoint error {code}"));
    match code {
        "invalid_grant" => Outcome::Rejected(
            if purpose == Purpose::TokenRefresh {
                Reason::RefreshRejected
            } else {
                Reason::PlatformRejected
            },
            msg,
        ),
        "temporarily_unavailable" | "server_error" | "slow_down" => Outcome::Retry(msg),
        "access_denied" => Outcome::Rejected(
            if purpose == Purpose::TokenRefresh {
                Reason::RefreshRejected
            } else {
                Reason::Denied
            },
            msg,
        ),
        // invalid_request, invalid_client, unauthorized_client,
        // unsupported_grant_type, invalid_scope and anything unknown: our setup.
        _ => Outcome::HostBroken(msg),
    }
}

impl super::Platform for Oauth2App {
    fn flow(&self) -> super::Flow {
        super::Flow::Redirect
    }
    fn authorize_url(&self, a: &super::UrlArgs<'_>) -> String {
        authorize_url(self, a.nonce, a.pkce_challenge)
    }
    fn uses_pkce(&self) -> bool {
        self.pkce
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

/// A host's RFC 6749 platform (`kind: "oauth2"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oauth2Platform {
    /// Authorization endpoint.
    pub authorize_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Client authentication at the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// PKCE S256 (default on).
    #[serde(default = "yes")]
    pub pkce: bool,
    /// Extra authorize parameters, added in name order.
    #[serde(default)]
    pub extra_authorize_params: BTreeMap<String, String>,
    /// Validity of a code (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_ttl_s: Option<u64>,
    /// Refresh lead of this platform (default `timing.refresh_lead_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_lead_s: Option<u64>,
    /// Whether `authorize` needs a seller_id.
    #[serde(default)]
    pub seller_id_required: bool,
    /// At most this many requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_s: Option<u32>,
}

fn yes() -> bool {
    true
}

/// Client authentication at an oauth2 token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    #[default]
    ClientSecretPost,
    /// HTTP Basic.
    ClientSecretBasic,
}

/// oauth2 settings.
#[derive(Debug, Clone)]
pub struct Oauth2App {
    /// Client id.
    pub app_key: String,
    /// Client secret.
    pub app_secret: Secret,
    /// Registered callback.
    pub redirect_uri: String,
    /// Authorization endpoint.
    pub authorize_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Scope.
    pub scope: Option<String>,
    /// Client authentication.
    pub client_auth: ClientAuth,
    /// PKCE S256.
    pub pkce: bool,
    /// Extra authorize parameters.
    pub extra_authorize_params: BTreeMap<String, String>,
}

/// The fields its `apps` entry takes.
pub(crate) fn entry_fields() -> &'static [&'static str] {
    crate::typed::fields_of::<Entry>()
}

/// The `apps` entry of a host's oauth2 platform: only these fields apply.
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
}

/// Reads a host's oauth2 platform (`platforms.{name}`) with its `apps` entry.
pub(crate) fn profile(
    name: &str,
    app: &AppEntry,
    platform: &Oauth2Platform,
    t: &Timing,
) -> Result<Profile, ConfigError> {
    let at = |f: &str| format!("apps.{name}.{f}");
    let Oauth2Platform {
        authorize_url,
        token_url,
        scope,
        client_auth,
        pkce,
        extra_authorize_params,
        code_ttl_s,
        refresh_lead_s,
        seller_id_required,
        rate_limit_per_s,
    } = platform;
    let app: Entry = app_entry(app, name)?;
    let pat = |f: &str| format!("platforms.{name}.{f}");
    let mut p = Profile::new(
        name,
        Kind::new(Oauth2App {
            app_key: required_text(&app.app_key, &at("app_key"))?,
            app_secret: required_secret(&app.app_secret, &at("app_secret"))?,
            redirect_uri: url_field(app.redirect_uri.as_deref(), &at("redirect_uri"))?,
            authorize_url: url_field(Some(authorize_url), &pat("authorize_url"))?,
            token_url: url_field(Some(token_url), &pat("token_url"))?,
            scope: app.scope.clone().or_else(|| scope.clone()),
            client_auth: *client_auth,
            pkce: *pkce,
            extra_authorize_params: extra_authorize_params.clone(),
        }),
        rate(*rate_limit_per_s, &pat("rate_limit_per_s"))?,
        *seller_id_required,
    );
    p.code_ttl_s = code_ttl_s.unwrap_or(600);
    if p.code_ttl_s == 0 {
        return Err(ConfigError::new(pat("code_ttl_s"), "must be at least 1"));
    }
    if let Some(l) = refresh_lead_s {
        p.refresh_lead_s = *l;
    } else {
        p.refresh_lead_s = t.refresh_lead_s;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn app(auth: ClientAuth) -> Oauth2App {
        Oauth2App {
            app_key: "cid".into(),
            app_secret: Secret::new("s3cr:et"),
            redirect_uri: "https://host.example/cb".into(),
            authorize_url: "https://as.example/authorize?tenant=1".into(),
            token_url: "https://as.example/token".into(),
            scope: Some("read write".into()),
            client_auth: auth,
            pkce: true,
            extra_authorize_params: BTreeMap::from([("prompt".into(), "consent".into())]),
        }
    }

    fn ctx(now: i64) -> Ctx<'static> {
        Ctx {
            now,
            seller_id: None,
            code: Some("c/1"),
            pkce_verifier: Some("v"),
            tokens: None,
            key: None,
            learned: &[],
        }
    }

    #[test]
    fn authorize_url_has_every_parameter() {
        let u = authorize_url(&app(ClientAuth::ClientSecretPost), "1_ab", Some("CH"));
        assert_eq!(
            u,
            "https://as.example/authorize?tenant=1&response_type=code&client_id=cid&redirect_uri=https%3A%2F%2Fhost.example%2Fcb&scope=read%20write&state=1_ab&code_challenge=CH&code_challenge_method=S256&prompt=consent"
        );
    }

    #[test]
    fn token_request_post_and_basic() {
        let r = build(
            &app(ClientAuth::ClientSecretPost),
            Purpose::TokenCreate,
            &ctx(0),
        );
        assert_eq!(
            r.body.as_deref(),
            Some(
                "grant_type=authorization_code&code=c%2F1&redirect_uri=https%3A%2F%2Fhost.example%2Fcb&code_verifier=v&client_id=cid&client_secret=s3cr%3Aet"
            )
        );
        let r = build(
            &app(ClientAuth::ClientSecretBasic),
            Purpose::TokenCreate,
            &ctx(0),
        );
        let auth = r
            .headers
            .iter()
            .find(|(n, _)| n == "Authorization")
            .unwrap();
        assert_eq!(
            auth.1,
            format!("Basic {}", STANDARD.encode("cid:s3cr%3Aet"))
        );
        assert!(!r.body.unwrap().contains("client_secret"));
    }

    #[test]
    fn reads_tokens_and_numeric_strings() {
        let t = read_token(
            Purpose::TokenCreate,
            200,
            r#"{"access_token":"A","refresh_token":"R","expires_in":"3600","token_type":"bearer"}"#,
            &ctx(1000),
        )
        .unwrap();
        assert_eq!(t.access_expires_at, Some(1000 + 3_600_000));
        assert!(t.refreshable && t.refresh_expires_at.is_none());
    }

    #[test]
    fn classifies_errors() {
        let c = ctx(0);
        assert!(matches!(
            read_token(
                Purpose::TokenRefresh,
                400,
                r#"{"error":"invalid_grant"}"#,
                &c
            ),
            Err(Outcome::Rejected(Reason::RefreshRejected, _))
        ));
        assert!(matches!(
            read_token(
                Purpose::TokenCreate,
                400,
                r#"{"error":"invalid_grant"}"#,
                &c
            ),
            Err(Outcome::Rejected(Reason::PlatformRejected, _))
        ));
        assert!(matches!(
            read_token(Purpose::TokenCreate, 503, "", &c),
            Err(Outcome::Retry(_))
        ));
        assert!(matches!(
            read_token(Purpose::TokenCreate, 429, "", &c),
            Err(Outcome::Retry(_))
        ));
        assert!(matches!(
            read_token(
                Purpose::TokenCreate,
                401,
                r#"{"error":"invalid_client"}"#,
                &c
            ),
            Err(Outcome::HostBroken(_))
        ));
    }
}
