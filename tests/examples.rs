//! The framework examples (`examples/axum.rs`, `examples/tonic.rs`, `examples/hyper.rs`) run here against
//! the test kit's development issuer, and every answer their printed `curl` commands promise is checked, so
//! an example that stops working fails the build.

mod common;

#[allow(dead_code)]
#[path = "../examples/axum.rs"]
mod axum_example;
#[allow(dead_code)]
#[path = "../examples/hyper.rs"]
mod hyper_example;
#[allow(dead_code)]
#[path = "../examples/tonic.rs"]
mod tonic_example;

use std::net::SocketAddr;

use bearer_guard::testkit::DevIssuer;
use bytes::Bytes;
use common::{check_bearer_challenge, send, send_h2, Reply, WAIT};
use http::header::AUTHORIZATION;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::timeout;

async fn call(method: Method, url: &str, token: Option<&str>, h2: bool) -> Reply {
    let mut builder = Request::builder().method(method).uri(url);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = builder.body(Full::new(Bytes::new())).expect("request");
    if h2 {
        send_h2(request).await
    } else {
        send(request).await
    }
}

/// The metadata document names the resource and the issuer.
fn assert_metadata(reply: &Reply, resource: &str, issuer: &DevIssuer) {
    assert_eq!(reply.status, StatusCode::OK);
    let doc: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON metadata");
    assert_eq!(doc["resource"], resource);
    assert_eq!(
        doc["authorization_servers"],
        serde_json::json!([issuer.issuer()])
    );
}

#[tokio::test]
async fn axum_example_guards_with_jwts() {
    let issuer = DevIssuer::start().await.expect("issuer");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum_example::app(addr, issuer.issuer()).expect("app");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let base = format!("http://{addr}");
    let resource = format!("{base}/mcp");
    let reader = issuer
        .token()
        .subject("reader")
        .audience(&resource)
        .sign()
        .expect("jwt");
    let admin = (issuer.token().subject("admin").audience(&resource))
        .scope("mcp:read mcp:admin")
        .sign()
        .expect("jwt");
    let foreign = issuer
        .token()
        .audience("https://other.example/mcp")
        .sign()
        .expect("jwt");

    let unauthenticated = call(Method::POST, &resource, None, false).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    let challenge = check_bearer_challenge(
        unauthenticated
            .header("www-authenticate")
            .expect("challenge"),
    );
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        challenge.param("resource_metadata"),
        Some(metadata_url.as_str())
    );
    assert_metadata(
        &call(Method::GET, &metadata_url, None, false).await,
        &resource,
        &issuer,
    );

    let ok = call(Method::POST, &resource, Some(&reader), false).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(
        ok.text().contains("\"subject\":\"reader\""),
        "{}",
        ok.text()
    );
    let wrong_audience = call(Method::POST, &resource, Some(&foreign), false).await;
    assert_eq!(wrong_audience.status, StatusCode::UNAUTHORIZED);

    let forbidden = call(Method::POST, &format!("{base}/admin"), Some(&reader), false).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let challenge =
        check_bearer_challenge(forbidden.header("www-authenticate").expect("challenge"));
    assert_eq!(challenge.param("error"), Some("insufficient_scope"));
    assert_eq!(challenge.param("scope"), Some("mcp:admin"));
    let admitted = call(Method::POST, &format!("{base}/admin"), Some(&admin), false).await;
    assert_eq!(admitted.status, StatusCode::OK);
    let whoami = call(Method::GET, &format!("{base}/whoami"), Some(&reader), false).await;
    assert_eq!(whoami.text(), "you are reader\n");
    server.abort();
}

#[tokio::test]
async fn hyper_example_guards_with_jwts_over_both_protocols() {
    let issuer = DevIssuer::start().await.expect("issuer");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let issuer_id = issuer.issuer().to_owned();
    let server = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        hyper_example::serve(listener, &issuer_id, shutdown)
            .await
            .map_err(|e| e.to_string())
    });

    let resource = format!("{base}/notes");
    let reader = issuer
        .token()
        .subject("reader")
        .audience(&resource)
        .scope("notes:read")
        .sign()
        .expect("jwt");
    let writer = (issuer.token().subject("writer").audience(&resource))
        .scope("notes:read notes:write")
        .sign()
        .expect("jwt");
    assert_eq!(
        call(Method::GET, &resource, None, false).await.status,
        StatusCode::UNAUTHORIZED
    );
    for h2 in [false, true] {
        let ok = call(Method::GET, &resource, Some(&reader), h2).await;
        assert_eq!(ok.status, StatusCode::OK, "h2={h2}");
        assert_eq!(ok.text(), "GET /notes by reader (scopes: notes:read)\n");
    }
    let note = format!("{resource}/1");
    assert_eq!(
        call(Method::PUT, &note, Some(&reader), false).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Method::PUT, &note, Some(&writer), false).await.status,
        StatusCode::OK
    );
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/notes");
    assert_metadata(
        &call(Method::GET, &metadata_url, None, false).await,
        &resource,
        &issuer,
    );

    stop.send(()).expect("server running");
    let ended = timeout(WAIT, server)
        .await
        .expect("stops in time")
        .expect("joined");
    assert_eq!(ended, Ok(()));
}

#[tokio::test]
async fn tonic_example_guards_with_jwts() {
    use tonic::metadata::MetadataValue;
    use tonic::Code;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    async fn check(
        addr: SocketAddr,
        token: Option<&str>,
    ) -> Result<(ServingStatus, String), tonic::Status> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_timeout(WAIT)
            .timeout(WAIT)
            .connect()
            .await
            .expect("connect");
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        if let Some(token) = token {
            let value = MetadataValue::try_from(format!("Bearer {token}")).expect("ASCII");
            request.metadata_mut().insert("authorization", value);
        }
        let response = HealthClient::new(channel).check(request).await?;
        let subject = response
            .metadata()
            .get("x-subject")
            .and_then(|v| v.to_str().ok());
        let subject = subject.unwrap_or_default().to_owned();
        Ok((response.into_inner().status(), subject))
    }

    let issuer = DevIssuer::start().await.expect("issuer");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let issuer_id = issuer.issuer().to_owned();
    let server = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        tonic_example::serve(listener, &issuer_id, shutdown)
            .await
            .map_err(|e| e.to_string())
    });

    let resource = format!("http://{addr}");
    let token = (issuer.token().subject("checker").audience(&resource))
        .scope(tonic_example::SCOPE)
        .sign()
        .expect("jwt");
    let no_scope = issuer
        .token()
        .audience(&resource)
        .scope("profile")
        .sign()
        .expect("jwt");
    let refused = check(addr, None).await.expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert!(refused.metadata().get("www-authenticate").is_some());
    assert_eq!(
        check(addr, Some(&token)).await.expect("served"),
        (ServingStatus::Serving, "checker".to_owned())
    );
    let denied = check(addr, Some(&no_scope)).await.expect_err("no scope");
    assert_eq!(denied.code(), Code::PermissionDenied);

    stop.send(()).expect("server running");
    let ended = timeout(WAIT, server)
        .await
        .expect("stops in time")
        .expect("joined");
    assert_eq!(ended, Ok(()));
}
