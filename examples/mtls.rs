//! Certificate-bound access tokens (RFC 8705) over real mutual TLS: a tokio-rustls acceptor asks for a client
//! certificate, puts the one the client presented into every request of the connection as a
//! [`ClientCertificate`], and the guard compares it with the token's `cnf["x5t#S256"]`. Offline: the
//! certificates (a CA, the server's, two clients') are generated at start-up with rcgen, and the tokens come
//! from the test kit's development issuer.
//!
//! ```text
//! cargo run --example mtls            # any free port on 127.0.0.1
//! PORT=3443 cargo run --example mtls  # a fixed port
//! ```
//!
//! It writes the CA and the client certificates to a temporary directory, prints `curl` commands (the bound
//! token with its certificate: 200; with the other client's certificate or none: 401), then serves until
//! Ctrl-C. `tests/mtls.rs` runs [`serve`] and makes those requests over TLS.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bearer_guard::bind::ClientCertificate;
use bearer_guard::testkit::DevIssuer;
use bearer_guard::{AccessToken, BearerAuthLayer, JwtValidator};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::{Layer, ServiceExt};

/// How long a client may take to finish the TLS handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate with its private key (PKCS #8 DER).
pub struct Credential {
    /// The certificate (DER).
    pub certificate: CertificateDer<'static>,
    /// Its private key.
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl Credential {
    /// The certificate, PEM-encoded (for curl's `--cert`).
    pub fn certificate_pem(&self) -> String {
        pem("CERTIFICATE", self.certificate.as_ref())
    }

    /// The private key, PEM-encoded (for curl's `--key`).
    pub fn key_pem(&self) -> String {
        pem("PRIVATE KEY", self.key.secret_pkcs8_der())
    }
}

/// A development PKI: one CA, a server certificate for `127.0.0.1` and `localhost`, and two client
/// certificates (`alice`, to which the example binds a token, and `mallory`, trusted by the server too).
pub struct Pki {
    /// The CA certificate (DER): the server trusts client certificates it signed, clients trust the server's.
    pub ca: CertificateDer<'static>,
    /// The server's certificate and key.
    pub server: Credential,
    /// The client certificate the token is bound to.
    pub alice: Credential,
    /// Another client certificate of the same CA.
    pub mallory: Credential,
}

impl Pki {
    /// Generates every key and certificate (ECDSA P-256).
    pub fn generate() -> Result<Self, rcgen::Error> {
        // Every certificate gets its own subject name: OpenSSL (curl) takes a certificate whose subject equals
        // its issuer's for a self-signed one.
        let named =
            |names: Vec<String>, common_name: &str| -> Result<CertificateParams, rcgen::Error> {
                let mut params = CertificateParams::new(names)?;
                params.distinguished_name = DistinguishedName::new();
                params
                    .distinguished_name
                    .push(DnType::CommonName, common_name);
                Ok(params)
            };
        let mut ca_params = named(Vec::new(), "bearer-guard example CA")?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let issue = |names: Vec<String>| -> Result<Credential, rcgen::Error> {
            let key = KeyPair::generate()?;
            let common_name = names.last().cloned().unwrap_or_default();
            let certificate = named(names, &common_name)?.signed_by(&key, &ca)?;
            Ok(Credential {
                certificate: certificate.der().clone(),
                key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            })
        };
        Ok(Self {
            server: issue(vec!["127.0.0.1".into(), "localhost".into()])?,
            alice: issue(vec!["alice.client.example".into()])?,
            mallory: issue(vec!["mallory.client.example".into()])?,
            ca: ca.der().clone(),
        })
    }

    /// The CA certificate, PEM-encoded (for curl's `--cacert`).
    pub fn ca_pem(&self) -> String {
        pem("CERTIFICATE", self.ca.as_ref())
    }

    /// A rustls server configuration that asks every client for a certificate signed by the CA and accepts
    /// connections without one too (the guard then refuses certificate-bound tokens on them, and a service can
    /// still accept plain bearer tokens). Use `.build()` without `allow_unauthenticated()` to require one.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, Box<dyn std::error::Error>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone())?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![self.server.certificate.clone()],
                PrivateKeyDer::Pkcs8(self.server.key.clone_key()),
            )?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// The application: says who called and with which certificate binding.
async fn notes(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(token) = request.extensions().get::<AccessToken>() else {
        // Only reachable if the guard was not applied: fail closed.
        let mut response = Response::new(Full::new(Bytes::from_static(b"internal error\n")));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return Ok(response);
    };
    let bound = token.confirmation().certificate_sha256().is_some();
    let text = format!(
        "notes of {} (certificate-bound token: {bound})\n",
        token.subject().unwrap_or("?")
    );
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// Serves the guarded notes service over TLS on `listener` until `shutdown` completes: `resource` is the
/// public URL of the service, `issuer` the issuer whose JWTs it trusts.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    resource: &str,
    issuer: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let guard = BearerAuthLayer::builder()
        .resource(resource)
        .authorization_server(issuer)
        .validator(JwtValidator::builder(issuer).build()?)
        .certificate_bound_tokens(true)
        .build()?;
    let guarded = guard.layer(tower::service_fn(notes));
    let acceptor = TlsAcceptor::from(tls);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("accept failed: {error}");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let guarded = guarded.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => return eprintln!("TLS handshake failed: {error}"),
                Err(_) => return eprintln!("TLS handshake timed out"),
            };
            // The certificate the client proved it holds the key of, verified by rustls against the CA. It is
            // the only source of a `ClientCertificate`: never a header a client could write.
            let certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|der| ClientCertificate::from_der(der.as_ref()));
            let service = tower::service_fn(move |mut request: Request<Incoming>| {
                if let Some(certificate) = &certificate {
                    request.extensions_mut().insert(certificate.clone());
                }
                guarded.clone().oneshot(request)
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection =
                builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
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
    let base = format!("https://{}", listener.local_addr()?);
    let resource = format!("{base}/notes");
    let pki = Pki::generate()?;
    let dir = std::env::temp_dir().join(format!("bearer-guard-mtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("ca.pem"), pki.ca_pem())?;
    for (name, credential) in [("alice", &pki.alice), ("mallory", &pki.mallory)] {
        std::fs::write(
            dir.join(format!("{name}.pem")),
            credential.certificate_pem(),
        )?;
        std::fs::write(dir.join(format!("{name}-key.pem")), credential.key_pem())?;
    }
    // Development only: a local issuer with its own keys. Use your IdP's issuer string in production.
    let issuer = DevIssuer::start().await?;
    let token = issuer
        .token()
        .subject("alice")
        .audience(&resource)
        .certificate_bound(pki.alice.certificate.as_ref())
        .sign()?;
    let d = dir.display();
    println!(
        "bearer-guard mTLS example on {base}, trusting {}",
        issuer.issuer()
    );
    println!("export TOKEN={token}   # bound to {d}/alice.pem\n");
    let curl = format!("curl -i --cacert {d}/ca.pem -H \"Authorization: Bearer $TOKEN\"");
    println!("{curl} --cert {d}/alice.pem --key {d}/alice-key.pem {resource}      # 200");
    println!("{curl} --cert {d}/mallory.pem --key {d}/mallory-key.pem {resource}  # 401");
    println!("{curl} {resource}                                                 # 401\n");
    println!("Ctrl-C to stop.");
    let tls = pki.server_config()?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, tls, &resource, issuer.issuer(), shutdown).await
}
