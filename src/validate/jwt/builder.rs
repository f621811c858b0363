//! `JwtValidatorBuilder`: every setting of a `JwtValidator` with its default, checked once by `build()`.

use crate::cache::{TokenCache, DEFAULT_TOKEN_CACHE_CAPACITY, DEFAULT_TOKEN_CACHE_TTL};
use crate::error::BuildError;
use crate::fetch::{Fetcher, DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES};
use crate::resource::check_url;
use crate::validate::alg::{Algorithm, AlgorithmSet};
use crate::validate::jwks::{KeyLimits, KeySource, KeyStore};
use crate::validate::DEFAULT_LEEWAY;
use arc_swap::ArcSwapOption;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[allow(unused_imports)]
use super::*;

/// Builds a [`JwtValidator`].
#[derive(Debug, Clone)]
pub struct JwtValidatorBuilder {
    pub(super) issuer: String,
    pub(super) audiences: Vec<String>,
    pub(super) algorithms: AlgorithmSet,
    pub(super) leeway: Duration,
    pub(super) typ: TypPolicy,
    pub(super) scp_claim: bool,
    pub(super) source: Option<KeySource>,
    pub(super) inline_jwks: Option<Vec<u8>>,
    pub(super) limits: KeyLimits,
    pub(super) fetch_timeout: Duration,
    pub(super) max_response_bytes: usize,
    pub(super) cache: Option<(usize, Duration)>,
}

impl JwtValidatorBuilder {
    pub(super) fn new(issuer: String) -> Self {
        Self {
            issuer,
            audiences: Vec::new(),
            algorithms: AlgorithmSet::all(),
            leeway: DEFAULT_LEEWAY,
            typ: TypPolicy::AccessTokenOnly,
            scp_claim: false,
            source: None,
            inline_jwks: None,
            limits: KeyLimits::default(),
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            cache: Some((DEFAULT_TOKEN_CACHE_CAPACITY, DEFAULT_TOKEN_CACHE_TTL)),
        }
    }

    /// Accepts tokens whose `aud` names `audience` (repeatable: explicit aliases only, compared exactly).
    /// Default: at each [`BearerAuthLayer`](crate::BearerAuthLayer) the validator guards, that layer's own
    /// resource. With explicit audiences, every layer the validator guards must have its resource among
    /// them (its `build()` fails otherwise), and each of these audiences is accepted at each such layer.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The algorithm allow-list (default: RS256/384/512, PS256/384/512, ES256, ES384, EdDSA).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 60 s; at most [`MAX_LEEWAY`](crate::validate::MAX_LEEWAY)).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Also accept `typ: JWT` (or no `typ`) — for identity providers that do not type their access tokens
    /// yet, such as Keycloak. RFC 9068 §4 requires `at+jwt`; with this opt-out, ID tokens are still kept out
    /// by the audience check (their `aud` is a client id, not this resource). Default: off.
    pub fn allow_jwt_typ(mut self, allow: bool) -> Self {
        self.typ = if allow {
            TypPolicy::AlsoJwt
        } else {
            TypPolicy::AccessTokenOnly
        };
        self
    }

    /// Also read scopes from `scp` (array or space-separated string), as Okta and Entra ID send them.
    pub fn scp_claim(mut self, enabled: bool) -> Self {
        self.scp_claim = enabled;
        self
    }

    /// Fetch keys from this JWKS URL instead of discovering it.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.source = Some(KeySource::JwksUri(uri.into()));
        self
    }

    /// Use this JWKS document (never refreshed) instead of fetching keys.
    pub fn jwks(mut self, jwks: &serde_json::Value) -> Self {
        self.inline_jwks = Some(jwks.to_string().into_bytes());
        self.source = Some(KeySource::Inline);
        self
    }

    /// Timeout of each remote read (default 5 s; at most 10 min).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Largest metadata or JWKS document accepted (default 256 KiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Largest number of keys accepted in a JWKS (default 100).
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.limits.max_keys = keys;
        self
    }

    /// Least time between two refetches triggered by unknown `kid`s (default 30 s).
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.limits.unknown_kid_cooldown = cooldown;
        self
    }

    /// How long the last good key set keeps being used while the JWKS cannot be fetched (default 24 h; at
    /// least 1 s). Past that, requests get 503 until a fetch succeeds.
    pub fn max_staleness(mut self, staleness: Duration) -> Self {
        self.limits.max_staleness = staleness;
        self
    }

    /// Bounds of the background refresh interval, which follows the JWKS `Cache-Control: max-age`
    /// (default 60 s to 1 h; 5 min when there is no `max-age`).
    pub fn refresh_interval_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.limits.refresh_bounds = (min, max);
        self
    }

    /// Verified-token cache size and longest trust period (default 10 000 tokens, 5 min).
    pub fn token_cache(mut self, capacity: usize, ttl: Duration) -> Self {
        self.cache = Some((capacity, ttl));
        self
    }

    /// Turns the verified-token cache off: every request verifies the signature.
    pub fn no_token_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// Checks the configuration and builds the validator. Inside a Tokio runtime, the keys start loading
    /// in the background at once and are refreshed ahead of need; use [`JwtValidator::ready`] to wait.
    /// No network request is made by `build` itself.
    pub fn build(self) -> Result<JwtValidator, BuildError> {
        ensure_crypto_provider();
        check_url(&self.issuer, "the issuer", false)
            .map_err(BuildError::InvalidAuthorizationServer)?;
        for audience in &self.audiences {
            if audience.is_empty() {
                return Err(BuildError::Invalid("an audience must not be empty"));
            }
        }
        if self.algorithms.is_empty() {
            return Err(BuildError::Invalid("the algorithm allow-list is empty"));
        }
        if self.limits.max_keys == 0 || self.max_response_bytes == 0 {
            return Err(BuildError::Invalid("limits must be positive"));
        }
        if self.leeway > crate::validate::MAX_LEEWAY {
            return Err(BuildError::Invalid("the leeway is above one hour"));
        }
        let mut limits = self.limits;
        // A key set stale at once would make every request fetch it again.
        limits.max_staleness = limits.max_staleness.max(Duration::from_secs(1));
        let keys = match self.source.unwrap_or(KeySource::Discovery {
            issuer: self.issuer.clone(),
        }) {
            KeySource::Inline => {
                let document = self.inline_jwks.unwrap_or_default();
                KeyStore::inline(&document, self.algorithms, limits)?
            }
            source => {
                if let KeySource::JwksUri(uri) = &source {
                    check_url(uri, "the JWKS URL", true).map_err(|_| {
                        BuildError::Invalid("the JWKS URL must be https (http only on loopback)")
                    })?;
                }
                let fetcher = Fetcher::new(self.fetch_timeout, self.max_response_bytes)?;
                KeyStore::remote(source, fetcher, self.algorithms, limits)
            }
        };
        let keys = Arc::new(keys);
        let refresher = OnceLock::new();
        if let Some(task) = keys.spawn_refresher() {
            let _ = refresher.set(task);
        }
        Ok(JwtValidator {
            inner: Arc::new(Inner {
                issuer: Arc::from(self.issuer),
                audiences: self.audiences,
                algorithms: self.algorithms,
                leeway: self.leeway.as_secs(),
                typ: self.typ,
                scp_claim: self.scp_claim,
                keys,
                cache: self
                    .cache
                    .map(|(capacity, ttl)| TokenCache::new(capacity, ttl)),
                header_memo: ArcSwapOption::empty(),
                refresher,
            }),
        })
    }
}
