//! Every builder knob driven through its extremes (zero, one nanosecond, one second, `Duration::MAX`;
//! `0`, `1`, `usize::MAX`), one at a time and all at once: `build()` either refuses the setting or builds a
//! guard that answers every kind of request (no token, junk, a JWT naming an unknown `kid`, a valid JWT,
//! an expired one, an opaque token, an MCP call) with a status, within a bound, and never panics.
#![cfg(all(feature = "testkit", feature = "mcp"))]

use std::convert::Infallible;
use std::time::Duration;

use crate::common::validators::{sign, start};
use bearer_guard::mcp::McpScopes;
use bearer_guard::testkit::DevIssuer;
use bearer_guard::validate::{IntrospectionValidatorBuilder, JwtValidatorBuilder};
use bearer_guard::{
    BearerAuthLayer, BearerAuthLayerBuilder, ClientAuth, FirstMatch, IntrospectionValidator,
    JwtValidator, Requirement,
};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tokio::time::timeout;
use tower::{Layer, ServiceExt};

const RESOURCE: &str = "https://mcp.example.com/mcp";
/// A request through a guard built with extreme settings still answers within this.
const ANSWER_WITHIN: Duration = Duration::from_secs(20);

const DURATIONS: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_secs(1),
    Duration::MAX,
];
const SIZES: [usize; 3] = [0, 1, usize::MAX];

type Jwt = fn(JwtValidatorBuilder, Duration, usize) -> JwtValidatorBuilder;
type Intro = fn(IntrospectionValidatorBuilder, Duration, usize) -> IntrospectionValidatorBuilder;
type Layer_ = fn(BearerAuthLayerBuilder, Duration, usize) -> BearerAuthLayerBuilder;

fn jwt_knobs() -> Vec<(&'static str, Jwt)> {
    vec![
        ("leeway", |b, d, _| b.leeway(d)),
        ("fetch_timeout", |b, d, _| b.fetch_timeout(d)),
        ("max_response_bytes", |b, _, n| b.max_response_bytes(n)),
        ("max_keys", |b, _, n| b.max_keys(n)),
        ("unknown_kid_cooldown", |b, d, _| b.unknown_kid_cooldown(d)),
        ("max_staleness", |b, d, _| b.max_staleness(d)),
        ("refresh_min", |b, d, _| {
            b.refresh_interval_bounds(d, Duration::from_secs(60))
        }),
        ("refresh_max", |b, d, _| {
            b.refresh_interval_bounds(Duration::from_secs(1), d)
        }),
        ("refresh_inverted", |b, d, _| {
            b.refresh_interval_bounds(Duration::MAX, d)
        }),
        ("token_cache_ttl", |b, d, _| b.token_cache(10, d)),
        ("token_cache_capacity", |b, _, n| {
            b.token_cache(n, Duration::from_secs(60))
        }),
    ]
}

fn introspection_knobs() -> Vec<(&'static str, Intro)> {
    vec![
        ("leeway", |b, d, _| b.leeway(d)),
        ("timeout", |b, d, _| b.timeout(d)),
        ("max_response_bytes", |b, _, n| b.max_response_bytes(n)),
        ("cache_ttl", |b, d, _| b.cache(10, d)),
        ("cache_capacity", |b, _, n| {
            b.cache(n, Duration::from_secs(60))
        }),
        ("negative_ttl", |b, d, _| b.negative_ttl(d)),
        ("max_concurrent_calls", |b, _, n| b.max_concurrent_calls(n)),
        ("max_queued_calls", |b, _, n| b.max_queued_calls(n)),
        ("max_queue_wait", |b, d, _| b.max_queue_wait(d)),
    ]
}

fn layer_knobs() -> Vec<(&'static str, Layer_)> {
    vec![
        ("max_token_bytes", |b, _, n| b.max_token_bytes(n)),
        ("metadata_max_age", |b, d, _| b.metadata_max_age(d)),
    ]
}

fn jwt_builder(issuer: &DevIssuer) -> JwtValidatorBuilder {
    JwtValidator::builder(issuer.issuer()).jwks_uri(issuer.jwks_uri())
}

fn introspection_builder(issuer: &DevIssuer) -> IntrospectionValidatorBuilder {
    IntrospectionValidator::builder()
        .endpoint(issuer.introspection_endpoint())
        .issuer(issuer.issuer())
        .client_auth(ClientAuth::basic("rs-client", "rs-secret"))
}

fn layer_builder(issuer: &DevIssuer) -> BearerAuthLayerBuilder {
    BearerAuthLayer::builder()
        .resource(RESOURCE)
        .authorization_server(issuer.issuer())
        .require(Requirement::all_of(["mcp:read"]))
}

/// Sends every kind of request through `layer` (with an MCP table limited by `mcp_bytes`/`mcp_batch`).
async fn exercise(issuer: &DevIssuer, layer: BearerAuthLayer, knob: &str, mcp_limit: usize) {
    let scopes = McpScopes::new()
        .tool("echo", Requirement::all_of(["mcp:read"]))
        .max_body_bytes(mcp_limit)
        .max_batch_members(mcp_limit);
    let guard = match layer.mcp_guard(scopes) {
        Ok(guard) => guard,
        Err(_) => return, // a refused MCP limit (zero): a build error, fine
    };
    let inner = tower::service_fn(|_request: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let service = guard.layer(inner);
    let good = sign(issuer.token().audience(RESOURCE).scope("mcp:read"));
    let tokens = [
        None,
        Some("junk".to_owned()),
        Some("a.b.c".to_owned()),
        Some(sign(
            issuer
                .token()
                .audience(RESOURCE)
                .header_kid(Some("not-yet-published")),
        )),
        Some(good.clone()),
        Some(good),
        Some(sign(issuer.token().audience(RESOURCE).expires_in(-3_600))),
        Some(
            issuer
                .opaque_token()
                .audience(RESOURCE)
                .scope("mcp:read")
                .issue(),
        ),
    ];
    let bodies = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#,
        r#"[{"jsonrpc":"2.0","method":"ping"},{"jsonrpc":"2.0","method":"ping"}]"#,
    ];
    for token in &tokens {
        for body in bodies {
            let mut request = Request::post("/mcp");
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let request = request
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap();
            let response = timeout(ANSWER_WITHIN, service.clone().oneshot(request))
                .await
                .unwrap_or_else(|_| panic!("{knob}: no answer within {ANSWER_WITHIN:?}"))
                .expect("infallible");
            let status = response.status().as_u16();
            assert!(
                matches!(status, 200 | 400 | 401 | 403 | 413 | 503),
                "{knob}: unexpected status {status}"
            );
            let _ = response.into_body().collect().await;
        }
    }
    let metadata = Request::get("/.well-known/oauth-protected-resource/mcp")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = timeout(ANSWER_WITHIN, service.clone().oneshot(metadata))
        .await
        .expect("metadata in time")
        .expect("infallible");
    assert_eq!(response.status(), 200, "{knob}: metadata");
}

async fn run(
    issuer: &DevIssuer,
    knob: &str,
    jwt: JwtValidatorBuilder,
    intro: IntrospectionValidatorBuilder,
    layer: BearerAuthLayerBuilder,
    mcp_limit: usize,
) {
    let (Ok(jwt), Ok(intro)) = (jwt.build(), intro.build()) else {
        return; // refused at build: that is an answer too
    };
    let Ok(layer) = layer
        .validator(FirstMatch::new().then(jwt).then(intro))
        .build()
    else {
        return;
    };
    exercise(issuer, layer, knob, mcp_limit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_setting_panics_or_hangs_a_request() {
    let issuer = start(DevIssuer::builder().introspection_client("rs-client", "rs-secret")).await;
    let mut runs = 0;
    for d in DURATIONS {
        for n in SIZES {
            for (name, knob) in jwt_knobs() {
                let knob_name = format!("jwt {name} {d:?} {n}");
                let jwt = knob(jwt_builder(&issuer), d, n);
                run(
                    &issuer,
                    &knob_name,
                    jwt,
                    introspection_builder(&issuer),
                    layer_builder(&issuer),
                    1024,
                )
                .await;
                runs += 1;
            }
            for (name, knob) in introspection_knobs() {
                let knob_name = format!("introspection {name} {d:?} {n}");
                let intro = knob(introspection_builder(&issuer), d, n);
                run(
                    &issuer,
                    &knob_name,
                    jwt_builder(&issuer),
                    intro,
                    layer_builder(&issuer),
                    1024,
                )
                .await;
                runs += 1;
            }
            for (name, knob) in layer_knobs() {
                let knob_name = format!("layer {name} {d:?} {n}");
                let layer = knob(layer_builder(&issuer), d, n);
                run(
                    &issuer,
                    &knob_name,
                    jwt_builder(&issuer),
                    introspection_builder(&issuer),
                    layer,
                    1024,
                )
                .await;
                runs += 1;
            }
            // The MCP limits.
            let knob_name = format!("mcp limits {n}");
            run(
                &issuer,
                &knob_name,
                jwt_builder(&issuer),
                introspection_builder(&issuer),
                layer_builder(&issuer),
                n,
            )
            .await;
            // Every knob at this extreme at once.
            let mut jwt = jwt_builder(&issuer);
            for (_, knob) in jwt_knobs() {
                jwt = knob(jwt, d, n);
            }
            let mut intro = introspection_builder(&issuer);
            for (_, knob) in introspection_knobs() {
                intro = knob(intro, d, n);
            }
            let mut layer = layer_builder(&issuer);
            for (_, knob) in layer_knobs() {
                layer = knob(layer, d, n);
            }
            run(&issuer, &format!("all at {d:?} {n}"), jwt, intro, layer, n).await;
            runs += 2;
        }
    }
    assert!(runs > 100, "{runs} configurations tried");
}
