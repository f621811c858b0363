//! The demo's DPoP options (`--dpop`, `--dpop-nonces`, `--redis`): the guard's `DpopConfig`, and the DPoP
//! example it prints with the embedded issuer.

use std::time::Duration;

use bearer_guard::bind::dpop::{DpopConfig, DpopMode};
use bearer_guard::store::RedisReplayStore;
use bearer_guard::testkit::{DevIssuer, DpopKey, KeyAlg};

/// How long one server nonce is valid (`--dpop-nonces`); it is accepted for its window and the next.
const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// What the command line asked for.
#[derive(Debug, Default)]
pub struct DpopOptions {
    /// `--dpop optional|required`.
    pub mode: Option<DpopMode>,
    /// `--dpop-nonces`: require server nonces (RFC 9449 §9).
    pub nonces: bool,
    /// `--redis URL`: the replay store shared by replicas.
    pub redis: Option<String>,
}

impl DpopOptions {
    /// Parses the value of `--dpop`.
    pub fn parse_mode(value: &str) -> Result<DpopMode, String> {
        match value {
            "optional" => Ok(DpopMode::Optional),
            "required" => Ok(DpopMode::Required),
            other => Err(format!("--dpop: {other:?} is not optional or required")),
        }
    }

    /// Refuses flags that need `--dpop` without it.
    pub fn check(&self) -> Result<(), String> {
        if self.mode.is_none() && (self.redis.is_some() || self.nonces) {
            return Err("--redis and --dpop-nonces are DPoP options: they need --dpop".into());
        }
        Ok(())
    }

    /// Whether Bearer tokens are refused.
    pub fn required(&self) -> bool {
        matches!(self.mode, Some(DpopMode::Required))
    }

    /// The guard's DPoP configuration, connected to Redis if asked; `None` without `--dpop`.
    pub async fn config(&self) -> Result<Option<DpopConfig>, String> {
        let Some(mode) = self.mode else {
            return Ok(None);
        };
        let mut config = DpopConfig::new(mode);
        if let Some(url) = &self.redis {
            let store = RedisReplayStore::builder(url.as_str())
                .connect()
                .await
                .map_err(|e| format!("--redis {url}: {e}"))?;
            println!("DPoP proofs are recorded in Redis at {url}");
            config = config.replay_store(store);
        }
        if self.nonces {
            // One process: a random secret. Replicas would share one from their configuration.
            let mut secret = [0u8; 32];
            aws_lc_rs::rand::fill(&mut secret)
                .map_err(|_| "no random bytes for the nonce secret")?;
            config = config.server_nonces(secret, NONCE_LIFETIME);
            println!("DPoP proofs must carry a server nonce (401 use_dpop_nonce gives it)");
        }
        Ok(Some(config))
    }

    /// Prints a DPoP-bound token and one proof with a `curl` command (embedded issuer only).
    pub fn print_example(
        &self,
        dev: &DevIssuer,
        resource: &str,
        mcp_headers: &str,
    ) -> Result<(), Box<dyn std::error::Error>> {
        if self.mode.is_none() {
            return Ok(());
        }
        if self.nonces {
            println!("  # DPoP with --dpop-nonces: a proof must carry the server's nonce (from a 401 use_dpop_nonce");
            println!("  # answer's DPoP-Nonce header), so use a DPoP client library; tests/interop/dpop-client.mjs does.");
            return Ok(());
        }
        // A DPoP key, a token bound to it, and one proof: each proof works once, for 5 minutes.
        let key = DpopKey::generate(KeyAlg::Es256)?;
        let bound = dev
            .token()
            .subject("dpop-user")
            .audience(resource)
            .scope("mcp:read")
            .expires_in(3600)
            .dpop_bound(&key)
            .sign()?;
        let proof = key.proof("POST", resource, Some(&bound))?;
        println!("  # DPoP: a token bound to a key, and one proof for POST {resource} (single use, 5 minutes):");
        println!("  export DPOP_TOKEN={bound}");
        println!("  export DPOP_PROOF={proof}");
        println!(
            "  curl -s {mcp_headers} -H \"Authorization: DPoP $DPOP_TOKEN\" -H \"DPoP: $DPOP_PROOF\" -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}}' {resource}   # 200; again: 401 invalid_dpop_proof (replay)"
        );
        Ok(())
    }
}
