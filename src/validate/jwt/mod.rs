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
//!
//! The same validator end to end against the test kit's development issuer (offline, real keys): a token
//! for this resource is accepted, one for another resource is refused, and the refusal says why in its
//! log-only [`detail`](crate::ValidationError::detail):
//!
//! ```
//! use bearer_guard::testkit::DevIssuer;
//! use bearer_guard::{BearerToken, JwtValidator, TokenValidator, ValidationContext};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = DevIssuer::builder().start().await?; // serves discovery and JWKS on 127.0.0.1
//! let validator = JwtValidator::builder(issuer.issuer()).build()?;
//! validator.ready().await?;
//! let here = ValidationContext::new("https://mcp.example.com/mcp");
//!
//! let token = issuer.token().audience("https://mcp.example.com/mcp").sign()?;
//! let access = validator.validate(&BearerToken::new(&token).unwrap(), &here).await?;
//! assert_eq!(access.subject(), Some("test-user"));
//!
//! let foreign = issuer.token().audience("https://other.example.com/mcp").sign()?;
//! let error = validator.validate(&BearerToken::new(&foreign).unwrap(), &here).await.unwrap_err();
//! assert_eq!(error.kind(), "wrong_audience");
//! assert_eq!(
//!     error.detail().to_string(),
//!     r#"aud: expected "https://mcp.example.com/mcp", found "https://other.example.com/mcp""#,
//! );
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;
#[cfg(test)]
use serde_json::{Map, Value};

use crate::cache::{unix_now_ms, TokenCache};
use crate::error::{BuildError, InvalidToken, Unavailable, ValidationError};
#[cfg(test)]
use crate::json::parse_object;
use crate::token::{AccessToken, BearerToken};
use crate::validate::alg::{Algorithm, AlgorithmSet};
use crate::validate::jose::{self, decode_b64, Kid};
use crate::validate::jwks::{KeyStore, Trigger};
use crate::validate::{TokenValidator, Validation, ValidationContext};

mod builder;
#[cfg(test)]
mod tests;
mod verify;

pub use builder::JwtValidatorBuilder;

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
            Err(invalid) => return Validation::ready(Err(invalid)),
        };
        if let Some(guard) = inner.keys.usable() {
            if let Some(snapshot) = guard.as_ref() {
                match inner.verify(&checked, bytes, snapshot) {
                    Ok(()) => {
                        return Validation::ready(Ok(inner.accept(checked, bytes, key, epoch)))
                    }
                    Err(Some(invalid)) => return Validation::ready(Err(invalid)),
                    Err(None) => {
                        // An unknown kid that may not trigger a refetch now is refused without a future.
                        let kid = checked.kid.as_ref().map(Kid::as_str);
                        if !inner.keys.may_refetch_for(kid) {
                            return Validation::ready(Err(verify::unknown_key(kid)));
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
