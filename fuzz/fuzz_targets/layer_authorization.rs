#![no_main]
//! The layer with arbitrary `Authorization` header(s). Oracle: a request that reaches the inner service
//! carried exactly one `Authorization` header, `Bearer` (any case), one or more spaces (RFC 6750 §2.1
//! `1*SP`) and the valid token, nothing else; and the inner service did not see it (stripped).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bearer_guard::{BearerAuthLayer, StaticToken, StaticValidator};
use http::{HeaderValue, Request, Response};
use libfuzzer_sys::fuzz_target;
use tower::{Layer, ServiceExt};

const TOKEN: &str = "fuzz-valid-token-0123456789abcdef";

fn layer() -> &'static BearerAuthLayer {
    static LAYER: OnceLock<BearerAuthLayer> = OnceLock::new();
    LAYER.get_or_init(|| {
        let validator = StaticValidator::builder()
            .token(TOKEN, StaticToken::new("fuzzer").scopes(["mcp:read"]))
            .build()
            .expect("validator");
        BearerAuthLayer::builder()
            .resource("https://mcp.example.com/mcp")
            .authorization_server("https://auth.example.com")
            .validator(validator)
            .build()
            .expect("layer")
    })
}

fuzz_target!(|data: &[u8]| {
    // Header values separated by 0x00 (a byte no header value may hold).
    let values: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    let mut request = Request::get("/mcp");
    let mut sent = Vec::new();
    for value in values.iter().take(4) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            sent.push(value.clone());
            request = request.header(http::header::AUTHORIZATION, value);
        }
    }
    let Ok(request) = request.body(()) else {
        return;
    };
    let reached = Arc::new(AtomicBool::new(false));
    let saw_authorization = Arc::new(AtomicBool::new(false));
    let (r, s) = (reached.clone(), saw_authorization.clone());
    let inner = tower::service_fn(move |request: Request<()>| {
        r.store(true, Ordering::SeqCst);
        s.store(
            request.headers().contains_key(http::header::AUTHORIZATION),
            Ordering::SeqCst,
        );
        async { Ok::<_, Infallible>(Response::new(String::new())) }
    });
    let response =
        futures_now(layer().layer(inner).oneshot(request)).expect("decided synchronously");
    let status = response.expect("infallible").status();
    if reached.load(Ordering::SeqCst) {
        assert_eq!(status, 200);
        assert_eq!(
            sent.len(),
            1,
            "passed with {} Authorization headers",
            sent.len()
        );
        let value = sent[0].as_bytes();
        assert!(
            value.len() > 7 && value[..6].eq_ignore_ascii_case(b"bearer"),
            "scheme"
        );
        let after = &value[6..];
        let token = after
            .iter()
            .position(|&b| b != b' ')
            .map_or(&b""[..], |i| &after[i..]);
        assert!(
            after.len() > token.len(),
            "at least one space after the scheme"
        );
        assert_eq!(token, TOKEN.as_bytes(), "the valid token, nothing else");
        assert!(
            !saw_authorization.load(Ordering::SeqCst),
            "stripped upstream"
        );
    } else {
        assert!(matches!(status.as_u16(), 400 | 401), "status {status}");
    }
});

/// Polls a future that must be ready at once (static tokens decide synchronously).
fn futures_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}
