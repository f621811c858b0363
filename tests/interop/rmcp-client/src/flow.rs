//! The whole client flow, step by step, with a check per step.

use reqwest::Url;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::auth::{
    default_oauth_http_client, AuthClient, AuthorizationCallback, AuthorizationRequest,
    OAuthHttpClient, OAuthState, WWWAuthenticateParams,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::*;

// --- the flow ----------------------------------------------------------------------------------------

pub(crate) async fn run(c: &mut Checks, server: &str) -> Result<(), Box<dyn std::error::Error>> {
    let server_url = Url::parse(server)?;
    let rec = Recorder::default();
    let opaque = server_url.path().ends_with("/opaque-mcp");

    // 0) initialize without a token, as any MCP client starts: the guard answers 401 with a challenge.
    let plain = StreamableHttpClientTransport::with_client(
        mcp_http(&rec)?,
        StreamableHttpClientTransportConfig::with_uri(server),
    );
    match ().serve(plain).await {
        Ok(client) => {
            c.ok(
                "initialize without a token is refused (401)",
                false,
                "connected without a token?!",
            );
            let _ = client.cancel().await;
        }
        Err(e) => {
            let ch = e.auth_challenge().map(str::to_owned);
            let params = ch
                .as_deref()
                .map(|h| WWWAuthenticateParams::parse(h, &server_url));
            c.ok(
                "initialize without a token: 401, rmcp reports AuthRequired with WWW-Authenticate: Bearer resource_metadata=..., scope=...",
                e.is_authorization_required()
                    && ch.as_deref().is_some_and(|h| h.starts_with("Bearer "))
                    && params.as_ref().is_some_and(|p| p.resource_metadata_url.is_some()),
                format!("WWW-Authenticate: {}", ch.as_deref().unwrap_or("none")),
            );
            c.ok(
                "401 without a token carries no error code (RFC 6750 §3.1)",
                params.as_ref().is_some_and(|p| p.error.is_none()),
                format!("error={:?}", params.as_ref().and_then(|p| p.error.clone())),
            );
        }
    }

    // 1) rmcp's OAuth: probe, discovery, registration, authorization URL.
    let oauth_http: Arc<dyn OAuthHttpClient> = Arc::new(RecordingOAuthHttp {
        inner: Box::new(default_oauth_http_client()?),
        rec: rec.clone(),
    });
    let redirect_uri = format!("http://localhost:{}/callback", unused_port());
    let mut state = OAuthState::new_with_oauth_http_client(server, oauth_http).await?;
    let oauth_from = rec.len();
    // Initial scope selection: the probe's challenge scope (else PRM scopes_supported). rmcp's
    // default selection would request the union of the challenge and PRM scopes_supported, i.e.
    // mcp:write up front, and no step-up would ever be needed.
    let started = state
        .start_authorization(
            AuthorizationRequest::new(&redirect_uri)
                .with_client_name("bearer-guard interop (rmcp)")
                .with_initial_scope_selection(),
        )
        .await;
    let log = rec.snapshot();
    let log = &log[oauth_from..];

    let probe = log
        .iter()
        .find(|e| e.method == "GET" && same_url(&e.url, server));
    let probe_ch = probe
        .and_then(|e| e.www_authenticate.as_deref())
        .map(|h| WWWAuthenticateParams::parse(h, &server_url));
    c.ok(
        "rmcp probe: unauthenticated GET of the MCP URL -> 401 with resource_metadata",
        probe.is_some_and(|e| e.status == Some(401))
            && probe_ch
                .as_ref()
                .is_some_and(|p| p.resource_metadata_url.is_some()),
        probe.map_or("no probe seen".into(), |e| {
            format!(
                "HTTP {:?} WWW-Authenticate: {}",
                e.status,
                e.www_authenticate.as_deref().unwrap_or("none")
            )
        }),
    );
    let challenge_scope = probe_ch.as_ref().and_then(|p| p.scope.clone());
    let prm_url = probe_ch
        .as_ref()
        .and_then(|p| p.resource_metadata_url.clone());
    let prm_get = log.iter().find(|e| {
        e.method == "GET"
            && prm_url
                .as_ref()
                .is_some_and(|u| same_url(&e.url, u.as_str()))
    });
    c.ok(
        "resource_metadata followed (rmcp fetched exactly the advertised PRM URL)",
        prm_get.is_some(),
        prm_get.map_or_else(
            || {
                let seen: Vec<&str> = log
                    .iter()
                    .filter(|e| e.url.contains("oauth-protected-resource"))
                    .map(|e| e.url.as_str())
                    .collect();
                format!("PRM fetches: {seen:?}")
            },
            |e| e.url.clone(),
        ),
    );
    let prm = prm_get.and_then(|e| e.json.clone()).unwrap_or(Value::Null);
    let prm_resource = prm
        .get("resource")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let issuer = prm
        .pointer("/authorization_servers/0")
        .and_then(Value::as_str)
        .map(str::to_owned);
    c.ok(
        "PRM fetched: 200, resource = server URL, authorization_servers non-empty",
        prm_get.is_some_and(|e| e.status == Some(200))
            && prm_resource.as_deref() == Some(server)
            && issuer.is_some(),
        format!(
            "resource={} authorization_servers={} scopes_supported={}",
            prm.get("resource").unwrap_or(&Value::Null),
            prm.get("authorization_servers").unwrap_or(&Value::Null),
            prm.get("scopes_supported").unwrap_or(&Value::Null)
        ),
    );
    let as_get = log.iter().find(|e| {
        e.method == "GET"
            && e.status == Some(200)
            && e.json.as_ref().is_some_and(|j| j.get("issuer").is_some())
            && (e.url.contains("/.well-known/oauth-authorization-server")
                || e.url.contains("/.well-known/openid-configuration"))
    });
    let as_meta = as_get.and_then(|e| e.json.clone()).unwrap_or(Value::Null);
    let as_str = |k: &str| as_meta.get(k).and_then(Value::as_str).map(str::to_owned);
    c.ok(
        "AS metadata fetched (RFC 8414 path), issuer matches PRM",
        as_get.is_some_and(|e| e.url.contains("oauth-authorization-server"))
            && as_str("issuer").is_some()
            && as_str("issuer") == issuer,
        as_get.map_or("none".into(), |e| {
            format!("{} issuer={:?}", e.url, as_str("issuer"))
        }),
    );
    let token_endpoint = as_str("token_endpoint").unwrap_or_default();
    let reg = as_str("registration_endpoint").and_then(|r| {
        log.iter()
            .find(|e| e.method == "POST" && same_url(&e.url, &r))
    });
    c.ok(
        "dynamic client registration 201 (public client, loopback redirect)",
        reg.is_some_and(|e| {
            e.status == Some(201)
                && e.json
                    .as_ref()
                    .is_some_and(|j| j.get("client_id").is_some())
        }),
        reg.map_or("no registration request".into(), |e| {
            let mut sent = e.registration.clone().unwrap_or(Value::Null);
            if let Some(o) = sent.as_object_mut() {
                o.remove("client_name");
            }
            format!(
                "HTTP {:?} sent={sent} {}",
                e.status,
                e.error.as_deref().unwrap_or("")
            )
        }),
    );
    if let Err(e) = started {
        c.ok("rmcp start_authorization", false, format!("error: {e}"));
        return Ok(());
    }

    // 2) Authorization: follow the URL rmcp built, hand the callback URL back to rmcp.
    let auth_url = state.get_authorization_url().await?;
    let q = query(&auth_url);
    let mut browser = Browser {
        http: reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        jar: CookieJar::default(),
    };
    let followed = browser.follow(&auth_url, &redirect_uri).await;
    let (callback, hops) = match &followed {
        Ok((cb, hops)) => (Some(cb.clone()), hops.join(" -> ")),
        Err(e) => (None, e.clone()),
    };
    let cbq = callback.as_deref().map(query).unwrap_or_default();
    c.ok(
        "authorization: S256 PKCE, scope from the challenge, resource = PRM resource, code returned",
        first(&q, "code_challenge_method").as_deref() == Some("S256")
            && first(&q, "code_challenge").is_some()
            && covers(first(&q, "scope").as_deref(), challenge_scope.as_deref())
            && q.get("resource").map(Vec::as_slice) == prm_resource.as_ref().map(std::slice::from_ref)
            && first(&cbq, "code").is_some()
            && first(&cbq, "iss") == issuer,
        format!(
            "scope={:?} resource={:?} iss={:?} hops={hops}",
            first(&q, "scope"),
            q.get("resource"),
            first(&cbq, "iss")
        ),
    );
    if first(&q, "scope") != challenge_scope {
        c.info(
            "requested scope",
            format!(
                "challenge scope={challenge_scope:?}, rmcp asked for {:?} (SEP-2207: it adds offline_access when the AS supports it)",
                first(&q, "scope")
            ),
        );
    }
    let Some(callback) = callback else {
        return Ok(());
    };
    let before_token = rec.len();
    let exchanged = state.handle_callback_url(&callback).await;
    let log = rec.snapshot();
    let tok1 = log[before_token..].iter().find(|e| {
        same_url(&e.url, &token_endpoint)
            && e.form.as_ref().and_then(|f| f.grant_type.as_deref()) == Some("authorization_code")
    });
    c.ok(
        "token: authorization_code grant 200 (state and iss checked by rmcp), request carried resource + code_verifier",
        exchanged.is_ok()
            && tok1.is_some_and(|e| {
                let f = e.form.clone().unwrap_or_default();
                e.status == Some(200)
                    && f.resource.as_slice() == prm_resource.as_slice()
                    && f.names.iter().any(|n| n == "code_verifier")
            }),
        match (tok1, &exchanged) {
            (_, Err(e)) => format!("rmcp: {e}"),
            (Some(e), _) => {
                let f = e.form.clone().unwrap_or_default();
                format!(
                    "HTTP {:?} params={} resource={:?}",
                    e.status,
                    f.names.join(","),
                    f.resource
                )
            }
            (None, _) => "no token request".into(),
        },
    );
    let t1 = tok1.and_then(|e| e.token.clone()).unwrap_or_default();
    if opaque {
        c.ok(
            "access token: opaque (as.mjs rule for */opaque-mcp), scope covers the challenge scope",
            !t1.is_jwt && covers(t1.scope.as_deref(), challenge_scope.as_deref()),
            format!(
                "scope={:?} refresh_token={}",
                t1.scope, t1.has_refresh_token
            ),
        );
    } else {
        c.ok(
            "access token: JWT typ at+jwt, aud = resource, scope covers the challenge scope",
            t1.is_jwt
                && t1.typ.as_deref() == Some("at+jwt")
                && t1.aud.as_ref().and_then(Value::as_str) == prm_resource.as_deref()
                && covers(t1.jwt_scope.as_deref(), challenge_scope.as_deref()),
            format!(
                "typ={:?} alg={:?} aud={:?} scope={:?} refresh_token={}",
                t1.typ, t1.alg, t1.aud, t1.jwt_scope, t1.has_refresh_token
            ),
        );
    }
    if exchanged.is_err() {
        return Ok(());
    }
    let Some(manager) = state.into_authorization_manager() else {
        c.ok(
            "rmcp OAuthState authorized",
            false,
            "not in the Authorized state",
        );
        return Ok(());
    };

    // 3) MCP over StreamableHttpClientTransport with the AuthClient: initialize, tools/list, echo.
    let auth_client = AuthClient::new(mcp_http(&rec)?, manager);
    let mcp_from = rec.len();
    let transport = StreamableHttpClientTransport::with_client(
        auth_client.clone(),
        StreamableHttpClientTransportConfig::with_uri(server),
    );
    let client = match ().serve(transport).await {
        Ok(client) => client,
        Err(e) => {
            c.ok("initialize", false, format!("error: {e}"));
            return Ok(());
        }
    };
    let log = rec.snapshot();
    let init = log[mcp_from..]
        .iter()
        .find(|e| e.jsonrpc.as_deref() == Some("initialize"));
    let peer = client.peer_info();
    c.ok(
        "initialize: 200 with the token",
        init.is_some_and(|e| e.status == Some(200) && e.has_authorization) && peer.is_some(),
        format!(
            "server={:?} protocol={:?}",
            peer.as_ref()
                .and_then(|p| p.server_info.as_ref())
                .map(|i| i.name.clone()),
            peer.as_ref().map(|p| p.protocol_version.to_string())
        ),
    );

    match client.list_tools(None).await {
        Ok(list) => {
            let names: Vec<String> = list.tools.iter().map(|t| t.name.to_string()).collect();
            c.ok(
                "tools/list contains echo and write_note",
                names.iter().any(|n| n == "echo") && names.iter().any(|n| n == "write_note"),
                names.join(", "),
            );
        }
        Err(e) => {
            c.ok("tools/list", false, describe_service_error(&e));
        }
    }
    let echo = |text: &str| {
        CallToolRequestParams::new("echo").with_arguments(args_object(json!({ "text": text })))
    };
    match client.call_tool(echo("hello interop")).await {
        Ok(r) => {
            c.ok(
                "tools/call echo succeeds",
                r.is_error != Some(true) && text_of(&r).contains("hello interop"),
                format!("{:?}", text_of(&r)),
            );
        }
        Err(e) => {
            c.ok("tools/call echo", false, describe_service_error(&e));
        }
    }

    // 4) write_note with a token lacking mcp:write -> 403 insufficient_scope -> explicit step-up.
    let write = || {
        CallToolRequestParams::new("write_note")
            .with_arguments(args_object(json!({ "note": "written after step-up" })))
    };
    let before_write = rec.len();
    let first_try = client.call_tool(write()).await;
    let forbidden = rec.snapshot()[before_write..]
        .iter()
        .any(|e| e.status == Some(403) && e.tool.as_deref() == Some("write_note"));
    let challenge = match &first_try {
        Err(e) => e.auth_challenge().map(str::to_owned),
        Ok(_) => None,
    };
    let params = challenge
        .as_deref()
        .map(|h| WWWAuthenticateParams::parse(h, &server_url));
    let required = params.as_ref().and_then(|p| p.scope.clone());
    c.ok(
        "write_note with mcp:read only -> 403 error=\"insufficient_scope\" naming mcp:write (rmcp: is_insufficient_scope)",
        forbidden
            && params.as_ref().is_some_and(|p| p.is_insufficient_scope())
            && scopes(required.as_deref()).iter().any(|s| s == "mcp:write"),
        match &first_try {
            Ok(r) => format!("call succeeded without step-up?! {:?}", text_of(r)),
            Err(e) => describe_service_error(e),
        },
    );
    let Some(required) = required else {
        let _ = client.cancel().await;
        return Ok(());
    };
    // rmcp does not re-authorize by itself: request_scope_upgrade builds the authorization URL for
    // the union of the granted and the challenged scopes (SEP-2350).
    let upgrade_url = auth_client
        .auth_manager
        .lock()
        .await
        .request_scope_upgrade(&required)
        .await;
    let step_up = async {
        let url = upgrade_url.map_err(|e| format!("request_scope_upgrade: {e}"))?;
        let uq = query(&url);
        let (cb, hops) = browser.follow(&url, &redirect_uri).await?;
        let cbk = AuthorizationCallback::from_redirect_url(&cb).map_err(|e| e.to_string())?;
        let before = rec.len();
        auth_client
            .auth_manager
            .lock()
            .await
            .exchange_code_for_token_with_issuer(&cbk.code, &cbk.csrf_token, cbk.issuer.as_deref())
            .await
            .map_err(|e| format!("exchange_code_for_token_with_issuer: {e}"))?;
        Ok::<_, String>((uq, hops, before))
    }
    .await;
    let before = match step_up {
        Ok((uq, hops, before)) => {
            c.ok(
                "step-up with rmcp's API: request_scope_upgrade -> new authorization requesting the challenge scope (with resource)",
                covers(first(&uq, "scope").as_deref(), Some(&required))
                    && uq.get("resource").map(Vec::as_slice) == prm_resource.as_ref().map(std::slice::from_ref),
                format!(
                    "scope={:?} resource={:?} hops={}",
                    first(&uq, "scope"),
                    uq.get("resource"),
                    hops.join(" -> ")
                ),
            );
            before
        }
        Err(e) => {
            c.ok("step-up with rmcp's API", false, e);
            let _ = client.cancel().await;
            return Ok(());
        }
    };
    let log = rec.snapshot();
    let tok2 = log[before..].iter().find(|e| {
        e.form.as_ref().and_then(|f| f.grant_type.as_deref()) == Some("authorization_code")
    });
    let t2 = tok2.and_then(|e| e.token.clone()).unwrap_or_default();
    let t2_scope = if opaque {
        t2.scope.clone()
    } else {
        t2.jwt_scope.clone()
    };
    c.ok(
        &format!(
            "step-up token has mcp:write{}",
            if opaque { "" } else { " and aud = resource" }
        ),
        tok2.is_some_and(|e| e.status == Some(200))
            && scopes(t2_scope.as_deref()).iter().any(|s| s == "mcp:write")
            && (opaque || t2.aud.as_ref().and_then(Value::as_str) == prm_resource.as_deref()),
        format!("HTTP {:?} scope={t2_scope:?}", tok2.and_then(|e| e.status)),
    );
    match client.call_tool(write()).await {
        Ok(r) => {
            c.ok(
                "tools/call write_note succeeds after step-up (same connection, AuthClient picks up the new token)",
                r.is_error != Some(true) && text_of(&r).contains("stored"),
                format!("{:?}", text_of(&r)),
            );
        }
        Err(e) => {
            c.ok(
                "tools/call write_note after step-up",
                false,
                describe_service_error(&e),
            );
        }
    }
    let before_echo = rec.len();
    match client.call_tool(echo("still readable")).await {
        Ok(r) => {
            let extra = rec.snapshot()[before_echo..]
                .iter()
                .any(|e| matches!(e.status, Some(401 | 403)));
            c.ok(
                "tools/call echo after step-up succeeds without another authorization",
                r.is_error != Some(true) && text_of(&r).contains("still readable") && !extra,
                format!(
                    "{:?} (scope union kept mcp:read: token scope={t2_scope:?})",
                    text_of(&r)
                ),
            );
        }
        Err(e) => {
            c.ok(
                "tools/call echo after step-up",
                false,
                describe_service_error(&e),
            );
        }
    }
    let _ = client.cancel().await;

    let log = rec.snapshot();
    let posts: Vec<&Exchange> = log[mcp_from..]
        .iter()
        .filter(|e| e.method == "POST" && same_url(&e.url, server))
        .collect();
    c.ok(
        "every MCP POST after authorization carried Authorization",
        !posts.is_empty() && posts.iter().all(|e| e.has_authorization),
        format!("{} POSTs", posts.len()),
    );
    c.info(
        "HTTP exchanges",
        log.iter()
            .map(|e| {
                let path = Url::parse(&e.url)
                    .map(|u| u.path().to_owned())
                    .unwrap_or_default();
                let rpc = e
                    .jsonrpc
                    .as_ref()
                    .map(|m| format!("({m})"))
                    .unwrap_or_default();
                let status = e
                    .status
                    .map_or_else(|| e.error.clone().unwrap_or("?".into()), |s| s.to_string());
                format!("{} {path}{rpc} {status}", e.method)
            })
            .collect::<Vec<_>>()
            .join(" | "),
    );
    Ok(())
}
