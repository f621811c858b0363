//! Per-tool step-up scopes from the JSON-RPC body (`bearer_guard::mcp`), over a real axum server on
//! loopback: `Router::new().route("/mcp", …).layer(mcp).layer(guard)`.
//!
//! What this file establishes:
//! - allowed messages reach the handler with the exact body bytes; missing scopes give the guard's own
//!   `403 insufficient_scope` challenge (with and without the include-granted option), honouring the
//!   scope hierarchy;
//! - a batch is judged member by member and one challenge names every scope it needs;
//! - unparseable or ill-formed bodies, `Mcp-Method` / `Mcp-Name` mismatches and oversized bodies are
//!   refused (400 / 400 `-32020` / 413) and never reach the handler;
//! - `tools/call`, `resources/read`, `prompts/get` and other methods map as configured; `GET`/`DELETE`
//!   get the fallback requirement, and without a token the guard still answers 401;
//! - a misplaced layer (outside the guard) fails closed with 500;
//! - `poll_ready` is honoured: the instance made ready is the one called, even after the body arrived.
#![cfg(feature = "mcp")]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use bearer_guard::mcp::McpScopes;
use bearer_guard::testkit::probe::Reply;
use bearer_guard::{
    AccessToken, BearerAuthLayer, BuildError, Requirement, ScopeHierarchy, StaticToken,
    StaticValidator,
};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tower::{Layer, Service, ServiceExt};

/// Every wait in this file is bounded by this.
const WAIT: Duration = Duration::from_secs(5);

/// `mcp:read`.
const READER: &str = "McpReaderTok-4f8Kq2Lz7Xw1Vb9N";
/// `mcp:read mcp:write`.
const WRITER: &str = "McpWriterTok-6h3Jd8Pm1Rc5Ty0S";
/// `mcp`, which the hierarchy expands to `mcp:read` and `mcp:write`.
/// `profile` only: neither the guard's `mcp:read` nor any tool's scope.
const OUTSIDER: &str = "McpOutsiderTok-2k8Fq5Zr1Wm7Yd3P";
const BROAD: &str = "McpBroadTok-9a2Ge7Wn4Ux6Qk3B";
const ISSUER: &str = "https://auth.example.com";

const INSUFFICIENT: &str = "error=\"insufficient_scope\", error_description=\"The access token lacks a scope this request requires\"";

fn validator() -> StaticValidator {
    StaticValidator::builder()
        .token(READER, StaticToken::new("reader").scopes(["mcp:read"]))
        .token(
            WRITER,
            StaticToken::new("writer").scopes(["mcp:read", "mcp:write"]),
        )
        .token(BROAD, StaticToken::new("broad").scopes(["mcp"]))
        .token(OUTSIDER, StaticToken::new("outsider").scopes(["profile"]))
        .build()
        .expect("static validator")
}

fn guard(addr: SocketAddr, include_granted: bool) -> BearerAuthLayer {
    BearerAuthLayer::builder()
        .resource(format!("http://{addr}/mcp"))
        .authorization_server(ISSUER)
        .scopes_supported(["mcp:read"])
        .validator(validator())
        .scope_hierarchy(ScopeHierarchy::new().implies("mcp", ["mcp:read", "mcp:write"]))
        .require(Requirement::all_of(["mcp:read"]))
        .challenge_includes_granted_scopes(include_granted)
        .build()
        .expect("guard")
}

/// The tables most tests use.
fn scopes() -> McpScopes {
    McpScopes::new()
        .tool("echo", Requirement::all_of(["mcp:read"]))
        .tool("write_note", Requirement::all_of(["mcp:write"]))
        .tool("admin_reset", Requirement::all_of(["mcp:admin"]))
        .resource("notes://secret", Requirement::all_of(["mcp:write"]))
        .prompt("draft_reply", Requirement::all_of(["mcp:write"]))
        .method("tools/list", Requirement::all_of(["mcp:read"]))
        .method("logging/setLevel", Requirement::all_of(["mcp:admin"]))
        .fallback(Requirement::all_of(["mcp:read"]))
        .max_body_bytes(1024)
}

struct Server {
    addr: SocketAddr,
    /// Requests that reached the handler.
    calls: Arc<AtomicUsize>,
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    fn metadata_url(&self) -> String {
        format!(
            "http://{}/.well-known/oauth-protected-resource/mcp",
            self.addr
        )
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The exact `403` challenge for `scope`.
    fn forbidden(&self, scope: &str) -> String {
        format!(
            "Bearer resource_metadata=\"{}\", {INSUFFICIENT}, scope=\"{scope}\"",
            self.metadata_url()
        )
    }

    async fn post(&self, token: &str, body: &str) -> Reply {
        self.post_with(token, &[], body).await
    }

    async fn post_with(&self, token: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut request = Request::post(self.url())
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        send(
            request
                .body(Full::new(Bytes::from(body.to_owned())).boxed())
                .expect("request"),
        )
        .await
    }

    async fn without_body(&self, method: Method, token: Option<&str>) -> Reply {
        let mut request = Request::builder().method(method).uri(self.url());
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        send(
            request
                .body(Full::new(Bytes::new()).boxed())
                .expect("request"),
        )
        .await
    }
}

/// Serves `/mcp` (POST echoes the body it received; GET and DELETE answer fixed text) behind the MCP
/// layer and the guard, in the documented order.
async fn serve(scopes: McpScopes, include_granted: bool) -> Server {
    serve_with(scopes, include_granted, Placement::Inside).await
}

/// Where the MCP layer sits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Inside the guard, as documented for `mcp_layer`.
    Inside,
    /// Outside the guard (a mistake).
    Outside,
    /// Guard and MCP layer as one (`mcp_guard`).
    Combined,
}

async fn serve_with(scopes: McpScopes, include_granted: bool, placement: Placement) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let guard = guard(addr, include_granted);
    let combined = guard.mcp_guard(scopes.clone()).expect("mcp guard");
    let mcp = guard.mcp_layer(scopes).expect("mcp layer");
    let calls = Arc::new(AtomicUsize::new(0));
    let (on_post, on_get, on_delete) = (calls.clone(), calls.clone(), calls.clone());
    let routes = Router::new().route(
        "/mcp",
        post(move |body: Bytes| async move {
            on_post.fetch_add(1, Ordering::SeqCst);
            body
        })
        .get(move || async move {
            on_get.fetch_add(1, Ordering::SeqCst);
            "stream"
        })
        .delete(move || async move {
            on_delete.fetch_add(1, Ordering::SeqCst);
            "deleted"
        }),
    );
    let router = match placement {
        Placement::Outside => routes.layer(guard).layer(mcp),
        Placement::Inside => routes.layer(mcp).layer(guard),
        Placement::Combined => routes.layer(combined),
    };
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server { addr, calls }
}

/// Asserts a JSON-RPC error body with `code` and `id`, served as `application/json`, without a challenge.
fn assert_json_rpc_error(reply: &Reply, status: StatusCode, code: i64, id: Value) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/json");
    let body = reply.json();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], id);
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string());
    assert!(reply.headers.get(header::WWW_AUTHENTICATE).is_none());
}

async fn send(request: Request<BoxBody<Bytes, Infallible>>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<BoxBody<Bytes, Infallible>>();
    let response = timeout(WAIT, client.request(request))
        .await
        .expect("response in time")
        .expect("response");
    Reply::collect(response).await.expect("body")
}

fn tools_call(id: Value, name: &str) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "tools/call",
        "params": { "name": name, "arguments": { "text": "hello" } },
    })
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// Single messages
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn allowed_tool_reaches_the_handler_with_the_exact_bytes() {
    let server = serve(scopes(), false).await;
    // Whitespace, key order and escapes as sent: the handler must see these very bytes.
    let body = "{ \"jsonrpc\":\"2.0\", \"id\":1,\n \"method\":\"tools/call\",\t\"params\":{\"arguments\":{\"text\":\"caf\\u00e9 \u{1F980}\"},\"name\":\"ech\\u006f\"} }";
    let reply = server.post(READER, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, body.as_bytes());
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn missing_tool_scope_gets_the_guards_challenge() {
    let server = serve(scopes(), false).await;
    let reply = server
        .post(READER, &tools_call(json!(2), "write_note"))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text());
    assert_eq!(reply.challenge(), server.forbidden("mcp:read mcp:write"));
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(reply.json()["error"], "insufficient_scope");
    assert_eq!(server.calls(), 0);

    // The same token and tool, with the writer's token: through.
    let reply = server
        .post(WRITER, &tools_call(json!(3), "write_note"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn include_granted_option_of_the_guard_is_honoured() {
    let server = serve(scopes(), true).await;
    let reply = server
        .post(READER, &tools_call(json!(2), "write_note"))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), server.forbidden("mcp:read mcp:write"));
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn scope_hierarchy_of_the_guard_is_honoured() {
    let server = serve(scopes(), false).await;
    let reply = server
        .post(BROAD, &tools_call(json!(4), "write_note"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // `mcp` does not imply `mcp:admin`.
    let reply = server
        .post(BROAD, &tools_call(json!(5), "admin_reset"))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), server.forbidden("mcp:admin mcp:read"));
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn unconfigured_tool_uses_the_fallback_or_the_method_entry() {
    let server = serve(scopes(), false).await;
    let reply = server
        .post(READER, &tools_call(json!(1), "not_listed"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // `method("tools/call", …)` covers the tools without an entry of their own.
    let server = serve(
        scopes().method("tools/call", Requirement::all_of(["mcp:write"])),
        false,
    )
    .await;
    let reply = server
        .post(READER, &tools_call(json!(1), "not_listed"))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), server.forbidden("mcp:read mcp:write"));
    let reply = server.post(READER, &tools_call(json!(1), "echo")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn resources_read_maps_by_exact_uri() {
    let server = serve(scopes(), false).await;
    let read = |uri: &str| {
        json!({"jsonrpc": "2.0", "id": 9, "method": "resources/read", "params": {"uri": uri}})
            .to_string()
    };
    let reply = server.post(READER, &read("notes://secret")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), server.forbidden("mcp:read mcp:write"));
    let reply = server.post(WRITER, &read("notes://secret")).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Exact match only: another URI (even a prefix extension or different case) is the fallback.
    for uri in ["notes://secret/2", "notes://SECRET", "notes://public"] {
        let reply = server.post(READER, &read(uri)).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
    }
    // `params.uri` is required.
    let reply = server
        .post(
            READER,
            r#"{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"name":"notes://secret"}}"#,
        )
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32600, json!(9));
    assert_eq!(server.calls(), 4);
}

#[tokio::test]
async fn prompts_get_maps_by_name() {
    let server = serve(scopes(), false).await;
    let get = |name: &str| {
        json!({"jsonrpc": "2.0", "id": "p", "method": "prompts/get", "params": {"name": name}})
            .to_string()
    };
    let reply = server.post(READER, &get("draft_reply")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), server.forbidden("mcp:read mcp:write"));
    let reply = server.post(BROAD, &get("draft_reply")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = server.post(READER, &get("greeting")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = server
        .post(
            READER,
            r#"{"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{}}"#,
        )
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32600, json!("p"));
    assert_eq!(server.calls(), 2);
}

#[tokio::test]
async fn other_methods_notifications_and_responses() {
    let server = serve(scopes(), false).await;
    let reply = server
        .post(READER, r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = server
        .post(
            WRITER,
            r#"{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"debug"}}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), server.forbidden("mcp:admin mcp:read"));
    // A notification and a response from the client: the fallback (`mcp:read`).
    let reply = server
        .post(
            READER,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = server
        .post(READER, r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(server.calls(), 3);
}

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn batch_needs_every_member_allowed() {
    let server = serve(scopes(), false).await;
    let batch = format!(
        "[{},{}]",
        tools_call(json!(1), "echo"),
        tools_call(json!(2), "write_note")
    );
    let reply = server.post(READER, &batch).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), server.forbidden("mcp:read mcp:write"));
    assert_eq!(server.calls(), 0);

    let reply = server.post(WRITER, &batch).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, batch.as_bytes());
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn batch_challenge_names_every_missing_scope_once() {
    let batch = format!(
        "[{},{},{},{}]",
        tools_call(json!(1), "write_note"),
        tools_call(json!(2), "admin_reset"),
        tools_call(json!(3), "echo"),
        tools_call(json!(4), "write_note"),
    );
    let server = serve(scopes(), false).await;
    let reply = server.post(READER, &batch).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge(),
        server.forbidden("mcp:admin mcp:read mcp:write")
    );

    let server = serve(scopes(), true).await;
    let reply = server.post(READER, &batch).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge(),
        server.forbidden("mcp:admin mcp:read mcp:write")
    );
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn empty_or_invalid_batch_is_refused() {
    let server = serve(scopes(), false).await;
    let reply = server.post(WRITER, "[]").await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32600, Value::Null);
    // One bad member spoils the batch, and no id is echoed for a batch.
    let batch = format!(
        r#"[{},{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{}}}}]"#,
        tools_call(json!(1), "echo")
    );
    let reply = server.post(WRITER, &batch).await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32600, Value::Null);
    let reply = server
        .post(WRITER, &format!("[{}, 7]", tools_call(json!(1), "echo")))
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32600, Value::Null);
    assert_eq!(server.calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// Malformed bodies fail closed
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unparseable_body_is_refused_not_passed_through() {
    let server = serve(scopes(), false).await;
    for body in [
        "",
        "not json",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call""#,
        r#"{"jsonrpc":"2.0","method":"tools/list"} {"method":"tools/call"}"#,
    ] {
        let reply = server.post(WRITER, body).await;
        assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32700, Value::Null);
        assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    }
    // Not UTF-8.
    let request = Request::post(server.url())
        .header(header::AUTHORIZATION, format!("Bearer {WRITER}"))
        .body(Full::new(Bytes::from_static(b"{\"method\":\"\xff\"}")).boxed())
        .expect("request");
    let reply = send(request).await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32700, Value::Null);
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn ill_formed_messages_are_refused() {
    let server = serve(scopes(), false).await;
    let cases = [
        // Not an object or array.
        (r#""tools/list""#, Value::Null),
        ("42", Value::Null),
        // `method` not a string.
        (
            r#"{"jsonrpc":"2.0","id":1,"method":["tools/list"]}"#,
            json!(1),
        ),
        // tools/call without a (string) params.name.
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call"}"#,
            json!(2),
        ),
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":{"name":"echo"}}}"#,
            json!(3),
        ),
        (
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":null}}"#,
            json!(4),
        ),
        (
            r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":["echo"]}"#,
            json!("x"),
        ),
        // Neither a request nor a response.
        (r#"{"jsonrpc":"2.0","id":5}"#, json!(5)),
        // Keys a case-folding decoder (Go's encoding/json) would read as `method` / `params.name`.
        (
            r#"{"jsonrpc":"2.0","id":8,"method":"tools/list","Method":"tools/call","params":{"name":"write_note"}}"#,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","Name":"write_note"}}"#,
            json!(9),
        ),
        // Duplicate keys a lenient parser would resolve one way and a strict one another.
        (
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/list","method":"tools/call","params":{"name":"write_note"}}"#,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","name":"write_note"}}"#,
            Value::Null,
        ),
    ];
    for (body, id) in cases {
        let reply = server.post(WRITER, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32600, id);
    }
    assert_eq!(server.calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// Mcp-Method / Mcp-Name
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn mcp_method_header_must_match_the_body() {
    let server = serve(scopes(), false).await;
    // The bypass attempt: a cheap method in the header over an expensive call in the body.
    let reply = server
        .post_with(
            READER,
            &[("Mcp-Method", "tools/list")],
            &tools_call(json!("req-7"), "write_note"),
        )
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32020, json!("req-7"));
    // Case matters for values; a repeated header is a mismatch.
    let reply = server
        .post_with(
            WRITER,
            &[("Mcp-Method", "Tools/Call")],
            &tools_call(json!(8), "echo"),
        )
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32020, json!(8));
    let reply = server
        .post_with(
            WRITER,
            &[("Mcp-Method", "tools/call"), ("Mcp-Method", "tools/call")],
            &tools_call(json!(9), "echo"),
        )
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32020, json!(9));
    // A header naming a method over a response.
    let reply = server
        .post_with(
            WRITER,
            &[("Mcp-Method", "tools/list")],
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        )
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32020, json!(1));
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn mcp_name_header_must_match_the_body() {
    let server = serve(scopes(), false).await;
    let reply = server
        .post_with(
            WRITER,
            &[("Mcp-Method", "tools/call"), ("Mcp-Name", "echo")],
            &tools_call(json!(11), "write_note"),
        )
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32020, json!(11));
    // Mcp-Name for resources/read is the URI.
    let reply = server
        .post_with(
            WRITER,
            &[("Mcp-Name", "notes://public")],
            r#"{"jsonrpc":"2.0","id":12,"method":"resources/read","params":{"uri":"notes://secret"}}"#,
        )
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32020, json!(12));
    // A name for a method that has none.
    let reply = server
        .post_with(
            WRITER,
            &[("Mcp-Name", "echo")],
            r#"{"jsonrpc":"2.0","id":13,"method":"tools/list"}"#,
        )
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32020, json!(13));
    // A Base64 value that does not decode to the name.
    let reply = server
        .post_with(
            WRITER,
            &[("Mcp-Name", "=?base64?ZWNobw==?=")],
            &tools_call(json!(14), "write_note"),
        )
        .await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32020, json!(14));
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn matching_headers_pass() {
    let server = serve(scopes(), false).await;
    let body = tools_call(json!(21), "echo");
    let reply = server
        .post_with(
            READER,
            &[("Mcp-Method", "tools/call"), ("Mcp-Name", "echo")],
            &body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, body.as_bytes());
    // The Base64 sentinel form (MCP 2026-07-28 "Value Encoding"): `echo`.
    let reply = server
        .post_with(
            READER,
            &[
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?ZWNobw==?="),
            ],
            &body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // A non-ASCII prompt name.
    let body = json!({"jsonrpc": "2.0", "id": 22, "method": "prompts/get", "params": {"name": "Hello, 世界"}})
        .to_string();
    let reply = server
        .post_with(
            READER,
            &[
                ("Mcp-Method", "prompts/get"),
                ("Mcp-Name", "=?base64?SGVsbG8sIOS4lueVjA==?="),
            ],
            &body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // Matching headers do not lower the requirement.
    let reply = server
        .post_with(
            READER,
            &[("Mcp-Method", "tools/call"), ("Mcp-Name", "write_note")],
            &tools_call(json!(23), "write_note"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), server.forbidden("mcp:read mcp:write"));
    assert_eq!(server.calls(), 3);
}

// ---------------------------------------------------------------------------------------------
// Body size
// ---------------------------------------------------------------------------------------------

fn padded_call(len: usize) -> String {
    let mut body = tools_call(json!(1), "echo");
    let pad = len.saturating_sub(body.len());
    body.insert_str(
        1,
        &format!("\"pad\":\"{}\",", "x".repeat(pad.saturating_sub(9))),
    );
    body
}

#[tokio::test]
async fn body_over_the_limit_is_refused() {
    let server = serve(scopes(), false).await;
    // Announced by Content-Length.
    let reply = server.post(WRITER, &padded_call(2048)).await;
    assert_json_rpc_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, -32600, Value::Null);

    // Chunked, no length announced: counted while reading.
    let chunks: Vec<Result<Frame<Bytes>, Infallible>> = (0..8)
        .map(|_| Ok(Frame::data(Bytes::from(vec![b' '; 200]))))
        .collect();
    let request = Request::post(server.url())
        .header(header::AUTHORIZATION, format!("Bearer {WRITER}"))
        .body(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        .expect("request");
    let reply = send(request).await;
    assert_json_rpc_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, -32600, Value::Null);
    assert_eq!(server.calls(), 0);

    // Exactly at the limit: fine.
    let body = padded_call(1024);
    assert_eq!(body.len(), 1024);
    let reply = server.post(WRITER, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(server.calls(), 1);
}

#[tokio::test]
async fn chunked_body_is_joined_and_forwarded_intact() {
    let server = serve(scopes(), false).await;
    let body = tools_call(json!("chunked"), "echo");
    let chunks: Vec<Result<Frame<Bytes>, Infallible>> = body
        .as_bytes()
        .chunks(7)
        .map(|chunk| Ok(Frame::data(Bytes::copy_from_slice(chunk))))
        .collect();
    let request = Request::post(server.url())
        .header(header::AUTHORIZATION, format!("Bearer {READER}"))
        .body(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        .expect("request");
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.body, body.as_bytes());
    assert_eq!(server.calls(), 1);
}

// ---------------------------------------------------------------------------------------------
// GET, DELETE, no token, wiring
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_without_token_is_answered_by_the_guard() {
    let server = serve(scopes(), false).await;
    for method in [Method::GET, Method::POST] {
        let reply = server.without_body(method.clone(), None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method}");
        assert_eq!(
            reply.challenge(),
            format!(
                "Bearer resource_metadata=\"{}\", scope=\"mcp:read\"",
                server.metadata_url()
            )
        );
    }
    // The metadata document is still served by the guard, in front of the MCP layer.
    let reply = send(
        Request::get(server.metadata_url())
            .body(Full::new(Bytes::new()).boxed())
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["resource"], server.url());
    assert_eq!(server.calls(), 0);
}

#[tokio::test]
async fn get_and_delete_with_a_token_use_the_fallback() {
    let server = serve(scopes(), false).await;
    let reply = server.without_body(Method::GET, Some(READER)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "stream");

    let server = serve(scopes().fallback(Requirement::all_of(["mcp:write"])), false).await;
    for method in [Method::GET, Method::DELETE] {
        let reply = server.without_body(method.clone(), Some(READER)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{method}");
        assert_eq!(reply.challenge(), server.forbidden("mcp:read mcp:write"));
        let reply = server.without_body(method.clone(), Some(WRITER)).await;
        assert_eq!(reply.status, StatusCode::OK, "{method}");
    }
    assert_eq!(server.calls(), 2);
}

#[tokio::test]
async fn layer_outside_the_guard_fails_closed() {
    let server = serve_with(scopes(), false, Placement::Outside).await;
    let reply = server.post(WRITER, &tools_call(json!(1), "echo")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!reply.text().contains(WRITER));
    let reply = server.without_body(Method::GET, Some(WRITER)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(server.calls(), 0);
}

#[test]
fn configuration_is_checked() {
    let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let guard = guard(addr, false);
    assert!(matches!(
        guard.mcp_layer(McpScopes::new().tool("x", Requirement::all_of(["bad scope"]))),
        Err(BuildError::InvalidScope(_))
    ));
    assert!(matches!(
        guard.mcp_layer(McpScopes::new().fallback(Requirement::all_of(["caf\u{e9}"]))),
        Err(BuildError::InvalidScope(_))
    ));
    assert!(matches!(
        guard.mcp_layer(McpScopes::new().max_body_bytes(0)),
        Err(BuildError::Invalid(_))
    ));
    assert!(guard.mcp_layer(scopes()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// poll_ready is honoured
// ---------------------------------------------------------------------------------------------

/// An inner service whose every clone has its own id and readiness; `call` fails unless this very
/// instance was made ready by `poll_ready`.
#[derive(Debug)]
struct Tracked {
    id: usize,
    ready: bool,
    ids: Arc<AtomicUsize>,
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self {
            id: self.ids.fetch_add(1, Ordering::SeqCst),
            ready: false,
            ids: self.ids.clone(),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<Request<Full<Bytes>>> for Tracked {
    type Response = Response<String>;
    type Error = String;
    type Future = BoxFuture<Result<Response<String>, String>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let id = self.id;
        if !std::mem::replace(&mut self.ready, false) {
            return Box::pin(
                async move { Err(format!("instance {id} called without poll_ready")) },
            );
        }
        Box::pin(async move {
            let body = request
                .into_body()
                .collect()
                .await
                .map_err(|e: Infallible| -> String { match e {} })?
                .to_bytes();
            Ok(Response::new(format!(
                "instance={id};body={}",
                String::from_utf8_lossy(&body)
            )))
        })
    }
}

fn tracked_request(method: Method, scopes: &[&str], body: &str) -> Request<Full<Bytes>> {
    let mut request = Request::builder()
        .method(method)
        .uri("http://127.0.0.1/mcp")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    request.extensions_mut().insert(
        AccessToken::builder()
            .subject("tracked")
            .scopes(scopes.iter().copied())
            .build(),
    );
    request
}

/// The body of an in-process response as text (the test kit's reply).
async fn text_of<B>(response: Response<B>) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    Reply::collect(response)
        .await
        .expect("body")
        .text()
        .to_owned()
}

#[tokio::test]
async fn poll_ready_reservation_is_used_by_call() {
    let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let layer = guard(addr, false).mcp_layer(scopes()).expect("mcp layer");
    let mut service = layer.layer(Tracked {
        id: 0,
        ready: false,
        ids: Arc::new(AtomicUsize::new(1)),
    });
    let run = async {
        for round in 0..3 {
            let body = tools_call(json!(round), "echo");
            let ready = service.ready().await.expect("ready");
            let made_ready = ready.get_ref().id;
            let response = ready
                .call(tracked_request(Method::POST, &["mcp:read"], &body))
                .await
                .expect("call");
            assert_eq!(response.status(), StatusCode::OK, "round {round}");
            assert_eq!(
                text_of(response).await,
                format!("instance={made_ready};body={body}")
            );
            assert_ne!(
                service.get_ref().id,
                made_ready,
                "a fresh clone took its place"
            );
            assert!(!service.get_ref().ready);
        }
        // A rejection does not call the inner service; the next request is served normally.
        let ready = service.ready().await.expect("ready");
        let response = ready
            .call(tracked_request(
                Method::POST,
                &["mcp:read"],
                &tools_call(json!(1), "write_note"),
            ))
            .await
            .expect("call");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let ready = service.ready().await.expect("ready");
        let made_ready = ready.get_ref().id;
        let response = ready
            .call(tracked_request(Method::GET, &["mcp:read"], ""))
            .await
            .expect("call");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            text_of(response).await,
            format!("instance={made_ready};body=")
        );
        // Several requests made ready one after the other, then completed out of order.
        let first = {
            let ready = service.ready().await.expect("ready");
            let id = ready.get_ref().id;
            (
                id,
                ready.call(tracked_request(
                    Method::POST,
                    &["mcp:read"],
                    &tools_call(json!("a"), "echo"),
                )),
            )
        };
        let second = {
            let ready = service.ready().await.expect("ready");
            let id = ready.get_ref().id;
            (
                id,
                ready.call(tracked_request(
                    Method::POST,
                    &["mcp:read"],
                    &tools_call(json!("b"), "echo"),
                )),
            )
        };
        let (second_id, second_future) = second;
        let (first_id, first_future) = first;
        assert!(text_of(second_future.await.expect("second"))
            .await
            .starts_with(&format!("instance={second_id};")));
        assert!(text_of(first_future.await.expect("first"))
            .await
            .starts_with(&format!("instance={first_id};")));
    };
    timeout(WAIT, run).await.expect("in time");
}

#[tokio::test]
async fn method_router_layer_limits_the_layer_to_the_endpoint() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let guard = guard(addr, false);
    let mcp = guard.mcp_layer(scopes()).expect("mcp layer");
    let router = Router::new()
        .route("/mcp", post(|body: Bytes| async move { body }).layer(mcp))
        .route("/upload", post(|body: Bytes| async move { body }))
        .layer(guard);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let server = Server {
        addr,
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let reply = server.post(READER, "not json").await;
    assert_json_rpc_error(&reply, StatusCode::BAD_REQUEST, -32700, Value::Null);
    let request = Request::post(format!("http://{addr}/upload"))
        .header(header::AUTHORIZATION, format!("Bearer {READER}"))
        .body(Full::new(Bytes::from_static(b"not json")).boxed())
        .expect("request");
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "not json");
}

/// Guard and MCP layer as one (`mcp_guard`): a token short of the guard's scope *and* the tool's gets one
/// 403 naming both, so a client that asks for exactly the challenged scopes succeeds after one step-up.
/// Placed separately, the guard answers first and names only its own scope (the pair).
#[tokio::test]
async fn the_combined_guard_names_every_scope_in_the_first_403() {
    let write = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note"}}"#;
    let echo = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}"#;

    let combined = serve_with(scopes(), false, Placement::Combined).await;
    let reply = combined.post(OUTSIDER, write).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), combined.forbidden("mcp:read mcp:write"));
    // Short of the guard's scope only: the 403 names it.
    let reply = combined.post(OUTSIDER, echo).await;
    assert_eq!(reply.challenge(), combined.forbidden("mcp:read"));
    let reply = combined.without_body(Method::GET, Some(OUTSIDER)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.challenge(), combined.forbidden("mcp:read"));
    // Short of the tool's scope only: both named (the baseline is kept).
    let reply = combined.post(READER, write).await;
    assert_eq!(reply.challenge(), combined.forbidden("mcp:read mcp:write"));
    assert_eq!(combined.calls(), 0, "nothing refused reached the handler");
    // One step-up: the challenged scopes suffice.
    assert_eq!(combined.post(WRITER, write).await.status, StatusCode::OK);
    assert_eq!(combined.post(READER, echo).await.status, StatusCode::OK);
    assert_eq!(
        combined
            .without_body(Method::GET, Some(READER))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(combined.calls(), 3);
    // Authentication is the guard's, unchanged.
    let reply = combined.without_body(Method::POST, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = combined.post("Not-A-Known-Token-0123456789", write).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // The pair: placed separately, the guard refuses first and names only its own scope.
    let separate = serve(scopes(), false).await;
    let reply = separate.post(OUTSIDER, write).await;
    assert_eq!(reply.challenge(), separate.forbidden("mcp:read"));
}
