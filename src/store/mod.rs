//! State that the replicas of a service must agree on: the `jti`s of DPoP proofs already used.
//!
//! ```
//! use bearer_guard::store::{MemoryReplayStore, ReplayStore, StoreCall};
//! use std::time::Duration;
//!
//! let store = MemoryReplayStore::new(1_000);
//! let key = [42u8; 32];
//! assert!(matches!(store.insert_if_absent(&key, Duration::from_secs(60)), StoreCall::Ready(Ok(true))));
//! // The same proof again: already there.
//! assert!(matches!(store.insert_if_absent(&key, Duration::from_secs(60)), StoreCall::Ready(Ok(false))));
//! ```
//!
//! One process uses [`MemoryReplayStore`] (the default); a fleet uses `RedisReplayStore` (feature `redis`),
//! so that a proof accepted by one replica is refused by every other. Keys are SHA-256 digests computed by
//! the guard, never a token or a proof.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use memory::MemoryReplayStore;
#[cfg(feature = "redis")]
pub use redis::{RedisReplayStore, RedisReplayStoreBuilder};

/// The answer of a store: `Ok(true)` when the key was absent and is now recorded, `Ok(false)` when it was
/// already there (a replay).
pub type Inserted = Result<bool, StoreError>;

/// A store call: decided at once (memory), or a future (a network store).
pub enum StoreCall {
    /// The answer, without waiting.
    Ready(Inserted),
    /// The answer, later.
    Pending(Pin<Box<dyn Future<Output = Inserted> + Send>>),
}

impl fmt::Debug for StoreCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(answer) => f.debug_tuple("Ready").field(answer).finish(),
            Self::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// An atomic "insert if absent, with expiry" over 32-byte keys.
///
/// Implementations must be atomic across every guard that shares them (two concurrent inserts of one key:
/// exactly one `Ok(true)`), keep a key at least `ttl`, and bound their own cost (time-outs, in-flight
/// calls): a failure is an `Err`, which the guard turns into a 503 unless configured otherwise.
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `key` for `ttl` unless it is already recorded.
    fn insert_if_absent(&self, key: &[u8; 32], ttl: Duration) -> StoreCall;
}

impl<T: ReplayStore> ReplayStore for std::sync::Arc<T> {
    fn insert_if_absent(&self, key: &[u8; 32], ttl: Duration) -> StoreCall {
        (**self).insert_if_absent(key, ttl)
    }
}

/// Why a store could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store is full of unexpired keys (the in-memory store's bound).
    Full,
    /// The store could not be reached or answered an error.
    Unreachable,
    /// The store did not answer in time.
    Timeout,
    /// Too many calls to the store are in flight.
    Busy,
}

impl StoreError {
    /// The stable label of this error (snake case; never renamed).
    pub const fn kind(self) -> &'static str {
        match self {
            Self::Full => "store_full",
            Self::Unreachable => "store_unreachable",
            Self::Timeout => "store_timeout",
            Self::Busy => "store_busy",
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "the replay store is full",
            Self::Unreachable => "the replay store is unreachable",
            Self::Timeout => "the replay store did not answer in time",
            Self::Busy => "too many replay store calls are in flight",
        })
    }
}

impl std::error::Error for StoreError {}
