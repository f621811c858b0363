//! [`IntrospectionValidator`]: opaque access tokens, checked with the authorization server's RFC 7662
//! introspection endpoint (feature `introspection`).
//!
//! - The call: `POST` `application/x-www-form-urlencoded` with `token` and `token_type_hint=access_token`,
//!   authenticated as `client_secret_basic` (id and secret form-urlencoded before base64, RFC 6749 §2.3.1),
//!   `client_secret_post`, or a bearer credential. The endpoint is configured, or discovered from the issuer's
//!   RFC 8414 / OpenID metadata (`introspection_endpoint`, with the metadata's `issuer` checked for identity).
//! - The answer: only JSON `"active": true` is active (a string `"true"`, a missing member, anything else is
//!   inactive, and then nothing else is read); `exp`/`nbf` are checked locally with the leeway; `aud` must
//!   name this resource (an absent `aud` is refused unless
//!   [`allow_missing_audience`](IntrospectionValidatorBuilder::allow_missing_audience) is set); `iss`, when
//!   present, must be the configured issuer; `token_type`, when present, must be `Bearer`; `scope` is parsed.
//! - Failures of the authorization server (connect error, timeout, non-2xx — including 401 for our own
//!   credentials —, non-JSON, oversize) are *infrastructure* failures: 503 with `Retry-After`, never
//!   `invalid_token`, never a word of the server's answer; the request is never let through.
//! - A cache keyed by the token's SHA-256: active answers live min(TTL (60 s), `exp` − now), inactive ones a
//!   short negative TTL (5 s, can be 0), failures are never cached. Concurrent requests with the same token
//!   share one in-flight call.
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

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::HeaderValue;
use serde_json::Value;

use crate::cache::{unix_now, unix_now_ms, TokenCache, DEFAULT_TOKEN_CACHE_CAPACITY};
use crate::error::{BuildError, InvalidToken, Unavailable, ValidationError};
use crate::fetch::{FetchError, Fetcher, DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES};
use crate::json;
use crate::resource::check_url;
use crate::scope::ScopeSet;
use crate::token::{AccessToken, BearerToken};
use crate::validate::discovery::discover;
use crate::validate::{TokenValidator, Validation, ValidationResult};

/// Default time an active introspection answer is reused.
pub const DEFAULT_POSITIVE_TTL: Duration = Duration::from_secs(60);
/// Default time an inactive answer is reused.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// How the resource server authenticates to the introspection endpoint. Secrets never appear in `Debug`.
#[derive(Clone)]
pub struct ClientAuth(AuthKind);

#[derive(Clone)]
enum AuthKind {
    /// `Authorization` value, precomputed and marked sensitive.
    Header(HeaderValue),
    /// `client_secret_post` form fields, already form-encoded (`&client_id=…&client_secret=…`).
    Post(String),
}

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl ClientAuth {
    /// `client_secret_basic`: `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`
    /// (RFC 6749 §2.3.1: the id and secret are form-urlencoded *before* base64).
    pub fn basic(client_id: &str, client_secret: &str) -> Self {
        let credentials = format!("{}:{}", form_encode(client_id), form_encode(client_secret));
        Self::header(format!("Basic {}", STANDARD.encode(credentials)))
    }

    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    pub fn post(client_id: &str, client_secret: &str) -> Self {
        Self(AuthKind::Post(format!(
            "&client_id={}&client_secret={}",
            form_encode(client_id),
            form_encode(client_secret)
        )))
    }

    /// A bearer credential of the resource server's own (`Authorization: Bearer …`).
    pub fn bearer(token: &str) -> Self {
        Self::header(format!("Bearer {token}"))
    }

    fn header(value: String) -> Self {
        // A value that cannot be a header (control characters) is caught at build time.
        let mut value =
            HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static(""));
        value.set_sensitive(true);
        Self(AuthKind::Header(value))
    }

    fn is_valid(&self) -> bool {
        match &self.0 {
            AuthKind::Header(value) => !value.is_empty(),
            AuthKind::Post(_) => true,
        }
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            AuthKind::Header(v) if v.as_bytes().starts_with(b"Basic") => {
                f.write_str("ClientAuth::Basic(..)")
            }
            AuthKind::Header(_) => f.write_str("ClientAuth::Bearer(..)"),
            AuthKind::Post(_) => f.write_str("ClientAuth::Post(..)"),
        }
    }
}

/// Where the endpoint comes from.
enum Endpoint {
    Fixed(String),
    Discovered(tokio::sync::OnceCell<String>),
}

/// A cached introspection outcome: the token, or why it is refused.
type Outcome = Result<AccessToken, InvalidToken>;

/// Calls in flight, by token digest; every concurrent caller of one token waits on the same cell.
type InflightMap = Mutex<HashMap<[u8; 32], Arc<tokio::sync::OnceCell<ValidationResult>>>>;

/// One caller's hold on an in-flight call. Dropping it (done, or cancelled) removes the map entry when the
/// call finished or nobody else waits on it, so abandoned calls cannot pile up in the map.
struct Waiter<'a> {
    inflight: &'a InflightMap,
    digest: [u8; 32],
    /// Always `Some` until dropped; taken in `drop` so the reference is released under the map's lock.
    cell: Option<Arc<tokio::sync::OnceCell<ValidationResult>>>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let Some(cell) = self.cell.take() else { return };
        let mut inflight = self
            .inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ours = inflight
            .get(&self.digest)
            .is_some_and(|current| Arc::ptr_eq(current, &cell));
        // Every clone and drop of the cell happens under this lock, so the count is exact: the map's
        // reference and ours means nobody else waits.
        if ours && (cell.initialized() || Arc::strong_count(&cell) == 2) {
            inflight.remove(&self.digest);
        }
        drop(cell);
    }
}

struct Inner {
    endpoint: Endpoint,
    issuer: Option<String>,
    auth: Option<ClientAuth>,
    audiences: Vec<String>,
    bound_audience: OnceLock<String>,
    allow_missing_audience: bool,
    leeway: u64,
    fetcher: Fetcher,
    cache: Option<TokenCache<Outcome>>,
    negative_ttl: Duration,
    inflight: InflightMap,
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
            Endpoint::Discovered(cell) => cell.get().map(String::as_str),
        };
        f.debug_struct("IntrospectionValidator")
            .field("endpoint", &endpoint)
            .field("issuer", &self.inner.issuer)
            .field("auth", &self.inner.auth)
            .field("audiences", &self.inner.audiences)
            .field("allow_missing_audience", &self.inner.allow_missing_audience)
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
    fn accepted_audiences(&self) -> &[String] {
        if self.audiences.is_empty() {
            self.bound_audience
                .get()
                .map(std::slice::from_ref)
                .unwrap_or(&[])
        } else {
            &self.audiences
        }
    }

    async fn endpoint(&self) -> Result<&str, ValidationError> {
        match &self.endpoint {
            Endpoint::Fixed(url) => Ok(url),
            Endpoint::Discovered(cell) => {
                let issuer = self.issuer.as_deref().unwrap_or_default();
                cell.get_or_try_init(|| async {
                    let metadata = discover(&self.fetcher, issuer).await.map_err(|error| {
                        tracing::warn!(issuer, %error, "introspection endpoint discovery failed");
                        ValidationError::unavailable(Unavailable::Discovery)
                    })?;
                    let url = metadata.introspection_endpoint.ok_or_else(|| {
                        tracing::error!(
                            issuer,
                            "the authorization server metadata has no introspection_endpoint"
                        );
                        ValidationError::unavailable(Unavailable::Discovery)
                    })?;
                    check_url(&url, "introspection_endpoint", true).map_err(|_| {
                        tracing::error!(
                            issuer,
                            "the discovered introspection_endpoint is not https"
                        );
                        ValidationError::unavailable(Unavailable::Discovery)
                    })?;
                    Ok(url)
                })
                .await
                .map(String::as_str)
            }
        }
    }

    /// One introspection call. `Err(ValidationError::Unavailable)` for every failure of the server.
    async fn call(
        &self,
        token: &BearerToken,
    ) -> Result<serde_json::Map<String, Value>, ValidationError> {
        let endpoint = self.endpoint().await?;
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
        let body = self
            .fetcher
            .post_form(endpoint, form, header)
            .await
            .map_err(|error| {
                match error {
                    FetchError::Status(401 | 403) => tracing::error!(
                        "the introspection endpoint refused this resource server's credentials"
                    ),
                    error => tracing::warn!(%error, "introspection failed"),
                }
                ValidationError::unavailable(Unavailable::Introspection)
            })?;
        json::parse_object(&body).ok_or_else(|| {
            tracing::warn!("the introspection response is not a JSON object");
            ValidationError::unavailable(Unavailable::Introspection)
        })
    }

    /// Applies the RFC 7662 rules to a response.
    fn judge(&self, mut response: serde_json::Map<String, Value>) -> Outcome {
        if response.get("active") != Some(&Value::Bool(true)) {
            // Inactive: nothing else in the response is read.
            return Err(InvalidToken::Inactive);
        }
        let now = unix_now() as f64;
        let leeway = self.leeway as f64;
        let exp = json::numeric_date(&response, "exp").map_err(|()| InvalidToken::MissingClaim)?;
        if exp.is_some_and(|exp| now >= exp + leeway) {
            return Err(InvalidToken::Expired);
        }
        let nbf = json::numeric_date(&response, "nbf").map_err(|()| InvalidToken::MissingClaim)?;
        if nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(InvalidToken::NotYetValid);
        }
        match json::audience_matches(&response, self.accepted_audiences()) {
            Ok(Some(true)) => {}
            Ok(None) if self.allow_missing_audience => {}
            Ok(_) => return Err(InvalidToken::WrongAudience),
            Err(()) => return Err(InvalidToken::Malformed),
        }
        match (response.get("iss"), &self.issuer) {
            (None, _) | (Some(_), None) => {}
            (Some(Value::String(iss)), Some(expected)) if iss == expected => {}
            (Some(_), Some(_)) => return Err(InvalidToken::WrongIssuer),
        }
        match response.get("token_type") {
            None => {}
            Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
            Some(_) => return Err(InvalidToken::WrongType),
        }
        let scopes = match response.get("scope") {
            None => ScopeSet::empty(),
            Some(Value::String(s)) => ScopeSet::parse_lenient(s),
            Some(_) => return Err(InvalidToken::Malformed),
        };
        let mut builder = AccessToken::builder().scope_set(scopes);
        if let Some(sub) = json::string(&response, "sub") {
            builder = builder.subject(sub);
        }
        if let Some(client) = json::string(&response, "client_id") {
            builder = builder.client_id(client);
        }
        if let Some(iss) = json::string(&response, "iss").or_else(|| self.issuer.clone()) {
            builder = builder.issuer(iss);
        }
        if let Some(exp) = exp {
            builder = builder.expires_at(json::system_time(json::clamp_date(exp)));
        }
        for aud in json::audiences(&response) {
            builder = builder.audience(aud);
        }
        response.remove("active");
        Ok(builder.raw_claims(response).build())
    }

    /// Introspects, judges and caches (definite answers only; failures are never cached).
    async fn introspect(&self, token: &BearerToken, digest: [u8; 32]) -> ValidationResult {
        let response = self.call(token).await?;
        let outcome = self.judge(response);
        if let Some(cache) = &self.cache {
            let now = unix_now_ms();
            match &outcome {
                Ok(access) => {
                    let exp = access
                        .expires_at()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(u64::MAX, |d| d.as_secs());
                    cache.insert(digest, outcome.clone(), exp, now, 0);
                }
                Err(_) => {
                    cache.insert_for(digest, outcome.clone(), u64::MAX, self.negative_ttl, now, 0)
                }
            }
        }
        outcome.map_err(ValidationError::from)
    }
}

impl TokenValidator for IntrospectionValidator {
    fn validate(&self, token: &BearerToken) -> Validation {
        let digest = token.sha256();
        if let Some(cache) = &self.inner.cache {
            if let Some(outcome) = cache.get(&digest, unix_now_ms(), 0) {
                return Validation::ready(outcome.map_err(ValidationError::from));
            }
        }
        let inner = self.inner.clone();
        let token = token.clone();
        Validation::pending(async move {
            // Same token, concurrent requests: one call, shared by all (a cancelled caller hands over).
            let cell = {
                let mut inflight = inner
                    .inflight
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !inflight.contains_key(&digest) {
                    // The call for this token may have ended between `validate` and this first poll. Its
                    // answer is cached before its in-flight entry is removed (under this lock), so a late
                    // waiter finds it here instead of making a second call.
                    let cached = (inner.cache.as_ref())
                        .and_then(|cache| cache.get(&digest, unix_now_ms(), 0));
                    if let Some(outcome) = cached {
                        return outcome.map_err(ValidationError::from);
                    }
                }
                inflight.entry(digest).or_default().clone()
            };
            let waiter = Waiter {
                inflight: &inner.inflight,
                digest,
                cell: Some(cell),
            };
            let Some(cell) = waiter.cell.as_ref() else {
                return Err(ValidationError::Internal(
                    "introspection waiter without a call",
                ));
            };
            let result = cell
                .get_or_init(|| inner.introspect(&token, digest))
                .await
                .clone();
            drop(waiter);
            result
        })
    }

    fn bind_resource(&self, resource: &str) {
        let _ = self.inner.bound_audience.set(resource.to_owned());
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
    leeway: Duration,
    timeout: Duration,
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
            leeway: crate::validate::DEFAULT_LEEWAY,
            timeout: DEFAULT_FETCH_TIMEOUT,
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

    /// Accepts tokens whose `aud` names `audience` (repeatable). Default: the layer's resource.
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

    /// Clock leeway for `exp` and `nbf` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Timeout of each call (default 5 s).
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
            (None, Some(_)) => Endpoint::Discovered(tokio::sync::OnceCell::new()),
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
                bound_audience: OnceLock::new(),
                allow_missing_audience: self.allow_missing_audience,
                leeway: self.leeway.as_secs(),
                fetcher: Fetcher::new(self.timeout, self.max_response_bytes)?,
                cache: self
                    .cache
                    .map(|(capacity, ttl)| TokenCache::new(capacity, ttl)),
                negative_ttl: self.negative_ttl,
                inflight: Mutex::new(HashMap::new()),
                calls: AtomicU64::new(0),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validator() -> Inner {
        let v = IntrospectionValidator::builder()
            .endpoint("http://127.0.0.1:9/introspect")
            .issuer("https://as.example.com")
            .audience("https://rs.example.com/mcp")
            .build()
            .unwrap();
        Arc::try_unwrap(v.inner).ok().unwrap()
    }

    fn judge(inner: &Inner, response: Value) -> Outcome {
        inner.judge(response.as_object().unwrap().clone())
    }

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        let auth = ClientAuth::basic("client:id é", "sec:ret ü+");
        let AuthKind::Header(value) = &auth.0 else {
            panic!()
        };
        let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "client%3Aid+%C3%A9:sec%3Aret+%C3%BC%2B");
        assert!(value.is_sensitive());
        assert!(!format!("{auth:?}").contains("sec"));
    }

    #[test]
    fn only_json_true_is_active() {
        let inner = validator();
        let good = json!({"active": true, "aud": "https://rs.example.com/mcp", "scope": "a b", "sub": "u"});
        let token = judge(&inner, good).unwrap();
        assert_eq!(token.subject(), Some("u"));
        assert_eq!(token.scopes().to_scope_string(), "a b");
        for inactive in [
            json!({"active": false, "aud": "https://rs.example.com/mcp"}),
            json!({"active": "true", "aud": "https://rs.example.com/mcp"}),
            json!({"active": 1, "aud": "https://rs.example.com/mcp"}),
            json!({"aud": "https://rs.example.com/mcp"}),
        ] {
            assert_eq!(judge(&inner, inactive).unwrap_err(), InvalidToken::Inactive);
        }
    }

    #[test]
    fn claims_are_checked_locally() {
        let inner = validator();
        let base = |extra: Value| {
            let mut v = json!({"active": true, "aud": "https://rs.example.com/mcp"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let now = unix_now();
        assert_eq!(
            judge(&inner, base(json!({"exp": now - 120}))).unwrap_err(),
            InvalidToken::Expired
        );
        assert!(
            judge(&inner, base(json!({"exp": now - 30}))).is_ok(),
            "within leeway"
        );
        assert_eq!(
            judge(&inner, base(json!({"nbf": now + 120}))).unwrap_err(),
            InvalidToken::NotYetValid
        );
        assert_eq!(
            judge(&inner, base(json!({"aud": "https://other"}))).unwrap_err(),
            InvalidToken::WrongAudience
        );
        assert_eq!(
            judge(&inner, json!({"active": true})).unwrap_err(),
            InvalidToken::WrongAudience,
            "a missing aud is refused by default"
        );
        assert_eq!(
            judge(&inner, base(json!({"iss": "https://evil"}))).unwrap_err(),
            InvalidToken::WrongIssuer
        );
        assert!(judge(&inner, base(json!({"iss": "https://as.example.com"}))).is_ok());
        assert_eq!(
            judge(&inner, base(json!({"token_type": "DPoP"}))).unwrap_err(),
            InvalidToken::WrongType
        );
        assert!(judge(&inner, base(json!({"token_type": "bearer"}))).is_ok());
        assert_eq!(
            judge(&inner, base(json!({"scope": ["a"]}))).unwrap_err(),
            InvalidToken::Malformed
        );
    }

    #[test]
    fn missing_audience_can_be_allowed_explicitly() {
        let v = IntrospectionValidator::builder()
            .endpoint("http://127.0.0.1:9/introspect")
            .allow_missing_audience(true)
            .build()
            .unwrap();
        assert!(v
            .inner
            .judge(json!({"active": true}).as_object().unwrap().clone())
            .is_ok());
        assert_eq!(
            v.inner
                .judge(
                    json!({"active": true, "aud": "x"})
                        .as_object()
                        .unwrap()
                        .clone()
                )
                .unwrap_err(),
            InvalidToken::WrongAudience,
            "a present aud must still name us"
        );
    }

    #[tokio::test]
    async fn a_cancelled_lone_caller_leaves_no_inflight_entry() {
        // An endpoint that accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let v = IntrospectionValidator::builder()
            .endpoint(format!("http://{addr}/introspect"))
            .audience("https://rs.example.com/mcp")
            .build()
            .unwrap();
        for i in 0..10 {
            let token = BearerToken::new(&format!("abandoned-token-{i}")).unwrap();
            let cancelled =
                tokio::time::timeout(Duration::from_millis(50), v.validate(&token)).await;
            assert!(cancelled.is_err(), "the caller gave up");
        }
        assert_eq!(v.inner.inflight.lock().unwrap().len(), 0);
    }

    #[test]
    fn build_refuses_insecure_or_missing_endpoints() {
        assert!(IntrospectionValidator::builder().build().is_err());
        assert!(IntrospectionValidator::builder()
            .endpoint("http://as.example.com/introspect")
            .build()
            .is_err());
        assert!(IntrospectionValidator::builder()
            .issuer("http://as.example.com")
            .build()
            .is_err());
        assert!(IntrospectionValidator::builder()
            .endpoint("https://as.example.com/introspect")
            .client_auth(ClientAuth::bearer("bad\ntoken"))
            .build()
            .is_err());
    }
}
