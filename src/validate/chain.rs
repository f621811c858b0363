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

use crate::error::{BuildError, InvalidToken};
use crate::token::BearerToken;
use crate::validate::{TokenValidator, Validation, ValidationContext};

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
    fn validate(&self, token: &BearerToken, context: &ValidationContext) -> Validation {
        match self
            .validators
            .iter()
            .find(|v| v.is_responsible_for(token, context))
        {
            Some(validator) => validator.validate(token, context),
            None => Validation::ready(Err(InvalidToken::NotApplicable.into())),
        }
    }

    fn check_context(&self, context: &ValidationContext) -> Result<(), BuildError> {
        self.validators
            .iter()
            .try_for_each(|v| v.check_context(context))
    }

    /// The union of the members' issuers; `None` when any member cannot name its own.
    fn trusted_issuers(&self) -> Option<Vec<String>> {
        let mut all = Vec::new();
        for validator in &self.validators {
            for issuer in validator.trusted_issuers()? {
                if !all.contains(&issuer) {
                    all.push(issuer);
                }
            }
        }
        Some(all)
    }

    fn is_responsible_for(&self, token: &BearerToken, context: &ValidationContext) -> bool {
        self.validators
            .iter()
            .any(|v| v.is_responsible_for(token, context))
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
        let context = ValidationContext::new("https://rs.example.com");
        let check = |t: &str| {
            chain
                .validate(&BearerToken::new(t).unwrap(), &context)
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
            crate::ValidationError::from(InvalidToken::NotApplicable)
        );
        assert!(!chain.is_responsible_for(
            &BearerToken::new("third-token-0123456789").unwrap(),
            &context
        ));
        assert!(FirstMatch::new()
            .validate(&BearerToken::new("x").unwrap(), &context)
            .into_ready()
            .unwrap()
            .is_err());
    }
}
