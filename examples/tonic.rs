//! A tonic 0.14 gRPC server guarded by `BearerAuthLayer` with a `JwtValidator`, offline against the test
//! kit's development issuer (in production, pass your identity provider's issuer identifier instead).
//!
//! ```text
//! cargo run --example tonic             # any free port on 127.0.0.1
//! PORT=50051 cargo run --example tonic  # a fixed port
//! ```
//!
//! The service is `grpc.health.v1.Health` (generated code shipped by `tonic-health`, so no `.proto` build),
//! reading the token with `bearer_guard::tonic::RequestExt`. Rejections reach gRPC clients as statuses:
//! UNAUTHENTICATED (no or invalid token), PERMISSION_DENIED (missing scope), INVALID_ARGUMENT (malformed
//! `authorization`), UNAVAILABLE (keys unreachable), each with the `www-authenticate` challenge in the
//! metadata. `tests/examples.rs` runs [`serve`] with a real tonic client.

use std::future::Future;
use std::net::SocketAddr;

use bearer_guard::scope::Requirement;
use bearer_guard::testkit::DevIssuer;
use bearer_guard::tonic::RequestExt;
use bearer_guard::{BearerAuthLayer, BuildError, JwtValidator};
use tokio::net::TcpListener;
use tonic::metadata::MetadataValue;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The scope every call needs.
pub const SCOPE: &str = "health:read";

/// `grpc.health.v1.Health`, answering SERVING to any caller the guard let through and naming the caller
/// in the `x-subject` response metadata.
struct GuardedHealth;

#[tonic::async_trait]
impl Health for GuardedHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        // UNAUTHENTICATED if the request did not pass through the guard (fail closed).
        let subject = request
            .require_access_token()?
            .subject()
            .unwrap_or("?")
            .to_owned();
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
        Err(Status::unimplemented("watch is not implemented here"))
    }
}

/// The guard for a server at `addr` (its origin is the resource) trusting JWTs of `issuer`.
pub fn guard(addr: SocketAddr, issuer: &str) -> Result<BearerAuthLayer, BuildError> {
    BearerAuthLayer::builder()
        .resource(format!("http://{addr}"))
        .authorization_server(issuer)
        .scopes_supported([SCOPE])
        .validator(JwtValidator::builder(issuer).build()?)
        .require(Requirement::all_of([SCOPE]))
        .build()
}

/// Serves the guarded health service on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    issuer: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let guard = guard(listener.local_addr()?, issuer)?;
    Server::builder()
        .layer(guard)
        .add_service(HealthServer::new(GuardedHealth))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0u16);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    // Development only: a local issuer with its own keys. Use your IdP's issuer string in production.
    let issuer = DevIssuer::start().await?;
    let resource = format!("http://{addr}");
    let token = issuer
        .token()
        .subject("checker")
        .audience(&resource)
        .scope(SCOPE)
        .sign()?;
    let no_scope = issuer.token().audience(&resource).scope("profile").sign()?;

    let check = "grpc.health.v1.Health/Check";
    let curl =
        "curl -s --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers'";
    let call = format!("printf '\\0\\0\\0\\0\\0' | {curl} --data-binary @- -o /dev/null -D -");
    println!(
        "bearer-guard tonic example on {resource} (HTTP/2), trusting {}",
        issuer.issuer()
    );
    println!("export TOKEN={token}\nexport NO_SCOPE={no_scope}\n");
    println!("{call} {resource}/{check}                                  # grpc-status: 16");
    println!("{call} -H \"authorization: Bearer $TOKEN\" {resource}/{check}     # grpc-status: 0");
    println!("{call} -H \"authorization: Bearer $NO_SCOPE\" {resource}/{check}  # grpc-status: 7");
    println!("curl -i --http2-prior-knowledge {resource}/.well-known/oauth-protected-resource\n");
    println!("Ctrl-C to stop.");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, issuer.issuer(), shutdown).await
}
