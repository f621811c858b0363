//! Small helpers: scope lists, URLs, query strings, ports.

use reqwest::Url;
use rmcp::service::ServiceError;
use serde_json::Value;
use std::collections::HashMap;

use crate::*;

// --- helpers -----------------------------------------------------------------------------------------

pub(crate) fn scopes(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

pub(crate) fn covers(have: Option<&str>, need: Option<&str>) -> bool {
    let have = scopes(have);
    let need = scopes(need);
    !need.is_empty() && need.iter().all(|s| have.contains(s))
}

pub(crate) fn same_url(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub(crate) fn query(url: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if let Ok(u) = Url::parse(url) {
        for (k, v) in u.query_pairs() {
            out.entry(k.into_owned()).or_default().push(v.into_owned());
        }
    }
    out
}

pub(crate) fn first(q: &HashMap<String, Vec<String>>, k: &str) -> Option<String> {
    q.get(k).and_then(|v| v.first()).cloned()
}

pub(crate) fn text_of(result: &impl serde::Serialize) -> String {
    let v = serde_json::to_value(result).unwrap_or(Value::Null);
    v.get("content")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect::<String>()
        })
        .unwrap_or_default()
}

pub(crate) fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9)
}

pub(crate) fn args_object(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub(crate) fn mcp_http(rec: &Recorder) -> Result<RecordingHttp, reqwest::Error> {
    Ok(RecordingHttp {
        inner: reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        rec: rec.clone(),
    })
}

pub(crate) fn describe_service_error(e: &ServiceError) -> String {
    match e.auth_challenge() {
        Some(ch) => format!("rmcp error with challenge: WWW-Authenticate: {ch}"),
        None => e.to_string(),
    }
}
