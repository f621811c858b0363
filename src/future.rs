//! [`ResponseFuture`]: the state machine of one guarded request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
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
}

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
        Calling { #[pin] future: S::Future },
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
        Self {
            state: State::Calling {
                future: service.call(request),
            },
        }
    }

    pub(crate) fn validating(
        validation: Validation,
        service: S,
        request: Request<ReqBody>,
        requirement: Requirement,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            state: State::Validating {
                validation,
                waiting: Some(Waiting {
                    service,
                    request,
                    requirement,
                    shared,
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
                    let Some(Waiting {
                        mut service,
                        request,
                        requirement,
                        shared,
                    }) = waiting.take()
                    else {
                        return Poll::Ready(Ok(polled_after_completion().map(ResponseBody::guard)));
                    };
                    let (mut parts, body) = request.into_parts();
                    let next = match shared.authorize(result, &mut parts, &requirement) {
                        Ok(()) => State::Calling {
                            future: service.call(Request::from_parts(parts, body)),
                        },
                        Err(response) => State::Guard {
                            response: Some(response),
                        },
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

/// Polling a finished future is a caller bug; answer 500 rather than panic (and never let a request through).
fn polled_after_completion() -> Response<FixedBody> {
    let mut response = Response::new(FixedBody::empty());
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}
