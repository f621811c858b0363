#![cfg(all(feature = "testkit", feature = "jwt"))]
//! End to end over HTTP: the development issuer, a `JwtValidator` that discovers its keys, and
//! `BearerAuthLayer` around a `tower::service_fn`, served by hyper on `127.0.0.1`, called by a real
//! HTTP client. The validator gets no `.audience()`: it must default to the layer's resource.
//!
//! Every network wait is bounded by [`WAIT`].

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bearer_guard::testkit::probe::{self, Reply, Served};
use bearer_guard::testkit::{Behavior, DevIssuer, Endpoint};
use bearer_guard::{
    AccessToken, BearerAuthLayer, BuildError, JwtValidator, MultiIssuer, TokenValidator,
};
use bytes::Bytes;
use common::validators::sign;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::time::{sleep, timeout};
use tower::ServiceBuilder;

/// Bound of every network wait.
const WAIT: Duration = Duration::from_secs(5);

/// The inner service: reports what the guard handed it, as JSON.
async fn app(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(access) = request.extensions().get::<AccessToken>().cloned() else {
        // Fail closed if ever reached without a validated token.
        let mut response = Response::new(Full::new(Bytes::from_static(b"no token")));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return Ok(response);
    };
    let body = json!({
        "subject": access.subject(),
        "client_id": access.client_id(),
        "issuer": access.issuer(),
        "audiences": access.audiences(),
        "scopes": access.scopes().iter().collect::<Vec<_>>(),
        "tenant": access.claim("tenant"),
        "saw_authorization": request.headers().contains_key(header::AUTHORIZATION),
    });
    Ok(Response::new(Full::new(Bytes::from(body.to_string()))))
}

/// A guarded server on a fresh loopback port. The validator gets nothing about the resource: the layer
/// hands it to every validation. Returns the resource URL (`http://ADDR/mcp`).
async fn serve(authorization_server: &str, validator: impl TokenValidator) -> (String, Served) {
    serve_with(authorization_server, |_| validator).await
}

/// [`serve`], with the validator made for the resource.
async fn serve_with<V: TokenValidator>(
    authorization_server: &str,
    make_validator: impl FnOnce(&str) -> V,
) -> (String, Served) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let resource = format!("http://{addr}/mcp");
    let validator = make_validator(&resource);
    let layer = BearerAuthLayer::builder()
        .resource(resource.clone())
        .authorization_server(authorization_server)
        .scopes_supported(["mcp:read"])
        .validator(validator)
        .build()
        .expect("layer builds");
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(app));
    (resource, probe::serve(listener, service).expect("serve"))
}

async fn get(url: &str, token: Option<&str>) -> Reply {
    let mut request = Request::get(url);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Full::new(Bytes::new())).expect("request");
    probe::send(request).await.expect("HTTP exchange")
}

async fn start_issuer() -> DevIssuer {
    timeout(WAIT, DevIssuer::start())
        .await
        .expect("issuer starts in time")
        .expect("issuer starts")
}

fn assert_invalid_token(reply: &Reply, description: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        reply.text()
    );
    let challenge = reply.challenge();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!(r#"error_description="{description}""#)),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata="), "{challenge}");
}

#[tokio::test]
async fn audience_defaults_to_the_layer_resource() {
    let issuer = start_issuer().await;
    let validator = JwtValidator::builder(issuer.issuer())
        .build()
        .expect("validator");
    let handle = validator.clone();
    let (resource, _served) = serve(issuer.issuer(), validator).await;
    assert!(
        handle.audiences().is_empty(),
        "no configured audience: each layer's resource is the one accepted there"
    );

    // aud = the resource: the inner service runs and sees the validated token, not the header.
    let token = sign(
        issuer
            .token()
            .audience(&resource)
            .subject("alice")
            .scope("mcp:read mcp:write")
            .claim("tenant", json!("acme")),
    );
    let reply = get(&resource, Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
    let seen = reply.json();
    assert_eq!(seen["subject"], "alice");
    assert_eq!(seen["client_id"], "test-client");
    assert_eq!(seen["issuer"], issuer.issuer());
    assert_eq!(seen["audiences"], json!([resource]));
    assert_eq!(seen["scopes"], json!(["mcp:read", "mcp:write"]));
    assert_eq!(seen["tenant"], "acme");
    assert_eq!(seen["saw_authorization"], false);
    assert!(!reply.contains(&token));

    // aud = another resource: 401 invalid_token.
    let other = sign(issuer.token().audience("https://other.example.com/mcp"));
    let reply = get(&resource, Some(&other)).await;
    assert_invalid_token(&reply, "The access token was not issued for this resource");
    // No aud at all.
    let reply = get(&resource, Some(&sign(issuer.token()))).await;
    assert_invalid_token(&reply, "The access token was not issued for this resource");

    // Expired: 401 with the fixed description.
    let expired = sign(issuer.token().audience(&resource).expires_in(-3600));
    let reply = get(&resource, Some(&expired)).await;
    assert_invalid_token(&reply, "The access token expired");
    assert!(!reply.contains(&expired), "the token is never echoed");

    // Tampered: 401.
    let tampered = issuer
        .token()
        .audience(&resource)
        .sign_with_tampered_payload()
        .unwrap();
    let reply = get(&resource, Some(&tampered)).await;
    assert_invalid_token(&reply, "The access token signature is invalid");

    // No token: 401 without an error code.
    let reply = get(&resource, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(!reply.challenge().contains("error="));

    // The good token still works (and again, from the cache).
    for _ in 0..2 {
        assert_eq!(get(&resource, Some(&token)).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn explicit_audiences_must_include_the_layer_resource() {
    const CONFIGURED: &str = "https://api.example.com/configured";
    let issuer = start_issuer().await;
    let only_configured = JwtValidator::builder(issuer.issuer())
        .audience(CONFIGURED)
        .build()
        .expect("validator");
    // A layer whose resource is not among the validator's audiences would refuse every token issued for
    // it: a build error.
    let refused = BearerAuthLayer::builder()
        .resource("https://api.example.com/mcp")
        .authorization_server(issuer.issuer())
        .validator(only_configured)
        .build()
        .unwrap_err();
    assert_eq!(
        refused,
        BuildError::AudienceExcludesResource("https://api.example.com/mcp".into())
    );

    // With the resource among them, each configured audience is accepted at that layer.
    let (resource, _served) = serve_with(issuer.issuer(), |resource| {
        JwtValidator::builder(issuer.issuer())
            .audience(CONFIGURED)
            .audience(resource)
            .build()
            .expect("validator")
    })
    .await;
    for aud in [CONFIGURED, resource.as_str()] {
        let reply = get(&resource, Some(&sign(issuer.token().audience(aud)))).await;
        assert_eq!(reply.status, StatusCode::OK, "{aud}: {}", reply.text());
    }
    let reply = get(
        &resource,
        Some(&sign(issuer.token().audience("https://other.example.com"))),
    )
    .await;
    assert_invalid_token(&reply, "The access token was not issued for this resource");
}

#[tokio::test]
async fn jwks_down_before_any_key_is_a_503_not_an_invalid_token() {
    let issuer = start_issuer().await;
    issuer.set_behavior(Endpoint::Jwks, Behavior::Status(500));
    let validator = JwtValidator::builder(issuer.issuer())
        .fetch_timeout(Duration::from_millis(500))
        .build()
        .expect("validator");
    let (resource, _served) = serve(issuer.issuer(), validator).await;
    let token = sign(issuer.token().audience(&resource));

    for _ in 0..2 {
        let reply = get(&resource, Some(&token)).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "body: {}",
            reply.text()
        );
        let retry_after: u64 = reply
            .headers
            .get(header::RETRY_AFTER)
            .expect("Retry-After")
            .to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in seconds");
        assert!(retry_after >= 1);
        assert!(!reply.contains("invalid_token"), "{reply:?}");
        assert!(!reply.contains(&token));
        assert!(reply.headers.get(header::WWW_AUTHENTICATE).is_none());
    }
    // Claims are checked before keys are needed: an expired token is a 401 even now.
    let expired = sign(issuer.token().audience(&resource).expires_in(-3600));
    let reply = get(&resource, Some(&expired)).await;
    assert_invalid_token(&reply, "The access token expired");

    // Same server once the JWKS recovers (after the fetch-failure backoff): 200.
    issuer.set_behavior(Endpoint::Jwks, Behavior::Normal);
    sleep(Duration::from_millis(1_200)).await;
    let reply = get(&resource, Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
    assert_eq!(reply.json()["subject"], "test-user");
}

#[tokio::test]
async fn multi_issuer_behind_the_layer_binds_the_resource_to_each_issuer() {
    let a = start_issuer().await;
    let b = start_issuer().await;
    let validator_a = JwtValidator::builder(a.issuer()).build().unwrap();
    let validator_b = JwtValidator::builder(b.issuer()).build().unwrap();
    let multi = MultiIssuer::new().issuer(validator_a).issuer(validator_b);
    let (resource, _served) = serve_with(a.issuer(), |_| multi).await;

    for issuer in [&a, &b] {
        let reply = get(&resource, Some(&sign(issuer.token().audience(&resource)))).await;
        assert_eq!(reply.status, StatusCode::OK, "body: {}", reply.text());
        assert_eq!(reply.json()["issuer"], issuer.issuer());
        let reply = get(
            &resource,
            Some(&sign(issuer.token().audience("https://x.example.com"))),
        )
        .await;
        assert_invalid_token(&reply, "The access token was not issued for this resource");
    }
    let forged = sign(
        b.token()
            .audience(&resource)
            .claim("iss", json!(a.issuer())),
    );
    let reply = get(&resource, Some(&forged)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.challenge().contains(r#"error="invalid_token""#));
}
