//! `BearerAuthLayer` around a plain `tower::service_fn`, served by raw hyper 1 and hyper-util
//! (HTTP/1.1 and HTTP/2 prior knowledge on the same port), with static development tokens.
//!
//! ```text
//! cargo run --example hyper            # any free port on 127.0.0.1
//! PORT=3000 cargo run --example hyper  # a fixed port
//! ```
//!
//! It prints the URLs, the dev tokens and ready-to-paste `curl` commands, then serves until Ctrl-C.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bearer_guard::scope::{Requirement, RoutePolicy};
use bearer_guard::{AccessToken, BearerAuthLayer, StaticToken, StaticValidator};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;

/// Development tokens: static, at least 16 characters. Never use fixed tokens in production.
const READER_TOKEN: &str = "dev-reader-token-0f3a8c5e1b79";
const WRITER_TOKEN: &str = "dev-writer-token-a62d94e07c1f";

/// The application. The guard put the validated token in the request extensions (and removed the
/// `Authorization` header, so the token is never passed on).
async fn app(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(token) = request.extensions().get::<AccessToken>() else {
        // Only reachable if the guard was not applied: fail closed.
        let mut response = Response::new(Full::new(Bytes::from_static(b"internal error\n")));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return Ok(response);
    };
    let text = format!(
        "{} {} by {} (scopes: {})\n",
        request.method(),
        request.uri().path(),
        token.subject().unwrap_or("?"),
        token.scopes()
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
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
    println!("bearer-guard hyper example listening on {base}");
    println!("  resource:     {base}/notes");
    println!("  metadata:     {base}/.well-known/oauth-protected-resource/notes");
    println!("  reader token: {READER_TOKEN}  (notes:read)");
    println!("  writer token: {WRITER_TOKEN}  (notes:read notes:write)");
    println!();
    println!("# 401 with the WWW-Authenticate challenge:");
    println!("curl -i {base}/notes");
    println!("# 200:");
    println!("curl -i -H 'Authorization: Bearer {READER_TOKEN}' {base}/notes");
    println!("# same over HTTP/2 (prior knowledge):");
    println!(
        "curl -i --http2-prior-knowledge -H 'Authorization: Bearer {READER_TOKEN}' {base}/notes"
    );
    println!("# PUT needs notes:write: 403 for the reader, 200 for the writer:");
    println!("curl -i -X PUT -H 'Authorization: Bearer {READER_TOKEN}' {base}/notes/1");
    println!("curl -i -X PUT -H 'Authorization: Bearer {WRITER_TOKEN}' {base}/notes/1");
    println!("# the protected resource metadata (no token needed):");
    println!("curl -i {base}/.well-known/oauth-protected-resource/notes");
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
            StaticToken::new("reader").scopes(["notes:read"]),
        )
        .token(
            WRITER_TOKEN,
            StaticToken::new("writer").scopes(["notes:read", "notes:write"]),
        )
        .build()?;
    let guard = BearerAuthLayer::builder()
        .resource(format!("http://{addr}/notes"))
        // Placeholder issuer: put your authorization server's issuer identifier here. With static
        // tokens nothing is fetched from it; clients read it from the metadata to know where to log in.
        .authorization_server("https://auth.example.com")
        .scopes_supported(["notes:read"])
        .validator(validator)
        .policy(
            RoutePolicy::new()
                .route(
                    Some(Method::PUT),
                    "/notes/*",
                    Requirement::all_of(["notes:write"]),
                )
                .fallback(Requirement::all_of(["notes:read"])),
        )
        .build()?;

    let service = ServiceBuilder::new()
        .layer(guard)
        .service(tower::service_fn(app));
    let service = TowerToHyperService::new(service);

    print_usage(addr);
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        eprintln!("accept failed: {error}");
                        continue;
                    }
                };
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service.clone())
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        eprintln!("connection error: {error}");
                    }
                });
            }
            _ = &mut ctrl_c => break,
        }
    }
    drop(listener);
    // Let the open connections finish, but not forever.
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!("connections still open after 10 s; exiting");
    }
    Ok(())
}
