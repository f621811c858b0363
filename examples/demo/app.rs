//! The demo's axum app without its guard: the rmcp streamable-HTTP service of [`Notes`] at one path.
//!
//! `main.rs` wraps it in the per-tool scope layer and `BearerAuthLayer`; `benches/loadtest.rs` serves it
//! both ways to measure what the guard costs end to end.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::notes::Notes;

/// The MCP endpoint at `path`, answering for `resource_host` and the listening address (rmcp's
/// DNS-rebinding protection allows only those hosts).
pub fn mcp_router(path: &str, resource_host: String, addr: SocketAddr) -> Router {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts([resource_host, addr.to_string(), addr.ip().to_string()])
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        // Stateless: every request stands alone (as MCP 2026-07-28 has it), so plain curl calls work too.
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let mcp = StreamableHttpService::new(
        move || Ok(Notes::new(notes.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new().route_service(path, mcp)
}
