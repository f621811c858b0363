//! The bearer-guard demo: a small axum app guarded by static tokens on 127.0.0.1.
//!
//! ```text
//! cargo run --example demo                 # listens on 127.0.0.1:3000
//! cargo run --example demo -- --listen 127.0.0.1:8080
//! cargo run --example demo -- --help
//! ```
//!
//! It prints the resource URL, the metadata URL and `curl` commands (one rejected with the challenge, one
//! accepted), then serves until Ctrl-C.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Extension, Json, Router};
use bearer_guard::scope::{Requirement, RoutePolicy, ScopeHierarchy};
use bearer_guard::{AccessToken, BearerAuthLayer, StaticToken, StaticValidator};
use http::Method;
use serde_json::json;

const READER_TOKEN: &str = "demo-reader-token-2f8d0c41a7e3";
const WRITER_TOKEN: &str = "demo-writer-token-9b1e57d3c6a0";

const HELP: &str = "\
bearer-guard demo: an axum app guarded by BearerAuthLayer with static development tokens.

USAGE:
    cargo run --example demo -- [OPTIONS]

OPTIONS:
    --listen ADDR    Address to listen on (default 127.0.0.1:3000; use port 0 for any free port)
    -h, --help       Print this help
";

struct Options {
    listen: SocketAddr,
}

fn parse_args() -> Result<Options, String> {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 3000).into();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--listen" => {
                let value = args.next().ok_or("--listen needs an address")?;
                listen = value
                    .parse()
                    .map_err(|_| format!("--listen: {value:?} is not an IP:PORT address"))?;
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(Options { listen })
}

async fn read_notes(Extension(token): Extension<AccessToken>) -> Json<serde_json::Value> {
    Json(json!({
        "subject": token.subject(),
        "scopes": token.scopes().iter().collect::<Vec<_>>(),
        "notes": ["hello from the guarded demo"],
    }))
}

async fn write_note(
    Extension(token): Extension<AccessToken>,
    body: String,
) -> Json<serde_json::Value> {
    Json(json!({ "saved_by": token.subject(), "bytes": body.len() }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let addr = listener.local_addr()?;
    let resource = format!("http://{addr}/mcp");

    let validator = StaticValidator::builder()
        .token(
            READER_TOKEN,
            StaticToken::new("reader").scopes(["mcp:read"]),
        )
        .token(WRITER_TOKEN, StaticToken::new("writer").scopes(["mcp"]))
        .build()?;
    let guard = BearerAuthLayer::builder()
        .resource(&resource)
        // Static tokens are not issued by anyone; a placeholder issuer keeps the metadata valid (MCP requires
        // at least one authorization server). The JWT demo replaces it with a real (embedded) issuer.
        .authorization_server("https://auth.example.com")
        .scopes_supported(["mcp:read"])
        .validator(validator)
        .policy(
            RoutePolicy::new()
                .route(
                    Some(Method::POST),
                    "/mcp",
                    Requirement::all_of(["mcp:write"]),
                )
                .fallback(Requirement::all_of(["mcp:read"])),
        )
        .scope_hierarchy(ScopeHierarchy::new().implies("mcp", ["mcp:read", "mcp:write"]))
        .build()?;

    let app = Router::new()
        .route("/mcp", get(read_notes).post(write_note))
        .layer(guard.clone());

    println!("bearer-guard demo listening on http://{addr}");
    println!("  resource:     {resource}");
    println!("  metadata:     {}", guard.metadata_url());
    println!("  reader token: {READER_TOKEN}   (scope mcp:read)");
    println!("  writer token: {WRITER_TOKEN}   (scope mcp, which implies mcp:read and mcp:write)");
    println!();
    println!("Try:");
    println!("  curl -i {resource}                                            # 401 + WWW-Authenticate challenge");
    println!("  curl -i {}", guard.metadata_url());
    println!("  curl -i -H 'Authorization: Bearer {READER_TOKEN}' {resource}   # 200");
    println!("  curl -i -X POST -d hi -H 'Authorization: Bearer {READER_TOKEN}' {resource}   # 403 insufficient_scope");
    println!(
        "  curl -i -X POST -d hi -H 'Authorization: Bearer {WRITER_TOKEN}' {resource}   # 200"
    );
    println!();
    println!("Ctrl-C to stop.");

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
