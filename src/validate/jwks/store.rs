//! The key store: the lock-free snapshot in use, its refresh ahead of need, coalesced and rate-limited refetches, the negative `kid` cache.

use crate::error::{BuildError, Unavailable};
use crate::fetch::{Fetcher, FAILURE_BACKOFF};
use crate::validate::alg::AlgorithmSet;
use crate::validate::discovery::{discover, DiscoveryError};
use arc_swap::ArcSwapOption;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
use super::*;

/// The key set in use and when it was fetched.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) keys: KeySet,
    pub(super) fetched_at: Instant,
    /// Increases with every successful load.
    pub(crate) generation: u64,
}

/// Where keys come from.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// Keys given in the configuration; never refreshed.
    Inline,
    /// A JWKS URL.
    JwksUri(String),
    /// The `jwks_uri` of the issuer's metadata.
    Discovery { issuer: String },
}

/// Timing and size limits of the key cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyLimits {
    pub(crate) max_keys: usize,
    pub(crate) unknown_kid_cooldown: Duration,
    pub(crate) max_staleness: Duration,
    pub(crate) refresh_bounds: (Duration, Duration),
}

impl Default for KeyLimits {
    fn default() -> Self {
        Self {
            max_keys: DEFAULT_MAX_KEYS,
            unknown_kid_cooldown: DEFAULT_UNKNOWN_KID_COOLDOWN,
            max_staleness: DEFAULT_MAX_STALENESS,
            refresh_bounds: DEFAULT_REFRESH_BOUNDS,
        }
    }
}

/// What asks for a fetch; decides which rate limit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// No usable key set yet (or it is too stale).
    NoKeys,
    /// A token names a `kid` the key set does not have.
    UnknownKid,
    /// An explicit `ready()`.
    Scheduled,
    /// The background refresher (it waits out the failure backoff like request-triggered fetches).
    Background,
}

/// Why a refresh did not bring new keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshError {
    /// Rate limited: the cooldown or the failure backoff is running.
    RateLimited,
    /// The fetch failed.
    Failed(Unavailable),
}

#[derive(Debug, Default)]
pub(super) struct Attempts {
    /// The last refetch triggered by an unknown `kid` (the cooldown runs from here).
    pub(super) last_kid_refetch: Option<Instant>,
    pub(super) last_failure: Option<Instant>,
    /// Unknown `kid`s seen after a fetch, and when.
    pub(super) negative: HashMap<Box<str>, Instant>,
    pub(super) next_refresh: Option<Duration>,
}

/// The key cache of one issuer.
pub(crate) struct KeyStore {
    pub(super) snapshot: ArcSwapOption<Snapshot>,
    pub(super) source: KeySource,
    pub(super) fetcher: Option<Fetcher>,
    pub(super) allowed: AlgorithmSet,
    pub(super) limits: KeyLimits,
    /// The `jwks_uri` found by discovery.
    pub(super) discovered_jwks_uri: Mutex<Option<String>>,
    pub(super) refresh_lock: tokio::sync::Mutex<()>,
    pub(super) attempts: Mutex<Attempts>,
    /// Bumped whenever a refresh removes a key: verified tokens cached before must be checked again.
    pub(super) removal_epoch: AtomicU64,
    pub(super) fetches: AtomicU64,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("source", &self.source)
            .field("allowed", &self.allowed)
            .field("limits", &self.limits)
            .field("keys", &self.snapshot.load().as_ref().map(|s| s.keys.len()))
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    pub(crate) fn inline(
        document: &[u8],
        allowed: AlgorithmSet,
        limits: KeyLimits,
    ) -> Result<Self, BuildError> {
        let keys = KeySet::parse(document, allowed, limits.max_keys)
            .map_err(|_| BuildError::Invalid("the inline JWKS is not a valid JWK set"))?;
        if keys.len() == 0 {
            return Err(BuildError::Invalid(
                "the inline JWKS has no usable signing key",
            ));
        }
        let store = Self::new(KeySource::Inline, None, allowed, limits);
        store.snapshot.store(Some(Arc::new(Snapshot {
            keys,
            fetched_at: Instant::now(),
            generation: 1,
        })));
        Ok(store)
    }

    pub(crate) fn remote(
        source: KeySource,
        fetcher: Fetcher,
        allowed: AlgorithmSet,
        limits: KeyLimits,
    ) -> Self {
        Self::new(source, Some(fetcher), allowed, limits)
    }

    pub(super) fn new(
        source: KeySource,
        fetcher: Option<Fetcher>,
        allowed: AlgorithmSet,
        limits: KeyLimits,
    ) -> Self {
        Self {
            snapshot: ArcSwapOption::empty(),
            source,
            fetcher,
            allowed,
            limits,
            discovered_jwks_uri: Mutex::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
            attempts: Mutex::new(Attempts::default()),
            removal_epoch: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        }
    }

    /// The current key set, if there is one fresh enough to use. Lock-free, allocation-free.
    pub(crate) fn usable(&self) -> Option<arc_swap::Guard<Option<Arc<Snapshot>>>> {
        let guard = self.snapshot.load();
        let snapshot = guard.as_ref()?;
        if !matches!(self.source, KeySource::Inline)
            && snapshot.fetched_at.elapsed() > self.limits.max_staleness
        {
            return None;
        }
        Some(guard)
    }

    /// Generation of the current snapshot (0 when there is none).
    pub(crate) fn generation(&self) -> u64 {
        self.snapshot.load().as_ref().map_or(0, |s| s.generation)
    }

    pub(crate) fn removal_epoch(&self) -> u64 {
        self.removal_epoch.load(Ordering::Acquire)
    }

    /// Number of JWKS fetches made (for diagnostics and tests).
    pub(crate) fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    pub(super) fn lock_attempts(&self) -> std::sync::MutexGuard<'_, Attempts> {
        self.attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long an unknown `kid` is remembered as missing: the cooldown, no longer. A `kid` named by
    /// junk before its key is published must not keep the real key out past the rate limit (and every
    /// successful fetch forgets all missing `kid`s).
    pub(super) fn negative_ttl(&self) -> Duration {
        self.limits.unknown_kid_cooldown.max(Duration::from_secs(1))
    }

    /// May a token naming this unknown `kid` trigger a refetch now? `false` when the `kid` was recently
    /// found missing (negative cache), or the cooldown or failure backoff is running. This is the cheap,
    /// synchronous answer to a flood of random `kid`s.
    pub(crate) fn may_refetch_for(&self, kid: Option<&str>) -> bool {
        let mut attempts = self.lock_attempts();
        if let Some(kid) = kid {
            let ttl = self.negative_ttl();
            if let Some(seen) = attempts.negative.get(kid) {
                if seen.elapsed() < ttl {
                    return false;
                }
                attempts.negative.remove(kid);
            }
        }
        Self::allowed(
            &attempts,
            Trigger::UnknownKid,
            self.limits.unknown_kid_cooldown,
        )
    }

    /// Remembers that `kid` was missing after a fetch.
    pub(crate) fn remember_missing(&self, kid: &str) {
        let ttl = self.negative_ttl();
        let mut attempts = self.lock_attempts();
        if attempts.negative.len() >= NEGATIVE_CACHE_CAPACITY {
            attempts.negative.retain(|_, seen| seen.elapsed() < ttl);
        }
        if attempts.negative.len() < NEGATIVE_CACHE_CAPACITY {
            attempts.negative.insert(kid.into(), Instant::now());
        }
    }

    pub(super) fn allowed(attempts: &Attempts, trigger: Trigger, cooldown: Duration) -> bool {
        let since =
            |at: Option<Instant>, bound: Duration| at.is_none_or(|at| at.elapsed() >= bound);
        let after_failure = since(attempts.last_failure, FAILURE_BACKOFF);
        match trigger {
            Trigger::Scheduled => true,
            Trigger::NoKeys | Trigger::Background => after_failure,
            Trigger::UnknownKid => after_failure && since(attempts.last_kid_refetch, cooldown),
        }
    }

    /// Fetches the key set unless another caller already did since `seen_generation` (then returns at
    /// once), or the rate limits for `trigger` forbid it. Concurrent callers share one fetch.
    pub(crate) async fn refresh(
        &self,
        seen_generation: u64,
        trigger: Trigger,
    ) -> Result<(), RefreshError> {
        if matches!(self.source, KeySource::Inline) {
            return Ok(());
        }
        let _permit = self.refresh_lock.lock().await;
        if self.generation() != seen_generation {
            return Ok(());
        }
        let started = Instant::now();
        {
            let mut attempts = self.lock_attempts();
            if !Self::allowed(&attempts, trigger, self.limits.unknown_kid_cooldown) {
                return Err(RefreshError::RateLimited);
            }
            if trigger == Trigger::UnknownKid {
                attempts.last_kid_refetch = Some(started);
            }
        }
        match self.fetch().await {
            Ok((keys, max_age)) => {
                let previous = self.snapshot.load_full();
                if previous
                    .as_ref()
                    .is_some_and(|p| p.keys.loses_keys_in(&keys))
                {
                    self.removal_epoch.fetch_add(1, Ordering::AcqRel);
                }
                let generation = previous.as_ref().map_or(0, |p| p.generation) + 1;
                tracing::debug!(keys = keys.len(), generation, "JWKS loaded");
                self.snapshot.store(Some(Arc::new(Snapshot {
                    keys,
                    fetched_at: started,
                    generation,
                })));
                let mut attempts = self.lock_attempts();
                attempts.last_failure = None;
                attempts.negative.clear();
                attempts.next_refresh = Some(self.refresh_interval(max_age));
                Ok(())
            }
            Err(reason) => {
                let mut attempts = self.lock_attempts();
                attempts.last_failure = Some(Instant::now());
                Err(RefreshError::Failed(reason))
            }
        }
    }

    pub(super) fn refresh_interval(&self, max_age: Option<Duration>) -> Duration {
        let (low, high) = self.limits.refresh_bounds;
        max_age
            .unwrap_or(DEFAULT_REFRESH_INTERVAL)
            .clamp(low, high.max(low))
    }

    /// When the background refresher should run next.
    pub(super) fn next_refresh(&self) -> Duration {
        let attempts = self.lock_attempts();
        match (attempts.last_failure, attempts.next_refresh) {
            // After a failure, retry soon (but never faster than the backoff).
            (Some(_), _) => (self.limits.refresh_bounds.0 / 6).max(FAILURE_BACKOFF * 5),
            (None, Some(next)) => next,
            (None, None) => self.refresh_interval(None),
        }
    }

    pub(super) async fn jwks_uri(&self, fetcher: &Fetcher) -> Result<String, Unavailable> {
        match &self.source {
            KeySource::Inline => Err(Unavailable::KeySet),
            KeySource::JwksUri(uri) => Ok(uri.clone()),
            KeySource::Discovery { issuer } => {
                let cached = self
                    .discovered_jwks_uri
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                if let Some(uri) = cached {
                    return Ok(uri);
                }
                let metadata = discover(fetcher, issuer).await.map_err(|error| {
                    match error {
                        DiscoveryError::IssuerMismatch => tracing::error!(
                            issuer = issuer.as_str(),
                            "discovery: the metadata names another issuer; check the configured issuer string"
                        ),
                        DiscoveryError::Unreachable(e) => {
                            tracing::warn!(issuer = issuer.as_str(), error = %e, "discovery failed")
                        }
                    }
                    Unavailable::Discovery
                })?;
                let uri = metadata.jwks_uri.ok_or_else(|| {
                    tracing::error!(
                        issuer = issuer.as_str(),
                        "discovery: the metadata has no jwks_uri"
                    );
                    Unavailable::Discovery
                })?;
                *self
                    .discovered_jwks_uri
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(uri.clone());
                Ok(uri)
            }
        }
    }

    pub(super) async fn fetch(&self) -> Result<(KeySet, Option<Duration>), Unavailable> {
        let fetcher = self.fetcher.as_ref().ok_or(Unavailable::KeySet)?;
        let uri = self.jwks_uri(fetcher).await?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = fetcher.get(&uri).await.map_err(|error| {
            tracing::warn!(error = %error, "JWKS fetch failed");
            Unavailable::KeySet
        })?;
        let keys =
            KeySet::parse(&fetched.body, self.allowed, self.limits.max_keys).map_err(|error| {
                tracing::warn!(error = %error, "JWKS refused");
                Unavailable::KeySet
            })?;
        if keys.len() == 0 {
            // An empty set is treated as a failure: it must not replace good keys (fail closed, 503).
            tracing::warn!("JWKS has no usable signing key; keeping the previous key set");
            return Err(Unavailable::KeySet);
        }
        Ok((keys, fetched.max_age))
    }

    /// Starts the background refresher (when inside a Tokio runtime). It stops when the store is dropped.
    pub(crate) fn spawn_refresher(self: &Arc<Self>) -> Option<tokio::task::AbortHandle> {
        if matches!(self.source, KeySource::Inline) {
            return None;
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let weak: Weak<Self> = Arc::downgrade(self);
        let task = runtime.spawn(async move {
            // Prefetch at start (unless keys were loaded meanwhile, e.g. by `ready()`), then refresh ahead
            // of need.
            let mut delay = Duration::ZERO;
            let mut seen_generation = 0;
            loop {
                tokio::time::sleep(delay).await;
                let Some(store) = weak.upgrade() else { return };
                let _ = store.refresh(seen_generation, Trigger::Background).await;
                seen_generation = store.generation();
                delay = store.next_refresh();
            }
        });
        Some(task.abort_handle())
    }
}
