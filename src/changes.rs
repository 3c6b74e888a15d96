//! Persistence by changes (spec §10): `take_changes` hands out the engine
//! header and every store whose record changed since the previous take (or
//! since `new`, `restore` or `load`), once each, sorted by the bytes of the
//! `store_id`, with its whole record; a removed store with `record: null`.
//! Its cost is proportional to the changed stores: the engine keeps a list
//! of changed slots (see `Engine::touch`), never a scan of all stores.
//!
//! A host writes each entry as one row (keyed by `store_id`, with `ref` in a
//! unique column, the claims in a table with unique indexes, `due_at` to
//! select due stores) and the header as one row; `{"version", "engine":
//! header, "stores": [every row's record]}` is then a snapshot that
//! restores to exactly the state `snapshot()` would.
//!
//! What does not live here: the record format itself (`store`, `snapshot`).

use crate::engine::Engine;
use crate::message::{Claim, time_format};
use crate::snapshot::{HeaderOut, RecordOut, VERSION};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One change entry.
#[derive(Serialize)]
struct EntryOut<'a> {
    store_id: &'a str,
    #[serde(rename = "ref")]
    store_ref: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claims: Option<Vec<Claim>>,
    #[serde(with = "time_format::option")]
    due_at: Option<DateTime<Utc>>,
    record: Option<RecordOut<'a>>,
}

#[derive(Serialize)]
struct ChangesOut<'a> {
    version: &'static str,
    engine: HeaderOut<'a>,
    stores: Vec<EntryOut<'a>>,
}

impl Engine {
    /// Every change since the previous take, as JSON text (spec §10).
    pub fn take_changes(&mut self) -> String {
        let mut slots = std::mem::take(&mut self.changed_slots);
        for &slot in &slots {
            self.changed[slot as usize] = false;
        }
        // A slot freed by a removal (and perhaps reused) is named by the
        // store it holds now; removed ids that are live again are covered by
        // their new record.
        slots.retain(|&s| self.slots[s as usize].is_some());
        let mut removed = std::mem::take(&mut self.removed);
        removed.retain(|id| !self.by_id.contains_key(&self.slots, id));
        removed.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        removed.dedup();
        slots.sort_unstable_by(|&a, &b| {
            self.store(a)
                .store_id
                .as_bytes()
                .cmp(self.store(b).store_id.as_bytes())
        });
        let mut stores: Vec<EntryOut<'_>> = Vec::with_capacity(slots.len() + removed.len());
        for &slot in &slots {
            let store = self.store(slot);
            stores.push(EntryOut {
                store_id: &store.store_id,
                store_ref: self.store_ref(slot).to_string(),
                client_id: Some(&store.client_id),
                platform: Some(&store.platform),
                claims: Some(self.claims_of(slot)),
                due_at: store
                    .due_at()
                    .and_then(DateTime::<Utc>::from_timestamp_millis),
                record: Some(self.record(slot)),
            });
        }
        for id in &removed {
            stores.push(EntryOut {
                store_id: id,
                store_ref: self.keys.store_ref(id).to_string(),
                client_id: None,
                platform: None,
                claims: None,
                due_at: None,
                record: None,
            });
        }
        if !removed.is_empty() {
            stores.sort_by(|a, b| a.store_id.as_bytes().cmp(b.store_id.as_bytes()));
        }
        serde_json::to_string(&ChangesOut {
            version: VERSION,
            engine: self.header(),
            stores,
        })
        .expect("changes serialize")
    }

    /// Forgets what changed so far (after `new`, `restore`, `load`).
    pub(crate) fn clear_changes(&mut self) {
        for &slot in &self.changed_slots {
            self.changed[slot as usize] = false;
        }
        self.changed_slots.clear();
        self.removed.clear();
    }
}
