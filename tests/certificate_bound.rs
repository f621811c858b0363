//! Certificate-bound tokens (RFC 8705 `cnf["x5t#S256"]`) against a loopback issuer: the guard compares the
//! binding with the `ClientCertificate` the TLS acceptor put into the request extensions. (The requests are
//! handed to the guard in process, with the extension a TLS acceptor would add.)

use std::convert::Infallible;
use std::time::Duration;

use bearer_guard::bind::ClientCertificate;
use bearer_guard::testkit::probe::Reply;
use bearer_guard::testkit::{DevIssuer, KeyAlg};
use bearer_guard::{BearerAuthLayer, JwtValidator};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tokio::time::timeout;
use tower::{Layer, ServiceExt};

const WAIT: Duration = Duration::from_secs(10);
const RESOURCE: &str = "https://api.example.com/mcp";
const CERTIFICATE: &[u8] =
    b"DER bytes of the client certificate (any bytes: only their SHA-256 is compared)";

async fn setup(accept: bool) -> (DevIssuer, BearerAuthLayer) {
    let dev = timeout(WAIT, DevIssuer::builder().keys(&[KeyAlg::Es256]).start())
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
    let guard = BearerAuthLayer::builder()
        .resource(RESOURCE)
        .authorization_server(dev.issuer())
        .validator(validator)
        .certificate_bound_tokens(accept)
        .build()
        .expect("guard");
    (dev, guard)
}

async fn call(guard: &BearerAuthLayer, token: &str, certificate: Option<&[u8]>) -> Reply {
    let ok = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let mut request = Request::post(RESOURCE)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    if let Some(der) = certificate {
        request
            .extensions_mut()
            .insert(ClientCertificate::from_der(der));
    }
    let response = guard.layer(ok).oneshot(request).await.expect("infallible");
    Reply::collect(response).await.expect("body")
}

#[tokio::test]
async fn a_bound_token_works_only_with_its_certificate() {
    let (dev, guard) = setup(true).await;
    let bound = dev
        .token()
        .audience(RESOURCE)
        .certificate_bound(CERTIFICATE)
        .sign()
        .expect("sign");
    assert_eq!(
        call(&guard, &bound, Some(CERTIFICATE))
            .await
            .status
            .as_u16(),
        200
    );
    for certificate in [None, Some(&b"another certificate"[..])] {
        let reply = call(&guard, &bound, certificate).await;
        assert_eq!(reply.status.as_u16(), 401, "{reply:?}");
        let challenge = reply.challenge();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
        assert!(
            challenge.contains("bound to another client certificate"),
            "{challenge}"
        );
    }
    // An unbound token needs no certificate.
    let plain = dev.token().audience(RESOURCE).sign().expect("sign");
    assert_eq!(call(&guard, &plain, None).await.status.as_u16(), 200);
    // A malformed thumbprint is refused whatever the certificate.
    let junk = dev
        .token()
        .audience(RESOURCE)
        .claim("cnf", serde_json::json!({"x5t#S256": "short"}))
        .sign()
        .expect("sign");
    assert_eq!(
        call(&guard, &junk, Some(CERTIFICATE)).await.status.as_u16(),
        401
    );
    // The metadata says so.
    let metadata = Request::get("https://api.example.com/.well-known/oauth-protected-resource/mcp")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let ok = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let reply = Reply::collect(guard.layer(ok).oneshot(metadata).await.expect("infallible"))
        .await
        .expect("body");
    assert_eq!(
        reply.json()["tls_client_certificate_bound_access_tokens"],
        serde_json::json!(true)
    );
}

#[tokio::test]
async fn a_guard_that_does_not_check_certificates_refuses_bound_tokens() {
    let (dev, guard) = setup(false).await;
    let bound = dev
        .token()
        .audience(RESOURCE)
        .certificate_bound(CERTIFICATE)
        .sign()
        .expect("sign");
    let reply = call(&guard, &bound, Some(CERTIFICATE)).await;
    assert_eq!(
        reply.status.as_u16(),
        401,
        "even with the right certificate: nobody checks it"
    );
    let plain = dev.token().audience(RESOURCE).sign().expect("sign");
    assert_eq!(
        call(&guard, &plain, Some(CERTIFICATE))
            .await
            .status
            .as_u16(),
        200
    );
}
