//! A command's custom header (`extFields`): a few short fields, kept sorted by key so the wire
//! form is stable. A reply's fields (a heartbeat's `changed`, a NameServer's HA address) fit in
//! place, so reading one allocates nothing; longer lists and strings spill to the heap.

use compact_str::CompactString;
use serde::ser::{Serialize, SerializeMap, Serializer};
use smallvec::SmallVec;

/// Fields held in place before the list spills to the heap.
const INLINE: usize = 2;

/// A field's key or value: up to 24 bytes in place.
pub type Text = CompactString;

/// The custom header: key → value, sorted by key, each key once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields(SmallVec<[(Text, Text); INLINE]>);

/// Fields in the order a peer sent them; `None`: a null, which removes an earlier value.
pub(crate) type AsRead = SmallVec<[(Text, Option<Text>); INLINE]>;

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Fields(SmallVec::new())
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// Sets `key` to `value`; the value it had, if any.
    pub fn insert(&mut self, key: impl Into<Text>, value: impl Into<Text>) -> Option<Text> {
        let key = key.into();
        let value = value.into();
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// The fields a peer sent, in its order: sorted once (stable, so for a repeated key the
    /// last one wins), never shifted per field — a peer's many fields in reverse order cost
    /// n log n, not n².
    pub(crate) fn from_read(mut read: AsRead) -> Self {
        read.sort_by(|a, b| a.0.cmp(&b.0));
        let mut fields = Fields::new();
        let mut read = read.into_iter().peekable();
        while let Some((key, value)) = read.next() {
            if read.peek().is_some_and(|(next, _)| *next == key) {
                continue;
            }
            if let Some(value) = value {
                fields.0.push((key, value));
            }
        }
        fields
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).ok().map(|i| self.0[i].1.as_str())
    }

    #[cfg(any(test, feature = "test-util"))]
    /// Removes `key`; the value it had, if any.
    pub fn remove(&mut self, key: &str) -> Option<Text> {
        self.position(key).ok().map(|i| self.0.remove(i).1)
    }

    /// The fields in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<Text>, V: Into<Text>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut f = Fields::new();
        for (k, v) in iter {
            f.insert(k, v);
        }
        f
    }
}

impl<K: Into<Text>, V: Into<Text>> Extend<(K, V)> for Fields {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_stay_sorted_and_the_last_value_wins() {
        let mut f = Fields::new();
        assert_eq!(f.insert("b", "1"), None);
        f.insert("a", "2");
        f.insert("c", "3");
        assert_eq!(f.insert("b", "4").as_deref(), Some("1"));
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            [("a", "2"), ("b", "4"), ("c", "3")]
        );
        assert_eq!(f.get("b"), Some("4"));
        assert_eq!(f.remove("a").as_deref(), Some("2"));
        assert!(f.get("a").is_none() && f.len() == 2);
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"b":"4","c":"3"}"#);
        let g: Fields = [("c", "3"), ("b", "4")].into_iter().collect();
        assert_eq!(f, g);
    }

    proptest::proptest! {
        /// Read fields end as inserting and removing them one by one would leave them.
        #[test]
        fn fields_as_read_are_the_fields_inserted_one_by_one(
            read in proptest::collection::vec((0u8..12, proptest::option::of(0u8..5)), 0..60),
        ) {
            let mut one_by_one = Fields::new();
            let mut as_read = AsRead::new();
            for (k, v) in &read {
                let (k, v) = (Text::from(k.to_string()), v.map(|v| Text::from(v.to_string())));
                match &v {
                    Some(v) => one_by_one.insert(k.clone(), v.clone()),
                    None => one_by_one.remove(&k),
                };
                as_read.push((k, v));
            }
            proptest::prop_assert_eq!(Fields::from_read(as_read), one_by_one);
        }
    }
}
