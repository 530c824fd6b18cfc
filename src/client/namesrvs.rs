//! The NameServer list and which of its members calls without an address go to: the whole
//! choice in one place, with no I/O (the connection table tries the candidates it names).

use std::collections::HashSet;

/// The NameServer list, the member chosen while it stays healthy, and the round-robin cursor.
#[derive(Debug)]
pub(crate) struct NameServers {
    list: Vec<String>,
    chosen: Option<String>,
    /// Where the next search starts; random, so that many clients do not all start at one.
    next: usize,
}

impl Default for NameServers {
    fn default() -> Self {
        NameServers {
            list: Vec::new(),
            chosen: None,
            next: fastrand::usize(0..999),
        }
    }
}

impl NameServers {
    /// Takes a new list when its membership differs (then shuffled); true if it did. Duplicates
    /// collapse, an empty list is ignored, and a chosen member that left is forgotten.
    pub(crate) fn update(&mut self, addrs: Vec<String>) -> bool {
        let mut seen = HashSet::new();
        let mut addrs: Vec<String> = addrs
            .into_iter()
            .filter(|a| seen.insert(a.clone()))
            .collect();
        if addrs.is_empty() {
            return false;
        }
        let old: HashSet<&String> = self.list.iter().collect();
        let new: HashSet<&String> = addrs.iter().collect();
        if old == new {
            return false;
        }
        fastrand::shuffle(&mut addrs);
        if self.chosen.as_ref().is_some_and(|c| !addrs.contains(c)) {
            self.chosen = None;
        }
        self.list = addrs;
        true
    }

    /// The current list.
    pub(crate) fn list(&self) -> &[String] {
        &self.list
    }

    /// True when `addr` is on the list.
    pub(crate) fn contains(&self, addr: &str) -> bool {
        self.list.iter().any(|a| a == addr)
    }

    /// The member calls stick to while its connection lives.
    pub(crate) fn chosen(&self) -> Option<&str> {
        self.chosen.as_deref()
    }

    /// Sticks to `addr` from now on (its connection was opened).
    pub(crate) fn choose(&mut self, addr: &str) {
        self.chosen = Some(addr.to_string());
    }

    /// The member to try next in a search, round-robin: the cursor moves one step per attempt,
    /// so a search that ends at a member starts the next one past it.
    pub(crate) fn next_candidate(&mut self) -> Option<String> {
        if self.list.is_empty() {
            return None;
        }
        self.next = self.next.wrapping_add(1);
        Some(self.list[self.next % self.list.len()].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(v: &[String]) -> Vec<String> {
        let mut v = v.to_vec();
        v.sort();
        v
    }

    #[test]
    fn lists_are_compared_as_sets_and_deduplicated() {
        let mut ns = NameServers::default();
        assert!(ns.update(vec!["a:1".into(), "b:2".into()]));
        assert!(
            !ns.update(vec!["b:2".into(), "a:1".into()]),
            "same set, other order: unchanged"
        );
        assert!(!ns.update(vec!["a:1".into(), "b:2".into(), "a:1".into()]));
        assert!(!ns.update(vec![]), "an empty list is ignored");
        assert_eq!(sorted(ns.list()), ["a:1", "b:2"]);
        assert!(ns.update(vec!["a:1".into()]));
        assert_eq!(ns.list(), ["a:1".to_string()]);
        assert!(ns.update(vec!["c:3".into(), "c:3".into()]));
        assert_eq!(ns.list(), ["c:3".to_string()]);
        assert!(ns.contains("c:3") && !ns.contains("a:1"));
    }

    #[test]
    fn the_chosen_member_is_kept_until_it_leaves_the_list() {
        let mut ns = NameServers::default();
        ns.update(vec!["a:1".into(), "b:2".into()]);
        ns.choose("a:1");
        assert!(ns.update(vec!["a:1".into(), "c:3".into()]));
        assert_eq!(ns.chosen(), Some("a:1"));
        assert!(ns.update(vec!["b:2".into(), "c:3".into()]));
        assert_eq!(ns.chosen(), None);
    }

    #[test]
    fn candidates_name_every_member_once_per_round_and_rotate() {
        let mut ns = NameServers::default();
        assert_eq!(ns.next_candidate(), None);
        ns.update(vec!["a:1".into(), "b:2".into(), "c:3".into()]);
        let round: Vec<String> = (0..3).filter_map(|_| ns.next_candidate()).collect();
        assert_eq!(sorted(&round), ["a:1", "b:2", "c:3"]);
        // A search that stopped at its first candidate starts the next one further on.
        let again = ns.next_candidate();
        assert_eq!(again.as_ref(), Some(&round[0]));
        assert_eq!(ns.next_candidate().as_ref(), Some(&round[1]));
    }
}
