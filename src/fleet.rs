//! Fleets (spec §11): several engines over one database, each holding only
//! the stores it works on at the moment. A host loads a store's latest
//! record (and, as foreign claims, the claims of the stores it does not
//! load), applies one input or fires what is due, takes the changes and
//! unloads again:
//!
//! - [`Engine::load`] adds store records — exactly the `record` values of
//!   `take_changes` entries (spec §10) — to a running engine, open requests,
//!   in-flight notifications, timers (request deadlines included), live
//!   nonces and rate-queue places kept, and registers foreign claims. All
//!   or nothing: it checks everything before it changes anything.
//! - [`Engine::unload`] forgets stores and foreign claims: no transition, no
//!   output, no change entry (the rows live on in the database).
//! - [`Engine::route`] names the store an input is for, from the input
//!   alone: its `store_id`, the `ref` inside a state nonce or a request id.
//!
//! Foreign claims are not state: not in a snapshot, not in `take_changes`,
//! dropped by `restore`. The host supplies them with every load.
//!
//! Counters and sequence numbers. Each engine numbers its requests, nonces,
//! timers and rate-queue places from its own counters, so records from
//! different engines carry numbers that can be equal:
//! - timers and rate-queue places are given new sequence numbers when a
//!   record is placed (`Engine::place`), in the store's own order, so they
//!   never collide in this engine's queues (nor in its next snapshot);
//! - the request and nonce counters are raised to at least every serial a
//!   loaded record holds (the ids of its open requests and live nonce).
//!   A request id is `{ref}.{serial}.{sent_ms}.{purpose}.{mac}`: without the
//!   raise, a request this engine sends for the loaded store at the same
//!   millisecond as one the store still has open (superseded, or the store's
//!   notification) could get the very same id, and a late answer to the old
//!   one would be taken for the new one's. Nonces need no raise for
//!   uniqueness — a new nonce belongs to a new attempt, and the attempt
//!   number is in the record and in the nonce — nor event ids (they carry
//!   the store's `seq`, which only grows); the nonce counter is raised so
//!   that this engine's snapshots keep "counters not behind the ids in the
//!   records". Ids of requests the store had that are already closed are not
//!   in the record: a repeat of one would need this engine to issue the same
//!   serial, for the same store and purpose, in the same millisecond the
//!   other engine sent it.
//!
//! A load that is undone (every store it added unloaded again) before any
//! call that can issue an id puts the counters back, so `load` followed by
//! `unload` leaves the engine's snapshot exactly as it was.
//!
//! What does not live here: placing a record (`snapshot::place`, shared
//! with restore), the per-store invariants (`invariants`), the foreign
//! claim index (`claims::Foreign`).

use crate::claims::{Fingerprint, Held, seller_key};
use crate::engine::{Engine, NonceKey, held_of, normalize_for};
use crate::error::{InputError, LoadError};
use crate::keys::PresentedNonce;
use crate::message::Input;
use crate::snapshot::{Placement, shape_error};
use crate::store::{NonceId, Store, TimerKind};
use crate::validate::ID_MAX;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// What [`Engine::route`] finds: the store an input is for (spec §11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The store's `ref` (spec §9): computed from the input's `store_id`, or
    /// read from the state nonce of an `oauth_redirect` or the request id of
    /// an `http_response` / `http_failure`. `None` when the input does not
    /// tell (a forged or garbled id, no store named).
    pub r#ref: Option<String>,
    /// The `store_id`, only when the input itself names it.
    pub store_id: Option<String>,
}

impl Route {
    /// The route as JSON text: `{"ref": …, "store_id": …}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a route serializes")
    }
}

/// A claim held by a store that is not in this engine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ForeignClaim {
    Seller {
        platform: String,
        seller_id: String,
        store_id: String,
    },
    Credential {
        fingerprint: Fingerprint,
        store_id: String,
    },
}

impl ForeignClaim {
    fn store_id(&self) -> &str {
        match self {
            ForeignClaim::Seller { store_id, .. } | ForeignClaim::Credential { store_id, .. } => {
                store_id
            }
        }
    }
}

/// A foreign claim as the indexes key it.
enum Key {
    Seller(String),
    Credential(Fingerprint),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadIn {
    #[serde(default)]
    stores: Vec<Store>,
    #[serde(default)]
    foreign_claims: Vec<ForeignClaim>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnloadIn {
    #[serde(default)]
    store_ids: Vec<String>,
    #[serde(default)]
    foreign_claims: Vec<ForeignClaim>,
}

/// One plain parse in the common case; the error located only when it
/// fails. The text must be an object (serde would also read a struct from an
/// array of its fields).
fn read<'a, T: Deserialize<'a>>(text: &'a str, verb: &str) -> Result<T, LoadError> {
    if !text.trim_start().starts_with('{') {
        return Err(LoadError::Malformed(format!(
            "{verb} refused (malformed): the text is not a JSON object"
        )));
    }
    serde_json::from_str(text).or_else(|_| {
        let what = if verb == "load" {
            "a load text"
        } else {
            "an unload text"
        };
        shape_error(text, verb, what)
            .map_err(|m| LoadError::Malformed(format!("{verb} refused (malformed): {m}")))
    })
}

impl Engine {
    /// Adds stores and foreign claims (spec §11): `{"stores": [record, …],
    /// "foreign_claims": [claim, …]}` (both optional), each record a
    /// `record` of a `take_changes` entry, each claim `{"kind": "seller",
    /// "platform", "seller_id", "store_id"}` or `{"kind": "credential",
    /// "fingerprint", "store_id"}`.
    ///
    /// Loaded stores keep their open requests open under their ids (an
    /// answer to one is accepted here), their in-flight notifications, their
    /// timers (request deadlines included), live nonces and places in the
    /// rate queue; they are not "changed" (the next `take_changes` does not
    /// list them unless something changes them). Foreign claims bind like
    /// the claims of stores in this engine.
    ///
    /// All or nothing: refused, with nothing changed, when the text is not
    /// of that shape ([`LoadError::Malformed`]), or a record is of a store
    /// already here, two records share a store id, a record's platform is
    /// not configured or it breaks an invariant `restore` checks, a claim (of
    /// a record or foreign) is bound here to another store, or a foreign
    /// claim names a store that is here or in the load.
    pub fn load(&mut self, text: &str) -> Result<(), LoadError> {
        let input: LoadIn = read(text, "load")?;
        let keys = self.check_load(&input)?;
        self.apply_load(input, keys);
        Ok(())
    }

    /// Forgets stores and foreign claims (spec §11): `{"store_ids": […],
    /// "foreign_claims": [claim, …]}` (both optional). Unloaded stores
    /// leave nothing behind — their timers, nonces, open request ids,
    /// claims, rate-queue places, re-send marks and any change not yet
    /// taken (take the changes first) — and produce no transition, output
    /// or change entry. Outputs already queued stay queued (drain first).
    ///
    /// Idempotent: a store id this engine does not hold, or a foreign claim
    /// it has not registered (or has registered for another store), is
    /// ignored. Refused only for a text not of that shape
    /// ([`LoadError::Malformed`]) or a malformed foreign claim
    /// ([`LoadError::InvalidClaim`]); then nothing changes.
    pub fn unload(&mut self, text: &str) -> Result<(), LoadError> {
        let input: UnloadIn = read(text, "unload")?;
        let keys = input
            .foreign_claims
            .iter()
            .enumerate()
            .map(|(j, c)| self.claim_key(c, j, "unload"))
            .collect::<Result<Vec<Key>, LoadError>>()?;
        let mut forgotten = Vec::new();
        for id in &input.store_ids {
            if let Some(slot) = self.by_id.get(&self.slots, id.as_str()) {
                self.forget(slot);
                forgotten.push(slot);
            }
        }
        for (claim, key) in input.foreign_claims.iter().zip(keys) {
            match key {
                Key::Seller(k) => self.foreign.remove_seller(&k, claim.store_id()),
                Key::Credential(f) => self.foreign.remove_credential(&f, claim.store_id()),
            }
        }
        if let Some((before, slots)) = self.undo.as_mut() {
            slots.retain(|s| !forgotten.contains(s));
            if slots.is_empty() {
                self.counters = *before;
                self.undo = None;
            }
        }
        Ok(())
    }

    /// The store `input` is for (spec §11), without changing anything and
    /// without the store being here: `ref` from the input's `store_id`, or
    /// from the state nonce of an `oauth_redirect` (a version-2 nonce
    /// carries its store's ref; a version-1 nonce, from a version-1
    /// snapshot, carries none and is looked up among this engine's live
    /// nonces), or from the request id of an `http_response` /
    /// `http_failure` (the MAC checked: a forged or garbled id tells
    /// nothing). `store_id` only when the input names it.
    pub fn route(&self, input: &Input) -> Route {
        match input {
            Input::RegisterStore(r) => self.route_store(&r.store_id),
            Input::Authorize(a) => self.route_store(&a.store_id),
            Input::RemoveStore(r)
            | Input::TokenRejected(r)
            | Input::Revoke(r)
            | Input::Query(r)
            | Input::Credentials(r) => self.route_store(&r.store_id),
            Input::OauthRedirect(r) => {
                let nonce = self.settings.profile(&r.platform).and_then(|(_, p)| {
                    let name = p.platform().nonce_param();
                    match (&r.query, &r.params) {
                        (Some(q), _) => crate::encoding::parse_query(q).remove(name),
                        (None, Some(p)) => p.get(name).cloned(),
                        (None, None) => None,
                    }
                });
                self.route_nonce(nonce.as_deref())
            }
            Input::HttpResponse(r) => self.route_request(&r.request_id),
            Input::HttpFailure(f) => self.route_request(&f.request_id),
        }
    }

    /// [`Engine::route`] of a JSON text. Only the fields a route needs are
    /// read, so an input with a bad field elsewhere is still routed; a text
    /// that is JSON but not an object, or of no known type, routes nowhere
    /// (`{"ref": null, "store_id": null}`). Err only when the text is not
    /// JSON at all.
    pub fn route_json(&self, text: &str) -> Result<Route, InputError> {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "type", default)]
            kind: Option<Loose>,
            #[serde(default)]
            store_id: Option<Loose>,
            #[serde(default)]
            platform: Option<Loose>,
            #[serde(default)]
            query: Option<Loose>,
            #[serde(default)]
            params: Option<Loose>,
            #[serde(default)]
            request_id: Option<Loose>,
        }
        let probe: Probe = match serde_json::from_str(text) {
            Ok(p) => p,
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                return Ok(Route::default());
            }
            Err(_) => {
                return Err(InputError::Invalid(
                    "is not valid JSON (or nests too deeply)".into(),
                ));
            }
        };
        let text = |v: Option<Loose>| v.and_then(Loose::text);
        Ok(match text(probe.kind).as_deref() {
            Some(
                "register_store" | "remove_store" | "authorize" | "token_rejected" | "revoke"
                | "query" | "credentials",
            ) => text(probe.store_id).map_or_else(Route::default, |s| self.route_store(&s)),
            Some("oauth_redirect") => {
                let profile = text(probe.platform)
                    .and_then(|name| self.settings.profile(&name).map(|(_, p)| p));
                // As in handle: `query` when present, else `params` (a
                // present `query` of another type is a field error there).
                let nonce = profile.and_then(|p| {
                    let name = p.platform().nonce_param();
                    match (probe.query, probe.params) {
                        (Some(Loose::Text(q)), _) => crate::encoding::parse_query(&q).remove(name),
                        (None, Some(Loose::Object(mut o))) => o.remove(name).and_then(Loose::text),
                        _ => None,
                    }
                });
                self.route_nonce(nonce.as_deref())
            }
            Some("http_response" | "http_failure") => {
                text(probe.request_id).map_or_else(Route::default, |id| self.route_request(&id))
            }
            _ => Route::default(),
        })
    }

    /// An empty `store_id` (a field left out of a typed input) names no store.
    fn route_store(&self, store_id: &str) -> Route {
        if store_id.is_empty() {
            return Route::default();
        }
        Route {
            r#ref: Some(self.keys.store_ref(store_id).to_string()),
            store_id: Some(store_id.to_owned()),
        }
    }

    fn route_nonce(&self, nonce: Option<&str>) -> Route {
        let sref = nonce
            .filter(|n| !n.is_empty())
            .and_then(|n| self.keys.check_nonce_any(n))
            .and_then(|p| match p {
                PresentedNonce::V2 { store, .. } => Some(store),
                PresentedNonce::V1(serial) => self
                    .nonces
                    .get(&NonceKey::V1(serial))
                    .map(|&slot| self.store_ref(slot)),
            });
        Route {
            r#ref: sref.map(|r| r.to_string()),
            store_id: None,
        }
    }

    fn route_request(&self, request_id: &str) -> Route {
        Route {
            r#ref: self
                .keys
                .check_request_id(request_id)
                .map(|(r, _)| r.to_string()),
            store_id: None,
        }
    }

    // ------------------------------------------------------------ load

    /// Every check of a load, before anything changes; the foreign claims'
    /// index keys when all pass.
    fn check_load(&self, input: &LoadIn) -> Result<Vec<Key>, LoadError> {
        let hasher = *self.by_id.hasher();
        let mut ids: HashSet<&str, _> =
            HashSet::with_capacity_and_hasher(input.stores.len(), hasher);
        let mut v1_nonces: HashSet<u64> = HashSet::new();
        let mut held: Vec<Held> = Vec::with_capacity(input.stores.len());
        for (index, store) in input.stores.iter().enumerate() {
            let Some((_, profile)) = self.settings.profile(&store.platform) else {
                return Err(LoadError::PlatformNotConfigured { index });
            };
            crate::invariants::check_record(self, store)
                .map_err(|rule| LoadError::InvalidRecord { index, rule })?;
            let id = store.store_id.as_str();
            if self.by_id.contains_key(&self.slots, id) {
                return Err(LoadError::AlreadyLoaded { index });
            }
            if self.removed.iter().any(|r| r == id) {
                return Err(LoadError::RemovedNotTaken { index });
            }
            if !ids.insert(id) {
                return Err(LoadError::DuplicateStore { index });
            }
            if self.foreign.names(id) {
                return Err(LoadError::ForeignStoreLoaded {
                    at: format!("stores[{index}]"),
                    why: "is a store that foreign claims registered here name",
                });
            }
            // Version-1 nonces are indexed by their serial alone (v2 nonces
            // by a MAC over their store's ref, which no store here shares).
            if let Some(NonceId::V1(serial)) = store.att().nonce {
                if self.nonces.contains_key(&NonceKey::V1(serial)) || !v1_nonces.insert(serial) {
                    return Err(LoadError::InvalidRecord {
                        index,
                        rule: "live state nonces are unique".into(),
                    });
                }
            }
            held.push(held_of(store, profile));
        }
        let mut keys = Vec::with_capacity(input.foreign_claims.len());
        for (index, claim) in input.foreign_claims.iter().enumerate() {
            let key = self.claim_key(claim, index, "load")?;
            let id = claim.store_id();
            if self.by_id.contains_key(&self.slots, id) || ids.contains(id) {
                return Err(LoadError::ForeignStoreLoaded {
                    at: format!("foreign_claims[{index}]"),
                    why: "names a store that is here or in the load",
                });
            }
            keys.push(key);
        }
        // Claims: the records' first, then the foreign ones, each against
        // this engine's stores, its foreign claims and the load so far.
        let mut sellers: HashMap<String, &str, _> = HashMap::with_hasher(hasher);
        let mut credentials: HashMap<Fingerprint, &str, _> = HashMap::with_hasher(hasher);
        let conflict = |at: String, what| LoadError::ClaimConflict { at, what };
        for (index, (store, h)) in input.stores.iter().zip(&held).enumerate() {
            let platform = store.platform.as_str();
            for s in &h.sellers {
                if self.claims.seller_owner(platform, s).is_some()
                    || self.foreign.seller_owner(platform, s).is_some()
                    || sellers
                        .insert(seller_key(platform, s), &store.store_id)
                        .is_some()
                {
                    return Err(conflict(format!("stores[{index}]"), "a seller claim"));
                }
            }
            if let Some(c) = h.credential {
                if self.claims.credential_owner(&c).is_some()
                    || self.foreign.credential_owner(&c).is_some()
                    || credentials.insert(c, &store.store_id).is_some()
                {
                    return Err(conflict(format!("stores[{index}]"), "a credential claim"));
                }
            }
        }
        for (index, (claim, key)) in input.foreign_claims.iter().zip(&keys).enumerate() {
            let id = claim.store_id();
            let (here, foreign, in_load, what) = match key {
                Key::Seller(k) => {
                    let (platform, seller) =
                        k.split_once('\u{0}').expect("seller keys hold a separator");
                    (
                        self.claims.seller_owner(platform, seller).is_some(),
                        self.foreign.seller_owner(platform, seller),
                        *sellers.entry(k.clone()).or_insert(id),
                        "a seller claim",
                    )
                }
                Key::Credential(f) => (
                    self.claims.credential_owner(f).is_some(),
                    self.foreign.credential_owner(f),
                    *credentials.entry(*f).or_insert(id),
                    "a credential claim",
                ),
            };
            if here || foreign.is_some_and(|o| o != id) || in_load != id {
                return Err(conflict(format!("foreign_claims[{index}]"), what));
            }
        }
        Ok(keys)
    }

    /// A foreign claim's fields checked, and its index key (a seller id is
    /// keyed as the engine compares it on that platform, when configured).
    fn claim_key(
        &self,
        claim: &ForeignClaim,
        index: usize,
        verb: &'static str,
    ) -> Result<Key, LoadError> {
        let bad = |field, rule| LoadError::InvalidClaim {
            verb,
            index,
            field,
            rule,
        };
        const ID_RULE: &str =
            "is 1-64 characters, no control characters, no white space at either end";
        if !crate::invariants::id_ok(claim.store_id(), ID_MAX) {
            return Err(bad("store_id", ID_RULE));
        }
        Ok(match claim {
            ForeignClaim::Seller {
                platform,
                seller_id,
                ..
            } => {
                if !crate::invariants::id_ok(platform, ID_MAX) {
                    return Err(bad("platform", ID_RULE));
                }
                if !crate::invariants::id_ok(seller_id, ID_MAX) {
                    return Err(bad("seller_id", ID_RULE));
                }
                let seller = match self.settings.profile(platform) {
                    Some((_, p)) => normalize_for(p, seller_id),
                    None => seller_id.clone(),
                };
                Key::Seller(seller_key(platform, &seller))
            }
            ForeignClaim::Credential { fingerprint, .. } => Key::Credential(*fingerprint),
        })
    }

    fn apply_load(&mut self, input: LoadIn, keys: Vec<Key>) {
        let before = self.counters;
        // Raised to every serial the records hold (see the module doc).
        for store in &input.stores {
            for serial in crate::invariants::request_serials(store) {
                self.counters.request = self.counters.request.max(serial);
            }
            for id in [store.att().nonce, store.att().pkce].into_iter().flatten() {
                self.counters.nonce = self.counters.nonce.max(id.serial());
            }
        }
        // In store-id order, so the sequence numbers given to the records'
        // timers do not depend on the order of the records.
        let mut stores = input.stores;
        stores.sort_unstable_by(|a, b| a.store_id.as_bytes().cmp(b.store_id.as_bytes()));
        let mut placed = Vec::with_capacity(stores.len());
        let resends = self.resend.len();
        for store in stores {
            let slot = self
                .place(store, Placement::Load)
                .expect("load checks every record before it places any");
            // A slot freed by a removal may still carry the removed store's
            // change flag (its removal is reported by id): a loaded store is
            // not changed.
            self.clear_change(slot);
            placed.push(slot);
        }
        if self.resend.len() != resends {
            self.sort_resend();
        }
        if !placed.is_empty() {
            match self.undo.as_mut() {
                Some((_, slots)) => slots.extend(placed),
                None => self.undo = Some((before, placed)),
            }
        }
        for (claim, key) in input.foreign_claims.iter().zip(keys) {
            match key {
                Key::Seller(k) => self.foreign.add_seller(k, claim.store_id()),
                Key::Credential(f) => self.foreign.add_credential(f, claim.store_id()),
            }
        }
    }

    /// Takes a store out of every index and its slot, as if it had never
    /// been here: no transition, no output, no change entry.
    fn forget(&mut self, slot: u32) {
        let held = self.held(slot);
        if let Some(w) = self.store(slot).in_flight() {
            let key = self.work_key(slot, w);
            self.requests.remove(&key);
        }
        if let Some(key) = self.notify_key(slot) {
            self.requests.remove(&key);
        }
        if let Some(id) = self.store(slot).att().nonce {
            let key = self.nonce_key(slot, id);
            self.nonces.remove(&key);
        }
        self.resend.retain(|(_, s, _)| *s != slot);
        self.clear_change(slot);
        let mut store = self.slots[slot as usize]
            .take()
            .expect("unloaded stores exist");
        for kind in TimerKind::ALL {
            self.timers.cancel(&mut store.timers, kind);
        }
        if let Some(crate::store::Request::Queued(q)) = store.request {
            if let Some(g) = self.gates.get_mut(store.platform.as_str()) {
                g.dequeue(q.priority, q.seq);
            }
        }
        self.claims
            .sync(slot, &store.platform, &held, &Held::default());
        self.by_id.remove(&store.store_id, slot);
        self.free.push(slot);
    }

    /// Drops the slot's change flag (its store is not to be reported).
    fn clear_change(&mut self, slot: u32) {
        if self.changed[slot as usize] {
            self.changed[slot as usize] = false;
            self.changed_slots.retain(|&s| s != slot);
        }
    }

    /// Number of foreign claims registered (spec §11).
    pub fn foreign_claim_count(&self) -> usize {
        self.foreign.len()
    }
}

/// What `route` reads of a field: a string, an object (whose values are
/// read as strings or nothing), or nothing. Values of other types, and
/// nested containers, are skipped without recursion (as `handle` skips what
/// it does not use), so `route` reads only what it needs and never fails
/// on the rest.
enum Loose {
    Other,
    Text(String),
    Object(std::collections::BTreeMap<String, Loose>),
}

impl Loose {
    fn text(self) -> Option<String> {
        match self {
            Loose::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseSeed { objects: true })
    }
}

/// Reads a [`Loose`]; objects only where `objects` (one level deep).
struct LooseSeed {
    objects: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for LooseSeed {
    type Value = Loose;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for LooseSeed {
    type Value = Loose;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose::Text(v.to_owned()))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Loose, A::Error> {
        if !self.objects {
            while m
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            return Ok(Loose::Other);
        }
        let mut out = std::collections::BTreeMap::new();
        while let Some(k) = m.next_key::<String>()? {
            let v = m.next_value_seed(LooseSeed { objects: false })?;
            out.insert(k, v);
        }
        Ok(Loose::Object(out))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Loose, A::Error> {
        while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_unit<E>(self) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
}
