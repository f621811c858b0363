//! Token validators: the [`TokenValidator`] trait and its implementations.
//!
//! A validator turns a [`BearerToken`] into an [`AccessToken`] or a [`ValidationError`]. Validators are
//! `Send + Sync + 'static` and object safe, so they compose behind `Arc<dyn TokenValidator>`.
//!
//! Validators that can answer at once (static tokens, a cache hit) return [`Validation::ready`]; the layer
//! then decides without allocating a future. Validators that must wait (a key fetch, an introspection call)
//! return [`Validation::pending`] with a `'static` future; [`BearerToken`] is cheap to clone into it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::error::ValidationError;
use crate::token::{AccessToken, BearerToken};

#[cfg(feature = "jwt")]
pub mod alg;
mod chain;
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

#[cfg(feature = "jwt")]
pub use alg::{Algorithm, AlgorithmSet};
pub use chain::FirstMatch;
pub use fixed::{StaticToken, StaticValidator, StaticValidatorBuilder};
#[cfg(feature = "introspection")]
pub use introspect::{ClientAuth, IntrospectionValidator, IntrospectionValidatorBuilder};
#[cfg(feature = "jwt")]
pub use jwt::{JwtValidator, JwtValidatorBuilder};
#[cfg(feature = "jwt")]
pub use multi::MultiIssuer;

/// Default clock leeway for `exp`, `nbf` and `iat` (JWT and introspection validators).
pub const DEFAULT_LEEWAY: std::time::Duration = std::time::Duration::from_secs(60);

/// The outcome of a validation.
pub type ValidationResult = Result<AccessToken, ValidationError>;

type BoxValidation = Pin<Box<dyn Future<Output = ValidationResult> + Send + 'static>>;

/// Validates bearer tokens.
///
/// ```
/// use bearer_guard::{AccessToken, BearerToken, InvalidToken, TokenValidator, Validation};
///
/// /// Accepts tokens that a (pretend) remote service confirms.
/// struct Remote;
///
/// impl TokenValidator for Remote {
///     fn validate(&self, token: &BearerToken) -> Validation {
///         let token = token.clone();
///         Validation::pending(async move {
///             // ... ask a remote service about `token` here ...
///             if token.len() > 10 {
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
    /// Validates `token`.
    fn validate(&self, token: &BearerToken) -> Validation;

    /// Called once by [`BearerAuthLayerBuilder::build`](crate::BearerAuthLayerBuilder::build) with the
    /// layer's resource identifier, so validators can default their expected audience to it. Composite
    /// validators pass it on. The default does nothing.
    fn bind_resource(&self, resource: &str) {
        let _ = resource;
    }

    /// Is this validator the one that should judge `token`? [`FirstMatch`] gives each token to the first
    /// validator that says yes (a JWT validator claims the JWTs of its issuer, an introspection validator
    /// claims everything). Must be cheap and must not do I/O. The default is `true`.
    fn is_responsible_for(&self, token: &BearerToken) -> bool {
        let _ = token;
        true
    }
}

impl<T: TokenValidator + ?Sized> TokenValidator for Arc<T> {
    fn validate(&self, token: &BearerToken) -> Validation {
        (**self).validate(token)
    }

    fn bind_resource(&self, resource: &str) {
        (**self).bind_resource(resource)
    }

    fn is_responsible_for(&self, token: &BearerToken) -> bool {
        (**self).is_responsible_for(token)
    }
}

impl<T: TokenValidator + ?Sized> TokenValidator for Box<T> {
    fn validate(&self, token: &BearerToken) -> Validation {
        (**self).validate(token)
    }

    fn bind_resource(&self, resource: &str) {
        (**self).bind_resource(resource)
    }

    fn is_responsible_for(&self, token: &BearerToken) -> bool {
        (**self).is_responsible_for(token)
    }
}

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
