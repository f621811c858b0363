//! [`BearerAuthLayer`], its builder, and the [`BearerAuth`] service.
//!
//! One request, one pass:
//! 0. the path-inserted metadata URL (and the root alias, if enabled) is answered without a token;
//! 1. the bearer token is taken from the `Authorization` header (or a 400/401 is sent);
//! 2. the [`TokenValidator`] decides (synchronously when it can, without allocating a future);
//! 3. the [`ScopePolicy`] says which scopes the request needs; missing ones give a 403;
//! 4. the [`AccessToken`] goes into the request extensions and the inner service is called, with the
//!    `Authorization` header removed unless configured otherwise.
//!
//! Browsers send CORS preflights (`OPTIONS` with `Access-Control-Request-Method`) without credentials, so
//! the guard answers them with 401 like any other request without a token (fail closed). Put your CORS
//! layer *outside* the guard (`ServiceBuilder::new().layer(cors).layer(guard)`), so preflights are answered
//! before they reach it; rejections of cross-origin requests expose `WWW-Authenticate` (and `Retry-After`
//! on 503) through `Access-Control-Expose-Headers`.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::{FixedBody, ResponseBody};
use crate::challenge::{Challenger, ErrorBody, JsonErrorBody, Rejection, RequestFacts};
use crate::error::BuildError;
use crate::extract::{extract, Credentials, DEFAULT_MAX_TOKEN_BYTES};
use crate::future::ResponseFuture;
use crate::metadata::{
    MetadataResponder, MetadataService, ProtectedResourceMetadata, DEFAULT_METADATA_MAX_AGE,
};
use crate::resource::{ResourceUrl, WELL_KNOWN_PREFIX};
use crate::scope::{check_hierarchy, Requirement, ScopeHierarchy, ScopePolicy};
use crate::token::AccessToken;
use crate::validate::{TokenValidator, ValidationContext, ValidationResult};

/// Everything a guard needs, shared by every clone of the layer and service.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) validator: Arc<dyn TokenValidator>,
    /// What this layer expects of tokens (its resource), handed to every validation.
    pub(crate) context: ValidationContext,
    pub(crate) policy: Arc<dyn ScopePolicy>,
    pub(crate) hierarchy: ScopeHierarchy,
    pub(crate) challenger: Challenger,
    pub(crate) metadata: Arc<MetadataResponder>,
    pub(crate) resource: ResourceUrl,
    pub(crate) root_metadata_alias: bool,
    pub(crate) max_token_bytes: usize,
    pub(crate) strip_authorization: bool,
    /// Who refuses a token short of the guard's scopes ([`ScopeCheck::DeferToMcp`] only inside a
    /// `McpGuardLayer`).
    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    pub(crate) scope_check: ScopeCheck,
}

impl Shared {
    /// Step 0: is this a request for the metadata document?
    fn is_metadata_request(&self, path: &str) -> bool {
        path == self.resource.metadata_path
            || (self.root_metadata_alias && path == WELL_KNOWN_PREFIX)
    }

    /// Steps 3 and 4: checks the validated token against the requirement and prepares the request.
    /// On rejection returns the response to send (not boxed: the rejection path should not allocate more).
    ///
    /// `self.scope_check` is [`ScopeCheck::DeferToMcp`] only for the guard inside a
    /// [`McpGuardLayer`](crate::mcp::McpGuardLayer), whose inner service is always the MCP layer: a token
    /// short of the guard's scopes then goes on, marked, and the MCP layer refuses it with one challenge
    /// naming the guard's scopes and the operation's together.
    #[allow(clippy::result_large_err)]
    pub(crate) fn authorize(
        &self,
        result: ValidationResult,
        parts: &mut Parts,
        requirement: &Requirement,
    ) -> Result<(), Response<FixedBody>> {
        let access = match result {
            Ok(access) => access,
            Err(error) => {
                if let crate::ValidationError::Internal(what) = &error {
                    tracing::error!(error = what, "bearer-guard validator failed");
                }
                return Err(self.reject(error.into(), requirement, parts));
            }
        };
        if !requirement.is_satisfied_by(access.scopes(), &self.hierarchy) {
            #[cfg(feature = "mcp")]
            if self.scope_check == ScopeCheck::DeferToMcp {
                parts.extensions.insert(crate::mcp::ScopeShortfall);
                if self.strip_authorization {
                    parts.headers.remove(AUTHORIZATION);
                }
                parts.extensions.insert::<AccessToken>(access);
                return Ok(());
            }
            return Err(self.challenger.respond(
                Rejection::InsufficientScope,
                requirement,
                Some(access.scopes()),
                RequestFacts::of(&parts.headers),
            ));
        }
        if self.strip_authorization {
            parts.headers.remove(AUTHORIZATION);
        }
        parts.extensions.insert::<AccessToken>(access);
        Ok(())
    }

    pub(crate) fn reject(
        &self,
        rejection: Rejection,
        requirement: &Requirement,
        parts: &Parts,
    ) -> Response<FixedBody> {
        self.challenger.respond(
            rejection,
            requirement,
            None,
            RequestFacts::of(&parts.headers),
        )
    }
}

/// Who refuses a token that lacks the guard's own scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScopeCheck {
    /// The guard, at once (every guard a user builds).
    Here,
    /// The MCP layer right inside (only within a `McpGuardLayer`).
    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    DeferToMcp,
}

/// A Tower layer that requires a valid bearer access token on every request to the wrapped service.
///
/// Cloning is cheap (one `Arc`). Build it with [`BearerAuthLayer::builder`].
///
/// ```
/// use bearer_guard::{BearerAuthLayer, StaticToken, StaticValidator};
/// use bearer_guard::scope::Requirement;
///
/// let validator = StaticValidator::builder()
///     .token("dev-token-0123456789abcdef", StaticToken::new("alice").scopes(["notes:read"]))
///     .build()?;
/// let layer = BearerAuthLayer::builder()
///     .resource("https://api.example.com/notes")
///     .authorization_server("https://auth.example.com")
///     .validator(validator)
///     .require(Requirement::all_of(["notes:read"]))
///     .build()?;
/// let app = tower::ServiceBuilder::new()
///     .layer(layer)
///     .service_fn(|_req: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
///     });
/// # let _ = app;
/// # Ok::<(), bearer_guard::BuildError>(())
/// ```
#[derive(Clone)]
pub struct BearerAuthLayer {
    shared: Arc<Shared>,
}

impl BearerAuthLayer {
    /// Starts a builder.
    pub fn builder() -> BearerAuthLayerBuilder {
        BearerAuthLayerBuilder::default()
    }

    /// The shortest setup: one resource, one authorization server, one validator, no scope requirement.
    pub fn new(
        resource: impl Into<String>,
        authorization_server: impl Into<String>,
        validator: impl TokenValidator,
    ) -> Result<Self, BuildError> {
        Self::builder()
            .resource(resource)
            .authorization_server(authorization_server)
            .validator(validator)
            .build()
    }

    /// The resource identifier (the `resource` of the metadata, the audience tokens must carry).
    pub fn resource(&self) -> &str {
        &self.shared.resource.resource
    }

    /// The absolute URL of the metadata document (what `resource_metadata` names).
    pub fn metadata_url(&self) -> &str {
        &self.shared.resource.metadata_url
    }

    /// The path the layer serves the metadata document at.
    pub fn metadata_path(&self) -> &str {
        &self.shared.resource.metadata_path
    }

    /// A service answering with this layer's metadata document, to mount elsewhere.
    pub fn metadata_service(&self) -> MetadataService {
        MetadataService::from_responder(self.shared.metadata.clone())
    }

    /// The configuration companion layers share (the MCP layer renders its 403s with this challenger).
    #[cfg(feature = "mcp")]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// This guard, leaving the refusal of a token short of its scopes to the MCP layer it wraps.
    #[cfg(feature = "mcp")]
    pub(crate) fn deferring_scopes_to_mcp(&self) -> Self {
        Self {
            shared: Arc::new(Shared {
                scope_check: ScopeCheck::DeferToMcp,
                ..Shared::clone(&self.shared)
            }),
        }
    }
}

impl fmt::Debug for BearerAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuthLayer")
            .field("resource", &self.shared.resource.resource)
            .field("metadata_url", &self.shared.resource.metadata_url)
            .field("hierarchy", &self.shared.hierarchy)
            .field("challenger", &self.shared.challenger)
            .field("max_token_bytes", &self.shared.max_token_bytes)
            .field("strip_authorization", &self.shared.strip_authorization)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> BearerAuth<S> {
        BearerAuth {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Builds a [`BearerAuthLayer`]; [`build`](BearerAuthLayerBuilder::build) refuses a bad configuration.
pub struct BearerAuthLayerBuilder {
    metadata: ProtectedResourceMetadata,
    validator: Option<Arc<dyn TokenValidator>>,
    policy: Arc<dyn ScopePolicy>,
    hierarchy: ScopeHierarchy,
    max_token_bytes: usize,
    strip_authorization: bool,
    root_metadata_alias: bool,
    metadata_max_age: Duration,
    realm: Option<String>,
    include_granted_scopes: bool,
    error_body: Arc<dyn ErrorBody>,
    check_authorization_servers: bool,
}

impl Default for BearerAuthLayerBuilder {
    fn default() -> Self {
        Self {
            metadata: ProtectedResourceMetadata::default(),
            validator: None,
            policy: Arc::new(Requirement::none()),
            hierarchy: ScopeHierarchy::new(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            strip_authorization: true,
            root_metadata_alias: false,
            metadata_max_age: DEFAULT_METADATA_MAX_AGE,
            realm: None,
            include_granted_scopes: false,
            error_body: Arc::new(JsonErrorBody),
            check_authorization_servers: true,
        }
    }
}

impl fmt::Debug for BearerAuthLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuthLayerBuilder")
            .field("metadata", &self.metadata)
            .field("has_validator", &self.validator.is_some())
            .finish_non_exhaustive()
    }
}

impl BearerAuthLayerBuilder {
    /// The resource identifier: the exact URL clients call (e.g. `https://api.example.com/mcp`). It is the
    /// metadata `resource`, the base of the well-known URL, and the audience tokens are checked against.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.metadata.resource = resource.into();
        self
    }

    /// Adds a trusted authorization server's issuer identifier (byte-for-byte its `issuer`).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.metadata.authorization_servers.push(issuer.into());
        self
    }

    /// Sets `scopes_supported` in the metadata (the minimal scopes for basic use).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.metadata.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the whole metadata document (its `resource` and `authorization_servers` included).
    pub fn metadata(mut self, metadata: ProtectedResourceMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The token validator.
    pub fn validator(mut self, validator: impl TokenValidator) -> Self {
        self.validator = Some(Arc::new(validator));
        self
    }

    /// The token validator, already shared.
    pub fn shared_validator(mut self, validator: Arc<dyn TokenValidator>) -> Self {
        self.validator = Some(validator);
        self
    }

    /// The scope policy (a [`Requirement`], a [`RoutePolicy`](crate::scope::RoutePolicy) or a closure).
    pub fn policy(mut self, policy: impl ScopePolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Shorthand for [`policy`](Self::policy) with the same requirement for every request.
    pub fn require(self, requirement: Requirement) -> Self {
        self.policy(requirement)
    }

    /// Broader scopes that imply narrower ones.
    pub fn scope_hierarchy(mut self, hierarchy: ScopeHierarchy) -> Self {
        self.hierarchy = hierarchy;
        self
    }

    /// The largest token accepted, in bytes (default 8 KiB); larger ones get 400 before any validation.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Remove the `Authorization` header before calling the inner service (default: `true`). The MCP
    /// specification forbids passing the client's token upstream; keep it only if the inner service
    /// needs the raw token (e.g. for a token exchange).
    pub fn strip_authorization_header(mut self, strip: bool) -> Self {
        self.strip_authorization = strip;
        self
    }

    /// Also answer the root well-known URL `/.well-known/oauth-protected-resource` (default: off).
    ///
    /// MCP 2025-11-25 clients fall back to it, but by RFC 9728 §3.3 a document there describes the
    /// origin, not `https://host/mcp`; enable it only for clients that need it.
    pub fn root_metadata_alias(mut self, enabled: bool) -> Self {
        self.root_metadata_alias = enabled;
        self
    }

    /// `Cache-Control: max-age` of the metadata document (default one hour).
    pub fn metadata_max_age(mut self, max_age: Duration) -> Self {
        self.metadata_max_age = max_age;
        self
    }

    /// A `realm` for the challenge (optional; characters outside RFC 6750 §3 are refused at build).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// In a 403 challenge, list the scopes already granted as well as those the operation needs
    /// (MCP 2025-11-25 style). Default: only the operation's scopes (MCP 2026-07-28 §11.1.1).
    pub fn challenge_includes_granted_scopes(mut self, include: bool) -> Self {
        self.include_granted_scopes = include;
        self
    }

    /// How rejection bodies are written (default [`JsonErrorBody`]); the status and challenge stay ours.
    pub fn error_body(mut self, body: impl ErrorBody) -> Self {
        self.error_body = Arc::new(body);
        self
    }

    /// Check that every advertised authorization server is an issuer the validator trusts, when the
    /// validator names its issuers ([`TokenValidator::trusted_issuers`]; default: on). Clients pick any
    /// advertised server, so one the validator does not trust sends them into tokens that are always
    /// refused. Turn it off only when the validator accepts that server's tokens in a way it cannot name
    /// (e.g. a custom validator wrapping a known one).
    pub fn check_authorization_servers(mut self, check: bool) -> Self {
        self.check_authorization_servers = check;
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// Besides each setting on its own, it refuses combinations the guard cannot honour: a validator that
    /// cannot serve this resource ([`TokenValidator::check_context`]: e.g. explicit audiences without it),
    /// an advertised authorization server the validator does not trust (see
    /// [`check_authorization_servers`](Self::check_authorization_servers)), and metadata that promises
    /// sender-constrained tokens (`dpop_bound_access_tokens_required`, `dpop_signing_alg_values_supported`,
    /// `tls_client_certificate_bound_access_tokens`), which this guard does not verify.
    pub fn build(self) -> Result<BearerAuthLayer, BuildError> {
        if self.metadata.resource.is_empty() {
            return Err(BuildError::MissingResource);
        }
        let resource = ResourceUrl::parse(&self.metadata.resource)?;
        let metadata = self.metadata.validated()?;
        if metadata.dpop_bound_access_tokens_required
            || !metadata.dpop_signing_alg_values_supported.is_empty()
            || metadata.tls_client_certificate_bound_access_tokens
        {
            return Err(BuildError::InvalidMetadata(
                "the metadata promises sender-constrained (DPoP or certificate-bound) tokens, \
                 which this guard does not verify",
            ));
        }
        let validator = self.validator.ok_or(BuildError::MissingValidator)?;
        let context = ValidationContext::new(resource.resource.as_str());
        validator.check_context(&context)?;
        if self.check_authorization_servers {
            if let Some(trusted) = validator.trusted_issuers().filter(|t| !t.is_empty()) {
                if let Some(untrusted) = metadata
                    .authorization_servers
                    .iter()
                    .find(|server| !trusted.contains(server))
                {
                    return Err(BuildError::UntrustedAuthorizationServer(untrusted.clone()));
                }
            }
        }
        self.policy.check()?;
        check_hierarchy(&self.hierarchy)?;
        if self.max_token_bytes == 0 {
            return Err(BuildError::Invalid("max_token_bytes must be positive"));
        }
        if let Some(realm) = &self.realm {
            if realm.bytes().any(|b| !crate::charset::is_nqschar(b)) {
                return Err(BuildError::Invalid(
                    "realm must be printable ASCII without quotes or backslashes",
                ));
            }
        }
        let responder = MetadataResponder::new(&metadata, self.metadata_max_age)?;
        let challenger = Challenger::new(
            &resource.metadata_url,
            self.realm.as_deref(),
            self.include_granted_scopes,
            self.error_body,
        );
        Ok(BearerAuthLayer {
            shared: Arc::new(Shared {
                scope_check: ScopeCheck::Here,
                validator,
                context,
                policy: self.policy,
                hierarchy: self.hierarchy,
                challenger,
                metadata: Arc::new(responder),
                resource,
                root_metadata_alias: self.root_metadata_alias,
                max_token_bytes: self.max_token_bytes,
                strip_authorization: self.strip_authorization,
            }),
        })
    }
}

/// The service made by [`BearerAuthLayer`]: checks the bearer token, then calls the inner service.
#[derive(Clone)]
pub struct BearerAuth<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> BearerAuth<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for BearerAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("inner", &self.inner)
            .field("resource", &self.shared.resource.resource)
            .finish_non_exhaustive()
    }
}

/// The service `poll_ready` made ready, leaving a fresh clone in its place for the next request
/// (calling a clone instead would bypass the readiness that was reserved). Only for a call made later,
/// after an asynchronous validation.
pub(crate) fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BearerAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        if shared.is_metadata_request(request.uri().path()) {
            return ResponseFuture::guard(shared.metadata.respond(request.method()));
        }
        let (mut parts, body) = request.into_parts();
        let requirement = shared.policy.requirement(&parts);
        let token = match extract(&parts.headers, shared.max_token_bytes) {
            Ok(Credentials::Bearer(token)) => token,
            Ok(Credentials::None | Credentials::OtherScheme) => {
                let response = shared.reject(Rejection::MissingCredentials, &requirement, &parts);
                return ResponseFuture::guard(response);
            }
            Err(malformed) => {
                let response =
                    shared.reject(Rejection::InvalidRequest(malformed), &requirement, &parts);
                return ResponseFuture::guard(response);
            }
        };
        match shared
            .validator
            .validate(&token, &shared.context)
            .into_ready()
        {
            // Decided now: the service `poll_ready` made ready is called at once, no clone needed.
            Ok(result) => match shared.authorize(result, &mut parts, &requirement) {
                Ok(()) => ResponseFuture::call(&mut self.inner, Request::from_parts(parts, body)),
                Err(response) => ResponseFuture::guard(response),
            },
            Err(pending) => ResponseFuture::validating(
                pending,
                take_ready(&mut self.inner),
                Request::from_parts(parts, body),
                requirement,
                self.shared.clone(),
            ),
        }
    }
}
