//! Every HTTP exchange (OAuth and MCP) recorded, so each step can be checked; token values never printed.

use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use reqwest::Url;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::auth::{OAuthHttpClient, OAuthHttpClientFuture, OAuthHttpRequest};
use rmcp::transport::common::client_side_sse::BoxedSseResponse;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

// --- recorded HTTP exchanges ---------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
pub(crate) struct Form {
    pub(crate) names: Vec<String>,
    pub(crate) grant_type: Option<String>,
    pub(crate) resource: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TokenSummary {
    pub(crate) scope: Option<String>,
    pub(crate) has_refresh_token: bool,
    pub(crate) is_jwt: bool,
    pub(crate) typ: Option<String>,
    pub(crate) alg: Option<String>,
    pub(crate) aud: Option<Value>,
    pub(crate) jwt_scope: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Exchange {
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) has_authorization: bool,
    pub(crate) form: Option<Form>,
    /// JSON-RPC method of an MCP POST, and the tool of a `tools/call`.
    pub(crate) jsonrpc: Option<String>,
    pub(crate) tool: Option<String>,
    /// The DCR request body (public metadata, no secret).
    pub(crate) registration: Option<Value>,
    pub(crate) status: Option<u16>,
    pub(crate) www_authenticate: Option<String>,
    /// A JSON response (metadata, registration without its secrets).
    pub(crate) json: Option<Value>,
    pub(crate) token: Option<TokenSummary>,
    pub(crate) error: Option<String>,
}

#[derive(Clone, Default)]
pub(crate) struct Recorder(Arc<Mutex<Vec<Exchange>>>);

impl Recorder {
    pub(crate) fn push(&self, e: Exchange) -> usize {
        let mut v = self.0.lock().unwrap();
        v.push(e);
        v.len() - 1
    }
    pub(crate) fn update(&self, i: usize, f: impl FnOnce(&mut Exchange)) {
        f(&mut self.0.lock().unwrap()[i]);
    }
    pub(crate) fn snapshot(&self) -> Vec<Exchange> {
        self.0.lock().unwrap().clone()
    }
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

pub(crate) static VERBOSE: AtomicBool = AtomicBool::new(false);

pub(crate) fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

pub(crate) fn parse_form(body: &[u8]) -> Form {
    let mut url = Url::parse("http://form.invalid/").expect("static URL");
    url.set_query(Some(&String::from_utf8_lossy(body)));
    let mut form = Form::default();
    for (k, v) in url.query_pairs() {
        if !form.names.contains(&k.to_string()) {
            form.names.push(k.to_string());
        }
        match k.as_ref() {
            "grant_type" => form.grant_type = Some(v.into_owned()),
            "resource" => form.resource.push(v.into_owned()),
            _ => {}
        }
    }
    form.names.sort();
    form
}

pub(crate) fn b64url_json(part: &str) -> Option<Value> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) fn is_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// What may be printed about a token response: never the token values.
pub(crate) fn token_summary(j: &Value) -> TokenSummary {
    let access = j.get("access_token").and_then(Value::as_str).unwrap_or("");
    let mut s = TokenSummary {
        scope: j.get("scope").and_then(Value::as_str).map(str::to_owned),
        has_refresh_token: j.get("refresh_token").is_some_and(Value::is_string),
        is_jwt: is_jwt(access),
        ..TokenSummary::default()
    };
    if s.is_jwt {
        let mut parts = access.split('.');
        let header = parts.next().and_then(b64url_json).unwrap_or(Value::Null);
        let payload = parts.next().and_then(b64url_json).unwrap_or(Value::Null);
        s.typ = header.get("typ").and_then(Value::as_str).map(str::to_owned);
        s.alg = header.get("alg").and_then(Value::as_str).map(str::to_owned);
        s.aud = payload.get("aud").cloned();
        s.jwt_scope = payload
            .get("scope")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    s
}

/// Wraps rmcp's default OAuth HTTP client and records every OAuth request it makes (the probe,
/// metadata discovery, registration, token requests).
pub(crate) struct RecordingOAuthHttp {
    pub(crate) inner: Box<dyn OAuthHttpClient>,
    pub(crate) rec: Recorder,
}

impl OAuthHttpClient for RecordingOAuthHttp {
    fn execute(&self, request: OAuthHttpRequest) -> OAuthHttpClientFuture<'_> {
        let req = &request.request;
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut e = Exchange {
            method: req.method().to_string(),
            url: req.uri().to_string(),
            has_authorization: req.headers().contains_key(http::header::AUTHORIZATION),
            ..Exchange::default()
        };
        if content_type.contains("x-www-form-urlencoded") {
            e.form = Some(parse_form(req.body()));
        } else if content_type.contains("json") {
            e.registration = serde_json::from_slice(req.body()).ok();
        }
        let is_grant = e.form.as_ref().is_some_and(|f| f.grant_type.is_some());
        let i = self.rec.push(e);
        Box::pin(async move {
            let result = self.inner.execute(request).await;
            match &result {
                Ok(resp) => self.rec.update(i, |e| {
                    e.status = Some(resp.status().as_u16());
                    e.www_authenticate = resp
                        .headers()
                        .get(http::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    if let Ok(mut j) = serde_json::from_slice::<Value>(resp.body()) {
                        e.error = j.get("error").and_then(Value::as_str).map(str::to_owned);
                        if is_grant {
                            e.token = Some(token_summary(&j));
                        } else {
                            if let Some(o) = j.as_object_mut() {
                                o.remove("registration_access_token");
                                o.remove("client_secret");
                            }
                            e.json = Some(j);
                        }
                    }
                    if verbose() {
                        eprintln!("[rmcp_client] {} {} -> {:?}", e.method, e.url, e.status);
                    }
                }),
                Err(err) => self.rec.update(i, |e| e.error = Some(err.to_string())),
            }
            result
        })
    }
}

/// Wraps reqwest's `StreamableHttpClient` and records every MCP request: JSON-RPC method, whether
/// it carried a token, and the outcome (a 401/403 comes back as an error carrying the challenge).
#[derive(Clone)]
pub(crate) struct RecordingHttp {
    pub(crate) inner: reqwest::Client,
    pub(crate) rec: Recorder,
}

impl RecordingHttp {
    pub(crate) fn start(
        &self,
        method: &str,
        uri: &str,
        msg: Option<&ClientJsonRpcMessage>,
        auth: &Option<String>,
    ) -> usize {
        let v = msg
            .and_then(|m| serde_json::to_value(m).ok())
            .unwrap_or(Value::Null);
        let jsonrpc = v
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| msg.map(|_| "response".to_owned()));
        let tool = (jsonrpc.as_deref() == Some("tools/call"))
            .then(|| v.pointer("/params/name").and_then(Value::as_str))
            .flatten()
            .map(str::to_owned);
        self.rec.push(Exchange {
            method: method.to_owned(),
            url: uri.to_owned(),
            has_authorization: auth.is_some(),
            jsonrpc,
            tool,
            ..Exchange::default()
        })
    }

    pub(crate) fn finish<T>(
        &self,
        i: usize,
        result: &Result<T, StreamableHttpError<reqwest::Error>>,
    ) {
        self.rec.update(i, |e| match result {
            Ok(_) => e.status = Some(200),
            Err(StreamableHttpError::AuthRequired(a)) => {
                e.status = Some(401);
                e.www_authenticate = Some(a.www_authenticate_header.clone());
            }
            Err(StreamableHttpError::InsufficientScope(s)) => {
                e.status = Some(403);
                e.www_authenticate = Some(s.www_authenticate_header.clone());
            }
            Err(StreamableHttpError::HttpStatus(s)) => e.status = Some(s.status),
            Err(other) => e.error = Some(other.to_string()),
        });
        if verbose() {
            let e = &self.rec.snapshot()[i];
            eprintln!(
                "[rmcp_client] {} {} ({:?}) -> {:?} {:?}",
                e.method, e.url, e.jsonrpc, e.status, e.error
            );
        }
    }
}

impl StreamableHttpClient for RecordingHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let i = self.start("POST", &uri, Some(&message), &auth_header);
        let r = self
            .inner
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await;
        self.finish(i, &r);
        r
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let i = self.start("POST", &uri, Some(&message), &auth_header);
        let r = self
            .inner
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.finish(i, &r);
        r
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let i = self.start("POST", &uri, Some(&message), &auth_header);
        let r = self
            .inner
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                limits,
            )
            .await;
        self.finish(i, &r);
        r
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let i = self.start("DELETE", &uri, None, &auth_header);
        let r = self
            .inner
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await;
        self.finish(i, &r);
        r
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxedSseResponse, StreamableHttpError<Self::Error>> {
        let i = self.start("GET", &uri, None, &auth_header);
        let r = self
            .inner
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await;
        self.finish(i, &r);
        r
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxedSseResponse, StreamableHttpError<Self::Error>> {
        let i = self.start("GET", &uri, None, &auth_header);
        let r = self
            .inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.finish(i, &r);
        r
    }
}
