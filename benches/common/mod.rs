//! Shared set-up of the benches: a development issuer with one key per measured algorithm, tokens it
//! signed, and the floor (the same signature checked with aws-lc-rs directly, the key parsed once).
#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{
    self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents, VerificationAlgorithm,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bearer_guard::testkit::{DevIssuer, KeyAlg};
use bearer_guard::{BearerToken, JwtValidator, ValidationContext};
use criterion::Criterion;
use serde_json::Value;

/// The resource (and so the audience) every bench token names.
pub const RESOURCE: &str = "https://api.example.com/mcp";

/// The validation context of a layer guarding [`RESOURCE`] (what the layer hands every validation).
#[allow(dead_code)]
pub fn context() -> &'static ValidationContext {
    static CONTEXT: std::sync::LazyLock<ValidationContext> =
        std::sync::LazyLock::new(|| ValidationContext::new(RESOURCE));
    &CONTEXT
}

/// The algorithms the issue asks about.
pub const ALGS: [KeyAlg; 5] = [
    KeyAlg::Rs256,
    KeyAlg::Ps256,
    KeyAlg::Es256,
    KeyAlg::Es384,
    KeyAlg::EdDsa,
];

/// Short runs: `cargo bench` must finish in minutes on a 2-core machine. Ratios are what we read.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

/// A current-thread runtime for the issuer's server (it runs while the runtime is driven or alive).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Starts an issuer with one key per algorithm of [`ALGS`] (key ids `rs256-1`, `ps256-1`, …).
pub fn issuer(rt: &tokio::runtime::Runtime) -> DevIssuer {
    rt.block_on(DevIssuer::builder().keys(&ALGS).start())
        .expect("dev issuer")
}

/// The key id DevIssuer gives the first key of `alg`.
pub fn kid(alg: KeyAlg) -> String {
    format!("{}-1", alg.as_str().to_ascii_lowercase())
}

/// A good token for [`RESOURCE`] signed with `kid`, optionally padded with a `pad` claim so the whole
/// token is exactly `target_len` bytes (when `Some`).
pub fn token(issuer: &DevIssuer, kid: &str, target_len: Option<usize>) -> String {
    let base = || {
        issuer
            .token()
            .key(kid)
            .audience(RESOURCE)
            .scope("mcp:read mcp:write")
            .expires_in(3600)
    };
    let plain = base().sign().expect("sign");
    let Some(target) = target_len else {
        return plain;
    };
    // base64url grows 4/3: pad the claim, then fix up by the difference (iat may tick: retry).
    let mut pad = (target.saturating_sub(plain.len() + 16) * 3) / 4;
    for _ in 0..64 {
        let t = base()
            .claim("pad", Value::from("x".repeat(pad)))
            .sign()
            .expect("sign");
        if t.len() == target {
            return t;
        }
        if t.len() < target {
            pad += 1;
        } else {
            pad = pad.saturating_sub(1);
        }
    }
    panic!("could not pad a token to {target} bytes");
}

/// The same token with its last signature character changed (a bad signature, otherwise well-formed).
pub fn tamper(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let dot = token.rfind('.').unwrap();
    // Change a character in the middle of the signature (the last one may only carry padding bits).
    let i = dot + 1 + (token.len() - dot - 1) / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// A JwtValidator for `issuer`'s JWKS, inline (keys cached, never fetched), with or without the
/// verified-token cache.
pub fn validator(issuer: &DevIssuer, jwks: &Value, cache: bool) -> JwtValidator {
    let builder = JwtValidator::builder(issuer.issuer())
        .audience(RESOURCE)
        .jwks(jwks);
    let builder = if cache {
        builder
    } else {
        builder.no_token_cache()
    };
    builder.build().expect("validator")
}

/// Checks that `validator` accepts `token` synchronously (a bench measuring a rejection would lie).
pub fn assert_accepts(validator: &JwtValidator, token: &str) {
    use bearer_guard::TokenValidator as _;
    let bearer = BearerToken::new(token).unwrap();
    let result = validator
        .validate(&bearer, context())
        .into_ready()
        .expect("validated synchronously");
    if let Err(e) = result {
        panic!("token refused: {e}");
    }
}

fn jwk<'a>(jwks: &'a Value, kid: &str) -> &'a Value {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("no JWK {kid}"))
}

fn b64(value: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(value.as_str().unwrap()).unwrap()
}

/// The floor: the key parsed once by aws-lc-rs, the signature decoded once.
pub struct Floor {
    pub key: ParsedPublicKey,
    pub message: Vec<u8>,
    pub signature: Vec<u8>,
}

impl Floor {
    pub fn new(jwks: &Value, kid: &str, alg: KeyAlg, token: &str) -> Self {
        let jwk = jwk(jwks, kid);
        let key = match alg {
            KeyAlg::Rs256 | KeyAlg::Ps256 => {
                let params: &'static RsaParameters = if alg == KeyAlg::Rs256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                RsaPublicKeyComponents {
                    n: b64(&jwk["n"]),
                    e: b64(&jwk["e"]),
                }
                .to_parsed_public_key(params)
                .unwrap()
            }
            KeyAlg::Es256 | KeyAlg::Es384 => {
                let algorithm: &'static dyn VerificationAlgorithm = if alg == KeyAlg::Es256 {
                    &signature::ECDSA_P256_SHA256_FIXED
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED
                };
                let mut point = vec![0x04];
                point.extend(b64(&jwk["x"]));
                point.extend(b64(&jwk["y"]));
                ParsedPublicKey::new(algorithm, point).unwrap()
            }
            KeyAlg::EdDsa => ParsedPublicKey::new(&signature::ED25519, b64(&jwk["x"])).unwrap(),
            other => panic!("not measured: {other}"),
        };
        let dot = token.rfind('.').unwrap();
        let floor = Self {
            key,
            message: token.as_bytes()[..dot].to_vec(),
            signature: URL_SAFE_NO_PAD.decode(&token[dot + 1..]).unwrap(),
        };
        assert!(floor.verify(), "the floor must verify the token");
        floor
    }

    #[inline]
    pub fn verify(&self) -> bool {
        self.key.verify_sig(&self.message, &self.signature).is_ok()
    }
}

/// Is this a `cargo bench` run (criterion is given `--bench`), rather than `cargo test`'s single pass?
pub fn benching() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The ratio `b / a` of two routines' times, measured in alternating blocks of ~2 ms (a, b, a, b, …) so
/// that a slow spell of a shared machine hits both alike; the median over the rounds.
pub fn paired_ratio(a: impl Fn() -> bool, b: impl Fn() -> bool) -> f64 {
    // `BENCH_NO_PAIRED=1` skips them (e.g. when profiling one bench with `--profile-time`).
    let rounds = match (benching(), std::env::var_os("BENCH_NO_PAIRED").is_some()) {
        (_, true) => return f64::NAN,
        (true, false) => 201,
        (false, false) => 3,
    };
    let start = Instant::now();
    black_box(a());
    let once = start.elapsed().max(Duration::from_nanos(50));
    let iters = (Duration::from_millis(2).as_nanos() / once.as_nanos()).clamp(1, 100_000) as u32;
    let time = |f: &dyn Fn() -> bool| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        start.elapsed().as_secs_f64()
    };
    let mut ratios: Vec<f64> = (0..rounds).map(|_| time(&b) / time(&a)).collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// Records a paired ratio in `target/criterion/paired.json` (read by `benches/report.py`) and prints it.
pub fn record_paired(name: &str, ratio: f64) {
    if ratio.is_nan() {
        return;
    }
    eprintln!("paired ratio {name}: {ratio:.3}x");
    if !benching() {
        return;
    }
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion/paired.json");
    let mut all: serde_json::Map<String, Value> = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    all.insert(name.to_owned(), Value::from(ratio));
    let _ = std::fs::create_dir_all(path.parent().unwrap());
    let _ = std::fs::write(&path, Value::Object(all).to_string());
}
