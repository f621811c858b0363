//! The guard's log output never contains a token, and says what an operator needs: each rejection's
//! stable kind and the validator's detail.
//!
//! A test-local `tracing::Subscriber` records every event and span field (as `name=value` text) into a
//! `Vec<String>`. It is installed as the global default, so it sees events from every thread; this file
//! holds a single test so nothing else in the process races for that global.

mod common;

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bearer_guard::testkit::DevIssuer;
use bearer_guard::{
    AccessToken, BearerAuthLayer, BearerToken, JwtValidator, Requirement, TokenValidator,
    Unavailable, Validation, ValidationContext, ValidationError,
};
use common::*;
use http::header::AUTHORIZATION;
use http::{Method, StatusCode};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Collects every event and span field as text.
struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next_id: AtomicU64,
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

impl Capture {
    fn push(&self, line: Line) {
        self.lines.lock().expect("log lock").push(line.0);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = Line(format!("span {}:", span.metadata().name()));
        span.record(&mut line);
        self.push(line);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, values: &Record<'_>) {
        let mut line = Line("record:".to_owned());
        values.record(&mut line);
        self.push(line);
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut line = Line(format!("{} {}:", metadata.level(), metadata.target()));
        event.record(&mut line);
        self.push(line);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

const ASYNC_OK: &str = "LogAsyncOk-Tt1Rr2Ee3Ww4Qq5-secret";
const ASYNC_DOWN: &str = "LogAsyncDown-Pp1Oo2Ii3Uu4Yy-secret";
const ASYNC_BUG: &str = "LogAsyncBug-Mm1Nn2Bb3Vv4Cc-secret";

struct SlowValidator;

impl TokenValidator for SlowValidator {
    fn validate(&self, token: &BearerToken, _context: &ValidationContext) -> Validation {
        let token = token.clone();
        Validation::pending(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            match token.as_str() {
                ASYNC_OK => Ok(AccessToken::builder().subject("async-user").build()),
                ASYNC_DOWN => Err(ValidationError::unavailable(Unavailable::KeySet)),
                ASYNC_BUG => Err(ValidationError::Internal("validator bug: state 42")),
                _ => Err(bearer_guard::InvalidToken::Unknown.into()),
            }
        })
    }
}

#[tokio::test]
async fn no_log_line_contains_a_token() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    tracing::subscriber::set_global_default(Capture {
        lines: lines.clone(),
        next_id: AtomicU64::new(1),
    })
    .expect("the only global subscriber in this test binary");

    let server = start(|b| b.require(Requirement::all_of(["mcp:write"]))).await;
    let slow = start(|b| b.validator(SlowValidator)).await;
    let oversize = format!("LogOversize-{}", "Z".repeat(9000));
    let cases: Vec<(&TestServer, Vec<String>, StatusCode)> = vec![
        (&server, vec![], StatusCode::UNAUTHORIZED),
        (
            &server,
            vec![format!("Bearer {UNKNOWN}")],
            StatusCode::UNAUTHORIZED,
        ),
        (
            &server,
            vec![format!("Bearer {ALICE},x")],
            StatusCode::BAD_REQUEST,
        ),
        (
            &server,
            vec![format!("Bearer {ALICE}"), format!("Bearer {WRITER}")],
            StatusCode::BAD_REQUEST,
        ),
        (
            &server,
            vec![format!("Bearer {oversize}")],
            StatusCode::BAD_REQUEST,
        ),
        (
            &server,
            vec![format!("Bearer {ALICE}")],
            StatusCode::FORBIDDEN,
        ),
        (&server, vec![format!("Bearer {WRITER}")], StatusCode::OK),
        (&slow, vec![format!("Bearer {ASYNC_OK}")], StatusCode::OK),
        (
            &slow,
            vec![format!("Bearer {ASYNC_DOWN}")],
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            &slow,
            vec![format!("Bearer {ASYNC_BUG}")],
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            &slow,
            vec![format!("Bearer {UNKNOWN}")],
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (target, authorizations, status) in &cases {
        let mut builder = target.request(Method::POST, "/mcp");
        for value in authorizations {
            builder = builder.header(AUTHORIZATION, value);
        }
        let reply = target.send(builder).await;
        assert_eq!(reply.status, *status);
    }

    // JWTs from a development issuer: the rejection line carries the stable kind and the validator's detail
    // (the audience expected and the one found, the unknown kid); the client sees neither.
    let dev = DevIssuer::builder().start().await.expect("dev issuer");
    let (listener, addr) = bind().await;
    let resource = format!("http://{addr}/mcp");
    let jwt = JwtValidator::builder(dev.issuer())
        .build()
        .expect("validator");
    let jwt_server = serve(
        listener,
        BearerAuthLayer::builder()
            .resource(&resource)
            .authorization_server(dev.issuer())
            .validator(jwt)
            .require(Requirement::all_of(["mcp:write"]))
            .build()
            .expect("guard"),
    );
    let wrong_audience = dev
        .token()
        .audience("https://elsewhere.example.com/mcp")
        .sign()
        .expect("token");
    let unknown_kid = dev
        .token()
        .audience(&resource)
        .header_kid(Some("retired-2019"))
        .sign()
        .expect("token");
    let reader = dev.token().audience(&resource).sign().expect("token");
    let mut jwts = vec![];
    for (token, status, hidden) in [
        (&wrong_audience, 401, "elsewhere.example.com"),
        (&unknown_kid, 401, "retired-2019"),
        (&reader, 403, "granted"),
    ] {
        let reply = jwt_server
            .call_with_token(Method::POST, "/mcp", token)
            .await;
        assert_eq!(reply.status.as_u16(), status);
        assert!(
            !reply.contains(hidden),
            "the detail reached the client: {reply:?}"
        );
        jwts.push(token.clone());
    }

    let lines = lines.lock().expect("log lock").clone();
    let rejected = |kind: &str| {
        lines
            .iter()
            .find(|l| l.contains("bearer-guard rejected a request") && l.contains(kind))
            .unwrap_or_else(|| panic!("no rejection line with {kind}: {lines:#?}"))
            .clone()
    };
    let line = rejected("kind=wrong_audience");
    assert!(
        line.contains(&format!(
            r#"aud: expected "{resource}", found "https://elsewhere.example.com/mcp""#
        )),
        "{line}"
    );
    assert!(rejected("kind=unknown_key").contains(r#"kid "retired-2019""#));
    let line = rejected("kind=insufficient_scope");
    assert!(
        line.contains("required=mcp:write") && line.contains("granted=mcp:read"),
        "{line}"
    );
    assert!(rejected("kind=missing_credentials").contains("detail=none"));
    assert!(rejected("kind=token_too_large").contains("status=400"));
    assert!(rejected("kind=key_set_unavailable").contains("status=503"));
    for line in &lines {
        for token in &jwts {
            let signature = token.rsplit('.').next().expect("signature");
            assert!(!line.contains(signature), "a JWT in log line {line:?}");
        }
    }

    // The capture works: the guard's own events are there, with their fields.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("bearer-guard rejected a request") && l.contains("status=403")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("bearer-guard validator failed")
                && l.contains("validator bug: state 42")),
        "{lines:#?}"
    );
    let mut secrets: Vec<&str> = ALL_TOKENS.to_vec();
    secrets.extend([ASYNC_OK, ASYNC_DOWN, ASYNC_BUG, "LogOversize"]);
    for line in &lines {
        for secret in &secrets {
            assert!(!line.contains(secret), "token in log line {line:?}");
        }
        assert!(
            !line.contains("-secret"),
            "token fragment in log line {line:?}"
        );
    }
}
