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

use crate::bind::Bindings;
use crate::error::BuildError;
use crate::token::BearerToken;

/// What a layer expects of every token it is shown: today, the resource the token's audience must name.
/// Cheap to clone (one `Arc`); built once per layer.
#[derive(Clone)]
pub struct ValidationContext(Arc<Inner>);

struct Inner {
    resource: Box<str>,
    /// The kinds of token binding the layer checks (validators refuse tokens bound any other way).
    bindings: Bindings,
    /// SHA-256 of the context, mixed into every cache key (see [`ValidationContext::cache_key`]).
    salt: [u8; 32],
}

impl ValidationContext {
    /// The context of a layer guarding `resource` (its RFC 9728 `resource`, the expected audience).
    pub fn new(resource: impl Into<String>) -> Self {
        Self::with_bindings(resource, Bindings::default())
    }

    /// The context of a layer that also checks the given kinds of sender constraint: validators may then
    /// accept tokens bound that way (and record the binding for the layer to check).
    pub(crate) fn with_bindings(resource: impl Into<String>, bindings: Bindings) -> Self {
        let resource: Box<str> = resource.into().into_boxed_str();
        let mut hasher = Sha256::new();
        hasher.update(b"bearer-guard validation context v1\0resource\0");
        hasher.update(resource.as_bytes());
        // A guard without bindings keeps the key it always had; one with them gets other keys, so an
        // answer "bound token accepted" is never found by a guard that does not check the binding.
        if bindings != Bindings::default() {
            hasher.update(b"\0bindings\0");
            hasher.update([u8::from(bindings.dpop), u8::from(bindings.certificate)]);
        }
        Self(Arc::new(Inner {
            salt: hasher.finalize().into(),
            resource,
            bindings,
        }))
    }

    /// The kinds of binding the layer checks.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub(crate) fn bindings(&self) -> Bindings {
        self.0.bindings
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
            .field("bindings", &self.0.bindings)
            .finish()
    }
}
