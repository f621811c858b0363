//! Self-test of the development issuer (`bearer_guard::testkit`), over real loopback HTTP.
//!
//! What this file establishes:
//! - the JWKS and both metadata documents are served with the expected shape and headers, at the RFC 8414
//!   path-inserted and OpenID paths, with and without an issuer path;
//! - a token minted with a key of every `KeyAlg` verifies with `jsonwebtoken` against the served JWKS, with
//!   the issuer and audience checks on;
//! - request counters, failure injection (`Status`, `InvalidJson`, `Slow`, `Oversize`, `WrongIssuer`),
//!   key removal / default key / extra JWKs / `Cache-Control`;
//! - the attack tokens (HS256 confusion, `alg: none`, tampered payload, header overrides) look as documented;
//! - shutdown (explicit or by dropping the last handle) stops the server.
//!
//! Introspection, opaque tokens and revocation are tested in `testkit_introspection.rs`.
//!
//! Needs a `jsonwebtoken` crypto backend for verification: feature `aws-lc-rs` (default) or `rust-crypto`.
#![cfg(all(
    feature = "testkit",
    any(feature = "aws-lc-rs", feature = "rust-crypto")
))]

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bearer_guard::testkit::probe::{self, Reply};
use bearer_guard::testkit::{Behavior, DevIssuer, Endpoint, KeyAlg, TestkitError};
use bytes::Bytes;
use http_body_util::Full;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

const AUD: &str = "https://mcp.example.com/mcp";

async fn get(url: &str) -> Reply {
    let request = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .expect("request");
    probe::send(request).await.expect("HTTP exchange")
}

/// With both jsonwebtoken backends enabled (`--all-features`) one must be installed explicitly.
fn install_provider() {
    #[cfg(feature = "aws-lc-rs")]
    let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(not(feature = "aws-lc-rs"))]
    let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(provider);
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().expect("header part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json")
}

fn payload_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json")
}

fn decoding_key(jwks: &Value, kid: &str) -> DecodingKey {
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} published"));
    let jwk: Jwk = serde_json::from_value(jwk.clone()).expect("jsonwebtoken parses the JWK");
    DecodingKey::from_jwk(&jwk).expect("decoding key")
}

fn validation(issuer: &DevIssuer, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&[issuer.issuer()]);
    validation
}

fn verify(issuer: &DevIssuer, jwks: &Value, token: &str) -> jsonwebtoken::errors::Result<Value> {
    let header = header_of(token);
    let alg: Algorithm = header["alg"]
        .as_str()
        .expect("alg")
        .parse()
        .expect("known alg");
    let kid = header["kid"].as_str().expect("kid");
    jsonwebtoken::decode::<Value>(token, &decoding_key(jwks, kid), &validation(issuer, alg))
        .map(|data| data.claims)
}

#[tokio::test]
async fn serves_jwks_and_metadata_and_counts_requests() -> Result<(), TestkitError> {
    let issuer = DevIssuer::start().await?;
    let origin = format!("http://{}", issuer.addr());
    assert_eq!(issuer.issuer(), origin);
    assert_eq!(issuer.jwks_uri(), format!("{origin}/jwks"));
    assert_eq!(issuer.default_kid(), "rs256-1");

    let jwks = get(&issuer.jwks_uri()).await;
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.headers["cache-control"], "max-age=300");
    assert_eq!(jwks.headers["content-type"], "application/json");
    let doc = jwks.json();
    assert_eq!(doc, issuer.public_jwks());
    let keys = doc["keys"].as_array().expect("keys");
    let kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, ["rs256-1", "es256-1", "es384-1", "eddsa-1"]);
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none(), "no private parameters");
    }
    assert_eq!(
        (keys[0]["kty"].as_str(), keys[0]["alg"].as_str()),
        (Some("RSA"), Some("RS256"))
    );
    assert_eq!(keys[0]["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(keys[0]["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    assert_eq!(
        (keys[1]["kty"].as_str(), keys[1]["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert_eq!(
        (keys[2]["crv"].as_str(), keys[2]["alg"].as_str()),
        (Some("P-384"), Some("ES384"))
    );
    assert_eq!(
        (keys[3]["kty"].as_str(), keys[3]["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(keys[3]["alg"], "EdDSA");

    let oauth = get(&format!("{origin}/.well-known/oauth-authorization-server")).await;
    assert_eq!(oauth.status, 200);
    assert_eq!(
        issuer.oauth_metadata_uri(),
        format!("{origin}/.well-known/oauth-authorization-server")
    );
    let meta = oauth.json();
    assert_eq!(meta["issuer"], issuer.issuer());
    assert_eq!(meta["jwks_uri"], issuer.jwks_uri());
    assert_eq!(meta["token_endpoint"], format!("{origin}/token"));
    assert_eq!(
        meta["authorization_endpoint"],
        format!("{origin}/authorize")
    );
    assert_eq!(meta["response_types_supported"], json!(["code"]));
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["scopes_supported"], json!(["mcp:read", "mcp:write"]));

    let oidc = get(&format!("{origin}/.well-known/openid-configuration")).await;
    assert_eq!(oidc.status, 200);
    assert_eq!(oidc.json()["issuer"], issuer.issuer());
    assert_eq!(oidc.json()["jwks_uri"], issuer.jwks_uri());

    assert_eq!(get(&format!("{origin}/nope")).await.status, 404);
    assert_eq!(get(&format!("{origin}/token")).await.status, 501);

    assert_eq!(issuer.requests(Endpoint::Jwks), 1);
    assert_eq!(issuer.requests(Endpoint::OAuthMetadata), 1);
    assert_eq!(issuer.requests(Endpoint::OpenIdMetadata), 1);
    let _ = get(&issuer.jwks_uri()).await;
    assert_eq!(issuer.requests(Endpoint::Jwks), 2);
    issuer.reset_counts();
    assert_eq!(issuer.requests(Endpoint::Jwks), 0);
    assert_eq!(issuer.requests(Endpoint::OpenIdMetadata), 0);

    let debug = format!("{issuer:?}");
    assert!(debug.contains("rs256-1") && debug.contains(issuer.issuer()));
    Ok(())
}

#[tokio::test]
async fn tokens_of_every_alg_verify_with_jsonwebtoken() -> Result<(), TestkitError> {
    install_provider();
    let issuer = DevIssuer::builder().keys(&[]).start().await?;
    assert_eq!(issuer.default_kid(), "");
    assert!(matches!(issuer.token().sign(), Err(TestkitError::NoKey)));

    let mut kids = Vec::new();
    for alg in KeyAlg::ALL {
        kids.push((alg, issuer.add_key(alg)?));
    }
    assert_eq!(
        issuer.default_kid(),
        "rs256-1",
        "the first added key becomes the default"
    );
    let jwks = get(&issuer.jwks_uri()).await.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), KeyAlg::ALL.len());

    for (alg, kid) in &kids {
        let token = issuer
            .token()
            .key(kid)
            .audience(AUD)
            .scope("mcp:read mcp:write")
            .sign()?;
        let header = header_of(&token);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["kid"], kid.as_str());
        assert_eq!(header["typ"], "at+jwt");
        let claims = verify(&issuer, &jwks, &token)
            .unwrap_or_else(|e| panic!("{alg} token verifies: {e:?}"));
        assert_eq!(claims["sub"], "test-user");
        assert_eq!(claims["client_id"], "test-client");
        assert_eq!(claims["scope"], "mcp:read mcp:write");
        assert_eq!(claims["aud"], AUD);
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert_eq!(exp - iat, 300);

        // The same claims with the signature of a modified payload must fail.
        let tampered = issuer
            .token()
            .key(kid)
            .audience(AUD)
            .sign_with_tampered_payload()?;
        assert_eq!(payload_of(&tampered)["sub"], "attacker");
        assert!(
            verify(&issuer, &jwks, &tampered).is_err(),
            "{alg} tampered token"
        );
    }

    // Default claims: no aud unless set; audiences() writes an array; jti unique.
    let plain = issuer.token().sign()?;
    assert!(payload_of(&plain).get("aud").is_none());
    let multi = issuer.token().audiences(&[AUD]).sign()?;
    assert_eq!(payload_of(&multi)["aud"], json!([AUD]));
    assert_ne!(payload_of(&plain)["jti"], payload_of(&multi)["jti"]);
    assert!(verify(&issuer, &jwks, &multi).is_ok());

    // Claims and times the validator should reject.
    let expired = issuer.token().audience(AUD).expires_in(-120).sign()?;
    let err = verify(&issuer, &jwks, &expired).unwrap_err();
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );
    let wrong_aud = issuer.token().audience("https://other.example").sign()?;
    assert!(verify(&issuer, &jwks, &wrong_aud).is_err());
    let wrong_iss = issuer
        .token()
        .audience(AUD)
        .claim("iss", json!("https://evil.example"))
        .sign()?;
    assert!(verify(&issuer, &jwks, &wrong_iss).is_err());
    let future = issuer
        .token()
        .audience(AUD)
        .not_before(600)
        .issued_at(600)
        .sign()?;
    assert_eq!(payload_of(&future)["nbf"], payload_of(&future)["iat"]);
    let mut strict = validation(&issuer, Algorithm::RS256);
    strict.validate_nbf = true;
    let err = jsonwebtoken::decode::<Value>(&future, &decoding_key(&jwks, "rs256-1"), &strict)
        .unwrap_err();
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::ImmatureSignature
    );
    let no_exp = issuer.token().audience(AUD).remove_claim("exp").sign()?;
    assert!(payload_of(&no_exp).get("exp").is_none());
    assert!(verify(&issuer, &jwks, &no_exp).is_err());
    Ok(())
}

#[tokio::test]
async fn behaviors_inject_failures() -> Result<(), TestkitError> {
    let issuer = DevIssuer::builder().keys(&[KeyAlg::Es256]).start().await?;
    let origin = format!("http://{}", issuer.addr());
    let oauth = format!("{origin}/.well-known/oauth-authorization-server");
    let oidc = format!("{origin}/.well-known/openid-configuration");

    issuer.set_behavior(Endpoint::Jwks, Behavior::Status(500));
    let failed = get(&issuer.jwks_uri()).await;
    assert_eq!(failed.status, 500);
    assert!(failed.headers.get("cache-control").is_none());

    issuer.set_behavior(Endpoint::OAuthMetadata, Behavior::InvalidJson);
    let invalid = get(&oauth).await;
    assert_eq!(invalid.status, 200);
    assert_eq!(invalid.headers["content-type"], "application/json");
    assert!(serde_json::from_slice::<Value>(&invalid.body).is_err());

    issuer.set_behavior(
        Endpoint::OpenIdMetadata,
        Behavior::Slow(Duration::from_millis(300)),
    );
    let started = Instant::now();
    let slow = get(&oidc).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(slow.status, 200);
    assert_eq!(slow.json()["issuer"], issuer.issuer());

    issuer.set_behavior(Endpoint::Jwks, Behavior::Oversize(200_000));
    let big = get(&issuer.jwks_uri()).await;
    assert_eq!(big.status, 200);
    assert_eq!(big.body.len(), 200_000);
    assert_eq!(big.json()["keys"].as_array().map(Vec::len), Some(1));

    issuer.set_behavior(Endpoint::OAuthMetadata, Behavior::WrongIssuer);
    let wrong = get(&oauth).await.json();
    assert_ne!(wrong["issuer"], issuer.issuer());
    assert!(wrong["issuer"].as_str().is_some());
    issuer.set_behavior(Endpoint::Jwks, Behavior::WrongIssuer);
    assert_eq!(get(&issuer.jwks_uri()).await.json(), issuer.public_jwks());

    issuer.set_behavior(Endpoint::Jwks, Behavior::Normal);
    issuer.set_behavior(Endpoint::OAuthMetadata, Behavior::Normal);
    issuer.set_behavior(Endpoint::OpenIdMetadata, Behavior::Normal);
    assert_eq!(get(&oauth).await.json()["issuer"], issuer.issuer());

    assert_eq!(issuer.requests(Endpoint::Jwks), 3);
    assert_eq!(issuer.requests(Endpoint::OAuthMetadata), 3);
    assert_eq!(issuer.requests(Endpoint::OpenIdMetadata), 1);
    Ok(())
}

#[tokio::test]
async fn keys_can_be_removed_replaced_and_decorated() -> Result<(), TestkitError> {
    install_provider();
    let issuer = DevIssuer::builder()
        .keys(&[KeyAlg::Es256, KeyAlg::EdDsa])
        .start()
        .await?;
    assert_eq!(issuer.default_kid(), "es256-1");

    let kid = issuer.add_key(KeyAlg::Es256)?;
    assert_eq!(kid, "es256-2");
    let jwks = get(&issuer.jwks_uri()).await.json();
    let token = issuer.token().key(&kid).audience(AUD).sign()?;
    assert!(verify(&issuer, &jwks, &token).is_ok());

    assert!(issuer.remove_key(&kid));
    assert!(!issuer.remove_key(&kid));
    assert!(!issuer.remove_key("never-existed"));
    let after = get(&issuer.jwks_uri()).await.json();
    assert!(after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["kid"] != kid.as_str()));
    // Signing with a removed key still works (the validator must then refuse it).
    let orphan = issuer.token().key(&kid).sign()?;
    assert_eq!(header_of(&orphan)["kid"], kid.as_str());
    assert!(matches!(
        issuer.token().key("missing").sign(),
        Err(TestkitError::UnknownKey(_))
    ));

    assert!(issuer.set_default_key("eddsa-1"));
    assert!(!issuer.set_default_key("missing"));
    assert_eq!(issuer.default_kid(), "eddsa-1");
    assert_eq!(header_of(&issuer.token().sign()?)["alg"], "EdDSA");

    issuer.add_key_with("no-alg", KeyAlg::Es384, false)?;
    let jwk = issuer.public_jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "no-alg")
        .cloned()
        .expect("published");
    assert!(jwk.get("alg").is_none());
    assert_eq!(jwk["crv"], "P-384");
    assert_eq!(
        header_of(&issuer.token().key("no-alg").sign()?)["alg"],
        "ES384"
    );

    issuer.publish_extra_jwk(json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}));
    issuer.publish_extra_jwk(json!("garbage"));
    let served = get(&issuer.jwks_uri()).await.json();
    let keys = served["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 5);
    assert_eq!(keys[4], "garbage");
    issuer.clear_extra_jwks();
    assert_eq!(issuer.public_jwks()["keys"].as_array().unwrap().len(), 3);

    issuer.set_jwks_cache_control(None);
    assert!(get(&issuer.jwks_uri())
        .await
        .headers
        .get("cache-control")
        .is_none());
    issuer.set_jwks_cache_control(Some("no-store".to_owned()));
    assert_eq!(
        get(&issuer.jwks_uri()).await.headers["cache-control"],
        "no-store"
    );
    Ok(())
}

#[tokio::test]
async fn issuer_path_uses_path_insertion() -> Result<(), TestkitError> {
    let issuer = DevIssuer::builder()
        .issuer_path("/realms/demo")
        .keys(&[KeyAlg::EdDsa])
        .start()
        .await?;
    let origin = format!("http://{}", issuer.addr());
    assert_eq!(issuer.issuer(), format!("{origin}/realms/demo"));
    assert_eq!(issuer.jwks_uri(), format!("{origin}/jwks"));

    for url in [
        format!("{origin}/.well-known/oauth-authorization-server/realms/demo"),
        format!("{origin}/.well-known/openid-configuration/realms/demo"),
        format!("{origin}/realms/demo/.well-known/openid-configuration"),
    ] {
        let fetched = get(&url).await;
        assert_eq!(fetched.status, 200, "{url}");
        assert_eq!(fetched.json()["issuer"], issuer.issuer(), "{url}");
    }
    assert_eq!(
        issuer.oauth_metadata_uri(),
        format!("{origin}/.well-known/oauth-authorization-server/realms/demo")
    );
    assert_eq!(
        issuer.openid_metadata_uri(),
        format!("{origin}/realms/demo/.well-known/openid-configuration")
    );
    assert_eq!(
        get(&format!("{origin}/.well-known/oauth-authorization-server"))
            .await
            .status,
        404
    );
    assert_eq!(
        get(&format!("{origin}/.well-known/openid-configuration"))
            .await
            .status,
        404
    );
    assert_eq!(issuer.requests(Endpoint::OAuthMetadata), 1);
    assert_eq!(issuer.requests(Endpoint::OpenIdMetadata), 2);
    assert_eq!(payload_of(&issuer.token().sign()?)["iss"], issuer.issuer());

    // Trailing slash: kept in the issuer, dropped from the well-known paths; metadata can be switched off.
    let slashed = DevIssuer::builder()
        .issuer_path("realms/demo")
        .trailing_slash(true)
        .serve_openid_metadata(false)
        .keys(&[KeyAlg::EdDsa])
        .start()
        .await?;
    let origin = format!("http://{}", slashed.addr());
    assert_eq!(slashed.issuer(), format!("{origin}/realms/demo/"));
    let meta = get(&format!(
        "{origin}/.well-known/oauth-authorization-server/realms/demo"
    ))
    .await;
    assert_eq!(meta.json()["issuer"], slashed.issuer());
    assert_eq!(
        get(&format!(
            "{origin}/realms/demo/.well-known/openid-configuration"
        ))
        .await
        .status,
        404
    );
    assert_eq!(
        payload_of(&slashed.token().sign()?)["iss"],
        slashed.issuer()
    );

    let root_slash = DevIssuer::builder()
        .trailing_slash(true)
        .serve_oauth_metadata(false)
        .keys(&[])
        .start()
        .await?;
    let origin = format!("http://{}", root_slash.addr());
    assert_eq!(root_slash.issuer(), format!("{origin}/"));
    assert_eq!(
        get(&format!("{origin}/.well-known/openid-configuration"))
            .await
            .json()["issuer"],
        root_slash.issuer()
    );
    assert_eq!(
        get(&format!("{origin}/.well-known/oauth-authorization-server"))
            .await
            .status,
        404
    );
    Ok(())
}

#[tokio::test]
async fn attack_tokens_have_the_documented_shape() -> Result<(), TestkitError> {
    install_provider();
    let issuer = DevIssuer::builder()
        .keys(&[KeyAlg::Es256, KeyAlg::Rs256])
        .start()
        .await?;

    // HS256 confusion: HMAC keyed with the (non-default) RSA key's SubjectPublicKeyInfo DER.
    let confused = issuer.token().audience(AUD).sign_hs256_with_public_key()?;
    let header = header_of(&confused);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], "rs256-1");
    let der = issuer.public_key_der("rs256-1").expect("der");
    let validation = validation(&issuer, Algorithm::HS256);
    let claims =
        jsonwebtoken::decode::<Value>(&confused, &DecodingKey::from_secret(&der), &validation)
            .expect("HMAC over the SPKI DER")
            .claims;
    assert_eq!(claims["sub"], "test-user");
    assert!(matches!(
        issuer.token().key("es256-1").sign_hs256_with_public_key(),
        Err(TestkitError::NoRsaKey)
    ));
    let no_rsa = DevIssuer::builder().keys(&[KeyAlg::EdDsa]).start().await?;
    assert!(matches!(
        no_rsa.token().sign_hs256_with_public_key(),
        Err(TestkitError::NoRsaKey)
    ));
    let secret = issuer.token().sign_hs256_with_secret(b"shared")?;
    assert_eq!(header_of(&secret)["alg"], "HS256");

    let unsigned = issuer.token().unsigned()?;
    assert_eq!(header_of(&unsigned)["alg"], "none");
    assert!(unsigned.ends_with('.'));
    assert_eq!(unsigned.split('.').count(), 3);

    // Header overrides.
    let lying = issuer
        .token()
        .header_alg("ES384")
        .header_kid(None)
        .typ(None)
        .header_param("crit", json!(["exp"]))
        .header_param("jku", json!("https://evil.example/jwks"))
        .sign()?;
    let header = header_of(&lying);
    assert_eq!(header["alg"], "ES384");
    assert!(header.get("kid").is_none());
    assert!(header.get("typ").is_none());
    assert_eq!(header["crit"], json!(["exp"]));
    assert_eq!(header["jku"], "https://evil.example/jwks");
    let other_kid = issuer
        .token()
        .header_kid(Some("rs256-1"))
        .typ(Some("JWT"))
        .sign()?;
    assert_eq!(header_of(&other_kid)["kid"], "rs256-1");
    assert_eq!(
        header_of(&other_kid)["alg"],
        "ES256",
        "still signed by the default ES256 key"
    );
    assert_eq!(header_of(&other_kid)["typ"], "JWT");
    Ok(())
}

async fn refused(url: &str) -> bool {
    for _ in 0..50 {
        let request = http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .expect("request");
        if probe::send(request).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() -> Result<(), TestkitError> {
    let issuer = DevIssuer::builder().keys(&[KeyAlg::EdDsa]).start().await?;
    let jwks_uri = issuer.jwks_uri();
    assert_eq!(get(&jwks_uri).await.status, 200);
    issuer.shutdown();
    assert!(refused(&jwks_uri).await);
    assert!(issuer.token().sign().is_ok(), "minting still works");

    let issuer = DevIssuer::builder().keys(&[]).start().await?;
    let clone = issuer.clone();
    let jwks_uri = issuer.jwks_uri();
    drop(issuer);
    assert_eq!(get(&jwks_uri).await.status, 200, "a clone keeps it running");
    drop(clone);
    assert!(refused(&jwks_uri).await);
    Ok(())
}
