//! JWK sets: parsing keys (each bound to its algorithms), and the lock-free key cache that fetches, refreshes
//! and rate-limits refetches.
//!
//! - Each key is bound to the algorithms it may verify: its JWK `alg` when present, else what its `kty`
//!   and curve allow (RSA → RS*/PS*, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA), intersected with the
//!   validator's allow-list. HMAC (`oct`) keys, keys with `use: enc`, keys whose `key_ops` exclude
//!   `verify`, keys carrying private material, RSA keys under 2048 bits and malformed keys are ignored.
//! - The current key set is an `arc-swap` snapshot: a request reads it without a lock or an allocation.
//! - Refetches are coalesced (one in flight, every waiter shares its result), an unknown `kid` can trigger
//!   at most one refetch per cooldown, and unknown `kid`s are remembered (negative cache) for the cooldown
//!   or until the next successful fetch, whichever comes first.
//! - A failed fetch never replaces a good key set; a key set older than the staleness bound is no longer
//!   used (fail closed, 503).

use std::time::Duration;

mod key;
mod set;
mod store;
#[cfg(test)]
mod tests;

pub(crate) use key::*;
pub(crate) use set::*;
pub(crate) use store::*;

/// Default largest number of keys accepted from one JWKS.
pub const DEFAULT_MAX_KEYS: usize = 100;
/// Default cooldown between refetches triggered by an unknown `kid`.
pub const DEFAULT_UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(30);
/// Default bound on how long a key set may be used after the last successful fetch.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(24 * 3600);
/// Default bounds of the background refresh interval (the JWKS `Cache-Control: max-age`, clamped).
pub const DEFAULT_REFRESH_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(3600));
/// Refresh interval when the JWKS response has no `max-age`.
const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Largest `kid` looked up.
pub(crate) const MAX_KID_LEN: usize = 256;
/// Largest number of unknown `kid`s remembered.
const NEGATIVE_CACHE_CAPACITY: usize = 1024;
