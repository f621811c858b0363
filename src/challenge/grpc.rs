//! Rejections as trailers-only gRPC responses (the tonic integration and any gRPC request).

use std::fmt::Write as _;

use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Response};

use super::Rejection;
use crate::body::FixedBody;

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// A trailers-only gRPC response: HTTP 200 with `grpc-status` and `grpc-message` in the headers.
pub(super) fn grpc_response(
    rejection: &Rejection,
    content_type: HeaderValue,
) -> Response<FixedBody> {
    let mut response = Response::new(FixedBody::empty());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    headers.insert(
        GRPC_STATUS,
        HeaderValue::from(u16::from(rejection.grpc_code())),
    );
    let mut message = String::new();
    for b in rejection.description().bytes() {
        // gRPC percent-encodes everything outside printable ASCII, and `%` itself.
        if (0x20..=0x7E).contains(&b) && b != b'%' {
            message.push(char::from(b));
        } else {
            let _ = write!(message, "%{b:02X}");
        }
    }
    if let Ok(value) = HeaderValue::try_from(message) {
        headers.insert(GRPC_MESSAGE, value);
    }
    response
}
