//! Reading an introspection answer: what the HTTP status says (a definite statement about the token, or a
//! failure of the authorization server), and the RFC 7662 rules for the JSON of an answer.
//!
//! | answer | outcome |
//! |---|---|
//! | 2xx, JSON object | judged by [`Rules::judge`] (`"active": true`, time, audience, issuer, type, a `cnf` the layer checks) |
//! | 2xx, not a JSON object | 503 |
//! | 401, 403 | 503: the authorization server refused *our* credentials (logged as an error) |
//! | other 4xx with an OAuth error body (`{"error":"unsupported_token_type"}`, …) | `invalid_token` (cached as a negative answer), except `invalid_client` / `unauthorized_client` (our credentials: 503) |
//! | other 4xx without an OAuth error body, 3xx, 5xx, timeouts, oversize | 503 |

use serde_json::{Map, Value};

use crate::bind::Confirmation;
use crate::cache::unix_now;
use crate::error::{Detail, InvalidToken, Unavailable, ValidationError};
use crate::fetch::Answer;
use crate::json;
use crate::scope::ScopeSet;
use crate::token::AccessToken;
use crate::validate::ValidationContext;

/// A definite answer as the cache keeps it: the token, or why it is refused (the log-only detail is logged
/// when the answer arrives and not kept).
pub(super) type Outcome = Result<AccessToken, InvalidToken>;

/// A judged answer: the token, or the refusal with its log-only [`Detail`].
pub(super) type Judged = Result<AccessToken, ValidationError>;

/// What an HTTP answer of the introspection endpoint means: the JSON to judge, a definite refusal, or a
/// failure (`Err`, 503).
pub(super) fn classify(
    answer: Answer,
) -> Result<Result<Map<String, Value>, InvalidToken>, ValidationError> {
    let unavailable = || ValidationError::unavailable(Unavailable::Introspection);
    let body = json::parse_object(&answer.body);
    match answer.status {
        200..=299 => match body {
            Some(object) => Ok(Ok(object)),
            None => {
                tracing::warn!("the introspection response is not a JSON object");
                Err(unavailable())
            }
        },
        401 | 403 => {
            tracing::error!(
                status = answer.status,
                "the introspection endpoint refused this resource server's credentials"
            );
            Err(unavailable())
        }
        status => match body.as_ref().and_then(|b| b.get("error")) {
            Some(Value::String(error)) if is_client_error(error) => {
                tracing::error!(
                    status,
                    "the introspection endpoint refused this resource server's credentials"
                );
                Err(unavailable())
            }
            // A definite OAuth error about the request, i.e. about the token we sent (oidc-provider answers
            // `400 unsupported_token_type` for a JWT it did not issue): the token is refused, and the
            // refusal may be cached like an inactive answer.
            Some(Value::String(_)) => {
                tracing::debug!(status, "the introspection endpoint refused the token");
                Ok(Err(InvalidToken::Inactive))
            }
            _ => {
                tracing::warn!(status, "introspection failed");
                Err(unavailable())
            }
        },
    }
}

/// OAuth error codes that are about the caller's client authentication, not about the token.
fn is_client_error(error: &str) -> bool {
    matches!(error, "invalid_client" | "unauthorized_client")
}

/// The validator's rules for an answer.
pub(super) struct Rules<'a> {
    pub(super) issuer: Option<&'a str>,
    /// Explicitly configured audiences; empty: the layer's resource.
    pub(super) audiences: &'a [String],
    pub(super) allow_missing_audience: bool,
    pub(super) leeway: u64,
}

impl Rules<'_> {
    /// Applies the RFC 7662 rules to a response, for the layer described by `context`.
    pub(super) fn judge(
        &self,
        mut response: Map<String, Value>,
        context: &ValidationContext,
    ) -> Judged {
        let refused = ValidationError::refused;
        if response.get("active") != Some(&Value::Bool(true)) {
            // Inactive: nothing else in the response is read.
            return Err(InvalidToken::Inactive.into());
        }
        let now = unix_now() as f64;
        let leeway = self.leeway as f64;
        let not_a_date = |claim| refused(InvalidToken::MissingClaim, Detail::note(claim));
        let exp =
            json::numeric_date(&response, "exp").map_err(|()| not_a_date("exp is not a number"))?;
        if let Some(exp) = exp.filter(|exp| now >= exp + leeway) {
            return Err(refused(
                InvalidToken::Expired,
                Detail::time("exp", exp, now),
            ));
        }
        let nbf =
            json::numeric_date(&response, "nbf").map_err(|()| not_a_date("nbf is not a number"))?;
        if let Some(nbf) = nbf.filter(|nbf| *nbf > now + leeway) {
            return Err(refused(
                InvalidToken::NotYetValid,
                Detail::time("nbf", nbf, now),
            ));
        }
        let resource = [context.resource().to_owned()];
        let accepted = if self.audiences.is_empty() {
            &resource[..]
        } else {
            self.audiences
        };
        match json::audience_matches(&response, accepted) {
            Ok(Some(true)) => {}
            Ok(None) if self.allow_missing_audience => {}
            Ok(_) => {
                let found = json::audiences(&response).join(" ");
                let found = if found.is_empty() { "(no aud)" } else { &found };
                let detail = Detail::mismatch("aud", &accepted.join(" "), found);
                return Err(refused(InvalidToken::WrongAudience, detail));
            }
            Err(()) => {
                let note = Detail::note("aud is neither a string nor an array of strings");
                return Err(refused(InvalidToken::Malformed, note));
            }
        }
        match (response.get("iss"), self.issuer) {
            (None, _) | (Some(_), None) => {}
            (Some(Value::String(iss)), Some(expected)) if iss == expected => {}
            (Some(Value::String(iss)), Some(expected)) => {
                let detail = Detail::mismatch("iss", expected, iss);
                return Err(refused(InvalidToken::WrongIssuer, detail));
            }
            (Some(_), Some(_)) => {
                let note = Detail::note("iss is not a string");
                return Err(refused(InvalidToken::WrongIssuer, note));
            }
        }
        // Bound to a key or certificate (RFC 9449 §6.2, RFC 8705 §3.2): accepted only when the layer checks
        // that kind of binding, which it then does on this request.
        let confirmation = match response.get("cnf") {
            None => Confirmation::default(),
            Some(cnf) => match Confirmation::from_json(cnf, context.bindings()) {
                Some(confirmation) => confirmation,
                None => {
                    let note = Detail::note(
                        "the answer carries a cnf this guard does not check (DPoP or certificate bound)",
                    );
                    return Err(refused(InvalidToken::SenderConstrained, note));
                }
            },
        };
        match response.get("token_type") {
            None => {}
            Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
            // A DPoP-bound token is introspected with `token_type: DPoP` (RFC 9449 §6.2).
            Some(Value::String(t)) if t == "DPoP" && confirmation.jkt().is_some() => {}
            Some(Value::String(t)) => {
                return Err(refused(
                    InvalidToken::WrongType,
                    Detail::found("token_type", t),
                ))
            }
            Some(_) => {
                let note = Detail::note("token_type is not a string");
                return Err(refused(InvalidToken::WrongType, note));
            }
        }
        let scopes = match response.get("scope") {
            None => ScopeSet::empty(),
            Some(Value::String(s)) => ScopeSet::parse_lenient(s),
            Some(_) => {
                let note = Detail::note("scope is not a string");
                return Err(refused(InvalidToken::Malformed, note));
            }
        };
        let mut builder = AccessToken::builder()
            .scope_set(scopes)
            .confirmation(confirmation);
        if let Some(sub) = json::string(&response, "sub") {
            builder = builder.subject(sub);
        }
        if let Some(client) = json::string(&response, "client_id") {
            builder = builder.client_id(client);
        }
        if let Some(iss) = json::string(&response, "iss").or_else(|| self.issuer.map(str::to_owned))
        {
            builder = builder.issuer(iss);
        }
        if let Some(exp) = exp {
            builder = builder.expires_at(json::system_time(json::clamp_date(exp)));
        }
        for aud in json::audiences(&response) {
            builder = builder.audience(aud);
        }
        response.remove("active");
        Ok(builder.raw_claims(response).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use serde_json::json;

    const RESOURCE: &str = "https://rs.example.com/mcp";

    fn rules() -> Rules<'static> {
        Rules {
            issuer: Some("https://as.example.com"),
            audiences: &[],
            allow_missing_audience: false,
            leeway: 60,
        }
    }

    /// The judgement as the cache keeps it (the reason without its detail).
    fn judge(rules: &Rules<'_>, response: Value) -> Outcome {
        let judged = rules.judge(
            response.as_object().unwrap().clone(),
            &ValidationContext::new(RESOURCE),
        );
        judged.map_err(|e| e.reason().unwrap())
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn only_json_true_is_active() {
        let rules = rules();
        let good = json!({"active": true, "aud": RESOURCE, "scope": "a b", "sub": "u"});
        let token = judge(&rules, good).unwrap();
        assert_eq!(token.subject(), Some("u"));
        assert_eq!(token.scopes().to_scope_string(), "a b");
        for inactive in [
            json!({"active": false, "aud": RESOURCE}),
            json!({"active": "true", "aud": RESOURCE}),
            json!({"active": 1, "aud": RESOURCE}),
            json!({"aud": RESOURCE}),
        ] {
            assert_eq!(judge(&rules, inactive).unwrap_err(), InvalidToken::Inactive);
        }
    }

    #[test]
    fn claims_are_checked_locally() {
        let rules = rules();
        let base = |extra: Value| {
            let mut v = json!({"active": true, "aud": RESOURCE});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let now = unix_now();
        let refused = |extra: Value| judge(&rules, base(extra)).unwrap_err();
        assert_eq!(refused(json!({"exp": now - 120})), InvalidToken::Expired);
        assert!(
            judge(&rules, base(json!({"exp": now - 30}))).is_ok(),
            "within leeway"
        );
        assert_eq!(
            refused(json!({"nbf": now + 120})),
            InvalidToken::NotYetValid
        );
        assert_eq!(
            refused(json!({"aud": "https://other"})),
            InvalidToken::WrongAudience
        );
        assert_eq!(
            judge(&rules, json!({"active": true})).unwrap_err(),
            InvalidToken::WrongAudience,
            "a missing aud is refused by default"
        );
        assert_eq!(
            refused(json!({"iss": "https://evil"})),
            InvalidToken::WrongIssuer
        );
        assert!(judge(&rules, base(json!({"iss": "https://as.example.com"}))).is_ok());
        assert_eq!(
            refused(json!({"token_type": "DPoP"})),
            InvalidToken::WrongType
        );
        assert!(judge(&rules, base(json!({"token_type": "bearer"}))).is_ok());
        assert_eq!(refused(json!({"scope": ["a"]})), InvalidToken::Malformed);
        for cnf in [
            json!({"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}),
            json!({"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}),
            json!({"cnf": {}}),
            json!({"cnf": null}),
        ] {
            assert_eq!(refused(cnf), InvalidToken::SenderConstrained);
        }
    }

    #[test]
    fn the_audience_is_the_asking_layers() {
        let rules = rules();
        let answer = json!({"active": true, "aud": RESOURCE});
        let other = ValidationContext::new("https://rs.example.com/api");
        let refused = rules
            .judge(answer.as_object().unwrap().clone(), &other)
            .unwrap_err();
        assert_eq!(refused.reason(), Some(InvalidToken::WrongAudience));
        assert_eq!(
            refused.detail().to_string(),
            format!(r#"aud: expected "https://rs.example.com/api", found "{RESOURCE}""#),
        );
    }

    #[test]
    fn missing_audience_can_be_allowed_explicitly() {
        let rules = Rules {
            allow_missing_audience: true,
            ..rules()
        };
        assert!(judge(&rules, json!({"active": true})).is_ok());
        assert_eq!(
            judge(&rules, json!({"active": true, "aud": "x"})).unwrap_err(),
            InvalidToken::WrongAudience,
            "a present aud must still name us"
        );
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify(answer(200, r#"{"active":false}"#)),
            Ok(Ok(_))
        ));
        let definite = [
            (400, r#"{"error":"unsupported_token_type"}"#),
            (
                400,
                r#"{"error":"invalid_request","error_description":"x"}"#,
            ),
            (404, r#"{"error":"invalid_token"}"#),
        ];
        for (status, body) in definite {
            assert_eq!(
                classify(answer(status, body)).unwrap(),
                Err(InvalidToken::Inactive),
                "{status} {body}"
            );
        }
        let failures = [
            (200, "not json"),
            (401, r#"{"error":"invalid_client"}"#),
            (403, ""),
            (400, r#"{"error":"invalid_client"}"#),
            (400, r#"{"error":"unauthorized_client"}"#),
            (400, "<html>bad request</html>"),
            (404, ""),
            (429, r#"{"message":"slow down"}"#),
            (400, r#"{"error":42}"#),
        ];
        for (status, body) in failures {
            assert!(
                matches!(
                    classify(answer(status, body)),
                    Err(ValidationError::Unavailable { .. })
                ),
                "{status} {body}"
            );
        }
    }
}
