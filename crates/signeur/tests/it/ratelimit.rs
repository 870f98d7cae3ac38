//! Rate limits (issue 16): an organization's API quota (GCRA: a burst, then `per_sec`),
//! 429 `rate_limited` with `Retry-After` and the `RateLimit` headers, another organization
//! unaffected, the operator's override, several nodes (each alone without Redis, one quota
//! with Redis, the local limiter when Redis does not answer) and the signer pages' limits per
//! address and per link.
//!
//! Time is the test app's manual clock (moved, never slept on), except in Redis, which
//! keeps its own: the Redis test allows for the seconds it really took.
//!
//! Redis: `SIGNEUR_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379`); without it the tests
//! that need a Redis server say so and pass, unless `SIGNEUR_REQUIRE_VALIDATORS=1`.

use std::net::SocketAddr;
use std::time::Instant;

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use signeur_service::mail::MailSettings;
use signeur_service::{ApiQuota, RateLimitSettings, RedisSettings, Service};

use crate::support::*;

/// One more node of the test app's deployment: its own `Service` (and so its own limiters)
/// on the same database, blob store and clock, on its own port.
struct Node {
    base: String,
    service: Service,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Node {
    async fn start(app: &TestApp, limits: &RateLimitSettings) -> Node {
        Node::start_behind(app, limits, vec![]).await
    }

    /// With `trusted` proxies, whose `X-Forwarded-For` names the client.
    async fn start_behind(
        app: &TestApp,
        limits: &RateLimitSettings,
        trusted: Vec<ipnet::IpNet>,
    ) -> Node {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let service = Service::new(
            app.db.clone(),
            app.blobs.clone(),
            app.clock.clone(),
            app.service.keys.clone(),
        )
        .with_mail(MailSettings::memory(&base))
        .with_rate_limits(limits)
        .unwrap();
        let router = signeur_http::router(
            signeur_http::AppState::new(service.clone()).with_trusted_proxies(trusted),
        );
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Node {
            base,
            service,
            server,
        }
    }

    async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        http_client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// `GET /api/v1/signatures` with this key: (status, `RateLimit` header).
    async fn list(&self, key: &str) -> (StatusCode, String) {
        let res = self.get(key, "/api/v1/signatures").await;
        let status = res.status();
        (status, header(&res, "ratelimit"))
    }
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn limits(per_sec: u32, burst: u32) -> RateLimitSettings {
    RateLimitSettings {
        api: ApiQuota::new(per_sec, burst).unwrap(),
        pages_per_min: 1_000_000,
        redis: None,
    }
}

/// `SIGNEUR_TEST_REDIS_URL`, or why the test does not run.
fn redis_url() -> Option<String> {
    match std::env::var("SIGNEUR_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("SIGNEUR_REQUIRE_VALIDATORS").as_deref() != Ok("1"),
                "SIGNEUR_REQUIRE_VALIDATORS=1 but SIGNEUR_TEST_REDIS_URL is not set"
            );
            eprintln!(
                "skipped: set SIGNEUR_TEST_REDIS_URL=redis://127.0.0.1:6379 to run the Redis rate-limit tests"
            );
            None
        }
    }
}

/// A key prefix of this test run's own.
fn redis_settings(url: &str) -> RedisSettings {
    RedisSettings {
        url: url.to_string(),
        key_prefix: format!("signeur-test:{}:", Uuid::new_v4().simple()),
    }
}

#[tokio::test]
async fn a_burst_past_the_limit_is_429_with_retry_after_and_another_org_is_unaffected() {
    let app = TestApp::start().await;
    let node = Node::start(&app, &limits(1, 5)).await;
    let (_, other_key) = app.other_org().await;

    for left in (0..5).rev() {
        let res = node.get(&app.key, "/api/v1/signatures").await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-policy"), "\"org\";q=1;w=1");
        assert_eq!(
            header(&res, "ratelimit"),
            format!("\"org\";r={left};t={}", 5 - left)
        );
        assert_eq!(header(&res, "retry-after"), "");
    }
    let res = node.get(&app.key, "/api/v1/signatures").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), "1");
    assert_eq!(header(&res, "ratelimit-policy"), "\"org\";q=1;w=1");
    assert_eq!(header(&res, "ratelimit"), "\"org\";r=0;t=5");
    let (status, code, message) = error_of(res).await;
    assert_eq!((status.as_u16(), code.as_str()), (429, "rate_limited"));
    assert!(message.contains("retry after 1 s"), "{message}");

    // A refused create creates nothing, and never reaches the body or the idempotency key.
    let res = http_client()
        .post(format!("{}/api/v1/signatures", node.base))
        .bearer_auth(&app.key)
        .header("Idempotency-Key", "k1")
        .json(&seed_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let list = app.get_json("/api/v1/signatures").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");

    // The other organization has its whole burst.
    for left in (0..5).rev() {
        assert_eq!(
            node.list(&other_key).await,
            (StatusCode::OK, format!("\"org\";r={left};t={}", 5 - left))
        );
    }

    // One second later, one more request.
    app.advance(Duration::seconds(1));
    assert_eq!(node.list(&app.key).await.0, StatusCode::OK);
    assert_eq!(node.list(&app.key).await.0, StatusCode::TOO_MANY_REQUESTS);
    app.advance(Duration::seconds(5));
    assert_eq!(
        node.list(&app.key).await,
        (StatusCode::OK, "\"org\";r=4;t=1".to_string())
    );
    let metrics = node.service.metrics.render();
    assert!(
        metrics.contains("signeur_rate_limited_total{scope=\"api\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn every_answer_after_authentication_carries_the_headers_and_failed_keys_are_not_counted() {
    let app = TestApp::start().await;
    let node = Node::start(&app, &limits(1, 3)).await;

    for _ in 0..10 {
        let res = node.get("sgn_live_nope", "/api/v1/signatures").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&res, "ratelimit"), "", "a 401 is not the org's");
    }
    // Errors after authentication count and carry the headers: a 404, a 400.
    let res = node
        .get(&app.key, &format!("/api/v1/signatures/{}", Uuid::new_v4()))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&res, "ratelimit"), "\"org\";r=2;t=1");
    let res = node.get(&app.key, "/api/v1/signatures?limit=0").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&res, "ratelimit"), "\"org\";r=1;t=2");
    // A replayed idempotent answer too.
    let post = || {
        http_client()
            .post(format!("{}/api/v1/settings/session-secret", node.base))
            .bearer_auth(&app.key)
            .header("Idempotency-Key", "rotate-1")
            .send()
    };
    let first = post().await.unwrap();
    assert!(first.status().is_success(), "{}", first.status());
    assert_eq!(header(&first, "ratelimit"), "\"org\";r=0;t=3");
    app.advance(Duration::seconds(1));
    let replay = post().await.unwrap();
    assert_eq!(header(&replay, "idempotent-replayed"), "true");
    assert_eq!(header(&replay, "ratelimit"), "\"org\";r=0;t=3");
    // The test app itself runs with limits too high to refuse, still checked.
    let res = app.get("/api/v1/signatures").send().await.unwrap();
    assert!(header(&res, "ratelimit-policy").starts_with("\"org\";q="));
}

#[tokio::test]
async fn an_operators_override_applies_to_its_organization_only_and_can_be_cleared() {
    let app = TestApp::start().await;
    let node = Node::start(&app, &limits(1, 2)).await;
    let (_, other_key) = app.other_org().await;

    assert_eq!(node.service.org_rate_limit(app.org_id).await.unwrap(), None);
    let own = ApiQuota::new(3, 4).unwrap();
    // Set through this node: its key cache forgets at once (other nodes within a second).
    node.service
        .set_org_rate_limit(app.org_id, Some(own))
        .await
        .unwrap();
    assert_eq!(
        node.service.org_rate_limit(app.org_id).await.unwrap(),
        Some(own)
    );
    for _ in 0..4 {
        let res = node.get(&app.key, "/api/v1/signatures").await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-policy"), "\"org\";q=3;w=1");
    }
    assert_eq!(node.list(&app.key).await.0, StatusCode::TOO_MANY_REQUESTS);
    // The other organization keeps the server's quota.
    let res = node.get(&other_key, "/api/v1/signatures").await;
    assert_eq!(header(&res, "ratelimit-policy"), "\"org\";q=1;w=1");
    assert_eq!(node.list(&other_key).await.0, StatusCode::OK);
    assert_eq!(node.list(&other_key).await.0, StatusCode::TOO_MANY_REQUESTS);

    node.service
        .set_org_rate_limit(app.org_id, None)
        .await
        .unwrap();
    let res = node.get(&app.key, "/api/v1/signatures").await;
    assert_eq!(header(&res, "ratelimit-policy"), "\"org\";q=1;w=1");

    let missing = node
        .service
        .set_org_rate_limit(Uuid::new_v4(), Some(own))
        .await;
    assert!(
        matches!(missing, Err(signeur_service::ServiceError::NotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn without_redis_each_node_limits_alone() {
    let app = TestApp::start().await;
    let a = Node::start(&app, &limits(1, 3)).await;
    let b = Node::start(&app, &limits(1, 3)).await;
    for _ in 0..3 {
        assert_eq!(a.list(&app.key).await.0, StatusCode::OK);
    }
    assert_eq!(a.list(&app.key).await.0, StatusCode::TOO_MANY_REQUESTS);
    // Node b has its own state: the organization gets its quota again there.
    for _ in 0..3 {
        assert_eq!(b.list(&app.key).await.0, StatusCode::OK);
    }
    assert_eq!(b.list(&app.key).await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn two_nodes_sharing_redis_share_one_quota_per_organization() {
    let Some(url) = redis_url() else { return };
    let app = TestApp::start().await;
    let (_, other_key) = app.other_org().await;
    let burst = 6;
    let shared = RateLimitSettings {
        redis: Some(redis_settings(&url)),
        ..limits(1, burst)
    };
    let a = Node::start(&app, &shared).await;
    let b = Node::start(&app, &shared).await;

    // Redis keeps time on its own clock: allow one request for each second this really takes.
    let started = Instant::now();
    let mut allowed = 0;
    let mut refused = [0, 0];
    for i in 0..(2 * burst) {
        let (node, which) = if i % 2 == 0 { (&a, 0) } else { (&b, 1) };
        let res = node.get(&app.key, "/api/v1/signatures").await;
        match res.status() {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused[which] += 1;
                assert_eq!(header(&res, "retry-after"), "1");
            }
            other => panic!("{other}"),
        }
    }
    let refills = started.elapsed().as_secs() as u32 + 1;
    assert!(
        allowed >= burst && allowed <= burst + refills,
        "{allowed} allowed across two nodes of a burst of {burst} ({refills} s)"
    );
    assert!(
        refused[0] > 0 && refused[1] > 0,
        "both nodes refuse once the shared quota is spent: {refused:?}"
    );
    // The other organization is unaffected, on either node.
    assert_eq!(a.list(&other_key).await.0, StatusCode::OK);
    assert_eq!(b.list(&other_key).await.0, StatusCode::OK);
    for node in [&a, &b] {
        assert!(
            node.service
                .metrics
                .render()
                .contains("signeur_rate_limit_fallback_total 0"),
            "Redis answered every time"
        );
    }
}

#[tokio::test]
async fn an_unreachable_redis_never_fails_a_request_the_node_limits_alone() {
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::start().await;
    let (_, other_key) = app.other_org().await;
    let settings = RateLimitSettings {
        redis: Some(redis_settings(&format!("redis://127.0.0.1:{port}"))),
        ..limits(1, 3)
    };
    let node = Node::start(&app, &settings).await;
    let started = Instant::now();
    for left in (0..3).rev() {
        assert_eq!(
            node.list(&app.key).await,
            (StatusCode::OK, format!("\"org\";r={left};t={}", 3 - left))
        );
    }
    assert_eq!(node.list(&app.key).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(node.list(&other_key).await.0, StatusCode::OK);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "an unreachable Redis costs milliseconds, not seconds: {:?}",
        started.elapsed()
    );
    let metrics = http_client()
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("signeur_rate_limit_fallback_total 5"),
        "{metrics}"
    );
}

#[tokio::test]
async fn redis_applies_an_organizations_override() {
    let Some(url) = redis_url() else { return };
    let app = TestApp::start().await;
    let shared = RateLimitSettings {
        redis: Some(redis_settings(&url)),
        ..limits(1, 2)
    };
    let a = Node::start(&app, &shared).await;
    let b = Node::start(&app, &shared).await;
    a.service
        .set_org_rate_limit(app.org_id, Some(ApiQuota::new(1, 50).unwrap()))
        .await
        .unwrap();
    let res = a.get(&app.key, "/api/v1/signatures").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "ratelimit-policy"), "\"org\";q=1;w=1");
    assert_eq!(header(&res, "ratelimit"), "\"org\";r=49;t=1");
    // Node b learns the override from the key lookup (its cache lives a second) and draws
    // from the same bucket: fewer than 49 left. Bounded poll for b's cache.
    let mut seen = String::new();
    for _ in 0..30 {
        let res = b.get(&app.key, "/api/v1/signatures").await;
        seen = header(&res, "ratelimit");
        let left: u64 = seen
            .split("r=")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(u64::MAX);
        if left < 49 && left > 40 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("node b never drew from the shared bucket of 50: {seen}");
}

// --- Signer pages --------------------------------------------------------------------------------

/// The path of a signer's link (`/sign/{token}`), from a create's response.
fn link_path(created: &Value, signer: usize) -> String {
    let url = created["signers"][signer]["sign_url"].as_str().unwrap();
    url[url.find("/sign/").unwrap()..].to_string()
}

async fn page_from(node: &Node, path: &str, client: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}{path}", node.base))
        .header("X-Forwarded-For", client)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn signer_pages_are_limited_per_client_address_and_per_link() {
    let app = TestApp::start().await;
    let created = app.create(&seed_body()).await;
    let (first, second) = (link_path(&created, 0), link_path(&created, 1));
    let settings = RateLimitSettings {
        pages_per_min: 4,
        ..limits(1_000, 1_000)
    };
    // Behind a trusted proxy on loopback, so that X-Forwarded-For names each client.
    let node = Node::start_behind(&app, &settings, vec!["127.0.0.1/32".parse().unwrap()]).await;

    // Per address: pages, assets and page images of any link count together.
    for path in [
        first.clone(),
        "/assets/signeur.css".to_string(),
        format!("{second}/page/1"),
        "/assets/sign.js".to_string(),
    ] {
        let res = page_from(&node, &path, "198.51.100.1").await;
        assert_ne!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
    }
    let res = page_from(&node, "/assets/signeur.css?lang=fr", "198.51.100.1").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), "15");
    assert_eq!(header(&res, "x-frame-options"), "DENY");
    assert!(header(&res, "content-type").starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    assert!(html.contains("Trop de requêtes"), "{html}");

    // Per link: the first link has had one request (from .1); three more addresses may
    // open it, a fourth may not, though that address has asked for nothing yet.
    for i in 2..5 {
        let res = page_from(&node, &first, &format!("198.51.100.{i}")).await;
        assert_eq!(res.status(), StatusCode::OK, "client {i}");
    }
    let res = page_from(&node, &first, "198.51.100.9").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // …while that address may still open another link.
    let res = page_from(&node, &second, "198.51.100.9").await;
    assert_eq!(res.status(), StatusCode::OK);

    // A minute later both have their quota again.
    app.advance(Duration::minutes(1));
    assert_eq!(
        page_from(&node, &first, "198.51.100.1").await.status(),
        StatusCode::OK
    );
    let metrics = node.service.metrics.render();
    assert!(
        metrics.contains("signeur_rate_limited_total{scope=\"page_address\"} 1")
            && metrics.contains("signeur_rate_limited_total{scope=\"page_link\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_signer_reading_a_long_document_twice_stays_far_below_the_default_page_limit() {
    let app = TestApp::start().await;
    let created = app.create(&seed_body()).await;
    let link = link_path(&created, 0);
    let node = Node::start(&app, &RateLimitSettings::default()).await;
    // A 50-page document read twice: the page, its 50 images, the stylesheet, the script
    // and the PDF, twice over (the fixture has fewer pages; the missing ones are 404s, which
    // count all the same).
    let client = reqwest::Client::builder().build().unwrap();
    let mut asked = 0;
    for _ in 0..2 {
        let mut paths = vec![
            link.clone(),
            "/assets/signeur.css".to_string(),
            "/assets/sign.js".to_string(),
            format!("{link}/document.pdf"),
        ];
        paths.extend((1..=50).map(|n| format!("{link}/page/{n}")));
        for path in paths {
            let res = client
                .get(format!("{}{path}", node.base))
                .send()
                .await
                .unwrap();
            assert_ne!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
            asked += 1;
        }
    }
    assert_eq!(asked, 108);
    assert!(asked * 5 < RateLimitSettings::default().pages_per_min);
}

// --- The operator command through the real binary ---------------------------------------------

#[tokio::test]
async fn the_operator_sets_and_clears_an_organizations_limit_without_a_restart() {
    let dir = crate::cli::Backend::new().await;
    let (server, _) = crate::cli::serve_with(
        &dir,
        &[
            ("SIGNEUR_RATE_LIMIT_PER_SEC", "1"),
            ("SIGNEUR_RATE_LIMIT_BURST", "2"),
        ],
    );
    let (ok, out) = crate::cli::run(&dir, &["org", "create", "--name", "Busy", "--json"]);
    assert!(ok, "{out}");
    let org: Value = serde_json::from_str(&out).unwrap();
    let org = org["id"].as_str().unwrap().to_string();
    let (ok, out) = crate::cli::run(&dir, &["api-key", "create", "--org", &org, "--json"]);
    assert!(ok, "{out}");
    let key: Value = serde_json::from_str(&out).unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    let policy = || async {
        let res = http_client()
            .get(format!("{}/api/v1/signatures", server.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        (res.status(), header(&res, "ratelimit-policy"))
    };
    assert_eq!(policy().await.1, "\"org\";q=1;w=1");

    let (ok, out) = crate::cli::run(
        &dir,
        &[
            "org",
            "set-rate-limit",
            &org,
            "--per-sec",
            "500",
            "--burst",
            "1000",
            "--json",
        ],
    );
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["rate_limit"],
        serde_json::json!({"per_sec": 500, "burst": 1000})
    );
    // The running server reads it with the key (its cache lives a second): poll, bounded.
    let mut seen = String::new();
    for _ in 0..50 {
        seen = policy().await.1;
        if seen == "\"org\";q=500;w=1" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "\"org\";q=500;w=1");

    let (ok, out) = crate::cli::run(&dir, &["org", "set-rate-limit", &org, "--default"]);
    assert!(ok, "{out}");
    assert!(out.contains("default"), "{out}");
    for _ in 0..50 {
        seen = policy().await.1;
        if seen == "\"org\";q=1;w=1" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "\"org\";q=1;w=1");

    // Refused: a zero rate, half a quota, an unknown organization.
    for args in [
        vec![
            "org",
            "set-rate-limit",
            &org,
            "--per-sec",
            "0",
            "--burst",
            "5",
        ],
        vec!["org", "set-rate-limit", &org, "--per-sec", "5"],
        vec![
            "org",
            "set-rate-limit",
            "00000000-0000-0000-0000-000000000000",
            "--default",
        ],
    ] {
        let (ok, out) = crate::cli::run(&dir, &args);
        assert!(!ok, "{args:?} accepted: {out}");
    }
}
