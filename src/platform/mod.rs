//! The platform layer: one file per protocol behind one set of functions the
//! engine calls. Each protocol builds its requests from a [`Ctx`] (never from
//! the engine's internals), reads the platform's answers into a small closed
//! set of outcomes, and classifies every error code it knows in one place.
//!
//! - `oauth2`: RFC 6749 code flow with PKCE (host-defined platforms).
//! - `key`: KEY credentials, with an optional verification request.
//! - `iop`: Taobao Taiwan and Lazada (seed 003).
//! - `shopline`: Shopline's signed OAuth.
//! - `checker`: Taobao through a status-check service (seeds 001, 002).
//!
//! What does not live here: state, timers, claims, retries (the engine's),
//! and anything about the C ABI.

pub mod checker;
pub mod iop;
pub mod key;
pub mod oauth2;
pub mod shopline;

use crate::config::{Profile, ProfileKind};
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

/// KEY credentials handed in by the business party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Why a token exchange did not give tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Try again later (transport, 429, 5xx, a rate-limit code).
    Retry(String),
    /// The platform said no: the attempt fails / the store expires with this reason.
    Rejected(Reason, String),
    /// Our request was wrong (a bug or bad setup): `system_error`.
    OurBug(String),
}

/// What a status check said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// `subAuthorize`.
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
    /// Try again later.
    Retry(String),
    /// The host's own account or setup is broken.
    HostBroken(String),
    /// This store's parameters are bad.
    BadParam(String),
}

/// What a KEY verification said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The credentials work.
    Valid,
    /// The platform refused them.
    Invalid,
    /// Try again later.
    Retry,
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
}

/// The authorize URL of a URL attempt.
pub fn authorize_url(
    profile: &Profile,
    nonce: &str,
    seller_id: Option<&str>,
    pkce_challenge: Option<&str>,
) -> String {
    match &profile.kind {
        ProfileKind::Iop(app) => iop::authorize_url(app, nonce),
        ProfileKind::Shopline(app) => shopline::authorize_url(app, seller_id.unwrap_or(""), nonce),
        ProfileKind::Oauth2(app) => oauth2::authorize_url(app, nonce, pkce_challenge),
        ProfileKind::Checker(app) => checker::auth_page(app, seller_id.unwrap_or("")),
        ProfileKind::Key(_) => String::new(),
    }
}

/// Whether URL attempts of this platform go through a seller redirect with a
/// state nonce (false: the checker polls instead).
pub fn uses_redirect(profile: &Profile) -> bool {
    matches!(
        profile.kind,
        ProfileKind::Iop(_) | ProfileKind::Shopline(_) | ProfileKind::Oauth2(_)
    )
}

/// Whether the profile uses PKCE.
pub fn uses_pkce(profile: &Profile) -> bool {
    matches!(&profile.kind, ProfileKind::Oauth2(a) if a.pkce)
}

/// The redirect parameter that carries the nonce.
pub fn nonce_param(profile: &Profile) -> &'static str {
    match profile.kind {
        ProfileKind::Shopline(_) => "customField",
        _ => "state",
    }
}

/// Platform-specific checks of a redirect (Shopline's signature and handle).
pub fn check_redirect(
    profile: &Profile,
    params: &BTreeMap<String, String>,
    seller_id: Option<&str>,
) -> Result<(), &'static str> {
    match &profile.kind {
        ProfileKind::Shopline(app) => {
            shopline::check_redirect(app, params, seller_id.unwrap_or(""))
        }
        _ => Ok(()),
    }
}

/// Builds the request of `purpose`.
pub fn build(profile: &Profile, purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
    match (&profile.kind, purpose) {
        (ProfileKind::Iop(app), _) => iop::build(app, purpose, ctx),
        (ProfileKind::Shopline(app), _) => shopline::build(app, purpose, ctx),
        (ProfileKind::Oauth2(app), _) => oauth2::build(app, purpose, ctx),
        (ProfileKind::Checker(app), _) => checker::build(app, ctx),
        (ProfileKind::Key(app), _) => key::build(app, ctx),
    }
}

/// Reads a token create/refresh answer.
pub fn read_token(
    profile: &Profile,
    purpose: Purpose,
    status: u16,
    body: &str,
    ctx: &Ctx<'_>,
) -> Result<Tokens, Failure> {
    match &profile.kind {
        ProfileKind::Iop(_) => iop::read_token(purpose, status, body, ctx),
        ProfileKind::Shopline(_) => shopline::read_token(purpose, status, body, ctx),
        ProfileKind::Oauth2(_) => oauth2::read_token(purpose, status, body, ctx),
        _ => Err(Failure::OurBug("platform has no token endpoint".into())),
    }
}

/// Reads a status-check answer.
pub fn read_check(profile: &Profile, status: u16, body: &str) -> CheckOutcome {
    match &profile.kind {
        ProfileKind::Checker(app) => checker::read(app.service, status, body),
        _ => CheckOutcome::HostBroken("platform has no status check".into()),
    }
}

/// Reads a KEY verification answer.
pub fn read_verify(profile: &Profile, status: u16) -> VerifyOutcome {
    match &profile.kind {
        ProfileKind::Key(app) => key::read(app, status),
        _ => VerifyOutcome::Invalid,
    }
}

/// Whether a platform has a verification request for KEY.
pub fn verifies_key(profile: &Profile) -> bool {
    matches!(&profile.kind, ProfileKind::Key(k) if k.verify.is_some())
}

/// Whether `status` is retryable by itself (429 or 5xx).
pub fn retryable_status(status: u16) -> bool {
    status == 429 || status >= 500
}

/// The JSON of a token endpoint's answer, or why to try again: HTTP 429 or
/// 5xx, or a body that is not JSON (a proxy's error page). `who` names the
/// platform in the message.
pub(crate) fn json_answer(
    status: u16,
    body: &str,
    who: &str,
) -> Result<serde_json::Value, Failure> {
    if retryable_status(status) {
        return Err(Failure::Retry(describe(
            status,
            &format!("{who} unavailable"),
        )));
    }
    serde_json::from_str(body)
        .map_err(|_| Failure::Retry(describe(status, &format!("{who} answered no JSON"))))
}

/// Reads a JSON number or numeric string as i64.
pub(crate) fn json_i64(v: Option<&serde_json::Value>) -> Option<i64> {
    match v? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
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
