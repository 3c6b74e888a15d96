//! Keyed values derived from the configuration's secret: store refs, state
//! nonces, PKCE verifiers, request ids, event ids, credential fingerprints,
//! the secret and configuration fingerprints and the per-store re-check
//! offset. One HMAC-SHA256 key per purpose, each derived
//! from the engine secret with its own label, so no value of one purpose can
//! stand for another. Nothing here is random: the same secret gives the same
//! values. Constant-time comparison lives here too.
//!
//! Ids (spec §9). Every id names its store by the store's `ref` (22
//! base64url characters of an HMAC of the `store_id`) and is bound by a MAC
//! to the store, its attempt or request serial, and the engine time it
//! began, so that an id handed out in a lost tail (after the last persisted
//! state) can never be accepted for, or equal, anything another engine
//! restored from the same state starts at another time, and `route` can
//! read the store from the id alone:
//!
//! - state nonce `{ref}.{attempt}.{serial}.{at}.{mac}`;
//! - request id `{ref}.{serial}.{at}.{purpose}.{mac}`;
//! - event id `{ref}.{seq}.{mac}` with the MAC over the whole change
//!   (store, `seq`, from, to, attempt, time) and the engine's event serial,
//!   so two events share an id only when they report the same change (a
//!   store removed and registered again at the same instant, or a change
//!   re-done after a restore, gets a new one).
//!
//! Version-1 nonces (`{serial}_{mac}`, MAC over the serial only) are still
//! checked for the stores whose restored records hold them.
//!
//! What does not live here: platform request signing (each platform module
//! signs with its own app secret through [`hmac_sha256`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `parts` (concatenated) under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Lower-case hex HMAC-SHA256.
pub fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    hex::encode(hmac_sha256(key, parts))
}

/// Constant-time equality of two byte strings (length may leak, content not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The per-purpose keys of one engine, each held as an HMAC state that has
/// already absorbed its key (cloning it skips the two key-block compressions).
#[derive(Clone)]
pub struct Keys {
    state: HmacSha256,
    pkce: HmacSha256,
    credential: HmacSha256,
    config: HmacSha256,
    jitter: HmacSha256,
    store_ref: HmacSha256,
    request: HmacSha256,
    event: HmacSha256,
    secret_fp: String,
    /// See [`RefMemo`]: a cache, never a secret (refs are in every id).
    ref_memo: std::cell::Cell<RefMemo>,
}

fn mac_of(keyed: &HmacSha256, parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed.clone();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Appends the decimal form of `v` (as `{v}` formats it).
fn push_dec(s: &mut String, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    s.push_str(std::str::from_utf8(&buf[i..]).expect("ASCII digits"));
}

/// Appends the decimal form of `v` (as `{v}` formats it, sign included).
fn push_signed(s: &mut String, v: i64) {
    if v < 0 {
        s.push('-');
    }
    push_dec(s, v.unsigned_abs());
}

/// `{store}.{a}.{b}.{at}`: the head of nonces, PKCE verifiers and request
/// ids, in one buffer with room for the MAC that follows.
fn head(store: &Ref, a: u64, b: u64, at: i64) -> String {
    let mut s = String::with_capacity(ID_MAX_LEN);
    URL_SAFE_NO_PAD.encode_string(store.0, &mut s);
    s.push('.');
    push_dec(&mut s, a);
    s.push('.');
    push_dec(&mut s, b);
    s.push('.');
    push_signed(&mut s, at);
    s
}

/// The last `store_ref` computed: hosts send several inputs for one store
/// in a row and one input asks for its store's ref several times (event
/// id, nonce, verifier, request id), each an HMAC.
#[derive(Clone, Copy)]
struct RefMemo {
    /// Length of the id in `id`, or `usize::MAX` when empty.
    len: usize,
    id: [u8; REF_MEMO_MAX],
    value: Ref,
}

/// Store ids up to this many bytes are remembered (ids are at most 64
/// characters; most are ASCII).
const REF_MEMO_MAX: usize = 64;

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

/// Hash-map state keyed from the engine secret: deterministic (no process
/// randomness) yet unguessable, so crafted store ids cannot collide on purpose.
/// SipHash-1-3, as std's own `HashMap` (whose keys are random, not ours).
#[derive(Clone, Copy, Debug)]
pub struct IndexHasher {
    k0: u64,
    k1: u64,
}

impl std::hash::BuildHasher for IndexHasher {
    type Hasher = siphasher::sip::SipHasher13;
    fn build_hasher(&self) -> Self::Hasher {
        siphasher::sip::SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

/// Length of the MAC part of a version-1 state nonce, in hex digits (128 bits).
const NONCE_MAC_HEX: usize = 32;

/// The longest id the engine hands out or reads (spec §9).
pub const ID_MAX_LEN: usize = 160;

/// A store's `ref` (spec §9): 128 bits, written as 22 base64url characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ref(pub [u8; 16]);

impl Ref {
    /// Parses the 22-character form.
    pub fn parse(text: &str) -> Option<Ref> {
        if text.len() != 22 {
            return None;
        }
        let mut bytes = [0u8; 18];
        let n = URL_SAFE_NO_PAD.decode_slice(text, &mut bytes).ok()?;
        let mut r = [0u8; 16];
        r.copy_from_slice(bytes.get(..16).filter(|_| n == 16)?);
        // Only the canonical encoding (the last character's unused bits 0).
        (b64_16(&r) == *text.as_bytes()).then_some(Ref(r))
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl std::fmt::Debug for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ref({self})")
    }
}

/// The 22 base64url characters of 16 bytes, on the stack.
fn b64_16(bytes: &[u8; 16]) -> [u8; 22] {
    let mut out = [0u8; 22];
    let n = URL_SAFE_NO_PAD
        .encode_slice(bytes, &mut out)
        .expect("16 bytes are 22 characters");
    debug_assert_eq!(n, 22);
    out
}

/// A nonce whose MAC checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresentedNonce {
    /// A version-1 nonce: its serial.
    V1(u64),
    /// A version-2 nonce.
    V2 {
        /// The store it names.
        store: Ref,
        /// The attempt it was issued for.
        attempt: u32,
        /// The engine's nonce serial.
        serial: u64,
        /// When it was issued (engine ms).
        at: i64,
        /// Its index key.
        key: [u8; 16],
    },
}

/// A canonical decimal number (no sign, no leading zero, at most 20 digits).
fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

impl Keys {
    /// Derives every purpose key from the engine secret.
    pub fn derive(secret: &[u8]) -> Self {
        let k = |label: &str| {
            HmacSha256::new_from_slice(&hmac_sha256(secret, &[b"shopauth/v1/", label.as_bytes()]))
                .expect("any key length")
        };
        Keys {
            state: k("state-nonce"),
            pkce: k("pkce-verifier"),
            credential: k("credential-fingerprint"),
            config: k("config-fingerprint"),
            jitter: k("recheck-offset"),
            store_ref: k("store-ref"),
            request: k("request-id"),
            event: k("event-id"),
            secret_fp: hex::encode(
                &hmac_sha256(secret, &[b"shopauth/v1/secret-fingerprint"])[..16],
            ),
            ref_memo: std::cell::Cell::new(RefMemo {
                len: usize::MAX,
                id: [0; REF_MEMO_MAX],
                value: Ref([0; 16]),
            }),
        }
    }

    /// A fingerprint of the engine secret (what a snapshot header carries to
    /// tell whether it was taken under the same secret).
    pub fn secret_fingerprint(&self) -> &str {
        &self.secret_fp
    }

    /// The store's `ref`: 128 bits of HMAC of its `store_id`.
    pub fn store_ref(&self, store_id: &str) -> Ref {
        let id = store_id.as_bytes();
        let memo = self.ref_memo.get();
        if memo.len == id.len() && memo.id[..id.len()] == *id {
            return memo.value;
        }
        let mut r = [0u8; 16];
        r.copy_from_slice(&mac_of(&self.store_ref, &[id])[..16]);
        if id.len() <= REF_MEMO_MAX {
            let mut m = RefMemo {
                len: id.len(),
                id: [0; REF_MEMO_MAX],
                value: Ref(r),
            };
            m.id[..id.len()].copy_from_slice(id);
            self.ref_memo.set(m);
        }
        Ref(r)
    }

    /// The state nonce of a store's attempt (v2): issued at `at` (engine ms)
    /// with the engine's nonce serial `serial`.
    pub fn nonce_v2(&self, store: &Ref, attempt: u32, serial: u64, at: i64) -> String {
        let mut s = head(store, attempt.into(), serial, at);
        let mac = self.nonce_mac_v2(&s);
        s.push('.');
        URL_SAFE_NO_PAD.encode_string(mac, &mut s);
        s
    }

    /// The MAC (and index key) of a v2 nonce's head `{ref}.{attempt}.{serial}.{at}`.
    fn nonce_mac_v2(&self, head: &str) -> [u8; 16] {
        let mut k = [0u8; 16];
        k.copy_from_slice(&mac_of(&self.state, &[b"n", head.as_bytes()])[..16]);
        k
    }

    /// The index key of a v2 nonce: its MAC.
    pub fn nonce_key(&self, store: &Ref, attempt: u32, serial: u64, at: i64) -> [u8; 16] {
        self.nonce_mac_v2(&head(store, attempt.into(), serial, at))
    }

    /// Reads a presented nonce of either version and checks its MAC in
    /// constant time. The caller still checks that it is live for the store.
    pub fn check_nonce_any(&self, presented: &str) -> Option<PresentedNonce> {
        if presented.len() > ID_MAX_LEN {
            return None;
        }
        if !presented.contains('.') {
            return self.check_nonce(presented).map(PresentedNonce::V1);
        }
        let (head, mac) = presented.rsplit_once('.')?;
        let mut parts = head.split('.');
        let store = Ref::parse(parts.next()?)?;
        let attempt: u32 = decimal(parts.next()?)?;
        let serial: u64 = decimal(parts.next()?)?;
        let at: i64 = decimal(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        let key = self.nonce_mac_v2(head);
        ct_eq(&b64_16(&key), mac.as_bytes()).then_some(PresentedNonce::V2 {
            store,
            attempt,
            serial,
            at,
            key,
        })
    }

    /// The request id of a store's request `serial`, sent at `at` for `purpose`.
    pub fn request_id(
        &self,
        store: &Ref,
        serial: u64,
        at: i64,
        purpose: char,
    ) -> (String, [u8; 16]) {
        let mut s = String::with_capacity(ID_MAX_LEN);
        URL_SAFE_NO_PAD.encode_string(store.0, &mut s);
        s.push('.');
        push_dec(&mut s, serial);
        s.push('.');
        push_signed(&mut s, at);
        s.push('.');
        s.push(purpose);
        let mac = mac_of(&self.request, &[s.as_bytes()]);
        let mut key = [0u8; 16];
        key.copy_from_slice(&mac[..16]);
        s.push('.');
        URL_SAFE_NO_PAD.encode_string(key, &mut s);
        (s, key)
    }

    /// Reads a presented request id and checks its MAC: the store's ref and
    /// the id's index key.
    pub fn check_request_id(&self, presented: &str) -> Option<(Ref, [u8; 16])> {
        if presented.len() > ID_MAX_LEN {
            return None;
        }
        let (head, mac) = presented.rsplit_once('.')?;
        let mut parts = head.split('.');
        let store = Ref::parse(parts.next()?)?;
        let _serial: u64 = decimal(parts.next()?)?;
        let _at: i64 = decimal(parts.next()?)?;
        let purpose = parts.next()?;
        if purpose.len() != 1 || parts.next().is_some() {
            return None;
        }
        let expected = mac_of(&self.request, &[head.as_bytes()]);
        let mut key = [0u8; 16];
        key.copy_from_slice(&expected[..16]);
        ct_eq(&b64_16(&key), mac.as_bytes()).then_some((store, key))
    }

    /// The event id of one change of a store.
    pub fn event_id(&self, store: &Ref, seq: u64, change: &[&[u8]]) -> String {
        let mut mac = self.event.clone();
        mac.update(&store.0);
        mac.update(&seq.to_be_bytes());
        for part in change {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let digest = mac.finalize().into_bytes();
        // 22 + 1 + up to 20 + 1 + 22 bytes.
        let mut s = String::with_capacity(66);
        URL_SAFE_NO_PAD.encode_string(store.0, &mut s);
        s.push('.');
        push_dec(&mut s, seq);
        s.push('.');
        URL_SAFE_NO_PAD.encode_string(&digest[..16], &mut s);
        s
    }

    /// The PKCE `code_verifier` of a v2 nonce (43 characters, RFC 7636).
    pub fn pkce_verifier_v2(&self, store: &Ref, attempt: u32, serial: u64, at: i64) -> String {
        let head = head(store, attempt.into(), serial, at);
        URL_SAFE_NO_PAD.encode(mac_of(&self.pkce, &[b"n", head.as_bytes()]))
    }

    /// The hasher of the engine's hash indexes.
    pub fn index_hasher(&self) -> IndexHasher {
        let h = mac_of(&self.jitter, &[b"index-hasher"]);
        IndexHasher {
            k0: u64::from_be_bytes(h[..8].try_into().expect("8 bytes")),
            k1: u64::from_be_bytes(h[8..16].try_into().expect("8 bytes")),
        }
    }

    /// The version-1 state nonce of serial `n`: `"{n}_{mac}"` (read for
    /// restored version-1 records; new nonces are [`Keys::nonce_v2`]).
    pub fn nonce(&self, serial: u64) -> String {
        let mut s = serial.to_string();
        s.push('_');
        s.push_str(&self.nonce_mac(serial));
        s
    }

    fn nonce_mac(&self, serial: u64) -> String {
        let mut h =
            hex::encode(&mac_of(&self.state, &[&serial.to_be_bytes()])[..NONCE_MAC_HEX / 2]);
        h.truncate(NONCE_MAC_HEX);
        h
    }

    /// Parses a presented nonce and checks its MAC in constant time. Returns
    /// the serial when the MAC is right (the caller still checks the serial
    /// is live).
    pub fn check_nonce(&self, presented: &str) -> Option<u64> {
        let (serial, mac) = presented.split_once('_')?;
        if serial.is_empty() || serial.len() > 20 || !serial.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let serial: u64 = serial.parse().ok()?;
        let expected = self.nonce_mac(serial);
        ct_eq(expected.as_bytes(), mac.as_bytes()).then_some(serial)
    }

    /// The PKCE `code_verifier` of version-1 nonce serial `n` (43 characters, RFC 7636).
    pub fn pkce_verifier(&self, serial: u64) -> String {
        URL_SAFE_NO_PAD.encode(mac_of(&self.pkce, &[&serial.to_be_bytes()]))
    }

    /// The PKCE S256 `code_challenge` of a verifier.
    pub fn pkce_challenge(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }

    /// The fingerprint under which a credential set is claimed.
    /// `parts` are length-prefixed so that no two different sets collide.
    pub fn credential_fingerprint(&self, kind: &str, parts: &[&str]) -> crate::claims::Fingerprint {
        let mut mac = self.credential.clone();
        mac.update(kind.as_bytes());
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p.as_bytes());
        }
        let mut fp = [0u8; 16];
        fp.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        crate::claims::Fingerprint(fp)
    }

    /// The fingerprint of a canonical configuration text.
    pub fn config_fingerprint(&self, canonical: &[u8]) -> String {
        hex::encode(mac_of(&self.config, &[canonical]))
    }

    /// A deterministic offset in `[0, range_ms)` for a store.
    pub fn store_offset_ms(&self, store_id: &str, range_ms: i64) -> i64 {
        if range_ms <= 0 {
            return 0;
        }
        let h = mac_of(&self.jitter, &[store_id.as_bytes()]);
        let v = u64::from_be_bytes(h[..8].try_into().expect("8 bytes"));
        (v % range_ms as u64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(&[7u8; 32])
    }

    #[test]
    fn nonce_round_trips_and_rejects_forgeries() {
        let k = keys();
        let n = k.nonce(42);
        assert_eq!(k.check_nonce(&n), Some(42));
        let forged = format!("43_{}", &n[3..]);
        assert_eq!(k.check_nonce(&forged), None);
        assert_eq!(k.check_nonce("42_"), None);
        assert_eq!(k.check_nonce("garbage"), None);
        assert_ne!(k.nonce(1), k.nonce(2));
        // another secret, another nonce
        assert_ne!(Keys::derive(&[8u8; 32]).nonce(42), n);
    }

    #[test]
    fn pkce_matches_rfc7636_shape() {
        let v = keys().pkce_verifier(1);
        assert_eq!(v.len(), 43);
        // RFC 7636 appendix B vector for the challenge computation.
        assert_eq!(
            Keys::pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn fingerprints_separate_kinds_and_boundaries() {
        let k = keys();
        assert_ne!(
            k.credential_fingerprint("pair", &["ab", "c"]),
            k.credential_fingerprint("pair", &["a", "bc"])
        );
        assert_ne!(
            k.credential_fingerprint("token", &["x"]),
            k.credential_fingerprint("pair", &["x"])
        );
        assert_eq!(
            k.credential_fingerprint("token", &["x"]),
            k.credential_fingerprint("token", &["x"])
        );
    }

    #[test]
    fn ids_are_formatted_as_before() {
        let k = keys();
        let r = k.store_ref("s-1");
        for (a, b, at) in [
            (0u32, 0u64, 0i64),
            (1, 7, 1_700_000_000_000),
            (u32::MAX, u64::MAX, -5),
        ] {
            let mut d = String::new();
            push_dec(&mut d, b);
            assert_eq!(d, b.to_string());
            assert_eq!(head(&r, a.into(), b, at), format!("{r}.{a}.{b}.{at}"));
            let n = k.nonce_v2(&r, a, b, at);
            assert!(n.starts_with(&format!("{r}.{a}.{b}.{at}.")), "{n}");
            let (id, _) = k.request_id(&r, b, at, 'c');
            assert!(id.starts_with(&format!("{r}.{b}.{at}.c.")), "{id}");
            let e = k.event_id(&r, b, &[b"x"]);
            assert!(
                e.starts_with(&format!("{r}.{b}.")) && e.len() == format!("{r}.{b}.").len() + 22
            );
        }
    }

    #[test]
    fn refs_parse_only_in_their_canonical_form() {
        for id in ["a", "b", "store-1", "店"] {
            let r = keys().store_ref(id);
            let text = r.to_string();
            assert_eq!(text.len(), 22);
            assert_eq!(Ref::parse(&text), Some(r));
            assert_eq!(b64_16(&r.0), *text.as_bytes());
            // The last character carries 2 unused bits: set them.
            let last = text.as_bytes()[21];
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let i = alphabet.iter().position(|&c| c == last).unwrap();
            let mut other = text.clone().into_bytes();
            other[21] = alphabet[i | 1];
            if i & 1 == 0 {
                assert_eq!(Ref::parse(std::str::from_utf8(&other).unwrap()), None);
            }
        }
        assert_eq!(Ref::parse("short"), None);
        assert_eq!(Ref::parse("!!!!!!!!!!!!!!!!!!!!!!"), None);
        assert_eq!(Ref::parse("AAAAAAAAAAAAAAAAAAAAAAAA"), None);
    }

    #[test]
    fn the_ref_memo_answers_what_the_mac_does() {
        let k = keys();
        let long = "x".repeat(REF_MEMO_MAX + 1);
        let ids = ["a", "b", "a", "", "店", "a", &long, &long, "ab", "a"];
        let fresh: Vec<Ref> = ids.iter().map(|id| keys().store_ref(id)).collect();
        let memo: Vec<Ref> = ids.iter().map(|id| k.store_ref(id)).collect();
        assert_eq!(fresh, memo);
        assert_ne!(memo[0], memo[1]);
    }

    #[test]
    fn offsets_are_in_range_and_spread() {
        let k = keys();
        let a = k.store_offset_ms("a", 3_600_000);
        let b = k.store_offset_ms("b", 3_600_000);
        assert!((0..3_600_000).contains(&a) && (0..3_600_000).contains(&b));
        assert_ne!(a, b);
    }
}
