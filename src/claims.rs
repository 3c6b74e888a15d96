//! The claim index: which store holds each seller (per platform) and each
//! credential fingerprint. The stores' own records are the truth; this
//! index is rebuilt from them on restore and kept in step by [`Claims::sync`],
//! which swaps a store's old claims for its new ones in one step.
//!
//! What does not live here: when claims are taken or released (`engine`).

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

fn seller_key(platform: &str, seller: &str) -> String {
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
}
