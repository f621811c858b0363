//! [`ValidationContext`]: what the layer asking for a validation expects of the token.
//!
//! A validator can guard several layers at once (one `JwtValidator` cloned into the layers for `/mcp` and
//! `/api`, or shared through an `Arc`). The audience a token must name is a property of the *layer*, so
//! the layer hands its expectations to every validation, and every cache inside a validator keys its
//! answers by [`ValidationContext::cache_key`]: an answer checked for one layer's audience can never be
//! found by another layer.
//!
//! ```
//! use bearer_guard::{BearerToken, ValidationContext};
//!
//! let mcp = ValidationContext::new("https://api.example.com/mcp");
//! let api = ValidationContext::new("https://api.example.com/api");
//! let token = BearerToken::new("opaque-token-0123456789").unwrap();
//! assert_eq!(mcp.resource(), "https://api.example.com/mcp");
//! assert_ne!(mcp.cache_key(&token), api.cache_key(&token), "one token, two answers");
//! assert_eq!(mcp.cache_key(&token), mcp.clone().cache_key(&token));
//! ```

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::BuildError;
use crate::token::BearerToken;

/// What a layer expects of every token it is shown: today, the resource the token's audience must name.
/// Cheap to clone (one `Arc`); built once per layer.
#[derive(Clone)]
pub struct ValidationContext(Arc<Inner>);

struct Inner {
    resource: Box<str>,
    /// SHA-256 of the context, mixed into every cache key (see [`ValidationContext::cache_key`]).
    salt: [u8; 32],
}

impl ValidationContext {
    /// The context of a layer guarding `resource` (its RFC 9728 `resource`, the expected audience).
    pub fn new(resource: impl Into<String>) -> Self {
        let resource: Box<str> = resource.into().into_boxed_str();
        let mut hasher = Sha256::new();
        hasher.update(b"bearer-guard validation context v1\0resource\0");
        hasher.update(resource.as_bytes());
        Self(Arc::new(Inner {
            salt: hasher.finalize().into(),
            resource,
        }))
    }

    /// The resource identifier the token's audience must name (unless the validator was configured with
    /// explicit audiences, which then must include it).
    pub fn resource(&self) -> &str {
        &self.0.resource
    }

    /// The key a cache keeps the answer about `token` *in this context* under: the token's SHA-256
    /// ([`BearerToken::sha256`], computed once per request) XOR the SHA-256 of the context. Two contexts
    /// give the same token two unrelated keys, so a cache filled by one layer never answers another; an
    /// attacker who chooses tokens would need a SHA-256 preimage to make one token's key collide with
    /// another's. The key is a digest: the cache holds no usable credential.
    pub fn cache_key(&self, token: &BearerToken) -> [u8; 32] {
        let mut key = token.sha256();
        for (k, s) in key.iter_mut().zip(self.0.salt.iter()) {
            *k ^= s;
        }
        key
    }

    /// The build-time check of a validator with explicitly configured `audiences` (empty: the layer's
    /// resource, always fine): the layer's resource must be among them.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub(crate) fn check_audiences(&self, audiences: &[String]) -> Result<(), BuildError> {
        if audiences.is_empty() || audiences.iter().any(|a| **a == *self.0.resource) {
            Ok(())
        } else {
            Err(BuildError::AudienceExcludesResource(
                self.0.resource.to_string(),
            ))
        }
    }
}

impl fmt::Debug for ValidationContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationContext")
            .field("resource", &self.0.resource)
            .finish()
    }
}
