//! The verified-token cache: tokens that passed validation, keyed by the SHA-256 of the token (never the
//! token itself), each entry living until min(`exp`, insertion + TTL), and dropped when a key was removed
//! from the key set since it was stored.
//!
//! Why `quick_cache`: a cache hit sits on every repeated request, so the lookup must be a few tens of
//! nanoseconds without a global lock. `quick_cache::sync::Cache` is a sharded, bounded S3-FIFO cache with
//! no background maintenance task. Measured with `benches/token_cache.rs` (see `benches/README.md`): a hit
//! costs ~27 ns against ~144 ns for `moka::sync::Cache` (5.3×), an insert ~104 ns against ~812 ns (7.8×);
//! moka's per-access bookkeeping for its TTL and admission policy buys nothing here, because the entry's own
//! deadline and key-removal epoch are checked by this module anyway.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::token::AccessToken;

/// Default number of verified tokens kept.
pub const DEFAULT_TOKEN_CACHE_CAPACITY: usize = 10_000;
/// Default longest time a verified token is trusted without verifying it again.
pub const DEFAULT_TOKEN_CACHE_TTL: Duration = Duration::from_secs(300);

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch, now (cache deadlines: sub-second TTLs must work).
pub(crate) fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Clone)]
struct Entry<V> {
    value: V,
    /// Unix milliseconds; the entry is unusable from this instant on.
    expires_at_ms: u64,
    /// The key store's removal epoch when the entry was stored.
    epoch: u64,
}

/// A bounded cache of validation outcomes (by default: verified tokens), keyed by a token digest.
pub(crate) struct TokenCache<V: Clone = AccessToken> {
    entries: quick_cache::sync::Cache<[u8; 32], Entry<V>>,
    ttl: Duration,
}

impl<V: Clone> fmt::Debug for TokenCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("len", &self.entries.len())
            .field("capacity", &self.entries.capacity())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl<V: Clone> TokenCache<V> {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            ttl,
        }
    }

    /// The value stored under `digest`, if it is still within its deadline and no key was removed since.
    pub(crate) fn get(&self, digest: &[u8; 32], now_ms: u64, epoch: u64) -> Option<V> {
        let entry = self.entries.get(digest)?;
        if now_ms < entry.expires_at_ms && entry.epoch == epoch {
            Some(entry.value)
        } else {
            self.entries.remove(digest);
            None
        }
    }

    /// Is there a live entry for `digest`?
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) fn contains(&self, digest: &[u8; 32], now_ms: u64, epoch: u64) -> bool {
        self.get(digest, now_ms, epoch).is_some()
    }

    /// Stores a value that is good until `exp` (Unix seconds), and never longer than the cache's TTL.
    pub(crate) fn insert(&self, digest: [u8; 32], value: V, exp: u64, now_ms: u64, epoch: u64) {
        self.insert_for(digest, value, exp, self.ttl, now_ms, epoch);
    }

    /// Stores a value good until min(`exp` (Unix seconds), now + `ttl`).
    pub(crate) fn insert_for(
        &self,
        digest: [u8; 32],
        value: V,
        exp: u64,
        ttl: Duration,
        now_ms: u64,
        epoch: u64,
    ) {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let expires_at_ms = exp.saturating_mul(1_000).min(now_ms.saturating_add(ttl_ms));
        if expires_at_ms > now_ms {
            self.entries.insert(
                digest,
                Entry {
                    value,
                    expires_at_ms,
                    epoch,
                },
            );
        }
    }

    /// Number of entries.
    #[cfg_attr(not(feature = "jwt"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> AccessToken {
        AccessToken::builder().subject("s").build()
    }

    #[test]
    fn shorter_ttl_per_entry() {
        let cache: TokenCache<Result<AccessToken, ()>> =
            TokenCache::new(10, Duration::from_secs(60));
        let ttl = Duration::from_millis(800);
        cache.insert_for([1; 32], Err(()), u64::MAX, ttl, 1_000_000, 0);
        assert!(cache.get(&[1; 32], 1_000_799, 0).is_some());
        assert!(
            cache.get(&[1; 32], 1_000_800, 0).is_none(),
            "sub-second TTLs work"
        );
        cache.insert_for([2; 32], Err(()), u64::MAX, Duration::ZERO, 1_000_000, 0);
        assert!(
            cache.get(&[2; 32], 1_000_000, 0).is_none(),
            "a zero TTL stores nothing"
        );
    }

    #[test]
    fn entries_expire_at_the_earlier_of_exp_and_ttl() {
        let cache: TokenCache = TokenCache::new(10, Duration::from_secs(60));
        cache.insert([1; 32], token(), 1_000 + 30, 1_000_000, 0);
        assert!(cache.get(&[1; 32], 1_029_999, 0).is_some());
        assert!(
            cache.get(&[1; 32], 1_030_000, 0).is_none(),
            "never past exp"
        );
        cache.insert([2; 32], token(), 1_000 + 3_600, 1_000_000, 0);
        assert!(cache.get(&[2; 32], 1_059_999, 0).is_some());
        assert!(
            cache.get(&[2; 32], 1_060_000, 0).is_none(),
            "never past the TTL"
        );
    }

    #[test]
    fn removal_epoch_invalidates() {
        let cache: TokenCache = TokenCache::new(10, Duration::from_secs(60));
        cache.insert([1; 32], token(), 2_000, 1_000_000, 3);
        assert!(cache.get(&[1; 32], 1_001_000, 3).is_some());
        assert!(cache.get(&[1; 32], 1_001_000, 4).is_none());
        assert!(
            cache.get(&[1; 32], 1_001_000, 3).is_none(),
            "the stale entry was dropped"
        );
    }

    #[test]
    fn expired_tokens_are_not_stored_and_capacity_is_bounded() {
        let cache: TokenCache = TokenCache::new(100, Duration::from_secs(60));
        cache.insert([1; 32], token(), 999, 1_000_000, 0);
        assert_eq!(cache.len(), 0);
        for i in 0..10_000u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            cache.insert(key, token(), 5_000, 1_000_000, 0);
        }
        assert!(cache.len() <= 100, "{}", cache.len());
    }
}
