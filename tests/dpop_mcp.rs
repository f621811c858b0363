//! DPoP through the MCP guard: the `content_digest` proof claim (MCP DPoP extension draft) compared with the
//! body the MCP layer read, and the DPoP challenges of the MCP layer's own refusals. A real axum server on
//! loopback behind `guard.mcp_guard(…)`, JWTs from a loopback development issuer, proofs from the test kit.

use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use bearer_guard::bind::dpop::{DpopConfig, DpopMode};
use bearer_guard::mcp::McpScopes;
use bearer_guard::testkit::probe::{self, Reply};
use bearer_guard::testkit::{DevIssuer, DpopKey, KeyAlg, ProofBuilder};
use bearer_guard::{BearerAuthLayer, JwtValidator, Requirement};
use http::Request;
use http_body_util::Full;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);
const LIST: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
const WRITE: &[u8] =
    br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_note","arguments":{}}}"#;

struct Fixture {
    dev: DevIssuer,
    url: String,
    key: DpopKey,
    _stop: oneshot::Sender<()>,
}

impl Fixture {
    fn token(&self, scope: &str) -> String {
        (self.dev.token().audience(&self.url).scope(scope))
            .dpop_bound(&self.key)
            .sign()
            .expect("sign")
    }

    fn proof(&self) -> ProofBuilder<'_> {
        self.key.proof_builder("POST", &self.url)
    }

    async fn send(&self, method: &str, auth: &str, proof: Option<String>, body: &[u8]) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(&self.url)
            .header("authorization", auth)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("request");
        timeout(WAIT, probe::send(request))
            .await
            .expect("in time")
            .expect("answer")
    }

    /// `DPoP <token>` with a proof made by `build` from a valid one for `token`.
    async fn dpop(
        &self,
        token: &str,
        body: &[u8],
        build: impl Fn(ProofBuilder<'_>) -> ProofBuilder<'_>,
    ) -> Reply {
        let proof = build(self.proof().access_token(token))
            .sign()
            .expect("proof");
        self.send("POST", &format!("DPoP {token}"), Some(proof), body)
            .await
    }
}

async fn start(require_digest: bool) -> Fixture {
    let dev = timeout(WAIT, DevIssuer::builder().keys(&[KeyAlg::Rs256]).start())
        .await
        .expect("in time")
        .expect("issuer");
    let validator = JwtValidator::builder(dev.issuer())
        .build()
        .expect("validator");
    timeout(WAIT, validator.ready())
        .await
        .expect("in time")
        .expect("keys");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let guard = BearerAuthLayer::builder()
        .resource(&url)
        .authorization_server(dev.issuer())
        .validator(validator)
        .dpop(DpopConfig::new(DpopMode::Optional))
        .build()
        .expect("guard");
    let layer = guard
        .mcp_guard(
            McpScopes::new()
                .tool("write_note", Requirement::all_of(["mcp:write"]))
                .require_content_digest(require_digest),
        )
        .expect("mcp guard");
    // The MCP endpoint echoes the body it was given: the same bytes the digest was compared with.
    let app = Router::new()
        .route(
            "/mcp",
            post(|body: Bytes| async move { body }).get(|| async { "stream" }),
        )
        .layer(layer);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Fixture {
        dev,
        url,
        key: DpopKey::generate(KeyAlg::Es256).expect("key"),
        _stop: stop,
    }
}

fn assert_digest_refused(reply: &Reply) {
    assert_eq!(reply.status.as_u16(), 401, "{reply:?}");
    let challenge = reply.challenge();
    assert!(
        challenge.starts_with("DPoP ")
            && challenge.contains(r#"error="invalid_dpop_proof""#)
            && challenge.contains("content_digest")
            && challenge.contains("algs=\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn a_content_digest_must_be_the_digest_of_the_body_the_mcp_layer_read() {
    let f = start(false).await;
    let token = f.token("mcp:read");

    let reply = f.dpop(&token, LIST, |p| p.content_digest(LIST)).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    assert_eq!(
        reply.body.as_ref(),
        LIST,
        "the service got the digested bytes"
    );
    // Not required here: a proof without the claim is accepted.
    let reply = f.dpop(&token, LIST, |p| p).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");

    // A proof made for another body (a captured proof with a swapped body).
    let other = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    assert_digest_refused(&f.dpop(&token, LIST, |p| p.content_digest(other)).await);
    // The digest is checked before the scopes: a body the proof does not cover gets no 403 that describes it.
    assert_digest_refused(&f.dpop(&token, WRITE, |p| p.content_digest(LIST)).await);
    let reply = f.dpop(&token, WRITE, |p| p.content_digest(WRITE)).await;
    assert_eq!(reply.status.as_u16(), 403, "{reply:?}");
    assert!(
        reply.challenge().starts_with("DPoP "),
        "{}",
        reply.challenge()
    );

    // Malformed claims are refused by the guard, before the body is read.
    let encoded = {
        let good = bearer_guard::bind::dpop::ContentDigest::of(LIST).to_string();
        good[9..good.len() - 1].to_owned()
    };
    for bad in [
        json!(format!("sha-512=:{encoded}:")),
        json!(format!("sha-256={encoded}")),
        json!(format!("sha-256=:{}:", &encoded[..20])),
        json!(42),
        json!({ "sha-256": encoded }),
    ] {
        let reply = f
            .dpop(&token, LIST, |p| p.claim("content_digest", bad.clone()))
            .await;
        assert_digest_refused(&reply);
    }
}

#[tokio::test]
async fn a_required_content_digest_is_refused_when_missing_and_only_for_dpop_posts() {
    let f = start(true).await;
    let token = f.token("mcp:read");
    assert_digest_refused(&f.dpop(&token, LIST, |p| p).await);
    let reply = f.dpop(&token, LIST, |p| p.content_digest(LIST)).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    // An empty body has a digest too.
    let reply = f.dpop(&token, b"", |p| p.content_digest(b"")).await;
    assert_eq!(
        reply.status.as_u16(),
        400,
        "an empty body is no JSON-RPC: {reply:?}"
    );

    // Not concerned: a GET (no body), and an unbound Bearer token at an optional-DPoP guard.
    let proof = f
        .key
        .proof_builder("GET", &f.url)
        .access_token(&token)
        .sign()
        .expect("proof");
    let reply = f
        .send("GET", &format!("DPoP {token}"), Some(proof), b"")
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
    let plain = f
        .dev
        .token()
        .audience(&f.url)
        .scope("mcp:read")
        .sign()
        .expect("sign");
    let reply = f.send("POST", &format!("Bearer {plain}"), None, LIST).await;
    assert_eq!(reply.status.as_u16(), 200, "{reply:?}");
}
