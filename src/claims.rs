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

use crate::keys::IndexHasher;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeSet, HashMap};
use std::fmt;

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

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(&text, &mut bytes)
            .map_err(|_| serde::de::Error::custom("a fingerprint is 32 hex digits"))?;
        Ok(Fingerprint(bytes))
    }
}

/// The index: hash maps under the engine's keyed hasher (crafted seller ids
/// cannot collide on purpose); iteration sorts on demand.
#[derive(Debug, Clone)]
pub struct Claims {
    sellers: HashMap<String, u32, IndexHasher>,
    credentials: HashMap<Fingerprint, u32, IndexHasher>,
}

/// A store's claims: seller keys (normalized) and credential fingerprint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Held {
    /// Seller ids.
    pub sellers: Vec<String>,
    /// Fingerprint.
    pub credential: Option<Fingerprint>,
}

pub(crate) fn seller_key(platform: &str, seller: &str) -> String {
    let mut k = String::with_capacity(platform.len() + seller.len() + 1);
    k.push_str(platform);
    k.push('\u{0}');
    k.push_str(seller);
    k
}

impl Claims {
    /// An empty index.
    pub fn new(hasher: IndexHasher) -> Claims {
        Claims {
            sellers: HashMap::with_hasher(hasher),
            credentials: HashMap::with_hasher(hasher),
        }
    }

    /// Room for `n` more stores' claims.
    pub fn reserve(&mut self, n: usize) {
        self.sellers.reserve(n);
        self.credentials.reserve(n);
    }

    /// The store holding a seller.
    pub fn seller_owner(&self, platform: &str, seller: &str) -> Option<u32> {
        self.sellers.get(&seller_key(platform, seller)).copied()
    }

    /// The store holding a credential.
    pub fn credential_owner(&self, fingerprint: &Fingerprint) -> Option<u32> {
        self.credentials.get(fingerprint).copied()
    }

    /// Replaces `before` with `after` for `slot` (releasing only what `slot` holds).
    pub fn sync(&mut self, slot: u32, platform: &str, before: &Held, after: &Held) {
        // A set, not `Vec::contains`: a store may hold a thousand sellers.
        let kept: BTreeSet<&str> = after.sellers.iter().map(String::as_str).collect();
        for s in &before.sellers {
            if !kept.contains(s.as_str()) {
                let k = seller_key(platform, s);
                if self.sellers.get(&k) == Some(&slot) {
                    self.sellers.remove(&k);
                }
            }
        }
        if let Some(c) = &before.credential {
            if after.credential.as_ref() != Some(c) && self.credentials.get(c) == Some(&slot) {
                self.credentials.remove(c);
            }
        }
        for s in &after.sellers {
            self.sellers.insert(seller_key(platform, s), slot);
        }
        if let Some(c) = after.credential {
            self.credentials.insert(c, slot);
        }
    }

    /// Every seller claim as (platform, seller, slot), sorted.
    pub fn sellers(&self) -> Vec<(&str, &str, u32)> {
        let mut v: Vec<(&str, &str, u32)> = self
            .sellers
            .iter()
            .map(|(k, &slot)| {
                let (p, s) = k.split_once('\u{0}').expect("seller keys hold a separator");
                (p, s, slot)
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Every credential claim as (fingerprint, slot), sorted.
    pub fn credentials(&self) -> Vec<(Fingerprint, u32)> {
        let mut v: Vec<(Fingerprint, u32)> = self
            .credentials
            .iter()
            .map(|(k, &slot)| (*k, slot))
            .collect();
        v.sort_unstable();
        v
    }

    /// Number of claims.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sellers.len() + self.credentials.len()
    }
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
