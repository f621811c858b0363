//! [`Rejection`]: why the guard refused a request, and how each reason is rendered (status, error code,
//! description, gRPC status).

use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::error::{InvalidToken, Unavailable, ValidationError};
use crate::extract::MalformedRequest;

/// Why the guard refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No `Authorization` header, or one for another scheme (e.g. `Basic`).
    MissingCredentials,
    /// The `Authorization` header is unusable.
    InvalidRequest(MalformedRequest),
    /// The token is invalid, expired, revoked or not for this resource.
    InvalidToken(InvalidToken),
    /// The token is valid but lacks scopes the operation needs.
    InsufficientScope,
    /// The DPoP proof is missing, invalid, replayed, or not for this token (RFC 9449 §7.1).
    #[cfg(feature = "dpop")]
    InvalidDpopProof(crate::bind::dpop::ProofError),
    /// The validator could not decide (key set or authorization server unavailable).
    Unavailable {
        /// What was unavailable.
        reason: Unavailable,
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// An internal error; nothing is disclosed.
    Internal,
}

impl From<&ValidationError> for Rejection {
    fn from(error: &ValidationError) -> Self {
        match *error {
            ValidationError::InvalidToken { reason, .. } => Self::InvalidToken(reason),
            ValidationError::Unavailable {
                reason,
                retry_after,
            } => Self::Unavailable {
                reason,
                retry_after,
            },
            ValidationError::Internal(_) => Self::Internal,
        }
    }
}

impl From<ValidationError> for Rejection {
    fn from(error: ValidationError) -> Self {
        Self::from(&error)
    }
}

impl Rejection {
    /// The stable label of this rejection, for logs, metrics and alerts (snake case; never renamed): the
    /// most specific reason's kind ([`InvalidToken::kind`], [`MalformedRequest::kind`],
    /// [`Unavailable::kind`]), else `missing_credentials`, `insufficient_scope` or `internal`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidRequest(why) => why.kind(),
            Self::InvalidToken(why) => why.kind(),
            Self::InsufficientScope => "insufficient_scope",
            #[cfg(feature = "dpop")]
            Self::InvalidDpopProof(why) => why.kind(),
            Self::Unavailable { reason, .. } => reason.kind(),
            Self::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            #[cfg(feature = "dpop")]
            Self::InvalidDpopProof(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The RFC 6750 error code for the challenge, if the challenge carries one.
    pub fn challenge_error(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope => Some("insufficient_scope"),
            #[cfg(feature = "dpop")]
            Self::InvalidDpopProof(crate::bind::dpop::ProofError::NonceRequired) => {
                Some("use_dpop_nonce")
            }
            #[cfg(feature = "dpop")]
            Self::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
            Self::MissingCredentials | Self::Unavailable { .. } | Self::Internal => None,
        }
    }

    /// The error code used in the response body (always present).
    pub fn body_error(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "unauthorized",
            Self::Unavailable { .. } => "temporarily_unavailable",
            Self::Internal => "server_error",
            _ => self.challenge_error().unwrap_or("server_error"),
        }
    }

    /// A fixed, client-safe description.
    pub fn description(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "This resource requires a bearer access token",
            Self::InvalidRequest(why) => why.description(),
            Self::InvalidToken(why) => why.description(),
            Self::InsufficientScope => "The access token lacks a scope this request requires",
            #[cfg(feature = "dpop")]
            Self::InvalidDpopProof(why) => why.description(),
            Self::Unavailable { reason, .. } => reason.description(),
            Self::Internal => "Internal error",
        }
    }

    /// The gRPC status code (<https://grpc.github.io/grpc/core/md_doc_statuscodes.html>).
    pub fn grpc_code(&self) -> u8 {
        match self {
            Self::MissingCredentials | Self::InvalidToken(_) => 16,
            #[cfg(feature = "dpop")]
            Self::InvalidDpopProof(_) => 16,
            Self::InvalidRequest(_) => 3,
            Self::InsufficientScope => 7,
            Self::Unavailable { .. } => 14,
            Self::Internal => 13,
        }
    }

    /// Does the response carry a `WWW-Authenticate` challenge?
    pub fn has_challenge(&self) -> bool {
        !matches!(self, Self::Unavailable { .. } | Self::Internal)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.status())
    }
}
