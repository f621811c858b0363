#![doc = include_str!("../README.md")]
//!
//! ## Where things are
//!
//! What a request goes through is described in [`layer`]; what a rejection looks like in [`challenge`];
//! the metadata document in [`metadata`]; scopes and policies in [`scope`]; validators in [`validate`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

pub mod bind;
pub mod body;
#[cfg(feature = "remote")]
pub mod cache;
pub mod challenge;
mod charset;
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
#[cfg(feature = "dpop")]
pub mod store;
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
pub use error::{BuildError, Detail, InvalidToken, Unavailable, ValidationError};
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
