//! The reference model: a deliberately naive re-statement of SPEC.md for the
//! platforms the model test uses (`myshop` oauth2, `mykey` KEY token, `vkey`
//! KEY api_key+api_secret with verification, `taobao_tw` IOP, `shopline`,
//! `shopee` (the callback names the shop; single-use refresh tokens with a
//! fresh 30-day window; a fresh link on every authorize) and `amazon_sp`
//! (the callback names the selling partner; a fixed 365-day authorization),
//! `tiktok_shop` with its absolute expiries and `open_id` seller, `shopify`
//! with its handle rules; the harness never signs Shopify callbacks, so
//! they are `invalid_state`, as Shopline's).
//!
//! Plain `Vec`s and linear scans: stores live in a `Vec` in registration
//! order, claims are found by scanning every store, timers are fields of the
//! store and "the next timer" is a scan. Credentials are compared by raw
//! value (the engine compares keyed fingerprints).
//!
//! The model does not know request ids or nonce strings. It names a request
//! by [`ReqRef`] (store uid, work/notify, per-store counter) and a nonce by
//! its serial; the SUT maps those to what the engine printed.
//!
//! Every engine call is modelled as: resend what a restore left open, then
//! fire every due timer (per store in time order; at equal times deadlines
//! and expiries before request time-outs before retries — "a code that
//! expires at T is no longer good at T"), then apply the input.
//!
//! Where SPEC.md is silent, the model follows the engine's (reasonable)
//! choice:
//! - simultaneous timers of one store: a deadline or expiry due at T wins
//!   over a retry due at T; the order between a notification retry and a
//!   lifecycle retry is left open (the SUT compares the two streams apart);
//! - a superseding `authorize` on `requested` emits `requested → requested`;
//!   "the same parameters" compares `seller_id` as given (so a Shopline
//!   handle in another case is a new attempt);
//! - `revoke` of a `failed` or `expired` store notifies `REVOKED`;
//!   `last_error` survives re-authorization and revoke (only `authorized`
//!   clears it);
//! - a redirect with both `code` and `error` is a denial;
//! - oauth2 ignores `user_info`; a refresh answer's new sellers are claimed
//!   when free, a taken one is left out and notes `seller_id_taken`;
//! - IOP without `expires_in`, or with 0, is malformed (retried); oauth2
//!   without `expires_in` never expires;
//! - a token answer that is not JSON is retried (until the code expires);
//!   a 2xx without `access_token`, or a 4xx without an error code, is
//!   `system_error` (create: `failed`; refresh: retried, noted in
//!   `last_error`);
//! - on `seller_id_taken` / `seller_mismatch` after a token answer, the
//!   refused sellers are not "learned": the redirect and notification carry
//!   the requested seller_id or an empty one;
//! - a notification is tried a last time exactly 24 h after it was produced.
//!
//! What does not live here: the generation of transitions (`transition.rs`)
//! and the engine driver and comparisons (`sut.rs`).

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

pub const T0: i64 = 1_700_000_000_000;
pub const REQUEST_TTL: i64 = 3_600_000;
pub const REQUEST_TIMEOUT: i64 = 60_000;
pub const REFRESH_LEAD: i64 = 1_800_000;
pub const RETRY_MAX: i64 = 300_000;
pub const NOTIFY_MAX: i64 = 3_600_000;
pub const NOTIFY_GIVE_UP: i64 = 86_400_000;
pub const VERIFY_TRIES: u32 = 5;
pub const ID_MAX: usize = 64;
pub const AUTH_INFO_MAX: usize = 2048;
pub const REDIRECT_URL_MAX: usize = 255;
pub const NOTIFY_URL: &str = "https://biz.example/notify";

// ------------------------------------------------------------------ vocabulary

/// The platforms of the test configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Plat {
    /// oauth2 (PKCE, client_secret_post), code_ttl 600 s.
    MyShop,
    /// KEY, token, no verification.
    MyKey,
    /// KEY, api_key + api_secret, verification GET.
    VKey,
    /// IOP, code_ttl 1800 s.
    TaobaoTw,
    /// Shopline: KEY (token) and URL (signed redirect, which the model never completes).
    Shopline,
    /// Shopee: `shop_id` in the callback, code_ttl 600 s.
    Shopee,
    /// Amazon SP-API (LWA): `selling_partner_id` and `spapi_oauth_code` in the callback, code_ttl 300 s.
    AmazonSp,
    /// TikTok Shop: URL, token answers with absolute expiries, seller = open_id.
    TikTok,
    /// Shopify: URL with a required handle (HMAC-signed callback, which the model never completes).
    Shopify,
}

pub const PLATS: [Plat; 9] = [
    Plat::MyShop,
    Plat::MyKey,
    Plat::VKey,
    Plat::TaobaoTw,
    Plat::Shopline,
    Plat::Shopee,
    Plat::AmazonSp,
    Plat::TikTok,
    Plat::Shopify,
];

/// Shopee's refresh window from each refresh token's issue (ms).
pub const SHOPEE_REFRESH_TTL: i64 = 2_592_000_000;
/// Amazon's authorization from consent (ms).
pub const AMAZON_AUTHORIZATION: i64 = 31_536_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Token,
    Pair,
}

impl Plat {
    pub fn name(self) -> &'static str {
        match self {
            Plat::MyShop => "myshop",
            Plat::MyKey => "mykey",
            Plat::VKey => "vkey",
            Plat::TaobaoTw => "taobao_tw",
            Plat::Shopline => "shopline",
            Plat::Shopee => "shopee",
            Plat::AmazonSp => "amazon_sp",
            Plat::TikTok => "tiktok_shop",
            Plat::Shopify => "shopify",
        }
    }
    /// The callback parameter that carries the code.
    pub fn code_param(self) -> &'static str {
        if self == Plat::AmazonSp {
            "spapi_oauth_code"
        } else {
            "code"
        }
    }
    /// The callback parameter that names the seller, for kinds whose
    /// callback does.
    pub fn seller_param(self) -> Option<&'static str> {
        match self {
            Plat::Shopee => Some("shop_id"),
            Plat::AmazonSp => Some("selling_partner_id"),
            _ => None,
        }
    }
    /// Whether a seller id has this platform's form (where it has one).
    pub fn seller_form_ok(self, s: &str) -> bool {
        match self {
            Plat::Shopee => {
                !s.is_empty()
                    && s.len() <= 20
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && s.parse::<u64>().is_ok()
            }
            Plat::AmazonSp => !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()),
            _ => true,
        }
    }
    /// A repeated authorize answers a freshly signed link (Shopee).
    pub fn fresh_url(self) -> bool {
        self == Plat::Shopee
    }
    /// Host-side errors on token create are retried, not failed (Shopee).
    pub fn retries_host_errors_on_create(self) -> bool {
        self == Plat::Shopee
    }
    pub fn from_name(s: &str) -> Option<Plat> {
        PLATS.iter().copied().find(|p| p.name() == s)
    }
    pub fn takes_url(self) -> bool {
        !matches!(self, Plat::MyKey | Plat::VKey)
    }
    pub fn key_form(self) -> Option<Form> {
        match self {
            Plat::MyKey | Plat::Shopline => Some(Form::Token),
            Plat::VKey => Some(Form::Pair),
            _ => None,
        }
    }
    pub fn seller_required(self) -> bool {
        matches!(self, Plat::Shopline | Plat::Shopify)
    }
    pub fn case_insensitive(self) -> bool {
        matches!(self, Plat::Shopline | Plat::Shopify)
    }
    pub fn nonce_param(self) -> &'static str {
        if self == Plat::Shopline {
            "customField"
        } else {
            "state"
        }
    }
    pub fn code_ttl(self) -> i64 {
        match self {
            Plat::TaobaoTw => 1_800_000,
            Plat::AmazonSp => 300_000,
            _ => 600_000,
        }
    }
    pub fn verifies(self) -> bool {
        self == Plat::VKey
    }
    /// Key platforms: token_rejected never refreshes.
    pub fn is_key_kind(self) -> bool {
        matches!(self, Plat::MyKey | Plat::VKey)
    }
    pub fn norm(self, s: &str) -> String {
        if self.case_insensitive() {
            s.to_ascii_lowercase()
        } else {
            s.to_owned()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum St {
    Unauthorized,
    Requested,
    Pending,
    Authorized,
    Expired,
    Failed,
    Revoked,
    Removed,
}

impl St {
    pub fn name(self) -> &'static str {
        match self {
            St::Unauthorized => "unauthorized",
            St::Requested => "requested",
            St::Pending => "pending",
            St::Authorized => "authorized",
            St::Expired => "expired",
            St::Failed => "failed",
            St::Revoked => "revoked",
            St::Removed => "removed",
        }
    }
    pub fn holds_claims(self) -> bool {
        matches!(
            self,
            St::Requested | St::Pending | St::Authorized | St::Expired
        )
    }
    pub fn auth_status(self) -> Option<&'static str> {
        match self {
            St::Authorized => Some("SUCCESS"),
            St::Failed => Some("FAIL"),
            St::Expired => Some("EXPIRED"),
            St::Revoked => Some("REVOKED"),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Purpose {
    TokenCreate,
    TokenRefresh,
    KeyVerify,
    Notify,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::TokenCreate => "token_create",
            Purpose::TokenRefresh => "token_refresh",
            Purpose::KeyVerify => "key_verify",
            Purpose::Notify => "notify",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Work,
    Notify,
}

/// A request as the model names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReqRef {
    pub uid: u32,
    pub class: Class,
    pub n: u32,
}

/// KEY credentials, by raw value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cred {
    Token(String),
    Pair(String, String),
}

// ------------------------------------------------------------------ inputs (as data)

/// `auth_info`, literally.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    pub token: Option<String>,
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
}

/// An `authorize` request, literally (None = field absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthReq {
    pub client: String,
    pub store: String,
    pub auth_type: Option<String>,
    pub seller: Option<String>,
    pub info: Option<Info>,
    pub redirect_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterReq {
    pub client: String,
    pub store: String,
    pub platform: String,
    pub notify_url: Option<String>,
    pub notify_secret: Option<String>,
}

/// Which nonce a redirect carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NonceSel {
    /// The nonce of this serial, as the engine printed it.
    Serial(u64),
    /// This serial with a wrong MAC.
    Forged(u64),
    /// No nonce parameter.
    Missing,
    /// Not a nonce at all.
    Junk,
}

/// The `platform` of a redirect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatSel {
    /// The platform the nonce was issued for.
    Own,
    /// This name.
    Named(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectReq {
    pub nonce: NonceSel,
    pub platform: PlatSel,
    pub code: Option<String>,
    pub error: Option<String>,
    /// The seller the callback names (`shop_id` / `selling_partner_id`;
    /// other platforms ignore it).
    pub seller: Option<String>,
    /// `query` (raw string) or `params` (object).
    pub as_query: bool,
}

/// A number as a JSON number or a numeric string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Num {
    pub v: i64,
    pub string: bool,
}

/// A token endpoint success body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenOk {
    pub access: String,
    pub refresh: Option<String>,
    pub expires_in: Option<Num>,
    pub refresh_expires_in: Option<Num>,
    /// (country_user_info instead of user_info, seller ids)
    pub sellers: Option<(bool, Vec<String>)>,
}

/// A response body the generator can produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Token(TokenOk),
    /// `{"error": code}` (RFC 6749 §5.2)
    OauthErr(&'static str),
    /// `{"code": code, "type": "ISV", "message": …, "request_id": …}`
    IopErr(&'static str),
    /// A Shopee success: `{access_token, refresh_token?, expire_in?, error: "", …}`
    /// (`refresh_expires_in` and `sellers` unused).
    Shopee(TokenOk),
    /// A Shopee error: `{"error": …, "message": …, "request_id": …}`
    ShopeeErr(&'static str, &'static str),
    /// TikTok Shop: `{"code": n, "message": …, "request_id": …}`
    TtErr(i64),
    /// Not JSON.
    Garbage,
    /// Empty text.
    Empty,
    /// `{}`
    EmptyObj,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Failure,
    Response { status: u16, body: Body },
}

/// One input, literally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Register(RegisterReq),
    Remove {
        client: String,
        store: String,
    },
    Authorize(AuthReq),
    Redirect(RedirectReq),
    Answer {
        req: ReqRef,
        answer: Answer,
    },
    /// An answer to an id the engine never issued.
    AnswerBogus {
        id: String,
    },
    TokenRejected {
        client: String,
        store: String,
    },
    Revoke {
        client: String,
        store: String,
    },
    Query {
        client: String,
        store: String,
    },
    Credentials {
        client: String,
        store: String,
    },
    /// A text that is not an input at all (INVALID_ARGUMENT).
    Junk(u8),
    /// A known type with a wrongly typed field (REJECTED, 900002).
    BadField(u8),
}

// ------------------------------------------------------------------ expectations

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub seq: u64,
    pub status: &'static str,
    pub reason: Option<&'static str>,
    pub attempt: u32,
    pub seller: String,
    pub at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReqDetail {
    Create { plat: Plat, code: String },
    Refresh { plat: Plat, refresh_token: String },
    Verify { api_key: String, api_secret: String },
    Notify { notice: Notice, signed: bool },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Transition {
        store: String,
        client: String,
        from: St,
        to: St,
        reason: Option<&'static str>,
        attempt: u32,
        seq: u64,
        at: i64,
    },
    Request {
        store: String,
        client: String,
        r: ReqRef,
        purpose: Purpose,
        detail: ReqDetail,
    },
    Redirect {
        store: String,
        client: String,
        attempt: u32,
        location: String,
    },
}

impl Out {
    pub fn store(&self) -> &str {
        match self {
            Out::Transition { store, .. }
            | Out::Request { store, .. }
            | Out::Redirect { store, .. } => store,
        }
    }
}

/// The store view the model expects from `query`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub client: String,
    pub store: String,
    pub platform: Plat,
    pub state: St,
    pub attempt: u32,
    pub auth_type: Option<&'static str>,
    pub seller_ids: Vec<String>,
    /// The auth_url while requested, by nonce serial.
    pub auth_url: Option<u64>,
    pub access_expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
    pub last_error: Option<&'static str>,
    /// Seller claims (normalized), sorted.
    pub seller_claims: Vec<String>,
    pub cred_claim: Option<Cred>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredView {
    Token {
        access: String,
        access_expires_at: Option<i64>,
        seller_ids: Vec<String>,
    },
    Key(Cred),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OkData {
    Empty,
    /// `{auth_url}`: the URL printed for this nonce serial (new: first time).
    AuthUrl {
        serial: u64,
        new: bool,
    },
    Redirected {
        client: String,
        store: String,
        attempt: u32,
    },
    View(Box<View>),
    Creds(CredView),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Ok(OkData),
    Err(u32, &'static str),
    /// Not an input: INVALID_ARGUMENT with 900002, nothing applied, no time.
    Invalid,
}

fn err(code: u32) -> Reply {
    let kind = match code {
        900000 => "system_error",
        900002 => "illegal_param",
        900003 => "seller_id_taken",
        900004 => "repeat_authorized",
        940002 => "store_not_exist",
        900005 => "auth_info_taken",
        900006 => "in_progress",
        900007 => "invalid_state",
        900008 => "unknown_request",
        900009 => "store_exists",
        900010 => "not_authorized",
        _ => unreachable!(),
    };
    Reply::Err(code, kind)
}

/// What the last transition should have done.
#[derive(Clone, Debug, Default)]
pub struct Step {
    /// Time handed to the engine (None: no engine call with a time).
    pub call_time: Option<i64>,
    /// Times of the successive `handle_timeout` calls of a `Jumps` step.
    pub jumps: Vec<i64>,
    pub reply: Option<Reply>,
    /// Outputs of the call (due work first, then the input's).
    pub outs: Vec<Out>,
    /// `poll_timeout` right after the call.
    pub poll: Option<i64>,
    /// Outputs of the `handle_timeout(now)` the harness makes after the call.
    pub post: Vec<Out>,
    /// Whether the harness makes that post call and queries (not after
    /// snapshot/restore steps, so that "restore, snapshot, restore" stays
    /// possible).
    pub settle: bool,
}

// ------------------------------------------------------------------ state

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
    pub access_exp: Option<i64>,
    pub refresh_exp: Option<i64>,
    pub refreshable: bool,
    pub obtained: i64,
    pub sellers: Option<Vec<String>>,
}

impl Tokens {
    pub fn can_refresh(&self, now: i64) -> bool {
        self.refreshable && self.refresh_exp.is_none_or(|r| r > now)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Work {
    pub r: ReqRef,
    pub purpose: Purpose,
    pub timeout: i64,
    /// Model-wide issue order (for the order of re-sends).
    pub order: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    pub r: ReqRef,
    pub timeout: i64,
    pub order: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub notice: Notice,
    pub created: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MStore {
    pub uid: u32,
    pub client: String,
    pub id: String,
    pub plat: Plat,
    pub notify: bool,
    /// The store has a notify_secret (notifications carry a signature).
    pub signed: bool,
    pub state: St,
    pub attempt: u32,
    pub seq: u64,
    pub auth_type: Option<&'static str>,
    pub seller: Option<String>,
    pub redirect_url: Option<String>,
    /// Live nonce (requested, redirect platforms).
    pub nonce: Option<u64>,
    /// Nonce serial of the attempt's auth_url.
    pub auth_serial: Option<u64>,
    pub came_back: bool,
    pub code: Option<String>,
    /// Credentials for `credentials` (dropped on expiry).
    pub key: Option<Cred>,
    /// Credential claim (kept on expiry).
    pub cred: Option<Cred>,
    pub tokens: Option<Tokens>,
    pub learned: Vec<String>,
    pub kept: Vec<String>,
    pub last_error: Option<&'static str>,
    pub work: Option<Work>,
    pub deadline: Option<i64>,
    pub action: Option<i64>,
    pub expiry: Option<i64>,
    pub retry_ms: i64,
    pub tries: u32,
    pub outbox: VecDeque<Queued>,
    pub notify_req: Option<InFlight>,
    pub notify_retry: Option<i64>,
    pub notify_ms: i64,
    /// Open at the last restore: to be sent again at the next call.
    pub resend_work: Option<(u64, Purpose)>,
    pub resend_notify: Option<u64>,
}

impl MStore {
    pub fn display_seller(&self) -> String {
        self.seller
            .clone()
            .or_else(|| self.learned.first().cloned())
            .unwrap_or_default()
    }

    /// Seller claims (normalized, sorted, unique).
    pub fn seller_claims(&self) -> Vec<String> {
        if !self.state.holds_claims() {
            return Vec::new();
        }
        let mut v: Vec<String> = Vec::new();
        if let Some(s) = &self.seller {
            v.push(self.plat.norm(s));
        }
        v.extend(self.learned.iter().cloned());
        v.extend(self.kept.iter().cloned());
        v.sort();
        v.dedup();
        v
    }

    pub fn cred_claim(&self) -> Option<&Cred> {
        if self.state.holds_claims() {
            self.cred.as_ref()
        } else {
            None
        }
    }

    pub fn seller_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.seller.iter().cloned().collect();
        let req = self.seller.as_deref().map(|s| self.plat.norm(s));
        for s in &self.learned {
            if req.as_deref() != Some(s.as_str()) {
                v.push(s.clone());
            }
        }
        v
    }

    pub fn view(&self) -> View {
        View {
            client: self.client.clone(),
            store: self.id.clone(),
            platform: self.plat,
            state: self.state,
            attempt: self.attempt,
            auth_type: self.auth_type,
            seller_ids: self.seller_ids(),
            auth_url: if self.state == St::Requested {
                self.auth_serial
            } else {
                None
            },
            access_expires_at: self.tokens.as_ref().and_then(|t| t.access_exp),
            refresh_expires_at: self.tokens.as_ref().and_then(|t| t.refresh_exp),
            last_error: self.last_error,
            seller_claims: self.seller_claims(),
            cred_claim: self.cred_claim().cloned(),
        }
    }

    /// Due timers: (at, rank, kind).
    fn timers(&self) -> Vec<(i64, u8, Timer)> {
        let mut v = Vec::new();
        if let Some(t) = self.deadline {
            v.push((t, 0, Timer::Deadline));
        }
        if let Some(t) = self.expiry {
            v.push((t, 1, Timer::Expiry));
        }
        if let Some(w) = &self.work {
            v.push((w.timeout, 2, Timer::Timeout));
        }
        if let Some(t) = self.action {
            v.push((t, 3, Timer::Action));
        }
        if let Some(n) = &self.notify_req {
            v.push((n.timeout, 4, Timer::NotifyTimeout));
        }
        if let Some(t) = self.notify_retry {
            v.push((t, 5, Timer::NotifyRetry));
        }
        v
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    Deadline,
    Expiry,
    Timeout,
    Action,
    NotifyTimeout,
    NotifyRetry,
}

/// What a snapshot holds (and a rollback brings back).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    pub now: i64,
    pub stores: Vec<MStore>,
    /// Last nonce serial issued.
    pub nonce_serial: u64,
}

/// What no restore takes back: names the model has handed out.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    pub next_uid: u32,
    pub next_n: BTreeMap<(u32, Class), u32>,
    /// Every request issued: (purpose, platform).
    pub issued: BTreeMap<ReqRef, (Purpose, Plat)>,
    /// Every nonce serial issued: platform.
    pub nonces: BTreeMap<u64, Plat>,
    pub order: u64,
}

#[derive(Clone)]
pub struct Model {
    pub live: Live,
    pub reg: Registry,
    pub saved: Option<Live>,
    pub step: Step,
    /// Output sink of the current phase.
    sink: Vec<Out>,
}

enum Read {
    Ok(Tokens),
    Retry,
    Rejected(&'static str),
    OurBug,
}

fn backoff(cur: i64, max: i64) -> i64 {
    if cur <= 0 { 1000 } else { (cur * 2).min(max) }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn text_ok(s: &str, max: usize) -> bool {
    !s.is_empty() && chars(s) <= max
}

/// An id (client, store, seller): 1–64 chars, no white space at either
/// end, no control character (§4).
fn id_ok(s: &str) -> bool {
    text_ok(s, ID_MAX)
        && !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace)
        && !s.chars().any(char::is_control)
}

/// A naive check of "absolute http/https URL without user info" for the
/// URLs the generator uses.
pub fn url_ok(s: &str) -> bool {
    let rest = if let Some(r) = s.strip_prefix("https://") {
        r
    } else if let Some(r) = s.strip_prefix("http://") {
        r
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    !authority.is_empty() && !authority.contains('@')
}

/// RFC 3986 unreserved percent-encoding.
pub fn pct(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Kept short: proptest prints the initial state of every failure.
        write!(
            f,
            "Model(now={}, stores={})",
            self.live.now,
            self.live.stores.len()
        )
    }
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    pub fn new() -> Model {
        Model {
            live: Live {
                now: T0,
                stores: Vec::new(),
                nonce_serial: 0,
            },
            reg: Registry::default(),
            saved: None,
            step: Step::default(),
            sink: Vec::new(),
        }
    }

    pub fn now(&self) -> i64 {
        self.live.now
    }

    pub fn find(&self, id: &str) -> Option<usize> {
        self.live.stores.iter().position(|s| s.id == id)
    }

    fn st(&mut self, i: usize) -> &mut MStore {
        &mut self.live.stores[i]
    }

    /// The earliest moment the engine has work (`poll_timeout`).
    pub fn poll_timeout(&self) -> Option<i64> {
        let now = self.live.now;
        let mut best: Option<i64> = None;
        for s in &self.live.stores {
            if s.resend_work.is_some() || s.resend_notify.is_some() {
                return Some(now);
            }
            for (t, _, _) in s.timers() {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        best.map(|t| t.max(now))
    }

    /// Every open request: (ref, purpose, platform, store index).
    pub fn open_requests(&self) -> Vec<(ReqRef, Purpose, Plat)> {
        let mut v = Vec::new();
        for s in &self.live.stores {
            if let Some(w) = &s.work {
                v.push((w.r, w.purpose, s.plat));
            }
            if let Some(n) = &s.notify_req {
                v.push((n.r, Purpose::Notify, s.plat));
            }
        }
        v
    }

    pub fn live_nonces(&self) -> Vec<u64> {
        self.live.stores.iter().filter_map(|s| s.nonce).collect()
    }

    // -------------------------------------------------------------- steps

    /// An input at host time `t`.
    pub fn input(&mut self, t: i64, input: &Input) {
        self.step = Step::default();
        if let Input::Junk(_) = input {
            // Not applied at all: no time, no timers.
            self.step.call_time = Some(t);
            self.step.reply = Some(Reply::Invalid);
            self.finish_call(true);
            return;
        }
        self.step.call_time = Some(t);
        self.call(t);
        let reply = self.apply(input);
        self.step.reply = Some(reply);
        self.finish_call(true);
    }

    /// `handle_timeout(t)`.
    pub fn timeout(&mut self, t: i64) {
        self.step = Step::default();
        self.step.call_time = Some(t);
        self.call(t);
        self.finish_call(true);
    }

    /// Up to `k` successive `handle_timeout(poll_timeout())` calls; the
    /// times go to `step.jumps`.
    pub fn jumps(&mut self, k: u8) {
        self.step = Step::default();
        for _ in 0..k {
            let Some(t) = self.poll_timeout() else { break };
            self.step.jumps.push(t);
            self.call(t);
        }
        self.finish_call(true);
    }

    /// Snapshot and restore at once (into the same or a fresh engine).
    pub fn snap_restore(&mut self) {
        self.step = Step::default();
        let snap = self.live.clone();
        self.restore_from(snap);
        self.finish_call(false);
    }

    /// Keep a snapshot.
    pub fn save(&mut self) {
        self.step = Step::default();
        self.saved = Some(self.live.clone());
        self.finish_call(false);
    }

    /// Restore the kept snapshot.
    pub fn rollback(&mut self) {
        self.step = Step::default();
        let snap = self
            .saved
            .clone()
            .expect("precondition: a snapshot was saved");
        self.restore_from(snap);
        self.finish_call(false);
    }

    /// A host crash: a fresh engine restores the kept snapshot, then the
    /// host calls `handle_timeout(t)` at its (later) clock.
    pub fn crash(&mut self, t: i64) {
        let snap = self
            .saved
            .clone()
            .expect("precondition: a snapshot was saved");
        self.restore_from(snap);
        self.timeout(t);
    }

    fn finish_call(&mut self, settle: bool) {
        self.step.outs = std::mem::take(&mut self.sink);
        self.step.poll = self.poll_timeout();
        self.step.settle = settle;
        if settle {
            self.fire_due();
            self.step.post = std::mem::take(&mut self.sink);
        }
    }

    fn restore_from(&mut self, mut snap: Live) {
        // The engine's counters never move backwards: a rollback to an older
        // snapshot does not hand out nonce serials again.
        snap.nonce_serial = snap.nonce_serial.max(self.live.nonce_serial);
        // Nor does its clock: ids carry the time they began (spec §9).
        snap.now = snap.now.max(self.live.now);
        // Requests open at snapshot time are sent again at the next call,
        // and so is what an earlier restore had not yet sent again.
        for s in &mut snap.stores {
            if let Some(w) = s.work.take() {
                s.resend_work = Some((w.order, w.purpose));
            }
            if let Some(n) = s.notify_req.take() {
                s.resend_notify = Some(n.order);
            }
        }
        self.live = snap;
    }

    fn call(&mut self, t: i64) {
        if t > self.live.now {
            self.live.now = t;
        }
        self.fire_due();
    }

    fn fire_due(&mut self) {
        let now = self.live.now;
        let mut resend: Vec<(u64, usize, Option<Purpose>)> = Vec::new();
        for (i, s) in self.live.stores.iter_mut().enumerate() {
            if let Some((o, p)) = s.resend_work.take() {
                resend.push((o, i, Some(p)));
            }
            if let Some(o) = s.resend_notify.take() {
                resend.push((o, i, None));
            }
        }
        resend.sort();
        for (_, i, p) in resend {
            match p {
                Some(p) => self.send_work(i, p),
                None => self.send_notify(i),
            }
        }
        loop {
            let mut best: Option<(i64, u8, usize, Timer)> = None;
            for (i, s) in self.live.stores.iter().enumerate() {
                for (at, rank, kind) in s.timers() {
                    if at <= now && best.is_none_or(|b| (at, rank, i) < (b.0, b.1, b.2)) {
                        best = Some((at, rank, i, kind));
                    }
                }
            }
            let Some((_, _, i, kind)) = best else { break };
            self.fire(i, kind);
        }
    }

    fn fire(&mut self, i: usize, kind: Timer) {
        let state = self.live.stores[i].state;
        match kind {
            Timer::Deadline => {
                self.st(i).deadline = None;
                match state {
                    St::Requested => self.fail(i, "timeout"),
                    St::Pending => self.fail(i, "code_expired"),
                    _ => {}
                }
            }
            Timer::Expiry => {
                self.st(i).expiry = None;
                if state == St::Authorized {
                    self.expire(i, "token_expired");
                }
            }
            Timer::Timeout => {
                let w = self.st(i).work.take().expect("timeout of open work");
                self.work_result(i, w, None);
            }
            Timer::Action => {
                self.st(i).action = None;
                self.act(i);
            }
            Timer::NotifyTimeout => {
                self.st(i).notify_req = None;
                self.notify_result(i, false);
            }
            Timer::NotifyRetry => {
                self.st(i).notify_retry = None;
                self.send_notify(i);
            }
        }
    }

    fn act(&mut self, i: usize) {
        let now = self.live.now;
        let s = &self.live.stores[i];
        if s.work.is_some() {
            return;
        }
        match (s.state, s.auth_type) {
            (St::Pending, Some("URL")) => self.send_work(i, Purpose::TokenCreate),
            (St::Pending, Some("KEY")) => self.send_work(i, Purpose::KeyVerify),
            (St::Authorized, _) if s.tokens.as_ref().is_some_and(|t| t.can_refresh(now)) => {
                self.send_work(i, Purpose::TokenRefresh)
            }
            _ => {}
        }
    }

    fn new_ref(&mut self, i: usize, class: Class, purpose: Purpose) -> (ReqRef, u64) {
        let uid = self.live.stores[i].uid;
        let plat = self.live.stores[i].plat;
        let n = self.reg.next_n.entry((uid, class)).or_insert(0);
        *n += 1;
        let r = ReqRef { uid, class, n: *n };
        self.reg.issued.insert(r, (purpose, plat));
        self.reg.order += 1;
        (r, self.reg.order)
    }

    fn send_work(&mut self, i: usize, purpose: Purpose) {
        let now = self.live.now;
        let (r, order) = self.new_ref(i, Class::Work, purpose);
        let s = &mut self.live.stores[i];
        s.work = Some(Work {
            r,
            purpose,
            timeout: now + REQUEST_TIMEOUT,
            order,
        });
        let detail = match purpose {
            Purpose::TokenCreate => ReqDetail::Create {
                plat: s.plat,
                code: s.code.clone().unwrap_or_default(),
            },
            Purpose::TokenRefresh => ReqDetail::Refresh {
                plat: s.plat,
                refresh_token: s
                    .tokens
                    .as_ref()
                    .and_then(|t| t.refresh.clone())
                    .unwrap_or_default(),
            },
            Purpose::KeyVerify => match &s.key {
                Some(Cred::Pair(k, x)) => ReqDetail::Verify {
                    api_key: k.clone(),
                    api_secret: x.clone(),
                },
                _ => ReqDetail::Verify {
                    api_key: String::new(),
                    api_secret: String::new(),
                },
            },
            Purpose::Notify => unreachable!(),
        };
        let out = Out::Request {
            store: s.id.clone(),
            client: s.client.clone(),
            r,
            purpose,
            detail,
        };
        self.sink.push(out);
    }

    fn send_notify(&mut self, i: usize) {
        let now = self.live.now;
        {
            let s = &self.live.stores[i];
            if s.notify_req.is_some() || s.outbox.is_empty() {
                return;
            }
        }
        let (r, order) = self.new_ref(i, Class::Notify, Purpose::Notify);
        let s = &mut self.live.stores[i];
        s.notify_req = Some(InFlight {
            r,
            timeout: now + REQUEST_TIMEOUT,
            order,
        });
        s.notify_retry = None;
        let notice = s.outbox.front().expect("non-empty").notice.clone();
        let signed = s.signed;
        let out = Out::Request {
            store: s.id.clone(),
            client: s.client.clone(),
            r,
            purpose: Purpose::Notify,
            detail: ReqDetail::Notify { notice, signed },
        };
        self.sink.push(out);
    }

    fn notify_result(&mut self, i: usize, delivered: bool) {
        let now = self.live.now;
        let s = self.st(i);
        s.notify_req = None;
        let Some(head) = s.outbox.front() else { return };
        let give_up = head.created + NOTIFY_GIVE_UP;
        if delivered {
            s.outbox.pop_front();
            s.notify_ms = 0;
            self.send_notify(i);
        } else if now >= give_up {
            s.outbox.pop_front();
            s.notify_ms = 0;
            s.last_error = Some("notify_abandoned");
            self.send_notify(i);
        } else {
            s.notify_ms = backoff(s.notify_ms, NOTIFY_MAX);
            s.notify_retry = Some((now + s.notify_ms).min(give_up));
        }
    }

    fn set_state(&mut self, i: usize, to: St, reason: Option<&'static str>) {
        let now = self.live.now;
        let s = &mut self.live.stores[i];
        let from = s.state;
        s.state = to;
        s.seq += 1;
        let out = Out::Transition {
            store: s.id.clone(),
            client: s.client.clone(),
            from,
            to,
            reason,
            attempt: s.attempt,
            seq: s.seq,
            at: now,
        };
        let notice = (s.notify)
            .then(|| to.auth_status())
            .flatten()
            .map(|status| Notice {
                seq: s.seq,
                status,
                reason,
                attempt: s.attempt,
                seller: s.display_seller(),
                at: now,
            });
        self.sink.push(out);
        if let Some(notice) = notice {
            let s = self.st(i);
            s.outbox.push_back(Queued {
                notice,
                created: now,
            });
            if s.notify_req.is_none() && s.notify_retry.is_none() {
                self.send_notify(i);
            }
        }
    }

    fn cancel_activity(&mut self, i: usize) {
        let s = self.st(i);
        s.deadline = None;
        s.action = None;
        s.expiry = None;
        s.work = None;
        s.nonce = None;
        s.resend_work = None;
    }

    fn retry_later(&mut self, i: usize) {
        let now = self.live.now;
        let s = self.st(i);
        s.retry_ms = backoff(s.retry_ms, RETRY_MAX);
        s.action = Some(now + s.retry_ms);
    }

    fn schedule_tokens(&mut self, i: usize) {
        let now = self.live.now;
        let s = self.st(i);
        s.action = None;
        s.expiry = None;
        let Some(t) = &s.tokens else { return };
        let Some(exp) = t.access_exp else { return };
        let refresh_at = t.can_refresh(now).then(|| {
            let lifetime = (exp - t.obtained).max(0);
            (exp - REFRESH_LEAD.min(lifetime / 2)).max(now)
        });
        s.expiry = Some(exp);
        s.action = refresh_at;
    }

    fn redirect(&mut self, i: usize, reason: Option<&'static str>) {
        let s = &self.live.stores[i];
        if !s.came_back {
            return;
        }
        let Some(url) = &s.redirect_url else { return };
        let sep = if !url.contains('?') {
            "?"
        } else if url.ends_with('?') || url.ends_with('&') {
            ""
        } else {
            "&"
        };
        let (status, fail) = match reason {
            None => ("SUCCESS", ""),
            Some(r) => ("FAIL", r),
        };
        let location = format!(
            "{url}{sep}client_id={}&store_id={}&seller_id={}&auth_status={status}&auth_fail_reason={}",
            pct(&s.client),
            pct(&s.id),
            pct(&s.display_seller()),
            pct(fail)
        );
        let out = Out::Redirect {
            store: s.id.clone(),
            client: s.client.clone(),
            attempt: s.attempt,
            location,
        };
        self.st(i).came_back = false;
        self.sink.push(out);
    }

    fn authorized(&mut self, i: usize, tokens: Option<Tokens>) {
        let s = self.st(i);
        s.deadline = None;
        s.tokens = tokens;
        s.code = None;
        s.retry_ms = 0;
        s.tries = 0;
        s.kept.clear();
        s.last_error = None;
        self.set_state(i, St::Authorized, None);
        self.schedule_tokens(i);
        self.redirect(i, None);
    }

    fn fail(&mut self, i: usize, reason: &'static str) {
        self.cancel_activity(i);
        let s = self.st(i);
        s.tokens = None;
        s.code = None;
        s.key = None;
        s.cred = None;
        s.learned.clear();
        s.kept.clear();
        s.last_error = Some(reason);
        self.set_state(i, St::Failed, Some(reason));
        self.redirect(i, Some(reason));
    }

    fn expire(&mut self, i: usize, reason: &'static str) {
        self.cancel_activity(i);
        let s = self.st(i);
        s.tokens = None;
        s.key = None;
        s.last_error = Some(reason);
        self.set_state(i, St::Expired, Some(reason));
    }

    // -------------------------------------------------------------- inputs

    fn lookup(&self, client: &str, store: &str) -> Result<usize, Reply> {
        if !id_ok(client) || !id_ok(store) {
            return Err(err(900002));
        }
        match self.find(store) {
            Some(i) if self.live.stores[i].client == client => Ok(i),
            _ => Err(err(940002)),
        }
    }

    fn apply(&mut self, input: &Input) -> Reply {
        match input {
            Input::Register(r) => self.register(r),
            Input::Remove { client, store } => match self.lookup(client, store) {
                Ok(i) => {
                    self.remove(i);
                    Reply::Ok(OkData::Empty)
                }
                Err(e) => e,
            },
            Input::Authorize(a) => self.authorize(a),
            Input::Redirect(r) => self.oauth_redirect(r),
            Input::Answer { req, answer } => self.answer(*req, answer),
            Input::AnswerBogus { .. } => err(900008),
            Input::TokenRejected { client, store } => match self.lookup(client, store) {
                Ok(i) => self.token_rejected(i),
                Err(e) => e,
            },
            Input::Revoke { client, store } => match self.lookup(client, store) {
                Ok(i) => {
                    self.revoke(i);
                    Reply::Ok(OkData::Empty)
                }
                Err(e) => e,
            },
            Input::Query { client, store } => match self.lookup(client, store) {
                Ok(i) => Reply::Ok(OkData::View(Box::new(self.live.stores[i].view()))),
                Err(e) => e,
            },
            Input::Credentials { client, store } => match self.lookup(client, store) {
                Ok(i) => self.credentials(i),
                Err(e) => e,
            },
            Input::Junk(_) => Reply::Invalid,
            Input::BadField(_) => err(900002),
        }
    }

    fn register(&mut self, r: &RegisterReq) -> Reply {
        if !id_ok(&r.client) || !id_ok(&r.store) || !text_ok(&r.platform, ID_MAX) {
            return err(900002);
        }
        if let Some(u) = &r.notify_url {
            if !text_ok(u, 2048) || !url_ok(u) {
                return err(900002);
            }
        }
        if let Some(s) = &r.notify_secret {
            if !text_ok(s, 2048) {
                return err(900002);
            }
        }
        let Some(plat) = Plat::from_name(&r.platform) else {
            return err(900002);
        };
        if self.find(&r.store).is_some() {
            return err(900009);
        }
        let uid = self.reg.next_uid;
        self.reg.next_uid += 1;
        self.live.stores.push(MStore {
            uid,
            client: r.client.clone(),
            id: r.store.clone(),
            plat,
            notify: r.notify_url.is_some(),
            signed: r.notify_secret.is_some(),
            state: St::Unauthorized,
            attempt: 0,
            seq: 0,
            auth_type: None,
            seller: None,
            redirect_url: None,
            nonce: None,
            auth_serial: None,
            came_back: false,
            code: None,
            key: None,
            cred: None,
            tokens: None,
            learned: Vec::new(),
            kept: Vec::new(),
            last_error: None,
            work: None,
            deadline: None,
            action: None,
            expiry: None,
            retry_ms: 0,
            tries: 0,
            outbox: VecDeque::new(),
            notify_req: None,
            notify_retry: None,
            notify_ms: 0,
            resend_work: None,
            resend_notify: None,
        });
        Reply::Ok(OkData::Empty)
    }

    fn remove(&mut self, i: usize) {
        self.cancel_activity(i);
        let s = self.st(i);
        s.notify_retry = None;
        s.notify_req = None;
        s.resend_notify = None;
        self.set_state(i, St::Removed, None);
        self.live.stores.remove(i);
    }

    fn revoke(&mut self, i: usize) {
        if matches!(self.live.stores[i].state, St::Unauthorized | St::Revoked) {
            return;
        }
        self.cancel_activity(i);
        let s = self.st(i);
        s.tokens = None;
        s.code = None;
        s.key = None;
        s.cred = None;
        s.learned.clear();
        s.kept.clear();
        self.set_state(i, St::Revoked, None);
    }

    fn credentials(&self, i: usize) -> Reply {
        let s = &self.live.stores[i];
        if s.state != St::Authorized {
            return err(900010);
        }
        if let Some(t) = &s.tokens {
            return Reply::Ok(OkData::Creds(CredView::Token {
                access: t.access.clone(),
                access_expires_at: t.access_exp,
                seller_ids: s.seller_ids(),
            }));
        }
        match &s.key {
            Some(c) => Reply::Ok(OkData::Creds(CredView::Key(c.clone()))),
            None => panic!("model: authorized store with neither tokens nor key"),
        }
    }

    fn token_rejected(&mut self, i: usize) -> Reply {
        let now = self.live.now;
        let s = &self.live.stores[i];
        if s.state != St::Authorized {
            return err(900010);
        }
        let can_refresh =
            !s.plat.is_key_kind() && s.tokens.as_ref().is_some_and(|t| t.can_refresh(now));
        if can_refresh {
            if s.work.is_none() {
                self.st(i).action = None;
                self.send_work(i, Purpose::TokenRefresh);
            }
        } else {
            self.expire(i, "token_rejected");
        }
        Reply::Ok(OkData::Empty)
    }

    /// The seller is held by a store other than `i` (same platform).
    fn seller_taken(&self, i: usize, plat: Plat, key: &str) -> bool {
        self.live
            .stores
            .iter()
            .enumerate()
            .any(|(j, s)| j != i && s.plat == plat && s.seller_claims().iter().any(|c| c == key))
    }

    fn cred_taken(&self, i: usize, c: &Cred) -> bool {
        self.live
            .stores
            .iter()
            .enumerate()
            .any(|(j, s)| j != i && s.cred_claim() == Some(c))
    }

    fn authorize(&mut self, a: &AuthReq) -> Reply {
        // 1. general shape
        if !id_ok(&a.client) || !id_ok(&a.store) {
            return err(900002);
        }
        let url = match a.auth_type.as_deref() {
            Some("URL") => true,
            Some("KEY") => false,
            _ => return err(900002),
        };
        if let Some(s) = &a.seller {
            if !id_ok(s) {
                return err(900002);
            }
        }
        let mut cred = None;
        if !url {
            let Some(info) = &a.info else {
                return err(900002);
            };
            for v in [&info.token, &info.api_key, &info.api_secret]
                .into_iter()
                .flatten()
            {
                if !text_ok(v, AUTH_INFO_MAX) || v.chars().any(char::is_control) {
                    return err(900002);
                }
            }
            cred = match (&info.token, &info.api_key, &info.api_secret) {
                (Some(t), None, None) => Some(Cred::Token(t.clone())),
                (None, Some(k), Some(x)) => Some(Cred::Pair(k.clone(), x.clone())),
                _ => return err(900002),
            };
        }
        let redirect_url = if url {
            match &a.redirect_url {
                Some(u) if chars(u) > REDIRECT_URL_MAX || u.is_empty() || !url_ok(u) => {
                    return err(900002);
                }
                other => other.clone(),
            }
        } else {
            None
        };
        // 2. existence and ownership
        let i = match self.find(&a.store) {
            Some(i) if self.live.stores[i].client == a.client => i,
            _ => return err(940002),
        };
        let plat = self.live.stores[i].plat;
        // 3. platform
        if url && !plat.takes_url() {
            return err(900002);
        }
        if !url {
            match (plat.key_form(), &cred) {
                (None, _) => return err(900002),
                (Some(Form::Token), Some(Cred::Pair(..))) => return err(900002),
                (Some(Form::Pair), Some(Cred::Token(_))) => return err(900002),
                _ => {}
            }
        }
        if plat.seller_required() && a.seller.is_none() {
            return err(900002);
        }
        if plat.case_insensitive() {
            if let Some(h) = &a.seller {
                let label = !h.is_empty()
                    && h.len() <= 63
                    && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !h.starts_with('-')
                    && !h.ends_with('-');
                if !label {
                    return err(900002);
                }
            }
        }
        if let Some(h) = &a.seller {
            if !plat.seller_form_ok(h) {
                return err(900002);
            }
        }
        // 4. state
        let s = &self.live.stores[i];
        match s.state {
            St::Authorized => return err(900004),
            St::Pending => return err(900006),
            St::Requested
                if url
                    && s.auth_type == Some("URL")
                    && s.seller == a.seller
                    && s.redirect_url == redirect_url =>
            {
                return Reply::Ok(OkData::AuthUrl {
                    serial: s
                        .auth_serial
                        .expect("requested URL attempt has an auth_url"),
                    new: false,
                });
            }
            _ => {}
        }
        // 5. claims
        if let Some(seller) = &a.seller {
            if self.seller_taken(i, plat, &plat.norm(seller)) {
                return err(900003);
            }
        }
        if let Some(c) = &cred {
            if self.cred_taken(i, c) {
                return err(900005);
            }
        }
        // accepted: a new attempt
        let now = self.live.now;
        self.cancel_activity(i);
        let s = self.st(i);
        s.attempt += 1;
        s.auth_type = Some(if url { "URL" } else { "KEY" });
        s.seller = a.seller.clone();
        s.redirect_url = redirect_url;
        s.key = cred.clone();
        s.cred = cred;
        let mut kept = std::mem::take(&mut s.learned);
        kept.append(&mut s.kept);
        kept.sort();
        kept.dedup();
        s.kept = kept;
        s.tokens = None;
        s.code = None;
        s.came_back = false;
        s.retry_ms = 0;
        s.tries = 0;
        s.auth_serial = None;
        if url {
            self.live.nonce_serial += 1;
            let serial = self.live.nonce_serial;
            self.reg.nonces.insert(serial, plat);
            let s = self.st(i);
            s.nonce = Some(serial);
            s.auth_serial = Some(serial);
            self.set_state(i, St::Requested, None);
            self.st(i).deadline = Some(now + REQUEST_TTL);
            Reply::Ok(OkData::AuthUrl { serial, new: true })
        } else {
            if plat.verifies() {
                self.set_state(i, St::Pending, None);
                self.send_work(i, Purpose::KeyVerify);
            } else {
                self.authorized(i, None);
            }
            Reply::Ok(OkData::Empty)
        }
    }

    /// The platform name a redirect is sent to.
    pub fn redirect_platform(&self, r: &RedirectReq) -> String {
        match (&r.platform, &r.nonce) {
            (PlatSel::Named(n), _) => n.clone(),
            (PlatSel::Own, NonceSel::Serial(s) | NonceSel::Forged(s)) => self
                .reg
                .nonces
                .get(s)
                .map_or("myshop", |p| p.name())
                .to_owned(),
            (PlatSel::Own, _) => "myshop".to_owned(),
        }
    }

    fn oauth_redirect(&mut self, r: &RedirectReq) -> Reply {
        let pname = self.redirect_platform(r);
        let Some(target) = Plat::from_name(&pname) else {
            return err(900002);
        };
        let code = r.code.as_deref().filter(|c| !c.is_empty());
        let error = r.error.as_deref().filter(|c| !c.is_empty());
        if code.is_none() && error.is_none() {
            return err(900002);
        }
        let serial = match &r.nonce {
            NonceSel::Serial(s) => *s,
            _ => return err(900007),
        };
        let Some(i) = self
            .live
            .stores
            .iter()
            .position(|s| s.nonce == Some(serial))
        else {
            return err(900007);
        };
        let s = &self.live.stores[i];
        if s.plat != target || s.state != St::Requested {
            return err(900007);
        }
        if matches!(s.plat, Plat::Shopline | Plat::Shopify) {
            // The harness never signs Shopline redirects or Shopify callbacks.
            return err(900007);
        }
        // Shopee / Amazon: with a code the callback must name a seller of
        // the platform's form; that seller is claimed below.
        let named = r.seller.as_deref().filter(|x| !x.is_empty());
        let mut claim: Option<String> = None;
        if s.plat.seller_param().is_some() {
            match named {
                Some(x) if !s.plat.seller_form_ok(x) => return err(900007),
                Some(x) => claim = code.map(|_| x.to_owned()),
                None if code.is_some() => return err(900007),
                None => {}
            }
        }
        let now = self.live.now;
        let s = self.st(i);
        s.nonce = None;
        s.came_back = true;
        let reply = Reply::Ok(OkData::Redirected {
            client: s.client.clone(),
            store: s.id.clone(),
            attempt: s.attempt,
        });
        match (code, error) {
            (Some(c), None) => {
                s.code = Some(c.to_owned());
                if let Some(x) = claim {
                    let plat = s.plat;
                    if s.seller
                        .as_deref()
                        .is_some_and(|req| plat.norm(req) != plat.norm(&x))
                    {
                        self.fail(i, "seller_mismatch");
                        return reply;
                    }
                    if self.seller_taken(i, plat, &plat.norm(&x)) {
                        self.fail(i, "seller_id_taken");
                        return reply;
                    }
                    let s = self.st(i);
                    if !s.learned.contains(&x) {
                        s.learned.push(x);
                    }
                }
                let s = self.st(i);
                s.deadline = Some(now + s.plat.code_ttl());
                self.set_state(i, St::Pending, None);
                self.send_work(i, Purpose::TokenCreate);
            }
            _ => self.fail(i, "denied"),
        }
        reply
    }

    fn answer(&mut self, req: ReqRef, answer: &Answer) -> Reply {
        let found = self.live.stores.iter().position(|s| {
            s.work.as_ref().is_some_and(|w| w.r == req)
                || s.notify_req.as_ref().is_some_and(|n| n.r == req)
        });
        let Some(i) = found else { return err(900008) };
        let resp = match answer {
            Answer::Failure => None,
            Answer::Response { status, body } => Some((*status, body.clone())),
        };
        if req.class == Class::Notify {
            self.st(i).notify_req = None;
            let ok = resp.as_ref().is_some_and(|(s, _)| (200..300).contains(s));
            self.notify_result(i, ok);
        } else {
            let w = self.st(i).work.take().expect("open work");
            self.work_result(i, w, resp);
        }
        Reply::Ok(OkData::Empty)
    }

    fn work_result(&mut self, i: usize, w: Work, resp: Option<(u16, Body)>) {
        let state = self.live.stores[i].state;
        match (w.purpose, state) {
            (Purpose::TokenCreate, St::Pending) | (Purpose::TokenRefresh, St::Authorized) => {
                let refresh = w.purpose == Purpose::TokenRefresh;
                let read = match &resp {
                    None => Read::Retry,
                    Some((status, body)) => self.read_token(i, refresh, *status, body),
                };
                match read {
                    Read::Ok(t) if refresh => {
                        // New sellers: claimed when free, else noted.
                        let plat = self.live.stores[i].plat;
                        let mut taken = false;
                        for x in t.sellers.clone().unwrap_or_default() {
                            let k = plat.norm(&x);
                            if self.live.stores[i].seller_claims().contains(&k) {
                                continue;
                            }
                            if self.seller_taken(i, plat, &k) {
                                taken = true;
                                continue;
                            }
                            self.st(i).learned.push(k);
                        }
                        let s = self.st(i);
                        s.tokens = Some(t);
                        s.retry_ms = 0;
                        if taken {
                            s.last_error = Some("seller_id_taken");
                        }
                        self.schedule_tokens(i);
                    }
                    Read::Ok(t) => self.on_tokens(i, t),
                    Read::Retry => self.retry_later(i),
                    Read::Rejected(r) if refresh => self.expire(i, r),
                    Read::Rejected(r) => self.fail(i, r),
                    Read::OurBug
                        if refresh || self.live.stores[i].plat.retries_host_errors_on_create() =>
                    {
                        self.st(i).last_error = Some("system_error");
                        self.retry_later(i);
                    }
                    Read::OurBug => self.fail(i, "system_error"),
                }
            }
            (Purpose::KeyVerify, St::Pending) => {
                let status = resp.as_ref().map(|r| r.0);
                match status {
                    Some(200) => self.authorized(i, None),
                    Some(s) if s != 429 && s < 500 => self.fail(i, "platform_rejected"),
                    _ => {
                        let st = self.st(i);
                        st.tries += 1;
                        if st.tries >= VERIFY_TRIES {
                            self.fail(i, "verify_failed");
                        } else {
                            self.retry_later(i);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn on_tokens(&mut self, i: usize, t: Tokens) {
        let plat = self.live.stores[i].plat;
        if let Some(sellers) = &t.sellers {
            let mut learned: Vec<String> = Vec::new();
            for s in sellers {
                let k = plat.norm(s);
                if !learned.contains(&k) {
                    learned.push(k);
                }
            }
            if let Some(req) = &self.live.stores[i].seller {
                if !learned.contains(&plat.norm(req)) {
                    self.fail(i, "seller_mismatch");
                    return;
                }
            }
            if learned.iter().any(|s| self.seller_taken(i, plat, s)) {
                self.fail(i, "seller_id_taken");
                return;
            }
            self.st(i).learned = learned;
        }
        self.authorized(i, Some(t));
    }

    /// How the store's platform reads a token answer (SPEC §5, §5.1; RFC 6749 §5).
    fn read_token(&self, i: usize, refresh: bool, status: u16, body: &Body) -> Read {
        let now = self.live.now;
        let s = &self.live.stores[i];
        let old = if refresh { s.tokens.as_ref() } else { None };
        if status == 429 || status >= 500 {
            return Read::Retry;
        }
        if matches!(body, Body::Garbage | Body::Empty) {
            return Read::Retry;
        }
        let ok = (200..300).contains(&status);
        match s.plat {
            Plat::Shopee => {
                let (e, msg) = match body {
                    Body::ShopeeErr(e, m) => (*e, *m),
                    Body::OauthErr(e) => (*e, ""),
                    _ => ("", ""),
                };
                if !e.is_empty() {
                    let names_rt = {
                        let m = msg.to_ascii_lowercase();
                        (m.contains("refresh_token") || m.contains("refresh token"))
                            && (m.contains("invalid") || m.contains("expire"))
                    };
                    return match e {
                        "error_busy" | "error_server" | "error_inner" => Read::Retry,
                        "invalid_refresh_token" | "refresh_token_expired" if refresh => {
                            Read::Rejected("refresh_rejected")
                        }
                        _ if refresh && names_rt => Read::Rejected("refresh_rejected"),
                        "invalid_code" if !refresh => Read::Rejected("platform_rejected"),
                        "error_auth" | "error_sign" | "error_param" | "error_partner" => {
                            Read::OurBug
                        }
                        _ if refresh => Read::OurBug,
                        _ => Read::Rejected("platform_rejected"),
                    };
                }
                if !ok {
                    return Read::OurBug;
                }
                let b = match body {
                    Body::Shopee(b) => b,
                    // Other token shapes have no `expire_in`: malformed.
                    Body::Token(_) => return Read::Retry,
                    _ => return Read::OurBug,
                };
                let expire_in = match b.expires_in {
                    Some(n) if n.v > 0 => n.v,
                    _ => return Read::Retry,
                };
                let Some(rt) = b.refresh.clone() else {
                    return Read::Retry;
                };
                Read::Ok(Tokens {
                    access: b.access.clone(),
                    refresh: Some(rt),
                    access_exp: Some(now + expire_in * 1000),
                    refresh_exp: Some(now + SHOPEE_REFRESH_TTL),
                    refreshable: true,
                    obtained: now,
                    sellers: None,
                })
            }
            Plat::AmazonSp => {
                if let Body::OauthErr(code) = body {
                    return match *code {
                        "invalid_grant" if refresh => Read::Rejected("refresh_rejected"),
                        "invalid_grant" => Read::Rejected("platform_rejected"),
                        "access_denied" if refresh => Read::Rejected("refresh_rejected"),
                        "access_denied" => Read::Rejected("denied"),
                        "temporarily_unavailable" | "server_error" => Read::Retry,
                        _ => Read::OurBug,
                    };
                }
                if let Body::ShopeeErr(..) = body {
                    return Read::OurBug;
                }
                if !ok {
                    return Read::OurBug;
                }
                let b = match body {
                    Body::Token(b) => b,
                    // A body with an access token but no `expires_in`.
                    Body::Shopee(_) => return Read::Retry,
                    _ => return Read::OurBug,
                };
                let expires_in = match b.expires_in {
                    Some(n) if n.v > 0 => n.v,
                    _ => return Read::Retry,
                };
                let (refresh_tok, refresh_exp, refreshable) = match old {
                    Some(o) => (
                        b.refresh.clone().or_else(|| o.refresh.clone()),
                        o.refresh_exp,
                        o.refreshable,
                    ),
                    None => (
                        b.refresh.clone(),
                        b.refresh.as_ref().map(|_| now + AMAZON_AUTHORIZATION),
                        b.refresh.is_some(),
                    ),
                };
                Read::Ok(Tokens {
                    access: b.access.clone(),
                    refresh: refresh_tok,
                    access_exp: Some(now + expires_in * 1000),
                    refresh_exp,
                    refreshable,
                    obtained: now,
                    sellers: None,
                })
            }
            Plat::TaobaoTw => {
                if let Body::IopErr(code) = body {
                    return match *code {
                        "ApiCallLimit" => Read::Retry,
                        "InvalidSignature" => Read::OurBug,
                        _ if refresh => Read::Rejected("refresh_rejected"),
                        _ => Read::Rejected("platform_rejected"),
                    };
                }
                let Body::Token(b) = body else {
                    return Read::OurBug;
                };
                if !ok {
                    return Read::OurBug;
                }
                // Missing or 0: malformed, retried (SPEC §5 "Lifetimes").
                let expires_in = match b.expires_in {
                    Some(n) if n.v > 0 => n.v,
                    _ => return Read::Retry,
                };
                if b.sellers
                    .as_ref()
                    .is_some_and(|(_, v)| v.iter().any(|x| x.is_empty()))
                {
                    return Read::Retry;
                }
                let ri = b.refresh_expires_in.map(|n| n.v);
                let (refresh_tok, refresh_exp, refreshable) = match old {
                    Some(o) => {
                        let r = b.refresh.clone().or_else(|| o.refresh.clone());
                        let at = match (o.refresh_exp, ri) {
                            (Some(a), Some(n)) if n > 0 => Some(a.min(now + n * 1000)),
                            (a, _) => a,
                        };
                        (r, at, o.refreshable)
                    }
                    None => {
                        let live = ri.unwrap_or(0) > 0 && b.refresh.is_some();
                        (
                            b.refresh.clone(),
                            live.then(|| now + ri.unwrap_or(0) * 1000),
                            live,
                        )
                    }
                };
                let sellers = b
                    .sellers
                    .as_ref()
                    .map(|(_, v)| {
                        let mut o: Vec<String> = Vec::new();
                        for x in v {
                            if !o.contains(x) {
                                o.push(x.clone());
                            }
                        }
                        o
                    })
                    .or_else(|| old.and_then(|t| t.sellers.clone()));
                Read::Ok(Tokens {
                    access: b.access.clone(),
                    refresh: refresh_tok,
                    access_exp: Some(now + expires_in * 1000),
                    refresh_exp,
                    refreshable,
                    obtained: now,
                    sellers,
                })
            }
            Plat::TikTok => {
                // SPEC §5.5: code != 0 is an error; expiries are absolute
                // Unix seconds (the harness renders `now_s + v`).
                if let Body::TtErr(code) = body {
                    return match *code {
                        36009002 | 36009003 => Read::Retry,
                        36004001 | 36004005 if refresh => Read::Rejected("refresh_rejected"),
                        _ if refresh => Read::OurBug,
                        _ => Read::Rejected("platform_rejected"),
                    };
                }
                let Body::Token(b) = body else {
                    // no numeric code: `{"error": …}`, `{}`, IOP's text codes
                    return Read::OurBug;
                };
                if !ok {
                    return Read::OurBug;
                }
                let at = |v: i64| (now / 1000 + v) * 1000;
                let access_exp = match b.expires_in {
                    Some(n) if n.v > 0 => at(n.v),
                    _ => return Read::Retry,
                };
                let (refresh_tok, refresh_exp, refreshable) = match (&b.refresh, old) {
                    (Some(r), _) => match b.refresh_expires_in {
                        Some(n) if n.v > 0 => (Some(r.clone()), Some(at(n.v)), true),
                        _ => return Read::Retry,
                    },
                    (None, Some(o)) => (o.refresh.clone(), o.refresh_exp, o.refreshable),
                    (None, None) => (None, None, false),
                };
                let open_id = b
                    .sellers
                    .as_ref()
                    .and_then(|(_, v)| v.first())
                    .filter(|x| !x.is_empty());
                let sellers = match (open_id, old) {
                    (Some(x), _) => Some(vec![x.clone()]),
                    (None, Some(o)) => o.sellers.clone(),
                    (None, None) => return Read::Retry,
                };
                Read::Ok(Tokens {
                    access: b.access.clone(),
                    refresh: refresh_tok,
                    access_exp: Some(access_exp),
                    refresh_exp,
                    refreshable,
                    obtained: now,
                    sellers,
                })
            }
            _ => {
                // oauth2 (Shopline and Shopify stores never get here in the model)
                if let Body::OauthErr(code) = body {
                    return match *code {
                        "invalid_grant" if refresh => Read::Rejected("refresh_rejected"),
                        "invalid_grant" => Read::Rejected("platform_rejected"),
                        "access_denied" if refresh => Read::Rejected("refresh_rejected"),
                        "access_denied" => Read::Rejected("denied"),
                        "temporarily_unavailable" => Read::Retry,
                        _ => Read::OurBug,
                    };
                }
                if !ok {
                    return Read::OurBug;
                }
                let Body::Token(b) = body else {
                    return Read::OurBug;
                };
                let ri = b.refresh_expires_in.map(|n| n.v);
                let refresh_tok = b
                    .refresh
                    .clone()
                    .or_else(|| old.and_then(|t| t.refresh.clone()));
                let refresh_exp = match ri {
                    Some(v) if v > 0 => Some(now + v * 1000),
                    _ if b.refresh.is_none() => old.and_then(|t| t.refresh_exp),
                    _ => None,
                };
                Read::Ok(Tokens {
                    access: b.access.clone(),
                    refreshable: refresh_tok.is_some() && ri != Some(0),
                    refresh: refresh_tok,
                    access_exp: b
                        .expires_in
                        .map(|n| n.v)
                        .filter(|v| *v > 0)
                        .map(|v| now + v * 1000),
                    refresh_exp,
                    obtained: now,
                    sellers: old.and_then(|t| t.sellers.clone()),
                })
            }
        }
    }

    // -------------------------------------------------------------- invariants

    /// The model's own invariants (a broken model is a test bug).
    pub fn check(&self) {
        let stores = &self.live.stores;
        for (i, a) in stores.iter().enumerate() {
            for b in &stores[i + 1..] {
                assert_ne!(a.id, b.id, "model: duplicate store id");
                if let (Some(x), Some(y)) = (a.cred_claim(), b.cred_claim()) {
                    assert_ne!(x, y, "model: credential claimed twice");
                }
                if a.plat == b.plat {
                    for s in a.seller_claims() {
                        assert!(
                            !b.seller_claims().contains(&s),
                            "model: seller {s} claimed twice"
                        );
                    }
                }
            }
        }
    }
}
