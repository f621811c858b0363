//! The test kit's own tests, one test binary: the development authorization server (registration, PKCE,
//! consent, grants), its introspection endpoint, and the issuer's keys, tokens and failure injection.

mod authorization;
mod introspection;
mod selftest;
