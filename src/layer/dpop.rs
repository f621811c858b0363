//! The guard's DPoP steps (RFC 9449): refusing `Bearer` where DPoP is required, the proof checked before the
//! token is validated, and its `jti` recorded after.

use http::request::Parts;
use http::Response;

use super::Shared;
use crate::bind::dpop::{ProofError, StoreFailure, VerifiedProof, DPOP_NONCE};
use crate::body::FixedBody;
use crate::challenge::{Presented, Rejection};
use crate::scope::Requirement;
use crate::store::{Inserted, StoreCall};
use crate::token::BearerToken;

impl Shared {
    /// The `401` for `Authorization: Bearer` at a guard that accepts only DPoP.
    pub(crate) fn refuse_bearer(
        &self,
        requirement: &Requirement,
        parts: &Parts,
    ) -> Option<Response<FixedBody>> {
        let dpop = self.dpop.as_deref()?;
        (dpop.config.mode == crate::bind::dpop::DpopMode::Required).then(|| {
            let rejection = Rejection::InvalidToken(crate::InvalidToken::DpopRequired);
            self.reject(rejection, requirement, parts)
        })
    }

    /// Checks the proof of an `Authorization: DPoP` request and marks the request as DPoP (for the
    /// challenges of inner layers), with the proof's `content_digest` for whoever reads the body. The
    /// response on failure: `401 invalid_dpop_proof`, or `use_dpop_nonce` with a fresh `DPoP-Nonce`.
    #[allow(clippy::result_large_err)]
    pub(crate) fn verify_proof(
        &self,
        parts: &mut Parts,
        token: &BearerToken,
        requirement: &Requirement,
    ) -> Result<VerifiedProof, Response<FixedBody>> {
        let Some(dpop) = self.dpop.as_deref() else {
            return Err(self.reject(Rejection::MissingCredentials, requirement, parts));
        };
        match dpop.verify(parts, token, crate::bind::dpop::now()) {
            Ok(verified) => {
                parts.extensions.insert(Presented::Dpop);
                if let Some(digest) = verified.content_digest {
                    parts.extensions.insert(digest);
                }
                Ok(verified)
            }
            Err(why) => {
                let mut response =
                    self.reject(Rejection::InvalidDpopProof(why), requirement, parts);
                if why == ProofError::NonceRequired {
                    if let Some(nonce) = dpop.nonce_header() {
                        response.headers_mut().insert(DPOP_NONCE, nonce);
                    }
                }
                Err(response)
            }
        }
    }

    /// Records the proof's `jti` in the replay store (after the token and its binding were accepted).
    pub(crate) fn record_proof(&self, proof: &VerifiedProof) -> StoreCall {
        match self.dpop.as_deref() {
            Some(dpop) => dpop
                .config
                .store
                .insert_if_absent(&proof.replay_key, proof.ttl),
            // Unreachable (a proof is only verified by a guard with DPoP): refuse, as a failed store.
            None => StoreCall::Ready(Err(crate::store::StoreError::Unreachable)),
        }
    }

    /// What the replay store's answer means for a DPoP request: go on, or the response to send.
    #[allow(clippy::result_large_err)]
    pub(crate) fn replay_answer(
        &self,
        answer: Inserted,
        requirement: &Requirement,
        parts: &Parts,
    ) -> Result<(), Response<FixedBody>> {
        match answer {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.reject(
                Rejection::InvalidDpopProof(ProofError::Replayed),
                requirement,
                parts,
            )),
            Err(error) => {
                let decision = self.dpop.as_ref().map(|d| d.config.on_store_failure);
                if decision == Some(StoreFailure::AcceptUnchecked) {
                    tracing::warn!(
                        error = error.kind(),
                        "bearer-guard accepted a DPoP proof without a replay check"
                    );
                    return Ok(());
                }
                tracing::warn!(
                    error = error.kind(),
                    "bearer-guard DPoP replay store failed"
                );
                Err(self.reject(
                    Rejection::Unavailable {
                        reason: crate::Unavailable::ReplayStore,
                        retry_after: std::time::Duration::from_secs(1),
                    },
                    requirement,
                    parts,
                ))
            }
        }
    }
}
