//! axum integration (feature `axum`): [`AccessToken`] as an extractor.
//!
//! ```
//! use axum::{routing::get, Router};
//! use bearer_guard::AccessToken;
//!
//! async fn whoami(token: AccessToken) -> String {
//!     token.subject().unwrap_or("anonymous").to_owned()
//! }
//!
//! async fn maybe(token: Option<AccessToken>) -> &'static str {
//!     if token.is_some() { "authenticated" } else { "anonymous" }
//! }
//!
//! let app: Router = Router::new().route("/whoami", get(whoami)).route("/maybe", get(maybe));
//! // .layer(bearer_guard_layer) puts the token there; without the layer `whoami` answers 500.
//! ```
//!
//! Wiring notes (each covered by `tests/stacks/on_axum.rs`):
//! - `Router::layer(guard)` guards every route *and* the fallback, so the guard also answers the
//!   well-known metadata path, which is no route of yours. Add routes and any `.fallback(...)` **before**
//!   `.layer(guard)`: whatever is added after it is not guarded (and a later fallback hides the metadata).
//! - `Router::route_layer(guard)` guards matched routes only: the metadata path then gives 404 unless you
//!   also mount `.route_service(guard.metadata_path(), guard.metadata_service())`.
//! - Wrapping the whole router (`ServiceBuilder::new().layer(guard).service(router)`) works in any order.

use std::convert::Infallible;
use std::fmt;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};

use crate::token::AccessToken;

/// The extractor ran on a request that did not pass through [`BearerAuthLayer`](crate::BearerAuthLayer).
///
/// That is a wiring bug (e.g. the route was added after `.layer(...)`), so the answer is a 500 that
/// discloses nothing, never a pass.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct MissingAccessToken;

impl fmt::Display for MissingAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no AccessToken in the request extensions: is BearerAuthLayer applied to this route?",
        )
    }
}

impl std::error::Error for MissingAccessToken {}

impl IntoResponse for MissingAccessToken {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        let mut response = (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"server_error","error_description":"Internal error"}"#,
        )
            .into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AccessToken {
    type Rejection = MissingAccessToken;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AccessToken>()
            .cloned()
            .ok_or(MissingAccessToken)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AccessToken {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AccessToken>().cloned())
    }
}
