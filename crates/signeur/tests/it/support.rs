//! The test harness: the real router on a real TCP port, against a fresh database —
//! SQLite in a temp dir by default, PostgreSQL (a schema per test) when
//! `SIGNEUR_TEST_DATABASE_URL` is set.

#![allow(dead_code)]

use std::net::SocketAddr;

use base64::Engine as _;
use chrono::Duration;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use signeur_service::mail::{MailSettings, Mailer};
pub use signeur_service::webhooks::WebhookSettings;
use signeur_service::{Clock, MasterKey, Service};
use signeur_store::{Blobs, Db, DbOptions};

pub const ONE_PAGE: &[u8] = include_bytes!("../../../signeur-pdf/tests/fixtures/one-page.pdf");
pub const THREE_PAGES: &[u8] =
    include_bytes!("../../../signeur-pdf/tests/fixtures/three-pages.pdf");

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub key: String,
    pub org_id: Uuid,
    pub service: Service,
    /// The database and blob store behind `service`, for tests that look underneath it.
    pub db: Db,
    pub blobs: Blobs,
    pub clock: Clock,
    pub dir: tempfile::TempDir,
    pg_schema: Option<(String, String)>,
    server: tokio::task::JoinHandle<()>,
}

pub fn backend_url() -> Option<String> {
    std::env::var("SIGNEUR_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

async fn fresh_db(dir: &std::path::Path, options: DbOptions) -> (Db, Option<(String, String)>) {
    match backend_url() {
        None => {
            let url = format!("sqlite://{}", dir.join("signeur.db").display());
            let db = Db::connect_with(&url, options).await.unwrap();
            db.migrate().await.unwrap();
            (db, None)
        }
        Some(_) => {
            let (scoped, admin, schema) = pg_schema().await.unwrap();
            let db = Db::connect_with(&scoped, options).await.unwrap();
            db.migrate().await.unwrap();
            (db, Some((admin, schema)))
        }
    }
}

/// A fresh PostgreSQL schema: (URL whose connections use it, admin URL, schema name).
pub async fn pg_schema() -> Option<(String, String, String)> {
    let url = backend_url()?;
    let schema = format!("t_{}", Uuid::new_v4().simple());
    let admin = Db::connect(&url).await.unwrap();
    if let Db::Postgres(p) = &admin {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(p)
            .await
            .unwrap();
    }
    admin.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some((
        format!("{url}{sep}options=-c%20search_path%3D{schema}"),
        url,
        schema,
    ))
}

/// Drops a schema made by [`pg_schema`] (from a thread of its own: callers may be in Drop).
pub fn drop_pg_schema(url: String, schema: String) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            if let Ok(Db::Postgres(p)) = Db::connect(&url).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&p)
                    .await;
                p.close().await;
            }
        });
    })
    .join();
}

impl TestApp {
    pub async fn start() -> TestApp {
        TestApp::start_with_smtp(None).await
    }

    /// With `Some(url)`, invitations go to that SMTP server (2 s timeout); otherwise they
    /// are kept in memory (`app.service.mail.mailer.sent()`).
    pub async fn start_with_smtp(smtp_url: Option<String>) -> TestApp {
        TestApp::start_configured(smtp_url, DbOptions::default()).await
    }

    /// With a pool of `max_connections` (`SIGNEUR_DATABASE_MAX_CONNECTIONS`): PostgreSQL's
    /// pool, SQLite's readers.
    pub async fn start_with_pool(max_connections: u32) -> TestApp {
        let options = DbOptions {
            max_connections: Some(max_connections),
        };
        TestApp::start_configured(None, options).await
    }

    pub async fn start_configured(smtp_url: Option<String>, options: DbOptions) -> TestApp {
        TestApp::start_full(
            smtp_url,
            options,
            loopback_webhooks(),
            Default::default(),
            unlimited(),
        )
        .await
    }

    /// With these webhook settings (the others start with [`loopback_webhooks`]).
    pub async fn start_with_webhooks(webhooks: WebhookSettings) -> TestApp {
        TestApp::start_full(
            None,
            DbOptions::default(),
            webhooks,
            Default::default(),
            unlimited(),
        )
        .await
    }

    /// Served with these limits (the others start with the defaults).
    pub async fn start_with_limits(limits: signeur_http::ServeLimits) -> TestApp {
        TestApp::start_full(
            None,
            DbOptions::default(),
            loopback_webhooks(),
            limits,
            unlimited(),
        )
        .await
    }

    /// With these rate limits (the others start with [`unlimited`]).
    pub async fn start_with_rate_limits(limits: signeur_service::RateLimitSettings) -> TestApp {
        TestApp::start_full(
            None,
            DbOptions::default(),
            loopback_webhooks(),
            Default::default(),
            limits,
        )
        .await
    }

    async fn start_full(
        smtp_url: Option<String>,
        options: DbOptions,
        webhooks: WebhookSettings,
        limits: signeur_http::ServeLimits,
        rate_limits: signeur_service::RateLimitSettings,
    ) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let (db, pg_schema) = fresh_db(dir.path(), options).await;
        let clock = Clock::manual(chrono::Utc::now());
        let blobs =
            Blobs::from_url(&format!("file://{}", dir.path().join("blobs").display())).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let mut mail = MailSettings::memory(&base);
        if let Some(url) = smtp_url {
            mail.timeout = std::time::Duration::from_secs(2);
            mail.mailer =
                Mailer::from_config(Some(&url), mail.timeout, dir.path().join("outbox")).unwrap();
        }
        let service = Service::new(
            db.clone(),
            blobs.clone(),
            clock.clone(),
            MasterKey::generate(),
        )
        .with_mail(mail)
        .with_webhooks(webhooks)
        .with_rate_limits(&rate_limits)
        .unwrap();
        let (org, key) = service
            .bootstrap()
            .await
            .unwrap()
            .expect("empty database bootstraps");
        let app =
            signeur_http::router(signeur_http::AppState::new(service.clone()).with_limits(&limits));
        // The server's own loop (header timeout, connection cap), as `signeur serve` runs it.
        let server = tokio::spawn(signeur_http::serve(
            listener,
            app,
            limits,
            std::future::pending(),
        ));
        TestApp {
            base,
            client: http_client(),
            key: key.key,
            org_id: org.id,
            service,
            db,
            blobs,
            clock,
            dir,
            pg_schema,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(&self.key)
    }

    /// GET with the key, expecting JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(&self.key)
    }

    /// A second organization with its own key.
    pub async fn other_org(&self) -> (Uuid, String) {
        let org = self.service.create_org("Other").await.unwrap();
        let key = self.service.create_api_key(org.id).await.unwrap();
        (org.id, key.key)
    }

    pub async fn create(&self, body: &Value) -> Value {
        let res = self
            .post("/api/v1/signatures")
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }

    /// Every request's materialized signers and events (what a get reads) match their rows.
    pub async fn assert_reads_fresh(&self) {
        assert_eq!(
            self.db.stale_parts().await.unwrap(),
            Vec::<Uuid>::new(),
            "requests whose signers_json/events_json went stale"
        );
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if let Some((url, schema)) = self.pg_schema.take() {
            drop_pg_schema(url, schema);
        }
    }
}

/// Rate limits every test app enforces: checked on every request (so every API answer
/// carries the `RateLimit` headers), too high ever to refuse one. `ratelimit.rs` starts
/// nodes with small ones.
pub fn unlimited() -> signeur_service::RateLimitSettings {
    use signeur_service::ratelimit::MAX_QUOTA;
    signeur_service::RateLimitSettings {
        api: signeur_service::ApiQuota::new(MAX_QUOTA, MAX_QUOTA).unwrap(),
        pages_per_min: MAX_QUOTA,
        redis: None,
    }
}

/// Tests deliver to receivers on loopback.
pub fn loopback_webhooks() -> WebhookSettings {
    WebhookSettings {
        allow_private: true,
        ..Default::default()
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The seed's example body, delivery `api` so no email is involved.
pub fn seed_body() -> Value {
    json!({
        "title": "Order Agreement #1234",
        "message": "Please review and sign.",
        "locale": "en",
        "delivery": "api",
        "signers": [
            { "email": "buyer@example.com", "name": "Anna Buyer" },
            { "email": "seller@example.com", "name": "Bob Seller", "locale": "fi" }
        ],
        "document": { "filename": "contract.pdf", "content_base64": b64(ONE_PAGE) },
        "metadata": { "deal_id": "D-42" }
    })
}

pub async fn error_of(res: Response) -> (StatusCode, String, String) {
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    (
        status,
        v["error"].as_str().unwrap_or_default().to_string(),
        v["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// RFC 3339 UTC with milliseconds and Z.
pub fn is_wire_time(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    s.len() == 24
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// Test processes build HTTP clients before any `Service` exists, and reqwest is built
/// without a rustls crypto provider of its own: every client comes from here.
pub fn http_builder() -> reqwest::ClientBuilder {
    signeur_service::tsa::install_crypto_provider();
    reqwest::Client::builder()
}

pub fn http_client() -> reqwest::Client {
    http_builder().build().unwrap()
}
