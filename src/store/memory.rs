//! [`MemoryReplayStore`]: a bounded in-process replay store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{ReplayStore, StoreCall, StoreError};

const SHARDS: usize = 16;

/// The keys of one shard, each with the instant it expires.
type Shard = Mutex<HashMap<[u8; 32], Instant>>;

/// Keys of one process, in 16 shards each behind its own mutex, each holding at most `capacity / 16` keys.
///
/// Written by hand rather than with a cache crate: a cache evicts entries to make room, and an evicted
/// `jti` is a replay that passes. This store never evicts an unexpired key: when a shard is full of them it
/// answers [`StoreError::Full`] (a 503) until keys expire. Keys are only inserted for proofs that passed
/// every other check with a valid token, so filling it takes valid tokens and signed proofs.
pub struct MemoryReplayStore {
    shards: Box<[Shard]>,
    per_shard: usize,
}

impl MemoryReplayStore {
    /// A store holding at most `capacity` unexpired keys (at least 16).
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
        }
    }

    fn insert(&self, key: &[u8; 32], ttl: Duration) -> Result<bool, StoreError> {
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        // A poisoned shard only means another thread panicked while holding it; the map is still whole.
        let mut map = shard.lock().unwrap_or_else(|poison| poison.into_inner());
        let now = Instant::now();
        if let Some(expires) = map.get(key) {
            if *expires > now {
                return Ok(false);
            }
        }
        if map.len() >= self.per_shard && !map.contains_key(key) {
            map.retain(|_, expires| *expires > now);
            if map.len() >= self.per_shard {
                return Err(StoreError::Full);
            }
        }
        map.insert(*key, now + ttl);
        Ok(true)
    }
}

impl ReplayStore for MemoryReplayStore {
    fn insert_if_absent(&self, key: &[u8; 32], ttl: Duration) -> StoreCall {
        StoreCall::Ready(self.insert(key, ttl))
    }
}

impl std::fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_then_replay_then_expiry_and_bound() {
        let store = MemoryReplayStore::new(16);
        let key = [1u8; 32];
        assert_eq!(store.insert(&key, Duration::from_millis(30)), Ok(true));
        assert_eq!(store.insert(&key, Duration::from_millis(30)), Ok(false));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(
            store.insert(&key, Duration::from_secs(60)),
            Ok(true),
            "expired"
        );
        // One key per shard: a second key in the same shard finds it full of unexpired keys.
        let mut other = [1u8; 32];
        other[1] = 2;
        assert_eq!(
            store.insert(&other, Duration::from_secs(60)),
            Err(StoreError::Full)
        );
        assert_eq!(
            store.insert(&key, Duration::from_secs(60)),
            Ok(false),
            "still remembered"
        );
    }
}
