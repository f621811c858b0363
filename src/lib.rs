//! # bearer-guard
//!
//! Turns any Tower service into an OAuth 2.1 *resource server*: one `.layer(...)` and every request needs a
//! valid bearer access token, with the challenges, metadata and status codes that the MCP authorization
//! specification and the OAuth RFCs (6750, 9728, 8707, 9068, 7662) require.
//!
//! ```
//! use bearer_guard::{BearerAuthLayer, StaticToken, StaticValidator};
//! use bearer_guard::scope::Requirement;
//!
//! # fn main() -> Result<(), bearer_guard::BuildError> {
//! let validator = StaticValidator::builder()
//!     .token("dev-token-0123456789abcdef", StaticToken::new("alice").scopes(["mcp:read"]))
//!     .build()?;
//!
//! let guard = BearerAuthLayer::builder()
//!     .resource("https://mcp.example.com/mcp")       // what clients call; the tokens' audience
//!     .authorization_server("https://auth.example.com") // the issuer, byte for byte
//!     .scopes_supported(["mcp:read"])
//!     .validator(validator)
//!     .require(Requirement::all_of(["mcp:read"]))
//!     .build()?;
//!
//! // axum:  Router::new().route("/mcp", post(handler)).layer(guard)
//! // tonic: Server::builder().layer(guard).add_service(...)
//! // hyper: ServiceBuilder::new().layer(guard).service(your_service)
//! # let _ = guard;
//! # Ok(())
//! # }
//! ```
//!
//! What a request goes through is described in [`layer`]; what a rejection looks like in [`challenge`];
//! the metadata document in [`metadata`]; scopes and policies in [`scope`]; validators in [`validate`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

pub mod body;
#[cfg(feature = "remote")]
pub mod cache;
pub mod challenge;
mod error;
pub mod extract;
#[cfg(feature = "remote")]
pub mod fetch;
mod future;
mod json;
pub mod layer;
pub mod metadata;
mod resource;
pub mod scope;
mod token;
pub mod validate;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "mcp")]
pub mod mcp;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(feature = "tonic")]
pub mod tonic;

pub use challenge::{ErrorBody, JsonErrorBody, ProblemJsonBody, Rejection};
pub use error::{BuildError, InvalidToken, Unavailable, ValidationError};
pub use future::ResponseFuture;
pub use layer::{BearerAuth, BearerAuthLayer, BearerAuthLayerBuilder};
#[cfg(feature = "mcp")]
pub use mcp::{McpGuardLayer, McpResponseFuture, McpScope, McpScopeLayer, McpScopes};
pub use metadata::{MetadataService, ProtectedResourceMetadata};
pub use resource::WELL_KNOWN_PREFIX;
pub use scope::{Requirement, RoutePolicy, ScopeHierarchy, ScopePolicy, ScopeSet};
pub use token::{AccessToken, AccessTokenBuilder, BearerToken};
pub use validate::FirstMatch;
#[cfg(feature = "jwt")]
pub use validate::{Algorithm, JwtValidator, MultiIssuer};
#[cfg(feature = "introspection")]
pub use validate::{ClientAuth, IntrospectionValidator};
pub use validate::{StaticToken, StaticValidator, TokenValidator, Validation, ValidationContext};
