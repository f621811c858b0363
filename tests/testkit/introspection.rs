//! Self-test of the development issuer's RFC 7662 introspection and RFC 7009 revocation endpoints, over real
//! loopback HTTP with hand-built form bodies.
//!
//! What this file establishes:
//! - opaque tokens look opaque (b64token, no dots) and introspect to the documented active answer; unknown,
//!   revoked, expired and not-yet-valid tokens to exactly `{"active":false}`; JWTs of the issuer too;
//! - client authentication: `client_secret_basic` with the RFC 6749 §2.3.1 form-urlencoding (and its
//!   absence refused), `client_secret_post`, the bearer credential, 401/400 for bad callers and bodies;
//! - revocation over HTTP and in-process, request counters, failure injection on `Endpoint::Introspection`,
//!   verbatim custom answers, and the new metadata members.
#![cfg(feature = "testkit")]

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bearer_guard::testkit::probe::{self, Reply};
use bearer_guard::testkit::{Behavior, DevIssuer, Endpoint, KeyAlg, TestkitError};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};

const AUD: &str = "https://mcp.example.com/mcp";
const FORM: &str = "application/x-www-form-urlencoded";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// `application/x-www-form-urlencoded` serialization (WHATWG), by the `form_urlencoded` crate.
fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `client_secret_basic` as RFC 6749 §2.3.1 wants it: form-urlencode id and secret, then base64.
fn basic(client_id: &str, client_secret: &str) -> String {
    let credentials = format!("{}:{}", form_encode(client_id), form_encode(client_secret));
    format!("Basic {}", STANDARD.encode(credentials))
}

fn default_basic() -> String {
    basic("rs-client", "rs-secret")
}

async fn post(
    url: &str,
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: String,
) -> Reply {
    let mut request = http::Request::post(url);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let request = request.body(Full::new(Bytes::from(body))).expect("request");
    probe::send(request).await.expect("HTTP exchange")
}

/// Introspects `token` as the default client (`client_secret_basic`).
async fn introspect(issuer: &DevIssuer, token: &str) -> Reply {
    let body = format!("token={}&token_type_hint=access_token", form_encode(token));
    post(
        &issuer.introspection_endpoint(),
        Some(FORM),
        Some(&default_basic()),
        body,
    )
    .await
}

/// The JSON answer for `token`, asserting a 200.
async fn answer(issuer: &DevIssuer, token: &str) -> Value {
    let reply = introspect(issuer, token).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

async fn small_issuer() -> Result<DevIssuer, TestkitError> {
    DevIssuer::builder().keys(&[KeyAlg::Es256]).start().await
}

fn assert_unauthorized(reply: &Reply, realm: &str) {
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.headers["www-authenticate"],
        format!("Basic realm=\"{realm}\"").as_str()
    );
    assert_eq!(reply.json(), json!({"error": "invalid_client"}));
}

#[tokio::test]
async fn active_opaque_tokens_have_the_documented_answer() -> Result<(), TestkitError> {
    let issuer = small_issuer().await?;
    let origin = format!("http://{}", issuer.addr());
    assert_eq!(
        issuer.introspection_endpoint(),
        format!("{origin}/introspect")
    );
    assert_eq!(issuer.revocation_endpoint(), format!("{origin}/revoke"));

    let token = issuer
        .opaque_token()
        .audience(AUD)
        .scope("mcp:read mcp:write")
        .issue();
    assert_eq!(token.len(), 43);
    assert!(!token.contains('.'), "must not look like a JWT");
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_ne!(token, issuer.opaque_token().issue());

    let reply = introspect(&issuer, &token).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.headers["cache-control"], "no-store");
    let doc = reply.json();
    assert_eq!(doc["active"], true);
    assert_eq!(doc["scope"], "mcp:read mcp:write");
    assert_eq!(doc["client_id"], "test-client");
    assert_eq!(doc["sub"], "test-user");
    assert_eq!(doc["aud"], AUD);
    assert_eq!(doc["iss"], issuer.issuer());
    assert_eq!(doc["token_type"], "Bearer");
    let (iat, exp) = (doc["iat"].as_i64().unwrap(), doc["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 300);
    assert!(doc.get("nbf").is_none());
    let members: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(members.len(), 9, "{members:?}");

    // Defaults: no aud; setters change the answer.
    let plain = answer(&issuer, &issuer.opaque_token().issue()).await;
    assert!(plain.get("aud").is_none());
    assert_eq!(plain["scope"], "mcp:read");
    let custom = issuer
        .opaque_token()
        .subject("alice")
        .audiences(&[AUD, "https://other.example"])
        .not_before(-10)
        .token_type(None)
        .claim("ext", json!({"tenant": 7}))
        .claim("active", json!(false))
        .remove_claim("client_id")
        .issue();
    let doc = answer(&issuer, &custom).await;
    assert_eq!(doc["active"], true, "the endpoint decides `active`");
    assert_eq!(doc["sub"], "alice");
    assert_eq!(doc["aud"], json!([AUD, "https://other.example"]));
    assert!(doc["nbf"].as_i64().is_some());
    assert!(doc.get("token_type").is_none());
    assert!(doc.get("client_id").is_none());
    assert_eq!(doc["ext"], json!({"tenant": 7}));
    let never_expires = issuer.opaque_token().remove_claim("exp").issue();
    assert_eq!(answer(&issuer, &never_expires).await["active"], true);
    Ok(())
}

#[tokio::test]
async fn inactive_tokens_answer_only_active_false() -> Result<(), TestkitError> {
    let issuer = small_issuer().await?;
    let inactive = json!({"active": false});
    assert_eq!(answer(&issuer, "never-issued").await, inactive);
    assert_eq!(
        introspect(&issuer, "never-issued").await.text(),
        r#"{"active":false}"#
    );

    let expired = issuer.opaque_token().audience(AUD).expires_in(-5).issue();
    assert_eq!(answer(&issuer, &expired).await, inactive);
    let expires_now = issuer.opaque_token().expires_in(0).issue();
    assert_eq!(answer(&issuer, &expires_now).await, inactive);
    let not_yet = issuer.opaque_token().not_before(600).issue();
    assert_eq!(answer(&issuer, &not_yet).await, inactive);

    // In-process revocation.
    let token = issuer.opaque_token().audience(AUD).issue();
    assert_eq!(answer(&issuer, &token).await["active"], true);
    assert!(issuer.revoke(&token));
    assert!(issuer.revoke(&token), "still known once revoked");
    assert!(!issuer.revoke("never-issued"));
    assert_eq!(answer(&issuer, &token).await, inactive);

    // Revocation over HTTP (RFC 7009): 200 with an empty body, known or not.
    let token = issuer.opaque_token().issue();
    let revoke = |token: String, authorization: Option<String>| {
        let url = issuer.revocation_endpoint();
        async move {
            post(
                &url,
                Some(FORM),
                authorization.as_deref(),
                format!("token={}&token_type_hint=access_token", form_encode(&token)),
            )
            .await
        }
    };
    let refused = revoke(token.clone(), Some(basic("rs-client", "nope"))).await;
    assert_unauthorized(&refused, "revocation");
    assert_eq!(answer(&issuer, &token).await["active"], true);
    let revoked = revoke(token.clone(), Some(default_basic())).await;
    assert_eq!(revoked.status, 200);
    assert!(revoked.body.is_empty());
    assert_eq!(answer(&issuer, &token).await, inactive);
    let unknown = revoke("never-issued".to_owned(), Some(default_basic())).await;
    assert_eq!(unknown.status, 200);
    let json_body = post(
        &issuer.revocation_endpoint(),
        Some("application/json"),
        Some(&default_basic()),
        json!({"token": token}).to_string(),
    )
    .await;
    assert_eq!(json_body.status, 400);
    assert_eq!(issuer.requests(Endpoint::Revocation), 4);
    Ok(())
}

#[tokio::test]
async fn jwts_of_the_issuer_are_introspected_too() -> Result<(), TestkitError> {
    let issuer = DevIssuer::builder()
        .keys(&[KeyAlg::Es256, KeyAlg::EdDsa])
        .start()
        .await?;
    let jwt = issuer.token().audience(AUD).scope("mcp:write").sign()?;
    let doc = answer(&issuer, &jwt).await;
    assert_eq!(doc["active"], true);
    assert_eq!(doc["aud"], AUD);
    assert_eq!(doc["scope"], "mcp:write");
    assert_eq!(doc["iss"], issuer.issuer());
    assert_eq!(doc["token_type"], "Bearer");
    let other_key = issuer.token().key("eddsa-1").sign()?;
    assert_eq!(answer(&issuer, &other_key).await["active"], true);

    let inactive = json!({"active": false});
    for bad in [
        issuer.token().sign_with_tampered_payload()?,
        issuer.token().unsigned()?,
        issuer.token().sign_hs256_with_secret(b"secret")?,
        issuer.token().header_alg("ES384").sign()?,
        issuer.token().expires_in(-5).sign()?,
    ] {
        assert_eq!(answer(&issuer, &bad).await, inactive);
    }
    let stranger = small_issuer().await?;
    assert_eq!(answer(&issuer, &stranger.token().sign()?).await, inactive);

    assert!(issuer.revoke(&jwt));
    assert_eq!(answer(&issuer, &jwt).await, inactive);
    assert!(!issuer.revoke(&stranger.token().sign()?));
    Ok(())
}

#[tokio::test]
async fn client_secret_basic_is_form_urlencoded_before_base64() -> Result<(), TestkitError> {
    let (id, secret) = ("client:id é", "sec:ret ü+");
    let issuer = DevIssuer::builder()
        .keys(&[KeyAlg::Es256])
        .introspection_client(id, secret)
        .start()
        .await?;
    let token = issuer.opaque_token().issue();
    let body = format!("token={token}");
    let url = issuer.introspection_endpoint();

    let encoded = basic(id, secret);
    assert_eq!(
        String::from_utf8(STANDARD.decode(&encoded[6..]).unwrap()).unwrap(),
        "client%3Aid+%C3%A9:sec%3Aret+%C3%BC%2B"
    );
    let ok = post(&url, Some(FORM), Some(&encoded), body.clone()).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["active"], true);
    // Percent-encoding a space as %20 is as good as `+`; the scheme name is case-insensitive.
    let percent = format!(
        "basic {}",
        STANDARD.encode("client%3Aid%20%C3%A9:sec%3Aret%20%C3%BC%2B")
    );
    assert_eq!(
        post(&url, Some(FORM), Some(&percent), body.clone())
            .await
            .status,
        200
    );

    // The same credentials without form-urlencoding first (what a naive client sends).
    let raw = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    assert_unauthorized(
        &post(&url, Some(FORM), Some(&raw), body.clone()).await,
        "introspection",
    );
    let naive = client()
        .post(&url)
        .header("content-type", FORM)
        .basic_auth(id, Some(secret))
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(naive.status().as_u16(), 401);
    // The defaults no longer work.
    assert_unauthorized(
        &post(&url, Some(FORM), Some(&default_basic()), body.clone()).await,
        "introspection",
    );

    // client_secret_post with the same credentials.
    let post_body = format!(
        "token={token}&client_id={}&client_secret={}",
        form_encode(id),
        form_encode(secret)
    );
    let ok = post(&url, Some(FORM), None, post_body.clone()).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["active"], true);
    // `+` in the secret must be sent as %2B: a literal `+` is a space.
    let wrong_plus = format!(
        "token={token}&client_id={}&client_secret=sec%3Aret+%C3%BC+",
        form_encode(id)
    );
    assert_unauthorized(
        &post(&url, Some(FORM), None, wrong_plus).await,
        "introspection",
    );
    // Two methods at once are refused (RFC 6749 §2.3.1).
    let both = post(&url, Some(FORM), Some(&encoded), post_body).await;
    assert_eq!(both.status, 400);
    assert_eq!(both.json()["error"], "invalid_request");
    assert_eq!(issuer.introspection_requests_for(&token), 8);
    Ok(())
}

#[tokio::test]
async fn callers_are_authenticated() -> Result<(), TestkitError> {
    let issuer = DevIssuer::builder()
        .keys(&[KeyAlg::Es256])
        .introspection_bearer("rs-bearer-credential")
        .start()
        .await?;
    let token = issuer.opaque_token().issue();
    let url = issuer.introspection_endpoint();
    let body = format!("token={token}");

    // Default client, both methods; the bearer credential.
    assert_eq!(
        post(&url, Some(FORM), Some(&default_basic()), body.clone())
            .await
            .status,
        200
    );
    let post_auth = format!("{body}&client_id=rs-client&client_secret=rs-secret");
    let ok = post(&url, Some(FORM), None, post_auth).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["active"], true);
    let bearer = post(
        &url,
        Some(FORM),
        Some("Bearer rs-bearer-credential"),
        body.clone(),
    )
    .await;
    assert_eq!(bearer.status, 200);
    assert_eq!(bearer.json()["active"], true);

    // Missing or wrong credentials.
    for authorization in [
        None,
        Some(basic("rs-client", "wrong")),
        Some(basic("other-client", "rs-secret")),
        Some(basic("rs-client", "")),
        Some("Basic !!!not-base64".to_owned()),
        Some(format!("Basic {}", STANDARD.encode("no-colon"))),
        Some("Bearer wrong-credential".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Digest {}", STANDARD.encode("rs-client:rs-secret"))),
    ] {
        let reply = post(&url, Some(FORM), authorization.as_deref(), body.clone()).await;
        assert_unauthorized(&reply, "introspection");
    }
    for post_auth in [
        format!("{body}&client_id=rs-client&client_secret=wrong"),
        format!("{body}&client_secret=rs-secret"),
        format!("{body}&client_id=rs-client"),
    ] {
        assert_unauthorized(
            &post(&url, Some(FORM), None, post_auth).await,
            "introspection",
        );
    }

    // Without a configured bearer credential no bearer is accepted.
    let plain = small_issuer().await?;
    let reply = post(
        &plain.introspection_endpoint(),
        Some(FORM),
        Some("Bearer rs-bearer-credential"),
        format!("token={}", plain.opaque_token().issue()),
    )
    .await;
    assert_unauthorized(&reply, "introspection");
    assert!(matches!(
        DevIssuer::builder().introspection_bearer("").start().await,
        Err(TestkitError::InvalidConfig(_))
    ));

    // Secrets stay out of Debug output.
    let builder = DevIssuer::builder()
        .introspection_client("some-client", "top-secret-value")
        .introspection_bearer("bearer-secret-value");
    let debug = format!("{builder:?} {issuer:?} {:?}", issuer.opaque_token());
    assert!(debug.contains("some-client"));
    assert!(!debug.contains("top-secret-value") && !debug.contains("bearer-secret-value"));
    assert!(!debug.contains("rs-bearer-credential") && !debug.contains("rs-secret"));
    assert!(!debug.contains(&token));
    Ok(())
}

#[tokio::test]
async fn malformed_requests_are_refused() -> Result<(), TestkitError> {
    let issuer = small_issuer().await?;
    let token = issuer.opaque_token().issue();
    let url = issuer.introspection_endpoint();
    let auth = default_basic();

    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let reply = post(&url, content_type, Some(&auth), format!("token={token}")).await;
        assert_eq!(reply.status, 400, "{content_type:?}");
        assert_eq!(reply.json()["error"], "invalid_request");
    }
    let charset = post(
        &url,
        Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
        Some(&auth),
        format!("token={token}"),
    )
    .await;
    assert_eq!(charset.status, 200);
    assert_eq!(charset.json()["active"], true);

    let missing = post(
        &url,
        Some(FORM),
        Some(&auth),
        "token_type_hint=access_token".to_owned(),
    )
    .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"], "invalid_request");
    let repeated = post(
        &url,
        Some(FORM),
        Some(&auth),
        format!("token={token}&token=x"),
    )
    .await;
    assert_eq!(repeated.status, 400);

    let get = client().get(&url).send().await.expect("request");
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(get.headers()["allow"], "POST");

    let huge = post(
        &url,
        Some(FORM),
        Some(&auth),
        format!("token={}", "a".repeat(70_000)),
    )
    .await;
    assert_eq!(huge.status, 413);
    Ok(())
}

#[tokio::test]
async fn counters_count_every_request() -> Result<(), TestkitError> {
    let issuer = small_issuer().await?;
    let token = issuer.opaque_token().issue();
    let other = issuer.opaque_token().issue();
    assert_eq!(issuer.introspection_requests_for(&token), 0);

    let _ = introspect(&issuer, &token).await;
    let _ = introspect(&issuer, &token).await;
    let _ = introspect(&issuer, &other).await;
    // Refused callers and unknown tokens count too.
    let _ = post(
        &issuer.introspection_endpoint(),
        Some(FORM),
        None,
        format!("token={token}"),
    )
    .await;
    let _ = introspect(&issuer, "unknown").await;
    // No form body: counted for the endpoint, names no token.
    let _ = post(
        &issuer.introspection_endpoint(),
        Some("application/json"),
        Some(&default_basic()),
        format!("token={token}"),
    )
    .await;

    assert_eq!(issuer.requests(Endpoint::Introspection), 6);
    assert_eq!(issuer.introspection_requests_for(&token), 3);
    assert_eq!(issuer.introspection_requests_for(&other), 1);
    assert_eq!(issuer.introspection_requests_for("unknown"), 1);
    assert_eq!(issuer.requests(Endpoint::Revocation), 0);
    assert_eq!(issuer.requests(Endpoint::Jwks), 0);

    issuer.reset_counts();
    assert_eq!(issuer.requests(Endpoint::Introspection), 0);
    assert_eq!(issuer.introspection_requests_for(&token), 0);
    let _ = introspect(&issuer, &token).await;
    assert_eq!(issuer.introspection_requests_for(&token), 1);
    Ok(())
}

#[tokio::test]
async fn behaviors_apply_to_introspection() -> Result<(), TestkitError> {
    let issuer = small_issuer().await?;
    let token = issuer.opaque_token().audience(AUD).issue();

    issuer.set_behavior(Endpoint::Introspection, Behavior::Status(503));
    let failed = introspect(&issuer, &token).await;
    assert_eq!(failed.status, 503);
    let unauthenticated = post(
        &issuer.introspection_endpoint(),
        Some(FORM),
        None,
        format!("token={token}"),
    )
    .await;
    assert_eq!(
        unauthenticated.status, 503,
        "injected before authentication"
    );

    issuer.set_behavior(Endpoint::Introspection, Behavior::InvalidJson);
    let invalid = introspect(&issuer, &token).await;
    assert_eq!(invalid.status, 200);
    assert_eq!(invalid.headers["content-type"], "application/json");
    assert!(serde_json::from_slice::<Value>(&invalid.body).is_err());

    issuer.set_behavior(
        Endpoint::Introspection,
        Behavior::Slow(Duration::from_millis(300)),
    );
    let started = Instant::now();
    let slow = introspect(&issuer, &token).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(slow.status, 200);
    assert_eq!(slow.json()["active"], true);

    issuer.set_behavior(Endpoint::Introspection, Behavior::Oversize(100_000));
    let big = introspect(&issuer, &token).await;
    assert_eq!(big.status, 200);
    assert_eq!(big.body.len(), 100_000);
    assert_eq!(big.json()["active"], true);
    assert_eq!(big.json()["aud"], AUD);

    issuer.set_behavior(Endpoint::Introspection, Behavior::WrongIssuer);
    let wrong = introspect(&issuer, &token).await.json();
    assert_eq!(wrong["active"], true);
    assert!(wrong["iss"].as_str().is_some());
    assert_ne!(wrong["iss"], issuer.issuer());
    assert_eq!(answer(&issuer, "unknown").await, json!({"active": false}));

    // Behaviors are per endpoint.
    issuer.set_behavior(Endpoint::Jwks, Behavior::Status(500));
    issuer.set_behavior(Endpoint::Introspection, Behavior::Normal);
    assert_eq!(answer(&issuer, &token).await["iss"], issuer.issuer());
    issuer.set_behavior(Endpoint::Revocation, Behavior::Status(502));
    let revoke = post(
        &issuer.revocation_endpoint(),
        Some(FORM),
        Some(&default_basic()),
        format!("token={token}"),
    )
    .await;
    assert_eq!(revoke.status, 502);
    assert_eq!(answer(&issuer, &token).await["active"], true, "not revoked");

    assert_eq!(issuer.requests(Endpoint::Introspection), 9);
    assert_eq!(issuer.introspection_requests_for(&token), 8);
    Ok(())
}

#[tokio::test]
async fn custom_responses_are_returned_verbatim() -> Result<(), TestkitError> {
    let issuer = small_issuer().await?;
    let token = issuer.opaque_token().issue();
    let cases = [
        json!({"active": "true", "scope": "mcp:read"}),
        json!({"scope": "mcp:read", "sub": "no-active-member"}),
        json!({"active": true, "exp": "tomorrow", "aud": 5}),
        json!([1, 2, 3]),
    ];
    for case in cases {
        issuer.set_introspection_response(&token, case.clone());
        assert_eq!(answer(&issuer, &token).await, case);
        issuer.set_introspection_response("not-an-issued-token", case.clone());
        assert_eq!(answer(&issuer, "not-an-issued-token").await, case);
    }
    // Revocation drops the custom answer.
    assert!(issuer.revoke("not-an-issued-token"));
    assert_eq!(
        answer(&issuer, "not-an-issued-token").await,
        json!({"active": false})
    );
    issuer.set_introspection_response(&token, json!({"active": true}));
    assert!(issuer.revoke(&token));
    assert_eq!(answer(&issuer, &token).await, json!({"active": false}));
    Ok(())
}

#[tokio::test]
async fn metadata_advertises_introspection_and_revocation() -> Result<(), TestkitError> {
    let issuer = DevIssuer::builder()
        .issuer_path("/realms/demo")
        .keys(&[KeyAlg::Es256])
        .start()
        .await?;
    for url in [issuer.oauth_metadata_uri(), issuer.openid_metadata_uri()] {
        let body = client()
            .get(&url)
            .send()
            .await
            .expect("request")
            .bytes()
            .await
            .expect("body");
        let meta: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            meta["introspection_endpoint"],
            issuer.introspection_endpoint()
        );
        assert_eq!(
            meta["introspection_endpoint_auth_methods_supported"],
            json!(["client_secret_basic", "client_secret_post"])
        );
        assert_eq!(meta["revocation_endpoint"], issuer.revocation_endpoint());
    }
    // The endpoints live at the origin, whatever the issuer path.
    assert_eq!(
        issuer.introspection_endpoint(),
        format!("http://{}/introspect", issuer.addr())
    );
    let token = issuer.opaque_token().issue();
    assert_eq!(answer(&issuer, &token).await["iss"], issuer.issuer());
    Ok(())
}
