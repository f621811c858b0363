//! A tonic 0.14 gRPC server guarded by `BearerAuthLayer`, with static development tokens.
//!
//! ```text
//! cargo run --example tonic --features tonic            # any free port on 127.0.0.1
//! PORT=50051 cargo run --example tonic --features tonic # a fixed port
//! ```
//!
//! The service is `grpc.health.v1.Health` (generated code shipped by `tonic-health`, so no `.proto`
//! build), implemented here to show reading the token with `bearer_guard::tonic::RequestExt`.
//! Rejections reach gRPC clients as statuses: UNAUTHENTICATED (no or invalid token), PERMISSION_DENIED
//! (missing scope), INVALID_ARGUMENT (malformed `authorization`), UNAVAILABLE (validator down), each
//! with the `www-authenticate` challenge in the metadata.

use std::net::SocketAddr;

use bearer_guard::scope::Requirement;
use bearer_guard::tonic::RequestExt;
use bearer_guard::{BearerAuthLayer, StaticToken, StaticValidator};
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// Development tokens: static, at least 16 characters. Never use fixed tokens in production.
const CHECKER_TOKEN: &str = "dev-health-token-7d2c91f04ab8";
const NO_SCOPE_TOKEN: &str = "dev-noscope-token-3e6b05a9c1d4";
const SCOPE: &str = "health:read";

/// `grpc.health.v1.Health`, answering SERVING to any caller the guard let through, and naming the
/// caller in the `x-subject` response metadata.
struct GuardedHealth;

#[tonic::async_trait]
impl Health for GuardedHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        // UNAUTHENTICATED if the request did not pass through the guard (fail closed).
        let token = request.require_access_token()?;
        let subject = token.subject().unwrap_or("?").to_owned();
        println!("check from {subject}");
        let mut response = Response::new(HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        });
        if let Ok(value) = MetadataValue::try_from(subject) {
            response.metadata_mut().insert("x-subject", value);
        }
        Ok(response)
    }

    type WatchStream = tonic::codegen::BoxStream<HealthCheckResponse>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented(
            "watch is not implemented by this example",
        ))
    }
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
    let check = "grpc.health.v1.Health/Check";
    println!("bearer-guard tonic example listening on {base} (HTTP/2)");
    println!("  resource:      {base}");
    println!("  metadata:      {base}/.well-known/oauth-protected-resource");
    println!("  token:         {CHECKER_TOKEN}  ({SCOPE})");
    println!("  no-scope token: {NO_SCOPE_TOKEN}");
    println!();
    println!("# grpcurl (no reflection: point it at health.proto, from");
    println!("#  https://github.com/grpc/grpc/blob/master/src/proto/grpc/health/v1/health.proto):");
    println!("grpcurl -plaintext -proto health.proto {addr} {check}                       # Unauthenticated");
    println!("grpcurl -plaintext -proto health.proto -H 'authorization: Bearer {CHECKER_TOKEN}' {addr} {check}   # SERVING");
    println!("grpcurl -plaintext -proto health.proto -H 'authorization: Bearer {NO_SCOPE_TOKEN}' {addr} {check}  # PermissionDenied");
    println!();
    println!("# or plain curl (an empty HealthCheckRequest is 5 zero bytes; grpc-status shows in the headers/trailers):");
    let curl =
        "curl -s --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers'";
    println!("printf '\\0\\0\\0\\0\\0' | {curl} --data-binary @- -o /dev/null -D - {base}/{check}   # grpc-status: 16");
    println!("printf '\\0\\0\\0\\0\\0' | {curl} -H 'authorization: Bearer {CHECKER_TOKEN}' --data-binary @- -o /dev/null -D - {base}/{check}   # x-subject, grpc-status: 0");
    println!();
    println!("# the protected resource metadata (no token needed):");
    println!("curl -i --http2-prior-knowledge {base}/.well-known/oauth-protected-resource");
    println!();
    println!("Ctrl-C to stop.");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port_from_env())).await?;
    let addr = listener.local_addr()?;

    let validator = StaticValidator::builder()
        .token(
            CHECKER_TOKEN,
            StaticToken::new("health-checker").scopes([SCOPE]),
        )
        .token(NO_SCOPE_TOKEN, StaticToken::new("nobody"))
        .build()?;
    let guard = BearerAuthLayer::builder()
        // The server's origin is the resource; the metadata is at the root well-known path.
        .resource(format!("http://{addr}"))
        // Placeholder issuer: put your authorization server's issuer identifier here. With static
        // tokens nothing is fetched from it; clients read it from the metadata to know where to log in.
        .authorization_server("https://auth.example.com")
        .scopes_supported([SCOPE])
        .validator(validator)
        .require(Requirement::all_of([SCOPE]))
        .build()?;

    print_usage(addr);
    Server::builder()
        .layer(guard)
        .add_service(HealthServer::new(GuardedHealth))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
