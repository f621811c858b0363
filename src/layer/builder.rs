//! [`BearerAuthLayerBuilder`]: every setting of the guard, checked once by `build`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::challenge::{Challenger, ErrorBody, JsonErrorBody};
use crate::error::BuildError;
use crate::extract::DEFAULT_MAX_TOKEN_BYTES;
use crate::metadata::{MetadataResponder, ProtectedResourceMetadata, DEFAULT_METADATA_MAX_AGE};
use crate::resource::ResourceUrl;
use crate::scope::{check_hierarchy, Requirement, ScopeHierarchy, ScopePolicy};
use crate::validate::{TokenValidator, ValidationContext};

use super::{BearerAuthLayer, ScopeCheck, Shared};

/// Builds a [`BearerAuthLayer`]; [`build`](BearerAuthLayerBuilder::build) refuses a bad configuration.
pub struct BearerAuthLayerBuilder {
    metadata: ProtectedResourceMetadata,
    validator: Option<Arc<dyn TokenValidator>>,
    policy: Arc<dyn ScopePolicy>,
    hierarchy: ScopeHierarchy,
    max_token_bytes: usize,
    strip_authorization: bool,
    root_metadata_alias: bool,
    metadata_max_age: Duration,
    realm: Option<String>,
    include_granted_scopes: bool,
    error_body: Arc<dyn ErrorBody>,
    check_authorization_servers: bool,
    #[cfg(feature = "dpop")]
    dpop: Option<crate::bind::dpop::DpopConfig>,
    certificate_bound_tokens: bool,
}

impl Default for BearerAuthLayerBuilder {
    fn default() -> Self {
        Self {
            metadata: ProtectedResourceMetadata::default(),
            validator: None,
            policy: Arc::new(Requirement::none()),
            hierarchy: ScopeHierarchy::new(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            strip_authorization: true,
            root_metadata_alias: false,
            metadata_max_age: DEFAULT_METADATA_MAX_AGE,
            realm: None,
            include_granted_scopes: false,
            error_body: Arc::new(JsonErrorBody),
            check_authorization_servers: true,
            #[cfg(feature = "dpop")]
            dpop: None,
            certificate_bound_tokens: false,
        }
    }
}

impl fmt::Debug for BearerAuthLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuthLayerBuilder")
            .field("metadata", &self.metadata)
            .field("has_validator", &self.validator.is_some())
            .finish_non_exhaustive()
    }
}

impl BearerAuthLayerBuilder {
    /// The resource identifier: the exact URL clients call (e.g. `https://api.example.com/mcp`). It is the
    /// metadata `resource`, the base of the well-known URL, and the audience tokens are checked against.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.metadata.resource = resource.into();
        self
    }

    /// Adds a trusted authorization server's issuer identifier (byte-for-byte its `issuer`).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.metadata.authorization_servers.push(issuer.into());
        self
    }

    /// Sets `scopes_supported` in the metadata (the minimal scopes for basic use).
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.metadata.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the whole metadata document (its `resource` and `authorization_servers` included).
    pub fn metadata(mut self, metadata: ProtectedResourceMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The token validator.
    pub fn validator(mut self, validator: impl TokenValidator) -> Self {
        self.validator = Some(Arc::new(validator));
        self
    }

    /// The token validator, already shared.
    pub fn shared_validator(mut self, validator: Arc<dyn TokenValidator>) -> Self {
        self.validator = Some(validator);
        self
    }

    /// The scope policy (a [`Requirement`], a [`RoutePolicy`](crate::scope::RoutePolicy) or a closure).
    pub fn policy(mut self, policy: impl ScopePolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Shorthand for [`policy`](Self::policy) with the same requirement for every request.
    pub fn require(self, requirement: Requirement) -> Self {
        self.policy(requirement)
    }

    /// Broader scopes that imply narrower ones.
    pub fn scope_hierarchy(mut self, hierarchy: ScopeHierarchy) -> Self {
        self.hierarchy = hierarchy;
        self
    }

    /// The largest token accepted, in bytes (default 8 KiB); larger ones get 400 before any validation.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Remove the `Authorization` header before calling the inner service (default: `true`). The MCP
    /// specification forbids passing the client's token upstream; keep it only if the inner service
    /// needs the raw token (e.g. for a token exchange).
    pub fn strip_authorization_header(mut self, strip: bool) -> Self {
        self.strip_authorization = strip;
        self
    }

    /// Also answer the root well-known URL `/.well-known/oauth-protected-resource` (default: off).
    ///
    /// MCP 2025-11-25 clients fall back to it, but by RFC 9728 §3.3 a document there describes the
    /// origin, not `https://host/mcp`; enable it only for clients that need it.
    pub fn root_metadata_alias(mut self, enabled: bool) -> Self {
        self.root_metadata_alias = enabled;
        self
    }

    /// `Cache-Control: max-age` of the metadata document (default one hour).
    pub fn metadata_max_age(mut self, max_age: Duration) -> Self {
        self.metadata_max_age = max_age;
        self
    }

    /// A `realm` for the challenge (optional; characters outside RFC 6750 §3 are refused at build).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// In a 403 challenge, list the scopes already granted as well as those the operation needs
    /// (MCP 2025-11-25 style). Default: only the operation's scopes (MCP 2026-07-28 §11.1.1).
    pub fn challenge_includes_granted_scopes(mut self, include: bool) -> Self {
        self.include_granted_scopes = include;
        self
    }

    /// How rejection bodies are written (default [`JsonErrorBody`]); the status and challenge stay ours.
    pub fn error_body(mut self, body: impl ErrorBody) -> Self {
        self.error_body = Arc::new(body);
        self
    }

    /// Check that every advertised authorization server is an issuer the validator trusts, when the
    /// validator names its issuers ([`TokenValidator::trusted_issuers`]; default: on). Clients pick any
    /// advertised server, so one the validator does not trust sends them into tokens that are always
    /// refused. Turn it off only when the validator accepts that server's tokens in a way it cannot name
    /// (e.g. a custom validator wrapping a known one).
    pub fn check_authorization_servers(mut self, check: bool) -> Self {
        self.check_authorization_servers = check;
        self
    }

    /// Accepts DPoP-bound tokens with their proofs (RFC 9449), optionally or exclusively: see
    /// [`bind::dpop`](crate::bind::dpop). The metadata then advertises `dpop_signing_alg_values_supported`
    /// (and `dpop_bound_access_tokens_required` in [`DpopMode::Required`](crate::bind::dpop::DpopMode)).
    #[cfg(feature = "dpop")]
    pub fn dpop(mut self, config: crate::bind::dpop::DpopConfig) -> Self {
        self.dpop = Some(config);
        self
    }

    /// Accepts certificate-bound tokens (RFC 8705 `cnf["x5t#S256"]`), each checked against the
    /// [`ClientCertificate`](crate::bind::ClientCertificate) your TLS acceptor put into the request's
    /// extensions (see [`bind`](crate::bind)); the metadata then says
    /// `tls_client_certificate_bound_access_tokens: true`. Off by default: such tokens are refused.
    pub fn certificate_bound_tokens(mut self, accept: bool) -> Self {
        self.certificate_bound_tokens = accept;
        self
    }

    /// Checks the configuration and builds the layer.
    ///
    /// Besides each setting on its own, it refuses combinations the guard cannot honour: a validator that
    /// cannot serve this resource ([`TokenValidator::check_context`]: e.g. explicit audiences without it),
    /// an advertised authorization server the validator does not trust (see
    /// [`check_authorization_servers`](Self::check_authorization_servers)), and metadata that promises
    /// sender-constrained tokens by hand (`dpop_bound_access_tokens_required`,
    /// `dpop_signing_alg_values_supported`, `tls_client_certificate_bound_access_tokens`): those fields
    /// are set from [`dpop`](Self::dpop) and [`certificate_bound_tokens`](Self::certificate_bound_tokens),
    /// so the metadata promises exactly what the guard checks.
    pub fn build(self) -> Result<BearerAuthLayer, BuildError> {
        if self.metadata.resource.is_empty() {
            return Err(BuildError::MissingResource);
        }
        let resource = ResourceUrl::parse(&self.metadata.resource)?;
        let mut metadata = self.metadata.validated()?;
        // What the metadata says of sender constraints is what the guard enforces: set from the
        // configuration, never promised by hand.
        if metadata.dpop_bound_access_tokens_required
            || !metadata.dpop_signing_alg_values_supported.is_empty()
            || metadata.tls_client_certificate_bound_access_tokens
        {
            return Err(BuildError::InvalidMetadata(
                "the metadata promises sender-constrained (DPoP or certificate-bound) tokens by hand; \
                 configure them with `dpop` and `certificate_bound_tokens` instead",
            ));
        }
        metadata.tls_client_certificate_bound_access_tokens = self.certificate_bound_tokens;
        #[cfg(feature = "dpop")]
        let dpop = match self.dpop {
            Some(config) => {
                let check = crate::bind::dpop::DpopCheck::new(config, &resource.resource)?;
                metadata.dpop_signing_alg_values_supported = check
                    .config
                    .algorithms
                    .iter()
                    .map(|a| a.name().to_owned())
                    .collect();
                metadata.dpop_bound_access_tokens_required =
                    check.config.mode == crate::bind::dpop::DpopMode::Required;
                Some(Arc::new(check))
            }
            None => None,
        };
        let bindings = crate::bind::Bindings {
            #[cfg(feature = "dpop")]
            dpop: dpop.is_some(),
            #[cfg(not(feature = "dpop"))]
            dpop: false,
            certificate: self.certificate_bound_tokens,
        };
        let validator = self.validator.ok_or(BuildError::MissingValidator)?;
        let context = ValidationContext::with_bindings(resource.resource.as_str(), bindings);
        validator.check_context(&context)?;
        if self.check_authorization_servers {
            if let Some(trusted) = validator.trusted_issuers().filter(|t| !t.is_empty()) {
                if let Some(untrusted) = metadata
                    .authorization_servers
                    .iter()
                    .find(|server| !trusted.contains(server))
                {
                    return Err(BuildError::UntrustedAuthorizationServer(untrusted.clone()));
                }
            }
        }
        self.policy.check()?;
        check_hierarchy(&self.hierarchy)?;
        if self.max_token_bytes == 0 {
            return Err(BuildError::Invalid("max_token_bytes must be positive"));
        }
        if let Some(realm) = &self.realm {
            if realm.bytes().any(|b| !crate::charset::is_nqschar(b)) {
                return Err(BuildError::Invalid(
                    "realm must be printable ASCII without quotes or backslashes",
                ));
            }
        }
        let responder = MetadataResponder::new(&metadata, self.metadata_max_age)?;
        let challenger = Challenger::new(
            &resource.metadata_url,
            self.realm.as_deref(),
            self.include_granted_scopes,
            self.error_body,
        );
        #[cfg(feature = "dpop")]
        let challenger = match &dpop {
            Some(check) => {
                let required = check.config.mode == crate::bind::dpop::DpopMode::Required;
                match crate::challenge::DpopChallenge::new(&check.algs, required) {
                    Some(dpop) => challenger.with_dpop(dpop),
                    None => return Err(BuildError::Invalid("DPoP algorithm names")),
                }
            }
            None => challenger,
        };
        Ok(BearerAuthLayer {
            shared: Arc::new(Shared {
                scope_check: ScopeCheck::Here,
                validator,
                context,
                policy: self.policy,
                hierarchy: self.hierarchy,
                challenger,
                metadata: Arc::new(responder),
                resource,
                root_metadata_alias: self.root_metadata_alias,
                max_token_bytes: self.max_token_bytes,
                strip_authorization: self.strip_authorization,
                #[cfg(feature = "dpop")]
                dpop,
            }),
        })
    }
}
