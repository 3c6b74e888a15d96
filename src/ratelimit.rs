//! Rate gates: at most N requests to a platform in any one-second window.
//! A request that finds the window full waits in a priority queue (first
//! checks, then polls and exchanges, then re-checks; FIFO within a
//! priority) and is released when a slot opens. Release costs O(log n) in
//! the number of waiting requests; `poll_timeout` reads the next slot from
//! the window's oldest send.
//!
//! What does not live here: building the requests (`engine`, `platform`).

use std::collections::{BTreeMap, VecDeque};

/// Length of the window in ms.
pub const WINDOW_MS: i64 = 1000;

/// One platform's gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    limit: usize,
    /// Times of the last sends (at most `limit`, oldest first).
    sent: VecDeque<i64>,
    /// Waiting requests by (priority, sequence) → store slot.
    waiting: BTreeMap<(u8, u64), u32>,
}

impl Gate {
    /// A gate of `limit` requests per second.
    pub fn new(limit: u32) -> Self {
        Gate {
            limit: limit.max(1) as usize,
            sent: VecDeque::new(),
            waiting: BTreeMap::new(),
        }
    }

    /// Whether a request may go now (nobody waits and the window has room).
    pub fn may_send(&mut self, now: i64) -> bool {
        self.waiting.is_empty() && self.has_room(now)
    }

    fn has_room(&mut self, now: i64) -> bool {
        while self.sent.front().is_some_and(|&t| t <= now - WINDOW_MS) {
            self.sent.pop_front();
        }
        self.sent.len() < self.limit
    }

    /// Records a send at `now`.
    pub fn record(&mut self, now: i64) {
        self.sent.push_back(now);
        while self.sent.len() > self.limit {
            self.sent.pop_front();
        }
    }

    /// Queues a store's request.
    pub fn enqueue(&mut self, priority: u8, seq: u64, slot: u32) {
        self.waiting.insert((priority, seq), slot);
    }

    /// Removes a waiting request.
    pub fn dequeue(&mut self, priority: u8, seq: u64) {
        self.waiting.remove(&(priority, seq));
    }

    /// Takes the next waiting request if a slot is open at `now` (and records the send).
    pub fn release(&mut self, now: i64) -> Option<u32> {
        if self.waiting.is_empty() || !self.has_room(now) {
            return None;
        }
        let (_, slot) = self.waiting.pop_first()?;
        self.record(now);
        Some(slot)
    }

    /// When the next waiting request may go (None: nobody waits).
    pub fn next_slot(&self) -> Option<i64> {
        if self.waiting.is_empty() {
            return None;
        }
        if self.sent.len() < self.limit {
            return Some(i64::MIN);
        }
        self.sent.front().map(|t| t.saturating_add(WINDOW_MS))
    }

    /// The send times in the window (for snapshots).
    pub fn window(&self) -> Vec<i64> {
        self.sent.iter().copied().collect()
    }

    /// Restores the send times.
    pub fn set_window(&mut self, sent: &[i64]) {
        self.sent = sent.iter().copied().collect();
        while self.sent.len() > self.limit {
            self.sent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_limit_in_a_window() {
        let mut g = Gate::new(2);
        assert!(g.may_send(0));
        g.record(0);
        assert!(g.may_send(10));
        g.record(10);
        assert!(!g.may_send(999));
        g.enqueue(1, 1, 7);
        g.enqueue(0, 2, 8);
        assert_eq!(g.next_slot(), Some(1000));
        assert_eq!(g.release(999), None);
        // priority 0 first
        assert_eq!(g.release(1000), Some(8));
        assert_eq!(g.release(1000), None);
        assert_eq!(g.release(1010), Some(7));
        assert_eq!(g.next_slot(), None);
    }
}
