//! tonic integration (feature `tonic`): reading the [`AccessToken`] in a gRPC handler.
//!
//! The guard itself needs no tonic code: put [`BearerAuthLayer`](crate::BearerAuthLayer) on the server with
//! `Server::builder().layer(guard)`. Rejections of gRPC requests (`content-type: application/grpc*`) are
//! sent as trailers-only gRPC responses: `UNAUTHENTICATED` (16) for missing or invalid tokens,
//! `PERMISSION_DENIED` (7) for missing scopes, `UNAVAILABLE` (14) when the validator cannot decide,
//! `INVALID_ARGUMENT` (3) for a malformed `authorization` entry, each with the `www-authenticate` challenge.
//! The rejection's `content-type` mirrors the request's (`application/grpc+proto`, `application/grpc-web`, …).
//!
//! tonic serves HTTP/2 only by default, so HTTP/1.1 clients reach the metadata document on a tonic port only
//! with `Server::builder().accept_http1(true)`.
//!
//! ```
//! use bearer_guard::tonic::RequestExt;
//!
//! fn handler(request: tonic::Request<()>) -> Result<String, tonic::Status> {
//!     let token = request.require_access_token()?;
//!     Ok(token.subject().unwrap_or_default().to_owned())
//! }
//! # assert_eq!(handler(tonic::Request::new(())).unwrap_err().code(), tonic::Code::Unauthenticated);
//! ```

use crate::token::AccessToken;

/// Access to the validated token from a `tonic::Request`.
pub trait RequestExt {
    /// The token the guard validated, if the request passed through it.
    fn access_token(&self) -> Option<&AccessToken>;

    /// The token, or `UNAUTHENTICATED` when the request did not pass through the guard (fail closed).
    fn require_access_token(&self) -> Result<&AccessToken, tonic::Status> {
        self.access_token()
            .ok_or_else(|| tonic::Status::unauthenticated("access token required"))
    }
}

impl<T> RequestExt for tonic::Request<T> {
    fn access_token(&self) -> Option<&AccessToken> {
        self.extensions().get::<AccessToken>()
    }
}
