//! The MCP DPoP extension draft's `content_digest` (see [`ContentDigest`]), checked once the body is read.

use http::request::Parts;
use http::Response;

use super::{McpScopes, McpShared};
use crate::bind::dpop::{ContentDigest, ProofError};
use crate::body::FixedBody;
use crate::challenge::{Presented, Rejection, RequestFacts};
use crate::error::Detail;

impl McpScopes {
    /// Requires every DPoP `POST` to carry a `content_digest` proof claim (the MCP DPoP extension draft:
    /// `sha-256=:<base64 of SHA-256(body)>:`); one without it is refused with `401 invalid_dpop_proof`.
    /// Default: off. Whatever this says, a `content_digest` a proof carries is compared with the body the
    /// layer read, and a mismatch is refused the same way. Bearer requests (a guard with
    /// [`DpopMode::Optional`](crate::bind::dpop::DpopMode)) and requests without a body are not concerned.
    pub fn require_content_digest(mut self, required: bool) -> Self {
        self.content_digest_required = required;
        self
    }
}

impl McpShared {
    /// The proof's `content_digest` against the body read, for a request the guard let in with DPoP.
    #[allow(clippy::result_large_err)]
    pub(super) fn check_content_digest(
        &self,
        parts: &Parts,
        body: &[u8],
    ) -> Result<(), Response<FixedBody>> {
        if parts.extensions.get::<Presented>() != Some(&Presented::Dpop) {
            return Ok(());
        }
        match parts.extensions.get::<ContentDigest>() {
            Some(digest) if digest.matches(body) => Ok(()),
            None if !self.scopes.content_digest_required => Ok(()),
            _ => Err(self.guard.challenger.respond(
                Rejection::InvalidDpopProof(ProofError::ContentDigest),
                &self.guard.policy.requirement(parts),
                None,
                RequestFacts::of_parts(parts),
                &Detail::NONE,
            )),
        }
    }
}
