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

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{BuildError, Unavailable};
use crate::fetch::{FetchError, Fetcher, FAILURE_BACKOFF};
use crate::validate::alg::{Algorithm, AlgorithmSet};
use crate::validate::discovery::{discover, DiscoveryError};

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

/// One verification key, bound to its algorithms.
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<Box<str>>,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) key: PublicKey,
    /// SHA-256 over the key material, to notice removals.
    fingerprint: [u8; 32],
}

/// The public key material of one JWK, decoded from base64 once (per key-set load).
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed SEC1 point `0x04 || x || y`.
    Ec(Vec<u8>),
    Ed25519(Vec<u8>),
}

/// A key ready to verify signatures with, built once per key-set load.
///
/// With the `aws-lc-rs` feature: one aws-lc-rs `ParsedPublicKey` per algorithm the key is bound to, so a
/// verification parses nothing (jsonwebtoken would rebuild an RSA key from `n`/`e` on every call, +16–20%).
/// A key aws-lc-rs refuses to parse stays in the set and fails every verification (`BadSignature`),
/// exactly as it did when the key was parsed at each verification.
/// Without it (the `rust-crypto` build): jsonwebtoken's `DecodingKey` and its RustCrypto backend.
pub(crate) struct PublicKey {
    #[cfg(feature = "aws-lc-rs")]
    parsed: [Option<aws_lc_rs::signature::ParsedPublicKey>; Algorithm::ALL.len()],
    #[cfg(not(feature = "aws-lc-rs"))]
    key: jsonwebtoken::DecodingKey,
}

/// Signatures up to this size are decoded on the stack (RSA up to 4096 bits, every EC and EdDSA signature);
/// larger ones (RSA up to 8192 bits, the largest modulus the verifiers take) on the heap.
#[cfg(feature = "aws-lc-rs")]
const SIGNATURE_STACK_BYTES: usize = 512;

#[cfg(feature = "aws-lc-rs")]
impl PublicKey {
    fn new(material: &Material, algorithms: AlgorithmSet) -> Option<Self> {
        use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
        let mut parsed: [Option<ParsedPublicKey>; Algorithm::ALL.len()] = Default::default();
        for alg in algorithms.iter() {
            parsed[alg as usize] = match (material, alg) {
                (Material::Rsa { n, e }, _) => {
                    let params: &'static sig::RsaParameters = match alg {
                        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                        _ => return None,
                    };
                    RsaPublicKeyComponents { n, e }
                        .to_parsed_public_key(params)
                        .ok()
                }
                (Material::Ec(point), Algorithm::ES256) => {
                    ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).ok()
                }
                (Material::Ec(point), Algorithm::ES384) => {
                    ParsedPublicKey::new(&sig::ECDSA_P384_SHA384_FIXED, point).ok()
                }
                (Material::Ed25519(x), Algorithm::EdDSA) => {
                    ParsedPublicKey::new(&sig::ED25519, x).ok()
                }
                _ => return None,
            };
        }
        Some(Self { parsed })
    }

    /// Does `signature_b64` (base64url, no padding) sign `message` under `alg`? No allocation.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature_b64: &[u8]) -> bool {
        let Some(key) = &self.parsed[alg as usize] else {
            return false;
        };
        let mut stack = [0u8; SIGNATURE_STACK_BYTES];
        let mut heap = Vec::new();
        match crate::validate::jose::decode_b64(signature_b64, &mut stack, &mut heap) {
            Some(signature) => key.verify_sig(message, signature).is_ok(),
            None => false,
        }
    }
}

#[cfg(not(feature = "aws-lc-rs"))]
impl PublicKey {
    fn new(material: &Material, _algorithms: AlgorithmSet) -> Option<Self> {
        use jsonwebtoken::DecodingKey;
        let key = match material {
            Material::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            Material::Ec(point) => {
                let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
                let half = (point.len() - 1) / 2;
                DecodingKey::from_ec_components(&b64(&point[1..1 + half]), &b64(&point[1 + half..]))
                    .ok()?
            }
            Material::Ed25519(x) => {
                DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(x)).ok()?
            }
        };
        Some(Self { key })
    }

    /// Does `signature_b64` (base64url, no padding) sign `message` under `alg`?
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature_b64: &[u8]) -> bool {
        let Ok(signature_b64) = std::str::from_utf8(signature_b64) else {
            return false;
        };
        matches!(
            jsonwebtoken::crypto::verify(signature_b64, message, &self.key, alg.to_jsonwebtoken()),
            Ok(true)
        )
    }
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<Value>,
}

fn b64(value: &Option<String>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value.as_deref()?).ok()
}

impl VerifyKey {
    /// Parses one JWK; `None` when the key must be ignored.
    fn from_jwk(value: &Value, allowed: AlgorithmSet) -> Option<Self> {
        let jwk = RawJwk::deserialize(value).ok()?;
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return None;
        }
        if jwk
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
        {
            return None;
        }
        if jwk.d.is_some() {
            tracing::warn!("a JWK with private key material was published; ignored");
            return None;
        }
        if jwk.kid.as_ref().is_some_and(|kid| kid.len() > MAX_KID_LEN) {
            return None;
        }
        let (family, material, fingerprint_text) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("RSA", _) => {
                let (n_b64, e_b64) = (jwk.n.as_deref()?, jwk.e.as_deref()?);
                // 2048 bits at least (RFC 7518 §3.3); leading zero octets are not counted.
                let n = b64(&jwk.n)?;
                let significant = n.iter().skip_while(|&&b| b == 0).count();
                let e = b64(&jwk.e).filter(|e| !e.is_empty() && e.len() <= 8);
                let (true, Some(e)) = (significant >= 256, e) else {
                    return None;
                };
                (
                    AlgorithmSet::RSA,
                    Material::Rsa { n, e },
                    format!("RSA.{n_b64}.{e_b64}"),
                )
            }
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let (alg, len) = if crv == "P-256" {
                    (Algorithm::ES256, 32)
                } else {
                    (Algorithm::ES384, 48)
                };
                let (x, y) = (b64(&jwk.x)?, b64(&jwk.y)?);
                if x.len() != len || y.len() != len {
                    return None;
                }
                let (x_b64, y_b64) = (jwk.x.as_deref()?, jwk.y.as_deref()?);
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                (
                    AlgorithmSet::only(alg),
                    Material::Ec(point),
                    format!("EC.{crv}.{x_b64}.{y_b64}"),
                )
            }
            ("OKP", Some("Ed25519")) => {
                let x = b64(&jwk.x).filter(|x| x.len() == 32)?;
                let x_b64 = jwk.x.as_deref()?;
                (
                    AlgorithmSet::only(Algorithm::EdDSA),
                    Material::Ed25519(x),
                    format!("OKP.Ed25519.{x_b64}"),
                )
            }
            _ => return None,
        };
        let bound = match jwk.alg.as_deref() {
            // A JWK `alg` binds the key to exactly that algorithm; it must fit the key type.
            Some(name) => {
                let alg = Algorithm::from_name(name)?;
                if !family.contains(alg) {
                    return None;
                }
                AlgorithmSet::only(alg)
            }
            None => family,
        };
        let algorithms = bound.intersection(allowed);
        if algorithms.is_empty() {
            return None;
        }
        let key = PublicKey::new(&material, algorithms)?;
        let kid = jwk.kid.map(String::into_boxed_str);
        let mut hasher = Sha256::new();
        hasher.update(kid.as_deref().unwrap_or("").as_bytes());
        hasher.update([0]);
        hasher.update(fingerprint_text.as_bytes());
        Some(Self {
            kid,
            algorithms,
            key,
            fingerprint: hasher.finalize().into(),
        })
    }
}

/// Why no key could be chosen for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyMiss {
    /// No key has this `kid` (or, without `kid`, no key fits the algorithm).
    NotFound,
    /// The key exists but is not bound to the token's algorithm.
    WrongAlgorithm,
    /// No `kid`, and more than one key fits.
    Ambiguous,
}

/// A parsed key set.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: Vec<VerifyKey>,
    by_kid: HashMap<Box<str>, Vec<usize>>,
}

impl KeySet {
    /// Parses a JWKS document. Fails when the document is not a JWKS or has too many keys; individual
    /// unusable keys are skipped.
    pub(crate) fn parse(
        document: &[u8],
        allowed: AlgorithmSet,
        max_keys: usize,
    ) -> Result<Self, FetchError> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Value>,
        }
        let jwks: Jwks =
            serde_json::from_slice(document).map_err(|_| FetchError::InvalidDocument)?;
        if jwks.keys.len() > max_keys {
            return Err(FetchError::TooLarge);
        }
        Ok(Self::from_keys(
            jwks.keys
                .iter()
                .filter_map(|jwk| VerifyKey::from_jwk(jwk, allowed))
                .collect(),
        ))
    }

    fn from_keys(keys: Vec<VerifyKey>) -> Self {
        let mut by_kid: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            if let Some(kid) = &key.kid {
                by_kid.entry(kid.clone()).or_default().push(i);
            }
        }
        Self { keys, by_kid }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Chooses the key for a token: by `kid` if present; without `kid`, the single key bound to `alg`.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerifyKey, KeyMiss> {
        match kid {
            Some(kid) => {
                let candidates = self.by_kid.get(kid).ok_or(KeyMiss::NotFound)?;
                candidates
                    .iter()
                    .map(|&i| &self.keys[i])
                    .find(|key| key.algorithms.contains(alg))
                    .ok_or(KeyMiss::WrongAlgorithm)
            }
            None => {
                let mut fitting = self.keys.iter().filter(|key| key.algorithms.contains(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(key),
                    (None, _) => Err(KeyMiss::NotFound),
                    (Some(_), Some(_)) => Err(KeyMiss::Ambiguous),
                }
            }
        }
    }

    /// Did any key of `self` disappear from `next`?
    fn loses_keys_in(&self, next: &KeySet) -> bool {
        self.keys.iter().any(|old| {
            !next
                .keys
                .iter()
                .any(|new| new.fingerprint == old.fingerprint)
        })
    }
}

/// The key set in use and when it was fetched.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) keys: KeySet,
    fetched_at: Instant,
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
struct Attempts {
    /// The last refetch triggered by an unknown `kid` (the cooldown runs from here).
    last_kid_refetch: Option<Instant>,
    last_failure: Option<Instant>,
    /// Unknown `kid`s seen after a fetch, and when.
    negative: HashMap<Box<str>, Instant>,
    next_refresh: Option<Duration>,
}

/// The key cache of one issuer.
pub(crate) struct KeyStore {
    snapshot: ArcSwapOption<Snapshot>,
    source: KeySource,
    fetcher: Option<Fetcher>,
    allowed: AlgorithmSet,
    limits: KeyLimits,
    /// The `jwks_uri` found by discovery.
    discovered_jwks_uri: Mutex<Option<String>>,
    refresh_lock: tokio::sync::Mutex<()>,
    attempts: Mutex<Attempts>,
    /// Bumped whenever a refresh removes a key: verified tokens cached before must be checked again.
    removal_epoch: AtomicU64,
    fetches: AtomicU64,
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

    fn new(
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

    fn lock_attempts(&self) -> std::sync::MutexGuard<'_, Attempts> {
        self.attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long an unknown `kid` is remembered as missing: the cooldown, no longer. A `kid` named by
    /// junk before its key is published must not keep the real key out past the rate limit (and every
    /// successful fetch forgets all missing `kid`s).
    fn negative_ttl(&self) -> Duration {
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

    fn allowed(attempts: &Attempts, trigger: Trigger, cooldown: Duration) -> bool {
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

    fn refresh_interval(&self, max_age: Option<Duration>) -> Duration {
        let (low, high) = self.limits.refresh_bounds;
        max_age
            .unwrap_or(DEFAULT_REFRESH_INTERVAL)
            .clamp(low, high.max(low))
    }

    /// When the background refresher should run next.
    fn next_refresh(&self) -> Duration {
        let attempts = self.lock_attempts();
        match (attempts.last_failure, attempts.next_refresh) {
            // After a failure, retry soon (but never faster than the backoff).
            (Some(_), _) => (self.limits.refresh_bounds.0 / 6).max(FAILURE_BACKOFF * 5),
            (None, Some(next)) => next,
            (None, None) => self.refresh_interval(None),
        }
    }

    async fn jwks_uri(&self, fetcher: &Fetcher) -> Result<String, Unavailable> {
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

    async fn fetch(&self) -> Result<(KeySet, Option<Duration>), Unavailable> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa_n() -> String {
        // 2048-bit modulus shape (the value need not be a real key for parsing).
        let mut n = vec![0xC1u8; 256];
        n[255] = 0x01;
        URL_SAFE_NO_PAD.encode(n)
    }

    fn parse(keys: Value) -> KeySet {
        KeySet::parse(
            json!({ "keys": keys }).to_string().as_bytes(),
            AlgorithmSet::all(),
            20,
        )
        .unwrap()
    }

    fn ec(crv: &str, len: usize) -> Value {
        json!({"kty":"EC","crv":crv,"x":URL_SAFE_NO_PAD.encode(vec![1u8; len]),"y":URL_SAFE_NO_PAD.encode(vec![2u8; len])})
    }

    #[test]
    fn keys_are_bound_to_their_algorithms() {
        let mut p256 = ec("P-256", 32);
        p256["kid"] = json!("ec");
        let set = parse(json!([
            {"kty":"RSA","kid":"rsa","n":rsa_n(),"e":"AQAB"},
            {"kty":"RSA","kid":"rsa-ps","alg":"PS256","n":rsa_n(),"e":"AQAB"},
            p256,
        ]));
        assert_eq!(set.len(), 3);
        assert!(set.select(Some("rsa"), Algorithm::RS256).is_ok());
        assert!(set.select(Some("rsa"), Algorithm::PS512).is_ok());
        assert_eq!(
            set.select(Some("rsa"), Algorithm::ES256).unwrap_err(),
            KeyMiss::WrongAlgorithm
        );
        assert_eq!(
            set.select(Some("rsa-ps"), Algorithm::RS256).unwrap_err(),
            KeyMiss::WrongAlgorithm
        );
        assert!(set.select(Some("ec"), Algorithm::ES256).is_ok());
        assert_eq!(
            set.select(Some("ec"), Algorithm::ES384).unwrap_err(),
            KeyMiss::WrongAlgorithm
        );
        assert_eq!(
            set.select(Some("nope"), Algorithm::RS256).unwrap_err(),
            KeyMiss::NotFound
        );
        // Without kid: ES256 and RS256 have one candidate each, PS256 has two.
        assert!(set.select(None, Algorithm::ES256).is_ok());
        assert_eq!(
            set.select(None, Algorithm::RS256).unwrap().kid.as_deref(),
            Some("rsa")
        );
        assert_eq!(
            set.select(None, Algorithm::PS256).unwrap_err(),
            KeyMiss::Ambiguous
        );
        assert_eq!(
            set.select(None, Algorithm::EdDSA).unwrap_err(),
            KeyMiss::NotFound
        );
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let set = parse(json!([
            {"kty":"oct","k":"c2VjcmV0","alg":"HS256"},
            {"kty":"RSA","use":"enc","n":rsa_n(),"e":"AQAB"},
            {"kty":"RSA","key_ops":["encrypt"],"n":rsa_n(),"e":"AQAB"},
            {"kty":"RSA","n":rsa_n(),"e":"AQAB","d":"private"},
            {"kty":"RSA","n":URL_SAFE_NO_PAD.encode([0xC1u8; 128]),"e":"AQAB"},
            {"kty":"RSA","alg":"ES256","n":rsa_n(),"e":"AQAB"},
            {"kty":"RSA","alg":"HS256","n":rsa_n(),"e":"AQAB"},
            {"kty":"RSA","alg":"none","n":rsa_n(),"e":"AQAB"},
            ec("P-256", 31),
            ec("P-521", 66),
            {"kty":"OKP","crv":"X25519","x":URL_SAFE_NO_PAD.encode([1u8; 32])},
            {"kty":"RSA","kid":"k".repeat(MAX_KID_LEN + 1),"n":rsa_n(),"e":"AQAB"},
            "not an object",
        ]));
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn allow_list_restricts_keys() {
        let doc = json!({"keys":[{"kty":"RSA","kid":"r","n":rsa_n(),"e":"AQAB"}]}).to_string();
        let only_ps =
            KeySet::parse(doc.as_bytes(), AlgorithmSet::only(Algorithm::PS256), 10).unwrap();
        assert!(only_ps.select(Some("r"), Algorithm::PS256).is_ok());
        assert!(only_ps.select(Some("r"), Algorithm::RS256).is_err());
        let no_rsa =
            KeySet::parse(doc.as_bytes(), AlgorithmSet::only(Algorithm::ES256), 10).unwrap();
        assert_eq!(no_rsa.len(), 0);
    }

    #[test]
    fn too_many_keys_or_not_a_jwks() {
        let many: Vec<Value> = (0..11).map(|_| ec("P-256", 32)).collect();
        let doc = json!({ "keys": many }).to_string();
        assert_eq!(
            KeySet::parse(doc.as_bytes(), AlgorithmSet::all(), 10).unwrap_err(),
            FetchError::TooLarge
        );
        assert_eq!(
            KeySet::parse(b"{\"nokeys\":1}", AlgorithmSet::all(), 10).unwrap_err(),
            FetchError::InvalidDocument
        );
    }

    #[test]
    fn removal_is_noticed() {
        let a = parse(json!([{"kty":"RSA","kid":"a","n":rsa_n(),"e":"AQAB"}, ec("P-256", 32)]));
        let b = parse(json!([ec("P-256", 32)]));
        assert!(a.loses_keys_in(&b));
        assert!(!b.loses_keys_in(&a));
    }
}
