//! The `DPoP` challenges of a guard that accepts DPoP (RFC 9449 §7.1, §7.2), made from its `Bearer` ones.

use bytes::Bytes;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderValue};

use super::{Presented, Rejection};
use crate::extract::MalformedRequest;

/// The DPoP side of a guard's challenges (RFC 9449 §7.1, §7.2).
#[derive(Debug)]
pub(crate) struct DpopChallenge {
    /// `DPoP algs="ES256 …"`: the challenge added, without error, next to a `Bearer` one.
    pub(crate) plain: HeaderValue,
    /// `, algs="ES256 …"`, appended to a `DPoP` challenge made from the `Bearer` one.
    pub(crate) algs_param: String,
    /// Only `DPoP` is accepted: no `Bearer` challenge at all.
    pub(crate) required: bool,
}

impl DpopChallenge {
    #[cfg_attr(not(feature = "dpop"), allow(dead_code))]
    pub(crate) fn new(algs: &str, required: bool) -> Option<Self> {
        let algs_param = format!(", algs=\"{algs}\"");
        Some(Self {
            plain: HeaderValue::from_str(&format!("DPoP algs=\"{algs}\"")).ok()?,
            algs_param,
            required,
        })
    }

    /// The `DPoP` twin of a rendered `Bearer` challenge: same parameters (`resource_metadata`, `error`,
    /// `scope`, …), then `algs`.
    pub(super) fn convert(&self, bearer: &HeaderValue) -> Option<HeaderValue> {
        let rest = bearer.as_bytes().strip_prefix(b"Bearer ")?;
        let mut value = Vec::with_capacity(rest.len() + 5 + self.algs_param.len());
        value.extend_from_slice(b"DPoP ");
        value.extend_from_slice(rest);
        value.extend_from_slice(self.algs_param.as_bytes());
        HeaderValue::from_maybe_shared(Bytes::from(value)).ok()
    }
}

/// The challenges of a guard accepting DPoP (RFC 9449 §7.2): the error goes to the scheme the client used;
/// with no credentials both schemes are offered without error; with two `Authorization` headers both say
/// `invalid_request`; a DPoP-only guard offers `DPoP` alone.
pub(super) fn dpop_challenges(
    dpop: &DpopChallenge,
    rejection: &Rejection,
    scheme: Presented,
    bearer: HeaderValue,
    headers: &mut HeaderMap,
) {
    let as_dpop = |headers: &mut HeaderMap, bearer: &HeaderValue| {
        if let Some(value) = dpop.convert(bearer) {
            headers.append(WWW_AUTHENTICATE, value);
        }
    };
    #[cfg(feature = "dpop")]
    let proof_error = matches!(rejection, Rejection::InvalidDpopProof(_));
    #[cfg(not(feature = "dpop"))]
    let proof_error = false;
    let both = matches!(
        rejection,
        Rejection::InvalidRequest(MalformedRequest::MultipleAuthorizationHeaders)
    );
    if both && !dpop.required {
        // Bearer first, as in RFC 9449 figure 19, both with the error.
        headers.append(WWW_AUTHENTICATE, bearer.clone());
        as_dpop(headers, &bearer);
    } else if dpop.required || proof_error || scheme == Presented::Dpop {
        as_dpop(headers, &bearer);
    } else {
        headers.append(WWW_AUTHENTICATE, bearer);
        headers.append(WWW_AUTHENTICATE, dpop.plain.clone());
    }
}
