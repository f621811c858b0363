//! Server-issued DPoP nonces (RFC 9449 §8, §9) that every replica accepts without shared state.
//!
//! A nonce is `base64url(window || HMAC-SHA-256(secret, label || window)[..16])`, where `window` is the
//! current time divided by the nonce lifetime (8 bytes, big endian). Replicas configured with the same
//! secret issue and accept the same nonces; a nonce is accepted during its window and the next one, and a
//! response to a proof whose nonce is from the previous window carries the current one (`DPoP-Nonce`), so
//! a client always learns the next nonce before the one it uses expires. Unpredictable without the secret.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const LABEL: &[u8] = b"bearer-guard dpop nonce v1\0";
const TAG_BYTES: usize = 16;

/// Issues and checks nonces.
#[derive(Clone)]
pub(crate) struct Nonces {
    mac: Hmac<Sha256>,
    lifetime_secs: u64,
}

/// What a proof's nonce is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceCheck {
    /// Issued in the current window.
    Current,
    /// Issued in the previous window: accepted, and the response carries the current nonce.
    Previous,
    /// Missing, forged, or older.
    Invalid,
}

impl Nonces {
    /// `None` when the secret is shorter than 32 bytes or the lifetime under a second.
    pub(crate) fn new(secret: &[u8], lifetime: Duration) -> Option<Self> {
        if secret.len() < 32 || lifetime.as_secs() == 0 {
            return None;
        }
        Some(Self {
            mac: Hmac::<Sha256>::new_from_slice(secret).ok()?,
            lifetime_secs: lifetime.as_secs(),
        })
    }

    fn window(&self, now: f64) -> u64 {
        (now.max(0.0) as u64) / self.lifetime_secs
    }

    fn tag(&self, window: u64) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(LABEL);
        mac.update(&window.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The nonce of the current window.
    pub(crate) fn current(&self, now: f64) -> String {
        let window = self.window(now);
        let mut raw = [0u8; 8 + TAG_BYTES];
        raw[..8].copy_from_slice(&window.to_be_bytes());
        raw[8..].copy_from_slice(&self.tag(window)[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a proof's `nonce` claim (constant time in the tag).
    pub(crate) fn check(&self, nonce: Option<&str>, now: f64) -> NonceCheck {
        let mut raw = [0u8; 8 + TAG_BYTES + 3];
        let Some(nonce) = nonce.filter(|n| n.len() == 32) else {
            return NonceCheck::Invalid;
        };
        if URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) != Ok(8 + TAG_BYTES) {
            return NonceCheck::Invalid;
        }
        let mut window = [0u8; 8];
        window.copy_from_slice(&raw[..8]);
        let window = u64::from_be_bytes(window);
        let current = self.window(now);
        let age = if window == current {
            NonceCheck::Current
        } else if window.checked_add(1) == Some(current) {
            NonceCheck::Previous
        } else {
            return NonceCheck::Invalid;
        };
        let mut mac = self.mac.clone();
        mac.update(LABEL);
        mac.update(&window.to_be_bytes());
        match mac.verify_truncated_left(&raw[8..8 + TAG_BYTES]) {
            Ok(()) => age,
            Err(_) => NonceCheck::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_rotate_and_replicas_agree() {
        let secret = [9u8; 32];
        let (a, b) = (
            Nonces::new(&secret, Duration::from_secs(60)).unwrap(),
            Nonces::new(&secret, Duration::from_secs(60)).unwrap(),
        );
        let now = 1_800_000_000.0;
        let nonce = a.current(now);
        assert_eq!(
            b.check(Some(&nonce), now),
            NonceCheck::Current,
            "another replica"
        );
        assert_eq!(b.check(Some(&nonce), now + 60.0), NonceCheck::Previous);
        assert_eq!(b.check(Some(&nonce), now + 120.0), NonceCheck::Invalid);
        assert_eq!(
            b.check(Some(&nonce), now - 60.0),
            NonceCheck::Invalid,
            "from the future"
        );
        assert_ne!(a.current(now + 60.0), nonce);
        let other = Nonces::new(&[8u8; 32], Duration::from_secs(60)).unwrap();
        assert_eq!(
            other.check(Some(&nonce), now),
            NonceCheck::Invalid,
            "another secret"
        );
        let mut forged = nonce.clone().into_bytes();
        forged[31] = if forged[31] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(a.check(Some(&forged), now), NonceCheck::Invalid);
        assert_eq!(a.check(None, now), NonceCheck::Invalid);
        assert_eq!(a.check(Some("short"), now), NonceCheck::Invalid);
        assert!(Nonces::new(&[1u8; 31], Duration::from_secs(60)).is_none());
    }
}
