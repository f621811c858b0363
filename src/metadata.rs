//! RFC 9728 protected resource metadata: the document, and a Tower service that serves it.
//!
//! MCP clients find the authorization server through this document: a 401 names it in
//! `WWW-Authenticate: Bearer resource_metadata="…"`, and clients also probe the well-known URL built by
//! inserting `/.well-known/oauth-protected-resource` between the host and the path of the resource
//! (`https://h/mcp` → `https://h/.well-known/oauth-protected-resource/mcp`).
//!
//! [`BearerAuthLayer`](crate::BearerAuthLayer) answers that path itself, without a token. Use
//! [`MetadataService`] to serve the document elsewhere (e.g. the root alias on another router).
//!
//! ```
//! use bearer_guard::metadata::ProtectedResourceMetadata;
//!
//! let doc = ProtectedResourceMetadata::new("https://api.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported(["mcp:read", "mcp:write"])
//!     .resource_name("Example MCP server");
//! let json = serde_json::to_string(&doc.validated().unwrap()).unwrap();
//! assert_eq!(
//!     json,
//!     r#"{"resource":"https://api.example.com/mcp","authorization_servers":["https://auth.example.com"],"scopes_supported":["mcp:read","mcp:write"],"bearer_methods_supported":["header"],"resource_name":"Example MCP server"}"#
//! );
//! ```

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::body::FixedBody;
use crate::error::BuildError;
use crate::resource::{check_url, ResourceUrl};
use crate::scope::{is_valid_scope, OFFLINE_ACCESS};

/// Default `Cache-Control: max-age` of the metadata document.
pub const DEFAULT_METADATA_MAX_AGE: Duration = Duration::from_secs(3600);

const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";
const ALLOWED_REQUEST_HEADERS: &str = "Authorization, Content-Type, MCP-Protocol-Version";

/// The RFC 9728 §2 protected resource metadata document.
///
/// Every field of RFC 9728 §2 is here; empty lists, `None` and `false` are omitted when serialized, as
/// RFC 9728 §3.2 requires. `extra` holds anything else (language-tagged names such as `resource_name#it`,
/// extension parameters); it is written after the standard fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProtectedResourceMetadata {
    /// `resource` (REQUIRED): the resource identifier, an absolute https URL.
    pub resource: String,
    /// `authorization_servers`: issuer identifiers of the trusted authorization servers (MCP: at least one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// `jwks_uri`: the *resource's own* JWK set (not the authorization server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `scopes_supported` (RECOMMENDED): the minimal scopes for basic use. `offline_access` is dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// `bearer_methods_supported`: always `["header"]` for this crate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer_methods_supported: Vec<String>,
    /// `resource_signing_alg_values_supported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_signing_alg_values_supported: Vec<String>,
    /// `resource_name` (RECOMMENDED): a human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// `resource_documentation`: a URL of developer documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
    /// `resource_policy_uri`: a URL of the data-use policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy_uri: Option<String>,
    /// `resource_tos_uri`: a URL of the terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tos_uri: Option<String>,
    /// `tls_client_certificate_bound_access_tokens` (RFC 8705).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// `authorization_details_types_supported` (RFC 9396).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_details_types_supported: Vec<String>,
    /// `dpop_signing_alg_values_supported` (RFC 9449).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// `dpop_bound_access_tokens_required` (RFC 9449).
    #[serde(default, skip_serializing_if = "is_false")]
    pub dpop_bound_access_tokens_required: bool,
    /// `signed_metadata`: a JWT, signed by you, over these parameters (RFC 9728 §2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_metadata: Option<String>,
    /// Any other parameter (language-tagged values, extensions).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

const STANDARD_FIELDS: &[&str] = &[
    "resource",
    "authorization_servers",
    "jwks_uri",
    "scopes_supported",
    "bearer_methods_supported",
    "resource_signing_alg_values_supported",
    "resource_name",
    "resource_documentation",
    "resource_policy_uri",
    "resource_tos_uri",
    "tls_client_certificate_bound_access_tokens",
    "authorization_details_types_supported",
    "dpop_signing_alg_values_supported",
    "dpop_bound_access_tokens_required",
    "signed_metadata",
];

impl ProtectedResourceMetadata {
    /// A document for `resource`.
    pub fn new(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            ..Self::default()
        }
    }

    /// Adds an authorization server issuer identifier (exactly the issuer string, trailing slash and all).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// Sets `scopes_supported`.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `resource_name`.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// Sets `resource_documentation`.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// Sets an extra parameter (e.g. `resource_name#it`).
    pub fn extra(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// Checks the document and returns it normalised: `bearer_methods_supported` set to `["header"]`,
    /// `offline_access` removed from `scopes_supported`.
    ///
    /// Refuses: an invalid `resource`; no authorization server; an authorization server or URL field that is
    /// not an https URL (http on loopback); a scope with invalid syntax; a bearer method other than
    /// `header`; `none` as a signing algorithm; an `extra` entry that shadows a standard field.
    pub fn validated(mut self) -> Result<Self, BuildError> {
        ResourceUrl::parse(&self.resource)?;
        if self.authorization_servers.is_empty() {
            return Err(BuildError::MissingAuthorizationServer);
        }
        for issuer in &self.authorization_servers {
            check_url(issuer, "the issuer", false)
                .map_err(BuildError::InvalidAuthorizationServer)?;
        }
        for (field, value) in [
            ("jwks_uri", &self.jwks_uri),
            ("resource_documentation", &self.resource_documentation),
            ("resource_policy_uri", &self.resource_policy_uri),
            ("resource_tos_uri", &self.resource_tos_uri),
        ] {
            if let Some(url) = value {
                check_url(url, field, true).map_err(|_| {
                    BuildError::InvalidMetadata(
                        "URL fields must be https URLs (http only on loopback)",
                    )
                })?;
            }
        }
        if let Some(bad) = self.scopes_supported.iter().find(|s| !is_valid_scope(s)) {
            return Err(BuildError::InvalidScope(bad.escape_default().to_string()));
        }
        self.scopes_supported.retain(|s| s != OFFLINE_ACCESS);
        let mut seen = std::collections::HashSet::new();
        self.scopes_supported.retain(|s| seen.insert(s.clone()));
        if self.bearer_methods_supported.iter().any(|m| m != "header") {
            return Err(BuildError::InvalidMetadata(
                "only the `header` bearer method is supported (OAuth 2.1 §5.1)",
            ));
        }
        self.bearer_methods_supported = vec!["header".to_owned()];
        if self
            .resource_signing_alg_values_supported
            .iter()
            .chain(&self.dpop_signing_alg_values_supported)
            .any(|alg| alg == "none")
        {
            return Err(BuildError::InvalidMetadata(
                "`none` is not a signing algorithm",
            ));
        }
        if self
            .extra
            .keys()
            .any(|k| STANDARD_FIELDS.contains(&k.as_str()))
        {
            return Err(BuildError::InvalidMetadata(
                "an extra parameter shadows a standard field: set the field instead",
            ));
        }
        Ok(self)
    }
}

/// The pre-rendered HTTP answers for the metadata document.
#[derive(Debug)]
pub(crate) struct MetadataResponder {
    json: Bytes,
    content_length: HeaderValue,
    cache_control: HeaderValue,
}

impl MetadataResponder {
    pub(crate) fn new(
        doc: &ProtectedResourceMetadata,
        max_age: Duration,
    ) -> Result<Self, BuildError> {
        let json = serde_json::to_vec(doc)
            .map_err(|_| BuildError::InvalidMetadata("the document cannot be serialized"))?;
        Ok(Self {
            content_length: HeaderValue::from(json.len()),
            json: Bytes::from(json),
            cache_control: HeaderValue::try_from(format!("public, max-age={}", max_age.as_secs()))
                .map_err(|_| BuildError::Invalid("metadata max-age"))?,
        })
    }

    /// GET/HEAD → 200 JSON, OPTIONS → CORS preflight, anything else → 405 with `Allow`.
    pub(crate) fn respond(&self, method: &Method) -> Response<FixedBody> {
        let (status, body) = match *method {
            Method::GET => (StatusCode::OK, FixedBody::new(self.json.clone())),
            Method::HEAD => (StatusCode::OK, FixedBody::empty()),
            Method::OPTIONS => (StatusCode::NO_CONTENT, FixedBody::empty()),
            _ => (StatusCode::METHOD_NOT_ALLOWED, FixedBody::empty()),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        match status {
            StatusCode::OK => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(CONTENT_LENGTH, self.content_length.clone());
                headers.insert(CACHE_CONTROL, self.cache_control.clone());
            }
            StatusCode::NO_CONTENT => {
                headers.insert(
                    ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(ALLOWED_METHODS),
                );
                headers.insert(
                    ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(ALLOWED_REQUEST_HEADERS),
                );
                headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
                headers.insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
            }
            _ => {
                headers.insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
                headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
        }
        response
    }
}

/// A Tower service that answers every request with the metadata document (mount it where you need it).
///
/// `GET`/`HEAD` get `200 application/json` with `Cache-Control: public, max-age=…`; `OPTIONS` gets a CORS
/// preflight answer; other methods get `405` with `Allow`. The document is serialized once, at build.
///
/// ```
/// use bearer_guard::metadata::{MetadataService, ProtectedResourceMetadata};
/// use tower::ServiceExt;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let doc = ProtectedResourceMetadata::new("https://api.example.com/mcp")
///     .authorization_server("https://auth.example.com");
/// let service = MetadataService::new(doc).unwrap();
/// let response = service
///     .oneshot(http::Request::get("/.well-known/oauth-protected-resource").body(()).unwrap())
///     .await
///     .unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct MetadataService {
    responder: Arc<MetadataResponder>,
}

impl MetadataService {
    /// Validates the document (see [`ProtectedResourceMetadata::validated`]) and serves it.
    pub fn new(doc: ProtectedResourceMetadata) -> Result<Self, BuildError> {
        Self::with_max_age(doc, DEFAULT_METADATA_MAX_AGE)
    }

    /// Same as [`MetadataService::new`] with a chosen `Cache-Control: max-age`.
    pub fn with_max_age(
        doc: ProtectedResourceMetadata,
        max_age: Duration,
    ) -> Result<Self, BuildError> {
        let doc = doc.validated()?;
        Ok(Self {
            responder: Arc::new(MetadataResponder::new(&doc, max_age)?),
        })
    }

    pub(crate) fn from_responder(responder: Arc<MetadataResponder>) -> Self {
        Self { responder }
    }
}

impl<B> tower_service::Service<Request<B>> for MetadataService {
    type Response = Response<FixedBody>;
    type Error = Infallible;
    type Future = Ready<Result<Response<FixedBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(self.responder.respond(request.method())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> ProtectedResourceMetadata {
        ProtectedResourceMetadata::new("https://api.example.com/mcp")
            .authorization_server("https://auth.example.com/")
    }

    #[test]
    fn zero_values_are_omitted() {
        let json = serde_json::to_value(doc().validated().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "resource": "https://api.example.com/mcp",
                "authorization_servers": ["https://auth.example.com/"],
                "bearer_methods_supported": ["header"],
            })
        );
    }

    #[test]
    fn every_field_round_trips() {
        let mut full = doc()
            .scopes_supported(["a", "offline_access", "b", "a"])
            .resource_name("Name")
            .resource_documentation("https://docs.example.com")
            .extra("resource_name#it", "Nome");
        full.jwks_uri = Some("https://api.example.com/jwks".into());
        full.resource_signing_alg_values_supported = vec!["ES256".into()];
        full.resource_policy_uri = Some("https://api.example.com/policy".into());
        full.resource_tos_uri = Some("https://api.example.com/tos".into());
        full.tls_client_certificate_bound_access_tokens = true;
        full.authorization_details_types_supported = vec!["payment".into()];
        full.dpop_signing_alg_values_supported = vec!["ES256".into()];
        full.dpop_bound_access_tokens_required = true;
        full.signed_metadata = Some("eyJ.x.y".into());
        let valid = full.validated().unwrap();
        assert_eq!(
            valid.scopes_supported,
            ["a", "b"],
            "offline_access and duplicates removed"
        );
        let json = serde_json::to_string(&valid).unwrap();
        let back: ProtectedResourceMetadata = serde_json::from_str(&json).unwrap();
        assert_eq!(back, valid);
        assert_eq!(back.extra["resource_name#it"], "Nome");
    }

    #[test]
    fn refuses_bad_documents() {
        assert_eq!(
            ProtectedResourceMetadata::new("https://api.example.com/mcp").validated(),
            Err(BuildError::MissingAuthorizationServer)
        );
        assert!(matches!(
            ProtectedResourceMetadata::new("https://api.example.com/mcp")
                .authorization_server("http://auth.example.com")
                .validated(),
            Err(BuildError::InvalidAuthorizationServer(_))
        ));
        let mut methods = doc();
        methods.bearer_methods_supported = vec!["query".into()];
        assert!(methods.validated().is_err());
        let mut none = doc();
        none.resource_signing_alg_values_supported = vec!["none".into()];
        assert!(none.validated().is_err());
        assert!(doc().extra("resource", "https://evil").validated().is_err());
        assert!(doc().scopes_supported(["bad scope"]).validated().is_err());
        assert!(matches!(
            ProtectedResourceMetadata::new("https://api.example.com/mcp#x")
                .authorization_server("https://auth.example.com")
                .validated(),
            Err(BuildError::InvalidResource(_))
        ));
    }
}
