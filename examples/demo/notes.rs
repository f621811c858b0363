//! The MCP server of the demo: two tools, built with rmcp.
//!
//! - `echo` (needs `mcp:read`): returns its text, and who called it (from the validated access token).
//! - `write_note` (needs `mcp:write`): stores a note in memory and returns how many there are.
//!
//! The scopes are enforced by `bearer_guard::mcp` before rmcp sees the request; the tools only read the
//! `AccessToken` that the guard put into the request extensions.

use std::sync::{Arc, Mutex};

use bearer_guard::AccessToken;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct EchoRequest {
    /// The text to echo back.
    pub text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct NoteRequest {
    /// The note to store.
    pub note: String,
}

/// The demo's MCP server. Cloned per session; the notes are shared.
#[derive(Debug, Clone)]
pub struct Notes {
    notes: Arc<Mutex<Vec<String>>>,
    tool_router: ToolRouter<Self>,
}

impl Notes {
    pub fn new(notes: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            notes,
            tool_router: Self::tool_router(),
        }
    }
}

/// The subject of the validated token of the HTTP request behind this MCP request.
fn caller(context: &RequestContext<RoleServer>) -> String {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<AccessToken>())
        .and_then(|token| token.subject().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

#[tool_router]
impl Notes {
    #[tool(description = "Echo the text back (scope mcp:read)")]
    fn echo(
        &self,
        Parameters(EchoRequest { text }): Parameters<EchoRequest>,
        context: RequestContext<RoleServer>,
    ) -> String {
        format!("{text} (echoed for {})", caller(&context))
    }

    #[tool(description = "Store a note (scope mcp:write)")]
    fn write_note(
        &self,
        Parameters(NoteRequest { note }): Parameters<NoteRequest>,
        context: RequestContext<RoleServer>,
    ) -> String {
        let mut notes = self
            .notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        notes.push(note);
        format!(
            "{} notes stored (last by {})",
            notes.len(),
            caller(&context)
        )
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Notes {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("bearer-guard demo: echo (mcp:read) and write_note (mcp:write)")
    }
}
