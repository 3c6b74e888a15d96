//! The engine's timer queue: every store timer ordered by (when, rank,
//! sequence number), so `handle_timeout` pops exactly the due work and
//! `poll_timeout` reads the first entry — no scan of the stores. At the same
//! instant deadlines and expiries go first ("a code that expires at T is no
//! longer good at T", and a store's expiry is not hidden behind a request
//! time-out due with it); then the sequence number, taken from an
//! engine-wide counter when a timer is set and kept in the store, fires
//! simultaneous timers in the order they were set, before and after a
//! restore alike.
//!
//! What does not live here: what a timer does when it fires (`engine`).

use crate::store::{TimerKind, Timers};
use std::collections::BTreeMap;

/// All pending timers.
#[derive(Debug, Default, Clone)]
pub struct TimerQueue {
    map: BTreeMap<(i64, u8, u64), (u32, TimerKind)>,
}

/// Deadlines and expiries before everything else due at the same instant.
fn rank(kind: TimerKind) -> u8 {
    match kind {
        TimerKind::Deadline | TimerKind::Expiry => 0,
        _ => 1,
    }
}

impl TimerQueue {
    /// Sets (or moves) a store's timer of `kind` to `at`.
    pub fn set(&mut self, timers: &mut Timers, slot: u32, kind: TimerKind, at: i64, seq: u64) {
        self.cancel(timers, kind);
        timers.set(kind, at, seq);
        self.map.insert((at, rank(kind), seq), (slot, kind));
    }

    /// Cancels a store's timer of `kind`, if set.
    pub fn cancel(&mut self, timers: &mut Timers, kind: TimerKind) {
        if let Some((at, seq)) = timers.take(kind) {
            self.map.remove(&(at, rank(kind), seq));
        }
    }

    /// Re-inserts a timer read from a snapshot; false if its key was taken.
    pub fn insert(&mut self, at: i64, seq: u64, slot: u32, kind: TimerKind) -> bool {
        self.map
            .insert((at, rank(kind), seq), (slot, kind))
            .is_none()
    }

    /// The earliest timer.
    pub fn next(&self) -> Option<i64> {
        self.map.first_key_value().map(|((at, _, _), _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`, and takes it
    /// out of its store's copy (`timers_of` finds the store's timers; a
    /// store that no longer exists has none), so the two never disagree.
    pub fn pop_due<'s>(
        &mut self,
        now: i64,
        timers_of: impl FnOnce(u32) -> Option<&'s mut Timers>,
    ) -> Option<(u32, TimerKind)> {
        let (&(at, _, _), _) = self.map.first_key_value()?;
        if at > now {
            return None;
        }
        let (_, (slot, kind)) = self.map.pop_first()?;
        if let Some(timers) = timers_of(slot) {
            timers.take(kind);
        }
        Some((slot, kind))
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's timers of the two stores, as `pop_due` finds them.
    fn of<'s>(a: &'s mut Timers, b: &'s mut Timers) -> impl FnOnce(u32) -> Option<&'s mut Timers> {
        move |slot| match slot {
            1 => Some(a),
            2 => Some(b),
            _ => None,
        }
    }

    #[test]
    fn pops_in_time_then_sequence_order() {
        let mut q = TimerQueue::default();
        let mut a = Timers::default();
        let mut b = Timers::default();
        q.set(&mut a, 1, TimerKind::Action, 100, 2);
        q.set(&mut b, 2, TimerKind::Deadline, 100, 1);
        q.set(&mut a, 1, TimerKind::Expiry, 50, 3);
        assert_eq!(q.next(), Some(50));
        assert_eq!(q.pop_due(49, of(&mut a, &mut b)), None);
        assert_eq!(
            a.get(TimerKind::Expiry),
            Some((50, 3)),
            "not popped, still set"
        );
        assert_eq!(
            q.pop_due(100, of(&mut a, &mut b)),
            Some((1, TimerKind::Expiry))
        );
        assert_eq!(
            a.get(TimerKind::Expiry),
            None,
            "the store's copy is taken too"
        );
        assert_eq!(a.get(TimerKind::Action), Some((100, 2)));
        assert_eq!(
            q.pop_due(100, of(&mut a, &mut b)),
            Some((2, TimerKind::Deadline))
        );
        assert_eq!(b.get(TimerKind::Deadline), None);
        assert_eq!(
            q.pop_due(100, of(&mut a, &mut b)),
            Some((1, TimerKind::Action))
        );
        assert_eq!(a.get(TimerKind::Action), None);
        // moving a timer replaces it
        q.set(&mut a, 1, TimerKind::Action, 200, 4);
        assert_eq!(q.len(), 1);
        q.cancel(&mut a, TimerKind::Action);
        assert_eq!(q.len(), 0);
        // At one instant an expiry goes before an earlier-set time-out
        q.set(&mut b, 2, TimerKind::NotifyTimeout, 300, 5);
        q.set(&mut a, 1, TimerKind::Expiry, 300, 6);
        assert_eq!(
            q.pop_due(300, of(&mut a, &mut b)),
            Some((1, TimerKind::Expiry))
        );
        assert_eq!(
            q.pop_due(300, of(&mut a, &mut b)),
            Some((2, TimerKind::NotifyTimeout))
        );
        // A timer of a store that is gone pops without a copy to take.
        q.set(&mut a, 3, TimerKind::Action, 400, 7);
        assert_eq!(
            q.pop_due(400, of(&mut a, &mut b)),
            Some((3, TimerKind::Action))
        );
    }
}
