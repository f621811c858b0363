//! The DPoP replay store on a real `redis-server` (Debian's package; `.ci/run` installs it) on a loopback
//! port, shared by two guards as two replicas would share it: a proof accepted by one is refused by the
//! other; an outage fails closed (503) unless configured otherwise; keys expire.
#![cfg(feature = "redis")]

use std::convert::Infallible;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bearer_guard::bind::dpop::{DpopConfig, DpopMode, StoreFailure};
use bearer_guard::store::{RedisReplayStore, ReplayStore, StoreCall, StoreError};
use bearer_guard::testkit::probe::{self, Reply, Served};
use bearer_guard::testkit::{DevIssuer, DpopKey, KeyAlg};
use bearer_guard::{BearerAuthLayer, JwtValidator};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::time::timeout;
use tower::Layer;

const WAIT: Duration = Duration::from_secs(10);

/// A `redis-server` on a free loopback port, without persistence; killed by its pid when dropped.
struct RedisServer {
    child: Child,
    url: String,
}

impl RedisServer {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server; .ci/run installs it)");
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server listens in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn store(redis: &RedisServer) -> RedisReplayStore {
    RedisReplayStore::builder(&redis.url)
        .timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect("connects")
}

async fn answer(call: StoreCall) -> Result<bool, StoreError> {
    match call {
        StoreCall::Ready(answer) => answer,
        StoreCall::Pending(future) => timeout(WAIT, future).await.expect("bounded"),
    }
}

/// One replica: a guard with its own connection to the shared Redis.
async fn replica(dev: &DevIssuer, validator: JwtValidator, config: DpopConfig) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    // Both replicas serve one public resource: the proofs name it, whichever replica gets them.
    let guard = BearerAuthLayer::builder()
        .resource("https://mcp.example.test/mcp")
        .authorization_server(dev.issuer())
        .validator(validator)
        .dpop(config)
        .build()
        .expect("guard");
    let ok = tower::service_fn(|_: Request<Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    });
    probe::serve(listener, guard.layer(ok)).expect("serve")
}

async fn call(replica: &Served, token: &str, proof: &str) -> Reply {
    let request = Request::post(replica.url("/mcp"))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(Full::new(Bytes::new()))
        .expect("request");
    timeout(WAIT, probe::send(request))
        .await
        .expect("in time")
        .expect("reply")
}

async fn validator(dev: &DevIssuer) -> JwtValidator {
    let v = JwtValidator::builder(dev.issuer())
        .audience("https://mcp.example.test/mcp")
        .build()
        .expect("validator");
    timeout(WAIT, v.ready())
        .await
        .expect("in time")
        .expect("keys");
    v
}

#[tokio::test]
async fn two_replicas_sharing_redis_refuse_a_proof_the_other_accepted_and_an_outage_fails_closed() {
    let mut redis = RedisServer::start().await;
    let dev = timeout(WAIT, DevIssuer::builder().keys(&[KeyAlg::Es256]).start())
        .await
        .expect("in time")
        .expect("issuer");
    let config = |store: RedisReplayStore| DpopConfig::new(DpopMode::Required).replay_store(store);
    let a = replica(&dev, validator(&dev).await, config(store(&redis).await)).await;
    let b = replica(&dev, validator(&dev).await, config(store(&redis).await)).await;
    let lenient = replica(
        &dev,
        validator(&dev).await,
        config(store(&redis).await).on_store_failure(StoreFailure::AcceptUnchecked),
    )
    .await;
    let key = DpopKey::generate(KeyAlg::Es256).expect("key");
    let token = dev
        .token()
        .audience("https://mcp.example.test/mcp")
        .dpop_bound(&key)
        .sign()
        .expect("sign");
    let url = "https://mcp.example.test/mcp";

    for (first, second) in [(&a, &b), (&b, &a)] {
        let proof = key.proof("POST", url, Some(&token)).expect("proof");
        assert_eq!(call(first, &token, &proof).await.status.as_u16(), 200);
        let replay = call(second, &token, &proof).await;
        assert_eq!(replay.status.as_u16(), 401, "{replay:?}");
        assert!(replay
            .challenge()
            .contains(r#"error_description="The DPoP proof was already used""#));
        assert_eq!(
            call(first, &token, &proof).await.status.as_u16(),
            401,
            "and by itself"
        );
    }

    // Redis goes away: a fresh, valid proof is not accepted unchecked (503 + Retry-After), unless the
    // replica was configured to.
    redis.stop();
    let proof = key.proof("POST", url, Some(&token)).expect("proof");
    let reply = call(&a, &token, &proof).await;
    assert_eq!(reply.status.as_u16(), 503, "{reply:?}");
    assert!(reply.header("retry-after").is_some());
    assert!(reply.text().contains("temporarily_unavailable"));
    assert_eq!(call(&lenient, &token, &proof).await.status.as_u16(), 200);
}

#[tokio::test]
async fn keys_are_set_once_with_their_expiry_and_under_the_prefix() {
    let redis = RedisServer::start().await;
    let store = store(&redis).await;
    let key = [7u8; 32];
    assert_eq!(
        answer(store.insert_if_absent(&key, Duration::from_millis(300))).await,
        Ok(true)
    );
    assert_eq!(
        answer(store.insert_if_absent(&key, Duration::from_millis(300))).await,
        Ok(false)
    );
    // Another replica's connection sees the same key.
    let other = RedisReplayStore::builder(&redis.url)
        .connect()
        .await
        .expect("connects");
    assert_eq!(
        answer(other.insert_if_absent(&key, Duration::from_secs(1))).await,
        Ok(false)
    );
    // A different prefix is a different namespace.
    let elsewhere = RedisReplayStore::builder(&redis.url)
        .prefix("other:")
        .connect()
        .await
        .expect("connects");
    assert_eq!(
        answer(elsewhere.insert_if_absent(&key, Duration::from_secs(1))).await,
        Ok(true)
    );
    // The key is there under the prefix, hex of the digest, with a millisecond expiry.
    let client = redis::Client::open(redis.url.as_str()).expect("client");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let name = format!("bearer-guard:dpop:{}", "07".repeat(32));
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&name)
        .query_async(&mut connection)
        .await
        .expect("pttl");
    assert!((1..=300).contains(&ttl), "{ttl}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        answer(store.insert_if_absent(&key, Duration::from_secs(1))).await,
        Ok(true),
        "expired"
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_in_bounded_time() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let started = std::time::Instant::now();
    let result = RedisReplayStore::builder(format!("redis://127.0.0.1:{port}/"))
        .timeout(Duration::from_millis(200))
        .connect()
        .await;
    assert!(
        matches!(result, Err(StoreError::Unreachable | StoreError::Timeout)),
        "{result:?}"
    );
    assert!(started.elapsed() < WAIT);
}
