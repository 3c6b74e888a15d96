//! One store's record: its lifecycle fields, the request it has in flight
//! or waiting for a rate slot, its timers, its claims as sets of keys and
//! its notification outbox. Also the store's public view.
//!
//! Everything here is plain data (it is what a snapshot holds, store by
//! store). What does not live here: the rules that change it (`engine`),
//! the engine-wide indexes built from it (`claims`, `timers`).

use crate::message::{AuthType, Claim, CredentialsView, LastError, Purpose, State, StoreView};
use crate::platform::{KeyCredential, Tokens};
use crate::secret::Secret;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The timers a store can have, one of each at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// End of `requested` (request TTL) or `pending` (code validity).
    Deadline,
    /// The next request: retry, poll, refresh or re-check.
    Action,
    /// Access token expiry.
    Expiry,
    /// The in-flight request got no answer in time.
    Timeout,
    /// The next try of the head notification.
    NotifyRetry,
    /// The in-flight notification got no answer in time.
    NotifyTimeout,
}

impl TimerKind {
    /// Every kind, in index order.
    pub const ALL: [TimerKind; 6] = [
        TimerKind::Deadline,
        TimerKind::Action,
        TimerKind::Expiry,
        TimerKind::Timeout,
        TimerKind::NotifyRetry,
        TimerKind::NotifyTimeout,
    ];

    /// Index into [`Timers`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A store's timers, one slot per [`TimerKind`]: when it fires and the
/// engine-wide sequence number that breaks ties (so that simultaneous
/// timers fire in the order they were set, before and after a restore
/// alike). Sequence 0 means "not set" (the counter starts at 1), which keeps
/// a slot at 16 bytes. The slots are boxed and there only while some timer
/// is set: most stores (an authorized KEY store, a store at rest) have
/// none, and the record stays 88 bytes smaller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timers(Option<Box<[(i64, u64); 6]>>);

impl Timers {
    /// The timer of `kind`, if set.
    pub fn get(&self, kind: TimerKind) -> Option<(i64, u64)> {
        let (at, seq) = self.0.as_deref()?[kind.index()];
        (seq != 0).then_some((at, seq))
    }
    /// Sets the timer of `kind` (`seq` must not be 0).
    pub fn set(&mut self, kind: TimerKind, at: i64, seq: u64) {
        debug_assert!(seq != 0);
        self.0.get_or_insert_with(Default::default)[kind.index()] = (at, seq);
    }
    /// Clears and returns the timer of `kind`.
    pub fn take(&mut self, kind: TimerKind) -> Option<(i64, u64)> {
        let t = self.get(kind);
        if let Some(slots) = self.0.as_deref_mut() {
            slots[kind.index()] = (0, 0);
            // None set: no box (so that equal timers compare equal).
            if slots.iter().all(|&(_, seq)| seq == 0) {
                self.0 = None;
            }
        }
        t
    }
    /// Every set timer.
    pub fn iter(&self) -> impl Iterator<Item = (TimerKind, i64, u64)> + '_ {
        TimerKind::ALL
            .iter()
            .filter_map(|&k| self.get(k).map(|(at, seq)| (k, at, seq)))
    }
    fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// In snapshots: a list of `[kind, at, seq]` of the set timers.
impl Serialize for Timers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Timers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<(TimerKind, i64, u64)>::deserialize(d)?;
        let mut t = Timers::default();
        for (k, at, seq) in list {
            if seq == 0 {
                return Err(serde::de::Error::custom(
                    "timer sequence numbers start at 1",
                ));
            }
            t.set(k, at, seq);
        }
        Ok(t)
    }
}

/// The request a store has in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    /// Request serial (engine-wide; part of the id, orders re-sends).
    pub serial: u64,
    /// What it is for.
    pub purpose: Purpose,
    /// When it was sent (engine ms; part of the id). Version-1 records have none (0).
    #[serde(default)]
    pub sent_at: i64,
}

/// Which state nonce an attempt holds: a version-1 serial (from a restored
/// version-1 record), or the serial and issue time of a version-2 nonce
/// (the store and attempt are the record's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NonceId {
    /// `{serial}_{mac}`.
    V1(u64),
    /// `{ref}.{attempt}.{serial}.{at}.{mac}`.
    V2 {
        /// The engine's nonce serial.
        serial: u64,
        /// When it was issued (engine ms).
        at: i64,
    },
}

impl NonceId {
    /// The engine-wide serial.
    pub fn serial(self) -> u64 {
        match self {
            NonceId::V1(s) | NonceId::V2 { serial: s, .. } => s,
        }
    }
}

/// A request waiting for a rate-limit slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// See the `PRIORITY_*` constants of `engine`.
    pub priority: u8,
    /// Engine-wide queue order.
    pub seq: u64,
    /// What it is for.
    pub purpose: Purpose,
    /// When it began to wait (engine ms; its `due_at`, spec §10).
    /// Version-1 records have none (0).
    #[serde(default)]
    pub since: i64,
}

/// The store's one engine request (token exchange, refresh, KEY
/// verification or status check) in one of its phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Sent; waiting for its answer.
    InFlight(Work),
    /// Waiting for a rate-limit slot.
    Queued(Queued),
    /// In flight when a snapshot was taken: to be sent again (the old
    /// serial orders re-sends).
    Resend(Work),
}

/// A notification waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The JSON body (the same on every try).
    pub body: String,
    /// When it was produced (ms).
    pub created_at: i64,
}

/// What lives only while an attempt is open; dropped when it ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// The live state nonce (redirect flows, while `requested`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<NonceId>,
    /// The attempt's nonce, kept for the PKCE verifier after the nonce is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce: Option<NonceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    /// The seller came back through `oauth_redirect` in this attempt.
    #[serde(default)]
    pub came_back: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Secret>,
    /// Seller claims learned in an earlier attempt, kept until this one ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
    /// KEY verification tries so far.
    #[serde(default)]
    pub tries: u32,
}

/// A store's notification target and outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notify {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub outbox: VecDeque<Notice>,
    /// Serial of the notification in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
    /// When the notification in flight was sent (engine ms; part of its id).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sent_at: i64,
    /// Current backoff (ms, 0 = none yet).
    #[serde(default)]
    pub backoff_ms: i64,
    /// The head was in flight when a snapshot was taken and is to be sent
    /// again (the old request serial, which orders re-sends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend: Option<u64>,
}

/// A short name held inline (no allocation) when it is at most
/// [`Name::INLINE`] bytes, else in one allocation of its own: a store's
/// platform (a configured name, the same for many stores). Read and
/// written as a JSON string; dereferences to `str`.
#[derive(Clone, PartialEq, Eq)]
pub enum Name {
    /// `len` bytes.
    Inline {
        /// Bytes used.
        len: u8,
        /// The text, then zeros.
        bytes: [u8; Name::INLINE],
    },
    /// Longer.
    Heap(Box<str>),
}

impl Name {
    /// The longest name held inline (a `Name` is as large as a `String`).
    pub const INLINE: usize = 22;

    /// The name as a `str`.
    pub fn as_str(&self) -> &str {
        match self {
            Name::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).expect("made of a str")
            }
            Name::Heap(s) => s,
        }
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        if s.len() > Name::INLINE {
            return Name::Heap(s.into());
        }
        let mut bytes = [0u8; Name::INLINE];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Name::Inline {
            len: s.len() as u8,
            bytes,
        }
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor of `&str`: an inline name is read where it lies in the
        // input (no `String` of its own).
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Name;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Name, E> {
                Ok(Name::from(s))
            }
        }
        d.deserialize_str(Text)
    }
}

/// One store. Rarely used parts are boxed so that a registered or
/// authorized store stays small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    pub client_id: String,
    pub store_id: String,
    /// Inline: platform names are short, and one is in every store.
    pub platform: Name,
    /// Index of the platform's profile (set by the engine, not stored).
    #[serde(skip)]
    pub profile: u16,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<AuthType>,
    pub attempt: u32,
    /// Last transition's per-store sequence number.
    pub seq: u64,
    /// The requested seller id, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<String>,
    /// Seller claims learned from the platform (normalized).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned: Vec<String>,
    /// Credential claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<crate::claims::Fingerprint>,
    #[serde(default)]
    pub cost_total: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Box<LastError>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Box<KeyCredential>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Box<Tokens>>,
    /// What the open attempt keeps while it runs (its nonce, code, auth
    /// URL, …); `open` in records.
    #[serde(default, rename = "open", skip_serializing_if = "Option::is_none")]
    pub scratch: Option<Box<Attempt>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Box<Notify>>,
    /// Current retry backoff (ms, 0 = none yet).
    #[serde(default)]
    pub retry_ms: i64,
    /// Current checker poll interval (ms, 0 = none yet).
    #[serde(default)]
    pub poll_ms: i64,
    /// The store's engine request, if it has one (at most one at a time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    #[serde(default, skip_serializing_if = "Timers::is_empty")]
    pub timers: Timers,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

static NO_ATTEMPT: Attempt = Attempt {
    redirect_url: None,
    nonce: None,
    pkce: None,
    auth_url: None,
    came_back: false,
    code: None,
    kept: Vec::new(),
    tries: 0,
};

impl Store {
    /// A new store in `unauthorized`.
    pub fn new(
        client_id: String,
        store_id: String,
        platform: String,
        notify_url: Option<String>,
        notify_secret: Option<Secret>,
    ) -> Self {
        Store {
            client_id,
            store_id,
            platform: Name::from(platform.as_str()),
            profile: 0,
            state: State::Unauthorized,
            auth_type: None,
            attempt: 0,
            seq: 0,
            seller_id: None,
            learned: Vec::new(),
            fingerprint: None,
            cost_total: 0,
            last_error: None,
            key: None,
            tokens: None,
            scratch: None,
            notify: notify_url.map(|url| {
                Box::new(Notify {
                    url,
                    secret: notify_secret,
                    outbox: VecDeque::new(),
                    in_flight: None,
                    sent_at: 0,
                    backoff_ms: 0,
                    resend: None,
                })
            }),
            retry_ms: 0,
            poll_ms: 0,
            request: None,
            timers: Timers::default(),
        }
    }

    /// The request in flight, if any.
    pub fn in_flight(&self) -> Option<Work> {
        match self.request {
            Some(Request::InFlight(w)) => Some(w),
            _ => None,
        }
    }

    /// The open attempt's scratch (empty when none is open).
    pub fn att(&self) -> &Attempt {
        self.scratch.as_deref().unwrap_or(&NO_ATTEMPT)
    }

    /// The open attempt's scratch, created on first use.
    pub fn att_mut(&mut self) -> &mut Attempt {
        self.scratch.get_or_insert_with(Default::default)
    }

    /// The seller claim keys the store holds now (normalized, sorted, unique).
    pub fn seller_keys(&self, normalize: impl Fn(&str) -> String) -> Vec<String> {
        if !self.state.holds_claims() {
            return Vec::new();
        }
        let mut v: Vec<String> = self.seller_id.iter().map(|s| normalize(s)).collect();
        v.extend(self.learned.iter().cloned());
        v.extend(self.att().kept.iter().cloned());
        v.sort();
        v.dedup();
        v
    }

    /// The credential claim the store holds now.
    pub fn credential_key(&self) -> Option<crate::claims::Fingerprint> {
        if self.state.holds_claims() {
            self.fingerprint
        } else {
            None
        }
    }

    /// The seller id used in redirects and notifications: the requested one,
    /// else the first learned, else empty.
    pub fn display_seller(&self) -> &str {
        self.seller_id
            .as_deref()
            .or_else(|| self.learned.first().map(String::as_str))
            .unwrap_or("")
    }

    /// The claims the store holds now, as in `query` (sellers sorted, then
    /// the credential fingerprint).
    pub fn claims(&self, normalize: impl Fn(&str) -> String) -> Vec<Claim> {
        let mut claims: Vec<Claim> = self
            .seller_keys(normalize)
            .into_iter()
            .map(|seller_id| Claim::Seller {
                platform: self.platform.to_string(),
                seller_id,
            })
            .collect();
        if let Some(fp) = self.credential_key() {
            claims.push(Claim::Credential {
                fingerprint: fp.to_string(),
            });
        }
        claims
    }

    /// The store's earliest timer, or when its waiting request began to
    /// wait, or (to be re-sent after a restore) when it was first sent: the
    /// `due_at` of its change entry (spec §10).
    pub fn due_at(&self) -> Option<i64> {
        let request = match self.request {
            Some(Request::Queued(q)) => Some(q.since),
            Some(Request::Resend(w)) => Some(w.sent_at),
            _ => None,
        };
        let notify = self
            .notify
            .as_deref()
            .filter(|n| n.resend.is_some())
            .and_then(|n| n.outbox.front())
            .map(|head| head.created_at);
        self.timers
            .iter()
            .map(|(_, at, _)| at)
            .chain(request)
            .chain(notify)
            .min()
    }

    /// The store's view (`query`). Never a secret.
    pub fn view(&self, normalize: impl Fn(&str) -> String) -> StoreView {
        let ms = |t: Option<i64>| t.and_then(DateTime::<Utc>::from_timestamp_millis);
        let mut seller_ids: Vec<String> = self.seller_id.iter().cloned().collect();
        let requested = self.seller_id.as_deref().map(&normalize);
        for s in &self.learned {
            if requested.as_deref() != Some(s.as_str()) {
                seller_ids.push(s.clone());
            }
        }
        let claims = self.claims(&normalize);
        StoreView {
            client_id: self.client_id.clone(),
            store_id: self.store_id.clone(),
            platform: self.platform.to_string(),
            state: self.state,
            status: self.state.status(),
            attempt: self.attempt,
            auth_type: self.auth_type,
            seller_ids,
            auth_url: if self.state == State::Requested {
                self.att().auth_url.clone()
            } else {
                None
            },
            access_expires_at: ms(self.tokens.as_ref().and_then(|t| t.access_expires_at)),
            refresh_expires_at: ms(self.tokens.as_ref().and_then(|t| t.refresh_expires_at)),
            cost_total: self.cost_total,
            last_error: self.last_error.as_deref().cloned(),
            claims,
        }
    }

    /// What to call the platform with, when authorized.
    pub fn credentials(&self, normalize: impl Fn(&str) -> String) -> Option<CredentialsView> {
        if self.state != State::Authorized {
            return None;
        }
        if let Some(t) = &self.tokens {
            let ms = t
                .access_expires_at
                .and_then(DateTime::<Utc>::from_timestamp_millis);
            return Some(CredentialsView::Token {
                access_token: t.access.clone(),
                access_expires_at: ms,
                seller_ids: self.view(normalize).seller_ids,
            });
        }
        match self.key.as_deref() {
            Some(KeyCredential::Token { token }) => Some(CredentialsView::KeyToken {
                token: token.clone(),
            }),
            Some(KeyCredential::Pair {
                api_key,
                api_secret,
            }) => Some(CredentialsView::KeyPair {
                api_key: api_key.clone(),
                api_secret: api_secret.clone(),
            }),
            None => Some(CredentialsView::Checker {
                seller_id: self.seller_id.clone().unwrap_or_default(),
            }),
        }
    }
}

#[cfg(test)]
mod size {
    #[test]
    fn a_store_record_stays_small() {
        // Budget: at most 512 bytes per store beyond its own strings,
        // indexes included (measured by the `scale` bench); the record
        // itself must leave room for the claim and id indexes.
        let n = std::mem::size_of::<super::Store>();
        // 264: a request carries the time it was sent (part of its id,
        // spec §9); the timers are boxed (most stores have none).
        assert!(n <= 264, "Store is {n} bytes");
        // A restore turns the array of records into the slots in place.
        assert_eq!(std::mem::size_of::<Option<super::Store>>(), n);
    }
}
