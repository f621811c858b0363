//! [`JwtValidator`]: RFC 9068 JWT access tokens, verified with the issuer's keys (feature `jwt`).
//!
//! For one issuer it checks, in this order (cheap checks first, so junk never buys a signature check):
//! 1. structure: three base64url parts, UTF-8 JSON objects without duplicate members;
//! 2. header: `alg` in the allow-list (`none` and HMAC cannot be named), `typ` is `at+jwt` or
//!    `application/at+jwt` (case-insensitive; `JWT`/absent only with [`JwtValidatorBuilder::allow_jwt_typ`]),
//!    no `crit`; `jku`, `x5u`, `x5c` and `jwk` are never used;
//! 3. claims: `iss` identical to the issuer, `aud` (string or array) names one of the accepted audiences,
//!    `exp` present and not past, `nbf` and `iat` not in the future (all with the leeway);
//! 4. signature, with the key the `kid` names, only if that key is bound to the header's `alg` (a missing
//!    `kid` is accepted only when exactly one key fits).
//!
//! Verified tokens are kept in a bounded cache keyed by the token's SHA-256 (see [`crate::cache`] docs), so
//! a token seen before costs a hash and a lookup, no JSON and no signature.
//!
//! ```no_run
//! use bearer_guard::validate::JwtValidator;
//! use bearer_guard::BearerAuthLayer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = JwtValidator::builder("https://auth.example.com/")   // the issuer, byte for byte
//!     .build()?;                                                      // discovery + JWKS, in the background
//! validator.ready().await?;                                           // optional: wait for the keys
//! let guard = BearerAuthLayer::builder()
//!     .resource("https://mcp.example.com/mcp")                         // also the audience tokens must name
//!     .authorization_server("https://auth.example.com/")
//!     .validator(validator)
//!     .build()?;
//! # let _ = guard; Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
#[cfg(test)]
use serde_json::{Map, Value};

use crate::cache::{
    unix_now, unix_now_ms, TokenCache, DEFAULT_TOKEN_CACHE_CAPACITY, DEFAULT_TOKEN_CACHE_TTL,
};
use crate::error::{BuildError, InvalidToken, Unavailable, ValidationError};
use crate::fetch::{Fetcher, DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES};
use crate::json;
#[cfg(test)]
use crate::json::parse_object;
use crate::resource::check_url;
use crate::scope::ScopeSet;
use crate::token::{AccessToken, BearerToken, Span, Text, VerifiedPayload};
use crate::validate::alg::{Algorithm, AlgorithmSet};
use crate::validate::jose::{self, decode_b64, Audience, Claims, Date, Header, Kid, Member, Scp};
use crate::validate::jwks::{
    KeyLimits, KeyMiss, KeySource, KeyStore, RefreshError, Snapshot, Trigger,
};
use crate::validate::{
    TokenValidator, Validation, ValidationContext, ValidationResult, DEFAULT_LEEWAY,
};

/// Installs jsonwebtoken's aws-lc-rs provider when both crypto backends are compiled in (jsonwebtoken refuses
/// to choose by itself then). With one backend, jsonwebtoken picks it and this does nothing.
pub(crate) fn ensure_crypto_provider() {
    #[cfg(all(feature = "aws-lc-rs", feature = "rust-crypto"))]
    {
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
    }
}

#[cfg(test)]
fn decode_object(part: &str) -> Result<Map<String, Value>, InvalidToken> {
    let mut stack = [0u8; PAYLOAD_STACK_BYTES];
    let mut heap = Vec::new();
    let bytes =
        decode_b64(part.as_bytes(), &mut stack, &mut heap).ok_or(InvalidToken::Malformed)?;
    parse_object(bytes).ok_or(InvalidToken::Malformed)
}

/// Decoded headers up to this size stay on the stack (typical ones are under 100 bytes).
const HEADER_STACK_BYTES: usize = 256;
/// Decoded payloads read for routing up to this size stay on the stack (typical access tokens carry under
/// 1 KiB of claims).
const PAYLOAD_STACK_BYTES: usize = 2048;

/// The payload part of a compact JWS (`header.payload.signature`), if the token has that shape.
fn payload_part(token: &str) -> Option<&str> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => Some(payload),
        _ => None,
    }
}

/// Calls `f` with the `iss` claim of a JWT, read *without* verifying anything (for routing to the right
/// issuer). Only `iss` is built: the other claims are skipped, and nothing is allocated for a token of
/// usual size.
pub(crate) fn with_unverified_issuer<R>(
    token: &str,
    f: impl FnOnce(Result<&str, InvalidToken>) -> R,
) -> R {
    let Some(payload) = payload_part(token) else {
        return f(Err(InvalidToken::Malformed));
    };
    let mut stack = [0u8; PAYLOAD_STACK_BYTES];
    let mut heap = Vec::new();
    let Some(bytes) = decode_b64(payload.as_bytes(), &mut stack, &mut heap) else {
        return f(Err(InvalidToken::Malformed));
    };
    match jose::issuer_of(bytes) {
        Ok(Some(iss)) => f(Ok(&iss)),
        Ok(None) => f(Err(InvalidToken::WrongIssuer)),
        Err(()) => f(Err(InvalidToken::Malformed)),
    }
}

/// The `iss` claim of a JWT, read *without* verifying anything (for routing to the right issuer).
#[cfg(test)]
pub(crate) fn unverified_issuer(token: &str) -> Result<String, InvalidToken> {
    with_unverified_issuer(token, |iss| iss.map(str::to_owned))
}

/// A token whose structure, header and claims passed; only the signature is left to check.
struct Checked {
    alg: Algorithm,
    kid: Option<Kid>,
    /// Length of the base64url header (the token's first part).
    header_len: usize,
    /// `header.payload`, what the signature covers.
    signing_input_len: usize,
    signature_start: usize,
    /// What the token stands for once its signature is verified.
    access: AccessToken,
    exp: u64,
}

/// How strictly `typ` is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypPolicy {
    AccessTokenOnly,
    AlsoJwt,
}

struct Inner {
    issuer: Arc<str>,
    /// Explicitly configured audiences; empty: the asking layer's resource.
    audiences: Vec<String>,
    algorithms: AlgorithmSet,
    leeway: u64,
    typ: TypPolicy,
    scp_claim: bool,
    keys: Arc<KeyStore>,
    cache: Option<TokenCache>,
    /// The header of the last verified token, checked (see [`Inner::remember_header`]).
    header_memo: ArcSwapOption<HeaderMemo>,
    /// The background key refresher; started at build inside a Tokio runtime, else on first use.
    refresher: OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.refresher.get() {
            task.abort();
        }
    }
}

/// A JOSE header that passed [`Inner::check_header`], and what it said. The checks depend only on the
/// header's bytes and the validator's configuration, so the same bytes always give the same answer.
struct HeaderMemo {
    b64: Box<[u8]>,
    alg: Algorithm,
    kid: Option<Kid>,
}

/// Validates RFC 9068 JWT access tokens of one issuer. Cloning is cheap (shared state).
#[derive(Clone)]
pub struct JwtValidator {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtValidator")
            .field("issuer", &self.inner.issuer)
            .field("audiences", &self.audiences())
            .field("algorithms", &self.inner.algorithms)
            .field("leeway_secs", &self.inner.leeway)
            .field("typ", &self.inner.typ)
            .field("keys", &self.inner.keys)
            .field("cache", &self.inner.cache)
            .finish()
    }
}

impl JwtValidator {
    /// Starts a builder for tokens from `issuer` (compared byte for byte with `iss`: a trailing slash counts).
    pub fn builder(issuer: impl Into<String>) -> JwtValidatorBuilder {
        JwtValidatorBuilder::new(issuer.into())
    }

    /// The issuer this validator trusts.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The explicitly configured audiences. Empty (the default): each layer's own resource is the one
    /// audience accepted at that layer.
    pub fn audiences(&self) -> Vec<&str> {
        self.inner.audiences.iter().map(String::as_str).collect()
    }

    /// Waits until a usable key set is loaded (fetching it if needed). A service can call this before it
    /// accepts traffic. Fails with [`ValidationError::Unavailable`] if the keys cannot be loaded now.
    pub async fn ready(&self) -> Result<(), ValidationError> {
        self.inner.start_refresher();
        if self.inner.keys.usable().is_some() {
            return Ok(());
        }
        let generation = self.inner.keys.generation();
        match self
            .inner
            .keys
            .refresh(generation, Trigger::Scheduled)
            .await
        {
            Ok(()) if self.inner.keys.usable().is_some() => Ok(()),
            _ => Err(ValidationError::unavailable(Unavailable::KeySet)),
        }
    }

    /// How many times the JWKS was fetched (diagnostics).
    pub fn jwks_fetch_count(&self) -> u64 {
        self.inner.keys.fetch_count()
    }

    /// Is this very token in the verified-token cache (verified by this validator for this context, still
    /// good)?
    pub(crate) fn is_cached(&self, token: &BearerToken, context: &ValidationContext) -> bool {
        let inner = &self.inner;
        inner.cache.as_ref().is_some_and(|cache| {
            cache.contains(
                &context.cache_key(token),
                unix_now_ms(),
                inner.keys.removal_epoch(),
            )
        })
    }

    /// Number of tokens in the verified-token cache.
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, TokenCache::len)
    }
}

impl Inner {
    /// Steps 1–3: everything but the signature.
    fn check(&self, token: &[u8], context: &ValidationContext) -> Result<Checked, InvalidToken> {
        // Exactly two dots (`memchr`: many bytes at a time; serde_json already depends on it).
        let Some(first) = memchr::memchr(b'.', token) else {
            return Err(InvalidToken::Malformed);
        };
        let Some(second) = memchr::memchr(b'.', &token[first + 1..]).map(|i| first + 1 + i) else {
            return Err(InvalidToken::Malformed);
        };
        if memchr::memchr(b'.', &token[second + 1..]).is_some() {
            return Err(InvalidToken::Malformed);
        }
        let (header_b64, payload_b64) = (&token[..first], &token[first + 1..second]);
        // (An empty signature is left to the algorithm check — `alg: none` is refused as such — and to the
        // signature check.)
        if header_b64.is_empty() || payload_b64.is_empty() {
            return Err(InvalidToken::Malformed);
        }

        let (alg, kid) = match self.header_memo.load().as_deref() {
            Some(memo) if *memo.b64 == *header_b64 => (memo.alg, memo.kid.clone()),
            _ => self.check_header(header_b64)?,
        };

        // Decoded straight into the buffer an accepted token keeps as its raw claims (one allocation).
        let mut payload = Vec::with_capacity(base64::decoded_len_estimate(payload_b64.len()));
        URL_SAFE_NO_PAD
            .decode_vec(payload_b64, &mut payload)
            .map_err(|_| InvalidToken::Malformed)?;
        let claims = Claims::parse(&payload).ok_or(InvalidToken::Malformed)?;
        match &claims.iss {
            Member::Str(iss) if **iss == *self.issuer => {}
            _ => return Err(InvalidToken::WrongIssuer),
        }
        self.check_audience(&claims.aud, context)?;
        if claims.cnf {
            // A sender-constrained token (RFC 9449 `jkt`, RFC 8705 `x5t#S256`, or any other confirmation
            // method) proves nothing without its proof of possession, which this guard does not check.
            return Err(InvalidToken::SenderConstrained);
        }
        let now = unix_now() as f64;
        let leeway = self.leeway as f64;
        let Date::At(exp) = claims.exp else {
            return Err(InvalidToken::MissingClaim);
        };
        if now >= exp + leeway {
            return Err(InvalidToken::Expired);
        }
        for date in [claims.nbf, claims.iat] {
            match date {
                Date::Invalid => return Err(InvalidToken::MissingClaim),
                Date::At(t) if t > now + leeway => return Err(InvalidToken::NotYetValid),
                _ => {}
            }
        }
        let exp = json::clamp_date(exp);
        let mut verified = self.access_token(&payload, &claims, exp);
        verified.json = payload;
        Ok(Checked {
            alg,
            kid,
            header_len: first,
            signing_input_len: second,
            signature_start: second + 1,
            access: AccessToken::from_verified_payload(verified),
            exp,
        })
    }

    /// Step 2, the JOSE header: the algorithm (allowed, and not `none`), no `crit`, the `typ`, the `kid`.
    fn check_header(&self, header_b64: &[u8]) -> Result<(Algorithm, Option<Kid>), InvalidToken> {
        let mut header_stack = [0u8; HEADER_STACK_BYTES];
        let mut header_heap = Vec::new();
        let header_bytes = decode_b64(header_b64, &mut header_stack, &mut header_heap)
            .ok_or(InvalidToken::Malformed)?;
        let header = Header::parse(header_bytes).ok_or(InvalidToken::Malformed)?;
        let alg = match &header.alg {
            Member::Str(name) => Algorithm::from_name(name)
                .filter(|alg| self.algorithms.contains(*alg))
                .ok_or(InvalidToken::DisallowedAlgorithm)?,
            _ => return Err(InvalidToken::Malformed),
        };
        if header.crit {
            // No JWS extension is understood here, so any `crit` makes the token invalid (RFC 7515 §4.1.11).
            return Err(InvalidToken::UnsupportedCritical);
        }
        match &header.typ {
            Member::Str(typ) => {
                let is = |name: &str| typ.eq_ignore_ascii_case(name);
                let access_token = is("at+jwt") || is("application/at+jwt");
                let plain_jwt = is("jwt") || is("application/jwt");
                if !(access_token || (plain_jwt && self.typ == TypPolicy::AlsoJwt)) {
                    return Err(InvalidToken::WrongType);
                }
            }
            Member::Absent if self.typ == TypPolicy::AlsoJwt => {}
            _ => return Err(InvalidToken::WrongType),
        }
        let kid = match &header.kid {
            Member::Absent => None,
            Member::Str(kid) => Some(Kid::new(kid).ok_or(InvalidToken::Malformed)?),
            Member::Other => return Err(InvalidToken::Malformed),
        };
        Ok((alg, kid))
    }

    fn check_audience(
        &self,
        aud: &Audience<'_>,
        context: &ValidationContext,
    ) -> Result<(), InvalidToken> {
        let names_us = |aud: &str| {
            if self.audiences.is_empty() {
                aud == context.resource()
            } else {
                self.audiences.iter().any(|a| a == aud)
            }
        };
        let ok = match aud {
            Audience::Absent => false,
            Audience::One(aud) => names_us(aud),
            Audience::Many(auds) => auds.iter().any(|aud| names_us(aud)),
            Audience::Invalid => return Err(InvalidToken::Malformed),
        };
        ok.then_some(()).ok_or(InvalidToken::WrongAudience)
    }

    /// The access token a token with these claims stands for (used only once the signature is verified).
    /// Strings the payload holds without escapes are not copied: the token keeps the payload bytes and
    /// their offsets, and turns the claims into JSON values only if a handler asks for them.
    /// (`json` is left empty for the caller to move the payload in once `claims` no longer borrow it.)
    fn access_token(&self, payload: &[u8], claims: &Claims<'_>, exp: u64) -> VerifiedPayload {
        let text = |member: &Member<'_>| match member {
            Member::Str(Cow::Borrowed(s)) => {
                Span::of(payload, s).map_or_else(|| Text::Owned((*s).into()), Text::InClaims)
            }
            Member::Str(Cow::Owned(s)) => Text::Owned(s.as_str().into()),
            _ => Text::Absent,
        };
        let scope = match &claims.scope {
            Member::Str(s) => &**s,
            _ => "",
        };
        let scopes = match &claims.scp {
            Scp::Str(scp) if self.scp_claim => {
                ScopeSet::from_iter_lenient(scope.split(' ').chain(scp.split(' ')))
            }
            Scp::Many(items) if self.scp_claim => {
                ScopeSet::from_iter_lenient(scope.split(' ').chain(items.iter().map(|s| &**s)))
            }
            // The usual case: one space-separated `scope`, parsed straight into the set.
            _ => ScopeSet::parse_lenient(scope),
        };
        // RFC 9068 `client_id`; else what vendors use: `azp` (Auth0 default profile, Entra v2), `cid` (Okta),
        // `appid` (Entra v1).
        let client_id = [&claims.client_id, &claims.azp, &claims.cid, &claims.appid]
            .into_iter()
            .map(text)
            .find(|found| !matches!(found, Text::Absent))
            .unwrap_or_default();
        VerifiedPayload {
            json: Vec::new(),
            issuer: self.issuer.clone(),
            subject: text(&claims.sub),
            client_id,
            has_audience: matches!(claims.aud, Audience::One(_) | Audience::Many(_)),
            scopes,
            expires_at: json::system_time(exp),
        }
    }

    /// Step 4 with a key set in hand. `Err(None)` means the key is not in this set.
    fn verify(
        &self,
        checked: &Checked,
        token: &[u8],
        snapshot: &Snapshot,
    ) -> Result<(), Option<InvalidToken>> {
        let kid = checked.kid.as_ref().map(Kid::as_str);
        let key = match snapshot.keys.select(kid, checked.alg) {
            Ok(key) => key,
            Err(KeyMiss::NotFound) => return Err(None),
            Err(KeyMiss::WrongAlgorithm) => return Err(Some(InvalidToken::DisallowedAlgorithm)),
            Err(KeyMiss::Ambiguous) => return Err(Some(InvalidToken::UnknownKey)),
        };
        if key.key.verify(
            checked.alg,
            &token[..checked.signing_input_len],
            &token[checked.signature_start..],
        ) {
            Ok(())
        } else {
            Err(Some(InvalidToken::BadSignature))
        }
    }

    /// The validated token (its signature verified), cached; its header remembered.
    fn accept(
        &self,
        checked: Checked,
        token: &[u8],
        key: Option<[u8; 32]>,
        epoch: u64,
    ) -> AccessToken {
        self.remember_header(&checked, token);
        let Checked { access, exp, .. } = checked;
        if let (Some(cache), Some(key)) = (&self.cache, key) {
            cache.insert(key, access.clone(), exp, unix_now_ms(), epoch);
        }
        access
    }

    /// Keeps the header of a verified token, so that the next token with the very same header (most tokens
    /// of an issuer share one) skips decoding and parsing it. Only verified tokens are remembered: junk
    /// cannot make the memo churn.
    fn remember_header(&self, checked: &Checked, token: &[u8]) {
        let Some(header_b64) = token.get(..checked.header_len) else {
            return;
        };
        let current = self.header_memo.load();
        if current
            .as_deref()
            .is_some_and(|memo| *memo.b64 == *header_b64)
        {
            return;
        }
        drop(current);
        self.header_memo.store(Some(Arc::new(HeaderMemo {
            b64: header_b64.into(),
            alg: checked.alg,
            kid: checked.kid.clone(),
        })));
    }

    /// Starts the background refresher if it is not running (the validator was built outside a runtime).
    fn start_refresher(&self) {
        if self.refresher.get().is_none() {
            if let Some(task) = self.keys.spawn_refresher() {
                if let Err(task) = self.refresher.set(task) {
                    task.abort();
                }
            }
        }
    }

    /// Verifies with the current key set, or says which kind of fetch would be needed.
    fn try_verify(
        &self,
        checked: &Checked,
        token: &[u8],
    ) -> Result<Result<(), InvalidToken>, Trigger> {
        let guard = self.keys.usable().ok_or(Trigger::NoKeys)?;
        let snapshot = guard.as_ref().ok_or(Trigger::NoKeys)?;
        match self.verify(checked, token, snapshot) {
            Ok(()) => Ok(Ok(())),
            Err(Some(invalid)) => Ok(Err(invalid)),
            Err(None) => Err(Trigger::UnknownKid),
        }
    }

    /// The slow path: the key set is missing, stale, or lacks the token's key. Fetches (coalesced and
    /// rate limited), then tries once more.
    async fn validate_with_fetch(
        self: Arc<Self>,
        checked: Checked,
        token: BearerToken,
        key: Option<[u8; 32]>,
    ) -> ValidationResult {
        let epoch = self.keys.removal_epoch();
        let generation = self.keys.generation();
        let trigger = match self.try_verify(&checked, token.as_bytes()) {
            Ok(Ok(())) => return Ok(self.accept(checked, token.as_bytes(), key, epoch)),
            Ok(Err(invalid)) => return Err(invalid.into()),
            Err(trigger) => trigger,
        };
        let kid = checked.kid.as_ref().map(Kid::as_str);
        if trigger == Trigger::UnknownKid && !self.keys.may_refetch_for(kid) {
            return Err(InvalidToken::UnknownKey.into());
        }
        match self.keys.refresh(generation, trigger).await {
            Ok(()) => {}
            Err(RefreshError::RateLimited) if trigger == Trigger::UnknownKid => {
                return Err(InvalidToken::UnknownKey.into());
            }
            Err(RefreshError::RateLimited) => {
                return Err(ValidationError::unavailable(Unavailable::KeySet))
            }
            Err(RefreshError::Failed(reason)) => return Err(ValidationError::unavailable(reason)),
        }
        let epoch = self.keys.removal_epoch();
        match self.try_verify(&checked, token.as_bytes()) {
            Ok(Ok(())) => Ok(self.accept(checked, token.as_bytes(), key, epoch)),
            Ok(Err(invalid)) => Err(invalid.into()),
            Err(Trigger::UnknownKid) => {
                // Fetched and still no such key: remember the kid so tokens naming it are refused at once.
                if let Some(kid) = &checked.kid {
                    self.keys.remember_missing(kid.as_str());
                }
                Err(InvalidToken::UnknownKey.into())
            }
            Err(_) => Err(ValidationError::unavailable(Unavailable::KeySet)),
        }
    }
}

impl TokenValidator for JwtValidator {
    fn validate(&self, token: &BearerToken, context: &ValidationContext) -> Validation {
        let inner = &self.inner;
        let epoch = inner.keys.removal_epoch();
        let key = inner.cache.as_ref().map(|_| context.cache_key(token));
        if let (Some(cache), Some(key)) = (&inner.cache, &key) {
            if let Some(hit) = cache.get(key, unix_now_ms(), epoch) {
                // A cached verification is only as good as the key set behind it: past the staleness
                // bound, fall through to the path that refetches or fails closed.
                if inner.keys.usable().is_some() {
                    return Validation::ready(Ok(hit));
                }
            }
        }
        let bytes = token.as_bytes();
        let checked = match inner.check(bytes, context) {
            Ok(checked) => checked,
            Err(invalid) => return Validation::ready(Err(invalid.into())),
        };
        if let Some(guard) = inner.keys.usable() {
            if let Some(snapshot) = guard.as_ref() {
                match inner.verify(&checked, bytes, snapshot) {
                    Ok(()) => {
                        return Validation::ready(Ok(inner.accept(checked, bytes, key, epoch)))
                    }
                    Err(Some(invalid)) => return Validation::ready(Err(invalid.into())),
                    Err(None) => {
                        // An unknown kid that may not trigger a refetch now is refused without a future.
                        if !inner
                            .keys
                            .may_refetch_for(checked.kid.as_ref().map(Kid::as_str))
                        {
                            return Validation::ready(Err(InvalidToken::UnknownKey.into()));
                        }
                    }
                }
            }
        }
        let inner = self.inner.clone();
        Validation::pending(inner.validate_with_fetch(checked, token.clone(), key))
    }

    /// Explicitly configured audiences must include the layer's resource: otherwise every token issued for
    /// that layer would be refused, or (worse) tokens for other resources accepted there.
    fn check_context(&self, context: &ValidationContext) -> Result<(), BuildError> {
        context.check_audiences(&self.inner.audiences)
    }

    fn trusted_issuers(&self) -> Option<Vec<String>> {
        Some(vec![self.inner.issuer.to_string()])
    }

    /// Responsible for JWTs whose (unverified) `iss` is this issuer. A token in the verified-token cache
    /// was verified as this issuer's, so the payload is not decoded for it (the token's hash is computed
    /// once and used again by `validate`).
    fn is_responsible_for(&self, token: &BearerToken, context: &ValidationContext) -> bool {
        self.is_cached(token, context)
            || with_unverified_issuer(token.as_str(), |iss| iss == Ok(&*self.inner.issuer))
    }
}

/// Builds a [`JwtValidator`].
#[derive(Debug, Clone)]
pub struct JwtValidatorBuilder {
    issuer: String,
    audiences: Vec<String>,
    algorithms: AlgorithmSet,
    leeway: Duration,
    typ: TypPolicy,
    scp_claim: bool,
    source: Option<KeySource>,
    inline_jwks: Option<Vec<u8>>,
    limits: KeyLimits,
    fetch_timeout: Duration,
    max_response_bytes: usize,
    cache: Option<(usize, Duration)>,
}

impl JwtValidatorBuilder {
    fn new(issuer: String) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_objects_refuse_duplicates() {
        let dup = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","alg":"none"}"#);
        assert_eq!(decode_object(&dup).unwrap_err(), InvalidToken::Malformed);
        let ok = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"a"}"#);
        assert_eq!(decode_object(&ok).unwrap().len(), 2);
        let padded = format!("{ok}=");
        assert!(decode_object(&padded).is_err());
        let not_object = URL_SAFE_NO_PAD.encode(b"[1]");
        assert!(decode_object(&not_object).is_err());
        let bad_utf8 = URL_SAFE_NO_PAD.encode(b"{\"a\":\"\xff\"}");
        assert!(decode_object(&bad_utf8).is_err());
    }

    #[test]
    fn unverified_issuer_reads_only_iss() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://a.example"}"#);
        assert_eq!(
            unverified_issuer(&format!("h.{payload}.s")).unwrap(),
            "https://a.example"
        );
        assert!(unverified_issuer("opaque-token").is_err());
        assert!(unverified_issuer(&format!("h.{payload}.s.x")).is_err());
    }
}
