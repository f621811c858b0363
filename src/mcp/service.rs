//! The MCP layer and service: collecting a `POST` body (bounded), deciding, and calling the inner service
//! with the same bytes.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{json_rpc_error, too_large, McpShared, PARSE_ERROR};
use crate::body::{FixedBody, ResponseBody};
use crate::layer::{take_ready, BearerAuth, BearerAuthLayer};
use crate::token::AccessToken;

/// At most this much is reserved ahead of the bytes that arrived, whatever the announced length.
const PREALLOCATE_MAX_BYTES: usize = 64 * 1024;

/// The guard and the MCP layer as one, made by [`BearerAuthLayer::mcp_guard`]: use it instead of the
/// guard. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct McpGuardLayer {
    pub(super) guard: BearerAuthLayer,
    pub(super) mcp: McpScopeLayer,
}

impl<S> Layer<S> for McpGuardLayer {
    type Service = BearerAuth<McpScope<S>>;

    fn layer(&self, inner: S) -> Self::Service {
        self.guard.layer(self.mcp.layer(inner))
    }
}

/// The layer made by [`BearerAuthLayer::mcp_layer`]. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct McpScopeLayer {
    pub(super) shared: Arc<McpShared>,
}

impl fmt::Debug for McpScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpScopeLayer")
            .field("scopes", &self.shared.scopes)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for McpScopeLayer {
    type Service = McpScope<S>;

    fn layer(&self, inner: S) -> McpScope<S> {
        McpScope {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`McpScopeLayer`]: checks the scopes of each JSON-RPC message, then calls the
/// inner service with the same body bytes.
#[derive(Clone)]
pub struct McpScope<S> {
    inner: S,
    shared: Arc<McpShared>,
}

impl<S> McpScope<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for McpScope<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpScope")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for McpScope<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    B: Body<Data = Bytes> + From<Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = McpResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = &self.shared;
        let (parts, body) = request.into_parts();
        if parts.method != Method::POST {
            return match shared.authorize_fallback(&parts) {
                Ok(()) => McpResponseFuture::call(
                    take_ready(&mut self.inner),
                    Request::from_parts(parts, body),
                ),
                Err(response) => McpResponseFuture::done(response),
            };
        }
        if parts.extensions.get::<AccessToken>().is_none() {
            return McpResponseFuture::done(shared.missing_token(&parts));
        }
        let limit = shared.scopes.max_body_bytes;
        let announced = body.size_hint().lower();
        if announced > limit as u64 {
            return McpResponseFuture::done(too_large());
        }
        McpResponseFuture {
            state: State::Collecting {
                body,
                buffer: Buffer::new(limit, announced as usize),
                pending: Some(Pending {
                    service: take_ready(&mut self.inner),
                    parts,
                    shared: self.shared.clone(),
                }),
            },
        }
    }
}

/// The body collected so far: one chunk kept as is, or several copied into one buffer.
struct Buffer {
    first: Option<Bytes>,
    joined: Option<BytesMut>,
    len: usize,
    limit: usize,
    /// The announced length (capped by the limit), to size the joined buffer once.
    announced: usize,
}

impl Buffer {
    fn new(limit: usize, announced: usize) -> Self {
        Self {
            first: None,
            joined: None,
            len: 0,
            limit,
            announced,
        }
    }

    /// Adds a chunk; `false` when the limit would be exceeded.
    fn push(&mut self, data: Bytes) -> bool {
        if data.is_empty() {
            return true;
        }
        let len = self.len.saturating_add(data.len());
        if len > self.limit {
            return false;
        }
        self.len = len;
        if let Some(joined) = &mut self.joined {
            joined.extend_from_slice(&data);
        } else if let Some(first) = self.first.take() {
            // Sized once from the announced length, but never reserved beyond what arrived plus
            // PREALLOCATE_MAX_BYTES: a lying `Content-Length` does not buy a large allocation.
            let capacity = self
                .announced
                .min(len.saturating_add(PREALLOCATE_MAX_BYTES));
            let mut joined = BytesMut::with_capacity(capacity.max(len));
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&data);
            self.joined = Some(joined);
        } else {
            self.first = Some(data);
        }
        true
    }

    fn into_bytes(self) -> Bytes {
        match self.joined {
            Some(joined) => joined.freeze(),
            None => self.first.unwrap_or_default(),
        }
    }
}

/// A `POST` waiting for its body, with the service that was made ready for it.
struct Pending<S> {
    service: S,
    parts: Parts,
    shared: Arc<McpShared>,
}

pin_project! {
    /// The future returned by [`McpScope`]: collecting the body, the layer's own answer, or the inner
    /// service's response future.
    pub struct McpResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Done { response: Option<Response<FixedBody>> },
        Collecting { #[pin] body: B, buffer: Buffer, pending: Option<Pending<S>> },
        Calling { #[pin] future: S::Future },
    }
}

impl<S, B> McpResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn done(response: Response<FixedBody>) -> Self {
        Self {
            state: State::Done {
                response: Some(response),
            },
        }
    }

    fn call(mut service: S, request: Request<B>) -> Self {
        Self {
            state: State::Calling {
                future: service.call(request),
            },
        }
    }
}

impl<S, B> fmt::Debug for McpResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Done { .. } => "done",
            State::Collecting { .. } => "collecting",
            State::Calling { .. } => "calling",
        };
        f.debug_struct("McpResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, B, ResBody> Future for McpResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    B: Body<Data = Bytes> + From<Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Done { response } => {
                    let response = response.take().unwrap_or_else(polled_after_completion);
                    return Poll::Ready(Ok(response.map(ResponseBody::guard)));
                }
                StateProj::Collecting {
                    mut body,
                    buffer,
                    pending,
                } => {
                    let rejected = loop {
                        match ready!(body.as_mut().poll_frame(cx)) {
                            Some(Ok(frame)) => {
                                // Trailers are dropped: the inner service gets a plain body.
                                if let Ok(data) = frame.into_data() {
                                    if !buffer.push(data) {
                                        break Some(too_large());
                                    }
                                }
                            }
                            Some(Err(error)) => {
                                let error: Box<dyn StdError + Send + Sync> = error.into();
                                break Some(if is_length_limit(&*error) {
                                    too_large()
                                } else {
                                    json_rpc_error(
                                        StatusCode::BAD_REQUEST,
                                        PARSE_ERROR,
                                        "Parse error: the request body could not be read",
                                        None,
                                    )
                                });
                            }
                            None => break None,
                        }
                    };
                    let next = match (rejected, pending.take()) {
                        (Some(response), _) => State::Done {
                            response: Some(response),
                        },
                        (None, None) => State::Done {
                            response: Some(polled_after_completion()),
                        },
                        (None, Some(mut pending)) => {
                            let bytes = std::mem::replace(buffer, Buffer::new(0, 0)).into_bytes();
                            match pending.shared.decide(&pending.parts, &bytes) {
                                Ok(()) => State::Calling {
                                    future: pending
                                        .service
                                        .call(Request::from_parts(pending.parts, B::from(bytes))),
                                },
                                Err(response) => State::Done {
                                    response: Some(response),
                                },
                            }
                        }
                    };
                    this.state.set(next);
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
            }
        }
    }
}

/// Was the body cut short by a length limit (`http_body_util::Limited`, e.g. inside an `axum::Error`)?
fn is_length_limit(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// Polling a finished future is a caller bug; answer 500 rather than panic (and never let a request through).
fn polled_after_completion() -> Response<FixedBody> {
    let mut response = Response::new(FixedBody::empty());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_keeps_one_chunk_and_joins_several() {
        let chunk = Bytes::from_static(b"{\"method\":\"x\"}");
        let mut one = Buffer::new(64, 0);
        assert!(one.push(chunk.clone()));
        assert!(one.push(Bytes::new()));
        let bytes = one.into_bytes();
        assert_eq!(bytes, chunk);
        assert_eq!(bytes.as_ptr(), chunk.as_ptr(), "one chunk is not copied");

        let mut several = Buffer::new(10, 6);
        for part in ["ab", "cd", "ef"] {
            assert!(several.push(Bytes::from_static(part.as_bytes())));
        }
        assert_eq!(several.len, 6);
        assert!(
            several.push(Bytes::from_static(b"ghij")),
            "exactly at the limit"
        );
        assert!(!several.push(Bytes::from_static(b"k")), "over the limit");
        assert_eq!(several.into_bytes(), Bytes::from_static(b"abcdefghij"));
        assert_eq!(Buffer::new(10, 0).into_bytes(), Bytes::new());
    }

    #[test]
    fn a_lying_length_does_not_buy_an_allocation() {
        let mut buffer = Buffer::new(usize::MAX, usize::MAX);
        assert!(buffer.push(Bytes::from_static(b"ab")));
        assert!(buffer.push(Bytes::from_static(b"cd")));
        let joined = buffer.joined.as_ref().expect("joined");
        assert!(
            joined.capacity() <= 4 + PREALLOCATE_MAX_BYTES,
            "{}",
            joined.capacity()
        );
    }
}
