//! The seams between components, one test binary: amplification (what an unauthenticated caller can make
//! the guard do), audiences of validators shared by layers, extreme settings, routes and policies.

#[path = "../common/mod.rs"]
mod common;

mod amplification;
mod audience;
mod extremes;
mod routes;
