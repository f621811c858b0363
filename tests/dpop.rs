//! DPoP (RFC 9449) end to end: a development issuer's JWKS and introspection on loopback, the guard in each
//! mode serving a real HTTP server, proofs from the test kit. Each refusal is paired with an acceptance.

use std::convert::Infallible;
use std::time::Duration;

use bearer_guard::bind::dpop::{DpopConfig, DpopMode};
use bearer_guard::testkit::probe::{self, Reply, Served};
use bearer_guard::testkit::{DevIssuer, DpopKey, KeyAlg};
use bearer_guard::{
    AccessToken, BearerAuthLayer, ClientAuth, IntrospectionValidator, JwtValidator, TokenValidator,
};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::time::timeout;
use tower::Layer;

const WAIT: Duration = Duration::from_secs(10);

struct Fixture {
    dev: DevIssuer,
    served: Served,
    key: DpopKey,
}

impl Fixture {
    fn url(&self) -> String {
        self.served.url("/mcp")
    }

    /// A token bound to this fixture's key.
    fn bound_token(&self) -> String {
        self.dev
            .token()
            .audience(&self.url())
            .dpop_bound(&self.key)
            .sign()
            .expect("sign")
    }

    fn plain_token(&self) -> String {
        self.dev.token().audience(&self.url()).sign().expect("sign")
    }

    async fn send(&self, authorization: Option<&str>, proofs: &[&str]) -> Reply {
        self.send_to("POST", &self.url(), authorization, proofs)
            .await
    }

    async fn send_to(
        &self,
        method: &str,
        url: &str,
        authorization: Option<&str>,
        proofs: &[&str],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(url);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        for proof in proofs {
            request = request.header("dpop", *proof);
        }
        let request = request.body(Full::new(Bytes::new())).expect("request");
        timeout(WAIT, probe::send(request))
            .await
            .expect("answer in time")
            .expect("answer")
    }

    /// `DPoP <token>` with a fresh valid proof.
    async fn dpop(&self, token: &str) -> Reply {
        let proof = self
            .key
            .proof("POST", &self.url(), Some(token))
            .expect("proof");
        self.send(Some(&format!("DPoP {token}")), &[&proof]).await
    }
}

async fn issuer() -> DevIssuer {
    timeout(WAIT, DevIssuer::builder().keys(&[KeyAlg::Rs256]).start())
        .await
        .expect("issuer in time")
        .expect("issuer")
}

async fn jwt(dev: &DevIssuer) -> JwtValidator {
    let validator = JwtValidator::builder(dev.issuer())
        .build()
        .expect("validator");
    timeout(WAIT, validator.ready())
        .await
        .expect("keys in time")
        .expect("keys");
    validator
}

fn whoami() -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(|request: Request<Incoming>| async move {
        let token = request.extensions().get::<AccessToken>().cloned();
        let sub = token.as_ref().and_then(|t| t.subject().map(str::to_owned));
        let bound = token.is_some_and(|t| t.confirmation().jkt().is_some());
        let body = format!("sub={} bound={bound}", sub.as_deref().unwrap_or("none"));
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
    })
}

async fn start(
    dpop: Option<DpopConfig>,
    validator: impl TokenValidator,
    dev: DevIssuer,
) -> Fixture {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut builder = BearerAuthLayer::builder()
        .resource(format!("http://{addr}/mcp"))
        .authorization_server(dev.issuer())
        .validator(validator);
    if let Some(config) = dpop {
        builder = builder.dpop(config);
    }
    let guard = builder.build().expect("guard");
    let served = probe::serve(listener, guard.layer(whoami())).expect("serve");
    Fixture {
        dev,
        served,
        key: DpopKey::generate(KeyAlg::Es256).expect("key"),
    }
}

async fn optional() -> Fixture {
    let dev = issuer().await;
    let validator = jwt(&dev).await;
    start(Some(DpopConfig::new(DpopMode::Optional)), validator, dev).await
}

/// The reply is a 401 whose single challenge is `DPoP` with `error`, the given description, and `algs`.
fn assert_dpop_error(reply: &Reply, error: &str, description: &str) {
    assert_eq!(reply.status.as_u16(), 401, "{reply:?}");
    let challenge = reply.challenge();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!(r#"error="{error}""#)),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!(r#"error_description="{description}""#)),
        "{challenge}"
    );
    assert!(challenge.contains(", algs=\""), "{challenge}");
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");
}

#[tokio::test]
async fn a_valid_proof_with_its_bound_token_is_accepted_and_each_broken_proof_is_refused() {
    let f = optional().await;
    let token = f.bound_token();
    let url = f.url();
    let reply = f.dpop(&token).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    assert_eq!(reply.text(), "sub=test-user bound=true");

    let scheme = format!("DPoP {token}");
    let with =
        |b: bearer_guard::testkit::ProofBuilder<'_>| b.access_token(&token).sign().expect("proof");
    let other_key = DpopKey::generate(KeyAlg::Es256).expect("key");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong htm",
            with(f.key.proof_builder("GET", &url)),
            "The DPoP proof htm does not match the request method",
        ),
        (
            "wrong htu path",
            with(f.key.proof_builder("POST", &f.served.url("/other"))),
            "The DPoP proof htu does not match the request URI",
        ),
        (
            "wrong htu host",
            with(f.key.proof_builder("POST", "http://evil.example.com/mcp")),
            "The DPoP proof htu does not match the request URI",
        ),
        (
            "stale iat",
            with(f.key.proof_builder("POST", &url).issued_at(-400)),
            "The DPoP proof iat is outside the accepted window",
        ),
        (
            "future iat",
            with(f.key.proof_builder("POST", &url).issued_at(400)),
            "The DPoP proof iat is outside the accepted window",
        ),
        (
            "wrong ath",
            f.key
                .proof_builder("POST", &url)
                .access_token("another-token")
                .sign()
                .expect("proof"),
            "The DPoP proof ath does not match the access token",
        ),
        (
            "no ath",
            f.key.proof_builder("POST", &url).sign().expect("proof"),
            "The DPoP proof lacks a required claim",
        ),
        (
            "no jti",
            with(f.key.proof_builder("POST", &url).remove_claim("jti")),
            "The DPoP proof lacks a required claim",
        ),
        (
            "oversized jti",
            with(f.key.proof_builder("POST", &url).jti(&"j".repeat(300))),
            "The DPoP proof lacks a required claim",
        ),
        (
            "no iat",
            with(f.key.proof_builder("POST", &url).remove_claim("iat")),
            "The DPoP proof lacks a required claim",
        ),
        (
            "wrong thumbprint",
            other_key.proof("POST", &url, Some(&token)).expect("proof"),
            "The DPoP proof key does not match the access token binding",
        ),
        (
            "typ JWT",
            with(
                f.key
                    .proof_builder("POST", &url)
                    .header_param("typ", json!("JWT")),
            ),
            "The DPoP proof typ is not dpop+jwt",
        ),
        (
            "no typ",
            with(f.key.proof_builder("POST", &url).remove_header_param("typ")),
            "The DPoP proof typ is not dpop+jwt",
        ),
        (
            "alg none",
            with(
                f.key
                    .proof_builder("POST", &url)
                    .header_param("alg", json!("none")),
            ),
            "The DPoP proof algorithm is not allowed",
        ),
        (
            "alg HS256",
            with(
                f.key
                    .proof_builder("POST", &url)
                    .header_param("alg", json!("HS256")),
            ),
            "The DPoP proof algorithm is not allowed",
        ),
        (
            "alg of another key type",
            with(
                f.key
                    .proof_builder("POST", &url)
                    .header_param("alg", json!("RS256")),
            ),
            "The DPoP proof algorithm is not allowed",
        ),
        (
            "private jwk",
            with(
                f.key
                    .proof_builder("POST", &url)
                    .jwk_member("d", "c2VjcmV0"),
            ),
            "The DPoP proof key contains private key material",
        ),
        (
            "no jwk",
            with(f.key.proof_builder("POST", &url).remove_header_param("jwk")),
            "The DPoP proof has no usable public key",
        ),
        (
            "symmetric jwk",
            with(
                f.key
                    .proof_builder("POST", &url)
                    .header_param("jwk", json!({"kty": "oct", "k": "c2VjcmV0"})),
            ),
            "The DPoP proof key contains private key material",
        ),
        (
            "another key's jwk",
            with(
                f.key
                    .proof_builder("POST", &url)
                    .header_param("jwk", other_key.public_jwk()),
            ),
            "The DPoP proof signature is invalid",
        ),
        (
            "crit",
            with(
                f.key
                    .proof_builder("POST", &url)
                    .header_param("crit", json!(["exp"])),
            ),
            "The DPoP proof has a critical header extension",
        ),
        (
            "not a JWT",
            "not-a-jwt".to_owned(),
            "The DPoP proof is malformed",
        ),
    ];
    for (name, proof, description) in &cases {
        let reply = f.send(Some(&scheme), &[proof]).await;
        assert_dpop_error(&reply, "invalid_dpop_proof", description);
        assert!(
            !reply.text().contains(&token),
            "{name}: the token is never echoed"
        );
        // Paired acceptance: the same token with a fresh, valid proof still works.
        let again = f.dpop(&token).await;
        assert_eq!(again.status.as_u16(), 200, "{name}: {again:?}");
    }

    // A duplicate header member (here `alg` twice) is refused as for access tokens.
    let jwk = f.key.public_jwk();
    let raw = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":{jwk}}}"#);
    let proof = f
        .key
        .proof_builder("POST", &url)
        .access_token(&token)
        .sign_with_raw_header(&raw)
        .expect("proof");
    assert_dpop_error(
        &f.send(Some(&scheme), &[&proof]).await,
        "invalid_dpop_proof",
        "The DPoP proof is malformed",
    );
    let raw = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{jwk}}}"#);
    let proof = f
        .key
        .proof_builder("POST", &url)
        .access_token(&token)
        .sign_with_raw_header(&raw)
        .expect("proof");
    assert_eq!(
        f.send(Some(&scheme), &[&proof]).await.status.as_u16(),
        200,
        "the same header without the duplicate"
    );

    // Missing proof, two proofs.
    assert_dpop_error(
        &f.send(Some(&scheme), &[]).await,
        "invalid_dpop_proof",
        "The request has no DPoP proof",
    );
    let (one, two) = (
        f.key.proof("POST", &url, Some(&token)).expect("proof"),
        f.key.proof("POST", &url, Some(&token)).expect("proof"),
    );
    assert_dpop_error(
        &f.send(Some(&scheme), &[&one, &two]).await,
        "invalid_dpop_proof",
        "The request has more than one DPoP header",
    );
    assert_eq!(f.send(Some(&scheme), &[&one]).await.status.as_u16(), 200);
}

#[tokio::test]
async fn a_proof_is_good_for_one_request_only() {
    let f = optional().await;
    let token = f.bound_token();
    let proof = f.key.proof("POST", &f.url(), Some(&token)).expect("proof");
    let scheme = format!("DPoP {token}");
    assert_eq!(f.send(Some(&scheme), &[&proof]).await.status.as_u16(), 200);
    let replay = f.send(Some(&scheme), &[&proof]).await;
    assert_dpop_error(
        &replay,
        "invalid_dpop_proof",
        "The DPoP proof was already used",
    );
}

#[tokio::test]
async fn htu_is_compared_after_normalization_against_the_configured_origin() {
    let f = optional().await;
    let token = f.bound_token();
    let scheme = format!("DPoP {token}");
    let port = f.served.addr.port();
    for htu in [
        format!("HTTP://127.0.0.1:{port}/mcp"),
        format!("http://127.0.0.1:{port}/mcp?query=ignored#and-fragment"),
        format!("http://127.0.0.1:{port}/./x/../mcp"),
        format!("http://127.0.0.1:{port}/%6Dcp"),
    ] {
        let proof = f.key.proof("POST", &htu, Some(&token)).expect("proof");
        let reply = f.send(Some(&scheme), &[&proof]).await;
        assert_eq!(reply.status.as_u16(), 200, "{htu}: {reply:?}");
    }
    // The Host header names another origin: the proof must still name the configured one.
    let proof = f
        .key
        .proof("POST", "http://attacker.example/mcp", Some(&token))
        .expect("proof");
    let request = Request::post(f.url())
        .header("host", "attacker.example")
        .header("authorization", &scheme)
        .header("dpop", proof)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let reply = timeout(WAIT, probe::send(request))
        .await
        .expect("in time")
        .expect("reply");
    assert_dpop_error(
        &reply,
        "invalid_dpop_proof",
        "The DPoP proof htu does not match the request URI",
    );
}

#[tokio::test]
async fn schemes_downgrades_and_challenges_in_optional_mode() {
    let f = optional().await;
    let (bound, plain) = (f.bound_token(), f.plain_token());

    // No credentials: a Bearer challenge (resource metadata, no error) and a DPoP one with its algs.
    let reply = f.send(None, &[]).await;
    assert_eq!(reply.status.as_u16(), 401);
    let challenges = reply.header_all("www-authenticate");
    assert_eq!(challenges.len(), 2, "{reply:?}");
    let bearer = std::str::from_utf8(challenges[0]).expect("ascii");
    let dpop = std::str::from_utf8(challenges[1]).expect("ascii");
    assert!(
        bearer.starts_with("Bearer resource_metadata=\"") && !bearer.contains("error="),
        "{bearer}"
    );
    assert_eq!(dpop, r#"DPoP algs="RS256 PS256 ES256 ES384 EdDSA""#);

    // The bound token as Bearer: refused (downgrade), the error in the Bearer challenge.
    let reply = f.send(Some(&format!("Bearer {bound}")), &[]).await;
    assert_eq!(reply.status.as_u16(), 401);
    let challenges = reply.header_all("www-authenticate");
    let bearer = std::str::from_utf8(challenges[0]).expect("ascii");
    assert!(
        bearer.starts_with("Bearer ") && bearer.contains(r#"error="invalid_token""#),
        "{bearer}"
    );
    assert_eq!(challenges.len(), 2);
    // …even with a valid proof beside it.
    let proof = f.key.proof("POST", &f.url(), Some(&bound)).expect("proof");
    assert_eq!(
        f.send(Some(&format!("Bearer {bound}")), &[&proof])
            .await
            .status
            .as_u16(),
        401
    );
    // An unbound token as Bearer works; as DPoP it is refused (it proves nothing about the key).
    let reply = f.send(Some(&format!("Bearer {plain}")), &[]).await;
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (200, "sub=test-user bound=false")
    );
    let reply = f.dpop(&plain).await;
    assert_dpop_error(
        &reply,
        "invalid_token",
        "The access token is not bound to a DPoP key",
    );
    assert_eq!(f.dpop(&bound).await.status.as_u16(), 200);

    // Both schemes at once: 400 invalid_request in both challenges.
    let request = Request::post(f.url())
        .header("authorization", format!("Bearer {plain}"))
        .header("authorization", format!("DPoP {bound}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let reply = timeout(WAIT, probe::send(request))
        .await
        .expect("in time")
        .expect("reply");
    assert_eq!(reply.status.as_u16(), 400);
    let challenges = reply.header_all("www-authenticate");
    assert_eq!(challenges.len(), 2, "{reply:?}");
    assert!(challenges[0].starts_with(b"Bearer ") && challenges[1].starts_with(b"DPoP "));
    for challenge in challenges {
        assert!(std::str::from_utf8(challenge)
            .expect("ascii")
            .contains(r#"error="invalid_request""#));
    }

    // CORS clients can read the challenge and the nonce header.
    let request = Request::post(f.url())
        .header("origin", "https://app.example.com")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let reply = timeout(WAIT, probe::send(request))
        .await
        .expect("in time")
        .expect("reply");
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("WWW-Authenticate, DPoP-Nonce")
    );

    // The metadata says which proof algorithms are accepted, and that DPoP is not required.
    let metadata = f.served.url("/.well-known/oauth-protected-resource/mcp");
    let request = Request::get(metadata)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let reply = timeout(WAIT, probe::send(request))
        .await
        .expect("in time")
        .expect("reply");
    let document = reply.json();
    assert_eq!(
        document["dpop_signing_alg_values_supported"],
        json!(["RS256", "PS256", "ES256", "ES384", "EdDSA"])
    );
    assert_ne!(document["dpop_bound_access_tokens_required"], json!(true));
}

#[tokio::test]
async fn required_mode_accepts_only_bound_tokens_with_proofs() {
    let dev = issuer().await;
    let validator = jwt(&dev).await;
    let config = DpopConfig::new(DpopMode::Required).algorithms([bearer_guard::Algorithm::ES256]);
    let f = start(Some(config), validator, dev).await;
    let (bound, plain) = (f.bound_token(), f.plain_token());
    assert_eq!(f.dpop(&bound).await.status.as_u16(), 200);

    // No credentials: only a DPoP challenge, which carries the metadata URL and the algs.
    let reply = f.send(None, &[]).await;
    let challenge = reply.challenge();
    assert!(
        challenge.starts_with("DPoP resource_metadata=\"")
            && challenge.ends_with(r#"algs="ES256""#),
        "{challenge}"
    );
    assert!(!challenge.contains("error="));
    // A Bearer token, bound or not: refused with a DPoP challenge.
    for token in [&plain, &bound] {
        let reply = f.send(Some(&format!("Bearer {token}")), &[]).await;
        assert_dpop_error(
            &reply,
            "invalid_token",
            "This resource requires a DPoP-bound access token",
        );
    }
    // An EdDSA proof is outside this guard's allow-list.
    let ed = DpopKey::generate(KeyAlg::EdDsa).expect("key");
    let ed_token = f
        .dev
        .token()
        .audience(&f.url())
        .dpop_bound(&ed)
        .sign()
        .expect("sign");
    let proof = ed.proof("POST", &f.url(), Some(&ed_token)).expect("proof");
    let reply = f.send(Some(&format!("DPoP {ed_token}")), &[&proof]).await;
    assert_dpop_error(
        &reply,
        "invalid_dpop_proof",
        "The DPoP proof algorithm is not allowed",
    );

    let metadata = f.served.url("/.well-known/oauth-protected-resource/mcp");
    let request = Request::get(metadata)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let document = timeout(WAIT, probe::send(request))
        .await
        .expect("in time")
        .expect("reply")
        .json();
    assert_eq!(document["dpop_bound_access_tokens_required"], json!(true));
    assert_eq!(
        document["dpop_signing_alg_values_supported"],
        json!(["ES256"])
    );
}

#[tokio::test]
async fn every_proof_key_type_is_accepted() {
    let f = optional().await;
    for alg in [
        KeyAlg::Es256,
        KeyAlg::Es384,
        KeyAlg::EdDsa,
        KeyAlg::Ps256,
        KeyAlg::Rs256,
    ] {
        let key = DpopKey::generate(alg).expect("key");
        let token = f
            .dev
            .token()
            .audience(&f.url())
            .dpop_bound(&key)
            .sign()
            .expect("sign");
        let proof = key.proof("POST", &f.url(), Some(&token)).expect("proof");
        let reply = f.send(Some(&format!("DPoP {token}")), &[&proof]).await;
        assert_eq!(reply.status.as_u16(), 200, "{alg:?}: {reply:?}");
    }
}

#[tokio::test]
async fn a_guard_without_dpop_refuses_bound_tokens_under_either_scheme() {
    let dev = issuer().await;
    let validator = jwt(&dev).await;
    let f = start(None, validator, dev).await;
    let bound = f.bound_token();
    let reply = f.send(Some(&format!("Bearer {bound}")), &[]).await;
    assert_eq!(reply.status.as_u16(), 401);
    assert!(reply.challenge().contains(r#"error="invalid_token""#));
    let reply = f.dpop(&bound).await;
    assert_eq!(reply.status.as_u16(), 401);
    assert!(
        !reply.challenge().contains("DPoP"),
        "this guard offers no DPoP"
    );
    assert_eq!(
        f.send(Some(&format!("Bearer {}", f.plain_token())), &[])
            .await
            .status
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn one_validator_shared_by_a_dpop_guard_and_a_bearer_guard_answers_each_for_itself() {
    // The seam: the DPoP guard validates (and caches) the bound token; the bearer-only guard sharing the
    // validator must not find that answer and accept the token without a proof.
    let dev = issuer().await;
    let validator: std::sync::Arc<dyn TokenValidator> = std::sync::Arc::new(jwt(&dev).await);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let resource = format!("http://{addr}/mcp");
    let guard = |dpop: bool| {
        let mut builder = BearerAuthLayer::builder()
            .resource(&resource)
            .authorization_server(dev.issuer())
            .shared_validator(validator.clone());
        if dpop {
            builder = builder.dpop(DpopConfig::new(DpopMode::Optional));
        }
        builder.build().expect("guard")
    };
    let (with_dpop, bearer_only) = (guard(true), guard(false));
    let app = tower::steer::Steer::new(
        vec![with_dpop.layer(whoami()), bearer_only.layer(whoami())],
        |request: &Request<Incoming>, _: &[_]| {
            usize::from(request.headers().contains_key("x-bearer-only"))
        },
    );
    let served = probe::serve(listener, app).expect("serve");
    let key = DpopKey::generate(KeyAlg::Es256).expect("key");
    let token = dev
        .token()
        .audience(&resource)
        .dpop_bound(&key)
        .sign()
        .expect("sign");
    let url = served.url("/mcp");
    let proof = key.proof("POST", &url, Some(&token)).expect("proof");
    let request = Request::post(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert_eq!(
        timeout(WAIT, probe::send(request))
            .await
            .expect("t")
            .expect("r")
            .status
            .as_u16(),
        200
    );
    for scheme in ["Bearer", "DPoP"] {
        let request = Request::post(&url)
            .header("x-bearer-only", "1")
            .header("authorization", format!("{scheme} {token}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let reply = timeout(WAIT, probe::send(request))
            .await
            .expect("t")
            .expect("r");
        assert_eq!(reply.status.as_u16(), 401, "{scheme}: {reply:?}");
    }
}

#[tokio::test]
async fn introspection_answers_with_cnf_bind_opaque_tokens_to_their_key() {
    let dev = timeout(
        WAIT,
        DevIssuer::builder()
            .introspection_client("rs", "rs-secret-0123456789")
            .start(),
    )
    .await
    .expect("in time")
    .expect("issuer");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let resource = format!("http://{addr}/mcp");
    let validator = IntrospectionValidator::builder()
        .endpoint(dev.introspection_endpoint())
        .issuer(dev.issuer())
        .client_auth(ClientAuth::basic("rs", "rs-secret-0123456789"))
        .build()
        .expect("validator");
    let guard = BearerAuthLayer::builder()
        .resource(&resource)
        .authorization_server(dev.issuer())
        .validator(validator)
        .dpop(DpopConfig::new(DpopMode::Optional))
        .build()
        .expect("guard");
    let served = probe::serve(listener, guard.layer(whoami())).expect("serve");
    let f = Fixture {
        dev,
        served,
        key: DpopKey::generate(KeyAlg::Es256).expect("key"),
    };
    let opaque = f
        .dev
        .opaque_token()
        .audience(&resource)
        .dpop_bound(&f.key)
        .issue();
    let reply = f.dpop(&opaque).await;
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (200, "sub=test-user bound=true"),
        "{reply:?}"
    );
    // The same opaque token as Bearer, or with another key's proof: refused.
    assert_eq!(
        f.send(Some(&format!("Bearer {opaque}")), &[])
            .await
            .status
            .as_u16(),
        401
    );
    let other = DpopKey::generate(KeyAlg::Es256).expect("key");
    let proof = other.proof("POST", &f.url(), Some(&opaque)).expect("proof");
    let reply = f.send(Some(&format!("DPoP {opaque}")), &[&proof]).await;
    assert_dpop_error(
        &reply,
        "invalid_dpop_proof",
        "The DPoP proof key does not match the access token binding",
    );
}

#[tokio::test]
async fn server_nonces_are_required_rotate_ahead_of_expiry_and_work_on_every_replica() {
    const SECRET: &[u8] = b"a shared secret of at least 32 bytes, same on every replica";
    let dev = issuer().await;
    let config =
        || DpopConfig::new(DpopMode::Optional).server_nonces(SECRET, Duration::from_secs(2));
    let a = start(Some(config()), jwt(&dev).await, dev.clone()).await;
    let token = a.bound_token();
    let scheme = format!("DPoP {token}");

    // No nonce: 401 use_dpop_nonce, and exactly one DPoP-Nonce header to retry with.
    let reply = a.dpop(&token).await;
    assert_dpop_error(
        &reply,
        "use_dpop_nonce",
        "The DPoP proof must carry the nonce this server issued",
    );
    assert_eq!(reply.header_all("dpop-nonce").len(), 1);
    let nonce = reply.header("dpop-nonce").expect("a nonce").to_owned();
    let with_nonce = |f: &Fixture, nonce: &str| {
        f.key
            .proof_builder("POST", &f.url())
            .access_token(&token)
            .claim("nonce", json!(nonce))
            .sign()
            .expect("proof")
    };
    let reply = a.send(Some(&scheme), &[&with_nonce(&a, &nonce)]).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    // A forged nonce is refused like a missing one.
    let forged = format!("{}A", &nonce[..nonce.len() - 1]);
    let forged = if forged == nonce {
        format!("{}B", &nonce[..nonce.len() - 1])
    } else {
        forged
    };
    let reply = a.send(Some(&scheme), &[&with_nonce(&a, &forged)]).await;
    assert_dpop_error(
        &reply,
        "use_dpop_nonce",
        "The DPoP proof must carry the nonce this server issued",
    );

    // Another replica with the same secret accepts the nonce without shared state.
    let b = start(Some(config()), jwt(&a.dev).await, a.dev.clone()).await;
    let b_token = b.bound_token();
    let proof = b
        .key
        .proof_builder("POST", &b.url())
        .access_token(&b_token)
        .claim("nonce", json!(nonce))
        .sign()
        .expect("proof");
    assert_eq!(
        b.send(Some(&format!("DPoP {b_token}")), &[&proof])
            .await
            .status
            .as_u16(),
        200
    );

    // In the next window the old nonce still works once more, and the answer carries the new one.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let next_window = ((now / 2.0).floor() + 1.0) * 2.0;
    tokio::time::sleep(Duration::from_secs_f64(next_window - now + 0.05)).await;
    let reply = a.send(Some(&scheme), &[&with_nonce(&a, &nonce)]).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    let fresh = reply
        .header("dpop-nonce")
        .expect("the next nonce, ahead of expiry")
        .to_owned();
    assert_ne!(fresh, nonce);
    let reply = a.send(Some(&scheme), &[&with_nonce(&a, &fresh)]).await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(
        reply.header("dpop-nonce"),
        None,
        "a current nonce needs no successor yet"
    );
}
