//! [`IntrospectionValidator`]: opaque access tokens, checked with the authorization server's RFC 7662
//! introspection endpoint (feature `introspection`).
//!
//! - The call: `POST` `application/x-www-form-urlencoded` with `token` and `token_type_hint=access_token`,
//!   authenticated as `client_secret_basic` (id and secret form-urlencoded before base64, RFC 6749 §2.3.1),
//!   `client_secret_post`, or a bearer credential. The endpoint is configured, or discovered from the issuer's
//!   RFC 8414 / OpenID metadata (`introspection_endpoint`, with the metadata's `issuer` checked for identity;
//!   after a failed discovery, none is tried again for a second).
//! - What is sent: only tokens that are not JWTs. A JWT is refused locally (`invalid_token`, no call) unless
//!   [`introspect_jwts`](IntrospectionValidatorBuilder::introspect_jwts) is set: behind a JWT validator, a
//!   JWT that reaches introspection is one of an issuer nobody trusts, and sending it would cost a remote
//!   call per request for nothing.
//! - The answer: only JSON `"active": true` is active (a string `"true"`, a missing member, anything else is
//!   inactive, and then nothing else is read); `exp`/`nbf` are checked locally with the leeway; `aud` must
//!   name the asking layer's resource (an absent `aud` is refused unless
//!   [`allow_missing_audience`](IntrospectionValidatorBuilder::allow_missing_audience) is set); `iss`, when
//!   present, must be the configured issuer; `token_type`, when present, must be `Bearer`; a `cnf` member
//!   (a sender-constrained token) is refused; `scope` is parsed.
//! - Statuses (see the table in the source's `answer` module): a 4xx with an OAuth error body is a
//!   definite refusal of the token (`invalid_token`, cached as negative); failures of the authorization
//!   server (connect error, timeout, 5xx, 401/403 or `invalid_client` for our own credentials, non-JSON,
//!   oversize) are *infrastructure* failures: 503 with `Retry-After`, never `invalid_token`, never a word of
//!   the server's answer; the request is never let through.
//! - A cache keyed by [`ValidationContext::cache_key`]: active answers live min(TTL (60 s), `exp` − now),
//!   refusals a short negative TTL (5 s, can be 0), failures are never cached.
//! - Bounded calls: concurrent requests with the same token share one call; distinct tokens share
//!   [`max_concurrent_calls`](IntrospectionValidatorBuilder::max_concurrent_calls) slots behind a bounded
//!   queue, and beyond it get 503.
//!
//! ```no_run
//! use bearer_guard::{ClientAuth, IntrospectionValidator};
//!
//! # fn main() -> Result<(), bearer_guard::BuildError> {
//! let validator = IntrospectionValidator::builder()
//!     .issuer("https://auth.example.com")          // discovery of introspection_endpoint, and the `iss` check
//!     .client_auth(ClientAuth::basic("resource-server", "s3cret"))
//!     .build()?;
//! # let _ = validator; Ok(()) }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::cache::{unix_now_ms, TokenCache, DEFAULT_TOKEN_CACHE_CAPACITY};
use crate::error::{BuildError, InvalidToken, Unavailable, ValidationError};
use crate::fetch::{Fetcher, DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, FAILURE_BACKOFF};
use crate::resource::check_url;
use crate::token::BearerToken;
use crate::validate::discovery::discover;
use crate::validate::shape::looks_like_jwt;
use crate::validate::{TokenValidator, Validation, ValidationContext, ValidationResult};

mod answer;
mod auth;
mod inflight;

use answer::{classify, Judged, Outcome, Rules};
pub use auth::ClientAuth;
use auth::{form_encode, AuthKind};
use inflight::{Inflight, Limiter};
pub use inflight::{
    DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_MAX_QUEUED_CALLS, DEFAULT_MAX_QUEUE_WAIT,
};

/// Default time an active introspection answer is reused.
pub const DEFAULT_POSITIVE_TTL: Duration = Duration::from_secs(60);
/// Default time an inactive answer is reused.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// Where the endpoint comes from.
enum Endpoint {
    Fixed(String),
    Discovered {
        cell: tokio::sync::OnceCell<String>,
        /// Unix milliseconds of the last failed discovery (0: none); none is tried again within
        /// [`FAILURE_BACKOFF`].
        failed_at_ms: AtomicU64,
    },
}

struct Inner {
    endpoint: Endpoint,
    issuer: Option<String>,
    auth: Option<ClientAuth>,
    audiences: Vec<String>,
    allow_missing_audience: bool,
    introspect_jwts: bool,
    leeway: u64,
    fetcher: Fetcher,
    cache: Option<TokenCache<Outcome>>,
    negative_ttl: Duration,
    inflight: Inflight,
    limiter: Limiter,
    calls: AtomicU64,
}

/// Validates opaque tokens with RFC 7662 introspection. Cloning is cheap (shared state and connection pool).
#[derive(Clone)]
pub struct IntrospectionValidator {
    inner: Arc<Inner>,
}

impl fmt::Debug for IntrospectionValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = match &self.inner.endpoint {
            Endpoint::Fixed(url) => Some(url.as_str()),
            Endpoint::Discovered { cell, .. } => cell.get().map(String::as_str),
        };
        f.debug_struct("IntrospectionValidator")
            .field("endpoint", &endpoint)
            .field("issuer", &self.inner.issuer)
            .field("auth", &self.inner.auth)
            .field("audiences", &self.inner.audiences)
            .field("allow_missing_audience", &self.inner.allow_missing_audience)
            .field("introspect_jwts", &self.inner.introspect_jwts)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl IntrospectionValidator {
    /// Starts a builder.
    pub fn builder() -> IntrospectionValidatorBuilder {
        IntrospectionValidatorBuilder::default()
    }

    /// How many introspection calls were made (diagnostics and tests).
    pub fn introspection_calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn rules(&self) -> Rules<'_> {
        Rules {
            issuer: self.issuer.as_deref(),
            audiences: &self.audiences,
            allow_missing_audience: self.allow_missing_audience,
            leeway: self.leeway,
        }
    }

    async fn endpoint(&self) -> Result<&str, ValidationError> {
        let (cell, failed_at_ms) = match &self.endpoint {
            Endpoint::Fixed(url) => return Ok(url),
            Endpoint::Discovered { cell, failed_at_ms } => (cell, failed_at_ms),
        };
        let unavailable = || ValidationError::unavailable(Unavailable::Discovery);
        let backoff_ms = FAILURE_BACKOFF.as_millis() as u64;
        let backing_off = || {
            let failed = failed_at_ms.load(Ordering::Acquire);
            failed != 0 && unix_now_ms().saturating_sub(failed) < backoff_ms
        };
        if let Some(url) = cell.get() {
            return Ok(url);
        }
        if backing_off() {
            return Err(unavailable());
        }
        let issuer = self.issuer.as_deref().unwrap_or_default();
        cell.get_or_try_init(|| async {
            // Callers queued behind a failed attempt come here one by one: within the backoff they fail
            // without asking the authorization server again.
            if backing_off() {
                return Err(unavailable());
            }
            let found = async {
                let metadata = discover(&self.fetcher, issuer).await.map_err(|error| {
                    tracing::warn!(issuer, %error, "introspection endpoint discovery failed");
                })?;
                let url = metadata.introspection_endpoint.ok_or_else(|| {
                    tracing::error!(
                        issuer,
                        "the authorization server metadata has no introspection_endpoint"
                    );
                })?;
                check_url(&url, "introspection_endpoint", true).map_err(|_| {
                    tracing::error!(issuer, "the discovered introspection_endpoint is not https");
                })?;
                Ok::<_, ()>(url)
            }
            .await;
            found.map_err(|()| {
                failed_at_ms.store(unix_now_ms().max(1), Ordering::Release);
                unavailable()
            })
        })
        .await
        .map(String::as_str)
    }

    /// One introspection call, in a call slot. `Ok(Err(_))`: a definite refusal of the token;
    /// `Err(ValidationError::Unavailable)`: every failure of the server.
    async fn call(
        &self,
        token: &BearerToken,
    ) -> Result<Result<Map<String, Value>, InvalidToken>, ValidationError> {
        let endpoint = self.endpoint().await?;
        let _slot = self.limiter.acquire().await.map_err(|_busy| {
            tracing::warn!("introspection: every call slot is busy and the queue is full");
            ValidationError::unavailable(Unavailable::Introspection)
        })?;
        let mut form = format!(
            "token={}&token_type_hint=access_token",
            form_encode(token.as_str())
        );
        let mut header = None;
        match self.auth.as_ref().map(|a| &a.0) {
            Some(AuthKind::Post(fields)) => form.push_str(fields),
            Some(AuthKind::Header(value)) => header = Some(value),
            None => {}
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let answer = self
            .fetcher
            .post_form(endpoint, form, header)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "introspection failed");
                ValidationError::unavailable(Unavailable::Introspection)
            })?;
        classify(answer)
    }

    /// Introspects, judges and caches (definite answers only; failures are never cached).
    async fn introspect(
        &self,
        token: &BearerToken,
        context: &ValidationContext,
        key: [u8; 32],
    ) -> ValidationResult {
        let judged: Judged = match self.call(token).await? {
            Ok(response) => self.rules().judge(response, context),
            Err(refused) => Err(refused.into()),
        };
        if let Some(cache) = &self.cache {
            let now = unix_now_ms();
            match &judged {
                Ok(access) => {
                    let exp = access
                        .expires_at()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(u64::MAX, |d| d.as_secs());
                    cache.insert(key, Ok(access.clone()), exp, now, 0);
                }
                Err(refusal) => {
                    if let Some(reason) = refusal.reason() {
                        let outcome: Outcome = Err(reason);
                        cache.insert_for(key, outcome, u64::MAX, self.negative_ttl, now, 0)
                    }
                }
            }
        }
        judged
    }

    fn cached(&self, key: &[u8; 32]) -> Option<ValidationResult> {
        let cache = self.cache.as_ref()?;
        cache
            .get(key, unix_now_ms(), 0)
            .map(|outcome| outcome.map_err(ValidationError::from))
    }
}

impl TokenValidator for IntrospectionValidator {
    fn validate(&self, token: &BearerToken, context: &ValidationContext) -> Validation {
        if !self.inner.introspect_jwts && looks_like_jwt(token.as_bytes()) {
            return Validation::ready(Err(InvalidToken::NotApplicable.into()));
        }
        let key = context.cache_key(token);
        if let Some(result) = self.inner.cached(&key) {
            return Validation::ready(result);
        }
        let inner = self.inner.clone();
        let (token, context) = (token.clone(), context.clone());
        Validation::pending(async move {
            // Same token, concurrent requests: one call, shared by all (a cancelled caller hands over).
            inner
                .inflight
                .share(
                    key,
                    || inner.cached(&key),
                    || inner.introspect(&token, &context, key),
                )
                .await
        })
    }

    fn check_context(&self, context: &ValidationContext) -> Result<(), BuildError> {
        context.check_audiences(&self.inner.audiences)
    }

    fn trusted_issuers(&self) -> Option<Vec<String>> {
        self.inner.issuer.clone().map(|issuer| vec![issuer])
    }

    /// Responsible for every token that is not a JWT (and for JWTs too with
    /// [`introspect_jwts`](IntrospectionValidatorBuilder::introspect_jwts)).
    fn is_responsible_for(&self, token: &BearerToken, _context: &ValidationContext) -> bool {
        self.inner.introspect_jwts || !looks_like_jwt(token.as_bytes())
    }
}

/// Builds an [`IntrospectionValidator`].
#[derive(Debug, Clone)]
pub struct IntrospectionValidatorBuilder {
    endpoint: Option<String>,
    issuer: Option<String>,
    auth: Option<ClientAuth>,
    audiences: Vec<String>,
    allow_missing_audience: bool,
    introspect_jwts: bool,
    leeway: Duration,
    timeout: Duration,
    max_concurrent_calls: usize,
    max_queued_calls: usize,
    max_queue_wait: Duration,
    max_response_bytes: usize,
    cache: Option<(usize, Duration)>,
    negative_ttl: Duration,
}

impl Default for IntrospectionValidatorBuilder {
    fn default() -> Self {
        Self {
            endpoint: None,
            issuer: None,
            auth: None,
            audiences: Vec::new(),
            allow_missing_audience: false,
            introspect_jwts: false,
            leeway: crate::validate::DEFAULT_LEEWAY,
            timeout: DEFAULT_FETCH_TIMEOUT,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            max_queued_calls: DEFAULT_MAX_QUEUED_CALLS,
            max_queue_wait: DEFAULT_MAX_QUEUE_WAIT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            cache: Some((DEFAULT_TOKEN_CACHE_CAPACITY, DEFAULT_POSITIVE_TTL)),
            negative_ttl: DEFAULT_NEGATIVE_TTL,
        }
    }
}

impl IntrospectionValidatorBuilder {
    /// The introspection endpoint URL (https, or http on loopback). Without it, it is discovered from
    /// [`issuer`](Self::issuer).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The authorization server's issuer: the `iss` an introspection response may carry, and where the
    /// endpoint is discovered when none is configured.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// How this resource server authenticates to the endpoint (RFC 7662 §2.1 requires some).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Accepts tokens whose `aud` names `audience` (repeatable). Default: at each layer the validator
    /// guards, that layer's resource; with explicit audiences, each layer's resource must be among them.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accept active tokens whose introspection response has no `aud` at all. Only set this when the
    /// authorization server itself restricts introspection answers to tokens issued for this resource
    /// (MCP requires every token to be audience-checked). Default: refused.
    pub fn allow_missing_audience(mut self, allow: bool) -> Self {
        self.allow_missing_audience = allow;
        self
    }

    /// Also introspect tokens that are JWTs (default: off, a JWT is refused without a call). Turn it on
    /// when the authorization server issues JWT access tokens that you want checked remotely (e.g. for
    /// revocation) rather than by a [`JwtValidator`](crate::JwtValidator), and the server introspects them.
    pub fn introspect_jwts(mut self, introspect: bool) -> Self {
        self.introspect_jwts = introspect;
        self
    }

    /// How many introspection calls may be in flight at once (default
    /// [`DEFAULT_MAX_CONCURRENT_CALLS`]); requests with the same token share one call and one slot.
    pub fn max_concurrent_calls(mut self, calls: usize) -> Self {
        self.max_concurrent_calls = calls;
        self
    }

    /// How many requests may wait for a call slot (default [`DEFAULT_MAX_QUEUED_CALLS`]); beyond that, a
    /// request gets 503 with `Retry-After` at once. Zero: no queue.
    pub fn max_queued_calls(mut self, calls: usize) -> Self {
        self.max_queued_calls = calls;
        self
    }

    /// How long a request waits for a call slot before it gets 503 (default [`DEFAULT_MAX_QUEUE_WAIT`]).
    pub fn max_queue_wait(mut self, wait: Duration) -> Self {
        self.max_queue_wait = wait;
        self
    }

    /// Clock leeway for `exp` and `nbf` (default 60 s; at most [`MAX_LEEWAY`](crate::validate::MAX_LEEWAY)).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Timeout of each call (default 5 s; at most 10 min).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest response accepted (default 256 KiB).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Cache size and how long an active answer is reused (default 10 000 tokens, 60 s; never past `exp`).
    pub fn cache(mut self, capacity: usize, ttl: Duration) -> Self {
        self.cache = Some((capacity, ttl));
        self
    }

    /// How long an inactive answer is reused (default 5 s; zero caches none).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// No cache: every request is introspected (concurrent ones still share a call).
    pub fn no_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// Checks the configuration and builds. No network request is made here.
    pub fn build(self) -> Result<IntrospectionValidator, BuildError> {
        let endpoint = match (&self.endpoint, &self.issuer) {
            (Some(url), _) => {
                check_url(url, "the introspection endpoint", true).map_err(|_| {
                    BuildError::Invalid(
                        "the introspection endpoint must be https (http only on loopback)",
                    )
                })?;
                Endpoint::Fixed(url.clone())
            }
            (None, Some(_)) => Endpoint::Discovered {
                cell: tokio::sync::OnceCell::new(),
                failed_at_ms: AtomicU64::new(0),
            },
            (None, None) => {
                return Err(BuildError::Invalid(
                    "introspection needs an endpoint or an issuer to discover it from",
                ))
            }
        };
        if let Some(issuer) = &self.issuer {
            check_url(issuer, "the issuer", false)
                .map_err(BuildError::InvalidAuthorizationServer)?;
        }
        if self.auth.as_ref().is_some_and(|a| !a.is_valid()) {
            return Err(BuildError::Invalid(
                "the introspection credentials are not valid header text",
            ));
        }
        if self.leeway > crate::validate::MAX_LEEWAY {
            return Err(BuildError::Invalid("the leeway is above one hour"));
        }
        if self.max_concurrent_calls == 0 {
            return Err(BuildError::Invalid("max_concurrent_calls must be positive"));
        }
        if self.auth.is_none() {
            tracing::warn!(
                "introspection without client authentication: most authorization servers refuse it"
            );
        }
        Ok(IntrospectionValidator {
            inner: Arc::new(Inner {
                endpoint,
                issuer: self.issuer,
                auth: self.auth,
                audiences: self.audiences,
                allow_missing_audience: self.allow_missing_audience,
                introspect_jwts: self.introspect_jwts,
                leeway: self.leeway.as_secs(),
                fetcher: Fetcher::new(self.timeout, self.max_response_bytes)?,
                cache: self
                    .cache
                    .map(|(capacity, ttl)| TokenCache::new(capacity, ttl)),
                negative_ttl: self.negative_ttl,
                inflight: Inflight::default(),
                limiter: Limiter::new(
                    self.max_concurrent_calls,
                    self.max_queued_calls,
                    self.max_queue_wait,
                ),
                calls: AtomicU64::new(0),
            }),
        })
    }
}

#[cfg(test)]
mod tests;
