#![no_main]
//! Introspection answers from a real endpoint on 127.0.0.1: the fuzz input is the status (first byte) and
//! the body the endpoint answers with. Oracles: no panic; a 503 never lets the request through; an
//! accepted token came from a 2xx JSON object with `"active": true` (the JSON boolean), an `aud` naming
//! the resource, no `cnf`, a `token_type` (if any) of Bearer, and an `exp` (if any) not past.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use bearer_guard::{
    BearerToken, ClientAuth, IntrospectionValidator, TokenValidator, ValidationContext,
};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const RESOURCE: &str = "https://mcp.example.com/mcp";

/// What the endpoint answers with next.
static ANSWER: Mutex<(u16, Vec<u8>)> = Mutex::new((200, Vec::new()));

struct Fixture {
    validator: IntrospectionValidator,
    context: ValidationContext,
    runtime: tokio::runtime::Runtime,
}

async fn answer(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = ANSWER.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let addr: SocketAddr = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(
                                TokioIo::new(stream),
                                hyper::service::service_fn(answer),
                            )
                            .await;
                    });
                }
            });
            addr
        });
        let validator = runtime.block_on(async {
            IntrospectionValidator::builder()
                .endpoint(format!("http://{addr}/introspect"))
                .client_auth(ClientAuth::basic("rs", "secret"))
                .no_cache()
                .build()
                .expect("validator")
        });
        Fixture {
            validator,
            context: ValidationContext::new(RESOURCE),
            runtime,
        }
    })
}

fn aud_names_resource(answer: &serde_json::Map<String, Value>) -> bool {
    match answer.get("aud") {
        Some(Value::String(aud)) => aud == RESOURCE,
        Some(Value::Array(auds)) => auds.iter().any(|a| a == RESOURCE),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let Some((&status, body)) = data.split_first() else {
        return;
    };
    let status = match status % 8 {
        0..=4 => 200,
        5 => 400,
        6 => 401,
        _ => 500,
    };
    *ANSWER.lock().unwrap_or_else(|p| p.into_inner()) = (status, body.to_vec());
    let token = BearerToken::new("opaque-fuzz-token-0123456789").expect("b64token");
    let result = fx
        .runtime
        .block_on(fx.validator.validate(&token, &fx.context));
    if result.is_ok() {
        assert_eq!(status, 200, "accepted on a non-2xx answer");
        let answer: serde_json::Map<String, Value> =
            serde_json::from_slice(body).expect("accepted: the answer was a JSON object");
        assert_eq!(answer.get("active"), Some(&Value::Bool(true)));
        assert!(aud_names_resource(&answer), "accepted without our audience");
        assert!(
            !answer.contains_key("cnf"),
            "a sender-constrained token was accepted"
        );
        if let Some(t) = answer.get("token_type") {
            assert!(t.as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")));
        }
        if let Some(exp) = answer.get("exp").and_then(Value::as_f64) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            assert!(exp + 60.0 > now, "accepted past exp");
        }
    }
});
