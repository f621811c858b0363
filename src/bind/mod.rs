//! Sender-constrained access tokens: a token's confirmation (`cnf`, RFC 7800) checked against the request.
//!
//! ```
//! use bearer_guard::bind::{ClientCertificate, Confirmation};
//!
//! // A token bound to a DPoP key (RFC 9449 `cnf.jkt`) or to a client certificate (RFC 8705 `x5t#S256`).
//! let bound = Confirmation::default().with_certificate_sha256([7; 32]);
//! assert!(bound.is_bound() && bound.jkt().is_none());
//! // The TLS acceptor puts the client certificate of the connection into the request extensions:
//! let presented = ClientCertificate::from_sha256([7; 32]);
//! assert!(bound.matches_certificate(Some(&presented)));
//! assert!(!bound.matches_certificate(None));
//! ```
//!
//! A validator reads `cnf` and records it in the [`AccessToken`](crate::AccessToken) as a [`Confirmation`];
//! it accepts a bound token only when the guard asking told it (through its
//! [`ValidationContext`](crate::ValidationContext)) that it checks that kind of binding. The guard then
//! checks every binding a token carries, whatever validator produced it:
//! - `jkt` (DPoP): the request must be `Authorization: DPoP <token>` with a valid proof signed by that key
//!   ([`dpop`]); the same token as `Bearer` is refused (a downgrade, RFC 9449 §7.2);
//! - `x5t#S256` (mutual TLS): the [`ClientCertificate`] of the connection must have that SHA-256.
//!
//! Certificates come from your TLS acceptor, never from a header: behind a TLS-terminating proxy, build the
//! [`ClientCertificate`] only from the proxy's trusted, configured forwarding mechanism. With tokio-rustls
//! and hyper, read `connection.peer_certificates()` after the handshake and add the first one to every
//! request of that connection (`examples/mtls.rs` does exactly this, and `tests/mtls.rs` runs it over TLS):
//!
//! ```ignore
//! let tls = acceptor.accept(tcp).await?;
//! let certificate = tls.get_ref().1.peer_certificates()
//!     .and_then(|chain| chain.first())
//!     .map(|der| ClientCertificate::from_der(der.as_ref()));
//! let service = tower::service_fn(move |mut request: Request<Incoming>| {
//!     if let Some(certificate) = &certificate {
//!         request.extensions_mut().insert(certificate.clone());
//!     }
//!     guarded.clone().oneshot(request)
//! });
//! ```

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[cfg(feature = "dpop")]
pub mod dpop;

/// What a token is bound to (its `cnf` claim or introspection member), if anything.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Confirmation {
    jkt: Option<[u8; 32]>,
    x5t_s256: Option<[u8; 32]>,
}

impl Confirmation {
    /// Bound to the DPoP key whose RFC 7638 SHA-256 thumbprint is `jkt`.
    pub fn with_jkt(mut self, jkt: [u8; 32]) -> Self {
        self.jkt = Some(jkt);
        self
    }

    /// Bound to the client certificate whose DER encoding has this SHA-256.
    pub fn with_certificate_sha256(mut self, sha256: [u8; 32]) -> Self {
        self.x5t_s256 = Some(sha256);
        self
    }

    /// The JWK thumbprint of the DPoP key the token is bound to.
    pub fn jkt(&self) -> Option<&[u8; 32]> {
        self.jkt.as_ref()
    }

    /// The SHA-256 of the certificate the token is bound to.
    pub fn certificate_sha256(&self) -> Option<&[u8; 32]> {
        self.x5t_s256.as_ref()
    }

    /// Is the token bound to anything?
    pub fn is_bound(&self) -> bool {
        self.jkt.is_some() || self.x5t_s256.is_some()
    }

    /// Does the connection's certificate satisfy the certificate binding (true when there is none)?
    pub fn matches_certificate(&self, presented: Option<&ClientCertificate>) -> bool {
        match (&self.x5t_s256, presented) {
            (None, _) => true,
            (Some(bound), Some(presented)) => bool::from(bound.ct_eq(&presented.sha256)),
            (Some(_), None) => false,
        }
    }

    /// Reads a `cnf` JSON object (RFC 7800): `jkt` and `x5t#S256`, each base64url of 32 bytes. Any other
    /// confirmation method, a malformed value, or a kind of binding the caller does not check gives `None`
    /// (the token must then be refused: a binding nobody checks proves nothing).
    #[cfg(feature = "introspection")]
    pub(crate) fn from_json(cnf: &serde_json::Value, accepts: Bindings) -> Option<Self> {
        let object = cnf.as_object().filter(|o| !o.is_empty())?;
        let mut confirmation = Self::default();
        for (name, value) in object {
            let value = value.as_str()?;
            match name.as_str() {
                "jkt" if accepts.dpop => confirmation.jkt = Some(decode_thumbprint(value)?),
                "x5t#S256" if accepts.certificate => {
                    confirmation.x5t_s256 = Some(decode_thumbprint(value)?)
                }
                _ => return None,
            }
        }
        Some(confirmation)
    }
}

/// A base64url (no padding) SHA-256 value.
#[cfg(feature = "remote")]
pub(crate) fn decode_thumbprint(b64: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let mut out = [0u8; 32];
    if b64.len() != 43 {
        return None;
    }
    let mut buffer = [0u8; 33];
    let len = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode_slice(b64, &mut buffer)
        .ok()?;
    (len == 32).then(|| {
        out.copy_from_slice(&buffer[..32]);
        out
    })
}

impl fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Thumbprints are public values, but nothing needs them in logs: say what kind of binding.
        f.debug_struct("Confirmation")
            .field("dpop", &self.jkt.is_some())
            .field("certificate", &self.x5t_s256.is_some())
            .finish()
    }
}

/// Checks a validated token's bindings against the request: `proven_jkt` is the thumbprint of the key of
/// the request's verified DPoP proof, if it had one.
pub(crate) fn check_binding(
    confirmation: &Confirmation,
    proven_jkt: Option<&[u8; 32]>,
    parts: &http::request::Parts,
) -> Result<(), crate::Rejection> {
    use crate::{InvalidToken, Rejection};
    match (confirmation.jkt(), proven_jkt) {
        (None, None) => {}
        #[cfg(feature = "dpop")]
        (Some(bound), Some(proven)) => {
            if !bool::from(bound.ct_eq(proven)) {
                return Err(Rejection::InvalidDpopProof(dpop::ProofError::KeyMismatch));
            }
        }
        #[cfg(not(feature = "dpop"))]
        (Some(_), Some(_)) => return Err(Rejection::InvalidToken(InvalidToken::SenderConstrained)),
        // A key-bound token without its proof: presented as `Bearer` (a downgrade, RFC 9449 §7.2).
        (Some(_), None) => return Err(Rejection::InvalidToken(InvalidToken::SenderConstrained)),
        (None, Some(_)) => return Err(Rejection::InvalidToken(InvalidToken::NotDpopBound)),
    }
    if !confirmation.matches_certificate(parts.extensions.get::<ClientCertificate>()) {
        return Err(Rejection::InvalidToken(InvalidToken::CertificateMismatch));
    }
    Ok(())
}

/// Which kinds of binding a guard checks, so a validator may accept tokens bound that way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Bindings {
    pub(crate) dpop: bool,
    pub(crate) certificate: bool,
}

/// The client certificate of the TLS connection a request came on (RFC 8705), as your TLS acceptor put it
/// into the request extensions. Only its SHA-256 is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    sha256: [u8; 32],
}

impl ClientCertificate {
    /// From the DER encoding of the end-entity certificate the client presented.
    pub fn from_der(der: &[u8]) -> Self {
        Self {
            sha256: Sha256::digest(der).into(),
        }
    }

    /// From an already computed SHA-256 of the DER encoding.
    pub fn from_sha256(sha256: [u8; 32]) -> Self {
        Self { sha256 }
    }

    /// The SHA-256 of the certificate's DER encoding.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate").finish_non_exhaustive()
    }
}
