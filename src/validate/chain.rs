//! [`FirstMatch`]: composes validators; each token goes to the first one responsible for it.
//!
//! The usual composition: JWTs of your issuer(s) are verified locally, every other token is introspected.
//! A JWT whose issuer is configured never reaches introspection, and an opaque token never reaches the JWT
//! parser, so neither produces the other's errors.
//!
//! ```
//! use bearer_guard::{FirstMatch, StaticToken, StaticValidator};
//!
//! # fn main() -> Result<(), bearer_guard::BuildError> {
//! let service_tokens = StaticValidator::builder()
//!     .token("ci-token-0123456789abcdef", StaticToken::new("ci").scopes(["deploy"]))
//!     .build()?;
//! // e.g. FirstMatch::new().then(service_tokens).then(jwt_validator).then(introspection_validator)
//! let validator = FirstMatch::new().then(service_tokens);
//! # let _ = validator;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use crate::error::InvalidToken;
use crate::token::BearerToken;
use crate::validate::{TokenValidator, Validation};

/// Tries validators in order; the first one [responsible](TokenValidator::is_responsible_for) for a token
/// decides it alone. A token no validator is responsible for is refused (`invalid_token`).
#[derive(Clone, Default)]
pub struct FirstMatch {
    validators: Vec<Arc<dyn TokenValidator>>,
}

impl FirstMatch {
    /// No validator yet (refuses every token).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a validator.
    pub fn then(mut self, validator: impl TokenValidator) -> Self {
        self.validators.push(Arc::new(validator));
        self
    }

    /// Appends a shared validator.
    pub fn then_shared(mut self, validator: Arc<dyn TokenValidator>) -> Self {
        self.validators.push(validator);
        self
    }
}

impl fmt::Debug for FirstMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirstMatch")
            .field("validators", &self.validators.len())
            .finish()
    }
}

impl TokenValidator for FirstMatch {
    fn validate(&self, token: &BearerToken) -> Validation {
        match self.validators.iter().find(|v| v.is_responsible_for(token)) {
            Some(validator) => validator.validate(token),
            None => Validation::ready(Err(InvalidToken::NotApplicable.into())),
        }
    }

    fn bind_resource(&self, resource: &str) {
        for validator in &self.validators {
            validator.bind_resource(resource);
        }
    }

    fn is_responsible_for(&self, token: &BearerToken) -> bool {
        self.validators.iter().any(|v| v.is_responsible_for(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StaticToken, StaticValidator};

    fn statics(token: &str, subject: &str) -> StaticValidator {
        StaticValidator::builder()
            .token(token, StaticToken::new(subject))
            .build()
            .unwrap()
    }

    #[test]
    fn each_token_goes_to_the_validator_responsible_for_it() {
        let chain = FirstMatch::new()
            .then(statics("first-token-0123456789", "first"))
            .then(statics("second-token-0123456789", "second"));
        let check = |t: &str| {
            chain
                .validate(&BearerToken::new(t).unwrap())
                .into_ready()
                .unwrap()
        };
        assert_eq!(
            check("first-token-0123456789").unwrap().subject(),
            Some("first")
        );
        assert_eq!(
            check("second-token-0123456789").unwrap().subject(),
            Some("second")
        );
        assert_eq!(
            check("third-token-0123456789").unwrap_err(),
            crate::ValidationError::InvalidToken(InvalidToken::NotApplicable)
        );
        assert!(!chain.is_responsible_for(&BearerToken::new("third-token-0123456789").unwrap()));
        assert!(FirstMatch::new()
            .validate(&BearerToken::new("x").unwrap())
            .into_ready()
            .unwrap()
            .is_err());
    }
}
