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
    /// Index into [`Timers`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A timer: when, and the engine-wide sequence number that breaks ties
/// (so that simultaneous timers fire in the order they were set, before and
/// after a restore alike).
pub type TimerSlot = Option<(i64, u64)>;

/// The store's timers, indexed by [`TimerKind`].
pub type Timers = [TimerSlot; 6];

/// The request a store has in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    /// Request serial (the id's number).
    pub serial: u64,
    /// What it is for.
    pub purpose: Purpose,
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
}

/// A notification waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The JSON body (the same on every try).
    pub body: String,
    /// When it was produced (ms).
    pub created_at: i64,
}

/// One store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Store {
    pub client_id: String,
    pub store_id: String,
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_secret: Option<Secret>,
    pub state: State,
    pub attempt: u32,
    /// Last transition's per-store sequence number.
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<AuthType>,
    /// The requested seller id, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// The live state nonce's serial (redirect flows, while `requested`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
    /// The attempt's nonce serial, kept for the PKCE verifier after the nonce is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    /// The seller came back through `oauth_redirect` in this attempt.
    #[serde(default)]
    pub came_back: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
    /// Seller claims learned from the platform (normalized).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned: Vec<String>,
    /// Seller claims learned in an earlier attempt, kept until this one ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
    /// Credential claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub cost_total: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// Current retry backoff (ms, 0 = none yet).
    #[serde(default)]
    pub retry_ms: i64,
    /// KEY verification tries so far.
    #[serde(default)]
    pub tries: u32,
    /// Current checker poll interval (ms, 0 = none yet).
    #[serde(default)]
    pub poll_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<Work>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<Queued>,
    #[serde(default)]
    pub timers: Timers,
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub outbox: VecDeque<Notice>,
    /// Serial of the notification in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<u64>,
    /// Current notification backoff (ms, 0 = none yet).
    #[serde(default)]
    pub notify_ms: i64,
}

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
            platform,
            notify_url,
            notify_secret,
            state: State::Unauthorized,
            attempt: 0,
            seq: 0,
            auth_type: None,
            seller_id: None,
            redirect_url: None,
            nonce: None,
            pkce: None,
            auth_url: None,
            came_back: false,
            code: None,
            key: None,
            tokens: None,
            learned: Vec::new(),
            kept: Vec::new(),
            fingerprint: None,
            cost_total: 0,
            last_error: None,
            retry_ms: 0,
            tries: 0,
            poll_ms: 0,
            work: None,
            queued: None,
            timers: Timers::default(),
            outbox: VecDeque::new(),
            notify: None,
            notify_ms: 0,
        }
    }

    /// The seller claim keys the store holds now (normalized, sorted, unique).
    pub fn seller_keys(&self, normalize: impl Fn(&str) -> String) -> Vec<String> {
        if !self.state.holds_claims() {
            return Vec::new();
        }
        let mut v: Vec<String> = self.seller_id.iter().map(|s| normalize(s)).collect();
        v.extend(self.learned.iter().cloned());
        v.extend(self.kept.iter().cloned());
        v.sort();
        v.dedup();
        v
    }

    /// The credential claim the store holds now.
    pub fn credential_key(&self) -> Option<&str> {
        if self.state.holds_claims() {
            self.fingerprint.as_deref()
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
        let mut claims: Vec<Claim> = self
            .seller_keys(&normalize)
            .into_iter()
            .map(|seller_id| Claim::Seller {
                platform: self.platform.clone(),
                seller_id,
            })
            .collect();
        if let Some(fp) = self.credential_key() {
            claims.push(Claim::Credential {
                fingerprint: fp.to_owned(),
            });
        }
        StoreView {
            client_id: self.client_id.clone(),
            store_id: self.store_id.clone(),
            platform: self.platform.clone(),
            state: self.state,
            status: self.state.status(),
            attempt: self.attempt,
            auth_type: self.auth_type,
            seller_ids,
            auth_url: if self.state == State::Requested {
                self.auth_url.clone()
            } else {
                None
            },
            access_expires_at: ms(self.tokens.as_ref().and_then(|t| t.access_expires_at)),
            refresh_expires_at: ms(self.tokens.as_ref().and_then(|t| t.refresh_expires_at)),
            cost_total: self.cost_total,
            last_error: self.last_error.clone(),
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
        match &self.key {
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
