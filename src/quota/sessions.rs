//! The session cache's map: suffix → cached session, as a `Vec` of entries and a
//! `hashbrown::HashTable` of positions. A `HashMap<Arc<str>, _>` of a million sessions keeps
//! two million 48-byte buckets (it doubles at 7/8 full); this keeps the entries once, densely,
//! and 5 bytes a bucket.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;

pub struct SessionMap<V> {
    entries: Vec<(Arc<str>, V)>,
    index: HashTable<u32>,
    hasher: RandomState,
}

impl<V> Default for SessionMap<V> {
    fn default() -> Self {
        SessionMap {
            entries: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::new(),
        }
    }
}

impl<V> SessionMap<V> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(self.hasher.hash_one(key), |&i| {
                &*entries[i as usize].0 == key
            })
            .map(|&i| i as usize)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.position(key).map(|i| &mut self.entries[i].1)
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: Arc<str>, value: V) -> Option<V> {
        if let Some(i) = self.position(&key) {
            return Some(std::mem::replace(&mut self.entries[i].1, value));
        }
        self.entries.push((key, value));
        self.reindex(self.entries.len() - 1);
        None
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let i = self.position(key)?;
        Some(self.remove_at(i))
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Arc<str>, &mut V) -> bool) {
        let before = self.entries.len();
        self.entries.retain_mut(|(k, v)| keep(k, v));
        if self.entries.len() != before {
            self.index.clear();
            for i in 0..self.entries.len() {
                self.reindex(i);
            }
        }
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Arc<str>, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    fn remove_at(&mut self, i: usize) -> V {
        let last = self.entries.len() - 1;
        self.unindex(i);
        if i != last {
            // The last entry moves into the gap.
            self.unindex(last);
        }
        let (_, v) = self.entries.swap_remove(i);
        if i != last {
            self.reindex(i);
        }
        v
    }

    fn reindex(&mut self, i: usize) {
        let (entries, hasher) = (&self.entries, &self.hasher);
        let hash = hasher.hash_one(&*entries[i].0);
        self.index.insert_unique(hash, i as u32, |&j| {
            hasher.hash_one(&*entries[j as usize].0)
        });
    }

    fn unindex(&mut self, i: usize) {
        let hash = self.hasher.hash_one(&*self.entries[i].0);
        if let Ok(found) = self.index.find_entry(hash, |&j| j as usize == i) {
            found.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut m = SessionMap::default();
        for i in 0..100 {
            assert!(m.insert(Arc::from(format!("k{i}")), i).is_none());
        }
        assert_eq!(m.insert(Arc::from("k7"), 701), Some(7));
        assert_eq!(m.remove("k0"), Some(0));
        assert_eq!(m.remove("k0"), None);
        assert_eq!(m.get_mut("k99").copied(), Some(99));
        m.retain(|_, v| *v % 2 == 1);
        assert_eq!(m.len(), 50);
        assert!(!m.contains_key("k701"));
        assert_eq!(m.get_mut("k7").copied(), Some(701));
        for i in (1..100).step_by(2) {
            assert!(m.contains_key(&format!("k{i}")), "k{i}");
        }
        let n = m.iter_mut().count();
        assert_eq!(n, 50);
    }
}
