use super::*;

#[test]
fn basic_credentials_are_form_encoded_before_base64() {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    let auth = ClientAuth::basic("client:id é", "sec:ret ü+");
    let AuthKind::Header(value) = &auth.0 else {
        panic!()
    };
    let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
    let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
    assert_eq!(decoded, "client%3Aid+%C3%A9:sec%3Aret+%C3%BC%2B");
    assert!(value.is_sensitive());
    assert!(!format!("{auth:?}").contains("sec"));
}

#[tokio::test]
async fn a_cancelled_lone_caller_leaves_no_inflight_entry() {
    // An endpoint that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let v = IntrospectionValidator::builder()
        .endpoint(format!("http://{addr}/introspect"))
        .audience("https://rs.example.com/mcp")
        .build()
        .unwrap();
    let context = ValidationContext::new("https://rs.example.com/mcp");
    for i in 0..10 {
        let token = BearerToken::new(&format!("abandoned-token-{i}")).unwrap();
        let cancelled =
            tokio::time::timeout(Duration::from_millis(50), v.validate(&token, &context)).await;
        assert!(cancelled.is_err(), "the caller gave up");
    }
    assert_eq!(v.inner.inflight.len(), 0);
}

#[test]
fn build_refuses_insecure_or_missing_endpoints() {
    assert!(IntrospectionValidator::builder().build().is_err());
    assert!(IntrospectionValidator::builder()
        .endpoint("http://as.example.com/introspect")
        .build()
        .is_err());
    assert!(IntrospectionValidator::builder()
        .issuer("http://as.example.com")
        .build()
        .is_err());
    assert!(IntrospectionValidator::builder()
        .endpoint("https://as.example.com/introspect")
        .client_auth(ClientAuth::bearer("bad\ntoken"))
        .build()
        .is_err());
    assert!(IntrospectionValidator::builder()
        .endpoint("https://as.example.com/introspect")
        .max_concurrent_calls(0)
        .build()
        .is_err());
}
