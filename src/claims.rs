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

impl Fingerprint {
    /// Reads 32 hex digits (either case, as `hex` reads them).
    fn from_hex(text: &[u8]) -> Option<Fingerprint> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        }
        let digits: &[u8; 32] = text.try_into().ok()?;
        let mut bytes = [0u8; 16];
        for (b, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *b = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(Fingerprint(bytes))
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

/// The index: hash maps under the engine's keyed hasher (crafted seller ids
/// cannot collide on purpose); iteration sorts on demand.
#[derive(Debug, Clone)]
pub struct Claims {
    sellers: HashMap<SellerKey, u32, IndexHasher>,
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

/// A seller claim's key: the platform name and the seller key in one
/// allocation, with the length of the platform name. Hashed and compared
/// as the pair, so a lookup needs no key of its own: `(platform, seller)`
/// borrowed is found through [`SellerRef`].
#[derive(Debug, Clone)]
struct SellerKey {
    text: Box<str>,
    split: u32,
}

impl SellerKey {
    fn new(platform: &str, seller: &str) -> SellerKey {
        let mut text = String::with_capacity(platform.len() + seller.len());
        text.push_str(platform);
        text.push_str(seller);
        SellerKey {
            text: text.into_boxed_str(),
            split: platform.len() as u32,
        }
    }
}

/// A seller claim's key as (platform, seller), owned or borrowed.
trait SellerRef {
    fn parts(&self) -> (&str, &str);
}

impl SellerRef for SellerKey {
    fn parts(&self) -> (&str, &str) {
        self.text.split_at(self.split as usize)
    }
}

impl SellerRef for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> std::borrow::Borrow<dyn SellerRef + 'a> for SellerKey {
    fn borrow(&self) -> &(dyn SellerRef + 'a) {
        self
    }
}

impl std::hash::Hash for dyn SellerRef + '_ {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.parts().hash(h);
    }
}

impl PartialEq for dyn SellerRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn SellerRef + '_ {}

// The owned key hashes and compares exactly as its borrowed form (the
// contract of `Borrow`).
impl std::hash::Hash for SellerKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (self as &dyn SellerRef).hash(h);
    }
}

impl PartialEq for SellerKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for SellerKey {}

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
        self.sellers
            .get(&(platform, seller) as &dyn SellerRef)
            .copied()
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
                let k = &(platform, s.as_str()) as &dyn SellerRef;
                if self.sellers.get(k) == Some(&slot) {
                    self.sellers.remove(k);
                }
            }
        }
        if let Some(c) = &before.credential {
            if after.credential.as_ref() != Some(c) && self.credentials.get(c) == Some(&slot) {
                self.credentials.remove(c);
            }
        }
        for s in &after.sellers {
            self.sellers.insert(SellerKey::new(platform, s), slot);
        }
        if let Some(c) = after.credential {
            self.credentials.insert(c, slot);
        }
    }

    /// Claims a seller for `slot` in an index being rebuilt (restore), where
    /// nothing is released; false when another store holds it already.
    pub fn claim_seller(&mut self, slot: u32, platform: &str, seller: &str) -> bool {
        self.sellers
            .insert(SellerKey::new(platform, seller), slot)
            .is_none_or(|o| o == slot)
    }

    /// Claims a credential for `slot` in an index being rebuilt (restore);
    /// false when another store holds it already.
    pub fn claim_credential(&mut self, slot: u32, fingerprint: Fingerprint) -> bool {
        self.credentials
            .insert(fingerprint, slot)
            .is_none_or(|o| o == slot)
    }

    /// Every seller claim as (platform, seller, slot), sorted.
    pub fn sellers(&self) -> Vec<(&str, &str, u32)> {
        let mut v: Vec<(&str, &str, u32)> = self
            .sellers
            .iter()
            .map(|(k, &slot)| {
                let (p, s) = k.parts();
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
