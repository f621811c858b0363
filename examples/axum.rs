//! An axum 0.8 app guarded by `BearerAuthLayer` with a `JwtValidator`: RFC 9068 JWTs, keys found by
//! discovery. It runs offline against the test kit's development issuer; in production, pass your
//! identity provider's issuer identifier instead (nothing else changes).
//!
//! ```text
//! cargo run --example axum            # any free port on 127.0.0.1
//! PORT=3000 cargo run --example axum  # a fixed port
//! ```
//!
//! It prints the URLs, two tokens and ready-to-paste `curl` commands, then serves until Ctrl-C.
//! `tests/examples.rs` runs [`app`] and checks every answer the printed commands promise.
//!
//! Wiring notes: `Router::layer(guard)` guards every route *and* the router's fallback, so the RFC 9728
//! well-known path (not a route) is answered by the guard; add routes and `.fallback(...)` *before*
//! `.layer(guard)` (what comes after is not guarded), or wrap the whole router instead:
//! `ServiceBuilder::new().layer(guard).service(router)`.

use std::net::SocketAddr;

use axum::routing::{get, post};
use axum::{Json, Router};
use bearer_guard::scope::{Requirement, RoutePolicy};
use bearer_guard::testkit::DevIssuer;
use bearer_guard::{AccessToken, BearerAuthLayer, BuildError, JwtValidator};
use serde_json::{json, Value};

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

/// The guarded app served at `addr`, trusting JWTs of `issuer` (an issuer identifier, byte for byte).
pub fn app(addr: SocketAddr, issuer: &str) -> Result<Router, BuildError> {
    let guard = BearerAuthLayer::builder()
        // The URL clients call: the metadata `resource` and the audience tokens must carry.
        .resource(format!("http://{addr}/mcp"))
        .authorization_server(issuer)
        .scopes_supported(["mcp:read", "mcp:admin"])
        // Discovery (RFC 8414 / OpenID) finds the JWKS; keys and verified tokens are cached.
        .validator(JwtValidator::builder(issuer).build()?)
        .policy(
            RoutePolicy::new()
                .route(None, "/admin", Requirement::all_of(["mcp:admin"]))
                .fallback(Requirement::all_of(["mcp:read"])),
        )
        .build()?;
    // Routes first, then `.layer(guard)`.
    Ok(Router::new()
        .route("/mcp", post(mcp))
        .route("/admin", post(admin))
        .route("/whoami", get(whoami))
        .layer(guard))
}

fn port_from_env() -> u16 {
    let port = std::env::var("PORT").unwrap_or_default();
    port.parse().unwrap_or_else(|_| {
        if !port.is_empty() {
            eprintln!("PORT={port:?} is not a port number; using a free port");
        }
        0
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port_from_env())).await?;
    let addr = listener.local_addr()?;
    // Development only: a local issuer with its own keys. Use your IdP's issuer string in production.
    let issuer = DevIssuer::start().await?;
    let resource = format!("http://{addr}/mcp");
    let reader = issuer
        .token()
        .subject("reader")
        .audience(&resource)
        .scope("mcp:read")
        .sign()?;
    let admin = (issuer.token().subject("admin").audience(&resource))
        .scope("mcp:read mcp:admin")
        .sign()?;
    let app = app(addr, issuer.issuer())?;

    let base = format!("http://{addr}");
    println!(
        "bearer-guard axum example on {base}, trusting {}",
        issuer.issuer()
    );
    println!("export READER={reader}\nexport ADMIN={admin}\n");
    println!("curl -i -X POST {base}/mcp                                   # 401 + challenge");
    println!("curl -i {base}/.well-known/oauth-protected-resource/mcp      # metadata");
    println!("curl -i -X POST -H \"Authorization: Bearer $READER\" -d hi {base}/mcp    # 200");
    println!("curl -i -X POST -H \"Authorization: Bearer $READER\" {base}/admin        # 403");
    println!("curl -i -X POST -H \"Authorization: Bearer $ADMIN\" {base}/admin         # 200");
    println!("curl -i -H \"Authorization: Bearer $READER\" {base}/whoami               # 200\n");
    println!("Ctrl-C to stop.");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
