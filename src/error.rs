//! Typed errors: why a token was refused, why validation could not run, why a configuration was refused.
//!
//! The types here separate the cases the HTTP layer must answer differently:
//!
//! | error | HTTP | `WWW-Authenticate` |
//! |---|---|---|
//! | [`ValidationError::InvalidToken`] | 401 | `error="invalid_token"` |
//! | [`ValidationError::Unavailable`] | 503 + `Retry-After` | none (the client keeps its token) |
//! | [`ValidationError::Internal`] | 500 | none, no details |
//!
//! Every description is a `&'static str` chosen by this crate or the validator author, so a token can never
//! end up in an `error_description`, a log line or a panic message by formatting.
//!
//! Every error also has a stable [`kind`](ValidationError::kind) label (`"wrong_audience"`,
//! `"key_set_unavailable"`, …: snake case, never renamed, fit for metrics labels and alerts) and refusals
//! carry a log-only [`Detail`] (the audience expected and the one found, the unknown `kid`, …):
//!
//! ```
//! use bearer_guard::{Detail, InvalidToken, Unavailable, ValidationError};
//!
//! let refused = ValidationError::refused(InvalidToken::UnknownKey, Detail::found("kid", "2024-old"));
//! assert_eq!((refused.kind(), refused.detail().to_string().as_str()), ("unknown_key", r#"kid "2024-old""#));
//!
//! let down = ValidationError::unavailable(Unavailable::KeySet);
//! assert_eq!(down.kind(), "key_set_unavailable");
//! assert!(down.detail().is_none());
//! ```

use std::fmt;
use std::time::Duration;

mod detail;

pub use detail::Detail;

indexed_enum! {
/// Why a presented access token was refused (HTTP 401, `error="invalid_token"`).
///
/// The description of each reason is fixed text; it is safe to send to the client and to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidToken {
    /// The token is not one this validator knows (e.g. not in a static token set).
    Unknown,
    /// The token is not well-formed for this validator (e.g. not a JWT, bad base64, bad JSON).
    Malformed,
    /// The token's `exp` is in the past (beyond the leeway).
    Expired,
    /// The token's `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// The signature does not verify.
    BadSignature,
    /// The signing algorithm is not allowed, or not allowed for the key.
    DisallowedAlgorithm,
    /// No trusted key matches the token's key id.
    UnknownKey,
    /// The token's `typ` header is not an access-token type.
    WrongType,
    /// The issuer is not the one trusted.
    WrongIssuer,
    /// The token was not issued for this resource (audience mismatch, RFC 8707).
    WrongAudience,
    /// A required claim is missing or has the wrong type.
    MissingClaim,
    /// The token carries a critical header extension this crate does not understand.
    UnsupportedCritical,
    /// The authorization server reports the token as not active (revoked, expired or unknown).
    Inactive,
    /// The token is not meant for this validator (used by composite validators to try the next one).
    NotApplicable,
    /// The token is sender-constrained (it carries `cnf`: DPoP or certificate bound) and was presented
    /// without its proof of possession: as `Bearer` (a downgrade), or to a guard that does not check that
    /// kind of binding.
    SenderConstrained,
    /// The token was presented with a DPoP proof but is not bound to a DPoP key (`cnf.jkt`).
    NotDpopBound,
    /// The guard accepts only DPoP-bound tokens, and this one came as `Bearer`.
    DpopRequired,
    /// The token is bound to a client certificate (`cnf["x5t#S256"]`, RFC 8705) that the connection did
    /// not present.
    CertificateMismatch,
}
}

impl InvalidToken {
    /// The stable label of this reason, for logs, metrics and alerts (snake case; never renamed).
    pub const fn kind(self) -> &'static str {
        match self {
            Self::Unknown => "unknown_token",
            Self::Malformed => "malformed_token",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::DisallowedAlgorithm => "disallowed_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::WrongType => "wrong_type",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::MissingClaim => "missing_claim",
            Self::UnsupportedCritical => "unsupported_critical",
            Self::Inactive => "inactive",
            Self::NotApplicable => "not_applicable",
            Self::SenderConstrained => "sender_constrained",
            Self::NotDpopBound => "not_dpop_bound",
            Self::DpopRequired => "dpop_required",
            Self::CertificateMismatch => "certificate_mismatch",
        }
    }

    /// A short, fixed, client-safe explanation (used as `error_description`).
    pub const fn description(self) -> &'static str {
        match self {
            Self::Unknown => "The access token is not recognized",
            Self::Malformed => "The access token is malformed",
            Self::Expired => "The access token expired",
            Self::NotYetValid => "The access token is not yet valid",
            Self::BadSignature => "The access token signature is invalid",
            Self::DisallowedAlgorithm => "The access token signing algorithm is not allowed",
            Self::UnknownKey => "The access token was signed with an unknown key",
            Self::WrongType => "The token is not an access token",
            Self::WrongIssuer => "The access token issuer is not trusted",
            Self::WrongAudience => "The access token was not issued for this resource",
            Self::MissingClaim => "The access token lacks a required claim",
            Self::UnsupportedCritical => "The access token uses an unsupported critical header",
            Self::Inactive => "The access token is not active",
            Self::NotApplicable => "The access token is not recognized",
            Self::SenderConstrained => {
                "The access token is sender-constrained and needs a proof of possession"
            }
            Self::NotDpopBound => "The access token is not bound to a DPoP key",
            Self::DpopRequired => "This resource requires a DPoP-bound access token",
            Self::CertificateMismatch => "The access token is bound to another client certificate",
        }
    }
}

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

indexed_enum! {
/// Why the validator could not decide right now (HTTP 503 with `Retry-After`).
///
/// These are infrastructure failures: the client's token may well be valid, so the response never says
/// `invalid_token` (clients would throw the token away and start a new authorization).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unavailable {
    /// The key set (JWKS) could not be fetched, or is too stale to use.
    KeySet,
    /// The authorization server's metadata could not be fetched.
    Discovery,
    /// The introspection endpoint failed (connect error, timeout, 401/5xx, bad or oversize body).
    Introspection,
    /// Any other temporary failure of a backend the validator depends on.
    Backend,
    /// The DPoP replay store (e.g. Redis) could not record the proof.
    ReplayStore,
}
}

impl Unavailable {
    /// The stable label of this reason, for logs, metrics and alerts (snake case; never renamed).
    pub const fn kind(self) -> &'static str {
        match self {
            Self::KeySet => "key_set_unavailable",
            Self::Discovery => "discovery_unavailable",
            Self::Introspection => "introspection_unavailable",
            Self::Backend => "backend_unavailable",
            Self::ReplayStore => "replay_store_unavailable",
        }
    }

    /// A short, fixed, client-safe explanation.
    pub const fn description(self) -> &'static str {
        match self {
            Self::KeySet => "The token signing keys are temporarily unavailable",
            Self::Discovery => "The authorization server metadata is temporarily unavailable",
            Self::Introspection => "Token introspection is temporarily unavailable",
            Self::Backend => "Token validation is temporarily unavailable",
            Self::ReplayStore => "DPoP proof checking is temporarily unavailable",
        }
    }
}

/// The error a [`TokenValidator`](crate::TokenValidator) returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationError {
    /// The token is invalid: 401 `invalid_token`.
    InvalidToken {
        /// Why: the client sees this reason's fixed description.
        reason: InvalidToken,
        /// What a log needs (never sent to the client); [`Detail::NONE`] when the reason says it all.
        detail: Detail,
    },
    /// The validator cannot decide now: 503 with `Retry-After`.
    Unavailable {
        /// What was unavailable.
        reason: Unavailable,
        /// How long the client should wait before retrying.
        retry_after: Duration,
    },
    /// A bug or an impossible state: 500, nothing leaked to the client. The text is logged.
    Internal(&'static str),
}

impl ValidationError {
    /// A refusal with the facts a log needs (see [`Detail`]).
    pub fn refused(reason: InvalidToken, detail: Detail) -> Self {
        Self::InvalidToken { reason, detail }
    }

    /// The stable label of this error (snake case; never renamed): the refusal reason's
    /// [`kind`](InvalidToken::kind), the unavailable backend's [`kind`](Unavailable::kind), or `"internal"`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::InvalidToken { reason, .. } => reason.kind(),
            Self::Unavailable { reason, .. } => reason.kind(),
            Self::Internal(_) => "internal",
        }
    }

    /// The log-only facts of a refusal; [`Detail::NONE`] for the other errors (an unavailable backend is
    /// logged where it failed, an internal error's text is logged by the layer).
    pub fn detail(&self) -> &Detail {
        static NONE: Detail = Detail::NONE;
        match self {
            Self::InvalidToken { detail, .. } => detail,
            _ => &NONE,
        }
    }

    /// The refusal reason, if this is a refusal.
    pub const fn reason(&self) -> Option<InvalidToken> {
        match self {
            Self::InvalidToken { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// Shorthand for [`ValidationError::Unavailable`] with the default retry delay (5 seconds).
    pub const fn unavailable(reason: Unavailable) -> Self {
        Self::Unavailable {
            reason,
            retry_after: Duration::from_secs(5),
        }
    }
}

impl From<InvalidToken> for ValidationError {
    fn from(reason: InvalidToken) -> Self {
        Self::InvalidToken {
            reason,
            detail: Detail::NONE,
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidToken { reason, .. } => {
                write!(f, "invalid token: {}", reason.description())
            }
            Self::Unavailable {
                reason,
                retry_after,
            } => write!(
                f,
                "validator unavailable: {} (retry after {} s)",
                reason.description(),
                retry_after.as_secs()
            ),
            Self::Internal(what) => write!(f, "internal validation error: {what}"),
        }
    }
}

impl std::error::Error for ValidationError {}

/// A configuration the builders refused. Returned by every `build()`; never raised on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No resource identifier was configured.
    MissingResource,
    /// The resource identifier is not an absolute `https` URL (or `http` on loopback) without fragment,
    /// query or user info.
    InvalidResource(String),
    /// No authorization server was configured (MCP requires at least one in the metadata).
    MissingAuthorizationServer,
    /// An authorization server issuer identifier is not a valid `https` URL (or `http` on loopback).
    InvalidAuthorizationServer(String),
    /// A metadata field breaks RFC 9728 or this crate's rules.
    InvalidMetadata(&'static str),
    /// No token validator was configured.
    MissingValidator,
    /// A scope string breaks the RFC 6749 §3.3 syntax (`%x21 / %x23-5B / %x5D-7E`).
    InvalidScope(String),
    /// A static token is unusable (too short, not `b64token` syntax, or a duplicate).
    InvalidStaticToken(&'static str),
    /// A validator's explicitly configured audiences do not include the layer's resource (named here).
    AudienceExcludesResource(String),
    /// The layer advertises an authorization server (named here) whose tokens its validator never accepts.
    UntrustedAuthorizationServer(String),
    /// Any other invalid setting.
    Invalid(&'static str),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingResource => f.write_str("no resource identifier configured"),
            Self::InvalidResource(why) => write!(f, "invalid resource identifier: {why}"),
            Self::MissingAuthorizationServer => {
                f.write_str("at least one authorization server must be configured")
            }
            Self::InvalidAuthorizationServer(why) => {
                write!(f, "invalid authorization server issuer: {why}")
            }
            Self::InvalidMetadata(why) => write!(f, "invalid protected resource metadata: {why}"),
            Self::MissingValidator => f.write_str("no token validator configured"),
            Self::InvalidScope(scope) => write!(f, "invalid scope {scope:?}"),
            Self::InvalidStaticToken(why) => write!(f, "invalid static token: {why}"),
            Self::AudienceExcludesResource(resource) => write!(
                f,
                "the validator's configured audiences do not include this layer's resource {resource:?}"
            ),
            Self::UntrustedAuthorizationServer(issuer) => write!(
                f,
                "the authorization server {issuer:?} is advertised but the validator trusts no tokens of it"
            ),
            Self::Invalid(why) => write!(f, "invalid configuration: {why}"),
        }
    }
}

impl std::error::Error for BuildError {}
