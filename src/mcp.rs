//! MCP (feature `mcp`): per-tool, per-resource and per-prompt scopes, read from the JSON-RPC body of
//! streamable-HTTP requests.
//!
//! [`BearerAuthLayer`] decides from the method, path and headers. An MCP server has a single endpoint,
//! so "may this token call `write_note`?" is answered by the JSON-RPC body. [`McpScopes`] maps tools,
//! resources, prompts and other JSON-RPC methods to [`Requirement`]s, and
//! [`BearerAuthLayer::mcp_layer`] turns it into a layer that reads the body, checks the validated
//! token's scopes and answers `403 insufficient_scope` (step-up, MCP 2026-07-28 §11.1) with exactly
//! the guard's own challenge: same `resource_metadata`, same `scope` rules, same include-granted option,
//! and the guard's [`ScopeHierarchy`](crate::ScopeHierarchy).
//!
//! ```
//! use axum::{body::Bytes, routing::post, Router};
//! use bearer_guard::mcp::McpScopes;
//! use bearer_guard::{BearerAuthLayer, Requirement, ScopeHierarchy, StaticToken, StaticValidator};
//!
//! # fn main() -> Result<(), bearer_guard::BuildError> {
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
//! let mcp = guard.mcp_layer(
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
//! // The guard is the OUTER layer: it validates the token; the MCP layer reads it afterwards.
//! let app: Router = Router::new()
//!     .route("/mcp", post(mcp_endpoint).get(|| async { "stream" }))
//!     .layer(mcp)
//!     .layer(guard);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! # Placement
//!
//! Inside the guard: `.layer(mcp).layer(guard)` on an axum `Router` (the last `.layer` is the outer
//! one), or `ServiceBuilder::new().layer(guard).layer(mcp)`. The layer reads the [`AccessToken`] that the
//! guard put into the request extensions; without one (the layer is outside the guard, or the guard is
//! missing) it answers `500` and calls nothing. It treats **every** `POST` it sees as a JSON-RPC
//! message: when the router also serves other `POST` routes, apply it to the MCP endpoint alone
//! (`post(handler).layer(mcp)` on the `MethodRouter`, or a router nested for the endpoint).
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
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::{FixedBody, ResponseBody};
use crate::challenge::{Rejection, RequestFacts};
use crate::error::BuildError;
use crate::layer::{BearerAuthLayer, Shared};
use crate::scope::Requirement;
use crate::token::AccessToken;

/// The default [`McpScopes::max_body_bytes`]: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// JSON-RPC `Parse error`.
const PARSE_ERROR: i64 = -32700;
/// JSON-RPC `Invalid Request`.
const INVALID_REQUEST: i64 = -32600;
/// MCP `HeaderMismatch` (2026-07-28, streamable HTTP "Server Validation").
const HEADER_MISMATCH: i64 = -32020;

const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

const TOOLS_CALL: &str = "tools/call";
const RESOURCES_READ: &str = "resources/read";
const PROMPTS_GET: &str = "prompts/get";

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

    fn check(&self) -> Result<(), BuildError> {
        if self.max_body_bytes == 0 {
            return Err(BuildError::Invalid("max_body_bytes must be positive"));
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
    pub fn mcp_layer(&self, scopes: McpScopes) -> Result<McpScopeLayer, BuildError> {
        scopes.check()?;
        Ok(McpScopeLayer {
            shared: Arc::new(McpShared {
                guard: self.shared().clone(),
                scopes,
            }),
        })
    }
}

/// The guard's configuration and the MCP tables, shared by every clone.
struct McpShared {
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
            RequestFacts::of(&parts.headers),
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
            RequestFacts::of(&parts.headers),
        )
    }

    /// The fallback requirement, for requests that are not `POST`.
    #[allow(clippy::result_large_err)]
    fn authorize_fallback(&self, parts: &Parts) -> Result<(), Response<FixedBody>> {
        let Some(token) = parts.extensions.get::<AccessToken>() else {
            return Err(self.missing_token(parts));
        };
        let requirement = &self.scopes.fallback;
        if requirement.is_satisfied_by(token.scopes(), &self.guard.hierarchy) {
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
        let incoming = match serde_json::from_slice::<Incoming<'_>>(body) {
            Ok(incoming) => incoming,
            Err(error) => {
                return Err(match error.classify() {
                    serde_json::error::Category::Data => json_rpc_error(
                        StatusCode::BAD_REQUEST,
                        INVALID_REQUEST,
                        "Invalid Request: not a well-formed JSON-RPC message or batch",
                        None,
                    ),
                    _ => json_rpc_error(
                        StatusCode::BAD_REQUEST,
                        PARSE_ERROR,
                        "Parse error: the body is not valid JSON",
                        None,
                    ),
                });
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
fn json_rpc_error(
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

fn too_large() -> Response<FixedBody> {
    json_rpc_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        INVALID_REQUEST,
        "Request body too large",
        None,
    )
}

// ---------------------------------------------------------------------------------------------------
// Request metadata headers
// ---------------------------------------------------------------------------------------------------

/// The single value of header `name`: `Ok(None)` when absent, `Err` when repeated.
fn single_header<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    why: &'static str,
) -> Result<Option<&'h HeaderValue>, &'static str> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value)),
        (Some(_), Some(_)) => Err(why),
    }
}

/// Printable ASCII and space only (what a plain `Mcp-Method` / `Mcp-Name` may hold).
fn is_plain(value: &[u8]) -> bool {
    value.iter().all(|b| (0x20..=0x7E).contains(b))
}

/// Does the `Mcp-Name` header value (plain or `=?base64?…?=`) name exactly `expected`?
fn name_matches(value: &[u8], expected: &str) -> bool {
    if !is_plain(value) {
        return false;
    }
    match value
        .strip_prefix(b"=?base64?")
        .and_then(|rest| rest.strip_suffix(b"?="))
    {
        Some(encoded) => {
            decode_base64(encoded).is_some_and(|decoded| decoded == expected.as_bytes())
        }
        None => value == expected.as_bytes(),
    }
}

/// Checks `Mcp-Method` and `Mcp-Name`, when present, against one message.
fn check_headers(headers: &HeaderMap, target: &Target<'_>) -> Result<(), &'static str> {
    const METHOD_MISMATCH: &str = "Header mismatch: Mcp-Method does not match the body's method";
    const NAME_MISMATCH: &str = "Header mismatch: Mcp-Name does not match the body's name or uri";
    if let Some(value) = single_header(headers, &MCP_METHOD, METHOD_MISMATCH)? {
        let matches = target.method().is_some_and(|method| {
            is_plain(value.as_bytes()) && value.as_bytes() == method.as_bytes()
        });
        if !matches {
            return Err(METHOD_MISMATCH);
        }
    }
    if let Some(value) = single_header(headers, &MCP_NAME, NAME_MISMATCH)? {
        let matches = target
            .name()
            .is_some_and(|name| name_matches(value.as_bytes(), name));
        if !matches {
            return Err(NAME_MISMATCH);
        }
    }
    Ok(())
}

/// Decodes standard Base64 (RFC 4648 §4), padding optional; `None` on anything else.
fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    let data = match input {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] => {
            if !input.len().is_multiple_of(4) {
                return None;
            }
            rest
        }
        _ => input,
    };
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero (canonical encoding).
    (acc == 0).then_some(out)
}

// ---------------------------------------------------------------------------------------------------
// JSON-RPC parsing: only what the decision needs, borrowing strings from the body
// ---------------------------------------------------------------------------------------------------

/// What one message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'a> {
    Tool(&'a str),
    Resource(&'a str),
    Prompt(&'a str),
    Method(&'a str),
    /// A response from the client (`result` or `error`, no `method`).
    Response,
}

impl<'a> Target<'a> {
    fn method(&self) -> Option<&'a str> {
        match *self {
            Self::Tool(_) => Some(TOOLS_CALL),
            Self::Resource(_) => Some(RESOURCES_READ),
            Self::Prompt(_) => Some(PROMPTS_GET),
            Self::Method(method) => Some(method),
            Self::Response => None,
        }
    }

    fn name(&self) -> Option<&'a str> {
        match *self {
            Self::Tool(name) | Self::Resource(name) | Self::Prompt(name) => Some(name),
            Self::Method(_) | Self::Response => None,
        }
    }
}

/// A JSON string, or something else that was present.
#[derive(Debug, Default)]
enum Field<'a> {
    #[default]
    Absent,
    Str(std::borrow::Cow<'a, str>),
    NotString,
}

impl Field<'_> {
    fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            Self::Absent | Self::NotString => None,
        }
    }
}

/// The fields of `params` the decision reads.
#[derive(Debug, Default)]
struct Params<'a> {
    name: Field<'a>,
    uri: Field<'a>,
    /// A key such as `Name` or `URI` that another decoder could take for `name` or `uri`.
    lookalike: bool,
}

#[derive(Debug, Default)]
struct Message<'a> {
    id: Option<Value>,
    method: Field<'a>,
    params: Params<'a>,
    has_params: bool,
    is_response: bool,
}

impl Message<'_> {
    fn target(&self) -> Result<Target<'_>, &'static str> {
        let method = match &self.method {
            Field::Absent if self.is_response => return Ok(Target::Response),
            Field::Absent => return Err("Invalid Request: neither a request nor a response"),
            Field::NotString => return Err("Invalid Request: method must be a string"),
            Field::Str(method) => &**method,
        };
        if self.params.lookalike && matches!(method, TOOLS_CALL | RESOURCES_READ | PROMPTS_GET) {
            return Err(
                "Invalid Request: params has a key that differs from name or uri only in case",
            );
        }
        Ok(match method {
            TOOLS_CALL => Target::Tool(
                self.params
                    .name
                    .as_str()
                    .ok_or("Invalid Request: tools/call needs params.name as a string")?,
            ),
            RESOURCES_READ => Target::Resource(
                self.params
                    .uri
                    .as_str()
                    .ok_or("Invalid Request: resources/read needs params.uri as a string")?,
            ),
            PROMPTS_GET => Target::Prompt(
                self.params
                    .name
                    .as_str()
                    .ok_or("Invalid Request: prompts/get needs params.name as a string")?,
            ),
            other => Target::Method(other),
        })
    }
}

/// A whole body: one message or a batch.
enum Incoming<'a> {
    Single(Message<'a>),
    Batch(Vec<Message<'a>>),
}

/// The object keys the decision reads.
enum Key {
    Id,
    Method,
    Params,
    Result,
    Error,
    Name,
    Uri,
    /// Not `id`, `method` or `params`, but equal to one of them under case folding.
    LikeMessageField,
    /// Not `name` or `uri`, but equal to one of them under case folding.
    LikeParamsField,
    Other,
}

/// Does `key` equal the lowercase ASCII `target` when compared case-insensitively, the way lenient
/// decoders match keys (Go's `encoding/json` also folds `ſ` to `s` and the Kelvin sign to `k`)?
fn folds_to(key: &str, target: &str) -> bool {
    let mut folded = key.chars().map(|c| match c {
        '\u{17F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    });
    target.chars().all(|t| folded.next() == Some(t)) && folded.next().is_none()
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "id" => Key::Id,
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    "name" => Key::Name,
                    "uri" => Key::Uri,
                    _ if ["id", "method", "params"].iter().any(|t| folds_to(key, t)) => {
                        Key::LikeMessageField
                    }
                    _ if ["name", "uri"].iter().any(|t| folds_to(key, t)) => Key::LikeParamsField,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// Consumes the rest of a sequence or map.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Field<'de>, E> {
                Ok(Field::Str(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field<'de>, E> {
                Ok(Field::Str(v.to_owned().into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Field<'de>, E> {
                Ok(Field::Str(v.into()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Field<'de>, E> {
                Ok(Field::NotString)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Field<'de>, A::Error> {
                drain_seq(seq).map(|()| Field::NotString)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Field<'de>, A::Error> {
                drain_map(map).map(|()| Field::NotString)
            }
        }
        deserializer.deserialize_any(FieldVisitor)
    }
}

impl<'de> Deserialize<'de> for Params<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Params<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON-RPC params")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params<'de>, A::Error> {
                let mut params = Params::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let slot = match key {
                        Key::Name => &mut params.name,
                        Key::Uri => &mut params.uri,
                        Key::LikeParamsField => {
                            params.lookalike = true;
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if !slot.is_absent() {
                        return Err(de::Error::custom("duplicate key in params"));
                    }
                    *slot = map.next_value()?;
                }
                Ok(params)
            }
            // Not an object: nothing to read (a method that needs a name then fails).
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Params<'de>, E> {
                Ok(Params::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params<'de>, A::Error> {
                drain_seq(seq).map(|()| Params::default())
            }
        }
        deserializer.deserialize_any(ParamsVisitor)
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message<'de>, A::Error> {
        let mut message = Message::default();
        let mut seen_id = false;
        while let Some(key) = map.next_key::<Key>()? {
            let duplicate = match key {
                Key::Id => std::mem::replace(&mut seen_id, true),
                Key::Method => !message.method.is_absent(),
                Key::Params => std::mem::replace(&mut message.has_params, true),
                _ => false,
            };
            if duplicate {
                return Err(de::Error::custom("duplicate key in a JSON-RPC message"));
            }
            if matches!(key, Key::LikeMessageField) {
                // `Method` next to `method`: decoders that fold case could read another method.
                return Err(de::Error::custom("ambiguous key in a JSON-RPC message"));
            }
            match key {
                Key::Id => message.id = Some(map.next_value()?),
                Key::Method => message.method = map.next_value()?,
                Key::Params => message.params = map.next_value()?,
                Key::Result | Key::Error => {
                    message.is_response = true;
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Name
                | Key::Uri
                | Key::LikeMessageField
                | Key::LikeParamsField
                | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(message)
    }
}

impl<'de> Deserialize<'de> for Message<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MessageVisitor)
    }
}

impl<'de> Deserialize<'de> for Incoming<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IncomingVisitor;
        impl<'de> Visitor<'de> for IncomingVisitor {
            type Value = Incoming<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON-RPC message or batch")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Incoming<'de>, A::Error> {
                MessageVisitor.visit_map(map).map(Incoming::Single)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Incoming<'de>, A::Error> {
                let mut messages = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(message) = seq.next_element::<Message<'de>>()? {
                    messages.push(message);
                }
                Ok(Incoming::Batch(messages))
            }
        }
        deserializer.deserialize_any(IncomingVisitor)
    }
}

// ---------------------------------------------------------------------------------------------------
// Layer and service
// ---------------------------------------------------------------------------------------------------

/// The layer made by [`BearerAuthLayer::mcp_layer`]. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct McpScopeLayer {
    shared: Arc<McpShared>,
}

impl fmt::Debug for McpScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpScopeLayer")
            .field("scopes", &self.shared.scopes)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for McpScopeLayer {
    type Service = McpScope<S>;

    fn layer(&self, inner: S) -> McpScope<S> {
        McpScope {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`McpScopeLayer`]: checks the scopes of each JSON-RPC message, then calls the
/// inner service with the same body bytes.
#[derive(Clone)]
pub struct McpScope<S> {
    inner: S,
    shared: Arc<McpShared>,
}

impl<S> McpScope<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for McpScope<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpScope")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The service `poll_ready` made ready, leaving a fresh clone in its place for the next request.
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

impl<S, B, ResBody> Service<Request<B>> for McpScope<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    B: Body<Data = Bytes> + From<Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = McpResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = &self.shared;
        let (parts, body) = request.into_parts();
        if parts.method != Method::POST {
            return match shared.authorize_fallback(&parts) {
                Ok(()) => McpResponseFuture::call(
                    take_ready(&mut self.inner),
                    Request::from_parts(parts, body),
                ),
                Err(response) => McpResponseFuture::done(response),
            };
        }
        if parts.extensions.get::<AccessToken>().is_none() {
            return McpResponseFuture::done(shared.missing_token(&parts));
        }
        let limit = shared.scopes.max_body_bytes;
        let announced = body.size_hint().lower();
        if announced > limit as u64 {
            return McpResponseFuture::done(too_large());
        }
        McpResponseFuture {
            state: State::Collecting {
                body,
                buffer: Buffer::new(limit, announced as usize),
                pending: Some(Pending {
                    service: take_ready(&mut self.inner),
                    parts,
                    shared: self.shared.clone(),
                }),
            },
        }
    }
}

/// The body collected so far: one chunk kept as is, or several copied into one buffer.
struct Buffer {
    first: Option<Bytes>,
    joined: Option<BytesMut>,
    len: usize,
    limit: usize,
    /// The announced length (capped by the limit), to size the joined buffer once.
    announced: usize,
}

impl Buffer {
    fn new(limit: usize, announced: usize) -> Self {
        Self {
            first: None,
            joined: None,
            len: 0,
            limit,
            announced,
        }
    }

    /// Adds a chunk; `false` when the limit would be exceeded.
    fn push(&mut self, data: Bytes) -> bool {
        if data.is_empty() {
            return true;
        }
        let len = self.len.saturating_add(data.len());
        if len > self.limit {
            return false;
        }
        self.len = len;
        if let Some(joined) = &mut self.joined {
            joined.extend_from_slice(&data);
        } else if let Some(first) = self.first.take() {
            let mut joined = BytesMut::with_capacity(self.announced.max(len));
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&data);
            self.joined = Some(joined);
        } else {
            self.first = Some(data);
        }
        true
    }

    fn into_bytes(self) -> Bytes {
        match self.joined {
            Some(joined) => joined.freeze(),
            None => self.first.unwrap_or_default(),
        }
    }
}

/// A `POST` waiting for its body, with the service that was made ready for it.
struct Pending<S> {
    service: S,
    parts: Parts,
    shared: Arc<McpShared>,
}

pin_project! {
    /// The future returned by [`McpScope`]: collecting the body, the layer's own answer, or the inner
    /// service's response future.
    pub struct McpResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Done { response: Option<Response<FixedBody>> },
        Collecting { #[pin] body: B, buffer: Buffer, pending: Option<Pending<S>> },
        Calling { #[pin] future: S::Future },
    }
}

impl<S, B> McpResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn done(response: Response<FixedBody>) -> Self {
        Self {
            state: State::Done {
                response: Some(response),
            },
        }
    }

    fn call(mut service: S, request: Request<B>) -> Self {
        Self {
            state: State::Calling {
                future: service.call(request),
            },
        }
    }
}

impl<S, B> fmt::Debug for McpResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Done { .. } => "done",
            State::Collecting { .. } => "collecting",
            State::Calling { .. } => "calling",
        };
        f.debug_struct("McpResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, B, ResBody> Future for McpResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    B: Body<Data = Bytes> + From<Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Done { response } => {
                    let response = response.take().unwrap_or_else(polled_after_completion);
                    return Poll::Ready(Ok(response.map(ResponseBody::guard)));
                }
                StateProj::Collecting {
                    mut body,
                    buffer,
                    pending,
                } => {
                    let rejected = loop {
                        match ready!(body.as_mut().poll_frame(cx)) {
                            Some(Ok(frame)) => {
                                // Trailers are dropped: the inner service gets a plain body.
                                if let Ok(data) = frame.into_data() {
                                    if !buffer.push(data) {
                                        break Some(too_large());
                                    }
                                }
                            }
                            Some(Err(error)) => {
                                let error: Box<dyn StdError + Send + Sync> = error.into();
                                break Some(if is_length_limit(&*error) {
                                    too_large()
                                } else {
                                    json_rpc_error(
                                        StatusCode::BAD_REQUEST,
                                        PARSE_ERROR,
                                        "Parse error: the request body could not be read",
                                        None,
                                    )
                                });
                            }
                            None => break None,
                        }
                    };
                    let next = match (rejected, pending.take()) {
                        (Some(response), _) => State::Done {
                            response: Some(response),
                        },
                        (None, None) => State::Done {
                            response: Some(polled_after_completion()),
                        },
                        (None, Some(mut pending)) => {
                            let bytes = std::mem::replace(buffer, Buffer::new(0, 0)).into_bytes();
                            match pending.shared.decide(&pending.parts, &bytes) {
                                Ok(()) => State::Calling {
                                    future: pending
                                        .service
                                        .call(Request::from_parts(pending.parts, B::from(bytes))),
                                },
                                Err(response) => State::Done {
                                    response: Some(response),
                                },
                            }
                        }
                    };
                    this.state.set(next);
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
            }
        }
    }
}

/// Was the body cut short by a length limit (`http_body_util::Limited`, e.g. inside an `axum::Error`)?
fn is_length_limit(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// Polling a finished future is a caller bug; answer 500 rather than panic (and never let a request through).
fn polled_after_completion() -> Response<FixedBody> {
    let mut response = Response::new(FixedBody::empty());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Vec<Target<'static>>, String> {
        let body: &'static str = Box::leak(body.to_owned().into_boxed_str());
        let incoming: Incoming<'static> =
            serde_json::from_str(body).map_err(|e| format!("{:?}", e.classify()))?;
        let messages: Vec<Message<'static>> = match incoming {
            Incoming::Single(m) => vec![m],
            Incoming::Batch(v) => v,
        };
        let messages: &'static [Message<'static>] = Box::leak(messages.into_boxed_slice());
        messages
            .iter()
            .map(|m| m.target().map_err(str::to_owned))
            .collect()
    }

    #[test]
    fn targets() {
        assert_eq!(
            parse(
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"name":"x"},"name":"echo"}}"#
            ),
            Ok(vec![Target::Tool("echo")])
        );
        assert_eq!(
            parse(r#"{"method":"tools\/call","params":{"name":"e\u0063ho"}}"#),
            Ok(vec![Target::Tool("echo")])
        );
        assert_eq!(
            parse(r#"{"method":"resources/read","params":{"uri":"notes://a"}}"#),
            Ok(vec![Target::Resource("notes://a")])
        );
        assert_eq!(
            parse(
                r#"[{"method":"prompts/get","params":{"name":"p"}},{"method":"tools/list","params":null},{"id":1,"result":{}}]"#
            ),
            Ok(vec![
                Target::Prompt("p"),
                Target::Method("tools/list"),
                Target::Response
            ])
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(parse("{").unwrap_err(), "Eof");
        assert_eq!(parse("{} x").unwrap_err(), "Syntax");
        assert_eq!(parse("42").unwrap_err(), "Data");
        assert_eq!(parse("[1]").unwrap_err(), "Data");
        assert_eq!(parse(r#"{"method":"a","method":"b"}"#).unwrap_err(), "Data");
        assert_eq!(
            parse(r#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#).unwrap_err(),
            "Data"
        );
        assert_eq!(
            parse(r#"{"method":"x","params":{},"params":{}}"#).unwrap_err(),
            "Data"
        );
        assert!(parse(r#"{"method":7}"#).unwrap_err().contains("string"));
        assert!(parse(r#"{"method":"tools/call","params":{"name":7}}"#)
            .unwrap_err()
            .contains("params.name"));
        assert!(parse(r#"{"method":"tools/call","params":[]}"#)
            .unwrap_err()
            .contains("params.name"));
        assert!(
            parse(r#"{"method":"resources/read","params":{"name":"x"}}"#)
                .unwrap_err()
                .contains("params.uri")
        );
        assert_eq!(
            parse(r#"{"method":"tools/list","Method":"tools/call"}"#).unwrap_err(),
            "Data"
        );
        assert_eq!(
            parse(r#"{"method":"tools/list","param\u017f":{}}"#).unwrap_err(),
            "Data"
        );
        assert!(
            parse(r#"{"method":"tools/call","params":{"name":"echo","NAME":"write"}}"#)
                .unwrap_err()
                .contains("only in case")
        );
        assert!(
            parse(r#"{"method":"resources/read","params":{"uri":"a","\u212Ari":"b"}}"#).is_ok(),
            "not a lookalike of uri"
        );
        assert!(parse(r#"{"method":"resources/read","params":{"uri":"a","Uri":"b"}}"#).is_err());
        // Other methods may carry such keys.
        assert!(parse(r#"{"method":"x/y","params":{"Name":"a"},"Params2":1}"#).is_ok());
        assert!(parse(r#"{"jsonrpc":"2.0","id":1}"#)
            .unwrap_err()
            .contains("neither"));
    }

    #[test]
    fn buffer_keeps_one_chunk_and_joins_several() {
        let chunk = Bytes::from_static(b"{\"method\":\"x\"}");
        let mut one = Buffer::new(64, 0);
        assert!(one.push(chunk.clone()));
        assert!(one.push(Bytes::new()));
        let bytes = one.into_bytes();
        assert_eq!(bytes, chunk);
        assert_eq!(bytes.as_ptr(), chunk.as_ptr(), "one chunk is not copied");

        let mut several = Buffer::new(10, 6);
        for part in ["ab", "cd", "ef"] {
            assert!(several.push(Bytes::from_static(part.as_bytes())));
        }
        assert_eq!(several.len, 6);
        assert!(
            several.push(Bytes::from_static(b"ghij")),
            "exactly at the limit"
        );
        assert!(!several.push(Bytes::from_static(b"k")), "over the limit");
        assert_eq!(several.into_bytes(), Bytes::from_static(b"abcdefghij"));
        assert_eq!(Buffer::new(10, 0).into_bytes(), Bytes::new());
    }

    #[test]
    fn folding() {
        assert!(folds_to("METHOD", "method"));
        assert!(folds_to("param\u{17F}", "params"));
        assert!(folds_to("ID", "id"));
        assert!(!folds_to("method2", "method"));
        assert!(!folds_to("metho", "method"));
        assert!(!folds_to("m\u{e9}thod", "method"));
    }

    #[test]
    fn base64() {
        assert_eq!(
            decode_base64(b"SGVsbG8sIOS4lueVjA==").as_deref(),
            Some("Hello, 世界".as_bytes())
        );
        assert_eq!(
            decode_base64(b"IHBhZGRlZCA=").as_deref(),
            Some(&b" padded "[..])
        );
        assert_eq!(
            decode_base64(b"IHBhZGRlZCA").as_deref(),
            Some(&b" padded "[..])
        );
        assert_eq!(decode_base64(b"").as_deref(), Some(&b""[..]));
        assert!(decode_base64(b"IHBhZGRlZCA==").is_none());
        assert!(decode_base64(b"A").is_none());
        assert!(decode_base64(b"AB*=").is_none());
        assert!(
            decode_base64(b"AB==").is_none(),
            "non-canonical trailing bits"
        );
        assert!(name_matches(b"=?base64?IHBhZGRlZCA=?=", " padded "));
        assert!(name_matches(b"echo", "echo"));
        assert!(!name_matches(b"Echo", "echo"));
        assert!(!name_matches(b"ech\to", "ech\to"));
    }
}
