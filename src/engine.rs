//! The engine: every store, claim, open request, timer, waiting request and
//! undelivered notification, and the rules that move them. The host drives
//! it with [`Engine::handle`] and [`Engine::handle_timeout`] and drains it
//! with [`Engine::poll_output`] and [`Engine::poll_timeout`]; time comes
//! only from the host.
//!
//! Every input is checked completely before anything changes, so a refused
//! input leaves state, claims, outputs and timers as they were (only the
//! clock advances and what was already due fires).
//!
//! Claims bind against the stores here and against foreign claims (stores
//! held by other engines of a fleet, spec §11), alike.
//!
//! What does not live here: the wire formats of platforms (`platform/*`),
//! field rules (`validate`), the snapshot format (`snapshot`), loading and
//! unloading stores (`fleet`) and the C ABI (`ffi`).

use crate::claims::{Claims, Fingerprint, Foreign, Held};
use crate::config::{Config, Settings};
use crate::error::{ConfigError, InputError, Refusal};
use crate::keys::{IndexHasher, Keys, PresentedNonce, Ref};
use crate::message::{
    AuthType, Authorize, HttpFailure, HttpRequest, HttpResponse, Input, LastError, OauthRedirect,
    Output, Purpose, Reason, Redirect, RegisterStore, Reply, ReplyData, State, StoreRef,
    Transition,
};
use crate::notify;
use crate::platform::{self, Ctx, Flow, Outcome, Tokens, UrlArgs};
use crate::ratelimit::Gate;
use crate::store::{NonceId, Notice, Queued, Request, Store, TimerKind, Work};
use crate::timers::TimerQueue;
use crate::validate::{self, Shaped};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Retries of requests back off from 1 s, doubling to this.
pub const RETRY_MAX_MS: i64 = 300_000;
/// Checker polls start at this interval…
pub const POLL_FIRST_MS: i64 = 30_000;
/// …and double to this.
pub const POLL_MAX_MS: i64 = 300_000;
/// Re-checks are spread by a per-store offset below this.
pub const RECHECK_SPREAD_MS: i64 = 3_600_000;
/// Notification retries back off from 1 s, doubling to this.
pub const NOTIFY_MAX_MS: i64 = 3_600_000;
/// Notifications are abandoned after this.
pub const NOTIFY_GIVE_UP_MS: i64 = 86_400_000;
/// KEY verification gives up after this many tries.
pub const VERIFY_TRIES: u32 = 5;
/// The latest time the engine accepts (9999-12-31T23:59:59.999Z); later is clamped.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Rate-gate priority of requests re-sent after a restore (they go first).
pub const PRIORITY_RESEND: u8 = 0;
/// Priority of a checker's first status check.
pub const PRIORITY_FIRST: u8 = 1;
/// Priority of polls, retries, token exchanges and verifications.
pub const PRIORITY_POLL: u8 = 2;
/// Priority of re-checks of authorized stores.
pub const PRIORITY_RECHECK: u8 = 3;

/// Engine-wide counters; all in the snapshot header. (Version-1 headers
/// also had `generation`; request ids now carry their store and time.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Last request serial issued.
    pub request: u64,
    /// Last event serial issued (part of the event id's MAC, so that a store
    /// removed and registered again at the same instant never repeats an id).
    #[serde(default)]
    pub event: u64,
    /// Last nonce serial issued.
    pub nonce: u64,
    /// Last timer sequence number.
    pub timer: u64,
    /// Last rate-queue sequence number.
    pub queue: u64,
}

impl Counters {
    /// Each counter the larger of the two (counters never move backwards).
    pub(crate) fn max_each(self, other: Counters) -> Counters {
        Counters {
            request: self.request.max(other.request),
            event: self.event.max(other.event),
            nonce: self.nonce.max(other.nonce),
            timer: self.timer.max(other.timer),
            queue: self.queue.max(other.queue),
        }
    }
}

/// The index key of a live state nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum NonceKey {
    /// A version-1 nonce: its serial.
    V1(u64),
    /// A version-2 nonce: its MAC.
    V2([u8; 16]),
}

/// The one-character purpose code inside request ids.
fn purpose_code(p: Purpose) -> char {
    match p {
        Purpose::TokenCreate => 'c',
        Purpose::TokenRefresh => 'r',
        Purpose::StatusCheck => 's',
        Purpose::KeyVerify => 'k',
        Purpose::Notify => 'n',
    }
}

/// How the JSON entry point classified an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleStatus {
    /// Applied; the reply has code 200.
    Ok,
    /// Refused by a rule; nothing changed.
    Rejected,
    /// Not an input at all; not applied.
    InvalidArgument,
}

/// The whole state of a shopauth service.
pub struct Engine {
    pub(crate) settings: Settings,
    pub(crate) keys: Keys,
    pub(crate) config_fp: String,
    /// Latest time seen (ms).
    pub(crate) now: i64,
    pub(crate) slots: Vec<Option<Store>>,
    pub(crate) free: Vec<u32>,
    /// Store id → slot (hashed with a key derived from the secret; the ids
    /// are read from the slots).
    pub(crate) by_id: crate::ids::Ids,
    pub(crate) claims: Claims,
    /// Live state nonces → store.
    pub(crate) nonces: BTreeMap<NonceKey, u32>,
    /// Open requests (the id's index key) → store, and whether it is the
    /// store's notification (else its engine request).
    pub(crate) requests: BTreeMap<[u8; 16], (u32, bool)>,
    pub(crate) timers: TimerQueue,
    pub(crate) gates: BTreeMap<String, Gate>,
    pub(crate) outputs: VecDeque<Output>,
    /// Index of the stores' re-send marks (requests open when the snapshot
    /// they came from was taken): (old serial, store, purpose; None = notify),
    /// sorted by old serial. Rebuilt from the stores on restore.
    pub(crate) resend: Vec<(u64, u32, Option<Purpose>)>,
    pub(crate) counters: Counters,
    /// Change tracking (spec §10): per slot, whether its store changed since
    /// the last `take_changes`, the changed slots in first-change order, and
    /// the ids of stores removed since.
    pub(crate) changed: Vec<bool>,
    pub(crate) changed_slots: Vec<u32>,
    pub(crate) removed: Vec<String>,
    /// Claims of stores held by other engines of a fleet (spec §11): they
    /// bind like local claims, belong to no slot and are never persisted.
    pub(crate) foreign: Foreign,
    /// Loads not yet followed by a call that can issue an id: the counters
    /// before the first of them and the slots they filled. An `unload` that
    /// takes every one of those slots out again puts the counters back, so
    /// that a load undone before anything happened leaves no trace (`fleet`).
    pub(crate) undo: Option<(Counters, Vec<u32>)>,
    /// The `Retry-After` of the 429/503 answer being handled (ms, already
    /// bounded by [`RETRY_MAX_MS`]): the next retry waits at least this
    /// long. Set and cleared around the handling of one answer.
    retry_after_ms: Option<i64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("stores", &self.by_id.len())
            .field("open_requests", &self.requests.len())
            .field("timers", &self.timers.len())
            .field("queued_outputs", &self.outputs.len())
            .finish_non_exhaustive()
    }
}

fn ms_of(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time_of(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn next_backoff(current: i64, max: i64) -> i64 {
    if current <= 0 {
        1000
    } else {
        current.saturating_mul(2).min(max)
    }
}

/// `now + delta_ms`, saturating, within `0..=MAX_TIME_MS`: every time the
/// engine computes goes through here, so none wraps and every one it
/// writes is a four-digit-year RFC 3339 time.
pub(crate) fn at(now: i64, delta_ms: i64) -> i64 {
    now.saturating_add(delta_ms).clamp(0, MAX_TIME_MS)
}

/// Seconds of the configuration as milliseconds, saturating (a huge
/// `code_ttl_s` or `recheck_interval_s` never wraps).
fn secs_ms(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000)
}

impl Engine {
    /// Builds an engine, refusing a bad configuration with the path of the bad field.
    pub fn new(config: Config) -> Result<Engine, ConfigError> {
        let settings = config.validate()?;
        let keys = Keys::derive(&settings.secret);
        let config_fp = keys.config_fingerprint(config.canonical().as_bytes());
        Ok(Engine::empty(settings, keys, config_fp))
    }

    fn empty(settings: Settings, keys: Keys, config_fp: String) -> Engine {
        let gates = settings
            .profiles
            .iter()
            .filter_map(|p| p.rate_limit_per_s.map(|n| (p.name.clone(), Gate::new(n))))
            .collect();
        let index_hasher = keys.index_hasher();
        Engine {
            settings,
            keys,
            config_fp,
            now: 0,
            slots: Vec::new(),
            free: Vec::new(),
            by_id: crate::ids::Ids::new(index_hasher),
            claims: Claims::new(index_hasher),
            nonces: BTreeMap::new(),
            requests: BTreeMap::new(),
            timers: TimerQueue::default(),
            gates,
            outputs: VecDeque::new(),
            resend: Vec::new(),
            counters: Counters::default(),
            changed: Vec::new(),
            changed_slots: Vec::new(),
            removed: Vec::new(),
            foreign: Foreign::new(index_hasher),
            undo: None,
            retry_after_ms: None,
        }
    }

    /// An engine with this one's configuration and no state: no store, no
    /// request, no output, counters at zero, empty rate gates — what `new`
    /// builds too (both through `empty`). Restore and load fill it before
    /// it replaces `self`.
    pub(crate) fn blank(&self) -> Engine {
        Engine::empty(
            self.settings.clone(),
            self.keys.clone(),
            self.config_fp.clone(),
        )
    }

    /// Builds an engine from a configuration text.
    pub fn from_config_json(text: &str) -> Result<Engine, ConfigError> {
        Engine::new(Config::from_json(text)?)
    }

    // ------------------------------------------------------------ host API

    /// Fires what is due at `now`, then applies `input`.
    pub fn handle(&mut self, input: Input, now: DateTime<Utc>) -> Reply {
        self.handle_ms(input, ms_of(now))
    }

    /// [`Engine::handle`] with `now` in Unix epoch milliseconds.
    pub fn handle_ms(&mut self, input: Input, now_ms: i64) -> Reply {
        self.handle_timeout_ms(now_ms);
        self.apply(input)
    }

    /// Time has passed: fire what is due.
    pub fn handle_timeout(&mut self, now: DateTime<Utc>) {
        self.handle_timeout_ms(ms_of(now))
    }

    /// [`Engine::handle_timeout`] in milliseconds.
    pub fn handle_timeout_ms(&mut self, now_ms: i64) {
        // From here on ids may be issued under the counters a load raised:
        // an unload no longer puts them back.
        self.undo = None;
        self.advance(now_ms);
        self.fire_due();
    }

    /// The next queued effect.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<DateTime<Utc>> {
        self.poll_timeout_ms().map(time_of)
    }

    /// [`Engine::poll_timeout`] in milliseconds.
    pub fn poll_timeout_ms(&self) -> Option<i64> {
        if !self.resend.is_empty() {
            return Some(self.now);
        }
        let gate = self.gates.values().filter_map(Gate::next_slot).min();
        let t = match (self.timers.next(), gate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // A rate slot can lie a window past the last time the engine takes.
        t.map(|t| t.clamp(self.now, MAX_TIME_MS))
    }

    /// The latest time seen.
    pub fn now(&self) -> DateTime<Utc> {
        time_of(self.now)
    }

    /// Number of stores.
    pub fn store_count(&self) -> usize {
        self.by_id.len()
    }

    /// Number of outputs waiting to be drained.
    pub fn pending_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// The JSON entry point: parses `text`, applies it, and answers the
    /// reply envelope with the classification the C ABI reports.
    pub fn handle_json(&mut self, text: &str, now_ms: i64) -> (HandleStatus, String) {
        let reply = match crate::json::parse_input(text) {
            Ok(input) => self.handle_ms(input, now_ms),
            Err(InputError::Field(refusal)) => {
                self.handle_timeout_ms(now_ms);
                Err(refusal)
            }
            Err(InputError::Invalid(why)) => {
                let r: Reply = Err(Refusal::illegal("input", why));
                return (
                    HandleStatus::InvalidArgument,
                    crate::message::reply_json(&r),
                );
            }
        };
        let status = if reply.is_ok() {
            HandleStatus::Ok
        } else {
            HandleStatus::Rejected
        };
        (status, crate::message::reply_json(&reply))
    }

    // ------------------------------------------------------------ time

    fn advance(&mut self, now_ms: i64) {
        let t = now_ms.clamp(0, MAX_TIME_MS);
        if t > self.now {
            self.now = t;
        }
    }

    fn fire_due(&mut self) {
        let now = self.now;
        for (_, slot, purpose) in std::mem::take(&mut self.resend) {
            let store = self.store_mut(slot);
            match purpose {
                None => {
                    if let Some(n) = store.notify.as_deref_mut() {
                        n.resend = None;
                    }
                    self.send_notify(slot);
                }
                Some(p) => {
                    store.request = None;
                    self.send_work(slot, p, PRIORITY_RESEND);
                }
            }
        }
        loop {
            while let Some((slot, kind)) = self.timers.pop_due(now, |slot| {
                Some(&mut self.slots.get_mut(slot as usize)?.as_mut()?.timers)
            }) {
                if self.slots[slot as usize].is_some() {
                    self.touch(slot);
                    self.fire(slot, kind);
                }
            }
            if !self.release_gates() {
                break;
            }
        }
    }

    /// Sends what the rate gates let through now; true if anything went.
    fn release_gates(&mut self) -> bool {
        let now = self.now;
        let mut released = Vec::new();
        for gate in self.gates.values_mut() {
            while let Some(slot) = gate.release(now) {
                released.push(slot);
            }
        }
        let any = !released.is_empty();
        for slot in released {
            self.touch(slot);
            let store = self.slots[slot as usize]
                .as_mut()
                .expect("queued stores exist");
            let Some(Request::Queued(q)) = store.request.take() else {
                unreachable!("released stores were queued")
            };
            self.emit_work(slot, q.purpose);
        }
        any
    }

    fn fire(&mut self, slot: u32, kind: TimerKind) {
        let store = self.store(slot);
        let state = store.state;
        match kind {
            TimerKind::Deadline => match state {
                State::Requested => self.fail(
                    slot,
                    Reason::Timeout,
                    "the seller did not complete the authorization within request_ttl_s".into(),
                    None,
                ),
                State::Pending => self.fail(
                    slot,
                    Reason::CodeExpired,
                    "the authorization code expired before the token exchange succeeded".into(),
                    None,
                ),
                _ => {}
            },
            TimerKind::Action => self.act(slot),
            TimerKind::Expiry => {
                if state == State::Authorized {
                    self.expire(
                        slot,
                        Reason::TokenExpired,
                        "no successful refresh before the access token expired".into(),
                        None,
                    );
                }
            }
            TimerKind::Timeout => {
                if let Some(w) = self.store(slot).in_flight() {
                    let key = self.work_key(slot, w);
                    self.requests.remove(&key);
                    self.on_work_result(
                        slot,
                        w,
                        None,
                        "timeout: no answer within request_timeout_s",
                    );
                }
            }
            TimerKind::NotifyRetry => self.send_notify(slot),
            TimerKind::NotifyTimeout => {
                if let Some(key) = self.notify_key(slot) {
                    self.requests.remove(&key);
                    self.on_notify_result(slot, false);
                }
            }
        }
    }

    /// The store's next request is due: send what its state calls for.
    fn act(&mut self, slot: u32) {
        let now = self.now;
        let store = self.store(slot);
        if store.request.is_some() {
            return;
        }
        let checker = self.profile_of(slot).platform().flow() == Flow::Poll;
        match (store.state, store.auth_type) {
            (State::Requested, _) if checker => {
                self.send_work(slot, Purpose::StatusCheck, PRIORITY_POLL)
            }
            (State::Pending, Some(AuthType::Url)) => {
                self.send_work(slot, Purpose::TokenCreate, PRIORITY_POLL)
            }
            (State::Pending, Some(AuthType::Key)) => {
                self.send_work(slot, Purpose::KeyVerify, PRIORITY_POLL)
            }
            (State::Authorized, _) if checker => {
                self.send_work(slot, Purpose::StatusCheck, PRIORITY_RECHECK)
            }
            (State::Authorized, _) if store.tokens.as_ref().is_some_and(|t| t.can_refresh(now)) => {
                self.send_work(slot, Purpose::TokenRefresh, PRIORITY_POLL)
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------ inputs

    fn apply(&mut self, input: Input) -> Reply {
        match input {
            Input::RegisterStore(r) => self.register_store(r),
            Input::RemoveStore(r) => {
                let slot = self.lookup(&r)?;
                self.remove_store(slot);
                Ok(ReplyData::empty())
            }
            Input::Authorize(a) => self.authorize(a),
            Input::OauthRedirect(r) => self.oauth_redirect(r),
            Input::HttpResponse(r) => self.http_answer(&r.request_id, Ok(&r)),
            Input::HttpFailure(f) => self.http_answer(&f.request_id, Err(&f)),
            Input::TokenRejected(r) => self.token_rejected(&r),
            Input::Revoke(r) => {
                let slot = self.lookup(&r)?;
                self.revoke(slot);
                Ok(ReplyData::empty())
            }
            Input::Query(r) => {
                let slot = self.lookup(&r)?;
                let view = self.view(slot);
                Ok(ReplyData::Store(Box::new(view)))
            }
            Input::Credentials(r) => {
                let slot = self.lookup(&r)?;
                let profile = self.profile_of(slot);
                self.store(slot)
                    .credentials(|s| normalize_for(profile, s))
                    .map(ReplyData::Credentials)
                    .ok_or(Refusal::NotAuthorized)
            }
        }
    }

    fn register_store(&mut self, r: RegisterStore) -> Reply {
        validate::register(&r)?;
        if self.settings.profile(&r.platform).is_none() {
            return Err(Refusal::illegal("platform", "is not a configured platform"));
        }
        if self.by_id.contains_key(&self.slots, &r.store_id) {
            return Err(Refusal::StoreExists);
        }
        let notify_url = match &r.notify_url {
            Some(u) => Some(validate::url_as_sent("notify_url", u)?),
            None => None,
        };
        let store = Store::new(
            r.client_id,
            r.store_id,
            r.platform,
            notify_url,
            r.notify_secret,
        );
        let slot = self.insert_store(store);
        self.touch(slot);
        Ok(ReplyData::empty())
    }

    /// Puts a store into a free slot and indexes its id (not marked changed:
    /// a registered store is, a restored or loaded one is not).
    pub(crate) fn insert_store(&mut self, mut store: Store) -> u32 {
        store.profile = self
            .settings
            .profile(&store.platform)
            .expect("stores are only inserted on configured platforms")
            .0 as u16;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(store);
                s
            }
            None => {
                self.slots.push(Some(store));
                self.changed.push(false);
                (self.slots.len() - 1) as u32
            }
        };
        self.by_id.insert(&self.slots, slot);
        slot
    }

    /// Indexes the store ids kept aside while a restore placed its stores;
    /// the first slot whose id a store of a lower slot has, if any.
    pub(crate) fn settle_ids(&mut self) -> Option<u32> {
        self.by_id.settle(&self.slots)
    }

    /// While a restore places its stores: the first slot below `below`
    /// whose id a store of a lower slot has.
    pub(crate) fn first_duplicate_id_before(&self, below: u32) -> Option<u32> {
        self.by_id.first_duplicate_before(&self.slots, below)
    }

    fn lookup(&self, r: &StoreRef) -> Result<u32, Refusal> {
        validate::store_ref(r)?;
        self.owned(&r.client_id, &r.store_id)
    }

    fn owned(&self, client_id: &str, store_id: &str) -> Result<u32, Refusal> {
        match self.by_id.get(&self.slots, store_id) {
            Some(slot) if self.store(slot).client_id == client_id => Ok(slot),
            _ => Err(Refusal::StoreNotExist),
        }
    }

    fn authorize(&mut self, a: Authorize) -> Reply {
        let shaped = validate::authorize_shape(&a)?;
        let slot = self.owned(&a.client_id, &a.store_id)?;
        let profile = self.profile_of(slot);
        validate::authorize_platform(profile, &shaped)?;
        let store = self.store(slot);
        match store.state {
            State::Authorized => return Err(Refusal::RepeatAuthorized),
            State::Pending => return Err(Refusal::InProgress),
            State::Requested
                if store.auth_type == Some(shaped.auth_type)
                    && shaped.auth_type == AuthType::Url
                    && store.seller_id == shaped.seller_id
                    && store.att().redirect_url == shaped.redirect_url =>
            {
                if profile.platform().fresh_url_on_repeat() {
                    if let Some(id) = store.att().nonce {
                        // Same attempt, same nonce, a link signed now.
                        let auth_url = self.auth_url_of(slot, id);
                        self.store_mut(slot).att_mut().auth_url = Some(auth_url.clone());
                        return Ok(ReplyData::AuthUrl { auth_url });
                    }
                }
                return Ok(ReplyData::AuthUrl {
                    auth_url: store.att().auth_url.clone().unwrap_or_default(),
                });
            }
            _ => {}
        }
        if let Some(seller) = &shaped.seller_id {
            let key = self.normalize(slot, seller);
            if self.seller_taken(slot, &key) {
                return Err(Refusal::SellerIdTaken);
            }
        }
        let fingerprint = shaped.key.as_ref().map(|k| match k {
            platform::KeyCredential::Token { token } => {
                self.keys.credential_fingerprint("token", &[token.expose()])
            }
            platform::KeyCredential::Pair {
                api_key,
                api_secret,
            } => self
                .keys
                .credential_fingerprint("api_key_secret", &[api_key.expose(), api_secret.expose()]),
        });
        if let Some(fp) = &fingerprint {
            if self.credential_taken(slot, fp) {
                return Err(Refusal::AuthInfoTaken);
            }
        }
        Ok(self.begin_attempt(slot, shaped, fingerprint))
    }

    fn begin_attempt(
        &mut self,
        slot: u32,
        shaped: Shaped,
        fingerprint: Option<Fingerprint>,
    ) -> ReplyData {
        let now = self.now;
        self.claims_update(slot, |e| {
            e.cancel_activity(slot);
            let ttl = secs_ms(e.settings.timing.request_ttl_s);
            let store = e.store_mut(slot);
            store.attempt += 1;
            store.auth_type = Some(shaped.auth_type);
            store.seller_id = shaped.seller_id;
            store.key = shaped.key.map(Box::new);
            store.fingerprint = fingerprint;
            let mut kept = std::mem::take(&mut store.learned);
            kept.extend(store.scratch.take().map(|a| a.kept).unwrap_or_default());
            kept.sort();
            kept.dedup();
            store.scratch = Some(Box::new(crate::store::Attempt {
                redirect_url: shaped.redirect_url,
                kept,
                ..Default::default()
            }));
            store.tokens = None;
            store.retry_ms = 0;
            store.poll_ms = 0;
            let profile = e.profile_of(slot);
            let (verifies, redirects) = (
                profile.platform().verifies_key(),
                profile.platform().flow() == Flow::Redirect,
            );
            match shaped.auth_type {
                AuthType::Key => {
                    if verifies {
                        e.set_state(slot, State::Pending, None, None);
                        e.send_work(slot, Purpose::KeyVerify, PRIORITY_POLL);
                    } else {
                        e.authorized(slot, None, None);
                    }
                    ReplyData::empty()
                }
                AuthType::Url => {
                    let id = redirects.then(|| {
                        e.counters.nonce += 1;
                        NonceId::V2 {
                            serial: e.counters.nonce,
                            at: now,
                        }
                    });
                    let auth_url = match id {
                        Some(id) => e.auth_url_of(slot, id),
                        None => e.profile_of(slot).platform().authorize_url(&UrlArgs {
                            nonce: "",
                            seller_id: e.store(slot).seller_id.as_deref(),
                            pkce_challenge: None,
                            now,
                        }),
                    };
                    let att = e.store_mut(slot).att_mut();
                    att.nonce = id;
                    att.pkce = id;
                    att.auth_url = Some(auth_url.clone());
                    if let Some(id) = id {
                        let key = e.nonce_key(slot, id);
                        e.nonces.insert(key, slot);
                    }
                    e.set_state(slot, State::Requested, None, None);
                    e.set_timer(slot, TimerKind::Deadline, at(now, ttl));
                    if !redirects {
                        e.send_work(slot, Purpose::StatusCheck, PRIORITY_FIRST);
                    }
                    ReplyData::AuthUrl { auth_url }
                }
            }
        })
    }

    fn oauth_redirect(&mut self, r: OauthRedirect) -> Reply {
        let (_, profile) = self
            .settings
            .profile(&r.platform)
            .ok_or_else(|| Refusal::illegal("platform", "is not a configured platform"))?;
        let params = match (&r.query, &r.params) {
            (Some(q), _) => crate::encoding::parse_query(q),
            (None, Some(p)) => p.clone(),
            (None, None) => return Err(Refusal::illegal("query", "is required (or params)")),
        };
        let nonempty = |k: &str| params.get(k).filter(|v| !v.is_empty());
        let code = nonempty(profile.platform().code_param());
        let error = nonempty("error");
        if code.is_none() && error.is_none() {
            return Err(Refusal::illegal("code", "is required (or error)"));
        }
        let presented = nonempty(profile.platform().nonce_param())
            .ok_or(Refusal::InvalidState("the redirect carries no state nonce"))?;
        let presented = self
            .keys
            .check_nonce_any(presented)
            .ok_or(Refusal::InvalidState("unknown or forged state nonce"))?;
        let key = match presented {
            PresentedNonce::V1(serial) => NonceKey::V1(serial),
            PresentedNonce::V2 { key, .. } => NonceKey::V2(key),
        };
        let slot = *self
            .nonces
            .get(&key)
            .ok_or(Refusal::InvalidState("stale or already used state nonce"))?;
        let store = self.store(slot);
        if store.platform != r.platform {
            return Err(Refusal::InvalidState(
                "the state nonce was issued for another platform",
            ));
        }
        // The nonce must be the one this store's open attempt holds (the
        // MAC binds it to the store's ref, the attempt and its issue time).
        let live = match (presented, store.att().nonce) {
            (PresentedNonce::V1(a), Some(NonceId::V1(b))) => a == b,
            (
                PresentedNonce::V2 {
                    store: sref,
                    attempt,
                    serial,
                    at,
                    ..
                },
                Some(NonceId::V2 { serial: s, at: t }),
            ) => attempt == store.attempt && serial == s && at == t && sref == self.store_ref(slot),
            _ => false,
        };
        if store.state != State::Requested || !live {
            return Err(Refusal::InvalidState("stale state nonce"));
        }
        let checked = profile
            .platform()
            .check_redirect(&params, store.seller_id.as_deref(), self.now)
            .map_err(Refusal::InvalidState)?;
        // Accepted: the nonce is spent.
        let code_ttl = secs_ms(profile.code_ttl_s());
        self.nonces.remove(&key);
        let now = self.now;
        let store = self.store_mut(slot);
        let att = store.att_mut();
        att.nonce = None;
        att.came_back = true;
        let reply = ReplyData::Redirected {
            client_id: store.client_id.clone(),
            store_id: store.store_id.clone(),
            attempt: store.attempt,
        };
        match code {
            Some(code) if error.is_none() => {
                store.att_mut().code = Some(code.as_str().into());
                if let Some(seller) = checked.seller {
                    if !self.take_redirect_seller(slot, seller) {
                        return Ok(reply);
                    }
                }
                self.set_timer(slot, TimerKind::Deadline, at(now, code_ttl));
                self.set_state(slot, State::Pending, None, None);
                self.send_work(slot, Purpose::TokenCreate, PRIORITY_POLL);
            }
            _ => {
                // Redacted before it is cut (spec §1): cut first, a secret
                // straddling the cut would leave a fragment that redaction
                // no longer recognises.
                let raw = error.map(String::as_str).unwrap_or("");
                let e: String =
                    crate::redact::message(self.store(slot), self.profile_of(slot), raw)
                        .chars()
                        .take(64)
                        .collect();
                self.fail(
                    slot,
                    Reason::Denied,
                    format!("the platform redirected with error {e}"),
                    None,
                );
            }
        }
        Ok(reply)
    }

    fn http_answer(
        &mut self,
        request_id: &str,
        answer: Result<&HttpResponse, &HttpFailure>,
    ) -> Reply {
        let (_, key) = self
            .keys
            .check_request_id(request_id)
            .ok_or(Refusal::UnknownRequest)?;
        let (slot, is_notify) = self.requests.remove(&key).ok_or(Refusal::UnknownRequest)?;
        let store = self.store(slot);
        if is_notify {
            let ok = matches!(answer, Ok(r) if (200..300).contains(&r.status));
            self.on_notify_result(slot, ok);
        } else if let Some(w) = store.in_flight() {
            match answer {
                Ok(r) => {
                    self.retry_after_ms = platform::retry_after_ms(r.status, &r.headers, self.now)
                        .map(|ms| ms.min(RETRY_MAX_MS));
                    self.on_work_result(slot, w, Some((r.status, &r.body)), "");
                    self.retry_after_ms = None;
                }
                Err(_) => self.on_work_result(slot, w, None, "the transport failed"),
            }
        }
        Ok(ReplyData::empty())
    }

    fn token_rejected(&mut self, r: &StoreRef) -> Reply {
        let slot = self.lookup(r)?;
        let now = self.now;
        let store = self.store(slot);
        if store.state != State::Authorized {
            return Err(Refusal::NotAuthorized);
        }
        let busy = store.request.is_some();
        let can_refresh = store.tokens.as_ref().is_some_and(|t| t.can_refresh(now));
        // Checkers re-check now, token platforms refresh now if they can;
        // otherwise the credentials are dead.
        let action = match self.profile_of(slot).platform().flow() {
            Flow::Poll => Some(Purpose::StatusCheck),
            Flow::KeyOnly => None,
            Flow::Redirect => can_refresh.then_some(Purpose::TokenRefresh),
        };
        match action {
            Some(_) if busy => {}
            Some(purpose) => {
                self.cancel_timer(slot, TimerKind::Action);
                self.send_work(slot, purpose, PRIORITY_POLL);
            }
            None => self.expire(
                slot,
                Reason::TokenRejected,
                "the platform refused the credentials and they cannot be refreshed".into(),
                None,
            ),
        }
        Ok(ReplyData::empty())
    }

    // ------------------------------------------------------------ answers

    fn on_work_result(
        &mut self,
        slot: u32,
        work: Work,
        answer: Option<(u16, &str)>,
        transport: &str,
    ) {
        self.cancel_timer(slot, TimerKind::Timeout);
        self.store_mut(slot).request = None;
        let state = self.store(slot).state;
        let transport_msg = || format!("{transport} ({})", work.purpose.as_str());
        match (work.purpose, state) {
            (Purpose::TokenCreate, State::Pending) | (Purpose::TokenRefresh, State::Authorized) => {
                let outcome = match answer {
                    None => Outcome::Retry(transport_msg()),
                    Some((status, body)) => self.read_answer(slot, work.purpose, status, body),
                };
                let refresh = work.purpose == Purpose::TokenRefresh;
                match outcome {
                    Outcome::Tokens(tokens) if refresh => self.on_refreshed(slot, tokens),
                    Outcome::Tokens(tokens) => self.on_tokens(slot, tokens),
                    Outcome::Retry(_) => self.retry_later(slot),
                    Outcome::Rejected(reason, m) if refresh => self.expire(slot, reason, m, None),
                    Outcome::Rejected(reason, m) => self.fail(slot, reason, m, None),
                    Outcome::HostBroken(m)
                        if self
                            .profile_of(slot)
                            .platform()
                            .retries_host_errors_on_create() =>
                    {
                        self.note_error(slot, Reason::SystemError, m);
                        self.retry_later(slot);
                    }
                    Outcome::HostBroken(m) | Outcome::BadParam(m) if refresh => {
                        self.note_error(slot, Reason::SystemError, m);
                        self.retry_later(slot);
                    }
                    Outcome::HostBroken(m) | Outcome::BadParam(m) => {
                        self.fail(slot, Reason::SystemError, m, None)
                    }
                    // Not an answer a token endpoint gives: tried again.
                    Outcome::Authorized { .. } | Outcome::NotYet { .. } => self.retry_later(slot),
                }
            }
            (Purpose::KeyVerify, State::Pending) => {
                let outcome = match answer {
                    None => Outcome::Retry(transport_msg()),
                    Some((status, body)) => self.read_answer(slot, work.purpose, status, body),
                };
                match outcome {
                    Outcome::Authorized { .. } => self.authorized(slot, None, None),
                    Outcome::Rejected(_, m) => self.fail(slot, Reason::PlatformRejected, m, None),
                    _ => {
                        let att = self.store_mut(slot).att_mut();
                        att.tries += 1;
                        if att.tries >= VERIFY_TRIES {
                            self.fail(
                                slot,
                                Reason::VerifyFailed,
                                format!(
                                    "the credentials could not be verified in {VERIFY_TRIES} tries"
                                ),
                                None,
                            );
                        } else {
                            self.retry_later(slot);
                        }
                    }
                }
            }
            (Purpose::StatusCheck, State::Requested | State::Authorized) => {
                let outcome = match answer {
                    None => Outcome::Retry(transport_msg()),
                    Some((status, body)) => self.read_answer(slot, work.purpose, status, body),
                };
                self.on_check(slot, state, outcome);
            }
            _ => {}
        }
    }

    fn on_check(&mut self, slot: u32, state: State, outcome: Outcome) {
        let now = self.now;
        let add_cost = |store: &mut Store, cost: Option<i64>| {
            if let Some(c) = cost {
                store.cost_total = store.cost_total.saturating_add(c);
            }
        };
        match (state, outcome) {
            (State::Requested, Outcome::Authorized { cost }) => {
                add_cost(self.store_mut(slot), cost);
                self.authorized(slot, None, cost);
            }
            (State::Requested, Outcome::NotYet { cost, link }) => {
                // The link becomes the auth_url that `query` shows: one that
                // carries a secret (a service echoing its access token) is
                // not taken (spec §1).
                let link = link.filter(|l| {
                    !crate::redact::carries_secret(self.store(slot), self.profile_of(slot), l)
                });
                let store = self.store_mut(slot);
                add_cost(store, cost);
                if let Some(l) = link {
                    store.att_mut().auth_url = Some(l);
                }
                store.retry_ms = 0;
                store.poll_ms = if store.poll_ms <= 0 {
                    POLL_FIRST_MS
                } else {
                    store.poll_ms.saturating_mul(2).min(POLL_MAX_MS)
                };
                let next = at(now, store.poll_ms);
                self.set_timer(slot, TimerKind::Action, next);
            }
            (State::Requested, Outcome::BadParam(m)) => {
                self.fail(slot, Reason::PlatformRejected, m, None)
            }
            (State::Authorized, Outcome::Authorized { cost }) => {
                let store = self.store_mut(slot);
                add_cost(store, cost);
                store.retry_ms = 0;
                self.schedule_recheck(slot);
            }
            (State::Authorized, Outcome::NotYet { cost, .. }) => {
                add_cost(self.store_mut(slot), cost);
                self.expire(
                    slot,
                    Reason::SellerUnauthorized,
                    "the status service says the seller no longer authorizes".into(),
                    cost,
                );
            }
            (_, Outcome::HostBroken(m) | Outcome::BadParam(m)) => {
                self.note_error(slot, Reason::SystemError, m);
                self.retry_later(slot);
            }
            (_, Outcome::Retry(_)) => self.retry_later(slot),
            _ => {}
        }
    }

    fn on_tokens(&mut self, slot: u32, mut tokens: Tokens) {
        if let Some(named) = tokens.sellers.take() {
            let Some(learned) = self.answer_sellers(slot, named) else {
                // Malformed, like a malformed lifetime: retried until the code expires.
                self.retry_later(slot);
                return;
            };
            let store = self.store(slot);
            if let Some(req) = &store.seller_id {
                let req = self.normalize(slot, req);
                if !learned.contains(&req) {
                    self.fail(
                        slot,
                        Reason::SellerMismatch,
                        "the platform's sellers do not include the requested seller_id".into(),
                        None,
                    );
                    return;
                }
            }
            if learned.iter().any(|s| self.seller_taken(slot, s)) {
                self.fail(
                    slot,
                    Reason::SellerIdTaken,
                    "a seller the platform named is bound to another store".into(),
                    None,
                );
                return;
            }
            tokens.sellers = Some(learned.clone());
            self.claims_update(slot, |e| e.store_mut(slot).learned = learned);
        }
        self.authorized(slot, Some(tokens), None);
    }

    /// The seller a redirect names (Shopee's `shop_id`, Amazon's
    /// `selling_partner_id`), claimed as the store's learned seller under
    /// the binding rules. False when the attempt failed instead: a seller
    /// id outside 1–64 characters (`platform_rejected`), one other than the
    /// requested seller_id (`seller_mismatch`), or one bound to another
    /// store (`seller_id_taken`).
    fn take_redirect_seller(&mut self, slot: u32, seller: String) -> bool {
        if !platform::seller_len_ok(&seller) {
            self.fail(
                slot,
                Reason::PlatformRejected,
                "the redirect names a seller id outside 1-64 characters".into(),
                None,
            );
            return false;
        }
        let key = self.normalize(slot, &seller);
        let store = self.store(slot);
        if let Some(req) = &store.seller_id {
            if self.normalize(slot, req) != key {
                self.fail(
                    slot,
                    Reason::SellerMismatch,
                    "the redirect names a seller other than the requested seller_id".into(),
                    None,
                );
                return false;
            }
        }
        if self.seller_taken(slot, &key) {
            self.fail(
                slot,
                Reason::SellerIdTaken,
                "the seller the redirect names is bound to another store".into(),
                None,
            );
            return false;
        }
        self.claims_update(slot, |e| {
            let store = e.store_mut(slot);
            if !store.learned.contains(&key) {
                store.learned.push(key);
            }
        });
        true
    }

    /// The claim keys of the sellers a token answer names: normalized, the
    /// first of each kept, in the answer's order, in linear time. `None`
    /// when the answer is malformed: a seller id outside 1–64 characters,
    /// or more than [`platform::MAX_SELLERS`] distinct ones.
    fn answer_sellers(&self, slot: u32, named: Vec<String>) -> Option<Vec<String>> {
        if !named.iter().all(|s| platform::seller_len_ok(s)) {
            return None;
        }
        let keys = named.iter().map(|s| self.normalize(slot, s)).collect();
        platform::first_of_each(keys, platform::MAX_SELLERS, *self.by_id.hasher()).ok()
    }

    /// A refresh answer's tokens. Its sellers are handled like those of the
    /// first answer: one named for the first time is claimed when free; one
    /// held by another store is not added and the store (still
    /// `authorized`) notes `seller_id_taken`. One no longer named stays
    /// claimed. A malformed list, or one that would take the store past
    /// [`platform::MAX_SELLERS`], is retried and the old tokens kept.
    fn on_refreshed(&mut self, slot: u32, mut tokens: Tokens) {
        let mut added: Vec<String> = Vec::new();
        let mut taken = false;
        if let Some(named) = tokens.sellers.take() {
            let Some(keys) = self.answer_sellers(slot, named) else {
                self.retry_later(slot);
                return;
            };
            let store = self.store(slot);
            let requested = store.seller_id.as_deref().map(|s| self.normalize(slot, s));
            let mut held: HashSet<&str, IndexHasher> = HashSet::with_capacity_and_hasher(
                store.learned.len() + keys.len() + 1,
                *self.by_id.hasher(),
            );
            held.extend(requested.as_deref());
            held.extend(store.learned.iter().map(String::as_str));
            for k in &keys {
                if held.contains(k.as_str()) {
                    continue;
                }
                if self.seller_taken(slot, k) {
                    taken = true;
                    continue;
                }
                held.insert(k);
                added.push(k.clone());
            }
            if held.len() > platform::MAX_SELLERS {
                self.retry_later(slot);
                return;
            }
            tokens.sellers = Some(keys);
        }
        let store = self.store_mut(slot);
        store.tokens = Some(Box::new(tokens));
        store.retry_ms = 0;
        self.schedule_tokens(slot);
        if !added.is_empty() {
            self.claims_update(slot, |e| e.store_mut(slot).learned.extend(added));
        }
        if taken {
            self.note_error(
                slot,
                Reason::SellerIdTaken,
                "a seller the refresh answer named is bound to another store and was not added"
                    .into(),
            );
        }
    }

    // ------------------------------------------------------------ outcomes

    /// The attempt succeeded.
    fn authorized(&mut self, slot: u32, tokens: Option<Tokens>, cost: Option<i64>) {
        self.claims_update(slot, |e| {
            e.cancel_timer(slot, TimerKind::Deadline);
            let store = e.store_mut(slot);
            store.tokens = tokens.map(Box::new);
            store.retry_ms = 0;
            store.last_error = None;
            if let Some(att) = store.scratch.as_deref_mut() {
                att.kept.clear();
                att.code = None;
            }
            e.set_state(slot, State::Authorized, None, cost);
            if e.profile_of(slot).platform().flow() == Flow::Poll {
                e.schedule_recheck(slot);
            } else {
                e.schedule_tokens(slot);
            }
        });
        self.redirect(slot, None);
        self.store_mut(slot).scratch = None;
    }

    /// The attempt failed: claims released, credentials discarded.
    fn fail(&mut self, slot: u32, reason: Reason, message: String, cost: Option<i64>) {
        let error = self.error_of(slot, reason, &message);
        self.claims_update(slot, |e| {
            e.cancel_activity(slot);
            let store = e.store_mut(slot);
            store.tokens = None;
            store.key = None;
            store.fingerprint = None;
            store.learned.clear();
            if let Some(att) = store.scratch.as_deref_mut() {
                att.kept.clear();
                att.code = None;
            }
            store.last_error = Some(error);
            e.set_state(slot, State::Failed, Some(reason), cost);
        });
        self.redirect(slot, Some(reason));
        self.store_mut(slot).scratch = None;
    }

    /// Credentials no longer valid; claims kept for re-authorization.
    fn expire(&mut self, slot: u32, reason: Reason, message: String, cost: Option<i64>) {
        let error = self.error_of(slot, reason, &message);
        self.cancel_activity(slot);
        let store = self.store_mut(slot);
        store.tokens = None;
        store.key = None;
        store.last_error = Some(error);
        self.set_state(slot, State::Expired, Some(reason), cost);
    }

    fn revoke(&mut self, slot: u32) {
        if matches!(self.store(slot).state, State::Unauthorized | State::Revoked) {
            return;
        }
        self.claims_update(slot, |e| {
            e.cancel_activity(slot);
            let store = e.store_mut(slot);
            store.tokens = None;
            store.key = None;
            store.fingerprint = None;
            store.learned.clear();
            store.scratch = None;
            e.set_state(slot, State::Revoked, None, None);
        });
    }

    fn remove_store(&mut self, slot: u32) {
        self.claims_update(slot, |e| {
            e.cancel_activity(slot);
            e.cancel_timer(slot, TimerKind::NotifyRetry);
            e.cancel_timer(slot, TimerKind::NotifyTimeout);
            if let Some(key) = e.notify_key(slot) {
                e.requests.remove(&key);
            }
            if let Some(n) = e.store_mut(slot).notify.as_deref_mut() {
                n.in_flight = None;
            }
            e.resend.retain(|(_, s, _)| *s != slot);
            if let Some(n) = e.store_mut(slot).notify.as_deref_mut() {
                n.resend = None;
            }
            e.set_state(slot, State::Removed, None, None);
        });
        let store = self.slots[slot as usize]
            .take()
            .expect("removed store exists");
        self.by_id.remove(&store.store_id, slot);
        self.removed.push(store.store_id);
        self.free.push(slot);
    }

    fn note_error(&mut self, slot: u32, reason: Reason, message: String) {
        let error = self.error_of(slot, reason, &message);
        self.store_mut(slot).last_error = Some(error);
    }

    /// A `last_error` whose message may carry text from outside (a
    /// platform's error message, a seller's error parameter): every secret
    /// held for the store and its app is redacted, then it is cut to 256
    /// characters.
    fn error_of(&self, slot: u32, reason: Reason, message: &str) -> Box<LastError> {
        Box::new(LastError {
            reason,
            message: crate::redact::message(self.store(slot), self.profile_of(slot), message),
        })
    }

    fn redirect(&mut self, slot: u32, reason: Option<Reason>) {
        let store = self.store(slot);
        if !store.att().came_back {
            return;
        }
        let Some(url) = &store.att().redirect_url else {
            return;
        };
        let location = notify::redirect_location(
            url,
            &store.client_id,
            &store.store_id,
            store.display_seller(),
            reason,
        );
        let out = Output::Redirect(Redirect {
            client_id: store.client_id.clone(),
            store_id: store.store_id.clone(),
            attempt: store.attempt,
            location,
        });
        self.store_mut(slot).att_mut().came_back = false;
        self.outputs.push_back(out);
    }

    /// Moves the store to `to`, emitting the transition and queuing the notification.
    fn set_state(&mut self, slot: u32, to: State, reason: Option<Reason>, cost: Option<i64>) {
        let now = self.now;
        self.counters.event += 1;
        let serial = self.counters.event;
        let event_id = {
            let store = self.store(slot);
            let sref = self.store_ref(slot);
            let seq = store.seq + 1;
            self.keys.event_id(
                &sref,
                seq,
                &[
                    store.state.as_str().as_bytes(),
                    to.as_str().as_bytes(),
                    &store.attempt.to_be_bytes(),
                    &now.to_be_bytes(),
                    &serial.to_be_bytes(),
                ],
            )
        };
        self.touch(slot);
        let store = self.slots[slot as usize].as_mut().expect("store exists");
        let from = store.state;
        store.state = to;
        store.seq += 1;
        let body = store.notify.as_ref().and_then(|_| {
            notify::body(
                &event_id,
                store.seq,
                &store.client_id,
                &store.store_id,
                store.display_seller(),
                to,
                reason,
                store.attempt,
                now,
            )
        });
        self.outputs.push_back(Output::Transition(Transition {
            event_id,
            seq: store.seq,
            client_id: store.client_id.clone(),
            store_id: store.store_id.clone(),
            from,
            to,
            attempt: store.attempt,
            at: time_of(now),
            reason,
            cost,
        }));
        if let (Some(body), Some(n)) = (body, store.notify.as_deref_mut()) {
            n.outbox.push_back(Notice {
                body,
                created_at: now,
            });
            let idle = n.in_flight.is_none() && store.timers.get(TimerKind::NotifyRetry).is_none();
            if idle {
                self.send_notify(slot);
            }
        }
    }

    // ------------------------------------------------------------ scheduling

    /// Retries after the next backoff step, or after the answer's
    /// `Retry-After` when that is longer (both at most [`RETRY_MAX_MS`]).
    fn retry_later(&mut self, slot: u32) {
        let now = self.now;
        let wait = self.retry_after_ms.take().unwrap_or(0);
        let store = self.store_mut(slot);
        store.retry_ms = next_backoff(store.retry_ms, RETRY_MAX_MS).max(wait);
        let next = at(now, store.retry_ms);
        self.set_timer(slot, TimerKind::Action, next);
    }

    /// Refresh and expiry timers of an authorized token store.
    fn schedule_tokens(&mut self, slot: u32) {
        let now = self.now;
        self.cancel_timer(slot, TimerKind::Action);
        self.cancel_timer(slot, TimerKind::Expiry);
        let lead = secs_ms(self.profile_of(slot).refresh_lead_s());
        let Some(t) = self.store(slot).tokens.as_deref() else {
            return;
        };
        let Some(exp) = t.access_expires_at else {
            return;
        };
        let refresh_at = t.can_refresh(now).then(|| {
            let lifetime = exp.saturating_sub(t.obtained_at).max(0);
            exp.saturating_sub(lead.min(lifetime / 2)).max(now)
        });
        self.set_timer(slot, TimerKind::Expiry, exp);
        if let Some(at) = refresh_at {
            self.set_timer(slot, TimerKind::Action, at);
        }
    }

    fn schedule_recheck(&mut self, slot: u32) {
        let now = self.now;
        let Some(interval) = self.profile_of(slot).platform().recheck_interval_s() else {
            return;
        };
        let interval = secs_ms(interval);
        let offset = self
            .keys
            .store_offset_ms(&self.store(slot).store_id, RECHECK_SPREAD_MS);
        self.set_timer(slot, TimerKind::Action, at(at(now, interval), offset));
    }

    /// Sets a timer, clamped to `0..=MAX_TIME_MS` (the latest `now` the
    /// engine takes, so every timer can still fire).
    fn set_timer(&mut self, slot: u32, kind: TimerKind, when: i64) {
        self.counters.timer += 1;
        let seq = self.counters.timer;
        let when = when.clamp(0, MAX_TIME_MS);
        self.touch(slot);
        let store = self.slots[slot as usize].as_mut().expect("store exists");
        self.timers.set(&mut store.timers, slot, kind, when, seq);
    }

    fn cancel_timer(&mut self, slot: u32, kind: TimerKind) {
        // Cancelling a timer that is not set changes no record.
        if self.store(slot).timers.get(kind).is_none() {
            return;
        }
        self.touch(slot);
        let store = self.slots[slot as usize].as_mut().expect("store exists");
        self.timers.cancel(&mut store.timers, kind);
    }

    /// Cancels the attempt's request, waiting request, nonce and lifecycle
    /// timers (notifications go on).
    fn cancel_activity(&mut self, slot: u32) {
        for kind in [
            TimerKind::Deadline,
            TimerKind::Action,
            TimerKind::Expiry,
            TimerKind::Timeout,
        ] {
            self.cancel_timer(slot, kind);
        }
        if let Some(w) = self.store(slot).in_flight() {
            let key = self.work_key(slot, w);
            self.requests.remove(&key);
        }
        let nonce = self.store(slot).att().nonce;
        if let Some(id) = nonce {
            let key = self.nonce_key(slot, id);
            self.nonces.remove(&key);
        }
        self.touch(slot);
        let store = self.slots[slot as usize].as_mut().expect("store exists");
        match store.request.take() {
            Some(Request::InFlight(_)) => {}
            Some(Request::Queued(q)) => {
                if let Some(g) = self.gates.get_mut(store.platform.as_str()) {
                    g.dequeue(q.priority, q.seq);
                }
            }
            Some(Request::Resend(_)) => {
                self.resend.retain(|(_, s, p)| !(*s == slot && p.is_some()))
            }
            None => {}
        }
        if let Some(a) = store.scratch.as_deref_mut() {
            a.nonce = None;
        }
    }

    // ------------------------------------------------------------ requests

    /// Sends the store's request now, or queues it behind the platform's rate gate.
    fn send_work(&mut self, slot: u32, purpose: Purpose, priority: u8) {
        let now = self.now;
        self.touch(slot);
        let store = self.slots[slot as usize].as_mut().expect("store exists");
        if let Some(gate) = self.gates.get_mut(store.platform.as_str()) {
            if !gate.may_send(now) {
                self.counters.queue += 1;
                let seq = self.counters.queue;
                gate.enqueue(priority, seq, slot);
                store.request = Some(Request::Queued(Queued {
                    priority,
                    seq,
                    purpose,
                    since: now,
                }));
                return;
            }
            gate.record(now);
        }
        self.emit_work(slot, purpose);
    }

    /// A new request id for the store: the next engine-wide serial, sent now.
    fn next_request_id(&mut self, slot: u32, purpose: Purpose) -> (u64, String, [u8; 16]) {
        self.counters.request += 1;
        let serial = self.counters.request;
        let (id, key) = self.request_id_of(slot, serial, self.now, purpose);
        (serial, id, key)
    }

    /// The id and index key of the store's request `serial`, sent at `at`.
    fn request_id_of(&self, slot: u32, serial: u64, at: i64, p: Purpose) -> (String, [u8; 16]) {
        self.keys
            .request_id(&self.store_ref(slot), serial, at, purpose_code(p))
    }

    /// The index key of the store's engine request `w` (in flight).
    pub(crate) fn work_key(&self, slot: u32, w: Work) -> [u8; 16] {
        self.request_id_of(slot, w.serial, w.sent_at, w.purpose).1
    }

    /// The index key of the store's notification in flight, if one is.
    pub(crate) fn notify_key(&self, slot: u32) -> Option<[u8; 16]> {
        let n = self.store(slot).notify.as_deref()?;
        let serial = n.in_flight?;
        Some(
            self.request_id_of(slot, serial, n.sent_at, Purpose::Notify)
                .1,
        )
    }

    /// The store's `ref`.
    pub(crate) fn store_ref(&self, slot: u32) -> Ref {
        self.keys.store_ref(&self.store(slot).store_id)
    }

    /// The index key of a live nonce of the store's open attempt.
    pub(crate) fn nonce_key(&self, slot: u32, id: NonceId) -> NonceKey {
        match id {
            NonceId::V1(serial) => NonceKey::V1(serial),
            NonceId::V2 { serial, at } => {
                let store = self.store(slot);
                NonceKey::V2(
                    self.keys
                        .nonce_key(&self.store_ref(slot), store.attempt, serial, at),
                )
            }
        }
    }

    /// The text of a nonce of the store's open attempt.
    fn nonce_text(&self, slot: u32, id: NonceId) -> String {
        match id {
            NonceId::V1(serial) => self.keys.nonce(serial),
            NonceId::V2 { serial, at } => {
                self.keys
                    .nonce_v2(&self.store_ref(slot), self.store(slot).attempt, serial, at)
            }
        }
    }

    /// The authorize URL of the store's open attempt under nonce `id`,
    /// built at the engine's now.
    fn auth_url_of(&self, slot: u32, id: NonceId) -> String {
        let profile = self.profile_of(slot);
        let challenge = profile
            .platform()
            .uses_pkce()
            .then(|| Keys::pkce_challenge(&self.pkce_verifier(slot, id)));
        profile.platform().authorize_url(&UrlArgs {
            nonce: &self.nonce_text(slot, id),
            seller_id: self.store(slot).seller_id.as_deref(),
            pkce_challenge: challenge.as_deref(),
            now: self.now,
        })
    }

    /// The PKCE verifier of a nonce of the store's open attempt.
    fn pkce_verifier(&self, slot: u32, id: NonceId) -> String {
        match id {
            NonceId::V1(serial) => self.keys.pkce_verifier(serial),
            NonceId::V2 { serial, at } => self.keys.pkce_verifier_v2(
                &self.store_ref(slot),
                self.store(slot).attempt,
                serial,
                at,
            ),
        }
    }

    fn emit_work(&mut self, slot: u32, purpose: Purpose) {
        let now = self.now;
        let out = self.with_ctx(slot, |profile, ctx| profile.platform().build(purpose, ctx));
        let serial = self.open_request(slot, purpose, out);
        self.store_mut(slot).request = Some(Request::InFlight(Work {
            serial,
            purpose,
            sent_at: now,
        }));
    }

    fn send_notify(&mut self, slot: u32) {
        let now = self.now;
        let store = self.store(slot);
        let Some(n) = store.notify.as_deref() else {
            return;
        };
        let Some(head) = n.outbox.front().filter(|_| n.in_flight.is_none()) else {
            return;
        };
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        if let Some(secret) = &n.secret {
            headers.push((
                notify::SIGNATURE_HEADER.to_owned(),
                notify::signature(secret.expose(), &head.body),
            ));
        }
        let out = platform::Outgoing {
            method: "POST",
            url: n.url.clone(),
            headers,
            body: Some(head.body.clone()),
        };
        self.cancel_timer(slot, TimerKind::NotifyRetry);
        let serial = self.open_request(slot, Purpose::Notify, out);
        if let Some(n) = self.store_mut(slot).notify.as_deref_mut() {
            n.in_flight = Some(serial);
            n.sent_at = now;
        }
    }

    /// Opens a request of the store's, the one way every request is opened
    /// (platform work and notifications alike): gives it an id, indexes it,
    /// sets its time-out timer and queues its `http_request` output.
    /// Returns its serial.
    fn open_request(&mut self, slot: u32, purpose: Purpose, out: platform::Outgoing) -> u64 {
        let now = self.now;
        let (serial, request_id, key) = self.next_request_id(slot, purpose);
        let is_notify = purpose == Purpose::Notify;
        self.requests.insert(key, (slot, is_notify));
        let timer = if is_notify {
            TimerKind::NotifyTimeout
        } else {
            TimerKind::Timeout
        };
        let timeout = secs_ms(self.settings.timing.request_timeout_s);
        self.set_timer(slot, timer, at(now, timeout));
        let store = self.store(slot);
        self.outputs.push_back(Output::HttpRequest(HttpRequest {
            request_id,
            client_id: store.client_id.clone(),
            store_id: store.store_id.clone(),
            purpose,
            method: out.method.to_owned(),
            url: out.url,
            headers: out.headers,
            body: out.body,
        }));
        serial
    }

    fn on_notify_result(&mut self, slot: u32, delivered: bool) {
        let now = self.now;
        self.cancel_timer(slot, TimerKind::NotifyTimeout);
        let store = self.store_mut(slot);
        let Some(n) = store.notify.as_deref_mut() else {
            return;
        };
        n.in_flight = None;
        let Some(head) = n.outbox.front() else { return };
        let give_up_at = at(head.created_at, NOTIFY_GIVE_UP_MS);
        if delivered || now >= give_up_at {
            n.outbox.pop_front();
            n.backoff_ms = 0;
            if !delivered {
                store.last_error = Some(Box::new(LastError {
                    reason: Reason::NotifyAbandoned,
                    message: "a notification could not be delivered within 24 h".into(),
                }));
            }
            self.send_notify(slot);
        } else {
            n.backoff_ms = next_backoff(n.backoff_ms, NOTIFY_MAX_MS);
            let next = at(now, n.backoff_ms).min(give_up_at);
            self.set_timer(slot, TimerKind::NotifyRetry, next);
        }
    }

    // ------------------------------------------------------------ helpers

    /// Runs `f` with the store's platform profile and what its requests are
    /// built and read from.
    /// The platform's reading of an answer to the store's request.
    fn read_answer(&self, slot: u32, purpose: Purpose, status: u16, body: &str) -> Outcome {
        self.with_ctx(slot, |profile, ctx| {
            profile.platform().read(purpose, status, body, ctx)
        })
    }

    fn with_ctx<R>(&self, slot: u32, f: impl FnOnce(&crate::config::Profile, &Ctx<'_>) -> R) -> R {
        let store = self.store(slot);
        let verifier = store.att().pkce.map(|id| self.pkce_verifier(slot, id));
        let ctx = Ctx {
            now: self.now,
            seller_id: store.seller_id.as_deref(),
            code: store.att().code.as_ref().map(|c| c.expose()),
            pkce_verifier: verifier.as_deref(),
            tokens: store.tokens.as_deref(),
            key: store.key.as_deref(),
            learned: &store.learned,
        };
        f(self.profile_of(slot), &ctx)
    }

    /// Notes that the store in `slot` changed (its record goes into the next
    /// `take_changes`). Every mutable access to a store goes through here.
    fn touch(&mut self, slot: u32) {
        let i = slot as usize;
        if !self.changed[i] {
            self.changed[i] = true;
            self.changed_slots.push(slot);
        }
    }

    pub(crate) fn store(&self, slot: u32) -> &Store {
        self.slots[slot as usize].as_ref().expect("store exists")
    }

    fn store_mut(&mut self, slot: u32) -> &mut Store {
        self.touch(slot);
        self.slots[slot as usize].as_mut().expect("store exists")
    }

    fn profile_of(&self, slot: u32) -> &crate::config::Profile {
        &self.settings.profiles[self.store(slot).profile as usize]
    }

    /// The claim key of a seller id on the store's platform.
    pub(crate) fn normalize(&self, slot: u32, seller: &str) -> String {
        normalize_for(self.profile_of(slot), seller)
    }

    /// Whether a seller (its claim key on the store's platform) is bound to
    /// another store: one in this engine, or a foreign one (spec §11: a
    /// foreign claim binds exactly like a local one).
    fn seller_taken(&self, slot: u32, key: &str) -> bool {
        let store = self.store(slot);
        self.claims
            .seller_owner(&store.platform, key)
            .is_some_and(|o| o != slot)
            || self
                .foreign
                .seller_owner(&store.platform, key)
                .is_some_and(|id| id != store.store_id)
    }

    /// Whether a credential fingerprint is bound to another store, here or foreign.
    fn credential_taken(&self, slot: u32, fp: &Fingerprint) -> bool {
        self.claims.credential_owner(fp).is_some_and(|o| o != slot)
            || self
                .foreign
                .credential_owner(fp)
                .is_some_and(|id| id != self.store(slot).store_id)
    }

    pub(crate) fn held(&self, slot: u32) -> Held {
        held_of(self.store(slot), self.profile_of(slot))
    }

    /// Claims what the store in `slot` holds in a claim index being rebuilt
    /// (restore): the error names the invariant when another store holds
    /// one of its claims already. The same claims as [`Engine::held`], with
    /// no list or key built but the index's own.
    pub(crate) fn claim_rebuilt(&mut self, slot: u32) -> Result<(), &'static str> {
        // Field borrows (not `self.store`), so the claim index can be
        // updated while the store is borrowed.
        let store = self.slots[slot as usize].as_ref().expect("store exists");
        if !store.state.holds_claims() {
            return Ok(());
        }
        let profile = &self.settings.profiles[store.profile as usize];
        let requested = store.seller_id.as_deref().map(|s| normalized(profile, s));
        let sellers = requested
            .as_deref()
            .into_iter()
            .chain(store.learned.iter().map(String::as_str))
            .chain(store.att().kept.iter().map(String::as_str));
        for s in sellers {
            if !self.claims.claim_seller(slot, &store.platform, s) {
                return Err(crate::claims::SELLER_TWICE);
            }
        }
        if let Some(c) = store.credential_key() {
            if !self.claims.claim_credential(slot, c) {
                return Err(crate::claims::CREDENTIAL_TWICE);
            }
        }
        Ok(())
    }

    /// Runs `f`, which may change what the store in `slot` holds (its
    /// state, sellers, credential), and brings the claim index in step with
    /// the store afterwards: the one way claims change, so no change can
    /// forget them.
    fn claims_update<R>(&mut self, slot: u32, f: impl FnOnce(&mut Self) -> R) -> R {
        let before = self.held(slot);
        let r = f(self);
        self.resync(slot, &before);
        r
    }

    fn resync(&mut self, slot: u32, before: &Held) {
        let after = self.held(slot);
        if &after == before {
            return;
        }
        let platform = self.store(slot).platform.clone();
        self.claims.sync(slot, &platform, before, &after);
    }

    /// The claims the store holds now, as in `query`.
    pub(crate) fn claims_of(&self, slot: u32) -> Vec<crate::message::Claim> {
        let profile = self.profile_of(slot);
        self.store(slot).claims(|s| normalize_for(profile, s))
    }

    fn view(&self, slot: u32) -> crate::message::StoreView {
        let profile = self.profile_of(slot);
        self.store(slot).view(|s| normalize_for(profile, s))
    }
}

/// The claims a store record holds now, its sellers keyed for its platform.
pub(crate) fn held_of(store: &Store, profile: &crate::config::Profile) -> Held {
    Held {
        sellers: store.seller_keys(|s| normalize_for(profile, s)),
        credential: store.credential_key(),
    }
}

/// The claim key of a seller id on a platform (the platform's own rule: Shopline handles are lower-cased).
pub(crate) fn normalize_for(profile: &crate::config::Profile, seller: &str) -> String {
    normalized(profile, seller).into_owned()
}

/// [`normalize_for`], borrowing the seller id when it is its own key.
pub(crate) fn normalized<'a>(
    profile: &crate::config::Profile,
    seller: &'a str,
) -> std::borrow::Cow<'a, str> {
    profile.platform().normalize_seller(seller)
}

impl Engine {
    /// Drains every queued output as one JSON array text (`[]` when none).
    pub fn drain_outputs_json(&mut self) -> String {
        let mut v = Vec::with_capacity(if self.outputs.is_empty() { 2 } else { 512 });
        self.drain_outputs_json_into(&mut v);
        String::from_utf8(v).expect("serde_json writes UTF-8")
    }

    /// [`Engine::drain_outputs_json`] appended to `buf` (one buffer, no
    /// text per output).
    pub(crate) fn drain_outputs_json_into(&mut self, buf: &mut Vec<u8>) {
        buf.push(b'[');
        let mut first = true;
        while let Some(o) = self.outputs.pop_front() {
            if !first {
                buf.push(b',');
            }
            first = false;
            o.write_json(buf);
        }
        buf.push(b']');
    }
}
