use super::*;
use std::time::Duration;

fn challenger(include_granted: bool) -> Challenger {
    Challenger::new(
        "https://api.example.com/.well-known/oauth-protected-resource/mcp",
        None,
        include_granted,
        Arc::new(JsonErrorBody),
    )
}

const PRM: &str =
    "resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/mcp\"";

#[test]
fn missing_credentials_has_no_error() {
    let c = challenger(false);
    let header = c
        .challenge(&Rejection::MissingCredentials, Some("mcp:read"))
        .unwrap();
    assert_eq!(header, format!("Bearer {PRM}, scope=\"mcp:read\""));
    assert_eq!(
        c.challenge(&Rejection::MissingCredentials, None).unwrap(),
        format!("Bearer {PRM}")
    );
}

#[test]
fn sanitizes_values() {
    let c = Challenger::new(
        "https://x/a",
        Some("re\"al\\m\u{7f}"),
        false,
        Arc::new(JsonErrorBody),
    );
    let header = c
        .challenge(&Rejection::MissingCredentials, Some("a\"b c\\d é"))
        .unwrap();
    assert_eq!(
        header,
        "Bearer resource_metadata=\"https://x/a\", realm=\"realm\", scope=\"ab cd \""
    );
}

#[test]
fn insufficient_scope_lists_needed_and_optionally_granted() {
    let requirement = Requirement::all_of(["mcp:write", "offline_access"]);
    let granted = ScopeSet::parse("mcp:read offline_access").unwrap();
    let only_needed =
        challenger(false).scope_value(&Rejection::InsufficientScope, &requirement, Some(&granted));
    assert_eq!(only_needed.as_deref(), Some("mcp:write"));
    let with_granted =
        challenger(true).scope_value(&Rejection::InsufficientScope, &requirement, Some(&granted));
    assert_eq!(with_granted.as_deref(), Some("mcp:read mcp:write"));
}

#[test]
fn rendered_rejections_are_reused_only_for_deterministic_bodies() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let requirement = Requirement::all_of(["mcp:read"]);
    let c = challenger(false);
    let respond = |c: &Challenger, rejection| {
        c.respond(
            rejection,
            &requirement,
            None,
            RequestFacts::default(),
            &Detail::NONE,
        )
    };
    for rejection in [
        Rejection::MissingCredentials,
        Rejection::InvalidToken(InvalidToken::Expired),
        Rejection::InvalidRequest(MalformedRequest::MalformedToken),
    ] {
        let (a, b) = (respond(&c, rejection), respond(&c, rejection));
        assert_eq!(a.status(), b.status());
        assert_eq!(a.headers(), b.headers());
        let fresh = challenger(false).respond(
            rejection,
            &Requirement::all_of(["mcp:read"]),
            None,
            RequestFacts::default(),
            &Detail::NONE,
        );
        assert_eq!(a.headers(), fresh.headers(), "{rejection:?}");
    }
    // Another guard sharing the requirement renders its own challenge (its metadata URL differs).
    let other = Challenger::new("https://x/other", None, false, Arc::new(JsonErrorBody));
    let theirs = respond(&other, Rejection::MissingCredentials);
    assert!(theirs.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .contains("https://x/other"));

    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let counting = Challenger::new(
        "https://x/a",
        None,
        false,
        Arc::new(|_: &RejectionInfo<'_>| {
            let n = CALLS.fetch_add(1, Ordering::SeqCst);
            (
                HeaderValue::from_static("text/plain"),
                Bytes::from(n.to_string()),
            )
        }),
    );
    respond(&counting, Rejection::MissingCredentials);
    respond(&counting, Rejection::MissingCredentials);
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        2,
        "custom bodies are rendered each time"
    );
}

#[test]
fn unavailable_has_retry_after_and_no_challenge() {
    let response = challenger(false).respond(
        Rejection::Unavailable {
            reason: Unavailable::KeySet,
            retry_after: Duration::from_secs(7),
        },
        &Requirement::none(),
        None,
        RequestFacts::default(),
        &Detail::NONE,
    );
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()[RETRY_AFTER], "7");
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
}

#[test]
fn grpc_message_is_percent_encoded() {
    let response = grpc_response(
        &Rejection::InsufficientScope,
        HeaderValue::from_static("application/grpc-web+proto"),
    );
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/grpc-web+proto"
    );
    assert_eq!(response.headers()["grpc-status"], "7");
    assert_eq!(
        response.headers()["grpc-message"],
        "The access token lacks a scope this request requires"
    );
}

/// Every rejection reason, rendered fresh, again from its slot, and for a second requirement sharing
/// the slots' owner: the status, the challenge's error code and description and the body agree with a
/// table written here by kind, not derived from the code under test.
#[test]
fn every_reason_renders_its_own_status_and_error() {
    let mut rejections = vec![
        Rejection::MissingCredentials,
        Rejection::InsufficientScope,
        Rejection::Internal,
    ];
    rejections.extend(
        InvalidToken::ALL
            .iter()
            .map(|r| Rejection::InvalidToken(*r)),
    );
    rejections.extend(
        MalformedRequest::ALL
            .iter()
            .map(|r| Rejection::InvalidRequest(*r)),
    );
    #[cfg(feature = "dpop")]
    rejections.extend(
        crate::bind::dpop::ProofError::ALL
            .iter()
            .map(|why| Rejection::InvalidDpopProof(*why)),
    );
    rejections.extend(
        Unavailable::ALL
            .iter()
            .map(|reason| Rejection::Unavailable {
                reason: *reason,
                retry_after: Duration::from_secs(3),
            }),
    );
    let expected = |rejection: &Rejection| -> (u16, Option<&str>, &str, u8) {
        match rejection {
            Rejection::MissingCredentials => (401, None, "unauthorized", 16),
            Rejection::InvalidToken(_) => (401, Some("invalid_token"), "invalid_token", 16),
            Rejection::InvalidRequest(_) => (400, Some("invalid_request"), "invalid_request", 3),
            Rejection::InsufficientScope => {
                (403, Some("insufficient_scope"), "insufficient_scope", 7)
            }
            Rejection::Unavailable { .. } => (503, None, "temporarily_unavailable", 14),
            Rejection::Internal => (500, None, "server_error", 13),
            #[cfg(feature = "dpop")]
            Rejection::InvalidDpopProof(crate::bind::dpop::ProofError::NonceRequired) => {
                (401, Some("use_dpop_nonce"), "use_dpop_nonce", 16)
            }
            #[cfg(feature = "dpop")]
            Rejection::InvalidDpopProof(_) => {
                (401, Some("invalid_dpop_proof"), "invalid_dpop_proof", 16)
            }
        }
    };
    let c = challenger(false);
    let first = Requirement::all_of(["mcp:read"]);
    let second = Requirement::any_of(["mcp:write", "mcp"]);
    let grpc = {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        RequestFacts::of(&headers)
    };
    // Twice over the whole list, so the second round is served from the slots the first filled.
    for round in 0..2 {
        for rejection in &rejections {
            let (status, error, body_error, grpc_code) = expected(rejection);
            for requirement in [&first, &second] {
                let response = c.respond(
                    *rejection,
                    requirement,
                    None,
                    RequestFacts::default(),
                    &Detail::NONE,
                );
                let what = format!("{rejection:?} round {round}");
                assert_eq!(response.status().as_u16(), status, "{what}");
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .map(|v| v.to_str().unwrap().to_owned());
                match (status, error) {
                    (503 | 500, _) => assert!(challenge.is_none(), "{what}"),
                    (_, None) => {
                        let challenge = challenge.expect("a challenge");
                        assert!(!challenge.contains("error="), "{what}: {challenge}");
                    }
                    (_, Some(code)) => {
                        let challenge = challenge.expect("a challenge");
                        assert!(
                            challenge.contains(&format!("error=\"{code}\"")),
                            "{what}: {challenge}"
                        );
                        assert!(
                            challenge.contains(rejection.description()),
                            "{what}: {challenge}"
                        );
                    }
                }
                let body = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(
                    response.into_body(),
                ))
                .expect("a fixed body is ready")
                .expect("infallible")
                .to_bytes();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(body["error"], body_error, "{what}");
                assert_eq!(body["error_description"], rejection.description(), "{what}");
            }
            let response = c.respond(*rejection, &first, None, grpc.clone(), &Detail::NONE);
            assert_eq!(response.status(), 200);
            assert_eq!(
                response.headers()["grpc-status"],
                grpc_code.to_string().as_str(),
                "{rejection:?}"
            );
        }
    }
}
