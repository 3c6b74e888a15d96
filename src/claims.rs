//! The claim index: which store holds each seller (per platform) and each
//! credential fingerprint. The stores' own records are the truth; this
//! index is rebuilt from them on restore and kept in step by [`Claims::sync`],
//! which swaps a store's old claims for its new ones in one step.
//!
//! Beside it, [`Foreign`]: the claims of stores that are not in this engine
//! (spec §11, fleets), registered by `load` and forgotten by `unload`. They
//! bind like local claims but belong to no slot, are never persisted (not
//! in a snapshot, not in `take_changes`) and are never changed by the
//! engine's rules.
//!
//! What does not live here: when claims are taken or released (`engine`),
//! reading and checking loads (`fleet`).

use crate::bulk;
use crate::keys::IndexHasher;
use hashbrown::HashTable;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;

/// A credential fingerprint: 128 bits of HMAC-SHA256 under the engine's
/// credential key. Held as bytes (no heap); written as 32 lower-case hex
/// digits. Byte order is hex order, so sorted claims read the same in both.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub [u8; 16]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl Fingerprint {
    /// Reads 32 hex digits (either case, as `hex` reads them).
    fn from_hex(text: &[u8]) -> Option<Fingerprint> {
        const fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        // Digit values by byte, 0xff for a non-digit: no branch per digit.
        const VALUE: [u8; 256] = {
            let mut t = [0xffu8; 256];
            let mut c = 0;
            while c < 256 {
                if let Some(v) = nibble(c as u8) {
                    t[c] = v;
                }
                c += 1;
            }
            t
        };
        let digits: &[u8; 32] = text.try_into().ok()?;
        let mut bytes = [0u8; 16];
        let mut bad = 0u8;
        for (b, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let (hi, lo) = (VALUE[pair[0] as usize], VALUE[pair[1] as usize]);
            bad |= hi | lo;
            *b = hi << 4 | lo;
        }
        // Digit values are below 16; 0xff marks a non-digit.
        (bad < 16).then_some(Fingerprint(bytes))
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor of `&str`: the digits are read where they lie in the
        // input (no `String` of their own).
        struct Hex;
        impl serde::de::Visitor<'_> for Hex {
            type Value = Fingerprint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Fingerprint, E> {
                Fingerprint::from_hex(text.as_bytes())
                    .ok_or_else(|| E::custom("a fingerprint is 32 hex digits"))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Fingerprint, E> {
                match std::str::from_utf8(v) {
                    Ok(text) => self.visit_str(text),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(v), &self)),
                }
            }
        }
        d.deserialize_str(Hex)
    }
}

/// The index: hash tables of (key, slot) under the engine's keyed hasher
/// (crafted seller ids cannot collide on purpose); iteration sorts on
/// demand. Tables rather than maps so that a key is found by its parts
/// and a restore inserts with the hash it computed once.
#[derive(Debug, Clone)]
pub struct Claims {
    sellers: HashTable<(SellerKey, u32)>,
    credentials: HashTable<(Fingerprint, u32)>,
    hasher: IndexHasher,
    /// Claims taken while the index is rebuilt in bulk, not indexed yet.
    bulk: Option<Box<Bulk>>,
}

/// What a restore names when two stores claim one seller.
pub const SELLER_TWICE: &str = "no seller is claimed by two stores";
/// What a restore names when two stores claim one credential.
pub const CREDENTIAL_TWICE: &str = "no credential is claimed by two stores";

/// Claims taken while the index is rebuilt in bulk (restore), each with
/// its hash, indexed at [`Claims::settle`] in the order of their buckets:
/// one pass over each table instead of a cache miss or two per claim at a
/// random place in it, which is most of the time of a large restore.
#[derive(Debug, Clone, Default)]
struct Bulk {
    sellers: bulk::Pending<(SellerKey, u32)>,
    credentials: bulk::Pending<(Fingerprint, u32)>,
}

/// The store refused first and the invariant it breaks: a store's sellers
/// are checked before its credential.
fn refusal(sellers: Option<u32>, credentials: Option<u32>) -> Option<(u32, &'static str)> {
    match (sellers, credentials) {
        (Some(s), Some(c)) if c < s => Some((c, CREDENTIAL_TWICE)),
        (Some(s), _) => Some((s, SELLER_TWICE)),
        (None, Some(c)) => Some((c, CREDENTIAL_TWICE)),
        (None, None) => None,
    }
}

/// A store's claims: seller keys (normalized) and credential fingerprint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Held {
    /// Seller ids.
    pub sellers: Vec<String>,
    /// Fingerprint.
    pub credential: Option<Fingerprint>,
}

/// The key of a foreign seller claim: platform, NUL, seller.
pub(crate) fn seller_key(platform: &str, seller: &str) -> String {
    let mut k = String::with_capacity(platform.len() + seller.len() + 1);
    k.push_str(platform);
    k.push('\u{0}');
    k.push_str(seller);
    k
}

/// A seller claim's key: the platform name and the seller key, held inline
/// when they are short (no allocation, and an index whose keys lie in its
/// own table), else in one allocation; with the length of the platform
/// name. Hashed and compared as the pair of byte strings, so a lookup needs
/// no key of its own: `(platform, seller)` borrowed is found by its parts.
#[derive(Debug, Clone)]
enum SellerKey {
    /// `len` bytes of platform then seller, the first `split` the platform's.
    Inline {
        split: u8,
        len: u8,
        bytes: [u8; INLINE],
    },
    /// Platform then seller, the first `split` bytes the platform's.
    Heap { text: Box<str>, split: u32 },
}

/// The longest key held inline (so that a key is as large as a `String`).
const INLINE: usize = 21;

impl SellerKey {
    fn new(platform: &str, seller: &str) -> SellerKey {
        let len = platform.len() + seller.len();
        if len <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..platform.len()].copy_from_slice(platform.as_bytes());
            bytes[platform.len()..len].copy_from_slice(seller.as_bytes());
            return SellerKey::Inline {
                split: platform.len() as u8,
                len: len as u8,
                bytes,
            };
        }
        let mut text = String::with_capacity(len);
        text.push_str(platform);
        text.push_str(seller);
        SellerKey::Heap {
            text: text.into_boxed_str(),
            split: platform.len() as u32,
        }
    }

    /// The platform and the seller.
    fn strs(&self) -> (&str, &str) {
        let (p, s) = self.parts();
        let text = |b| std::str::from_utf8(b).expect("keys are made of two strs");
        (text(p), text(s))
    }
}

impl SellerKey {
    /// The platform's bytes and the seller's.
    fn parts(&self) -> (&[u8], &[u8]) {
        match self {
            SellerKey::Inline { split, len, bytes } => {
                bytes[..*len as usize].split_at(*split as usize)
            }
            SellerKey::Heap { text, split } => text.as_bytes().split_at(*split as usize),
        }
    }
}

impl Claims {
    /// An empty index.
    pub fn new(hasher: IndexHasher) -> Claims {
        Claims {
            sellers: HashTable::new(),
            credentials: HashTable::new(),
            hasher,
            bulk: None,
        }
    }

    /// The hash of a seller claim's key, given by its parts.
    fn seller_hash(&self, platform: &[u8], seller: &[u8]) -> u64 {
        seller_hash(&self.hasher, (platform, seller))
    }

    /// Starts rebuilding the index in bulk (restore, stores claimed in slot
    /// order into an empty index): claims are kept aside until
    /// [`Claims::settle`], and nothing is released meanwhile.
    pub fn begin_bulk(&mut self, stores: usize) {
        debug_assert!(self.sellers.is_empty() && self.credentials.is_empty());
        self.bulk = Some(Box::new(Bulk {
            sellers: Vec::with_capacity(stores),
            credentials: Vec::with_capacity(stores),
        }));
    }

    /// Indexes the claims kept aside since [`Claims::begin_bulk`]; the
    /// error is the store that claiming store by store, in slot order,
    /// would have refused first, and the invariant it breaks.
    pub fn settle(&mut self) -> Result<(), (u32, &'static str)> {
        let Some(pending) = self.bulk.take() else {
            return Ok(());
        };
        let h = self.hasher;
        let sellers = bulk::insert_by_region(
            &mut self.sellers,
            pending.sellers,
            |a, b| a.0.parts() == b.0.parts(),
            |e| &mut e.1,
            |e| seller_hash(&h, e.0.parts()),
        );
        let credentials = bulk::insert_by_region(
            &mut self.credentials,
            pending.credentials,
            |a, b| a.0 == b.0,
            |e| &mut e.1,
            |e| h.hash_one(e.0),
        );
        refusal(sellers, credentials).map_or(Ok(()), Err)
    }

    /// While in bulk: the store below slot `below` that claiming the stores
    /// one by one would have refused first, and the invariant it breaks
    /// (for a restore refused at that slot for another reason, so that it
    /// names what a restore that checks the claims on the way names).
    pub fn first_conflict_before(&self, below: u32) -> Option<(u32, &'static str)> {
        let pending = self.bulk.as_deref()?;
        let sellers = pending
            .sellers
            .iter()
            .map(|(_, (k, slot))| (k.parts(), *slot));
        let credentials = pending.credentials.iter().map(|(_, (k, slot))| (k, *slot));
        refusal(
            bulk::first_conflict(self.hasher, sellers, below),
            bulk::first_conflict(self.hasher, credentials, below),
        )
    }

    /// Room for `n` more stores' claims.
    pub fn reserve(&mut self, n: usize) {
        let h = self.hasher;
        self.sellers.reserve(n, |e| seller_hash(&h, e.0.parts()));
        self.credentials.reserve(n, |e| h.hash_one(e.0));
    }

    /// The store holding a seller.
    pub fn seller_owner(&self, platform: &str, seller: &str) -> Option<u32> {
        let parts = (platform.as_bytes(), seller.as_bytes());
        self.sellers
            .find(self.seller_hash(parts.0, parts.1), |e| e.0.parts() == parts)
            .map(|e| e.1)
    }

    /// The store holding a credential.
    pub fn credential_owner(&self, fingerprint: &Fingerprint) -> Option<u32> {
        self.credentials
            .find(self.hasher.hash_one(fingerprint), |e| e.0 == *fingerprint)
            .map(|e| e.1)
    }

    /// Gives a seller to `slot` (whoever held it); the slot that held it.
    fn set_seller(&mut self, slot: u32, platform: &str, seller: &str) -> Option<u32> {
        let parts = (platform.as_bytes(), seller.as_bytes());
        let hash = self.seller_hash(parts.0, parts.1);
        let h = self.hasher;
        match self.sellers.entry(
            hash,
            |e| e.0.parts() == parts,
            |e| seller_hash(&h, e.0.parts()),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                Some(std::mem::replace(&mut o.get_mut().1, slot))
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert((SellerKey::new(platform, seller), slot));
                None
            }
        }
    }

    /// Gives a credential to `slot` (whoever held it); the slot that held it.
    fn set_credential(&mut self, slot: u32, fingerprint: Fingerprint) -> Option<u32> {
        let h = self.hasher;
        match self.credentials.entry(
            h.hash_one(fingerprint),
            |e| e.0 == fingerprint,
            |e| h.hash_one(e.0),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                Some(std::mem::replace(&mut o.get_mut().1, slot))
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert((fingerprint, slot));
                None
            }
        }
    }

    /// Replaces `before` with `after` for `slot` (releasing only what `slot` holds).
    pub fn sync(&mut self, slot: u32, platform: &str, before: &Held, after: &Held) {
        // A set, not `Vec::contains`: a store may hold a thousand sellers.
        let kept: BTreeSet<&str> = after.sellers.iter().map(String::as_str).collect();
        for s in &before.sellers {
            if !kept.contains(s.as_str()) {
                let parts = (platform.as_bytes(), s.as_bytes());
                let hash = self.seller_hash(parts.0, parts.1);
                if let Ok(e) = self.sellers.find_entry(hash, |e| e.0.parts() == parts) {
                    if e.get().1 == slot {
                        e.remove();
                    }
                }
            }
        }
        if let Some(c) = &before.credential {
            if after.credential.as_ref() != Some(c) {
                let hash = self.hasher.hash_one(c);
                if let Ok(e) = self.credentials.find_entry(hash, |e| e.0 == *c) {
                    if e.get().1 == slot {
                        e.remove();
                    }
                }
            }
        }
        for s in &after.sellers {
            self.set_seller(slot, platform, s);
        }
        if let Some(c) = after.credential {
            self.set_credential(slot, c);
        }
    }

    /// Claims a seller for `slot` in an index being rebuilt (restore), where
    /// nothing is released; false when another store holds it already.
    pub fn claim_seller(&mut self, slot: u32, platform: &str, seller: &str) -> bool {
        if let Some(bulk) = self.bulk.as_deref_mut() {
            let hash = seller_hash(&self.hasher, (platform.as_bytes(), seller.as_bytes()));
            bulk.sellers
                .push((hash, (SellerKey::new(platform, seller), slot)));
            return true;
        }
        self.set_seller(slot, platform, seller)
            .is_none_or(|o| o == slot)
    }

    /// Claims a credential for `slot` in an index being rebuilt (restore);
    /// false when another store holds it already.
    pub fn claim_credential(&mut self, slot: u32, fingerprint: Fingerprint) -> bool {
        if let Some(bulk) = self.bulk.as_deref_mut() {
            let hash = self.hasher.hash_one(fingerprint);
            bulk.credentials.push((hash, (fingerprint, slot)));
            return true;
        }
        self.set_credential(slot, fingerprint)
            .is_none_or(|o| o == slot)
    }

    /// Every seller claim as (platform, seller, slot), sorted.
    pub fn sellers(&self) -> Vec<(&str, &str, u32)> {
        let mut v: Vec<(&str, &str, u32)> = self
            .sellers
            .iter()
            .map(|(k, slot)| {
                let (p, s) = k.strs();
                (p, s, *slot)
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Every credential claim as (fingerprint, slot), sorted.
    pub fn credentials(&self) -> Vec<(Fingerprint, u32)> {
        let mut v: Vec<(Fingerprint, u32)> = self.credentials.iter().copied().collect();
        v.sort_unstable();
        v
    }

    /// Number of claims.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sellers.len() + self.credentials.len()
    }
}

/// The hash of a seller claim's key: its two parts as byte strings.
fn seller_hash(hasher: &IndexHasher, parts: (&[u8], &[u8])) -> u64 {
    hasher.hash_one(parts)
}

/// Claims of stores held by other engines of a fleet (spec §11): each
/// seller key and fingerprint → the `store_id` holding it, and how many
/// foreign claims name each store (so that a store named by one is never
/// loaded here at the same time).
#[derive(Debug, Clone)]
pub struct Foreign {
    sellers: HashMap<String, String, IndexHasher>,
    credentials: HashMap<Fingerprint, String, IndexHasher>,
    stores: HashMap<String, usize, IndexHasher>,
}

impl Foreign {
    /// An empty set.
    pub fn new(hasher: IndexHasher) -> Foreign {
        Foreign {
            sellers: HashMap::with_hasher(hasher),
            credentials: HashMap::with_hasher(hasher),
            stores: HashMap::with_hasher(hasher),
        }
    }

    /// The store (by id) a foreign seller claim names.
    pub fn seller_owner(&self, platform: &str, seller: &str) -> Option<&str> {
        self.sellers
            .get(&seller_key(platform, seller))
            .map(String::as_str)
    }

    /// The store (by id) a foreign credential claim names.
    pub fn credential_owner(&self, fingerprint: &Fingerprint) -> Option<&str> {
        self.credentials.get(fingerprint).map(String::as_str)
    }

    /// Whether some foreign claim names this store.
    pub fn names(&self, store_id: &str) -> bool {
        self.stores.contains_key(store_id)
    }

    /// Registers a seller claim (a no-op when it is already registered for
    /// that store; the caller has checked it names no other).
    pub fn add_seller(&mut self, key: String, store_id: &str) {
        if self.sellers.contains_key(&key) {
            return;
        }
        self.sellers.insert(key, store_id.to_owned());
        *self.stores.entry(store_id.to_owned()).or_default() += 1;
    }

    /// Registers a credential claim (as [`Foreign::add_seller`]).
    pub fn add_credential(&mut self, fingerprint: Fingerprint, store_id: &str) {
        if self.credentials.contains_key(&fingerprint) {
            return;
        }
        self.credentials.insert(fingerprint, store_id.to_owned());
        *self.stores.entry(store_id.to_owned()).or_default() += 1;
    }

    /// Forgets a seller claim if it is registered for exactly that store.
    pub fn remove_seller(&mut self, key: &str, store_id: &str) {
        if self.sellers.get(key).is_some_and(|s| s == store_id) {
            self.sellers.remove(key);
            self.release(store_id);
        }
    }

    /// Forgets a credential claim if it is registered for exactly that store.
    pub fn remove_credential(&mut self, fingerprint: &Fingerprint, store_id: &str) {
        if self
            .credentials
            .get(fingerprint)
            .is_some_and(|s| s == store_id)
        {
            self.credentials.remove(fingerprint);
            self.release(store_id);
        }
    }

    fn release(&mut self, store_id: &str) {
        if let Some(n) = self.stores.get_mut(store_id) {
            *n -= 1;
            if *n == 0 {
                self.stores.remove(store_id);
            }
        }
    }

    /// Number of foreign claims.
    pub fn len(&self) -> usize {
        self.sellers.len() + self.credentials.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F1: Fingerprint = Fingerprint([0xf1; 16]);

    #[test]
    fn fingerprints_read_and_write_as_hex() {
        let json = serde_json::to_string(&F1).unwrap();
        assert_eq!(json, format!("\"{}\"", "f1".repeat(16)));
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), F1);
        assert!(serde_json::from_str::<Fingerprint>("\"f1\"").is_err());
        // Either case is read, as `hex` reads it; anything else is refused.
        let upper = format!("\"{}\"", "F1".repeat(16));
        assert_eq!(serde_json::from_str::<Fingerprint>(&upper).unwrap(), F1);
        // An escaped digit is a digit; a non-digit is refused.
        for (head, ok) in [
            ("\\u0066\\u0031", true),
            ("g1", false),
            ("f ", false),
            ("+1", false),
        ] {
            let text = format!("\"{head}{}\"", "f1".repeat(15));
            assert_eq!(
                serde_json::from_str::<Fingerprint>(&text).is_ok(),
                ok,
                "{text}"
            );
        }
        assert!(serde_json::from_str::<Fingerprint>(&format!("\"{}\"", "f1".repeat(17))).is_err());
        assert!(serde_json::from_str::<Fingerprint>("7").is_err());
    }

    /// Stores as (sellers, credential), claimed in slot order.
    type Scenario = Vec<(Vec<&'static str>, Option<u8>)>;

    /// Claims store by store, refusing at the first claim another holds.
    fn one_by_one(stores: &Scenario, below: usize) -> (Result<(), &'static str>, Claims) {
        let mut c = Claims::new(crate::keys::Keys::derive(&[2; 32]).index_hasher());
        for (slot, (sellers, fp)) in stores.iter().enumerate().take(below) {
            let slot = slot as u32;
            for s in sellers {
                if !c.claim_seller(slot, "p", s) {
                    return (Err(SELLER_TWICE), c);
                }
            }
            if let Some(f) = fp {
                if !c.claim_credential(slot, Fingerprint([*f; 16])) {
                    return (Err(CREDENTIAL_TWICE), c);
                }
            }
        }
        (Ok(()), c)
    }

    #[test]
    fn bulk_claims_index_and_refuse_as_claims_one_by_one() {
        let scenarios: Vec<Scenario> = vec![
            vec![
                (vec!["a"], Some(1)),
                (vec!["b", "c"], Some(2)),
                (vec![], None),
            ],
            vec![
                (vec!["a"], Some(1)),
                (vec!["b"], Some(1)),
                (vec!["a"], None),
            ],
            vec![
                (vec!["a"], Some(1)),
                (vec!["a"], Some(2)),
                (vec!["b"], Some(2)),
            ],
            vec![
                (vec!["a"], Some(1)),
                (vec!["b"], Some(1)),
                (vec!["b"], Some(3)),
            ],
            vec![
                (vec!["x"], Some(1)),
                (vec!["y"], Some(2)),
                (vec!["z", "x"], Some(2)),
            ],
            vec![
                (vec!["x", "x"], Some(4)),
                (vec!["y"], Some(5)),
                (vec!["y"], Some(4)),
            ],
            (0..300)
                .map(|i| (vec![["a", "b", "c", "d", "e"][i % 5]], Some((i % 7) as u8)))
                .collect(),
            (0..300).map(|i| (vec![], Some((i % 250) as u8))).collect(),
        ];
        for stores in &scenarios {
            let (want, indexed) = one_by_one(stores, stores.len());
            let mut bulk = Claims::new(crate::keys::Keys::derive(&[2; 32]).index_hasher());
            bulk.begin_bulk(stores.len());
            for (slot, (sellers, fp)) in stores.iter().enumerate() {
                for s in sellers {
                    assert!(bulk.claim_seller(slot as u32, "p", s));
                }
                if let Some(f) = fp {
                    assert!(bulk.claim_credential(slot as u32, Fingerprint([*f; 16])));
                }
            }
            for below in 0..=stores.len() {
                let (prefix, _) = one_by_one(stores, below);
                assert_eq!(
                    bulk.first_conflict_before(below as u32).map(|(_, m)| m),
                    prefix.err(),
                    "{stores:?} below {below}"
                );
            }
            assert_eq!(bulk.settle().map_err(|(_, m)| m), want, "{stores:?}");
            if want.is_ok() {
                assert_eq!(bulk.sellers(), indexed.sellers());
                assert_eq!(bulk.credentials(), indexed.credentials());
                assert_eq!(bulk.first_conflict_before(u32::MAX), None);
            }
        }
    }

    #[test]
    fn seller_keys_inline_or_not_are_found_by_their_parts() {
        assert_eq!(
            std::mem::size_of::<SellerKey>(),
            std::mem::size_of::<String>()
        );
        let mut c = Claims::new(crate::keys::Keys::derive(&[3; 32]).index_hasher());
        let long = "s".repeat(INLINE);
        let cases = [
            ("p", "s"),
            ("", "s"),
            ("pp", ""),
            ("p", &long[..INLINE - 1]),
            ("p", &long),
            ("é", "ü"),
        ];
        for (slot, (p, s)) in cases.iter().enumerate() {
            assert!(c.claim_seller(slot as u32, p, s));
        }
        for (slot, (p, s)) in cases.iter().enumerate() {
            assert_eq!(c.seller_owner(p, s), Some(slot as u32), "{p:?} {s:?}");
        }
        // The split is part of the key.
        assert_eq!(c.seller_owner("ps", ""), None);
        assert_eq!(c.seller_owner("", "ps"), None);
        let listed: Vec<(&str, &str)> = c.sellers().into_iter().map(|(p, s, _)| (p, s)).collect();
        let mut want: Vec<(&str, &str)> = cases.to_vec();
        want.sort_unstable();
        assert_eq!(listed, want);
    }

    #[test]
    fn sync_swaps_and_never_releases_anothers_claim() {
        let mut c = Claims::new(crate::keys::Keys::derive(&[1; 32]).index_hasher());
        let a = Held {
            sellers: vec!["s1".into()],
            credential: Some(F1),
        };
        c.sync(1, "p", &Held::default(), &a);
        assert_eq!(c.seller_owner("p", "s1"), Some(1));
        assert_eq!(c.seller_owner("q", "s1"), None);
        let b = Held {
            sellers: vec!["s2".into()],
            credential: Some(F1),
        };
        c.sync(1, "p", &a, &b);
        assert_eq!(c.seller_owner("p", "s1"), None);
        assert_eq!(c.seller_owner("p", "s2"), Some(1));
        assert_eq!(c.credential_owner(&F1), Some(1));
        // slot 2 releasing s2 it does not hold changes nothing
        c.sync(2, "p", &b, &Held::default());
        assert_eq!(c.seller_owner("p", "s2"), Some(1));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn foreign_claims_count_the_stores_they_name() {
        let mut f = Foreign::new(crate::keys::Keys::derive(&[1; 32]).index_hasher());
        f.add_seller(seller_key("p", "s1"), "x");
        f.add_seller(seller_key("p", "s1"), "x");
        f.add_credential(F1, "x");
        assert_eq!(f.seller_owner("p", "s1"), Some("x"));
        assert_eq!(f.credential_owner(&F1), Some("x"));
        assert!(f.names("x"));
        // only an exact match is forgotten
        f.remove_seller(&seller_key("p", "s1"), "y");
        assert_eq!(f.len(), 2);
        f.remove_seller(&seller_key("p", "s1"), "x");
        assert!(f.names("x"));
        f.remove_credential(&F1, "x");
        assert!(!f.names("x"));
        assert_eq!(f.len(), 0);
    }
}
