//! An axum 0.8 app guarded by `BearerAuthLayer`, with static development tokens.
//!
//! ```text
//! cargo run --example axum --features axum            # any free port on 127.0.0.1
//! PORT=3000 cargo run --example axum --features axum  # a fixed port
//! ```
//!
//! It prints the URLs, the dev tokens and ready-to-paste `curl` commands, then serves until Ctrl-C.
//!
//! Wiring notes (checked by `tests/stack_axum.rs`):
//! - `Router::layer(guard)` guards every route *and* the router's catch-all fallback, so the RFC 9728
//!   well-known path (not a route) is answered by the guard;
//! - routes and `.fallback(...)` must be added *before* `.layer(guard)`: what comes after is not guarded
//!   (a fallback set afterwards would also hide the metadata document). To be independent of the order,
//!   wrap the whole router instead: `ServiceBuilder::new().layer(guard).service(router)`.

use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::{Json, Router};
use bearer_guard::scope::{Requirement, RoutePolicy};
use bearer_guard::{AccessToken, BearerAuthLayer, StaticToken, StaticValidator};
use serde_json::{json, Value};

/// Development tokens: static, at least 16 characters. Never use fixed tokens in production.
const READER_TOKEN: &str = "dev-reader-token-5c1e9a07b3d2";
const ADMIN_TOKEN: &str = "dev-admin-token-e84f2b6d90a1";

/// `AccessToken` as an extractor (feature `axum`): the guard validated it before the handler runs.
async fn mcp(token: AccessToken, body: String) -> Json<Value> {
    Json(json!({
        "subject": token.subject(),
        "scopes": token.scopes().to_scope_string(),
        "received_bytes": body.len(),
    }))
}

/// `Option<AccessToken>`: `None` only on routes the guard does not cover.
async fn whoami(token: Option<AccessToken>) -> String {
    match token {
        Some(token) => format!("you are {}\n", token.subject().unwrap_or("?")),
        None => "anonymous\n".to_owned(),
    }
}

async fn admin(token: AccessToken) -> String {
    format!("admin area, welcome {}\n", token.subject().unwrap_or("?"))
}

fn port_from_env() -> u16 {
    match std::env::var("PORT") {
        Ok(port) => port.parse().unwrap_or_else(|_| {
            eprintln!("PORT={port:?} is not a port number");
            std::process::exit(2)
        }),
        Err(_) => 0,
    }
}

fn print_usage(addr: SocketAddr) {
    let base = format!("http://{addr}");
    println!("bearer-guard axum example listening on {base}");
    println!("  resource:     {base}/mcp");
    println!("  metadata:     {base}/.well-known/oauth-protected-resource/mcp");
    println!("  reader token: {READER_TOKEN}  (mcp:read)");
    println!("  admin token:  {ADMIN_TOKEN}  (mcp:read mcp:admin)");
    println!();
    println!("# 401 with the WWW-Authenticate challenge:");
    println!("curl -i -X POST {base}/mcp");
    println!("# 200, the handler sees the token's subject:");
    println!("curl -i -X POST -H 'Authorization: Bearer {READER_TOKEN}' -d 'hello' {base}/mcp");
    println!("# 403 insufficient_scope, then 200 with the admin token:");
    println!("curl -i -X POST -H 'Authorization: Bearer {READER_TOKEN}' {base}/admin");
    println!("curl -i -X POST -H 'Authorization: Bearer {ADMIN_TOKEN}' {base}/admin");
    println!("# the protected resource metadata (no token needed):");
    println!("curl -i {base}/.well-known/oauth-protected-resource/mcp");
    println!("# Option<AccessToken>:");
    println!("curl -i -H 'Authorization: Bearer {READER_TOKEN}' {base}/whoami");
    println!();
    println!("Ctrl-C to stop.");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port_from_env())).await?;
    let addr = listener.local_addr()?;

    let validator = StaticValidator::builder()
        .token(
            READER_TOKEN,
            StaticToken::new("reader").scopes(["mcp:read"]),
        )
        .token(
            ADMIN_TOKEN,
            StaticToken::new("admin").scopes(["mcp:read", "mcp:admin"]),
        )
        .build()?;

    let guard = BearerAuthLayer::builder()
        // The URL clients call: the metadata `resource` and the audience tokens are meant for.
        .resource(format!("http://{addr}/mcp"))
        // Placeholder issuer: put your authorization server's issuer identifier here. With static
        // tokens nothing is fetched from it; clients read it from the metadata to know where to log in.
        .authorization_server("https://auth.example.com")
        .scopes_supported(["mcp:read"])
        .validator(validator)
        .policy(
            RoutePolicy::new()
                .route(None, "/admin", Requirement::all_of(["mcp:admin"]))
                .fallback(Requirement::all_of(["mcp:read"])),
        )
        .build()?;

    // Routes first, then `.layer(guard)`.
    let app = Router::new()
        .route("/mcp", post(mcp))
        .route("/admin", post(admin))
        .route("/whoami", get(whoami))
        .layer(guard);

    print_usage(addr);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
