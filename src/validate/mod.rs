//! Token validators: the [`TokenValidator`] trait and its implementations.
//!
//! A validator turns a [`BearerToken`] into an [`AccessToken`] or a [`ValidationError`]. Validators are
//! `Send + Sync + 'static` and object safe, so they compose behind `Arc<dyn TokenValidator>`.
//!
//! Validators that can answer at once (static tokens, a cache hit) return [`Validation::ready`]; the layer
//! then decides without allocating a future. Validators that must wait (a key fetch, an introspection call)
//! return [`Validation::pending`] with a `'static` future; [`BearerToken`] and [`ValidationContext`] are
//! cheap to clone into it.
//!
//! Every validation receives the asking layer's [`ValidationContext`] (the resource the token's audience
//! must name): a validator shared by several layers answers each for its own resource, and its caches are
//! keyed by [`ValidationContext::cache_key`] so that an answer checked for one layer never serves another.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::error::{BuildError, ValidationError};
use crate::token::{AccessToken, BearerToken};

#[cfg(feature = "jwt")]
pub mod alg;
mod chain;
mod context;
#[cfg(feature = "remote")]
pub mod discovery;
mod fixed;
#[cfg(feature = "introspection")]
mod introspect;
#[cfg(feature = "jwt")]
mod jose;
#[cfg(feature = "jwt")]
pub(crate) mod jwks;
#[cfg(feature = "jwt")]
mod jwt;
#[cfg(feature = "jwt")]
mod multi;
#[cfg(feature = "introspection")]
mod shape;

#[cfg(feature = "jwt")]
pub use alg::{Algorithm, AlgorithmSet};
pub use chain::FirstMatch;
pub use context::ValidationContext;
pub use fixed::{StaticToken, StaticValidator, StaticValidatorBuilder};
#[cfg(feature = "introspection")]
pub use introspect::{ClientAuth, IntrospectionValidator, IntrospectionValidatorBuilder};
#[cfg(feature = "introspection")]
pub use introspect::{
    DEFAULT_MAX_CONCURRENT_CALLS, DEFAULT_MAX_QUEUED_CALLS, DEFAULT_MAX_QUEUE_WAIT,
};
#[cfg(feature = "jwt")]
pub use jwt::{JwtValidator, JwtValidatorBuilder};
#[cfg(feature = "jwt")]
pub use multi::MultiIssuer;

/// Default clock leeway for `exp`, `nbf` and `iat` (JWT and introspection validators).
pub const DEFAULT_LEEWAY: std::time::Duration = std::time::Duration::from_secs(60);

/// The largest clock leeway a validator accepts (`build()` refuses more): a leeway of hours would accept
/// tokens long expired.
pub const MAX_LEEWAY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The outcome of a validation.
pub type ValidationResult = Result<AccessToken, ValidationError>;

type BoxValidation = Pin<Box<dyn Future<Output = ValidationResult> + Send + 'static>>;

/// Validates bearer tokens.
///
/// ```
/// use bearer_guard::{AccessToken, BearerToken, InvalidToken, TokenValidator, Validation, ValidationContext};
///
/// /// Accepts tokens that a (pretend) remote service confirms for the layer's resource.
/// struct Remote;
///
/// impl TokenValidator for Remote {
///     fn validate(&self, token: &BearerToken, context: &ValidationContext) -> Validation {
///         let (token, context) = (token.clone(), context.clone());
///         Validation::pending(async move {
///             // ... ask a remote service whether `token` is good for `context.resource()` here ...
///             if token.len() > 10 && context.resource().starts_with("https://") {
///                 Ok(AccessToken::builder().subject("remote-user").build())
///             } else {
///                 Err(InvalidToken::Unknown.into())
///             }
///         })
///     }
/// }
/// # let _: std::sync::Arc<dyn TokenValidator> = std::sync::Arc::new(Remote);
/// ```
pub trait TokenValidator: Send + Sync + 'static {
    /// Validates `token` for the layer described by `context` (its audience, and the key of any cached
    /// answer: [`ValidationContext::cache_key`]).
    fn validate(&self, token: &BearerToken, context: &ValidationContext) -> Validation;

    /// Called by [`BearerAuthLayerBuilder::build`](crate::BearerAuthLayerBuilder::build) with the layer's
    /// context: a validator refuses a layer it cannot serve (e.g. explicitly configured audiences that do
    /// not include the layer's resource), so the mistake is a build error, not a refusal of every request.
    /// Composite validators ask each member. The default accepts every layer.
    fn check_context(&self, context: &ValidationContext) -> Result<(), BuildError> {
        let _ = context;
        Ok(())
    }

    /// The issuers whose tokens this validator can accept, if it knows them: `None` when it may accept
    /// tokens of issuers it cannot name (a custom validator, introspection without a configured issuer),
    /// `Some(vec![])` when it accepts no authorization server's tokens (static tokens). A layer whose
    /// validator names its issuers refuses to advertise an authorization server outside them (see
    /// [`BearerAuthLayerBuilder::check_authorization_servers`](crate::BearerAuthLayerBuilder::check_authorization_servers)).
    fn trusted_issuers(&self) -> Option<Vec<String>> {
        None
    }

    /// Is this validator the one that should judge `token`? [`FirstMatch`] gives each token to the first
    /// validator that says yes (a JWT validator claims the JWTs of its issuer, an introspection validator
    /// claims the tokens that are not JWTs). Must be cheap and must not do I/O. The default is `true`.
    fn is_responsible_for(&self, token: &BearerToken, context: &ValidationContext) -> bool {
        let _ = (token, context);
        true
    }
}

/// Forwards every method (for `Arc<T>` and `Box<T>`).
macro_rules! forward_validator {
    ($($wrapper:ident),*) => {$(
        impl<T: TokenValidator + ?Sized> TokenValidator for $wrapper<T> {
            fn validate(&self, token: &BearerToken, context: &ValidationContext) -> Validation {
                (**self).validate(token, context)
            }

            fn check_context(&self, context: &ValidationContext) -> Result<(), BuildError> {
                (**self).check_context(context)
            }

            fn trusted_issuers(&self) -> Option<Vec<String>> {
                (**self).trusted_issuers()
            }

            fn is_responsible_for(&self, token: &BearerToken, context: &ValidationContext) -> bool {
                (**self).is_responsible_for(token, context)
            }
        }
    )*};
}

forward_validator!(Arc, Box);

/// A validation that is either decided already or still running. It is a `Future` (and `Unpin`), so
/// composite validators can `.await` it.
#[must_use = "a validation does nothing unless inspected or awaited"]
pub struct Validation(State);

enum State {
    Ready(Option<ValidationResult>),
    Pending(BoxValidation),
}

impl Validation {
    /// A decided validation: no allocation, no future.
    pub fn ready(result: ValidationResult) -> Self {
        Self(State::Ready(Some(result)))
    }

    /// A validation that needs to wait for I/O.
    pub fn pending<F>(future: F) -> Self
    where
        F: Future<Output = ValidationResult> + Send + 'static,
    {
        Self(State::Pending(Box::pin(future)))
    }

    /// The result, if it is already decided. Returns `Err(self)` when it still has to be awaited.
    pub fn into_ready(self) -> Result<ValidationResult, Self> {
        match self.0 {
            State::Ready(Some(result)) => Ok(result),
            state => Err(Self(state)),
        }
    }
}

impl Future for Validation {
    type Output = ValidationResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ValidationResult> {
        match &mut self.0 {
            State::Ready(result) => Poll::Ready(result.take().unwrap_or(Err(
                ValidationError::Internal("validation polled after completion"),
            ))),
            State::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

impl std::fmt::Debug for Validation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            State::Ready(_) => f.write_str("Validation::Ready"),
            State::Pending(_) => f.write_str("Validation::Pending"),
        }
    }
}
