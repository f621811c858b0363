#![no_main]
//! MCP bodies, with optional `Mcp-Method` / `Mcp-Name` headers, in one chunk and split into several,
//! through the combined guard (`mcp_guard`) and through the MCP layer placed inside the guard. The token
//! holds `mcp:read`; the protected operations need `mcp:write`.
//!
//! Oracles: no panic; the two placements and the two chunkings decide the same; and a body that reaches
//! the MCP server arrives unchanged and, under **every** reading another JSON decoder might make of it
//! (duplicate keys resolved first-wins or last-wins, keys matched case-insensitively or not), holds no
//! protected operation.
//!
//! Input: `flags`, then the `Mcp-Method` value and the `Mcp-Name` value (each a length byte and bytes),
//! then the body. `flags` bit 0: send `Mcp-Method`; bit 1: send `Mcp-Name`; bits 2–4: number of chunks − 1.

use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use bearer_guard::mcp::McpScopes;
use bearer_guard::{BearerAuthLayer, Requirement, StaticToken, StaticValidator};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use libfuzzer_sys::fuzz_target;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use tower::{Layer, ServiceExt};

const TOKEN: &str = "mcp-fuzz-reader-token-0123456789";

struct Fixture {
    guard: BearerAuthLayer,
    scopes: McpScopes,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let validator = StaticValidator::builder()
            .token(TOKEN, StaticToken::new("reader").scopes(["mcp:read"]))
            .build()
            .expect("validator");
        let guard = BearerAuthLayer::builder()
            .resource("https://mcp.example.com/mcp")
            .authorization_server("https://auth.example.com")
            .validator(validator)
            .require(Requirement::all_of(["mcp:read"]))
            .build()
            .expect("guard");
        let write = Requirement::all_of(["mcp:write"]);
        let scopes = McpScopes::new()
            .tool("write", write.clone())
            .resource("secret://x", write.clone())
            .prompt("draft", write.clone())
            .method("admin/reset", write)
            .max_body_bytes(64 * 1024);
        Fixture {
            guard,
            scopes,
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime"),
        }
    })
}

/// A request body that can be streamed in chunks and rebuilt from bytes.
struct Chunked(BoxBody<Bytes, Infallible>);

impl From<Bytes> for Chunked {
    fn from(bytes: Bytes) -> Self {
        Self(Full::new(bytes).boxed())
    }
}

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }
}

/// What the MCP server received, if anything.
type Seen = Arc<Mutex<Option<Bytes>>>;

fn run(
    fx: &Fixture,
    combined: bool,
    headers: &[(&str, &[u8])],
    body: &[u8],
    chunks: usize,
) -> (u16, Option<Bytes>) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let inner = tower::service_fn(move |request: Request<Chunked>| {
        let record = record.clone();
        async move {
            let bytes = request
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            *record.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    let size = body.len().div_ceil(chunks).max(1);
    let frames: Vec<Result<http_body::Frame<Bytes>, Infallible>> = body
        .chunks(size)
        .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let mut request = Request::post("/mcp")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Chunked(StreamBody::new(Frames(frames.into_iter())).boxed()))
        .expect("request");
    let status = fx.runtime.block_on(async {
        let response = if combined {
            let service = fx
                .guard
                .mcp_guard(fx.scopes.clone())
                .expect("mcp guard")
                .layer(inner);
            service.oneshot(request).await.expect("infallible").status()
        } else {
            let mcp = fx.guard.mcp_layer(fx.scopes.clone()).expect("mcp layer");
            let service = fx.guard.layer(mcp.layer(inner));
            service.oneshot(request).await.expect("infallible").status()
        };
        response.as_u16()
    });
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
    (status, seen)
}

/// The chunks of a body, as a stream.
struct Frames(std::vec::IntoIter<Result<http_body::Frame<Bytes>, Infallible>>);

impl futures_core::Stream for Frames {
    type Item = Result<http_body::Frame<Bytes>, Infallible>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

/// A reading of JSON: duplicate keys first-wins or last-wins, keys case-folded or not.
#[derive(Clone, Copy)]
struct Reading {
    first_wins: bool,
    fold: bool,
}

fn fold_key(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            c => c,
        })
        .collect::<String>()
        .to_lowercase()
}

impl<'de> DeserializeSeed<'de> for Reading {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reading {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let key = if self.fold { fold_key(&key) } else { key };
            let value = map.next_value_seed(self)?;
            if !(self.first_wins && object.contains_key(&key)) {
                object.insert(key, value);
            }
        }
        Ok(Value::Object(object))
    }
}

/// Does this message (as one reading sees it) ask for a protected operation?
fn is_protected(message: &Value, fold: bool) -> bool {
    let key = |k: &str| if fold { fold_key(k) } else { k.to_owned() };
    let method = message.get(key("method")).and_then(Value::as_str);
    let params = message.get(key("params"));
    let param = |name: &str| {
        params
            .and_then(|p| p.get(key(name)))
            .and_then(Value::as_str)
    };
    match method {
        Some("tools/call") => param("name") == Some("write"),
        Some("resources/read") => param("uri") == Some("secret://x"),
        Some("prompts/get") => param("name") == Some("draft"),
        Some("admin/reset") => true,
        _ => false,
    }
}

fn split_field(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = data.split_first()?;
    let len = usize::from(len).min(rest.len());
    Some(rest.split_at(len))
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((method, rest)) = split_field(rest) else {
        return;
    };
    let Some((name, body)) = split_field(rest) else {
        return;
    };
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    if flags & 1 != 0 && http::HeaderValue::from_bytes(method).is_ok() {
        headers.push(("mcp-method", method));
    }
    if flags & 2 != 0 && http::HeaderValue::from_bytes(name).is_ok() {
        headers.push(("mcp-name", name));
    }
    let chunks = usize::from((flags >> 2) & 7) + 1;

    let one = run(fx, true, &headers, body, 1);
    let split = run(fx, true, &headers, body, chunks);
    let separate = run(fx, false, &headers, body, chunks);
    assert_eq!(one.0, split.0, "one chunk and {chunks} chunks disagree");
    assert_eq!(
        one.0, separate.0,
        "the combined guard and the separate layers disagree"
    );
    let Some(seen) = one.1 else { return };
    assert_eq!(
        &seen[..],
        body,
        "the MCP server got other bytes than were sent"
    );
    for first_wins in [false, true] {
        for fold in [false, true] {
            let reading = Reading { first_wins, fold };
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            let Ok(value) = reading.deserialize(&mut deserializer) else {
                continue;
            };
            let messages = match &value {
                Value::Array(items) => items.iter().collect::<Vec<_>>(),
                other => vec![other],
            };
            for message in messages {
                assert!(
                    !is_protected(message, fold),
                    "a protected operation passed (first_wins={first_wins}, fold={fold})"
                );
            }
        }
    }
});
