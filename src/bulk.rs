//! Filling the engine's hash indexes in bulk (restore): entries are kept
//! aside with their hashes while the stores are placed, then inserted
//! region by region of the table (a counting partition by the top bits of
//! their buckets, in place and in linear time: no sort), so that each table
//! is filled front to back — one pass over it instead of a cache (and TLB)
//! miss or two at a random place of a table far larger than the cache for
//! every entry, which is most of the time of a large restore. A key held
//! twice is found on the way; the store refused is the one that indexing
//! store by store, in slot order, would have refused first.
//!
//! What does not live here: the indexes themselves (`claims`, `ids`).

use crate::keys::IndexHasher;
use hashbrown::{HashTable, hash_table};
use std::collections::HashMap;

/// Entries kept aside: (hash, entry), in slot order.
pub(crate) type Pending<T> = Vec<(u64, T)>;

/// The bucket mask of a hash table of `capacity` (hashbrown keeps 7/8 of
/// its power-of-two buckets usable): entries ordered by `hash & mask` go
/// into the table front to back. A wrong guess only costs locality.
pub(crate) fn bucket_mask(capacity: usize) -> u64 {
    ((capacity / 7 * 8).max(1).next_power_of_two() - 1) as u64
}

/// Regions a table is filled by: each covers 1/`REGIONS` of its buckets
/// (at 1M stores, 2 048 buckets: tens of kilobytes, which stay in cache
/// while the region's entries go in, in any order).
const REGIONS: usize = 1024;

/// Orders `entries` by the region of the table their bucket (`hash & mask`)
/// is in: a counting partition ("American flag"), in place, each entry
/// moved once to its region's next free place.
pub(crate) fn by_region<T>(entries: &mut [T], mask: u64, hash: impl Fn(&T) -> u64) {
    let bits = u64::BITS - mask.leading_zeros();
    let shift = bits.saturating_sub(REGIONS.trailing_zeros());
    let region = |e: &T| ((hash(e) & mask) >> shift) as usize;
    let regions = (mask >> shift) as usize + 1;
    let mut next = vec![0usize; regions];
    for e in entries.iter() {
        next[region(e)] += 1;
    }
    // `next[r]`: the next place to fill in region `r`; `end[r]`: its end.
    let mut end = next.clone();
    let mut at = 0usize;
    for (n, e) in next.iter_mut().zip(end.iter_mut()) {
        let len = *n;
        *n = at;
        at += len;
        *e = at;
    }
    for r in 0..regions {
        while next[r] < end[r] {
            let to = region(&entries[next[r]]);
            if to == r {
                next[r] += 1;
            } else {
                entries.swap(next[r], next[to]);
                next[to] += 1;
            }
        }
    }
}

/// Inserts `entries` into `table` in the order of their buckets' regions
/// (their hashes computed once, when they were kept aside), keeping the
/// lowest slot of each key; returns the first store, in slot order, whose
/// key a store of a lower slot has (see [`first_conflict`]). An entry's
/// key is compared through `same`, its slot reached through `slot`, and
/// `hash` hashes the table's entries again should it grow.
pub(crate) fn insert_by_region<T>(
    table: &mut HashTable<T>,
    mut entries: Pending<T>,
    same: impl Fn(&T, &T) -> bool,
    slot: impl Fn(&mut T) -> &mut u32,
    hash: impl Fn(&T) -> u64,
) -> Option<u32> {
    table.reserve(entries.len(), &hash);
    let mask = bucket_mask(table.capacity());
    by_region(&mut entries, mask, |e| e.0);
    let mut first: Option<u32> = None;
    for (h, mut entry) in entries {
        match table.entry(h, |held| same(held, &entry), &hash) {
            hash_table::Entry::Vacant(v) => {
                v.insert(entry);
            }
            hash_table::Entry::Occupied(mut o) => {
                let held = slot(o.get_mut());
                let this = *slot(&mut entry);
                if *held != this {
                    // Of the stores seen so far with this key, the one
                    // after the lowest is refused; the lowest keeps it.
                    let refused = (*held).max(this);
                    first = Some(first.map_or(refused, |f| f.min(refused)));
                    *held = (*held).min(this);
                }
            }
        }
    }
    first
}

/// The first store, in slot order, whose key a store of a lower slot has
/// (what indexing store by store would refuse first), among `entries`
/// below slot `below`.
pub(crate) fn first_conflict<K: std::hash::Hash + Eq + Copy>(
    hasher: IndexHasher,
    entries: impl Iterator<Item = (K, u32)>,
    below: u32,
) -> Option<u32> {
    let mut lowest: HashMap<K, u32, IndexHasher> = HashMap::with_hasher(hasher);
    let mut first: Option<u32> = None;
    for (key, slot) in entries.filter(|&(_, slot)| slot < below) {
        let held = *lowest.entry(key).or_insert(slot);
        if held != slot {
            let refused = held.max(slot);
            first = Some(first.map_or(refused, |f| f.min(refused)));
            lowest.insert(key, held.min(slot));
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_order_entries_by_bucket_region_and_keep_them_all() {
        for (n, mask) in [
            (0usize, 0u64),
            (1, 0),
            (5, 3),
            (1000, 1023),
            (5000, (1 << 13) - 1),
        ] {
            // Scattered hashes (an LCG), each entry its index.
            let mut entries: Vec<(u64, u32)> = (0..n as u64)
                .map(|i| {
                    (
                        i.wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407),
                        i as u32,
                    )
                })
                .collect();
            let before = entries.clone();
            by_region(&mut entries, mask, |e| e.0);
            let shift = (u64::BITS - mask.leading_zeros()).saturating_sub(10);
            let regions: Vec<u64> = entries.iter().map(|e| (e.0 & mask) >> shift).collect();
            assert!(
                regions.windows(2).all(|w| w[0] <= w[1]),
                "n {n} mask {mask}"
            );
            let mut after = entries.clone();
            after.sort_unstable_by_key(|e| e.1);
            assert_eq!(after, before);
        }
    }
}
