//! The messages that cross the engine's boundary: [`Input`]s the host hands
//! in, the [`Reply`] to each, and the [`Output`]s it drains. Their serde form
//! is exactly the JSON of spec §3; the C ABI and the bindings only move these
//! texts. Also the closed vocabularies ([`State`], [`Reason`], [`Purpose`]) and
//! the store view.
//!
//! What does not live here: validation (see `validate`), behaviour (see
//! `engine`), the JSON entry point's error classification (see `json`).

use crate::error::Refusal;
use crate::secret::Secret;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// Formats a time as RFC 3339 UTC with milliseconds and `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    let mut buf = [0u8; 24];
    match rfc3339_in(t, &mut buf) {
        Some(text) => text.to_owned(),
        None => t.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}

/// [`rfc3339`] written into `buf`, for the times the engine writes (years
/// 0000–9999, no leap second); None for any other, which chrono formats.
fn rfc3339_in(t: DateTime<Utc>, buf: &mut [u8; 24]) -> Option<&str> {
    use chrono::{Datelike, Timelike};
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut put = |at: usize, v: u32, digits: usize| {
        let mut v = v;
        for i in (0..digits).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    put(20, nanos / 1_000_000, 3);
    for (at, b) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        buf[at] = b;
    }
    std::str::from_utf8(buf).ok()
}

/// serde helpers for times in the spec's format.
pub mod time_format {
    use super::*;
    use serde::Deserializer;

    /// Serializes a time as RFC 3339 with milliseconds and `Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 24];
        match rfc3339_in(*t, &mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&rfc3339(*t)),
        }
    }
    /// Parses any RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
    /// The same for `Option`.
    pub mod option {
        use super::*;
        /// Serializes `None` as null.
        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }
        /// Parses null or an RFC 3339 time.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| {
                DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
        }
    }
}

// ---------------------------------------------------------------- vocab

/// A store's lifecycle state (spec §2). `Removed` only appears as the `to` of
/// the last transition of a removed store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Registered, no attempt yet.
    Unauthorized,
    /// Waiting for the seller.
    Requested,
    /// Waiting for the platform (token exchange or KEY verification).
    Pending,
    /// Credentials valid now.
    Authorized,
    /// Credentials no longer valid and not refreshable.
    Expired,
    /// The attempt failed.
    Failed,
    /// Withdrawn.
    Revoked,
    /// Deleted (transition target only).
    Removed,
}

impl State {
    /// The seed 001/002 status wording.
    pub fn status(self) -> &'static str {
        if self == State::Authorized {
            "subAuthorize"
        } else {
            "unAuthorize"
        }
    }
    /// Whether a store in this state holds its claims.
    pub fn holds_claims(self) -> bool {
        matches!(
            self,
            State::Requested | State::Pending | State::Authorized | State::Expired
        )
    }
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unauthorized => "unauthorized",
            State::Requested => "requested",
            State::Pending => "pending",
            State::Authorized => "authorized",
            State::Expired => "expired",
            State::Failed => "failed",
            State::Revoked => "revoked",
            State::Removed => "removed",
        }
    }
}

/// Why a store left its state. A closed list (spec §3, `last_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// `request_ttl_s` passed while `requested`.
    Timeout,
    /// The seller or platform refused at the redirect.
    Denied,
    /// The code's validity passed before the exchange succeeded.
    CodeExpired,
    /// A learned seller is bound to another store.
    SellerIdTaken,
    /// The platform's sellers do not contain the requested one.
    SellerMismatch,
    /// The platform refused the exchange or the KEY.
    PlatformRejected,
    /// The platform refused the refresh.
    RefreshRejected,
    /// No successful refresh before the access token expired.
    TokenExpired,
    /// The host reported the token refused and no refresh was possible.
    TokenRejected,
    /// KEY verification gave up.
    VerifyFailed,
    /// A status-check service says the seller no longer authorizes.
    SellerUnauthorized,
    /// The host's own account or setup is broken, or an internal error.
    SystemError,
    /// A notification could not be delivered within 24 h.
    NotifyAbandoned,
}

impl Reason {
    /// The snake_case name (also the `auth_fail_reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Denied => "denied",
            Reason::CodeExpired => "code_expired",
            Reason::SellerIdTaken => "seller_id_taken",
            Reason::SellerMismatch => "seller_mismatch",
            Reason::PlatformRejected => "platform_rejected",
            Reason::RefreshRejected => "refresh_rejected",
            Reason::TokenExpired => "token_expired",
            Reason::TokenRejected => "token_rejected",
            Reason::VerifyFailed => "verify_failed",
            Reason::SellerUnauthorized => "seller_unauthorized",
            Reason::SystemError => "system_error",
            Reason::NotifyAbandoned => "notify_abandoned",
        }
    }
}

/// What an outgoing HTTP request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Authorization code → tokens.
    TokenCreate,
    /// Refresh of an access token.
    TokenRefresh,
    /// A status-check service poll or re-check.
    StatusCheck,
    /// Verification of KEY credentials.
    KeyVerify,
    /// Delivery of a notification to the business party.
    Notify,
}

impl Purpose {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::TokenCreate => "token_create",
            Purpose::TokenRefresh => "token_refresh",
            Purpose::StatusCheck => "status_check",
            Purpose::KeyVerify => "key_verify",
            Purpose::Notify => "notify",
        }
    }
}

/// `URL` or `KEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthType {
    /// The seller authorizes through a link.
    #[serde(rename = "URL")]
    Url,
    /// The business party hands in credentials.
    #[serde(rename = "KEY")]
    Key,
}

// ---------------------------------------------------------------- inputs

/// One input to [`crate::Engine::handle`]. The JSON form has a `type` field
/// with the snake_case variant name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// Create a store in `unauthorized`.
    RegisterStore(RegisterStore),
    /// Delete a store.
    RemoveStore(StoreRef),
    /// Seed 000's authorize request.
    Authorize(Authorize),
    /// The seller's browser came back to a platform's callback URL.
    OauthRedirect(OauthRedirect),
    /// The answer to an `http_request` output.
    HttpResponse(HttpResponse),
    /// The transport could not get an answer.
    HttpFailure(HttpFailure),
    /// The host's API call was refused for a bad token.
    TokenRejected(StoreRef),
    /// Withdraw the authorization.
    Revoke(StoreRef),
    /// Read the store's view.
    Query(StoreRef),
    /// Read the store's credentials.
    Credentials(StoreRef),
}

impl Input {
    /// The `type` name of this input.
    pub fn type_name(&self) -> &'static str {
        match self {
            Input::RegisterStore(_) => "register_store",
            Input::RemoveStore(_) => "remove_store",
            Input::Authorize(_) => "authorize",
            Input::OauthRedirect(_) => "oauth_redirect",
            Input::HttpResponse(_) => "http_response",
            Input::HttpFailure(_) => "http_failure",
            Input::TokenRejected(_) => "token_rejected",
            Input::Revoke(_) => "revoke",
            Input::Query(_) => "query",
            Input::Credentials(_) => "credentials",
        }
    }
}

/// `client_id` + `store_id`. A missing field reads as empty (and is refused
/// as `required`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoreRef {
    /// The business party.
    #[serde(default)]
    pub client_id: String,
    /// The store.
    #[serde(default)]
    pub store_id: String,
}

/// `register_store`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RegisterStore {
    /// The business party (1–64 chars).
    #[serde(default)]
    pub client_id: String,
    /// The store (1–64 chars, unique in the engine).
    #[serde(default)]
    pub store_id: String,
    /// A platform of the configuration.
    #[serde(default)]
    pub platform: String,
    /// Where results are POSTed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    /// Key of the notification signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_secret: Option<Secret>,
}

/// Seed 000's `auth_info`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuthInfo {
    /// A token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// An API key (paired with `api_secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// An API secret (paired with `api_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_secret: Option<Secret>,
}

/// Seed 000's authorize request.
///
/// `auth_info` and `redirect_url` apply to one `auth_type` each and are
/// ignored for the other (spec §4), type included: they are held as
/// [`Lenient`] and typed by validation only where they apply, in the spec's
/// check order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Authorize {
    /// The business party.
    #[serde(default)]
    pub client_id: String,
    /// The store.
    #[serde(default)]
    pub store_id: String,
    /// The platform's seller (shop) id, where given or required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<String>,
    /// `URL` or `KEY` (kept as text so that a wrong value is refused in the
    /// spec's check order).
    #[serde(default)]
    pub auth_type: String,
    /// Credentials for `KEY` (ignored for `URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_info: Option<Lenient<AuthInfo>>,
    /// Where the seller's browser goes after a `URL` authorization (ignored
    /// for `KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<Lenient<String>>,
}

/// A field whose type is checked only where it applies: `Typed` when the
/// JSON value has the type `T`, else the value as it came (`Untyped`), so
/// that an input where the field is ignored is not refused for its type,
/// and one where it applies is refused naming the field, at the right step.
/// `Debug` never prints an untyped value (it may hold a secret).
#[derive(Clone, PartialEq, Eq)]
pub enum Lenient<T> {
    /// The value, of the expected type.
    Typed(T),
    /// A value of another type (never `null`: an absent or null field is
    /// `None` around this).
    Untyped(serde_json::Value),
}

impl<T> From<T> for Lenient<T> {
    fn from(v: T) -> Self {
        Lenient::Typed(v)
    }
}

impl<T> Lenient<T> {
    /// The typed value, if it has the type.
    pub fn typed(&self) -> Option<&T> {
        match self {
            Lenient::Typed(t) => Some(t),
            Lenient::Untyped(_) => None,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Lenient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lenient::Typed(t) => f.debug_tuple("Typed").field(t).finish(),
            Lenient::Untyped(v) => write!(f, "Untyped({})", crate::typed::type_word(v)),
        }
    }
}

impl<T: Serialize> Serialize for Lenient<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Lenient::Typed(t) => t.serialize(s),
            Lenient::Untyped(v) => v.serialize(s),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(match T::deserialize(&v) {
            Ok(t) => Lenient::Typed(t),
            Err(_) => Lenient::Untyped(v),
        })
    }
}

/// `oauth_redirect`: `query` (raw) or `params` (an object of strings).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OauthRedirect {
    /// The platform whose callback URL was hit.
    #[serde(default)]
    pub platform: String,
    /// The raw query string (without `?`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The parameters, already decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, String>>,
}

impl fmt::Debug for OauthRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The code is a credential: print parameter names only.
        let names: Vec<String> = match (&self.query, &self.params) {
            (Some(q), _) => crate::encoding::parse_query(q).into_keys().collect(),
            (None, Some(p)) => p.keys().cloned().collect(),
            (None, None) => Vec::new(),
        };
        f.debug_struct("OauthRedirect")
            .field("platform", &self.platform)
            .field("param_names", &names)
            .finish()
    }
}

/// `http_response`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The `request_id` of the `http_request` output.
    #[serde(default)]
    pub request_id: String,
    /// HTTP status.
    #[serde(default)]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Response body text.
    #[serde(default)]
    pub body: String,
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies carry tokens: never print them.
        f.debug_struct("HttpResponse")
            .field("request_id", &self.request_id)
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// `http_failure`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpFailure {
    /// The `request_id` of the `http_request` output.
    #[serde(default)]
    pub request_id: String,
    /// What went wrong, in words.
    #[serde(default)]
    pub error: String,
}

impl fmt::Debug for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A transport's error text often quotes the request URL, and some
        // platforms' token URLs carry the app secret (TikTok Shop): its
        // length only.
        f.debug_struct("HttpFailure")
            .field("request_id", &self.request_id)
            .field("error_len", &self.error.len())
            .finish()
    }
}

// ---------------------------------------------------------------- replies

/// What `handle` answers: the data of a success, or the refusal.
pub type Reply = Result<ReplyData, Refusal>;

/// The `data` of a successful reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ReplyData {
    /// `{}`.
    Empty {},
    /// `{"auth_url": …}` for a URL authorize.
    AuthUrl {
        /// Where to send the seller.
        auth_url: String,
    },
    /// `{client_id, store_id, attempt}` for `oauth_redirect`.
    Redirected {
        /// The business party.
        client_id: String,
        /// The store.
        store_id: String,
        /// The attempt the redirect belonged to.
        attempt: u32,
    },
    /// The store view for `query`.
    Store(Box<StoreView>),
    /// What to call the platform with, for `credentials`.
    Credentials(CredentialsView),
}

impl ReplyData {
    /// `{}`.
    pub fn empty() -> Self {
        ReplyData::Empty {}
    }
}

/// The reply envelope of seed 000 as JSON text.
pub fn reply_json(reply: &Reply) -> String {
    #[derive(Serialize)]
    struct Ok<'a> {
        code: u32,
        message: &'static str,
        data: &'a ReplyData,
    }
    #[derive(Serialize)]
    struct Err {
        code: u32,
        message: String,
        data: (),
        kind: &'static str,
    }
    if let Result::Ok(ReplyData::Empty {}) = reply {
        const EMPTY: &str = r#"{"code":200,"message":"SUCCESS","data":{}}"#;
        // Room for the NUL the C ABI appends.
        let mut s = String::with_capacity(EMPTY.len() + 1);
        s.push_str(EMPTY);
        return s;
    }
    // One allocation for the usual envelope (serde_json's own starts at
    // 128 bytes and doubles).
    let mut v = Vec::with_capacity(256);
    match reply {
        Result::Ok(data) => serde_json::to_writer(
            &mut v,
            &Ok {
                code: 200,
                message: "SUCCESS",
                data,
            },
        ),
        Result::Err(r) => serde_json::to_writer(
            &mut v,
            &Err {
                code: r.code(),
                message: r.to_string(),
                data: (),
                kind: r.kind(),
            },
        ),
    }
    .expect("reply serializes");
    String::from_utf8(v).expect("serde_json writes UTF-8")
}

/// A claim a store holds (spec §2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Claim {
    /// A seller of a platform (the id as the engine compares it).
    Seller {
        /// The platform.
        platform: String,
        /// The seller id (lower case for Shopline handles).
        seller_id: String,
    },
    /// A credential set, by keyed fingerprint.
    Credential {
        /// HMAC fingerprint under the engine secret.
        fingerprint: String,
    },
}

/// `last_error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// One of the closed list.
    pub reason: Reason,
    /// Human words (never a secret).
    pub message: String,
}

/// The store view of a `query` reply. Never a secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreView {
    /// The business party.
    pub client_id: String,
    /// The store.
    pub store_id: String,
    /// Its platform.
    pub platform: String,
    /// Lifecycle state.
    pub state: State,
    /// `subAuthorize` / `unAuthorize`.
    pub status: &'static str,
    /// Current attempt number (0 before the first).
    pub attempt: u32,
    /// `URL`/`KEY` of the current attempt.
    pub auth_type: Option<AuthType>,
    /// Sellers the store is bound to (requested and learned).
    pub seller_ids: Vec<String>,
    /// The seller's link while `requested`.
    pub auth_url: Option<String>,
    /// When the access token expires.
    #[serde(with = "time_format::option")]
    pub access_expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires.
    #[serde(with = "time_format::option")]
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Sum of metered costs.
    pub cost_total: i64,
    /// Why it last went wrong.
    pub last_error: Option<LastError>,
    /// Its claims, sorted.
    pub claims: Vec<Claim>,
}

/// The `credentials` reply.
#[derive(Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CredentialsView {
    /// URL flows with a token.
    Token {
        /// The access token.
        access_token: Secret,
        /// Its expiry.
        #[serde(with = "time_format::option")]
        access_expires_at: Option<DateTime<Utc>>,
        /// The sellers it acts for.
        seller_ids: Vec<String>,
    },
    /// KEY with a token.
    KeyToken {
        /// The token.
        token: Secret,
    },
    /// KEY with a pair.
    KeyPair {
        /// The key.
        api_key: Secret,
        /// The secret.
        api_secret: Secret,
    },
    /// Checker stores: the shop id to call the service with.
    Checker {
        /// The shop id.
        seller_id: String,
    },
}

impl fmt::Debug for CredentialsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialsView(***)")
    }
}

// ---------------------------------------------------------------- outputs

/// One queued effect (`poll_output`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// Send this and answer with `http_response` / `http_failure`.
    HttpRequest(HttpRequest),
    /// A store changed state.
    Transition(Transition),
    /// Send the seller's browser here.
    Redirect(Redirect),
}

/// An HTTP request the host must send.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// Unique for the engine's life (and across restores).
    pub request_id: String,
    /// The business party.
    pub client_id: String,
    /// The store.
    pub store_id: String,
    /// What it is for.
    pub purpose: Purpose,
    /// HTTP method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: Option<String>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers and bodies carry secrets, and so may a query: print shapes only.
        let url = self.url.split('?').next().unwrap_or("");
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("request_id", &self.request_id)
            .field("client_id", &self.client_id)
            .field("store_id", &self.store_id)
            .field("purpose", &self.purpose)
            .field("method", &self.method)
            .field("url", &url)
            .field("header_names", &names)
            .field("body_len", &self.body.as_ref().map(String::len))
            .finish()
    }
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Unique for the engine's life.
    pub event_id: String,
    /// Per store, from 1.
    pub seq: u64,
    /// The business party.
    pub client_id: String,
    /// The store.
    pub store_id: String,
    /// Old state.
    pub from: State,
    /// New state.
    pub to: State,
    /// The attempt it belongs to.
    pub attempt: u32,
    /// When.
    #[serde(with = "time_format")]
    pub at: DateTime<Utc>,
    /// Why (failures, expiries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Metered cost of the check that led here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<i64>,
}

/// Seed 000's redirect back to the business party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The business party.
    pub client_id: String,
    /// The store.
    pub store_id: String,
    /// The attempt.
    pub attempt: u32,
    /// Where to send the browser.
    pub location: String,
}

impl Output {
    /// The output as JSON text.
    pub fn to_json(&self) -> String {
        let mut v = Vec::with_capacity(256);
        self.write_json(&mut v);
        String::from_utf8(v).expect("serde_json writes UTF-8")
    }

    /// [`Output::to_json`] appended to `buf`.
    pub(crate) fn write_json(&self, buf: &mut Vec<u8>) {
        serde_json::to_writer(buf, self).expect("outputs serialize");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_as_chrono_does() {
        let chrono_form = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut ms: Vec<i64> = vec![
            0,
            1,
            999,
            1000,
            86_399_999,
            951_782_400_000,
            4_107_542_399_999,
        ];
        ms.push(253_402_300_799_999); // 9999-12-31T23:59:59.999Z
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ms.push((x % 253_402_300_800_000) as i64);
        }
        for m in ms {
            let t = DateTime::from_timestamp_millis(m).unwrap();
            assert_eq!(rfc3339(t), chrono_form(t), "{m}");
        }
        // Outside the fast form: negative years, five digits, a leap second.
        for t in [
            DateTime::from_timestamp_millis(-62_198_755_200_001).unwrap(),
            DateTime::from_timestamp_millis(253_402_300_800_000).unwrap(),
            DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap(),
        ] {
            assert_eq!(rfc3339(t), chrono_form(t));
        }
        let empty = reply_json(&Result::Ok(ReplyData::empty()));
        let data = serde_json::to_string(&ReplyData::empty()).unwrap();
        assert_eq!(
            empty,
            format!(r#"{{"code":200,"message":"SUCCESS","data":{data}}}"#)
        );
    }

    fn serde_name<T: Serialize>(v: T) -> String {
        serde_json::to_value(v)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn names_match_the_json_form() {
        for p in [
            Purpose::TokenCreate,
            Purpose::TokenRefresh,
            Purpose::StatusCheck,
            Purpose::KeyVerify,
            Purpose::Notify,
        ] {
            assert_eq!(p.as_str(), serde_name(p));
        }
        for s in [
            State::Unauthorized,
            State::Requested,
            State::Pending,
            State::Authorized,
            State::Expired,
            State::Failed,
            State::Revoked,
            State::Removed,
        ] {
            assert_eq!(s.as_str(), serde_name(s));
        }
        assert_eq!(
            Reason::NotifyAbandoned.as_str(),
            serde_name(Reason::NotifyAbandoned)
        );
        assert_eq!(
            Reason::SellerIdTaken.as_str(),
            serde_name(Reason::SellerIdTaken)
        );
    }
}
