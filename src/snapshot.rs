//! Snapshot and restore: the whole engine state as one versioned JSON
//! object, written straight from the structures (no intermediate JSON
//! value), and read back into a fresh engine that replaces the old one only
//! when every invariant of the restored state checks out (`invariants`).
//!
//! Version 2 (written): `{"version": "2.0", "engine": header, "stores":
//! [record, …]}`. The header is small — a fingerprint of the engine
//! secret, the clock, the counters, the rate windows and the outputs not
//! yet drained — and each record is one store exactly as `take_changes`
//! hands it out, so a host that mirrors changes can assemble a snapshot from
//! its rows, in any order. No configuration secret: a version-2 snapshot
//! restores under any configuration with the same engine secret in which
//! every store's platform is still configured.
//!
//! Version 1 (read): the format of shopauth 0.1 (one fingerprint of the
//! whole configuration, a `claims` section). It restores only under that
//! same configuration; its live state nonces stay valid and its queued
//! notifications keep their bodies and event ids.
//!
//! Requests open at snapshot time are sent again after a restore under new
//! ids. Their undrained `http_request` outputs are not written (they carry
//! configuration secrets) and are dropped from a snapshot that has them: the
//! resend replaces them.
//!
//! What does not live here: the checks themselves (`invariants`), the
//! rules that move stores (`engine`).

use crate::engine::{Counters, Engine};
use crate::error::RestoreError;
use crate::message::Output;
use crate::store::{Request, Store, TimerKind, Work};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Major version this engine writes (and the newest it reads).
pub const MAJOR: u32 = 2;
/// Version string written.
pub const VERSION: &str = "2.0";

/// The engine header (spec §10): everything but the stores.
#[derive(Serialize)]
pub(crate) struct HeaderOut<'a> {
    pub secret: &'a str,
    pub now: i64,
    pub counters: Counters,
    pub gates: BTreeMap<&'a str, Vec<i64>>,
    pub outputs: Vec<&'a Output>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderIn {
    pub secret: String,
    pub now: i64,
    pub counters: Counters,
    #[serde(default)]
    pub gates: BTreeMap<String, Vec<i64>>,
    #[serde(default)]
    pub outputs: VecDeque<Output>,
}

/// One store's record as written: the store, and its claims as in `query`
/// (for hosts that mirror them into unique indexes). On read the claims are
/// recomputed from the store and the written ones are not trusted.
#[derive(Serialize)]
pub(crate) struct RecordOut<'a> {
    #[serde(flatten)]
    pub store: &'a Store,
    pub claims: Vec<crate::message::Claim>,
}

#[derive(Serialize)]
struct SnapshotOut<'a> {
    version: &'static str,
    engine: HeaderOut<'a>,
    stores: Vec<RecordOut<'a>>,
}

#[derive(Deserialize)]
struct SnapshotV2 {
    #[allow(dead_code)]
    version: serde_json::Value,
    engine: HeaderIn,
    stores: Vec<Store>,
}

#[derive(Deserialize)]
struct SnapshotV1 {
    #[allow(dead_code)]
    version: serde_json::Value,
    config: String,
    now: i64,
    counters: Counters,
    stores: Vec<Store>,
    #[serde(default)]
    claims: Option<ClaimsV1>,
    #[serde(default)]
    gates: BTreeMap<String, Vec<i64>>,
    #[serde(default)]
    outputs: VecDeque<Output>,
}

#[derive(Deserialize, PartialEq, Eq, Debug)]
struct ClaimsV1 {
    sellers: Vec<(String, String, String)>,
    credentials: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct VersionProbe {
    version: Option<serde_json::Value>,
}

/// What a restore rebuilds from, whatever the version.
pub(crate) struct Parts {
    pub now: i64,
    pub counters: Counters,
    pub gates: BTreeMap<String, Vec<i64>>,
    pub outputs: VecDeque<Output>,
    pub stores: Vec<Store>,
}

impl Engine {
    /// The engine header of spec §10.
    pub(crate) fn header(&self) -> HeaderOut<'_> {
        HeaderOut {
            secret: self.keys.secret_fingerprint(),
            now: self.now,
            counters: self.counters,
            gates: self
                .gates
                .iter()
                .map(|(name, g)| (name.as_str(), g.window()))
                .collect(),
            // Undrained http_request outputs are left out: they carry
            // configuration secrets (app secrets, service tokens), and the
            // requests they stand for are open, so a restore sends them again.
            outputs: self
                .outputs
                .iter()
                .filter(|o| !matches!(o, Output::HttpRequest(_)))
                .collect(),
        }
    }

    /// The record of the store in `slot`.
    pub(crate) fn record(&self, slot: u32) -> RecordOut<'_> {
        RecordOut {
            store: self.store(slot),
            claims: self.claims_of(slot),
        }
    }

    /// The whole state as JSON text (version 2), stores sorted by `store_id`.
    pub fn snapshot(&self) -> String {
        let mut slots: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&s| self.slots[s as usize].is_some())
            .collect();
        slots.sort_unstable_by(|&a, &b| {
            self.store(a)
                .store_id
                .as_bytes()
                .cmp(self.store(b).store_id.as_bytes())
        });
        serde_json::to_string(&SnapshotOut {
            version: VERSION,
            engine: self.header(),
            stores: slots.into_iter().map(|s| self.record(s)).collect(),
        })
        .expect("snapshot serializes")
    }

    /// Replaces the whole state with a snapshot's (version 1 or 2); on any
    /// error the engine is unchanged.
    pub fn restore(&mut self, snapshot: &str) -> Result<(), RestoreError> {
        // One plain parse in the common case (a version-2 snapshot); the
        // version is probed, and the error located, only when it fails.
        let rebuilt = match serde_json::from_str::<SnapshotV2>(snapshot) {
            Ok(snap) if major(Some(&snap.version))? == 2 => self.restore_v2(snap)?,
            _ => {
                let probe: VersionProbe = serde_json::from_str(snapshot).map_err(|e| {
                    RestoreError::Malformed(format!(
                        "the snapshot is not a JSON object ({})",
                        strip(&e)
                    ))
                })?;
                match major(probe.version.as_ref())? {
                    1 => self.restore_v1(parse(snapshot)?)?,
                    _ => self.restore_v2(parse(snapshot)?)?,
                }
            }
        };
        *self = rebuilt;
        Ok(())
    }

    fn restore_v1(&self, snap: SnapshotV1) -> Result<Engine, RestoreError> {
        if !crate::keys::ct_eq(snap.config.as_bytes(), self.config_fp.as_bytes()) {
            return Err(RestoreError::OtherConfiguration);
        }
        let claims = snap.claims;
        let e = self.rebuild(Parts {
            now: snap.now,
            counters: snap.counters,
            gates: snap.gates,
            outputs: snap.outputs,
            stores: snap.stores,
        })?;
        if let Some(c) = claims {
            check_v1_claims(&e, &c)?;
        }
        Ok(e)
    }

    fn restore_v2(&self, snap: SnapshotV2) -> Result<Engine, RestoreError> {
        if !crate::keys::ct_eq(
            snap.engine.secret.as_bytes(),
            self.keys.secret_fingerprint().as_bytes(),
        ) {
            return Err(RestoreError::OtherSecret);
        }
        self.rebuild(Parts {
            now: snap.engine.now,
            counters: snap.engine.counters,
            gates: snap.engine.gates,
            outputs: snap.engine.outputs,
            stores: snap.stores,
        })
    }

    /// A fresh engine holding `parts`, after every invariant is checked.
    fn rebuild(&self, parts: Parts) -> Result<Engine, RestoreError> {
        crate::invariants::check(self, &parts)?;
        let mut e = self.blank();
        // The clock never moves backwards in one engine (spec §1): restoring
        // an older snapshot into an engine keeps its later time, so ids it
        // issues next (which carry their time, spec §9) differ from those it
        // issued after that snapshot was taken.
        e.now = parts.now.max(self.now);
        e.counters = parts.counters;
        e.outputs = parts.outputs;
        e.outputs.retain(|o| !matches!(o, Output::HttpRequest(_)));
        for (name, g) in e.gates.iter_mut() {
            if let Some(w) = parts.gates.get(name) {
                g.set_window(w);
            }
        }
        let n = parts.stores.len();
        // The records' own array becomes the slots (converted in place): a
        // second array of stores would be touched for the first time, which
        // is most of the time of a large restore. Each record is taken out
        // of its slot and placed back into it, through the free list.
        e.slots = parts.stores.into_iter().map(Some).collect();
        e.changed = vec![false; n];
        e.by_id.reserve(&e.slots, n);
        e.claims.reserve(n);
        // Ids and claims are indexed in bulk once every store is placed
        // (`bulk`); what they would have refused on the way is named then.
        e.by_id.begin_bulk(n);
        e.claims.begin_bulk(n);
        let bad = |m: &str| RestoreError::Inconsistent(m.into());
        for i in 0..n {
            let store = e.slots[i].take().expect("a record");
            e.free.push(i as u32);
            e.place(store, Placement::Restore)
                .map_err(|m| bad(first_broken(&e, i as u32).unwrap_or(m)))?;
        }
        let ids = e.settle_ids().map(|slot| (slot, IDS_TWICE));
        if let Some((_, m)) = earliest(ids, e.claims.settle().err()) {
            return Err(bad(m));
        }
        e.sort_resend();
        // Counters never move backwards in one engine: restoring an older
        // snapshot into an engine that has issued more ids keeps its serials
        // (requests, nonces, timers) from repeating.
        e.counters = e.counters.max_each(self.counters);
        e.clear_changes();
        Ok(e)
    }

    /// Places one store record into this engine — its slot and id, timers,
    /// live nonce, open requests or re-send marks, rate-gate entry and
    /// claims — the one code path of `restore` (record by record into a
    /// fresh engine) and `load` (into a running one, spec §11). The record
    /// has passed the per-store invariants (`invariants`); what can still
    /// collide with what the engine holds (store id, timer keys, claims) is
    /// checked here, on the way: `restore` then drops the engine it was
    /// building, and `load` has checked all of it before it places anything,
    /// so for a load this never fails.
    ///
    /// The two differ in what happens to requests that were open when the
    /// record was written:
    /// - `Restore`: they are marked to be sent again under new ids at the
    ///   next call (the host that crashed cannot know whether they arrived);
    /// - `Load`: they stay open under their ids (the record was committed and
    ///   the request may be on the wire; its answer is accepted here), their
    ///   time-outs included, and the record's timers and rate-queue entry are
    ///   given new sequence numbers from this engine's counters, in the
    ///   store's own order: records from different engines carry sequence
    ///   numbers from different counters, which would collide in the timer
    ///   queue and rate gates (and in this engine's next snapshot), while
    ///   each store's own order must stay the order its timers were set.
    pub(crate) fn place(&mut self, mut store: Store, how: Placement) -> Result<u32, &'static str> {
        if how == Placement::Restore {
            // Requests open at snapshot time are sent again under new ids;
            // the mark stays in the store until then (a snapshot taken
            // before the re-send keeps it).
            if let Some(w) = store.in_flight() {
                store.timers.take(TimerKind::Timeout);
                store.request = Some(Request::Resend(w));
            }
            if let Some(n) = store.notify.as_deref_mut() {
                if let Some(serial) = n.in_flight.take() {
                    store.timers.take(TimerKind::NotifyTimeout);
                    n.resend = Some(serial);
                    n.sent_at = 0;
                }
            }
        }
        // A request waiting for a rate gate the configuration no longer
        // has is sent at the next call instead.
        if let Some(Request::Queued(q)) = store.request {
            if !self.gates.contains_key(store.platform.as_str()) {
                store.request = Some(Request::Resend(Work {
                    serial: 0,
                    purpose: q.purpose,
                    sent_at: 0,
                }));
            }
        }
        if how == Placement::Load {
            let mut timers: Vec<(TimerKind, i64, u64)> = store.timers.iter().collect();
            timers.sort_by_key(|&(kind, _, seq)| (seq, kind));
            for (kind, at, _) in timers {
                self.counters.timer = self.counters.timer.saturating_add(1);
                store.timers.set(kind, at, self.counters.timer);
            }
            if let Some(Request::Queued(q)) = store.request.as_mut() {
                self.counters.queue = self.counters.queue.saturating_add(1);
                q.seq = self.counters.queue;
            }
        }
        // A restore indexes ids in bulk and names duplicates afterwards.
        if how == Placement::Load && self.by_id.contains_key(&self.slots, &store.store_id) {
            return Err(IDS_TWICE);
        }
        let nonce = store.att().nonce;
        let slot = self.insert_store(store);
        // Field borrows: the timers are read from the slot while the queue grows.
        let timers = &self.slots[slot as usize]
            .as_ref()
            .expect("just inserted")
            .timers;
        for (kind, at, seq) in timers.iter() {
            if !self.timers.insert(at, seq, slot, kind) {
                return Err("timer keys are unique");
            }
        }
        if let Some(id) = nonce {
            let key = self.nonce_key(slot, id);
            self.nonces.insert(key, slot);
        }
        if how == Placement::Load {
            if let Some(w) = self.store(slot).in_flight() {
                let key = self.work_key(slot, w);
                self.requests.insert(key, (slot, false));
            }
            if let Some(key) = self.notify_key(slot) {
                self.requests.insert(key, (slot, true));
            }
        }
        // Field borrows (not `self.store`), so the gates can be updated
        // while the platform name is borrowed from the store.
        let store = self.slots[slot as usize].as_ref().expect("just inserted");
        let platform = store.platform.as_str();
        match store.request {
            Some(Request::Queued(q)) => {
                if let Some(g) = self.gates.get_mut(platform) {
                    g.enqueue(q.priority, q.seq, slot);
                }
            }
            Some(Request::Resend(w)) => self.resend.push((w.serial, slot, Some(w.purpose))),
            _ => {}
        }
        if let Some(serial) = store.notify.as_ref().and_then(|n| n.resend) {
            self.resend.push((serial, slot, None));
        }
        self.claim_rebuilt(slot)?;
        Ok(slot)
    }

    /// Re-sends go in the order of their old serials; stores break ties by
    /// id, so the order depends neither on the order of the records nor on
    /// which engine issued the serials.
    pub(crate) fn sort_resend(&mut self) {
        let mut resend = std::mem::take(&mut self.resend);
        resend.sort_by(|a, b| {
            (a.0, a.2.is_none())
                .cmp(&(b.0, b.2.is_none()))
                .then_with(|| {
                    self.store(a.1)
                        .store_id
                        .as_bytes()
                        .cmp(self.store(b.1).store_id.as_bytes())
                })
        });
        self.resend = resend;
    }
}

/// How [`Engine::place`] treats a record's open requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// `restore`: open requests are sent again under new ids.
    Restore,
    /// `load`: open requests stay open under their ids.
    Load,
}

/// What a restore names when two records have one store id.
const IDS_TWICE: &str = "store ids are unique";

/// Of two refusals (slot, invariant), the one that placing the stores one
/// by one would have met first: the lower slot; in one slot the store's id
/// (checked before its timers and claims).
fn earliest(
    id: Option<(u32, &'static str)>,
    other: Option<(u32, &'static str)>,
) -> Option<(u32, &'static str)> {
    match (id, other) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// For a restore refused at `slot` by a check made after the store's id
/// is taken and before its claims (its timers): the refusal that placing
/// the stores one by one, checking ids and claims on the way, would have
/// met first, if it comes before.
fn first_broken(e: &Engine, slot: u32) -> Option<&'static str> {
    let id = e
        .first_duplicate_id_before(slot + 1)
        .map(|s| (s, IDS_TWICE));
    earliest(id, e.claims.first_conflict_before(slot)).map(|(_, m)| m)
}

fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, RestoreError> {
    shape_error(text, "snapshot", "a snapshot").map_err(RestoreError::Malformed)
}

/// Reads `text` as a `T`, locating a shape error: `{root}.stores[2].state
/// does not have the shape of {what} (category at line, column)`.
pub(crate) fn shape_error<'a, T: Deserialize<'a>>(
    text: &'a str,
    root: &str,
    what: &str,
) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        format!(
            "{} does not have the shape of {what} ({})",
            path_of(root, e.path()),
            strip(e.inner())
        )
    })
}

/// The JSON path of a shape error (store records are in a list, so
/// indices name them).
fn path_of(root: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut s = String::from(root);
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => s.push_str(&format!("[{index}]")),
            // Struct fields and map keys; the snapshot's only maps are
            // keyed by field or platform names, never by a secret.
            Segment::Enum { variant } | Segment::Map { key: variant } => {
                s.push('.');
                s.push_str(&variant.chars().take(32).collect::<String>());
            }
            Segment::Unknown => s.push_str(".?"),
        }
    }
    s
}

fn check_v1_claims(e: &Engine, c: &ClaimsV1) -> Result<(), RestoreError> {
    let id = |slot: u32| e.store(slot).store_id.clone();
    let sellers: Vec<(String, String, String)> = e
        .claims
        .sellers()
        .into_iter()
        .map(|(p, s, slot)| (p.to_owned(), s.to_owned(), id(slot)))
        .collect();
    let creds: Vec<(String, String)> = e
        .claims
        .credentials()
        .into_iter()
        .map(|(f, slot)| (f.to_string(), id(slot)))
        .collect();
    if c.sellers != sellers || c.credentials != creds {
        return Err(RestoreError::Inconsistent(
            "every claim is owned by a store that holds it".into(),
        ));
    }
    Ok(())
}

fn major(version: Option<&serde_json::Value>) -> Result<u32, RestoreError> {
    let version = match version {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => return Err(RestoreError::Malformed("version is required".into())),
    };
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m @ (1 | 2)) => Ok(m),
        _ => Err(RestoreError::Version { supported: MAJOR }),
    }
}

/// serde_json errors can quote input; keep only the category and position.
pub(crate) fn strip(e: &serde_json::Error) -> String {
    let cat = match e.classify() {
        serde_json::error::Category::Io => "io error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected content",
        serde_json::error::Category::Eof => "unexpected end",
    };
    format!("{cat} at line {} column {}", e.line(), e.column())
}
