//! Seams between layers and validators: one validator (cloned, shared through an `Arc`, inside a
//! `FirstMatch` or a `MultiIssuer`) guarding two layers answers each layer for its own resource, and no
//! cache answers one layer with what it checked for the other. Also: sender-constrained (`cnf`) tokens
//! are refused as bearer tokens, and configurations the guard cannot honour are build errors.
#![cfg(all(feature = "testkit", feature = "axum"))]

use std::net::SocketAddr;
use std::sync::Arc;

use crate::common::validators::{sign, start_es256_with_introspection};
use axum::routing::get;
use axum::Router;
use bearer_guard::testkit::DevIssuer;
use bearer_guard::{
    AccessToken, BearerAuthLayer, BuildError, ClientAuth, FirstMatch, IntrospectionValidator,
    JwtValidator, MultiIssuer, ProtectedResourceMetadata, StaticToken, StaticValidator,
    TokenValidator,
};
use serde_json::json;
use tokio::net::TcpListener;

async fn issuer() -> DevIssuer {
    start_es256_with_introspection().await
}

async fn whoami(request: axum::extract::Request) -> String {
    let token = request.extensions().get::<AccessToken>().cloned();
    format!(
        "sub={}",
        token.as_ref().and_then(|t| t.subject()).unwrap_or("none")
    )
}

/// Two routes, `/mcp` and `/api`, each behind its own guard (its resource `http://ADDR/<route>`), both
/// around validators made by `validator` (called once per layer: return clones of one validator).
struct TwoLayers {
    addr: SocketAddr,
}

impl TwoLayers {
    async fn serve(issuer: &str, validator: impl Fn() -> Arc<dyn TokenValidator>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let guard = |route: &str| {
            BearerAuthLayer::builder()
                .resource(format!("http://{addr}{route}"))
                .authorization_server(issuer)
                .shared_validator(validator())
                .build()
                .expect("guard")
        };
        let app = Router::new()
            .route("/mcp", get(whoami))
            .route_layer(guard("/mcp"))
            .merge(
                Router::new()
                    .route("/api", get(whoami))
                    .route_layer(guard("/api")),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr }
    }

    fn resource(&self, route: &str) -> String {
        format!("http://{}{route}", self.addr)
    }

    async fn status(&self, route: &str, token: &str) -> u16 {
        let reply = reqwest::Client::new()
            .get(self.resource(route))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        reply.status().as_u16()
    }

    /// `token` is accepted at `ours` and refused at the other route, whichever is asked first and
    /// however often (the second round is answered from the caches).
    async fn accepted_only_at(&self, ours: &str, token: &str) {
        let theirs = if ours == "/mcp" { "/api" } else { "/mcp" };
        for round in 0..3 {
            assert_eq!(self.status(ours, token).await, 200, "{ours} round {round}");
            assert_eq!(
                self.status(theirs, token).await,
                401,
                "{theirs} round {round}"
            );
        }
    }
}

fn jwt_for(issuer: &DevIssuer, resource: &str) -> String {
    sign(issuer.token().audience(resource).subject("u"))
}

#[tokio::test]
async fn a_jwt_validator_shared_by_two_layers_checks_each_layers_audience() {
    let dev = issuer().await;
    let shared = JwtValidator::builder(dev.issuer()).build().unwrap();
    // Cloned into each layer.
    let clone = shared.clone();
    let layers = TwoLayers::serve(dev.issuer(), move || Arc::new(clone.clone())).await;
    layers
        .accepted_only_at("/mcp", &jwt_for(&dev, &layers.resource("/mcp")))
        .await;
    layers
        .accepted_only_at("/api", &jwt_for(&dev, &layers.resource("/api")))
        .await;
    // The caches hold one answer per (token, layer); a token naming both audiences works at both.
    let both = sign(
        dev.token()
            .audiences(&[&layers.resource("/mcp"), &layers.resource("/api")]),
    );
    for route in ["/mcp", "/api", "/mcp", "/api"] {
        assert_eq!(layers.status(route, &both).await, 200, "{route}");
    }
    assert!(shared.cached_tokens() >= 4, "{}", shared.cached_tokens());

    // Shared through one Arc, and inside a FirstMatch / a MultiIssuer: the same.
    let arc: Arc<dyn TokenValidator> = Arc::new(shared.clone());
    let layers = TwoLayers::serve(dev.issuer(), move || arc.clone()).await;
    layers
        .accepted_only_at("/api", &jwt_for(&dev, &layers.resource("/api")))
        .await;
    let chain: Arc<dyn TokenValidator> =
        Arc::new(FirstMatch::new().then(shared.clone()).then(static_tokens()));
    let layers = TwoLayers::serve(dev.issuer(), move || chain.clone()).await;
    layers
        .accepted_only_at("/mcp", &jwt_for(&dev, &layers.resource("/mcp")))
        .await;
    let multi: Arc<dyn TokenValidator> = Arc::new(MultiIssuer::new().issuer(shared.clone()));
    let layers = TwoLayers::serve(dev.issuer(), move || multi.clone()).await;
    layers
        .accepted_only_at("/api", &jwt_for(&dev, &layers.resource("/api")))
        .await;
}

#[tokio::test]
async fn an_introspection_validator_shared_by_two_layers_checks_each_layers_audience() {
    let dev = issuer().await;
    let shared = IntrospectionValidator::builder()
        .endpoint(dev.introspection_endpoint())
        .issuer(dev.issuer())
        .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
        .build()
        .unwrap();
    let clone = shared.clone();
    let layers = TwoLayers::serve(dev.issuer(), move || Arc::new(clone.clone())).await;
    for route in ["/mcp", "/api"] {
        let token = dev
            .opaque_token()
            .audience(&layers.resource(route))
            .subject("u")
            .issue();
        layers.accepted_only_at(route, &token).await;
        // One call per (token, layer), then cached answers.
        assert_eq!(dev.introspection_requests_for(&token), 2, "{route}");
    }
}

fn static_tokens() -> StaticValidator {
    StaticValidator::builder()
        .token("ci-static-token-0123456789abcdef", StaticToken::new("ci"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn hostile_iss_values_never_reach_another_issuer_or_the_network() {
    let a = issuer().await;
    let b = issuer().await;
    let introspect = IntrospectionValidator::builder()
        .endpoint(a.introspection_endpoint())
        .issuer(a.issuer())
        .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
        .build()
        .unwrap();
    let multi = MultiIssuer::new()
        .issuer(JwtValidator::builder(a.issuer()).build().unwrap())
        .issuer(JwtValidator::builder(b.issuer()).build().unwrap());
    let chain: Arc<dyn TokenValidator> =
        Arc::new(FirstMatch::new().then(multi).then(introspect.clone()));
    let layers = TwoLayers::serve(a.issuer(), move || chain.clone()).await;
    let resource = layers.resource("/mcp");
    let hostile = [
        json!(format!("{}/", a.issuer())),
        json!(a.issuer().to_uppercase()),
        json!(format!("{}\u{0000}", a.issuer())),
        json!([a.issuer()]),
        json!({"iss": a.issuer()}),
        json!("x".repeat(4000)),
        json!(null),
        json!(b.issuer()), // signed by A, claims B: B's keys refuse it
    ];
    for iss in hostile {
        let token = sign(a.token().audience(&resource).claim("iss", iss.clone()));
        assert_eq!(layers.status("/mcp", &token).await, 401, "iss {iss}");
    }
    let duplicate = {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let good = sign(a.token().audience(&resource));
        let mut parts = good.split('.');
        let header = parts.next().unwrap();
        let payload = format!(
            r#"{{"iss":"{}","iss":"{}","aud":"{resource}","exp":9999999999}}"#,
            b.issuer(),
            a.issuer()
        );
        format!(
            "{header}.{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            parts.nth(1).unwrap()
        )
    };
    assert_eq!(layers.status("/mcp", &duplicate).await, 401);
    assert_eq!(
        introspect.introspection_calls(),
        0,
        "no JWT was introspected"
    );
    // The pairs.
    assert_eq!(
        layers
            .status("/mcp", &sign(a.token().audience(&resource)))
            .await,
        200
    );
    assert_eq!(
        layers
            .status("/mcp", &sign(b.token().audience(&resource)))
            .await,
        200
    );
}

#[tokio::test]
async fn sender_constrained_tokens_are_refused_as_bearer_tokens() {
    let dev = issuer().await;
    let jwt = JwtValidator::builder(dev.issuer()).build().unwrap();
    let introspect = IntrospectionValidator::builder()
        .endpoint(dev.introspection_endpoint())
        .issuer(dev.issuer())
        .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
        .build()
        .unwrap();
    let chain: Arc<dyn TokenValidator> = Arc::new(FirstMatch::new().then(jwt).then(introspect));
    let layers = TwoLayers::serve(dev.issuer(), move || chain.clone()).await;
    let resource = layers.resource("/mcp");
    let confirmations = [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        json!({"kid": "some-key"}),
        json!({}),
    ];
    for cnf in &confirmations {
        let token = sign(dev.token().audience(&resource).claim("cnf", cnf.clone()));
        let reply = reqwest::Client::new()
            .get(&resource)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 401, "JWT with cnf {cnf}");
        let challenge = reply.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(challenge.contains("sender-constrained"), "{challenge}");

        let opaque = dev.opaque_token().audience(&resource).issue();
        dev.set_introspection_response(
            &opaque,
            json!({"active": true, "aud": resource, "scope": "mcp:read", "cnf": cnf}),
        );
        assert_eq!(
            layers.status("/mcp", &opaque).await,
            401,
            "introspected with cnf {cnf}"
        );
    }
    // The pairs: the same without cnf.
    assert_eq!(
        layers
            .status("/mcp", &sign(dev.token().audience(&resource)))
            .await,
        200
    );
    let opaque = dev.opaque_token().audience(&resource).issue();
    assert_eq!(layers.status("/mcp", &opaque).await, 200);
}

#[tokio::test]
async fn configurations_the_guard_cannot_honour_are_build_errors() {
    let dev = issuer().await;
    let layer = |validator: Arc<dyn TokenValidator>, servers: &[&str]| {
        let mut builder = BearerAuthLayer::builder()
            .resource("https://api.example.com/mcp")
            .shared_validator(validator);
        for server in servers {
            builder = builder.authorization_server(*server);
        }
        builder
    };
    let jwt = || Arc::new(JwtValidator::builder(dev.issuer()).build().unwrap());

    // Explicit audiences without the layer's resource.
    let elsewhere = Arc::new(
        JwtValidator::builder(dev.issuer())
            .audience("https://api.example.com/other")
            .build()
            .unwrap(),
    );
    assert_eq!(
        layer(elsewhere, &[dev.issuer()]).build().unwrap_err(),
        BuildError::AudienceExcludesResource("https://api.example.com/mcp".into())
    );
    let introspect_elsewhere = Arc::new(
        IntrospectionValidator::builder()
            .endpoint(dev.introspection_endpoint())
            .audience("https://api.example.com/other")
            .build()
            .unwrap(),
    );
    assert!(layer(introspect_elsewhere, &[dev.issuer()])
        .build()
        .is_err());

    // An advertised authorization server the validator does not trust.
    let stranger = "https://stranger.example.com";
    assert_eq!(
        layer(jwt(), &[dev.issuer(), stranger]).build().unwrap_err(),
        BuildError::UntrustedAuthorizationServer(stranger.into())
    );
    let with_statics = Arc::new(FirstMatch::new().then(static_tokens()).then(jwt()));
    assert!(layer(with_statics.clone(), &[stranger]).build().is_err());
    assert!(layer(with_statics, &[dev.issuer()]).build().is_ok());
    // The documented opt-out, and validators that cannot name their issuers.
    assert!(layer(jwt(), &[stranger])
        .check_authorization_servers(false)
        .build()
        .is_ok());
    assert!(layer(Arc::new(static_tokens()), &[stranger])
        .build()
        .is_ok());

    // Metadata promising sender-constrained tokens.
    for promise in [
        |m: &mut ProtectedResourceMetadata| m.dpop_bound_access_tokens_required = true,
        |m: &mut ProtectedResourceMetadata| m.tls_client_certificate_bound_access_tokens = true,
        |m: &mut ProtectedResourceMetadata| {
            m.dpop_signing_alg_values_supported = vec!["ES256".into()]
        },
    ] {
        let mut metadata = ProtectedResourceMetadata::default();
        metadata.resource = "https://api.example.com/mcp".into();
        metadata.authorization_servers = vec![dev.issuer().into()];
        promise(&mut metadata);
        let error = BearerAuthLayer::builder()
            .metadata(metadata)
            .shared_validator(jwt())
            .build()
            .unwrap_err();
        assert!(matches!(error, BuildError::InvalidMetadata(_)), "{error:?}");
    }
}
