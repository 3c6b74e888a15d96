//! The invariants a restored (or loaded) state must satisfy before it
//! replaces anything (spec §3 "Snapshot and restore"). A snapshot comes from
//! outside — a file, a database row, a host's own assembly — so nothing in
//! it is trusted: each check names the invariant it enforces, never a value
//! found, and the first broken one refuses the whole snapshot.
//!
//! Checked per store (also for every record `load` adds, spec §11): its
//! platform configured; a state from the closed list (`removed` is not
//! one); ids and fields within the limits of §4; times within 1970–9999;
//! backoffs within their caps; attempt and sequence numbers that can still
//! grow; the request or retry a `pending` store waits on; live nonces only
//! where an attempt waits for its seller; a credential fingerprint that
//! matches the credentials it claims for; notification bodies that are
//! JSON objects; its own request serials distinct.
//! Across stores (restore): unique version-1 live nonces (they are looked up
//! by serial alone) and rate-queue keys; counters not behind the ids in the
//! records. (Unique store ids and timer keys, and no seller or credential
//! claimed by two stores, are checked while the new engine's indexes are
//! built — `Engine::place` — before anything is replaced, so a refusal
//! leaves the engine as it was all the same.)
//!
//! Version-2 nonces and request ids carry their store's ref and are indexed
//! by a MAC over it, so two stores may hold the same serials: a fleet engine
//! (spec §11) holds records from several engines whose counters were
//! independent, and its own snapshot must restore.
//!
//! What does not live here: reading the snapshot's format (`snapshot`).

use crate::engine::{Engine, MAX_TIME_MS, NOTIFY_MAX_MS, POLL_MAX_MS, RETRY_MAX_MS, VERIFY_TRIES};
use crate::error::RestoreError;
use crate::message::{AuthType, State};
use crate::platform::KeyCredential;
use crate::snapshot::Parts;
use crate::store::{NonceId, Request, Store, TimerKind};
use crate::validate::{AUTH_INFO_MAX, ID_MAX, NOTIFY_MAX, REDIRECT_URL_MAX};
use std::collections::HashSet;

/// At most this many distinct sellers per store (spec §5).
pub const SELLERS_MAX: usize = 1000;

type Check = Result<(), &'static str>;

fn rule(ok: bool, invariant: &'static str) -> Check {
    if ok { Ok(()) } else { Err(invariant) }
}

fn time_ok(t: i64) -> bool {
    (0..=MAX_TIME_MS).contains(&t)
}

/// 1–`max` characters, no control character, no white space at either end.
pub(crate) fn id_ok(s: &str, max: usize) -> bool {
    if printable_ascii(s) {
        // One byte per character; the only white space left is the space.
        return text_ok_ascii(s, max) && !s.starts_with(' ') && !s.ends_with(' ');
    }
    !s.is_empty()
        && s.chars().count() <= max
        && !s.chars().any(is_control)
        && !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace)
}

use crate::validate::is_control;

fn text_ok(s: &str, max: usize) -> bool {
    if printable_ascii(s) {
        return text_ok_ascii(s, max);
    }
    !s.is_empty() && s.chars().count() <= max && !s.chars().any(is_control)
}

/// Whether `s` is ASCII without a control character (the common case, read
/// a byte at a time instead of a character at a time).
fn printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// [`text_ok`] of printable ASCII.
fn text_ok_ascii(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max
}

/// Checks everything a restore relies on; the error names the invariant.
pub(crate) fn check(engine: &Engine, parts: &Parts) -> Result<(), RestoreError> {
    check_all(engine, parts).map_err(RestoreError::Inconsistent)
}

fn check_all(engine: &Engine, parts: &Parts) -> Result<(), String> {
    rule(time_ok(parts.now), "the clock is within 1970-9999")?;
    for window in parts.gates.values() {
        rule(
            window.iter().all(|&t| time_ok(t)) && window.len() <= 100_000,
            "rate windows hold times within 1970-9999",
        )?;
    }
    let c = parts.counters;
    let behind = "counters are not behind the ids in the records";
    let mut nonces: HashSet<u64> = HashSet::new();
    let mut queued: HashSet<(&str, u8, u64)> = HashSet::new();
    for store in &parts.stores {
        check_record(engine, store)?;
        if let Some(id) = store.att().nonce.or(store.att().pkce) {
            rule(id.serial() <= c.nonce, behind)?;
        }
        if let Some(NonceId::V1(serial)) = store.att().nonce {
            rule(nonces.insert(serial), "live state nonces are unique")?;
        }
        if let Some(Request::Queued(q)) = store.request {
            rule(q.seq <= c.queue, behind)?;
            rule(
                queued.insert((store.platform.as_str(), q.priority, q.seq)),
                "rate-queue keys are unique",
            )?;
        }
        for s in request_serials(store) {
            rule(s <= c.request, behind)?;
        }
        for (_, _, seq) in store.timers.iter() {
            rule(seq <= c.timer, behind)?;
        }
    }
    Ok(())
}

/// The serials of the store's open requests and re-send marks (a re-send
/// mark of serial 0 stands for a request that never had one).
pub(crate) fn request_serials(store: &Store) -> impl Iterator<Item = u64> + '_ {
    let work = match store.request {
        Some(Request::InFlight(w)) => Some(w.serial),
        Some(Request::Resend(w)) if w.serial != 0 => Some(w.serial),
        _ => None,
    };
    let notify = store
        .notify
        .as_deref()
        .into_iter()
        .flat_map(|n| n.in_flight.into_iter().chain(n.resend));
    work.into_iter().chain(notify)
}

/// Checks one store record on its own (restore: every record; load: every
/// record it adds). The error names the invariant.
pub(crate) fn check_record(engine: &Engine, store: &Store) -> Result<(), String> {
    if engine.settings.profile(&store.platform).is_none() {
        return Err(format!(
            "every store's platform is configured (platform {} is not)",
            store.platform.chars().take(64).collect::<String>()
        ));
    }
    check_store(engine, store).map_err(str::to_owned)
}

fn check_store(engine: &Engine, s: &Store) -> Check {
    rule(s.state != State::Removed, "states are from the closed list")?;
    rule(
        id_ok(&s.client_id, ID_MAX) && id_ok(&s.store_id, ID_MAX),
        "client_id and store_id are within the limits of section 4",
    )?;
    if let Some(seller) = &s.seller_id {
        rule(
            id_ok(seller, ID_MAX),
            "seller_id is within the limits of section 4",
        )?;
    }
    let sellers = s.learned.len() + s.att().kept.len() + usize::from(s.seller_id.is_some());
    rule(
        sellers <= SELLERS_MAX
            && s.learned
                .iter()
                .chain(&s.att().kept)
                .all(|x| id_ok(x, ID_MAX)),
        "learned sellers are at most 1000, each within the limits of section 4",
    )?;
    rule(
        s.attempt < u32::MAX && s.seq < u64::MAX / 2,
        "attempt and seq numbers can grow",
    )?;
    rule(
        (s.state == State::Unauthorized) == (s.attempt == 0),
        "a store has had an attempt unless it is unauthorized",
    )?;
    rule(
        (0..=RETRY_MAX_MS).contains(&s.retry_ms) && (0..=POLL_MAX_MS).contains(&s.poll_ms),
        "backoffs are within their caps",
    )?;
    for (_, at, _) in s.timers.iter() {
        rule(time_ok(at), "times are within 1970-9999")?;
    }
    if let Some(t) = s.tokens.as_deref() {
        rule(
            time_ok(t.obtained_at)
                && t.access_expires_at.is_none_or(time_ok)
                && t.refresh_expires_at.is_none_or(time_ok),
            "times are within 1970-9999",
        )?;
        rule(!t.access.expose().is_empty(), "tokens are not empty")?;
    }
    let att = s.att();
    rule(
        att.tries <= VERIFY_TRIES,
        "verification tries are within their limit",
    )?;
    if let Some(u) = &att.redirect_url {
        rule(
            text_ok(u, REDIRECT_URL_MAX),
            "redirect_url is within the limits of section 4",
        )?;
    }
    for id in [att.nonce, att.pkce].into_iter().flatten() {
        if let NonceId::V2 { at, .. } = id {
            rule(time_ok(at), "times are within 1970-9999")?;
        }
    }
    if let Some(Request::InFlight(w) | Request::Resend(w)) = s.request {
        rule(time_ok(w.sent_at), "times are within 1970-9999")?;
    }

    // Credentials: within §4, and the claim is the one they give.
    if let Some(k) = s.key.as_deref() {
        let (token, pair);
        let (form, parts): (&str, &[&str]) = match k {
            KeyCredential::Token { token: t } => {
                token = [t.expose()];
                ("token", &token)
            }
            KeyCredential::Pair {
                api_key,
                api_secret,
            } => {
                pair = [api_key.expose(), api_secret.expose()];
                ("api_key_secret", &pair)
            }
        };
        rule(
            parts.iter().all(|p| text_ok(p, AUTH_INFO_MAX)),
            "auth_info values are within the limits of section 4",
        )?;
        rule(
            s.fingerprint == Some(engine.keys.credential_fingerprint(form, parts)),
            "every credential claim is the fingerprint of the store's credentials",
        )?;
    }
    // What each state waits on.
    let live_nonce = att.nonce.is_some();
    rule(
        !live_nonce || (s.state == State::Requested && s.auth_type == Some(AuthType::Url)),
        "live state nonces belong to requested URL attempts",
    )?;
    if s.state == State::Pending {
        rule(
            s.request.is_some() || s.timers.get(TimerKind::Action).is_some(),
            "a pending store has its request",
        )?;
        match s.auth_type {
            Some(AuthType::Url) => rule(att.code.is_some(), "a pending store has its request")?,
            Some(AuthType::Key) => rule(s.key.is_some(), "a pending store has its request")?,
            None => return Err("a pending store has its request"),
        }
    }
    if let Some(n) = s.notify.as_deref() {
        rule(
            text_ok(&n.url, NOTIFY_MAX)
                && n.secret
                    .as_ref()
                    .is_none_or(|x| text_ok(x.expose(), NOTIFY_MAX)),
            "notify_url and notify_secret are within the limits of section 4",
        )?;
        rule(
            (0..=NOTIFY_MAX_MS).contains(&n.backoff_ms) && time_ok(n.sent_at),
            "backoffs are within their caps",
        )?;
        rule(
            !(n.in_flight.is_some() && n.resend.is_some()),
            "a notification is in flight or to be re-sent, not both",
        )?;
        let mut serials = request_serials(s);
        if let (Some(a), Some(b)) = (serials.next(), serials.next()) {
            rule(a != b, "request serials are unique")?;
        }
        for notice in &n.outbox {
            rule(time_ok(notice.created_at), "times are within 1970-9999")?;
            rule(
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&notice.body)
                    .is_ok(),
                "notification bodies are JSON objects",
            )?;
        }
    }
    Ok(())
}

// In a file of their own: the tests of `tests/restore_invariants.rs` read
// every string literal of this file as the name of an invariant.
#[cfg(test)]
#[path = "invariants_tests.rs"]
mod tests;
