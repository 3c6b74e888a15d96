//! The claim index: which store holds each seller (per platform) and each
//! credential fingerprint. The stores' own records are the truth; this
//! index is rebuilt from them on restore and kept in step by [`Claims::sync`],
//! which swaps a store's old claims for its new ones in one step.
//!
//! What does not live here: when claims are taken or released (`engine`).

use std::collections::BTreeMap;

/// The index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Claims {
    sellers: BTreeMap<String, u32>,
    credentials: BTreeMap<String, u32>,
}

/// A store's claims: seller keys (normalized) and credential fingerprint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Held {
    /// Seller ids.
    pub sellers: Vec<String>,
    /// Fingerprint.
    pub credential: Option<String>,
}

fn seller_key(platform: &str, seller: &str) -> String {
    let mut k = String::with_capacity(platform.len() + seller.len() + 1);
    k.push_str(platform);
    k.push('\u{0}');
    k.push_str(seller);
    k
}

impl Claims {
    /// The store holding a seller.
    pub fn seller_owner(&self, platform: &str, seller: &str) -> Option<u32> {
        self.sellers.get(&seller_key(platform, seller)).copied()
    }

    /// The store holding a credential.
    pub fn credential_owner(&self, fingerprint: &str) -> Option<u32> {
        self.credentials.get(fingerprint).copied()
    }

    /// Replaces `before` with `after` for `slot` (releasing only what `slot` holds).
    pub fn sync(&mut self, slot: u32, platform: &str, before: &Held, after: &Held) {
        for s in &before.sellers {
            if !after.sellers.contains(s) {
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
        if let Some(c) = &after.credential {
            self.credentials.insert(c.clone(), slot);
        }
    }

    /// Every seller claim as (platform, seller, slot), sorted.
    pub fn sellers(&self) -> impl Iterator<Item = (&str, &str, u32)> {
        self.sellers.iter().map(|(k, &slot)| {
            let (p, s) = k.split_once('\u{0}').expect("seller keys hold a separator");
            (p, s, slot)
        })
    }

    /// Every credential claim as (fingerprint, slot), sorted.
    pub fn credentials(&self) -> impl Iterator<Item = (&str, u32)> {
        self.credentials.iter().map(|(k, &slot)| (k.as_str(), slot))
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

    #[test]
    fn sync_swaps_and_never_releases_anothers_claim() {
        let mut c = Claims::default();
        let a = Held {
            sellers: vec!["s1".into()],
            credential: Some("f1".into()),
        };
        c.sync(1, "p", &Held::default(), &a);
        assert_eq!(c.seller_owner("p", "s1"), Some(1));
        assert_eq!(c.seller_owner("q", "s1"), None);
        let b = Held {
            sellers: vec!["s2".into()],
            credential: Some("f1".into()),
        };
        c.sync(1, "p", &a, &b);
        assert_eq!(c.seller_owner("p", "s1"), None);
        assert_eq!(c.seller_owner("p", "s2"), Some(1));
        assert_eq!(c.credential_owner("f1"), Some(1));
        // slot 2 releasing s2 it does not hold changes nothing
        c.sync(2, "p", &b, &Held::default());
        assert_eq!(c.seller_owner("p", "s2"), Some(1));
        assert_eq!(c.len(), 2);
    }
}
