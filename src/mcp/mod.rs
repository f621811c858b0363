//! MCP (feature `mcp`): per-tool, per-resource and per-prompt scopes, read from the JSON-RPC body of
//! streamable-HTTP requests.
//!
//! [`BearerAuthLayer`] decides from the method, path and headers. An MCP server has a single endpoint,
//! so "may this token call `write_note`?" is answered by the JSON-RPC body. [`McpScopes`] maps tools,
//! resources, prompts and other JSON-RPC methods to [`Requirement`]s, and
//! [`BearerAuthLayer::mcp_guard`] turns it and the guard into one layer that validates the token, reads the
//! body, checks the token's scopes against the guard's requirement and the operation's together, and
//! answers `403 insufficient_scope` (step-up, MCP 2026-07-28 §11.1) naming every scope the operation
//! needs, with exactly the guard's own challenge: same `resource_metadata`, same `scope` rules, same
//! include-granted option, and the guard's [`ScopeHierarchy`](crate::ScopeHierarchy).
//! ([`BearerAuthLayer::mcp_layer`] is the MCP layer alone, to place inside the guard yourself; the guard
//! then refuses a token short of its own scopes before the body is read, naming only those.)
//!
//! ```
//! use axum::{body::{Body, Bytes}, routing::post, Router};
//! use bearer_guard::mcp::McpScopes;
//! use bearer_guard::{BearerAuthLayer, Requirement, ScopeHierarchy, StaticToken, StaticValidator};
//! use http::{header, Request, StatusCode};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let validator = StaticValidator::builder()
//!     .token("reader-token-0123456789", StaticToken::new("alice").scopes(["mcp:read"]))
//!     .build()?;
//! let guard = BearerAuthLayer::builder()
//!     .resource("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported(["mcp:read"])
//!     .validator(validator)
//!     .scope_hierarchy(ScopeHierarchy::new().implies("mcp", ["mcp:read", "mcp:write"]))
//!     .require(Requirement::all_of(["mcp:read"])) // every request, whatever it carries
//!     .build()?;
//!
//! let guard_with_tools = guard.mcp_guard(
//!     McpScopes::new()
//!         .tool("write_note", Requirement::all_of(["mcp:write"]))
//!         .resource("notes://private", Requirement::all_of(["mcp:write"]))
//!         .prompt("summarize", Requirement::all_of(["mcp:read"]))
//!         .method("tools/list", Requirement::all_of(["mcp:read"]))
//!         .fallback(Requirement::all_of(["mcp:read"])),
//! )?;
//!
//! async fn mcp_endpoint(body: Bytes) -> Bytes {
//!     body // your MCP server here
//! }
//!
//! // Used instead of the guard: it validates the token first, then reads the body.
//! let app: Router = Router::new()
//!     .route("/mcp", post(mcp_endpoint).get(|| async { "stream" }))
//!     .layer(guard_with_tools);
//!
//! let call = |json: &'static str| {
//!     Request::post("https://mcp.example.com/mcp")
//!         .header(header::AUTHORIZATION, "Bearer reader-token-0123456789")
//!         .header(header::CONTENT_TYPE, "application/json")
//!         .body(Body::from(json))
//! };
//! // alice may list the tools...
//! let list = call(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)?;
//! assert_eq!(app.clone().oneshot(list).await?.status(), StatusCode::OK);
//! // ...but calling write_note needs mcp:write: 403, and the challenge names every scope the call needs.
//! let write = call(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_note"}}"#)?;
//! let response = app.oneshot(write).await?;
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str()?;
//! assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
//! assert!(challenge.contains(r#"scope="mcp:read mcp:write""#), "{challenge}");
//! # Ok(())
//! # }
//! ```
//!
//! # Placement
//!
//! [`mcp_guard`](BearerAuthLayer::mcp_guard) needs no placement: it is the guard. The MCP layer alone
//! ([`mcp_layer`](BearerAuthLayer::mcp_layer)) goes inside the guard: `.layer(mcp).layer(guard)` on an axum
//! `Router` (the last `.layer` is the outer one), or `ServiceBuilder::new().layer(guard).layer(mcp)`.
//! It reads the [`AccessToken`] that the guard put into the request extensions; without one (the layer is outside the guard, or the guard is
//! missing) it answers `500` and calls nothing. Either treats **every** `POST` it sees as a JSON-RPC
//! message: when the router also serves other `POST` routes, apply it to the MCP endpoint alone
//! (`route_layer` on the endpoint's `MethodRouter`, or a router nested for the endpoint).
//!
//! # What decides
//!
//! For a `POST`, the body is collected (up to [`McpScopes::max_body_bytes`], 4 MiB by default) and
//! parsed as one JSON-RPC message or a batch (an array):
//!
//! | message | requirement, first match |
//! |---|---|
//! | `tools/call` | [`tool`](McpScopes::tool) by `params.name`, then [`method`](McpScopes::method)`("tools/call")`, then the fallback |
//! | `resources/read` | [`resource`](McpScopes::resource) by `params.uri` (exact), then `method("resources/read")`, then the fallback |
//! | `prompts/get` | [`prompt`](McpScopes::prompt) by `params.name`, then `method("prompts/get")`, then the fallback |
//! | any other `method` (requests and notifications) | [`method`](McpScopes::method), then the fallback |
//! | a response (`result` or `error`, no `method`) | the [`fallback`](McpScopes::fallback) |
//!
//! Requests with another HTTP method (`GET`, `DELETE`, …) are not buffered: the fallback applies. The guard's own
//! requirement is checked before all this, so it is a floor for every request.
//!
//! In a batch, every member must be allowed. When some are not, the one `403` challenge names the union
//! of the preferred scopes of every member that needs more, together with the guard's own requirement for
//! the request (which the token already meets): all the scopes the operation needs, in a single challenge
//! (MCP 2026-07-28 §11.1.1) — a client that asks for exactly the challenged scopes keeps the baseline —
//! plus the granted ones when the guard was built with
//! [`challenge_includes_granted_scopes`](crate::BearerAuthLayerBuilder::challenge_includes_granted_scopes).
//!
//! # Request metadata headers
//!
//! MCP 2026-07-28 (streamable HTTP, "Request Metadata") mirrors `method` into `Mcp-Method` and
//! `params.name` / `params.uri` into `Mcp-Name`, so that intermediaries can route without reading the
//! body. A component that reads the body must reject a mismatch, or a gateway trusting `Mcp-Method:
//! tools/list` could pass a `tools/call`. When present, each header must occur once, hold only
//! printable ASCII, and equal the body's value (`Mcp-Name` after decoding the `=?base64?…?=` form);
//! `Mcp-Name` on a message that has no name is a mismatch too. A mismatch is answered with `400` and
//! JSON-RPC error `-32020` (`HeaderMismatch`) carrying the request's `id`. Missing headers are not
//! required here (clients of earlier versions do not send them), and `MCP-Protocol-Version` and
//! `Mcp-Param-*` are left to the MCP server, which knows the protocol version and the tool schemas.
//!
//! # Fails closed
//!
//! Nothing is passed on under a weaker requirement because it could not be understood, and nothing is
//! passed on that another JSON decoder could read as a different message (duplicate keys resolved the
//! other way, keys matched without case):
//!
//! | request | answer |
//! |---|---|
//! | body larger than the limit (by `Content-Length`, size hint or count) | `413`, JSON-RPC `-32600` |
//! | body not JSON (or not UTF-8, or unreadable) | `400`, JSON-RPC `-32700` |
//! | not an object or array; an empty batch; a member that is not an object; `method` not a string; neither `method` nor `result`/`error` | `400`, JSON-RPC `-32600` |
//! | a duplicate `id`, `method`, `params`, `params.name` or `params.uri` key, or a key that another decoder could take for one of them (`Method`, `ID`, `param\u017f`; `Name` / `URI` in the `params` of the three methods below) | `400`, JSON-RPC `-32600` |
//! | `tools/call` / `prompts/get` without a string `params.name`, `resources/read` without a string `params.uri` | `400`, JSON-RPC `-32600` |
//! | `Mcp-Method` / `Mcp-Name` mismatch | `400`, JSON-RPC `-32020` |
//! | missing scopes | `403` with the guard's `insufficient_scope` challenge |
//! | no [`AccessToken`] in the extensions | `500` |
//!
//! Error bodies are `{"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…}}` with fixed messages;
//! the `id` is the request's when it is a string or a number and the body was a single message, else
//! `null`. Nothing from the token is logged or echoed.
//!
//! # Body
//!
//! The request body type `B` must be an [`http_body::Body`] of [`Bytes`] that can be rebuilt
//! `From<Bytes>` (`axum::body::Body`, `http_body_util::Full<Bytes>`). The body is collected into one
//! `Bytes` (without copying when it arrived in one chunk) and the inner service gets `B::from` those very
//! bytes. Trailers of a `POST` body are dropped. The inner service that `poll_ready` made ready is the
//! one called, even when the body arrives later.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use serde_json::Value;

use crate::body::FixedBody;
use crate::challenge::{Rejection, RequestFacts};
use crate::error::{BuildError, Detail};
use crate::layer::{BearerAuthLayer, Shared};
use crate::scope::Requirement;
use crate::token::AccessToken;

/// The default [`McpScopes::max_body_bytes`]: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// JSON-RPC `Parse error`.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC `Invalid Request`.
const INVALID_REQUEST: i64 = -32600;
/// MCP `HeaderMismatch` (2026-07-28, streamable HTTP "Server Validation").
const HEADER_MISMATCH: i64 = -32020;

/// The default [`McpScopes::max_batch_members`].
pub const DEFAULT_MAX_BATCH_MEMBERS: usize = 64;

#[cfg(feature = "dpop")]
mod digest;
mod headers;
mod parse;
mod service;

use headers::check_headers;
use parse::{parse, Incoming, ParseError, Target, PROMPTS_GET, RESOURCES_READ, TOOLS_CALL};
pub use service::{McpGuardLayer, McpResponseFuture, McpScope, McpScopeLayer};

/// Which scopes each MCP operation needs: tools, resources, prompts, other JSON-RPC methods, and a
/// fallback. Turn it into a layer with [`BearerAuthLayer::mcp_layer`].
///
/// Configuring the same name twice keeps the last requirement. Names and URIs are compared exactly
/// (case-sensitive, after JSON unescaping). Cloning copies the tables.
#[derive(Clone, Debug)]
pub struct McpScopes {
    tools: HashMap<Box<str>, Requirement>,
    resources: HashMap<Box<str>, Requirement>,
    prompts: HashMap<Box<str>, Requirement>,
    methods: HashMap<Box<str>, Requirement>,
    fallback: Requirement,
    max_body_bytes: usize,
    max_batch_members: usize,
    /// Every DPoP `POST` must carry a `content_digest` (a present one is always checked).
    content_digest_required: bool,
}

impl Default for McpScopes {
    fn default() -> Self {
        Self {
            tools: HashMap::new(),
            resources: HashMap::new(),
            prompts: HashMap::new(),
            methods: HashMap::new(),
            fallback: Requirement::none(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_batch_members: DEFAULT_MAX_BATCH_MEMBERS,
            content_digest_required: false,
        }
    }
}

impl McpScopes {
    /// Empty tables; the fallback requires nothing beyond the guard's own requirement until
    /// [`fallback`](Self::fallback) sets it.
    pub fn new() -> Self {
        Self::default()
    }

    /// The requirement of `tools/call` with `params.name == name`.
    pub fn tool(mut self, name: &str, requirement: Requirement) -> Self {
        self.tools.insert(name.into(), requirement);
        self
    }

    /// The requirement of `resources/read` with `params.uri == uri` (exact match, no templates).
    pub fn resource(mut self, uri: &str, requirement: Requirement) -> Self {
        self.resources.insert(uri.into(), requirement);
        self
    }

    /// The requirement of `prompts/get` with `params.name == name`.
    pub fn prompt(mut self, name: &str, requirement: Requirement) -> Self {
        self.prompts.insert(name.into(), requirement);
        self
    }

    /// The requirement of a JSON-RPC method (e.g. `tools/list`, `initialize`, a notification).
    ///
    /// For `tools/call`, `resources/read` and `prompts/get` it applies to the names and URIs that have no
    /// entry of their own.
    pub fn method(mut self, method: &str, requirement: Requirement) -> Self {
        self.methods.insert(method.into(), requirement);
        self
    }

    /// The requirement of everything not configured: unlisted methods, responses sent by the client,
    /// and every request that is not a `POST` (`GET`, `DELETE`, …). Default: [`Requirement::none`].
    pub fn fallback(mut self, requirement: Requirement) -> Self {
        self.fallback = requirement;
        self
    }

    /// The largest `POST` body read, in bytes (default [`DEFAULT_MAX_BODY_BYTES`], 4 MiB); a larger
    /// one is answered with `413` without calling the inner service.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The largest number of messages in a JSON-RPC batch (default [`DEFAULT_MAX_BATCH_MEMBERS`]); a
    /// longer batch is answered with `400` (JSON-RPC `-32600`) as soon as the parser reaches the first
    /// member too many. MCP 2025-06-18 and later have no batches; clients of 2025-03-26 send a few.
    pub fn max_batch_members(mut self, members: usize) -> Self {
        self.max_batch_members = members;
        self
    }

    fn check(&self) -> Result<(), BuildError> {
        if self.max_body_bytes == 0 || self.max_batch_members == 0 {
            return Err(BuildError::Invalid(
                "max_body_bytes and max_batch_members must be positive",
            ));
        }
        for requirement in self
            .tools
            .values()
            .chain(self.resources.values())
            .chain(self.prompts.values())
            .chain(self.methods.values())
        {
            requirement.check()?;
        }
        self.fallback.check()
    }

    /// The requirement of one message.
    fn requirement(&self, target: &Target<'_>) -> &Requirement {
        let (table, key, method) = match *target {
            Target::Tool(name) => (&self.tools, name, TOOLS_CALL),
            Target::Resource(uri) => (&self.resources, uri, RESOURCES_READ),
            Target::Prompt(name) => (&self.prompts, name, PROMPTS_GET),
            Target::Method(method) => {
                return self.methods.get(method).unwrap_or(&self.fallback);
            }
            Target::Response => return &self.fallback,
        };
        table
            .get(key)
            .or_else(|| self.methods.get(method))
            .unwrap_or(&self.fallback)
    }
}

impl BearerAuthLayer {
    /// A layer enforcing `scopes` per JSON-RPC message, rendering its `403`s with this guard's challenge
    /// and judging scopes with this guard's hierarchy. Place it **inside** this guard (see [`crate::mcp`]).
    ///
    /// Refuses scopes with invalid syntax and a zero body limit.
    ///
    /// Placed this way, a token that lacks the guard's own scopes is refused by the guard before the body
    /// is read, so its `403` names only those; [`mcp_guard`](Self::mcp_guard) gives one `403` naming the
    /// guard's scopes and the operation's together.
    pub fn mcp_layer(&self, scopes: McpScopes) -> Result<McpScopeLayer, BuildError> {
        scopes.check()?;
        Ok(McpScopeLayer {
            shared: Arc::new(McpShared {
                guard: self.shared().clone(),
                scopes,
            }),
        })
    }

    /// This guard and an MCP layer enforcing `scopes`, as **one** layer to use instead of this guard
    /// (`.layer(guard.mcp_guard(scopes)?)`). The token is validated first, exactly as by the guard; then
    /// the body is read and one decision covers the guard's requirement and the operation's, so a token
    /// short of both gets a single `403` naming every scope the operation needs (MCP 2026-07-28
    /// §11.1.1), and one step-up suffices.
    pub fn mcp_guard(&self, scopes: McpScopes) -> Result<McpGuardLayer, BuildError> {
        Ok(McpGuardLayer {
            guard: self.deferring_scopes_to_mcp(),
            mcp: self.mcp_layer(scopes)?,
        })
    }
}

/// Set by the guard inside a [`McpGuardLayer`] on a token short of the guard's own requirement: the MCP
/// layer right inside refuses the request, naming that requirement together with the operation's.
#[derive(Clone)]
pub(crate) struct ScopeShortfall;

/// The guard's configuration and the MCP tables, shared by every clone.
pub(crate) struct McpShared {
    guard: Arc<Shared>,
    scopes: McpScopes,
}

impl McpShared {
    /// `403 insufficient_scope`, exactly as the guard renders it. The challenge names every scope the
    /// operation needs (MCP 2026-07-28 §11.1.1): the guard's own requirement for this request (which the
    /// token already meets) as well as the operation's, so a client that asks for exactly the challenged
    /// scopes does not lose the baseline and bounce between two 403s.
    fn forbid(
        &self,
        requirement: &Requirement,
        token: &AccessToken,
        parts: &Parts,
    ) -> Response<FixedBody> {
        let baseline = self.guard.policy.requirement(parts);
        let operation = if baseline.is_none() {
            requirement.clone()
        } else {
            Requirement::union_of(baseline.preferred().chain(requirement.preferred()))
        };
        self.guard.challenger.respond(
            Rejection::InsufficientScope,
            &operation,
            Some(token.scopes()),
            RequestFacts::of_parts(parts),
            &Detail::NONE,
        )
    }

    /// `500`: the layer was not placed inside the guard.
    fn missing_token(&self, parts: &Parts) -> Response<FixedBody> {
        tracing::error!(
            "bearer-guard mcp: no AccessToken in the request extensions; \
             is the MCP layer placed inside BearerAuthLayer?"
        );
        self.guard.challenger.respond(
            Rejection::Internal,
            &Requirement::none(),
            None,
            RequestFacts::of_parts(parts),
            &Detail::NONE,
        )
    }

    /// The fallback requirement, for requests that are not `POST`.
    #[allow(clippy::result_large_err)]
    fn authorize_fallback(&self, parts: &Parts) -> Result<(), Response<FixedBody>> {
        let Some(token) = parts.extensions.get::<AccessToken>() else {
            return Err(self.missing_token(parts));
        };
        let requirement = &self.scopes.fallback;
        let shortfall = parts.extensions.get::<ScopeShortfall>().is_some();
        if requirement.is_satisfied_by(token.scopes(), &self.guard.hierarchy) {
            if shortfall {
                // Only the guard's own requirement is missing (`forbid` names it).
                return Err(self.forbid(&Requirement::none(), token, parts));
            }
            Ok(())
        } else {
            Err(self.forbid(requirement, token, parts))
        }
    }

    /// Parses the body, checks the metadata headers and the scopes of every message.
    #[allow(clippy::result_large_err)]
    fn decide(&self, parts: &Parts, body: &[u8]) -> Result<(), Response<FixedBody>> {
        let Some(token) = parts.extensions.get::<AccessToken>() else {
            return Err(self.missing_token(parts));
        };
        #[cfg(feature = "dpop")]
        self.check_content_digest(parts, body)?;
        let incoming = match parse(body, self.scopes.max_batch_members) {
            Ok(incoming) => incoming,
            Err(error) => {
                let (code, message) = match error {
                    ParseError::Shape => (
                        INVALID_REQUEST,
                        "Invalid Request: not a well-formed JSON-RPC message or batch",
                    ),
                    ParseError::TooManyMembers => (
                        INVALID_REQUEST,
                        "Invalid Request: the batch has more messages than allowed",
                    ),
                    ParseError::Syntax => (PARSE_ERROR, "Parse error: the body is not valid JSON"),
                };
                return Err(json_rpc_error(StatusCode::BAD_REQUEST, code, message, None));
            }
        };
        let (messages, id) = match &incoming {
            Incoming::Single(message) => (std::slice::from_ref(message), message.id.as_ref()),
            Incoming::Batch(messages) if messages.is_empty() => {
                return Err(json_rpc_error(
                    StatusCode::BAD_REQUEST,
                    INVALID_REQUEST,
                    "Invalid Request: empty batch",
                    None,
                ));
            }
            Incoming::Batch(messages) => (messages.as_slice(), None),
        };
        let mut targets = Vec::with_capacity(messages.len());
        for message in messages {
            let target = message
                .target()
                .map_err(|why| json_rpc_error(StatusCode::BAD_REQUEST, INVALID_REQUEST, why, id))?;
            check_headers(&parts.headers, &target)
                .map_err(|why| json_rpc_error(StatusCode::BAD_REQUEST, HEADER_MISMATCH, why, id))?;
            targets.push(target);
        }

        let hierarchy = &self.guard.hierarchy;
        let mut failing = targets
            .iter()
            .map(|target| self.scopes.requirement(target))
            .filter(|requirement| !requirement.is_satisfied_by(token.scopes(), hierarchy));
        let Some(first) = failing.next() else {
            if parts.extensions.get::<ScopeShortfall>().is_some() {
                // Only the guard's own requirement is missing (`forbid` names it).
                return Err(self.forbid(&Requirement::none(), token, parts));
            }
            return Ok(());
        };
        let rest: Vec<&Requirement> = failing.collect();
        if rest.is_empty() {
            return Err(self.forbid(first, token, parts));
        }
        // One challenge naming every scope the operation needs (MCP 2026-07-28 §11.1.1).
        let union = Requirement::union_of(
            std::iter::once(first)
                .chain(rest)
                .flat_map(Requirement::preferred),
        );
        Err(self.forbid(&union, token, parts))
    }
}

/// A JSON-RPC error response (`application/json`, `no-store`).
pub(crate) fn json_rpc_error(
    status: StatusCode,
    code: i64,
    message: &'static str,
    id: Option<&Value>,
) -> Response<FixedBody> {
    let id = id
        .filter(|id| id.is_string() || id.is_number())
        .cloned()
        .unwrap_or(Value::Null);
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    });
    tracing::debug!(
        status = status.as_u16(),
        code,
        reason = message,
        "bearer-guard mcp rejected a request"
    );
    let mut response = Response::new(FixedBody::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn too_large() -> Response<FixedBody> {
    json_rpc_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        INVALID_REQUEST,
        "Request body too large",
        None,
    )
}
