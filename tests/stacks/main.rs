//! The guard in each stack a user puts it in, one test binary: axum routers, hyper services (HTTP/1.1 and
//! HTTP/2), tonic gRPC services.

mod on_axum;
mod on_hyper;
mod on_tonic;
