//! The verification steps of a JWT access token, in order: header, key, signature, claims (RFC 9068, RFC 8725).

use crate::bind::{decode_thumbprint, Confirmation};
use crate::cache::{unix_now, unix_now_ms};
use crate::error::{Detail, InvalidToken, Unavailable, ValidationError};
use crate::json;
use crate::scope::ScopeSet;
use crate::token::{AccessToken, BearerToken, Span, Text, VerifiedPayload};
use crate::validate::alg::Algorithm;
use crate::validate::jose::{decode_b64, Audience, Claims, Cnf, Date, Header, Kid, Member, Scp};
use crate::validate::jwks::{KeyMiss, RefreshError, Snapshot, Trigger};
use crate::validate::{ValidationContext, ValidationResult};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::borrow::Cow;
use std::sync::Arc;

#[allow(unused_imports)]
use super::*;

impl Inner {
    /// Steps 1–3: everything but the signature.
    pub(super) fn check(
        &self,
        token: &[u8],
        context: &ValidationContext,
    ) -> Result<Checked, ValidationError> {
        let refused = ValidationError::refused;
        // Exactly two dots (`memchr`: many bytes at a time; serde_json already depends on it).
        let Some(first) = memchr::memchr(b'.', token) else {
            return Err(InvalidToken::Malformed.into());
        };
        let Some(second) = memchr::memchr(b'.', &token[first + 1..]).map(|i| first + 1 + i) else {
            return Err(InvalidToken::Malformed.into());
        };
        if memchr::memchr(b'.', &token[second + 1..]).is_some() {
            let note = Detail::note("more than three dot-separated parts (a JWE, or not a JWT)");
            return Err(refused(InvalidToken::Malformed, note));
        }
        let (header_b64, payload_b64) = (&token[..first], &token[first + 1..second]);
        // (An empty signature is left to the algorithm check — `alg: none` is refused as such — and to the
        // signature check.)
        if header_b64.is_empty() || payload_b64.is_empty() {
            return Err(InvalidToken::Malformed.into());
        }

        let (alg, kid) = match self.header_memo.load().as_deref() {
            Some(memo) if *memo.b64 == *header_b64 => (memo.alg, memo.kid.clone()),
            _ => self.check_header(header_b64)?,
        };

        // Decoded straight into the buffer an accepted token keeps as its raw claims (one allocation).
        let mut payload = Vec::with_capacity(base64::decoded_len_estimate(payload_b64.len()));
        URL_SAFE_NO_PAD
            .decode_vec(payload_b64, &mut payload)
            .map_err(|_| {
                refused(
                    InvalidToken::Malformed,
                    Detail::note("payload is not base64url"),
                )
            })?;
        let claims = Claims::parse(&payload).ok_or_else(|| {
            refused(
                InvalidToken::Malformed,
                Detail::note("payload is not a JSON object of claims"),
            )
        })?;
        match &claims.iss {
            Member::Str(iss) if **iss == *self.issuer => {}
            Member::Str(iss) => {
                let found = Detail::mismatch("iss", &self.issuer, iss);
                return Err(refused(InvalidToken::WrongIssuer, found));
            }
            _ => {
                let note = Detail::note("no iss claim, or not a string");
                return Err(refused(InvalidToken::WrongIssuer, note));
            }
        }
        self.check_audience(&claims.aud, context)?;
        let confirmation = confirmation_of(&claims.cnf, context)?;
        let now = unix_now() as f64;
        let leeway = self.leeway as f64;
        let Date::At(exp) = claims.exp else {
            let note = Detail::note("no exp claim, or not a number");
            return Err(refused(InvalidToken::MissingClaim, note));
        };
        if now >= exp + leeway {
            return Err(refused(
                InvalidToken::Expired,
                Detail::time("exp", exp, now),
            ));
        }
        for (claim, date) in [("nbf", claims.nbf), ("iat", claims.iat)] {
            match date {
                Date::Invalid => {
                    let note = Detail::note("nbf or iat is not a number");
                    return Err(refused(InvalidToken::MissingClaim, note));
                }
                Date::At(t) if t > now + leeway => {
                    return Err(refused(
                        InvalidToken::NotYetValid,
                        Detail::time(claim, t, now),
                    ));
                }
                _ => {}
            }
        }
        let exp = json::clamp_date(exp);
        let mut verified = self.access_token(&payload, &claims, exp);
        verified.json = payload;
        verified.confirmation = confirmation;
        Ok(Checked {
            alg,
            kid,
            header_len: first,
            signing_input_len: second,
            signature_start: second + 1,
            access: AccessToken::from_verified_payload(verified),
            exp,
        })
    }

    /// Step 2, the JOSE header: the algorithm (allowed, and not `none`), no `crit`, the `typ`, the `kid`.
    pub(super) fn check_header(
        &self,
        header_b64: &[u8],
    ) -> Result<(Algorithm, Option<Kid>), ValidationError> {
        let refused = ValidationError::refused;
        let mut header_stack = [0u8; HEADER_STACK_BYTES];
        let mut header_heap = Vec::new();
        let malformed = |note| refused(InvalidToken::Malformed, Detail::note(note));
        let header_bytes = decode_b64(header_b64, &mut header_stack, &mut header_heap)
            .ok_or_else(|| malformed("header is not base64url"))?;
        let header =
            Header::parse(header_bytes).ok_or_else(|| malformed("header is not a JSON object"))?;
        let alg = match &header.alg {
            Member::Str(name) => Algorithm::from_name(name)
                .filter(|alg| self.algorithms.contains(*alg))
                .ok_or_else(|| {
                    refused(
                        InvalidToken::DisallowedAlgorithm,
                        Detail::found("alg", name),
                    )
                })?,
            _ => return Err(malformed("no alg header, or not a string")),
        };
        if header.crit {
            // No JWS extension is understood here, so any `crit` makes the token invalid (RFC 7515 §4.1.11).
            let note = Detail::note("the header has a crit member");
            return Err(refused(InvalidToken::UnsupportedCritical, note));
        }
        match &header.typ {
            Member::Str(typ) => {
                let is = |name: &str| typ.eq_ignore_ascii_case(name);
                let access_token = is("at+jwt") || is("application/at+jwt");
                let plain_jwt = is("jwt") || is("application/jwt");
                if !(access_token || (plain_jwt && self.typ == TypPolicy::AlsoJwt)) {
                    return Err(refused(InvalidToken::WrongType, Detail::found("typ", typ)));
                }
            }
            Member::Absent if self.typ == TypPolicy::AlsoJwt => {}
            Member::Absent => {
                let note = Detail::note("no typ header (RFC 9068 requires at+jwt)");
                return Err(refused(InvalidToken::WrongType, note));
            }
            _ => {
                let note = Detail::note("typ header is not a string");
                return Err(refused(InvalidToken::WrongType, note));
            }
        }
        let kid = match &header.kid {
            Member::Absent => None,
            Member::Str(kid) => Some(Kid::new(kid).ok_or_else(|| malformed("kid is too long"))?),
            Member::Other => return Err(malformed("kid header is not a string")),
        };
        Ok((alg, kid))
    }

    pub(super) fn check_audience(
        &self,
        aud: &Audience<'_>,
        context: &ValidationContext,
    ) -> Result<(), ValidationError> {
        let names_us = |aud: &str| {
            if self.audiences.is_empty() {
                aud == context.resource()
            } else {
                self.audiences.iter().any(|a| a == aud)
            }
        };
        let ok = match aud {
            Audience::Absent => false,
            Audience::One(aud) => names_us(aud),
            Audience::Many(auds) => auds.iter().any(|aud| names_us(aud)),
            Audience::Invalid => {
                let note = Detail::note("aud is neither a string nor an array of strings");
                return Err(ValidationError::refused(InvalidToken::Malformed, note));
            }
        };
        if ok {
            return Ok(());
        }
        // The refusal path only: name what was expected and what the token carried (joined lists are
        // built only when there are several; a single value is not copied before the detail cuts it).
        let joined_expected;
        let expected = match &self.audiences[..] {
            [] => context.resource(),
            [one] => one.as_str(),
            many => {
                joined_expected = many.join(" ");
                &joined_expected
            }
        };
        let joined_found;
        let found = match aud {
            Audience::One(aud) => &**aud,
            Audience::Many(auds) => {
                joined_found = auds.join(" ");
                &joined_found
            }
            _ => "(no aud claim)",
        };
        let detail = Detail::mismatch("aud", expected, found);
        Err(ValidationError::refused(
            InvalidToken::WrongAudience,
            detail,
        ))
    }

    /// The access token a token with these claims stands for (used only once the signature is verified).
    /// Strings the payload holds without escapes are not copied: the token keeps the payload bytes and
    /// their offsets, and turns the claims into JSON values only if a handler asks for them.
    /// (`json` is left empty for the caller to move the payload in once `claims` no longer borrow it.)
    pub(super) fn access_token(
        &self,
        payload: &[u8],
        claims: &Claims<'_>,
        exp: u64,
    ) -> VerifiedPayload {
        let text = |member: &Member<'_>| match member {
            Member::Str(Cow::Borrowed(s)) => {
                Span::of(payload, s).map_or_else(|| Text::Owned((*s).into()), Text::InClaims)
            }
            Member::Str(Cow::Owned(s)) => Text::Owned(s.as_str().into()),
            _ => Text::Absent,
        };
        let scope = match &claims.scope {
            Member::Str(s) => &**s,
            _ => "",
        };
        let scopes = match &claims.scp {
            Scp::Str(scp) if self.scp_claim => {
                ScopeSet::from_iter_lenient(scope.split(' ').chain(scp.split(' ')))
            }
            Scp::Many(items) if self.scp_claim => {
                ScopeSet::from_iter_lenient(scope.split(' ').chain(items.iter().map(|s| &**s)))
            }
            // The usual case: one space-separated `scope`, parsed straight into the set.
            _ => ScopeSet::parse_lenient(scope),
        };
        // RFC 9068 `client_id`; else what vendors use: `azp` (Auth0 default profile, Entra v2), `cid` (Okta),
        // `appid` (Entra v1).
        let client_id = [&claims.client_id, &claims.azp, &claims.cid, &claims.appid]
            .into_iter()
            .map(text)
            .find(|found| !matches!(found, Text::Absent))
            .unwrap_or_default();
        VerifiedPayload {
            json: Vec::new(),
            issuer: self.issuer.clone(),
            subject: text(&claims.sub),
            client_id,
            has_audience: matches!(claims.aud, Audience::One(_) | Audience::Many(_)),
            scopes,
            expires_at: json::system_time(exp),
            confirmation: Confirmation::default(),
        }
    }

    /// Step 4 with a key set in hand. `Err(None)` means the key is not in this set.
    pub(super) fn verify(
        &self,
        checked: &Checked,
        token: &[u8],
        snapshot: &Snapshot,
    ) -> Result<(), Option<ValidationError>> {
        let kid = checked.kid.as_ref().map(Kid::as_str);
        let refused = |reason, note| Some(ValidationError::refused(reason, Detail::note(note)));
        let key = match snapshot.keys.select(kid, checked.alg) {
            Ok(key) => key,
            Err(KeyMiss::NotFound) => return Err(None),
            Err(KeyMiss::WrongAlgorithm) => {
                let detail = Detail::found("alg", checked.alg.name());
                return Err(Some(ValidationError::refused(
                    InvalidToken::DisallowedAlgorithm,
                    detail,
                )));
            }
            Err(KeyMiss::Ambiguous) => {
                let note = "no kid, and more than one key fits the algorithm";
                return Err(refused(InvalidToken::UnknownKey, note));
            }
        };
        if key.key.verify(
            checked.alg,
            &token[..checked.signing_input_len],
            &token[checked.signature_start..],
        ) {
            Ok(())
        } else {
            Err(Some(ValidationError::refused(
                InvalidToken::BadSignature,
                kid.map_or_else(|| Detail::note("no kid"), |kid| Detail::found("kid", kid)),
            )))
        }
    }

    /// The validated token (its signature verified), cached; its header remembered.
    pub(super) fn accept(
        &self,
        checked: Checked,
        token: &[u8],
        key: Option<[u8; 32]>,
        epoch: u64,
    ) -> AccessToken {
        self.remember_header(&checked, token);
        let Checked { access, exp, .. } = checked;
        if let (Some(cache), Some(key)) = (&self.cache, key) {
            cache.insert(key, access.clone(), exp, unix_now_ms(), epoch);
        }
        access
    }

    /// Keeps the header of a verified token, so that the next token with the very same header (most tokens
    /// of an issuer share one) skips decoding and parsing it. Only verified tokens are remembered: junk
    /// cannot make the memo churn.
    pub(super) fn remember_header(&self, checked: &Checked, token: &[u8]) {
        let Some(header_b64) = token.get(..checked.header_len) else {
            return;
        };
        let current = self.header_memo.load();
        if current
            .as_deref()
            .is_some_and(|memo| *memo.b64 == *header_b64)
        {
            return;
        }
        drop(current);
        self.header_memo.store(Some(Arc::new(HeaderMemo {
            b64: header_b64.into(),
            alg: checked.alg,
            kid: checked.kid.clone(),
        })));
    }

    /// Starts the background refresher if it is not running (the validator was built outside a runtime).
    pub(super) fn start_refresher(&self) {
        if self.refresher.get().is_none() {
            if let Some(task) = self.keys.spawn_refresher() {
                if let Err(task) = self.refresher.set(task) {
                    task.abort();
                }
            }
        }
    }

    /// Verifies with the current key set, or says which kind of fetch would be needed.
    pub(super) fn try_verify(
        &self,
        checked: &Checked,
        token: &[u8],
    ) -> Result<Result<(), ValidationError>, Trigger> {
        let guard = self.keys.usable().ok_or(Trigger::NoKeys)?;
        let snapshot = guard.as_ref().ok_or(Trigger::NoKeys)?;
        match self.verify(checked, token, snapshot) {
            Ok(()) => Ok(Ok(())),
            Err(Some(invalid)) => Ok(Err(invalid)),
            Err(None) => Err(Trigger::UnknownKid),
        }
    }

    /// The slow path: the key set is missing, stale, or lacks the token's key. Fetches (coalesced and
    /// rate limited), then tries once more.
    pub(super) async fn validate_with_fetch(
        self: Arc<Self>,
        checked: Checked,
        token: BearerToken,
        key: Option<[u8; 32]>,
    ) -> ValidationResult {
        let epoch = self.keys.removal_epoch();
        let generation = self.keys.generation();
        let trigger = match self.try_verify(&checked, token.as_bytes()) {
            Ok(Ok(())) => return Ok(self.accept(checked, token.as_bytes(), key, epoch)),
            Ok(Err(invalid)) => return Err(invalid),
            Err(trigger) => trigger,
        };
        let kid = checked.kid.as_ref().map(Kid::as_str);
        if trigger == Trigger::UnknownKid && !self.keys.may_refetch_for(kid) {
            return Err(unknown_key(kid));
        }
        match self.keys.refresh(generation, trigger).await {
            Ok(()) => {}
            Err(RefreshError::RateLimited) if trigger == Trigger::UnknownKid => {
                return Err(unknown_key(kid));
            }
            Err(RefreshError::RateLimited) => {
                return Err(ValidationError::unavailable(Unavailable::KeySet))
            }
            Err(RefreshError::Failed(reason)) => return Err(ValidationError::unavailable(reason)),
        }
        let epoch = self.keys.removal_epoch();
        match self.try_verify(&checked, token.as_bytes()) {
            Ok(Ok(())) => Ok(self.accept(checked, token.as_bytes(), key, epoch)),
            Ok(Err(invalid)) => Err(invalid),
            Err(Trigger::UnknownKid) => {
                // Fetched and still no such key: remember the kid so tokens naming it are refused at once.
                let kid = checked.kid.as_ref().map(Kid::as_str);
                if let Some(kid) = kid {
                    self.keys.remember_missing(kid);
                }
                Err(unknown_key(kid))
            }
            Err(_) => Err(ValidationError::unavailable(Unavailable::KeySet)),
        }
    }
}

/// `unknown_key`, naming the `kid` the key set lacks (or saying there was none).
pub(super) fn unknown_key(kid: Option<&str>) -> ValidationError {
    let detail = kid.map_or_else(
        || Detail::note("no kid, and no key fits the algorithm"),
        |kid| Detail::found("kid", kid),
    );
    ValidationError::refused(InvalidToken::UnknownKey, detail)
}

/// The binding a `cnf` claim states, when the layer asking checks that kind of binding. A sender-constrained
/// token (RFC 9449 `jkt`, RFC 8705 `x5t#S256`) proves nothing without its proof of possession: a kind of
/// binding the layer does not check, any other confirmation method, or a malformed value refuses the token.
fn confirmation_of(
    cnf: &Cnf<'_>,
    context: &ValidationContext,
) -> Result<Confirmation, ValidationError> {
    let refused = |note: &'static str| {
        Err(ValidationError::refused(
            InvalidToken::SenderConstrained,
            Detail::note(note),
        ))
    };
    let (jkt, x5t_s256) = match cnf {
        Cnf::Absent => return Ok(Confirmation::default()),
        Cnf::Invalid | Cnf::Methods { other: true, .. } => {
            return refused("cnf is not an object of jkt and x5t#S256 strings")
        }
        Cnf::Methods {
            jkt: None,
            x5t_s256: None,
            ..
        } => return refused("cnf names no confirmation method"),
        Cnf::Methods { jkt, x5t_s256, .. } => (jkt, x5t_s256),
    };
    let bindings = context.bindings();
    let mut confirmation = Confirmation::default();
    if let Some(jkt) = jkt {
        if !bindings.dpop {
            return refused(
                "the token is DPoP-bound (cnf.jkt) and this guard does not accept DPoP",
            );
        }
        let Some(jkt) = decode_thumbprint(jkt) else {
            return refused("cnf.jkt is not a base64url SHA-256 thumbprint");
        };
        confirmation = confirmation.with_jkt(jkt);
    }
    if let Some(x5t) = x5t_s256 {
        if !bindings.certificate {
            return refused(
                "the token is certificate-bound and this guard does not check certificates",
            );
        }
        let Some(x5t) = decode_thumbprint(x5t) else {
            return refused("cnf x5t#S256 is not a base64url SHA-256 thumbprint");
        };
        confirmation = confirmation.with_certificate_sha256(x5t);
    }
    Ok(confirmation)
}
