//! The store-id index: store id → slot. It holds only the slots (4 bytes
//! an entry); an entry's id is read from the store's own record in its
//! slot, so no id is held twice. Hashed under the engine's keyed hasher, so
//! crafted ids cannot collide on purpose.
//!
//! A restore fills it in bulk: the slots are kept aside with the hashes of
//! their ids while the stores are placed, then inserted in the order of
//! their buckets (`bulk`); the first store whose id a store of a lower slot
//! has is named then.
//!
//! What does not live here: the stores themselves (the engine's slots, which
//! every call that reads an id is given), the other indexes (`claims`,
//! `timers`).

use crate::keys::IndexHasher;
use crate::store::Store;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// The engine's slots, where the ids are read.
type Slots = [Option<Store>];

/// The id of the store in `slot` (the index names only live slots).
fn id_of(slots: &Slots, slot: u32) -> &str {
    &slots[slot as usize]
        .as_ref()
        .expect("the id index names live slots")
        .store_id
}

/// Store id → slot.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    table: HashTable<u32>,
    hasher: IndexHasher,
    /// While a restore places its stores: (hash of the id, slot), in slot
    /// order, indexed at [`Ids::settle`].
    bulk: Option<crate::bulk::Pending<u32>>,
}

impl Ids {
    /// An empty index.
    pub(crate) fn new(hasher: IndexHasher) -> Ids {
        Ids {
            table: HashTable::new(),
            hasher,
            bulk: None,
        }
    }

    /// The engine's keyed hasher (also used for its other hash sets).
    pub(crate) fn hasher(&self) -> &IndexHasher {
        &self.hasher
    }

    /// Number of stores indexed.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The slot of the store with this id.
    pub(crate) fn get(&self, slots: &Slots, id: &str) -> Option<u32> {
        self.table
            .find(self.hash(id), |&s| id_of(slots, s) == id)
            .copied()
    }

    /// Whether a store has this id.
    pub(crate) fn contains_key(&self, slots: &Slots, id: &str) -> bool {
        self.get(slots, id).is_some()
    }

    /// Indexes the store in `slot` (placed there already) under its id,
    /// which no other store has; or, while in bulk, keeps it aside.
    pub(crate) fn insert(&mut self, slots: &Slots, slot: u32) {
        let hash = self.hash(id_of(slots, slot));
        if let Some(pending) = self.bulk.as_mut() {
            pending.push((hash, slot));
            return;
        }
        let hasher = self.hasher;
        self.table
            .insert_unique(hash, slot, |&s| hasher.hash_one(id_of(slots, s)));
    }

    /// Forgets the store in `slot`, whose id is `id` (its record may have
    /// left the slot already).
    pub(crate) fn remove(&mut self, id: &str, slot: u32) {
        if let Ok(entry) = self.table.find_entry(self.hash(id), |&s| s == slot) {
            entry.remove();
        }
    }

    /// Room for `n` more stores (their ids read from `slots` if the table
    /// grows).
    pub(crate) fn reserve(&mut self, slots: &Slots, n: usize) {
        let hasher = self.hasher;
        self.table.reserve(n, |&s| hasher.hash_one(id_of(slots, s)));
    }

    /// Starts filling the (empty) index in bulk: ids are kept aside until
    /// [`Ids::settle`].
    pub(crate) fn begin_bulk(&mut self, stores: usize) {
        debug_assert!(self.table.is_empty());
        self.bulk = Some(Vec::with_capacity(stores));
    }

    /// Indexes the ids kept aside since [`Ids::begin_bulk`]; the first
    /// slot whose id a store of a lower slot has, if any (that store keeps
    /// the id).
    pub(crate) fn settle(&mut self, slots: &Slots) -> Option<u32> {
        let pending = self.bulk.take()?;
        let hasher = self.hasher;
        crate::bulk::insert_by_region(
            &mut self.table,
            pending,
            |&a, &b| id_of(slots, a) == id_of(slots, b),
            |s| s,
            |&s| hasher.hash_one(id_of(slots, s)),
        )
    }

    /// While in bulk: the first slot below `below` whose id a store of a
    /// lower slot has.
    pub(crate) fn first_duplicate_before(&self, slots: &Slots, below: u32) -> Option<u32> {
        let pending = self.bulk.as_ref()?;
        let ids = pending.iter().map(|&(_, slot)| (id_of(slots, slot), slot));
        crate::bulk::first_conflict(self.hasher, ids, below)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(id: &str) -> Option<Store> {
        Some(Store::new("c".into(), id.into(), "p".into(), None, None))
    }

    #[test]
    fn finds_inserts_and_removes_by_the_slots_ids() {
        let hasher = crate::keys::Keys::derive(&[4; 32]).index_hasher();
        let mut slots: Vec<Option<Store>> = Vec::new();
        let mut ids = Ids::new(hasher);
        for i in 0..1000 {
            slots.push(store(&format!("s{i}")));
            ids.insert(&slots, i);
        }
        assert_eq!(ids.len(), 1000);
        assert_eq!(ids.get(&slots, "s17"), Some(17));
        assert_eq!(ids.get(&slots, "s1000"), None);
        // Removed after its record left the slot.
        let gone = slots[17].take().unwrap();
        ids.remove(&gone.store_id, 17);
        assert_eq!(ids.get(&slots, "s17"), None);
        assert_eq!(ids.len(), 999);
        // Another slot's id is not removed by a wrong slot.
        ids.remove("s18", 19);
        assert_eq!(ids.get(&slots, "s18"), Some(18));
    }

    #[test]
    fn bulk_fills_and_names_the_first_duplicate() {
        let hasher = crate::keys::Keys::derive(&[5; 32]).index_hasher();
        // Slots 0..300 with ids repeating every 250 (slot 250 repeats slot 0).
        let slots: Vec<Option<Store>> = (0..300).map(|i| store(&format!("s{}", i % 250))).collect();
        for below in [0, 100, 250, 251, 300] {
            let mut ids = Ids::new(hasher);
            ids.begin_bulk(below as usize);
            for s in 0..below {
                ids.insert(&slots, s);
            }
            let want = (below > 250).then_some(250);
            assert_eq!(ids.first_duplicate_before(&slots, below), want);
            assert_eq!(ids.first_duplicate_before(&slots, 250), None);
            assert_eq!(ids.settle(&slots), want, "below {below}");
            // The lowest slot keeps each id.
            for s in 0..below.min(250) {
                assert_eq!(ids.get(&slots, &format!("s{s}")), Some(s));
            }
            assert_eq!(ids.len(), below.min(250) as usize);
        }
    }
}
