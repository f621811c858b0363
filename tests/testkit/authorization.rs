//! The development authorization server of the test kit (`DevIssuerBuilder::authorization_server`), over
//! real loopback HTTP: registration (RFC 7591), authorization with PKCE S256 and RFC 8707 `resource`, the
//! consent page, the token endpoint (code and rotating refresh grants), the refusals of each step, CORS,
//! and the seam that matters: its tokens are accepted by a `BearerAuthLayer` for the resource they name,
//! and refused for any other.
#![cfg(all(feature = "testkit", feature = "aws-lc-rs"))]

use std::convert::Infallible;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bearer_guard::scope::{Requirement, RoutePolicy};
use bearer_guard::testkit::{Consent, DevIssuer, TestkitError};
use bearer_guard::{BearerAuthLayer, JwtValidator};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tower::{Layer as _, ServiceExt as _};

/// Parameters overriding a request's defaults (an empty value removes one).
type Params<'a> = &'a [(&'a str, &'a str)];

const RESOURCE: &str = "https://mcp.example.com/mcp";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        out.append_pair(name, value);
    }
    out.finish()
}

async fn json_of(res: reqwest::Response) -> Value {
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

async fn get_json(url: String) -> Value {
    json_of(http().get(url).send().await.unwrap()).await
}

async fn post_json(url: String, body: &Value) -> reqwest::Response {
    http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// `POST` a form, with an `Authorization` header if given.
async fn post_form(
    url: String,
    pairs: &[(&str, &str)],
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut request = http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(pairs));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.unwrap()
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn start(consent: Consent) -> DevIssuer {
    DevIssuer::builder()
        .authorization_server(consent)
        .start()
        .await
        .unwrap()
}

async fn register(issuer: &DevIssuer, metadata: Value) -> (StatusCode, Value) {
    let res = post_json(issuer.registration_endpoint(), &metadata).await;
    let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
    (status, json_of(res).await)
}

async fn public_client(issuer: &DevIssuer) -> String {
    let (status, answer) = register(
        issuer,
        json!({
            "client_name": "test client",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["client_id"].as_str().unwrap().to_owned()
}

/// `GET /authorize` with these parameters (S256 challenge of [`VERIFIER`] unless overridden).
async fn authorize(issuer: &DevIssuer, params: &[(&str, &str)]) -> reqwest::Response {
    let challenge = challenge(VERIFIER);
    let mut all: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "xyz state"),
    ];
    for (name, value) in params {
        all.retain(|(n, _)| n != name);
        if !value.is_empty() {
            all.push((name, value));
        }
    }
    let url = format!("{}?{}", issuer.authorization_endpoint(), encode(&all));
    http().get(url).send().await.unwrap()
}

/// The query parameters of a redirect's `Location`, checking it goes to [`REDIRECT`].
fn redirected(res: &reqwest::Response) -> std::collections::HashMap<String, String> {
    assert_eq!(res.status(), 302, "not a redirect");
    let location = res.headers()["location"].to_str().unwrap();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, REDIRECT);
    url_params(query)
}

fn url_params(query: &str) -> std::collections::HashMap<String, String> {
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            let decode = |s: &str| {
                let s = s.replace('+', " ");
                let mut out = Vec::new();
                let mut bytes = s.bytes();
                while let Some(b) = bytes.next() {
                    if b == b'%' {
                        let hex: String = [bytes.next().unwrap(), bytes.next().unwrap()]
                            .iter()
                            .map(|&b| b as char)
                            .collect();
                        out.push(u8::from_str_radix(&hex, 16).unwrap());
                    } else {
                        out.push(b);
                    }
                }
                String::from_utf8(out).unwrap()
            };
            (decode(k), decode(v))
        })
        .collect()
}

async fn token(issuer: &DevIssuer, form: &[(&str, &str)]) -> (u16, Value) {
    let res = post_form(issuer.token_endpoint(), form, None).await;
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    (status, json_of(res).await)
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A code for `client_id` by the automatic consent.
async fn code_for(issuer: &DevIssuer, client_id: &str, scope: &str) -> String {
    let res = authorize(
        issuer,
        &[
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("resource", RESOURCE),
        ],
    )
    .await;
    let params = redirected(&res);
    assert_eq!(params["state"], "xyz state");
    assert_eq!(params["iss"], issuer.issuer());
    params["code"].clone()
}

/// Sends `token` through a guard for `resource` that requires `mcp:read`; the status it answers.
async fn guard_status(issuer: &DevIssuer, resource: &str, token: &str) -> StatusCode {
    let guard = BearerAuthLayer::builder()
        .resource(resource)
        .authorization_server(issuer.issuer())
        .validator(JwtValidator::builder(issuer.issuer()).build().unwrap())
        .policy(RoutePolicy::new().fallback(Requirement::all_of(["mcp:read"])))
        .build()
        .unwrap();
    let service = guard.layer(tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    }));
    let path = resource.split_once(".com").unwrap().1;
    let request = Request::post(path)
        .header("host", "mcp.example.com")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

#[tokio::test]
async fn metadata_advertises_the_endpoints_only_when_enabled() {
    let issuer = start(Consent::Auto).await;
    let metadata = get_json(issuer.oauth_metadata_uri()).await;
    assert_eq!(
        metadata["registration_endpoint"],
        issuer.registration_endpoint()
    );
    assert_eq!(
        metadata["authorization_endpoint"],
        issuer.authorization_endpoint()
    );
    assert_eq!(metadata["token_endpoint"], issuer.token_endpoint());
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        metadata["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );

    let plain = DevIssuer::start().await.unwrap();
    let metadata = get_json(plain.oauth_metadata_uri()).await;
    assert!(metadata.get("registration_endpoint").is_none());
    let res = post_json(plain.registration_endpoint(), &json!({})).await;
    assert_eq!(res.status(), 404);
    let res = post_form(plain.token_endpoint(), &[("grant_type", "x")], None).await;
    assert_eq!(res.status(), 501);
}

#[tokio::test]
async fn the_whole_flow_gives_tokens_the_guard_accepts_for_their_resource_only() {
    let issuer = start(Consent::Auto).await;
    let client_id = public_client(&issuer).await;
    let code = code_for(&issuer, &client_id, "mcp:read mcp:write offline_access").await;
    let (status, answer) = token(
        &issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
            ("resource", RESOURCE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "mcp:read mcp:write offline_access");
    assert_eq!(answer["expires_in"], 3600);
    let access = answer["access_token"].as_str().unwrap();
    let c = claims(access);
    assert_eq!(c["aud"], RESOURCE);
    assert_eq!(c["iss"], issuer.issuer());
    assert_eq!(c["sub"], "dev-user");
    assert_eq!(c["client_id"], client_id.as_str());
    assert_eq!(c["scope"], "mcp:read mcp:write offline_access");

    assert_eq!(
        guard_status(&issuer, RESOURCE, access).await,
        StatusCode::OK
    );
    assert_eq!(
        guard_status(&issuer, "https://other.example.com/mcp", access).await,
        StatusCode::UNAUTHORIZED,
        "a token for one resource must not open another"
    );

    // Without offline_access, no refresh token.
    let online_code = code_for(&issuer, &client_id, "mcp:read").await;
    let (status, online) = token(
        &issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", &online_code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(online.get("refresh_token").is_none(), "{online}");

    // The code is single-use.
    let (status, again) = token(
        &issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Refresh: narrower scope allowed, the old refresh token is spent (rotation), wider scope refused.
    let refresh = answer["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) = token(
        &issuer,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
            ("scope", "mcp:read offline_access"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["scope"],
        "mcp:read offline_access"
    );
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["aud"],
        RESOURCE
    );
    let (status, reused) = token(
        &issuer,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let next = refreshed["refresh_token"].as_str().unwrap();
    let (status, wider) = token(
        &issuer,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", next),
            ("client_id", &client_id),
            ("scope", "mcp:read mcp:admin"),
        ],
    )
    .await;
    assert_eq!(
        (status, wider["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // A refused refresh does not spend the token.
    let (status, still) = token(
        &issuer,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", next),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, 200, "{still}");
}

#[tokio::test]
async fn token_requests_that_do_not_prove_the_grant_are_refused() {
    let issuer = start(Consent::Auto).await;
    let client_id = public_client(&issuer).await;
    let other = public_client(&issuer).await;
    let cases: &[(&str, Params, u16, &str)] = &[
        (
            "wrong verifier",
            &[(
                "code_verifier",
                "wrong-verifier-wrong-verifier-wrong-verifier-x",
            )],
            400,
            "invalid_grant",
        ),
        (
            "no verifier",
            &[("code_verifier", "")],
            400,
            "invalid_request",
        ),
        (
            "another resource",
            &[("resource", "https://other.example.com/mcp")],
            400,
            "invalid_target",
        ),
        (
            "another redirect_uri",
            &[("redirect_uri", "http://127.0.0.1:9/other")],
            400,
            "invalid_grant",
        ),
        (
            "another client",
            &[("client_id", "OTHER")],
            400,
            "invalid_grant",
        ),
        (
            "unknown client",
            &[("client_id", "nobody")],
            401,
            "invalid_client",
        ),
        ("no client", &[("client_id", "")], 401, "invalid_client"),
        (
            "grant type",
            &[("grant_type", "password")],
            400,
            "unsupported_grant_type",
        ),
        (
            "unknown code",
            &[("code", "not-a-code")],
            400,
            "invalid_grant",
        ),
    ];
    for (what, overrides, status, error) in cases {
        let code = code_for(&issuer, &client_id, "mcp:read").await;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ];
        for (name, value) in *overrides {
            form.retain(|(n, _)| n != name);
            let value = if *value == "OTHER" {
                other.as_str()
            } else {
                value
            };
            if !value.is_empty() {
                form.push((name, value));
            }
        }
        let (got, answer) = token(&issuer, &form).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (*status, Some(*error)),
            "{what}: {answer}"
        );
    }
    // A repeated parameter.
    let code = code_for(&issuer, &client_id, "mcp:read").await;
    let (got, answer) = token(
        &issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code", &code),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (got, answer["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn authorization_requests_are_checked_before_anything_is_granted() {
    let issuer = start(Consent::Auto).await;
    let client_id = public_client(&issuer).await;
    let base = [
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("resource", RESOURCE),
    ];
    // Errors redirected to the client (with state and iss).
    let redirected_cases: &[(&str, Params, &str)] = &[
        (
            "plain PKCE",
            &[("code_challenge_method", "plain")],
            "invalid_request",
        ),
        (
            "no PKCE",
            &[("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (
            "short challenge",
            &[("code_challenge", "abc")],
            "invalid_request",
        ),
        (
            "response type",
            &[("response_type", "token")],
            "unsupported_response_type",
        ),
        ("no resource", &[("resource", "")], "invalid_target"),
        (
            "relative resource",
            &[("resource", "/mcp")],
            "invalid_target",
        ),
        (
            "resource with fragment",
            &[("resource", "https://mcp.example.com/mcp#x")],
            "invalid_target",
        ),
        ("bad scope", &[("scope", "a\"b")], "invalid_scope"),
    ];
    for (what, overrides, error) in redirected_cases {
        let mut params: Vec<(&str, &str)> = base.to_vec();
        params.extend_from_slice(overrides);
        let res = authorize(&issuer, &params).await;
        let got = redirected(&res);
        assert_eq!(got.get("error").map(String::as_str), Some(*error), "{what}");
        assert!(!got.contains_key("code"), "{what}");
        assert_eq!(got["state"], "xyz state", "{what}");
        assert_eq!(got["iss"], issuer.issuer(), "{what}");
    }
    // Errors shown on a page: the redirect URI cannot be trusted.
    let page_cases: &[(&str, &[(&str, &str)])] = &[
        ("unknown client", &[("client_id", "nobody")]),
        ("no client", &[("client_id", "")]),
        (
            "unregistered redirect",
            &[("redirect_uri", "http://127.0.0.1:9/evil")],
        ),
        (
            "redirect to another host",
            &[("redirect_uri", "https://evil.example.com/callback")],
        ),
    ];
    for (what, overrides) in page_cases {
        let mut params: Vec<(&str, &str)> = base.to_vec();
        params.extend_from_slice(overrides);
        let res = authorize(&issuer, &params).await;
        assert_eq!(res.status(), 400, "{what}");
        assert!(res.headers().get("location").is_none(), "{what}");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
    // A loopback IP redirect may use another port (RFC 8252 §7.3).
    let mut params: Vec<(&str, &str)> = base.to_vec();
    params.push(("redirect_uri", "http://127.0.0.1:8123/callback"));
    let res = authorize(&issuer, &params).await;
    assert_eq!(res.status(), 302);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("http://127.0.0.1:8123/callback?code="));
}

#[tokio::test]
async fn the_consent_page_grants_once_and_can_deny() {
    let issuer = start(Consent::Page).await;
    let (status, answer) = register(
        &issuer,
        json!({ "client_name": "<script>alert(1)</script>", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let client_id = answer["client_id"].as_str().unwrap();
    let params = [
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("resource", RESOURCE),
        ("scope", "mcp:read mcp:write"),
    ];

    let page = authorize(&issuer, &params).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>"),
        "the client name must be escaped"
    );
    assert!(
        html.contains("&lt;script&gt;") && html.contains(RESOURCE) && html.contains("mcp:write")
    );
    let consent = html
        .split("name=\"consent\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    let post = |decision: &'static str, consent: String| {
        let url = issuer.authorization_endpoint();
        async move {
            post_form(
                url,
                &[("consent", consent.as_str()), ("decision", decision)],
                None,
            )
            .await
        }
    };
    let allowed = post("allow", consent.clone()).await;
    let got = redirected(&allowed);
    assert!(got.contains_key("code"));
    assert_eq!(got["state"], "xyz state");
    // The same consent cannot be answered twice.
    assert_eq!(post("allow", consent).await.status(), 400);

    let page = authorize(&issuer, &params).await.text().await.unwrap();
    let consent = page
        .split("name=\"consent\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let denied = post("deny", consent).await;
    let got = redirected(&denied);
    assert_eq!(got["error"], "access_denied");
    assert!(!got.contains_key("code"));
}

#[tokio::test]
async fn registration_checks_its_metadata() {
    let issuer = start(Consent::Auto).await;
    let cases = [
        (json!({}), "invalid_redirect_uri"),
        (json!({ "redirect_uris": [] }), "invalid_redirect_uri"),
        (
            json!({ "redirect_uris": ["http://evil.example.com/cb"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://app.example.com/cb#f"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": "http://localhost/cb" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "grant_types": ["implicit"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "response_types": ["token"] }),
            "invalid_client_metadata",
        ),
        (json!([1, 2]), "invalid_client_metadata"),
    ];
    for (metadata, error) in cases {
        let (status, answer) = register(&issuer, metadata.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{metadata}");
        assert_eq!(answer["error"], error, "{metadata}");
    }
    let res = http()
        .post(issuer.registration_endpoint())
        .body("redirect_uris=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = http()
        .post(issuer.registration_endpoint())
        .header("content-type", "application/json")
        .body(vec![b' '; 70 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn confidential_clients_authenticate_at_the_token_endpoint() {
    let issuer = start(Consent::Auto).await;
    // No method named: RFC 7591's default, client_secret_basic.
    let (status, answer) = register(&issuer, json!({ "redirect_uris": [REDIRECT] })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(answer["token_endpoint_auth_method"], "client_secret_basic");
    let client_id = answer["client_id"].as_str().unwrap().to_owned();
    let secret = answer["client_secret"].as_str().unwrap().to_owned();
    assert!(answer.get("refresh_token").is_none());

    let form = |code: &str| -> Vec<(&'static str, String)> {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", VERIFIER.to_owned()),
        ]
    };
    let pairs = |form: &[(&'static str, String)]| -> Vec<(&'static str, String)> { form.to_vec() };
    let send = |form: Vec<(&'static str, String)>, authorization: Option<String>| {
        let url = issuer.token_endpoint();
        async move {
            let borrowed: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(url, &borrowed, authorization.as_deref()).await
        }
    };
    let code = code_for(&issuer, &client_id, "mcp:read").await;
    // Without the secret.
    let mut public = form(&code);
    public.push(("client_id", client_id.clone()));
    let res = send(pairs(&public), None).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));

    // With a wrong secret.
    let code = code_for(&issuer, &client_id, "mcp:read").await;
    let wrong = STANDARD.encode(format!("{client_id}:not-the-secret"));
    let res = send(form(&code), Some(format!("Basic {wrong}"))).await;
    assert_eq!(res.status(), 401);

    // With it.
    let code = code_for(&issuer, &client_id, "mcp:read").await;
    let basic = STANDARD.encode(format!("{client_id}:{secret}"));
    let res = send(form(&code), Some(format!("Basic {basic}"))).await;
    assert_eq!(res.status(), 200);
    let answer = json_of(res).await;
    assert!(
        answer.get("refresh_token").is_none(),
        "refresh_token was not a registered grant type"
    );
    assert_eq!(
        claims(answer["access_token"].as_str().unwrap())["aud"],
        RESOURCE
    );
}

#[tokio::test]
async fn browsers_may_call_it_and_it_listens_on_loopback_only() {
    let issuer = start(Consent::Auto).await;
    let res = http()
        .request(reqwest::Method::OPTIONS, issuer.token_endpoint())
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert!(res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("content-type"));
    let res = http()
        .get(issuer.oauth_metadata_uri())
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "*");

    let refused = DevIssuer::builder()
        .bind("0.0.0.0:0".parse().unwrap())
        .authorization_server(Consent::Auto)
        .start()
        .await;
    assert!(
        matches!(refused, Err(TestkitError::InvalidConfig(_))),
        "{refused:?}"
    );
}
