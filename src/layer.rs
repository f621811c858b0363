//! [`BearerAuthLayer`], its builder, and the [`BearerAuth`] service.
//!
//! ```
//! use bearer_guard::{BearerAuthLayer, Requirement, StaticToken, StaticValidator};
//! use bytes::Bytes;
//! use http::{header, Request, Response, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use std::convert::Infallible;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = StaticValidator::builder()
//!     .token("reader-token-0123456789", StaticToken::new("alice").scopes(["mcp:read"]))
//!     .token("writer-token-0123456789", StaticToken::new("bob").scopes(["mcp:write"]))
//!     .build()?;
//! let guard = BearerAuthLayer::builder()
//!     .resource("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .validator(validator)
//!     .require(Requirement::all_of(["mcp:write"]))
//!     .build()?;
//! let app = guard.layer(service_fn(|_request: Request<Full<Bytes>>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! }));
//! let post = |authorization: Option<&str>| {
//!     let mut request = Request::post("https://mcp.example.com/mcp");
//!     if let Some(value) = authorization {
//!         request = request.header(header::AUTHORIZATION, value);
//!     }
//!     request.body(Full::new(Bytes::new())).unwrap()
//! };
//! let metadata = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
//!
//! // No token: 401, and the challenge says where the metadata is and which scope to ask for.
//! let response = app.clone().oneshot(post(None)).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     response.headers()[header::WWW_AUTHENTICATE],
//!     format!(r#"Bearer resource_metadata="{metadata}", scope="mcp:write""#),
//! );
//!
//! // A token the validator does not know: 401 invalid_token.
//! let response = app.clone().oneshot(post(Some("Bearer unknown-token-0123456789"))).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str()?;
//! assert!(challenge.contains(r#"error="invalid_token""#));
//!
//! // A valid token without the scope: 403 insufficient_scope, naming the scope (step-up).
//! let response = app.clone().oneshot(post(Some("Bearer reader-token-0123456789"))).await?;
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str()?;
//! assert!(challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="mcp:write""#));
//!
//! // The right token: the inner service answers.
//! let response = app.clone().oneshot(post(Some("Bearer writer-token-0123456789"))).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.into_body().collect().await?.to_bytes(), "hello");
//!
//! // The metadata document needs no token (RFC 9728).
//! let response = app.oneshot(Request::get(metadata).body(Full::new(Bytes::new()))?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! let body = response.into_body().collect().await?.to_bytes();
//! assert!(body.starts_with(br#"{"resource":"https://mcp.example.com/mcp","authorization_servers":["#));
//! # Ok(())
//! # }
//! ```
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

use http::header::AUTHORIZATION;
use http::request::Parts;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::{FixedBody, ResponseBody};
use crate::challenge::{Challenger, Rejection, RequestFacts};
use crate::error::{BuildError, Detail};
use crate::extract::{extract_schemes, Credentials};
use crate::future::ResponseFuture;
use crate::metadata::{MetadataResponder, MetadataService};
use crate::resource::{ResourceUrl, WELL_KNOWN_PREFIX};
use crate::scope::{Requirement, ScopeHierarchy, ScopePolicy};
use crate::token::AccessToken;
use crate::validate::{TokenValidator, ValidationContext, ValidationResult};

mod builder;
#[cfg(feature = "dpop")]
mod dpop;

pub use builder::BearerAuthLayerBuilder;

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
    /// DPoP, when this guard accepts it.
    #[cfg(feature = "dpop")]
    pub(crate) dpop: Option<Arc<crate::bind::dpop::DpopCheck>>,
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
        proven_jkt: Option<&[u8; 32]>,
    ) -> Result<(), Response<FixedBody>> {
        let access = match result {
            Ok(access) => access,
            Err(error) => {
                if let crate::ValidationError::Internal(what) = &error {
                    tracing::error!(error = what, "bearer-guard validator failed");
                }
                return Err(self.challenger.respond(
                    Rejection::from(&error),
                    requirement,
                    None,
                    RequestFacts::of(&parts.headers),
                    error.detail(),
                ));
            }
        };
        if let Err(rejection) = crate::bind::check_binding(access.confirmation(), proven_jkt, parts)
        {
            return Err(self.reject(rejection, requirement, parts));
        }
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
                &Detail::NONE,
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
            &Detail::NONE,
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
        #[cfg(feature = "dpop")]
        let mut proof = None;
        #[cfg(feature = "dpop")]
        let accepts_dpop = shared.dpop.is_some();
        #[cfg(not(feature = "dpop"))]
        let accepts_dpop = false;
        let extracted = extract_schemes(&parts.headers, shared.max_token_bytes, accepts_dpop);
        let token = match extracted {
            Ok(Credentials::Bearer(token)) => {
                #[cfg(feature = "dpop")]
                if let Some(response) = shared.refuse_bearer(&requirement, &parts) {
                    return ResponseFuture::guard(response);
                }
                token
            }
            #[cfg(feature = "dpop")]
            Ok(Credentials::Dpop(token)) => {
                match shared.verify_proof(&mut parts, &token, &requirement) {
                    Ok(verified) => proof = Some(verified),
                    Err(response) => return ResponseFuture::guard(response),
                }
                token
            }
            #[cfg(not(feature = "dpop"))]
            Ok(Credentials::Dpop(_)) => {
                let response = shared.reject(Rejection::MissingCredentials, &requirement, &parts);
                return ResponseFuture::guard(response);
            }
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
            Ok(result) => {
                #[cfg(feature = "dpop")]
                let proven = proof.as_ref().map(|p| &p.jkt);
                #[cfg(not(feature = "dpop"))]
                let proven = None;
                if let Err(response) = shared.authorize(result, &mut parts, &requirement, proven) {
                    return ResponseFuture::guard(response);
                }
                #[cfg(feature = "dpop")]
                if let Some(proof) = &proof {
                    use crate::store::StoreCall;
                    let nonce = proof.next_nonce.clone();
                    match shared.record_proof(proof) {
                        StoreCall::Ready(answer) => {
                            if let Err(response) =
                                shared.replay_answer(answer, &requirement, &parts)
                            {
                                return ResponseFuture::guard(response);
                            }
                        }
                        StoreCall::Pending(call) => {
                            return ResponseFuture::replaying(
                                call,
                                take_ready(&mut self.inner),
                                Request::from_parts(parts, body),
                                requirement,
                                self.shared.clone(),
                                nonce,
                            )
                        }
                    }
                    let request = Request::from_parts(parts, body);
                    return ResponseFuture::call_with_nonce(&mut self.inner, request, nonce);
                }
                ResponseFuture::call(&mut self.inner, Request::from_parts(parts, body))
            }
            Err(pending) => ResponseFuture::validating(
                pending,
                take_ready(&mut self.inner),
                Request::from_parts(parts, body),
                requirement,
                self.shared.clone(),
                #[cfg(feature = "dpop")]
                proof,
            ),
        }
    }
}
