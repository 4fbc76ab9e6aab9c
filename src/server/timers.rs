//! Deadlines in an ordered map: O(log n) per change, and a wake-up only
//! looks at deadlines that are due (invariant 5: no scan of all connections).
//!
//! A connection has at most two entries: its idle deadline and, when faults
//! hold it back, the moment the hold ends; a UDP socket with delayed
//! replies has one, for the earliest of them. The idle deadline is not moved on
//! every byte: a connection records when it last moved data, and when its
//! deadline comes up the loop either closes it or files it again at
//! `last_active + timeout`, so a busy connection costs one map operation per
//! timeout period, not one per event.

use std::collections::BTreeMap;
use std::time::Instant;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// `--idle-timeout`.
    Idle,
    /// A fault's hold on input or output ends (see `faults.rs`).
    Fault,
    /// Delayed UDP replies are due (the id is the UDP socket's index).
    Datagram,
}

/// (deadline, connection id, kind) -> slot. The id keeps entries unique and
/// lets the loop check that the slot still holds the same connection.
#[derive(Default)]
pub struct Deadlines {
    map: BTreeMap<(Instant, u64, Timer), usize>,
}

impl Deadlines {
    pub fn insert(&mut self, at: Instant, id: u64, timer: Timer, slot: usize) {
        self.map.insert((at, id, timer), slot);
    }

    pub fn remove(&mut self, at: Instant, id: u64, timer: Timer) {
        self.map.remove(&(at, id, timer));
    }

    /// Move the entry filed at `*filed` to `next` (either may be none),
    /// touching the map only when they differ.
    pub fn refile(
        &mut self,
        filed: &mut Option<Instant>,
        next: Option<Instant>,
        id: u64,
        timer: Timer,
        slot: usize,
    ) {
        if *filed == next {
            return;
        }
        if let Some(at) = *filed {
            self.remove(at, id, timer);
        }
        if let Some(at) = next {
            self.insert(at, id, timer, slot);
        }
        *filed = next;
    }

    pub fn next(&self) -> Option<Instant> {
        self.map.keys().next().map(|&(at, _, _)| at)
    }

    /// Take the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(u64, Timer, usize)> {
        let entry = self.map.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let (_, id, timer) = *entry.key();
        Some((id, timer, entry.remove()))
    }
}

#[cfg(test)]
mod tests {
    use super::{Deadlines, Timer};
    use std::time::{Duration, Instant};

    #[test]
    fn pops_only_what_is_due_in_order() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.insert(t0 + Duration::from_secs(2), 7, Timer::Idle, 70);
        d.insert(t0 + Duration::from_secs(1), 9, Timer::Fault, 90);
        d.insert(t0 + Duration::from_secs(1), 9, Timer::Idle, 90);
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_due(t0), None);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(d.pop_due(later), Some((9, Timer::Idle, 90)));
        assert_eq!(d.pop_due(later), Some((9, Timer::Fault, 90)));
        d.remove(t0 + Duration::from_secs(2), 7, Timer::Idle);
        assert_eq!(d.next(), None);
    }

    #[test]
    fn refiling_moves_the_one_entry() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        let mut filed = None;
        d.refile(&mut filed, Some(t0), 3, Timer::Fault, 30);
        d.refile(
            &mut filed,
            Some(t0 + Duration::from_secs(1)),
            3,
            Timer::Fault,
            30,
        );
        assert_eq!(filed, Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_due(t0), None, "the old entry is gone");
        d.refile(&mut filed, None, 3, Timer::Fault, 30);
        assert_eq!(d.next(), None);
    }
}
