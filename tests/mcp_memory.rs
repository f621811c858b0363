//! The memory one MCP request may cost: at most about twice its body, whatever its shape. A counting
//! global allocator records the peak heap while a guarded MCP layer decides requests of 4 MiB (a batch
//! of tiny messages, a message whose `id` is a huge array, a body in many chunks, a large legitimate
//! argument). One test function, so no other test allocates in this process meanwhile.
#![cfg(feature = "mcp")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

use bearer_guard::mcp::McpScopes;
use bearer_guard::scope::Requirement;
use bearer_guard::{BearerAuthLayer, StaticToken, StaticValidator};
use bytes::Bytes;
use futures_util::stream;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use tower::{Layer, ServiceExt};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const TOKEN: &str = "McpMemoryTok-7Hq2Lz9Xw1Vb4N";
const BODY_BYTES: usize = 4 * 1024 * 1024;

/// Runs `request` through guard + MCP layer; the status and the peak heap above what was allocated before.
async fn measure<B>(request: Request<B>) -> (StatusCode, usize)
where
    B: http_body::Body<Data = Bytes> + From<Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let validator = StaticValidator::builder()
        .token(TOKEN, StaticToken::new("u").scopes(["mcp:read"]))
        .build()
        .unwrap();
    let guard = BearerAuthLayer::builder()
        .resource("https://mcp.example.com/mcp")
        .authorization_server("https://auth.example.com")
        .validator(validator)
        .build()
        .unwrap();
    let mcp = guard
        .mcp_layer(
            McpScopes::new()
                .tool("echo", Requirement::all_of(["mcp:read"]))
                .max_body_bytes(BODY_BYTES + 1024),
        )
        .unwrap();
    let inner = tower::service_fn(|request: Request<B>| async move {
        drop(request);
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    let service = guard.layer(mcp.layer(inner));
    let baseline = CURRENT.load(Ordering::SeqCst);
    PEAK.store(baseline, Ordering::SeqCst);
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    (status, PEAK.load(Ordering::SeqCst) - baseline)
}

fn post<B>(body: B) -> Request<B> {
    Request::post("/mcp")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

/// `[` + items joined by `,` + `]`, padded with spaces to exactly `BODY_BYTES`.
fn array_of(item: &str) -> Vec<u8> {
    let mut body = b"[".to_vec();
    while body.len() + item.len() + 2 < BODY_BYTES {
        if body.len() > 1 {
            body.push(b',');
        }
        body.extend_from_slice(item.as_bytes());
    }
    body.push(b']');
    body.resize(BODY_BYTES, b' ');
    body
}

#[tokio::test(flavor = "current_thread")]
async fn one_request_costs_at_most_about_twice_its_body() {
    let bound = 2 * BODY_BYTES;
    let mut checks = Vec::new();

    // A batch of ~290 000 tiny messages: refused at the first member past the cap.
    let batch = Bytes::from(array_of(r#"{"method":"a"}"#));
    checks.push((
        "tiny batch",
        measure(post(Full::new(batch.clone()))).await,
        StatusCode::BAD_REQUEST,
    ));

    // One message whose `id` is an array of two million numbers: read, not kept.
    let numbers = vec!["1"; (BODY_BYTES - 64) / 2].join(",");
    let huge_id = format!(r#"{{"jsonrpc":"2.0","method":"tools/list","id":[{numbers}]}}"#);
    checks.push((
        "huge id",
        measure(post(Full::new(Bytes::from(huge_id)))).await,
        StatusCode::OK,
    ));

    // A large legitimate argument: borrowed from the body, not copied.
    let text = "x".repeat(BODY_BYTES - 200);
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
    );
    checks.push((
        "large argument",
        measure(post(Full::new(Bytes::from(call.clone())))).await,
        StatusCode::OK,
    ));

    // The same in 64 KiB chunks: joined once.
    let chunks: Vec<Result<http_body::Frame<Bytes>, Infallible>> = Bytes::from(call)
        .chunks(64 * 1024)
        .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let chunked = BodyExt::boxed(StreamBody::new(stream::iter(chunks)));
    let request = post(ChunkedBody(chunked));
    checks.push(("chunked", measure(request).await, StatusCode::OK));

    for (what, (status, peak), expected) in checks {
        eprintln!("{what}: {status}, peak {peak} bytes above baseline");
        assert_eq!(status, expected, "{what}");
        assert!(
            peak <= bound,
            "{what}: peak {peak} bytes above baseline for a {BODY_BYTES}-byte body (bound {bound})"
        );
    }
}

/// A boxed streaming body that can also be rebuilt from bytes (what the MCP layer hands on).
struct ChunkedBody(http_body_util::combinators::BoxBody<Bytes, Infallible>);

impl From<Bytes> for ChunkedBody {
    fn from(bytes: Bytes) -> Self {
        Self(BodyExt::boxed(Full::new(bytes)))
    }
}

impl http_body::Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }
}
