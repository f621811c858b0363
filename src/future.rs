//! [`ResponseFuture`]: the state machine of one guarded request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::body::{FixedBody, ResponseBody};
use crate::layer::Shared;
use crate::scope::Requirement;
use crate::validate::Validation;

/// A request waiting for an asynchronous validation, with the service that was made ready for it.
struct Waiting<S, ReqBody> {
    service: S,
    request: Request<ReqBody>,
    requirement: Requirement,
    shared: Arc<Shared>,
    /// The request's verified DPoP proof, whose key the token must be bound to.
    #[cfg(feature = "dpop")]
    proof: Option<crate::bind::dpop::VerifiedProof>,
    /// The `DPoP-Nonce` to send with the inner service's response.
    #[cfg_attr(not(feature = "dpop"), allow(dead_code))]
    next_nonce: Option<HeaderValue>,
}

/// A call to the DPoP replay store.
#[cfg(feature = "dpop")]
type StoreFuture = Pin<Box<dyn Future<Output = crate::store::Inserted> + Send>>;
#[cfg(not(feature = "dpop"))]
type StoreFuture = std::future::Pending<()>;

pin_project! {
    /// The future returned by [`BearerAuth`](crate::BearerAuth): the guard's own answer, a validation in
    /// progress, or the inner service's response future.
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Guard { response: Option<Response<FixedBody>> },
        Validating { validation: Validation, waiting: Option<Waiting<S, ReqBody>> },
        Replaying { call: StoreFuture, waiting: Option<Waiting<S, ReqBody>> },
        Calling { #[pin] future: S::Future, nonce: Option<HeaderValue> },
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn guard(response: Response<FixedBody>) -> Self {
        Self {
            state: State::Guard {
                response: Some(response),
            },
        }
    }

    /// Calls the ready `service` now (it is not kept: the inner future owns what it needs).
    pub(crate) fn call(service: &mut S, request: Request<ReqBody>) -> Self {
        Self::call_with_nonce(service, request, None)
    }

    /// Calls the ready `service` now; its response gets `DPoP-Nonce: nonce` when there is one.
    pub(crate) fn call_with_nonce(
        service: &mut S,
        request: Request<ReqBody>,
        nonce: Option<HeaderValue>,
    ) -> Self {
        Self {
            state: State::Calling {
                future: service.call(request),
                nonce,
            },
        }
    }

    pub(crate) fn validating(
        validation: Validation,
        service: S,
        request: Request<ReqBody>,
        requirement: Requirement,
        shared: Arc<Shared>,
        #[cfg(feature = "dpop")] proof: Option<crate::bind::dpop::VerifiedProof>,
    ) -> Self {
        Self {
            state: State::Validating {
                validation,
                waiting: Some(Waiting {
                    service,
                    request,
                    requirement,
                    shared,
                    #[cfg(feature = "dpop")]
                    proof,
                    next_nonce: None,
                }),
            },
        }
    }

    /// Waits for the replay store before calling the ready `service`.
    #[cfg(feature = "dpop")]
    pub(crate) fn replaying(
        call: StoreFuture,
        service: S,
        request: Request<ReqBody>,
        requirement: Requirement,
        shared: Arc<Shared>,
        next_nonce: Option<HeaderValue>,
    ) -> Self {
        Self {
            state: State::Replaying {
                call,
                waiting: Some(Waiting {
                    service,
                    request,
                    requirement,
                    shared,
                    proof: None,
                    next_nonce,
                }),
            },
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Guard { response } => {
                    let response = response.take().unwrap_or_else(polled_after_completion);
                    return Poll::Ready(Ok(response.map(ResponseBody::guard)));
                }
                StateProj::Validating {
                    validation,
                    waiting,
                } => {
                    let result = ready!(Pin::new(validation).poll(cx));
                    let Some(mut waiting) = waiting.take() else {
                        return Poll::Ready(Ok(polled_after_completion().map(ResponseBody::guard)));
                    };
                    let (mut parts, body) = waiting.request.into_parts();
                    #[cfg(feature = "dpop")]
                    let proven = waiting.proof.as_ref().map(|p| p.jkt);
                    #[cfg(not(feature = "dpop"))]
                    let proven: Option<[u8; 32]> = None;
                    let authorized = waiting.shared.authorize(
                        result,
                        &mut parts,
                        &waiting.requirement,
                        proven.as_ref(),
                    );
                    let next = match authorized {
                        Err(response) => State::Guard {
                            response: Some(response),
                        },
                        #[cfg(feature = "dpop")]
                        Ok(()) if waiting.proof.is_some() => {
                            waiting.request = Request::from_parts(parts, body);
                            replay_step(waiting)
                        }
                        Ok(()) => State::Calling {
                            future: waiting.service.call(Request::from_parts(parts, body)),
                            nonce: None,
                        },
                    };
                    this.state.set(next);
                }
                #[cfg(feature = "dpop")]
                StateProj::Replaying { call, waiting } => {
                    let answer = ready!(call.as_mut().poll(cx));
                    let Some(waiting) = waiting.take() else {
                        return Poll::Ready(Ok(polled_after_completion().map(ResponseBody::guard)));
                    };
                    this.state.set(after_replay(waiting, answer));
                }
                #[cfg(not(feature = "dpop"))]
                StateProj::Replaying { .. } => {
                    return Poll::Ready(Ok(polled_after_completion().map(ResponseBody::guard)));
                }
                StateProj::Calling { future, nonce } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(nonce) = nonce.take() {
                        response
                            .headers_mut()
                            .insert(http::HeaderName::from_static("dpop-nonce"), nonce);
                    }
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
            }
        }
    }
}

/// Records the proof's `jti`, then calls the service or refuses.
#[cfg(feature = "dpop")]
fn replay_step<S, ReqBody>(mut waiting: Waiting<S, ReqBody>) -> State<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    use crate::store::StoreCall;
    let Some(proof) = waiting.proof.take() else {
        return State::Guard {
            response: Some(polled_after_completion()),
        };
    };
    let recorded = waiting.shared.record_proof(&proof);
    waiting.next_nonce = proof.next_nonce;
    match recorded {
        StoreCall::Ready(answer) => after_replay(waiting, answer),
        StoreCall::Pending(call) => State::Replaying {
            call,
            waiting: Some(waiting),
        },
    }
}

#[cfg(feature = "dpop")]
fn after_replay<S, ReqBody>(
    mut waiting: Waiting<S, ReqBody>,
    answer: crate::store::Inserted,
) -> State<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    let (parts, body) = waiting.request.into_parts();
    match waiting
        .shared
        .replay_answer(answer, &waiting.requirement, &parts)
    {
        Ok(()) => State::Calling {
            future: waiting.service.call(Request::from_parts(parts, body)),
            nonce: waiting.next_nonce,
        },
        Err(response) => State::Guard {
            response: Some(response),
        },
    }
}

/// Polling a finished future is a caller bug; answer 500 rather than panic (and never let a request through).
fn polled_after_completion() -> Response<FixedBody> {
    let mut response = Response::new(FixedBody::empty());
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}
