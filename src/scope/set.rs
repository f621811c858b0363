//! [`ScopeSet`]: the scopes a token grants, in one shared string.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use super::is_valid_scope;
use crate::error::BuildError;

/// A set of scopes, parsed once, sorted and de-duplicated. Comparison is case-sensitive.
///
/// Cloning is cheap (reference counted). The scopes are kept as one string, sorted and joined by single
/// spaces (the wire form), so a token's set costs one allocation; a `scope` claim that is already in that
/// form (sorted, no duplicates, single spaces) is copied as it is. [`contains`](Self::contains) is a
/// binary search over that string.
///
/// ```
/// # use bearer_guard::scope::ScopeSet;
/// let scopes = ScopeSet::parse_lenient("notes:write notes:read notes:read");
/// assert_eq!(scopes.len(), 2);
/// assert!(scopes.contains("notes:read"));
/// assert_eq!(scopes.to_scope_string(), "notes:read notes:write");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet {
    /// The scopes, sorted, de-duplicated, joined by single spaces; `None` for the empty set. Every scope is
    /// valid scope syntax, so the string is ASCII and holds no other space.
    joined: Option<Arc<str>>,
    len: usize,
}

impl ScopeSet {
    /// The empty set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses a space-delimited scope string strictly: every token must be a valid scope.
    ///
    /// ```
    /// # use bearer_guard::scope::ScopeSet;
    /// let scopes = ScopeSet::parse("b a  a").unwrap();
    /// assert_eq!(scopes.iter().collect::<Vec<_>>(), ["a", "b"]);
    /// assert!(ScopeSet::parse("caf\u{e9}").is_err());
    /// ```
    pub fn parse(scopes: &str) -> Result<Self, BuildError> {
        Self::try_from_iter(scopes.split(' ').filter(|s| !s.is_empty()))
    }

    /// Parses a space-delimited scope string from a token, dropping (instead of refusing) invalid entries.
    ///
    /// Dropping can only ever remove a *granted* scope, so it fails closed.
    pub fn parse_lenient(scopes: &str) -> Self {
        match canonical_len(scopes) {
            Some(len) => Self {
                joined: Some(Arc::from(scopes)),
                len,
            },
            None => Self::from_valid(scopes.split(' ').filter(|s| is_valid_scope(s)).collect()),
        }
    }

    /// Builds a set from individual scopes, refusing invalid ones.
    pub fn try_from_iter<I, S>(scopes: I) -> Result<Self, BuildError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes: Vec<S> = scopes.into_iter().collect();
        if let Some(bad) = scopes.iter().find(|s| !is_valid_scope(s.as_ref())) {
            return Err(BuildError::InvalidScope(
                bad.as_ref().escape_default().to_string(),
            ));
        }
        Ok(Self::from_valid(scopes.iter().map(AsRef::as_ref).collect()))
    }

    /// Builds a set from individual scopes, dropping invalid ones (fails closed for granted scopes).
    pub fn from_iter_lenient<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes: Vec<S> = scopes
            .into_iter()
            .filter(|s| is_valid_scope(s.as_ref()))
            .collect();
        Self::from_valid(scopes.iter().map(AsRef::as_ref).collect())
    }

    /// Sorts, de-duplicates and joins scopes already known to be valid.
    fn from_valid(mut scopes: Vec<&str>) -> Self {
        if scopes.is_empty() {
            return Self::empty();
        }
        scopes.sort_unstable();
        scopes.dedup();
        Self {
            joined: Some(Arc::from(scopes.join(" "))),
            len: scopes.len(),
        }
    }

    /// Does the set contain exactly this scope (case-sensitive)?
    pub fn contains(&self, scope: &str) -> bool {
        let Some(joined) = self.joined.as_deref() else {
            return false;
        };
        // Binary search over the sorted, space-joined scopes: `lo..hi` always spans whole scopes.
        let bytes = joined.as_bytes();
        let (mut lo, mut hi) = (0, bytes.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let start = bytes[lo..mid]
                .iter()
                .rposition(|&b| b == b' ')
                .map_or(lo, |i| lo + i + 1);
            let end = bytes[mid..hi]
                .iter()
                .position(|&b| b == b' ')
                .map_or(hi, |i| mid + i);
            match bytes[start..end].cmp(scope.as_bytes()) {
                Ordering::Equal => return true,
                Ordering::Less => lo = end + 1,
                Ordering::Greater => hi = start.saturating_sub(1).max(lo),
            }
        }
        false
    }

    /// The scopes, in sorted order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        Iter {
            rest: self.joined.as_deref().unwrap_or(""),
            remaining: self.len,
        }
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The scopes joined by single spaces (the wire form of a `scope` claim or parameter).
    pub fn to_scope_string(&self) -> String {
        self.as_scope_str().to_owned()
    }

    fn as_scope_str(&self) -> &str {
        self.joined.as_deref().unwrap_or("")
    }
}

/// If `scopes` is already a canonical set (valid scopes, strictly ascending, single spaces), how many.
fn canonical_len(scopes: &str) -> Option<usize> {
    if scopes.is_empty() {
        return None;
    }
    let mut previous: Option<&str> = None;
    let mut len = 0;
    for scope in scopes.split(' ') {
        if !is_valid_scope(scope) || previous.is_some_and(|p| p >= scope) {
            return None;
        }
        previous = Some(scope);
        len += 1;
    }
    Some(len)
}

/// The scopes of a [`ScopeSet`], in order.
struct Iter<'a> {
    rest: &'a str,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (scope, rest) = self.rest.split_once(' ').unwrap_or((self.rest, ""));
        self.rest = rest;
        Some(scope)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_scope_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn scope_set_is_case_sensitive_sorted_deduplicated() {
        let set = ScopeSet::parse("Read read  write read").unwrap();
        assert_eq!(set.iter().collect::<Vec<_>>(), ["Read", "read", "write"]);
        assert_eq!(set.iter().len(), 3);
        assert!(set.contains("read"));
        assert!(!set.contains("READ"));
        assert_eq!(set.to_string(), "Read read write");
        assert!(ScopeSet::parse("ok bad\"").is_err());
        assert_eq!(
            ScopeSet::parse_lenient("ok bad\" fine").to_scope_string(),
            "fine ok"
        );
    }

    #[test]
    fn canonical_strings_are_taken_as_they_are_and_others_normalized() {
        assert_eq!(canonical_len("a b c"), Some(3));
        for not_canonical in ["", "b a", "a a", "a  b", " a", "a ", "a \"b"] {
            assert_eq!(canonical_len(not_canonical), None, "{not_canonical:?}");
        }
        for (input, canonical) in [
            ("b a", "a b"),
            ("a  b", "a b"),
            (" a ", "a"),
            ("a a", "a"),
            ("", ""),
            ("   ", ""),
            ("\"", ""),
        ] {
            let set = ScopeSet::parse_lenient(input);
            assert_eq!(set.to_scope_string(), canonical, "{input:?}");
            assert_eq!(set, ScopeSet::parse_lenient(canonical), "{input:?}");
            assert_eq!(set.len(), set.iter().count(), "{input:?}");
        }
        assert!(ScopeSet::empty().is_empty());
        assert!(!ScopeSet::empty().contains(""));
        assert_eq!(
            format!("{:?}", ScopeSet::parse("b a").unwrap()),
            "{\"a\", \"b\"}"
        );
    }

    /// `contains` (a hand-written binary search) agrees with a `BTreeSet` on many sets and probes.
    #[test]
    fn contains_agrees_with_a_btreeset() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = [
            "a", "b", "ab", "ba", "a:b", "mcp", "mcp:read", "z", "aa", "~",
        ];
        for _ in 0..2_000 {
            let n = (next() % 12) as usize;
            let chosen: Vec<&str> = (0..n)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let reference: BTreeSet<&str> = chosen.iter().copied().collect();
            let set = ScopeSet::from_iter_lenient(&chosen);
            let via_string = ScopeSet::parse_lenient(&chosen.join(" "));
            assert_eq!(set, via_string);
            assert_eq!(set.len(), reference.len());
            assert!(set.iter().eq(reference.iter().copied()));
            for probe in alphabet.iter().chain(&["", " ", "a b", "m", "mcp:", "zz"]) {
                assert_eq!(
                    set.contains(probe),
                    reference.contains(probe),
                    "{chosen:?} {probe:?}"
                );
            }
        }
    }
}
