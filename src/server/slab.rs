//! Connection table: O(1) insert, lookup and removal by key (invariant 5).
//!
//! A slot freed while a batch of events is being handled is only reused after
//! the batch ends (`end_batch`), so a stale event later in the same batch for
//! a closed connection finds an empty slot, never a newer connection.

pub struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<usize>,
    retired: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            retired: Vec::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot the next `insert` will use.
    pub fn vacant_key(&self) -> usize {
        self.free.last().copied().unwrap_or(self.entries.len())
    }

    pub fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(key) => {
                self.entries[key] = Some(value);
                key
            }
            None => {
                self.entries.push(Some(value));
                self.entries.len() - 1
            }
        }
    }

    pub fn get(&self, key: usize) -> Option<&T> {
        self.entries.get(key).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.entries.get_mut(key).and_then(Option::as_mut)
    }

    pub fn remove(&mut self, key: usize) -> Option<T> {
        let value = self.entries.get_mut(key)?.take()?;
        self.len -= 1;
        self.retired.push(key);
        Some(value)
    }

    /// Make the slots freed during this batch available again.
    pub fn end_batch(&mut self) {
        self.free.append(&mut self.retired);
    }

    /// Every value held, in slot order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().flatten()
    }

    /// Keys of every occupied slot (used once, at shutdown).
    pub fn keys(&self) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&k| self.entries[k].is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn a_slot_freed_in_a_batch_is_not_reused_until_it_ends() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_ne!(a, b, "reused within the batch");
        assert_eq!(slab.get(a), None);
        slab.end_batch();
        let c = slab.insert("c");
        assert_eq!(c, a);
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn removing_twice_or_out_of_range_is_harmless() {
        let mut slab: Slab<u8> = Slab::new();
        let k = slab.insert(1);
        assert_eq!(slab.remove(k), Some(1));
        assert_eq!(slab.remove(k), None);
        assert_eq!(slab.remove(99), None);
        assert!(slab.is_empty());
    }
}
