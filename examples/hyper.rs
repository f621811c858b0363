//! `BearerAuthLayer` with a `JwtValidator` around a plain `tower::service_fn`, served by raw hyper 1 and
//! hyper-util (HTTP/1.1 and HTTP/2 prior knowledge on one port), offline against the test kit's development
//! issuer (in production, pass your identity provider's issuer identifier instead).
//!
//! ```text
//! cargo run --example hyper            # any free port on 127.0.0.1
//! PORT=3000 cargo run --example hyper  # a fixed port
//! ```
//!
//! It prints two tokens and ready-to-paste `curl` commands, then serves until Ctrl-C.
//! `tests/examples.rs` runs [`serve`] and checks what the printed commands promise.

use std::convert::Infallible;
use std::future::Future;

use bearer_guard::scope::{Requirement, RoutePolicy};
use bearer_guard::testkit::DevIssuer;
use bearer_guard::{AccessToken, BearerAuthLayer, JwtValidator};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceBuilder;

/// The application. The guard put the validated token in the request extensions (and removed the
/// `Authorization` header, so the token is never passed on).
async fn notes(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
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

/// Serves the guarded notes service on `listener`, trusting JWTs of `issuer`, until `shutdown` completes
/// (open connections are dropped then).
pub async fn serve(
    listener: TcpListener,
    issuer: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let guard = BearerAuthLayer::builder()
        .resource(format!("http://{}/notes", listener.local_addr()?))
        .authorization_server(issuer)
        .scopes_supported(["notes:read", "notes:write"])
        .validator(JwtValidator::builder(issuer).build()?)
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
        .service(tower::service_fn(notes));
    let service = TowerToHyperService::new(service);
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("accept failed: {error}");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let connection = builder
            .serve_connection(TokioIo::new(stream), service.clone())
            .into_owned();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("connection error: {error}");
            }
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0u16);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    // Development only: a local issuer with its own keys. Use your IdP's issuer string in production.
    let issuer = DevIssuer::start().await?;
    let resource = format!("{base}/notes");
    let reader = issuer
        .token()
        .subject("reader")
        .audience(&resource)
        .scope("notes:read")
        .sign()?;
    let writer = (issuer.token().subject("writer").audience(&resource))
        .scope("notes:read notes:write")
        .sign()?;

    println!(
        "bearer-guard hyper example on {base}, trusting {}",
        issuer.issuer()
    );
    println!("export READER={reader}\nexport WRITER={writer}\n");
    println!("curl -i {base}/notes                                              # 401");
    println!("curl -i -H \"Authorization: Bearer $READER\" {base}/notes           # 200");
    println!("curl -i --http2-prior-knowledge -H \"Authorization: Bearer $READER\" {base}/notes");
    println!("curl -i -X PUT -H \"Authorization: Bearer $READER\" {base}/notes/1   # 403");
    println!("curl -i -X PUT -H \"Authorization: Bearer $WRITER\" {base}/notes/1   # 200");
    println!("curl -i {base}/.well-known/oauth-protected-resource/notes        # metadata\n");
    println!("Ctrl-C to stop.");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, issuer.issuer(), shutdown).await
}
