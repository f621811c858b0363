//! DPoP at the resource server (RFC 9449): proofs checked on every request, tokens bound to their key.
//!
//! ```
//! use bearer_guard::bind::dpop::{DpopConfig, DpopMode};
//! use bearer_guard::{BearerAuthLayer, StaticToken, StaticValidator};
//!
//! let validator = StaticValidator::builder()
//!     .token("service-token-0123456789", StaticToken::new("svc"))
//!     .build()?;
//! let guard = BearerAuthLayer::builder()
//!     .resource("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .validator(validator)
//!     // `Authorization: DPoP <token>` with a `DPoP` proof, and `Bearer` for unbound tokens.
//!     .dpop(DpopConfig::new(DpopMode::Optional))
//!     .build()?;
//! # let _ = guard;
//! # Ok::<(), bearer_guard::BuildError>(())
//! ```
//!
//! Every check of RFC 9449 §4.3 is made, in this order, before the token is validated (a proof costs one
//! signature check, and a request with a bad proof never reaches the token's validator or its network):
//! exactly one `DPoP` header holding one compact JWS (at most 8 KiB); `typ` = `dpop+jwt`; no `crit`;
//! no duplicate member; `alg` in the configured asymmetric allow-list (never `none` or HMAC) and fitting the
//! key; a public `jwk` (a private member is refused); the signature; `htm` = the request method; `htu` =
//! the configured public origin + the request path, both normalized (RFC 3986 §6.2.2, §6.2.3); `iat` no
//! older than [`DpopConfig::max_age`] and no further ahead than [`DpopConfig::max_clock_skew`] (both 5
//! minutes by default, as the MCP DPoP extension asks); `ath` = base64url(SHA-256(token)); a `jti` of at
//! most 256 bytes. After the token is validated, its `cnf.jkt` must be the proof key's RFC 7638
//! thumbprint, and only then is the `jti` recorded in the [`ReplayStore`]: one
//! proof, one request, across every replica that shares the store. A `content_digest` claim (the MCP DPoP
//! extension draft) must be well formed, and the MCP layer compares it with the body ([`ContentDigest`]).

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use subtle::ConstantTimeEq;

use crate::store::{MemoryReplayStore, ReplayStore};
use crate::token::BearerToken;
use crate::validate::alg::{Algorithm, AlgorithmSet};

mod digest;
mod htu;
mod nonce;
mod proof;

pub use digest::ContentDigest;

pub(crate) use htu::origin_of;

/// The request header carrying the proof.
pub const DPOP_HEADER: &str = "dpop";
/// The response header carrying a server nonce (RFC 9449 §8.1).
pub const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// Which schemes a guard accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DpopMode {
    /// `Bearer` and `DPoP`: unbound tokens as `Bearer`, key-bound tokens only as `DPoP` with a proof.
    Optional,
    /// `DPoP` only: every token must be key-bound and come with a proof
    /// (`dpop_bound_access_tokens_required` in the metadata).
    Required,
}

/// What to do when the replay store cannot answer (e.g. Redis unreachable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreFailure {
    /// 503 with `Retry-After`: a proof whose `jti` was not checked is never accepted (the default).
    #[default]
    Refuse,
    /// Accept the otherwise valid proof, logging a warning: a replay within the `iat` window may then pass.
    AcceptUnchecked,
}

/// DPoP settings of one guard. Replicas behind a load balancer must share one
/// [`ReplayStore`] (e.g. `RedisReplayStore`), or a proof replayed to the next
/// replica succeeds.
#[derive(Clone)]
pub struct DpopConfig {
    pub(crate) mode: DpopMode,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) max_age: Duration,
    pub(crate) max_clock_skew: Duration,
    pub(crate) store: Arc<dyn ReplayStore>,
    pub(crate) on_store_failure: StoreFailure,
    pub(crate) public_origin: Option<String>,
    /// The shared secret and lifetime of server nonces, when the guard issues them.
    pub(crate) nonce_secret: Option<(Vec<u8>, Duration)>,
}

impl DpopConfig {
    /// DPoP in `mode`, with ES256, ES384, EdDSA, PS256 and RS256 proofs, a 5-minute `iat` window each way
    /// and an in-memory replay store for 100 000 proofs.
    pub fn new(mode: DpopMode) -> Self {
        let algorithms = [
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
            Algorithm::PS256,
            Algorithm::RS256,
        ];
        Self {
            mode,
            algorithms: AlgorithmSet::from_iter(algorithms),
            max_age: Duration::from_secs(300),
            max_clock_skew: Duration::from_secs(300),
            store: Arc::new(MemoryReplayStore::new(100_000)),
            on_store_failure: StoreFailure::Refuse,
            public_origin: None,
            nonce_secret: None,
        }
    }

    /// Requires server-issued nonces (RFC 9449 §9): a proof without a valid `nonce` gets `401` with
    /// `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a `DPoP-Nonce` header. Nonces rotate every
    /// `lifetime` (accepted for that window and the next, and the next nonce is sent on a success ahead of
    /// expiry); replicas with the same `secret` (at least 32 random bytes) accept each other's nonces without
    /// shared state. `build()` refuses a shorter secret or a lifetime under a second.
    pub fn server_nonces(mut self, secret: impl AsRef<[u8]>, lifetime: Duration) -> Self {
        self.nonce_secret = Some((secret.as_ref().to_vec(), lifetime));
        self
    }

    /// The proof algorithms accepted (advertised as `dpop_signing_alg_values_supported` and in `algs`).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = AlgorithmSet::from_iter(algorithms);
        self
    }

    /// How old a proof's `iat` may be (default 5 minutes). The `jti` is remembered this long.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How far in the future a proof's `iat` may be (default 5 minutes).
    pub fn max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// Where proofs' `jti`s are recorded (default: in memory, this process only).
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.store = Arc::new(store);
        self
    }

    /// What to do when the replay store fails (default: refuse with 503).
    pub fn on_store_failure(mut self, decision: StoreFailure) -> Self {
        self.on_store_failure = decision;
        self
    }

    /// The public origin (`https://host[:port]`) the `htu` of proofs must name, when clients reach this
    /// service under another origin than its resource identifier's (default: the resource's origin).
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.public_origin = Some(origin.into());
        self
    }

    /// The accepted mode.
    pub fn mode(&self) -> DpopMode {
        self.mode
    }
}

impl std::fmt::Debug for DpopConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopConfig")
            .field("mode", &self.mode)
            .field("algorithms", &self.algorithms)
            .field("max_age", &self.max_age)
            .field("max_clock_skew", &self.max_clock_skew)
            .field("on_store_failure", &self.on_store_failure)
            .field("public_origin", &self.public_origin)
            .field("server_nonces", &self.nonce_secret.is_some())
            .finish_non_exhaustive()
    }
}

indexed_enum! {
/// Why a DPoP proof was refused (HTTP 401, `WWW-Authenticate: DPoP error="invalid_dpop_proof"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProofError {
    /// `Authorization: DPoP` without a `DPoP` header.
    Missing,
    /// More than one `DPoP` header.
    MultipleProofs,
    /// Not one compact JWS of JSON objects without duplicate members (or larger than 8 KiB).
    Malformed,
    /// `typ` is not `dpop+jwt`.
    WrongType,
    /// The `alg` is not allowed, or does not fit the key.
    DisallowedAlgorithm,
    /// No usable public `jwk` in the header.
    BadKey,
    /// The `jwk` holds private key material.
    PrivateKey,
    /// The signature does not verify with the `jwk`.
    BadSignature,
    /// A `crit` header member.
    UnsupportedCritical,
    /// `jti`, `htm`, `htu`, `iat` or `ath` is missing, of the wrong type, or (`jti`) too long.
    MissingClaim,
    /// `htm` is not the request method.
    WrongMethod,
    /// `htu` is not this resource's URL for the request.
    WrongUri,
    /// `iat` is outside the accepted window.
    Stale,
    /// `ath` is not the hash of the presented access token.
    WrongTokenHash,
    /// The proof's key is not the one the token is bound to (`cnf.jkt`).
    KeyMismatch,
    /// The proof was already used.
    Replayed,
    /// The guard issues nonces and the proof has none, or an invalid or expired one
    /// (`error="use_dpop_nonce"`, with a fresh nonce in `DPoP-Nonce`).
    NonceRequired,
    /// `content_digest` is not one `sha-256=:…:` member, is not the digest of the body, or is missing where
    /// the MCP layer requires it (see [`ContentDigest`]).
    ContentDigest,
}
}

impl ProofError {
    /// The stable label of this reason, for logs, metrics and alerts (snake case; never renamed).
    pub const fn kind(self) -> &'static str {
        match self {
            Self::Missing => "dpop_proof_missing",
            Self::MultipleProofs => "dpop_multiple_proofs",
            Self::Malformed => "dpop_proof_malformed",
            Self::WrongType => "dpop_wrong_type",
            Self::DisallowedAlgorithm => "dpop_disallowed_algorithm",
            Self::BadKey => "dpop_bad_key",
            Self::PrivateKey => "dpop_private_key",
            Self::BadSignature => "dpop_bad_signature",
            Self::UnsupportedCritical => "dpop_unsupported_critical",
            Self::MissingClaim => "dpop_missing_claim",
            Self::WrongMethod => "dpop_wrong_method",
            Self::WrongUri => "dpop_wrong_uri",
            Self::Stale => "dpop_stale",
            Self::WrongTokenHash => "dpop_wrong_token_hash",
            Self::KeyMismatch => "dpop_key_mismatch",
            Self::Replayed => "dpop_replayed",
            Self::NonceRequired => "dpop_nonce_required",
            Self::ContentDigest => "dpop_content_digest",
        }
    }

    /// A short, fixed, client-safe explanation (used as `error_description`).
    pub const fn description(self) -> &'static str {
        match self {
            Self::Missing => "The request has no DPoP proof",
            Self::MultipleProofs => "The request has more than one DPoP header",
            Self::Malformed => "The DPoP proof is malformed",
            Self::WrongType => "The DPoP proof typ is not dpop+jwt",
            Self::DisallowedAlgorithm => "The DPoP proof algorithm is not allowed",
            Self::BadKey => "The DPoP proof has no usable public key",
            Self::PrivateKey => "The DPoP proof key contains private key material",
            Self::BadSignature => "The DPoP proof signature is invalid",
            Self::UnsupportedCritical => "The DPoP proof has a critical header extension",
            Self::MissingClaim => "The DPoP proof lacks a required claim",
            Self::WrongMethod => "The DPoP proof htm does not match the request method",
            Self::WrongUri => "The DPoP proof htu does not match the request URI",
            Self::Stale => "The DPoP proof iat is outside the accepted window",
            Self::WrongTokenHash => "The DPoP proof ath does not match the access token",
            Self::KeyMismatch => "The DPoP proof key does not match the access token binding",
            Self::Replayed => "The DPoP proof was already used",
            Self::NonceRequired => "The DPoP proof must carry the nonce this server issued",
            Self::ContentDigest => "The DPoP proof content_digest does not match the request body",
        }
    }
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// The current time in seconds since the epoch, with its fraction (what `iat` is compared with).
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A proof that passed every check that does not need the validated token.
#[derive(Clone)]
pub(crate) struct VerifiedProof {
    pub(crate) jkt: [u8; 32],
    /// SHA-256 of the proof key's thumbprint and the `jti`: what the replay store records.
    pub(crate) replay_key: [u8; 32],
    /// How long the proof stays acceptable, so how long its `jti` must be remembered.
    pub(crate) ttl: Duration,
    /// The current nonce, when the proof used the previous window's: sent on the response.
    pub(crate) next_nonce: Option<http::HeaderValue>,
    /// The proof's `content_digest`, well formed, for whoever reads the body (the MCP layer).
    pub(crate) content_digest: Option<ContentDigest>,
}

/// A guard's DPoP configuration, resolved at build time.
pub(crate) struct DpopCheck {
    pub(crate) config: DpopConfig,
    /// The normalized public origin `htu` must start with.
    pub(crate) origin: String,
    /// `ES256 PS256 …`, for the `algs` challenge parameter.
    pub(crate) algs: String,
    nonces: Option<nonce::Nonces>,
}

impl DpopCheck {
    pub(crate) fn new(config: DpopConfig, resource: &str) -> Result<Self, crate::BuildError> {
        let origin = config.public_origin.as_deref().unwrap_or(resource);
        let origin = origin_of(origin).ok_or(crate::BuildError::Invalid(
            "the DPoP public origin is not an absolute URL",
        ))?;
        if config.algorithms.is_empty() {
            return Err(crate::BuildError::Invalid(
                "the DPoP algorithm allow-list is empty",
            ));
        }
        let algs = config
            .algorithms
            .iter()
            .map(Algorithm::name)
            .collect::<Vec<_>>()
            .join(" ");
        let nonces = match &config.nonce_secret {
            None => None,
            Some((secret, lifetime)) => Some(nonce::Nonces::new(secret, *lifetime).ok_or(
                crate::BuildError::Invalid(
                    "DPoP server nonces need a secret of 32 bytes or more and a lifetime of a second or more",
                ),
            )?),
        };
        Ok(Self {
            config,
            origin,
            algs,
            nonces,
        })
    }

    /// The `DPoP-Nonce` header of a `use_dpop_nonce` refusal, when this guard issues nonces.
    pub(crate) fn nonce_header(&self) -> Option<http::HeaderValue> {
        let nonce = self.nonces.as_ref()?.current(now());
        http::HeaderValue::from_str(&nonce).ok()
    }

    /// Every check of the proof that the token's validation is not needed for.
    pub(crate) fn verify(
        &self,
        parts: &Parts,
        token: &BearerToken,
        now: f64,
    ) -> Result<VerifiedProof, ProofError> {
        let mut headers = parts.headers.get_all(DPOP_HEADER).iter();
        let value = headers.next().ok_or(ProofError::Missing)?;
        if headers.next().is_some() {
            return Err(ProofError::MultipleProofs);
        }
        let value = value.to_str().map_err(|_| ProofError::Malformed)?;
        let proof = proof::verify_signed(value.trim(), self.config.algorithms)?;
        if proof.text("htm")? != parts.method.as_str() {
            return Err(ProofError::WrongMethod);
        }
        let expected = htu::expected(&self.origin, parts.uri.path());
        let presented = htu::normalize(proof.text("htu")?);
        if expected.is_none() || expected != presented {
            return Err(ProofError::WrongUri);
        }
        let iat = proof.iat()?;
        let (max_age, skew) = (
            self.config.max_age.as_secs_f64(),
            self.config.max_clock_skew.as_secs_f64(),
        );
        if iat < now - max_age || iat > now + skew {
            return Err(ProofError::Stale);
        }
        let ath = proof::token_hash(&token.sha256());
        if !bool::from(proof.text("ath")?.as_bytes().ct_eq(ath.as_bytes())) {
            return Err(ProofError::WrongTokenHash);
        }
        let content_digest = match proof.claims.get("content_digest") {
            None => None,
            Some(claim) => Some(
                claim
                    .as_str()
                    .and_then(ContentDigest::parse)
                    .ok_or(ProofError::ContentDigest)?,
            ),
        };
        let mut next_nonce = None;
        if let Some(nonces) = &self.nonces {
            let presented = proof
                .claims
                .get("nonce")
                .and_then(serde_json::Value::as_str);
            match nonces.check(presented, now) {
                nonce::NonceCheck::Current => {}
                nonce::NonceCheck::Previous => next_nonce = self.nonce_header(),
                nonce::NonceCheck::Invalid => return Err(ProofError::NonceRequired),
            }
        }
        let jti = proof.jti()?;
        let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
        sha2::Digest::update(&mut hasher, b"bearer-guard dpop jti v1\0");
        sha2::Digest::update(&mut hasher, proof.jkt);
        sha2::Digest::update(&mut hasher, jti.as_bytes());
        Ok(VerifiedProof {
            jkt: proof.jkt,
            replay_key: sha2::Digest::finalize(hasher).into(),
            // Until `iat + max_age`, and a second more for the clocks of replicas sharing the store.
            ttl: Duration::from_secs_f64((iat + max_age - now).max(0.0) + 1.0),
            next_nonce,
            content_digest,
        })
    }
}
