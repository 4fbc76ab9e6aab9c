//! Idle deadlines in an ordered map: O(log n) per change, and a wake-up only
//! looks at deadlines that are due (invariant 5: no scan of all connections).
//!
//! A connection is not rescheduled on every byte: it records when it last
//! moved data, and when its deadline comes up the loop either closes it or
//! puts it back at `last_active + timeout`. So a busy connection costs one
//! map operation per timeout period, not one per event.

use std::collections::BTreeMap;
use std::time::Instant;

/// (deadline, connection id) -> slot. The id keeps entries unique and lets
/// the loop check that the slot still holds the same connection.
#[derive(Default)]
pub struct Deadlines {
    map: BTreeMap<(Instant, u64), usize>,
}

impl Deadlines {
    pub fn insert(&mut self, at: Instant, id: u64, slot: usize) {
        self.map.insert((at, id), slot);
    }

    pub fn remove(&mut self, at: Instant, id: u64) {
        self.map.remove(&(at, id));
    }

    pub fn next(&self) -> Option<Instant> {
        self.map.keys().next().map(|&(at, _)| at)
    }

    /// Take the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(u64, usize)> {
        let entry = self.map.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let (_, id) = *entry.key();
        Some((id, entry.remove()))
    }
}

#[cfg(test)]
mod tests {
    use super::Deadlines;
    use std::time::{Duration, Instant};

    #[test]
    fn pops_only_what_is_due_in_order() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        d.insert(t0 + Duration::from_secs(2), 7, 70);
        d.insert(t0 + Duration::from_secs(1), 9, 90);
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_due(t0), None);
        assert_eq!(d.pop_due(t0 + Duration::from_secs(5)), Some((9, 90)));
        d.remove(t0 + Duration::from_secs(2), 7);
        assert_eq!(d.next(), None);
    }
}
