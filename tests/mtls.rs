//! Certificate-bound tokens (RFC 8705) over real mutual TLS on loopback: `examples/mtls.rs` serves the guarded
//! service behind a tokio-rustls acceptor with certificates generated here, and a rustls client connects with
//! the bound certificate (200), another certificate of the same CA (401 `invalid_token`), or none (401), over
//! HTTP/1.1 and HTTP/2.

#[allow(dead_code)]
#[path = "../examples/mtls.rs"]
mod mtls_example;

use std::sync::Arc;
use std::time::Duration;

use bearer_guard::testkit::DevIssuer;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mtls_example::{Credential, Pki};
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

const WAIT: Duration = Duration::from_secs(10);

struct Server {
    pki: Pki,
    resource: String,
    addr: std::net::SocketAddr,
    issuer: DevIssuer,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

async fn start() -> Server {
    let pki = Pki::generate().expect("certificates");
    let issuer = timeout(WAIT, DevIssuer::start())
        .await
        .expect("in time")
        .expect("issuer");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let resource = format!("https://{addr}/notes");
    let tls = pki.server_config().expect("server config");
    let (stop, stopped) = oneshot::channel::<()>();
    let (issuer_url, served_resource) = (issuer.issuer().to_owned(), resource.clone());
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        mtls_example::serve(listener, tls, &served_resource, &issuer_url, shutdown)
            .await
            .expect("serve");
    });
    Server {
        pki,
        resource,
        addr,
        issuer,
        stop: Some(stop),
        task,
    }
}

fn client_config(pki: &Pki, certificate: Option<&Credential>, h2: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).expect("CA");
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match certificate {
        Some(credential) => builder
            .with_client_auth_cert(
                vec![credential.certificate.clone()],
                PrivateKeyDer::Pkcs8(credential.key.clone_key()),
            )
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![if h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    Arc::new(config)
}

/// One request over a fresh TLS connection: status, `WWW-Authenticate`, body.
async fn call(
    server: &Server,
    certificate: Option<&Credential>,
    token: &str,
    h2: bool,
) -> (StatusCode, String, String) {
    let connector = TlsConnector::from(client_config(&server.pki, certificate, h2));
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let tls = timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("in time")
        .expect("TLS handshake");
    let request = Request::get(&server.resource)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = if h2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        timeout(WAIT, sender.send_request(request)).await
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("h1 handshake");
        tokio::spawn(connection);
        timeout(WAIT, sender.send_request(request)).await
    }
    .expect("in time")
    .expect("response");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        challenge,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn a_certificate_bound_token_works_only_over_a_connection_with_its_certificate() {
    let server = start().await;
    let bound = server
        .issuer
        .token()
        .subject("alice")
        .audience(&server.resource)
        .certificate_bound(server.pki.alice.certificate.as_ref())
        .sign()
        .expect("sign");
    for h2 in [false, true] {
        let (status, _, body) = call(&server, Some(&server.pki.alice), &bound, h2).await;
        assert_eq!(status, StatusCode::OK, "h2={h2}: {body}");
        assert_eq!(body, "notes of alice (certificate-bound token: true)\n");

        for certificate in [Some(&server.pki.mallory), None] {
            let (status, challenge, body) = call(&server, certificate, &bound, h2).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "h2={h2}: {body}");
            assert!(
                challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
                "{challenge}"
            );
            assert!(!challenge.contains(&bound) && !body.contains(&bound));
        }
    }
}

#[tokio::test]
async fn an_unbound_token_works_with_or_without_a_client_certificate() {
    let server = start().await;
    let plain = server
        .issuer
        .token()
        .subject("bob")
        .audience(&server.resource)
        .sign()
        .expect("sign");
    for certificate in [Some(&server.pki.mallory), None] {
        let (status, _, body) = call(&server, certificate, &plain, false).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, "notes of bob (certificate-bound token: false)\n");
    }
}

#[tokio::test]
async fn a_certificate_of_another_ca_fails_the_handshake() {
    let server = start().await;
    let stranger = Pki::generate().expect("other PKI");
    let connector = TlsConnector::from(client_config(&server.pki, Some(&stranger.alice), false));
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    // TLS 1.3: the client learns of the refusal on its first read, after the handshake returns.
    let outcome = async {
        let tls = connector.connect(name, tcp).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        let request = Request::get(&server.resource)
            .body(Full::new(Bytes::new()))
            .map_err(std::io::Error::other)?;
        sender
            .send_request(request)
            .await
            .map_err(std::io::Error::other)
    };
    let outcome = timeout(WAIT, outcome).await.expect("in time");
    assert!(outcome.is_err(), "a stranger's certificate was accepted");
}

#[tokio::test]
async fn the_metadata_says_tokens_are_certificate_bound() {
    let server = start().await;
    let connector = TlsConnector::from(client_config(&server.pki, None, false));
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let tls = connector
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("TLS");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let url = format!(
        "https://{}/.well-known/oauth-protected-resource/notes",
        server.addr
    );
    let response = sender
        .send_request(
            Request::get(url)
                .body(Full::new(Bytes::new()))
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let metadata: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(metadata["resource"], server.resource.as_str());
}
