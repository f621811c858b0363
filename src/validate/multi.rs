//! [`MultiIssuer`]: one [`JwtValidator`] per trusted issuer, chosen by the token's (unverified) `iss`.
//!
//! The `iss` is only used to pick the validator; that validator then checks everything, signature
//! included, with *its own* keys. So a token that claims issuer A but is signed with issuer B's key fails
//! (RFC 8725 §3.8), and a token naming an unknown issuer is refused without any network request.
//!
//! ```
//! use bearer_guard::{JwtValidator, MultiIssuer};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), bearer_guard::BuildError> {
//! # let jwks = json!({"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
//! let multi = MultiIssuer::new()
//!     .issuer(JwtValidator::builder("https://a.example.com").jwks(&jwks).build()?)
//!     .issuer(JwtValidator::builder("https://b.example.com/").jwks(&jwks).build()?);
//! assert_eq!(multi.issuers().count(), 2);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;

use crate::error::BuildError;
use crate::error::InvalidToken;
use crate::token::BearerToken;
use crate::validate::jwt::{with_unverified_issuer, JwtValidator};
use crate::validate::{TokenValidator, Validation, ValidationContext};

/// With up to this many issuers, a token is first looked for in each validator's verified-token cache (its
/// SHA-256 is computed once): a token seen before then costs no payload decoding to route.
const CACHE_PROBE_MAX_ISSUERS: usize = 8;

/// Routes each token to the validator of its issuer.
#[derive(Clone, Default)]
pub struct MultiIssuer {
    validators: HashMap<String, JwtValidator>,
}

impl MultiIssuer {
    /// No issuer yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the issuer of `validator` (a later validator for the same issuer replaces the earlier one).
    pub fn issuer(mut self, validator: JwtValidator) -> Self {
        self.validators
            .insert(validator.issuer().to_owned(), validator);
        self
    }

    /// The trusted issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.validators.keys().map(String::as_str)
    }

    /// The validator that verified this very token before (a verified token names its issuer), if it is
    /// still in that validator's cache.
    fn validator_with_cached(
        &self,
        token: &BearerToken,
        context: &ValidationContext,
    ) -> Option<&JwtValidator> {
        if self.validators.len() > CACHE_PROBE_MAX_ISSUERS {
            return None;
        }
        self.validators
            .values()
            .find(|v| v.is_cached(token, context))
    }

    /// The validator of `issuer`.
    pub fn get(&self, issuer: &str) -> Option<&JwtValidator> {
        self.validators.get(issuer)
    }
}

impl fmt::Debug for MultiIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.validators.values()).finish()
    }
}

impl TokenValidator for MultiIssuer {
    fn validate(&self, token: &BearerToken, context: &ValidationContext) -> Validation {
        if let Some(validator) = self.validator_with_cached(token, context) {
            return validator.validate(token, context);
        }
        with_unverified_issuer(token.as_str(), |issuer| match issuer {
            Ok(issuer) => match self.validators.get(issuer) {
                Some(validator) => validator.validate(token, context),
                None => Validation::ready(Err(InvalidToken::WrongIssuer.into())),
            },
            Err(invalid) => Validation::ready(Err(invalid.into())),
        })
    }

    fn check_context(&self, context: &ValidationContext) -> Result<(), BuildError> {
        self.validators
            .values()
            .try_for_each(|v| v.check_context(context))
    }

    fn trusted_issuers(&self) -> Option<Vec<String>> {
        Some(self.validators.keys().cloned().collect())
    }

    /// Responsible for JWTs whose `iss` is one of the trusted issuers.
    fn is_responsible_for(&self, token: &BearerToken, context: &ValidationContext) -> bool {
        self.validator_with_cached(token, context).is_some()
            || with_unverified_issuer(token.as_str(), |iss| {
                iss.is_ok_and(|iss| self.validators.contains_key(iss))
            })
    }
}
