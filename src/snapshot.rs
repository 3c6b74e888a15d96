//! Snapshot and restore: the whole engine state as one versioned JSON
//! object, written straight from the structures (no intermediate JSON
//! value), and read back into a fresh engine that replaces the old one only
//! when everything checks out.
//!
//! The snapshot holds every store (with its credentials, timers, waiting
//! request and outbox), the claims (for hosts that mirror them in a
//! database; rebuilt from the stores and checked on restore), the rate
//! windows, the undrained outputs, the counters and a fingerprint of the
//! configuration — never a configuration secret.
//!
//! Requests open at snapshot time are sent again after a restore under new
//! ids (the request ids carry the restore generation). Their undrained
//! `http_request` outputs are not written (they carry configuration
//! secrets) and are dropped from a snapshot that has them: the resend
//! replaces them.

use crate::claims::Claims;
use crate::engine::{Counters, Engine};
use crate::error::RestoreError;
use crate::message::Output;
use crate::ratelimit::Gate;
use crate::store::{Request, Store, TimerKind};
use crate::timers::TimerQueue;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Major version this engine writes and reads.
pub const MAJOR: u32 = 1;
/// Version string written.
pub const VERSION: &str = "1.0";

#[derive(Serialize)]
struct SnapshotOut<'a> {
    version: &'static str,
    config: &'a str,
    now: i64,
    counters: Counters,
    stores: Vec<&'a Store>,
    claims: ClaimsOut<'a>,
    gates: BTreeMap<&'a str, Vec<i64>>,
    outputs: Vec<&'a Output>,
}

#[derive(Serialize)]
struct ClaimsOut<'a> {
    sellers: Vec<(&'a str, &'a str, &'a str)>,
    credentials: Vec<(crate::claims::Fingerprint, &'a str)>,
}

#[derive(Deserialize)]
struct SnapshotIn {
    version: serde_json::Value,
    config: String,
    now: i64,
    counters: Counters,
    stores: Vec<Store>,
    #[serde(default)]
    claims: Option<ClaimsIn>,
    #[serde(default)]
    gates: BTreeMap<String, Vec<i64>>,
    #[serde(default)]
    outputs: VecDeque<Output>,
}

#[derive(Deserialize, PartialEq, Eq, Debug)]
struct ClaimsIn {
    sellers: Vec<(String, String, String)>,
    credentials: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct VersionProbe {
    version: Option<serde_json::Value>,
}

impl Engine {
    /// The whole state as JSON text.
    pub fn snapshot(&self) -> String {
        let stores: Vec<&Store> = self.slots.iter().flatten().collect();
        let id = |slot: u32| self.store(slot).store_id.as_str();
        let claims = ClaimsOut {
            sellers: self
                .claims
                .sellers()
                .map(|(p, s, slot)| (p, s, id(slot)))
                .collect(),
            credentials: self
                .claims
                .credentials()
                .map(|(f, slot)| (f, id(slot)))
                .collect(),
        };
        let gates = self
            .gates
            .iter()
            .map(|(name, g)| (name.as_str(), g.window()))
            .collect();
        serde_json::to_string(&SnapshotOut {
            version: VERSION,
            config: &self.config_fp,
            now: self.now,
            counters: self.counters,
            stores,
            claims,
            gates,
            // Undrained http_request outputs are left out: they carry
            // configuration secrets (app secrets, service tokens), and the
            // requests they stand for are open, so a restore sends them again.
            outputs: self
                .outputs
                .iter()
                .filter(|o| !matches!(o, Output::HttpRequest(_)))
                .collect(),
        })
        .expect("snapshot serializes")
    }

    /// Replaces the whole state with a snapshot's; on any error the engine
    /// is unchanged.
    pub fn restore(&mut self, snapshot: &str) -> Result<(), RestoreError> {
        // One parse in the common case; the version is read on its own only
        // when the whole does not parse (it may be another format).
        let snap: SnapshotIn = match serde_json::from_str(snapshot) {
            Ok(s) => s,
            Err(e) => {
                let probe: VersionProbe = serde_json::from_str(snapshot)
                    .map_err(|_| RestoreError::Malformed(strip(&e)))?;
                check_version(probe.version.as_ref())?;
                return Err(RestoreError::Malformed(strip(&e)));
            }
        };
        check_version(Some(&snap.version))?;
        if !crate::keys::ct_eq(snap.config.as_bytes(), self.config_fp.as_bytes()) {
            return Err(RestoreError::OtherConfiguration);
        }
        let rebuilt = self.rebuild(snap)?;
        *self = rebuilt;
        Ok(())
    }

    fn rebuild(&self, snap: SnapshotIn) -> Result<Engine, RestoreError> {
        let bad = |m: String| RestoreError::Inconsistent(m);
        let mut e = Engine {
            settings: self.settings.clone(),
            keys: self.keys.clone(),
            config_fp: self.config_fp.clone(),
            now: snap.now.max(0),
            slots: Vec::with_capacity(snap.stores.len()),
            free: Vec::new(),
            by_id: HashMap::with_capacity_and_hasher(snap.stores.len(), self.keys.index_hasher()),
            claims: Claims::default(),
            nonces: BTreeMap::new(),
            open: BTreeMap::new(),
            timers: TimerQueue::default(),
            gates: BTreeMap::new(),
            outputs: snap.outputs,
            resend: Vec::new(),
            counters: snap.counters,
        };
        for p in &e.settings.profiles {
            if let Some(n) = p.rate_limit_per_s {
                let mut g = Gate::new(n);
                if let Some(w) = snap.gates.get(&p.name) {
                    g.set_window(w);
                }
                e.gates.insert(p.name.clone(), g);
            }
        }
        let mut waiting = Vec::new();
        for mut store in snap.stores {
            if e.settings.profile(&store.platform).is_none() {
                return Err(bad(format!(
                    "a store is on platform {} which is not configured",
                    store.platform
                )));
            }
            if e.by_id.contains_key(&store.store_id) {
                return Err(bad("a store_id appears twice".into()));
            }
            // Requests open at snapshot time are sent again under new ids.
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
                }
            }
            let marks = (
                match store.request {
                    Some(Request::Resend(w)) => Some((w.serial, Some(w.purpose))),
                    _ => None,
                },
                store
                    .notify
                    .as_ref()
                    .and_then(|n| n.resend)
                    .map(|s| (s, None)),
            );
            let nonce = store.att().nonce;
            let queued = match store.request {
                Some(Request::Queued(q)) => Some(q),
                _ => None,
            };
            let timers = store.timers;
            let slot = e.insert_store(store);
            if let Some(n) = nonce {
                e.nonces.insert(n, slot);
            }
            if let Some(q) = queued {
                waiting.push((q, slot));
            }
            for (kind, at, seq) in timers.iter() {
                e.timers.insert(at, seq, slot, kind);
            }
            for (serial, purpose) in [marks.0, marks.1].into_iter().flatten() {
                e.resend.push((serial, slot, purpose));
            }
            let held = e.held(slot);
            let platform = e.store(slot).platform.clone();
            for s in &held.sellers {
                if e.claims.seller_owner(&platform, s).is_some() {
                    return Err(bad("a seller is claimed by two stores".into()));
                }
            }
            if let Some(c) = &held.credential {
                if e.claims.credential_owner(c).is_some() {
                    return Err(bad("a credential is claimed by two stores".into()));
                }
            }
            e.claims.sync(slot, &platform, &Default::default(), &held);
        }
        for (q, slot) in waiting {
            let platform = e.store(slot).platform.clone();
            match e.gates.get_mut(&platform) {
                Some(g) => g.enqueue(q.priority, q.seq, slot),
                None => {
                    return Err(bad(
                        "a request waits for a rate gate that does not exist".into()
                    ));
                }
            }
        }
        if let Some(c) = snap.claims {
            let id = |slot: u32| e.store(slot).store_id.clone();
            let sellers: Vec<(String, String, String)> = e
                .claims
                .sellers()
                .map(|(p, s, slot)| (p.to_owned(), s.to_owned(), id(slot)))
                .collect();
            let creds: Vec<(String, String)> = e
                .claims
                .credentials()
                .map(|(f, slot)| (f.to_string(), id(slot)))
                .collect();
            if c.sellers != sellers || c.credentials != creds {
                return Err(bad("claims do not match the stores".into()));
            }
        }
        e.resend.sort_by_key(|r| r.0);
        e.outputs.retain(|o| !matches!(o, Output::HttpRequest(_)));
        // Counters never move backwards in one engine: restoring an older
        // snapshot into an engine that has issued more ids keeps its ids
        // (requests, events, nonces) from repeating. The generation tells
        // request ids of this restore from any earlier one.
        let own = self.counters;
        let c = &mut e.counters;
        c.request = c.request.max(own.request);
        c.event = c.event.max(own.event);
        c.nonce = c.nonce.max(own.nonce);
        c.timer = c.timer.max(own.timer);
        c.queue = c.queue.max(own.queue);
        c.generation = c.generation.max(own.generation) + 1;
        Ok(e)
    }
}

fn check_version(version: Option<&serde_json::Value>) -> Result<(), RestoreError> {
    let version = match version {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => return Err(RestoreError::Malformed("version is required".into())),
    };
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major != Some(MAJOR) {
        return Err(RestoreError::Version {
            found: version.chars().take(32).collect(),
            supported: MAJOR,
        });
    }
    Ok(())
}

/// serde_json errors can quote input; keep only the category and position.
fn strip(e: &serde_json::Error) -> String {
    let cat = match e.classify() {
        serde_json::error::Category::Io => "io error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected content",
        serde_json::error::Category::Eof => "unexpected end",
    };
    format!("{cat} at line {} column {}", e.line(), e.column())
}
