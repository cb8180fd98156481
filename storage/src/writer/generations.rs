//! A cache bounded to two generations, for the writer's conversation and pair lookups.

use crate::IdMap as HashMap;

/// A map bounded to two generations of `cap` entries: when the young one is full it becomes
/// the old one (dropping the previous old one), and a hit in the old one moves back to the
/// young one. So the recently used entries survive a turnover, unlike a cache that is cleared
/// when full and then misses on every busy conversation at once.
pub(super) struct Generations<K, V> {
    pub(super) young: HashMap<K, V>,
    pub(super) old: HashMap<K, V>,
    pub(super) cap: usize,
    /// A turnover has dropped entries: a miss no longer means the key was never inserted.
    pub(super) lost: bool,
    /// How many times entries were dropped (turnovers and removals).
    pub(super) drops: u64,
}

impl<K: std::hash::Hash + Eq + Copy, V> Generations<K, V> {
    pub(super) fn new(cap: usize) -> Self {
        Generations {
            young: HashMap::default(),
            old: HashMap::default(),
            cap: cap.max(1),
            lost: false,
            drops: 0,
        }
    }

    pub(super) fn insert(&mut self, k: K, v: V) {
        if self.young.len() >= self.cap && !self.young.contains_key(&k) {
            // The dropped generation's table becomes the new young one: already as large as
            // a full generation needs and in memory, so the new one never grows by copying
            // (growing a generation-sized map by doubling touches fresh pages at every step,
            // on the writer's thread). The first generation grows as entries come, so a small
            // server's caches stay small.
            let mut recycled = std::mem::take(&mut self.old);
            self.lost |= !recycled.is_empty();
            self.drops += 1;
            recycled.clear();
            self.old = std::mem::replace(&mut self.young, recycled);
        }
        self.young.insert(k, v);
    }

    /// Drops the entry for `k`.
    pub(super) fn remove(&mut self, k: &K) {
        self.young.remove(k);
        self.old.remove(k);
        self.drops += 1;
    }

    /// The entry for `k`, without moving it between generations.
    pub(super) fn peek(&self, k: &K) -> Option<&V> {
        self.young.get(k).or_else(|| self.old.get(k))
    }

    pub(super) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        if !self.young.contains_key(k) {
            let v = self.old.remove(k)?;
            self.insert(*k, v);
        }
        self.young.get_mut(k)
    }
}

#[cfg(test)]
mod tests {
    use super::Generations;

    #[test]
    fn generations_keep_recent_entries_across_a_turnover() {
        let mut g = Generations::new(2);
        g.insert(1, "a");
        g.insert(2, "b");
        // Full: 1 and 2 become the old generation.
        g.insert(3, "c");
        assert!(!g.lost, "nothing dropped yet");
        // A hit in the old generation moves back to the young one...
        assert_eq!(g.get_mut(&1).copied(), Some("a"));
        // ...so the next turnover drops 2 (unused), and keeps 1 and 3 reachable.
        g.insert(4, "d");
        assert_eq!(g.get_mut(&2), None);
        assert!(g.lost);
        assert_eq!(g.get_mut(&1).copied(), Some("a"));
        assert_eq!(g.get_mut(&3).copied(), Some("c"));
        assert_eq!(g.get_mut(&4).copied(), Some("d"));
        assert!(g.young.len() + g.old.len() <= 4);
    }
}
