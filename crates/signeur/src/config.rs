//! Configuration: defaults → `signeur.toml` (or the file in `SIGNEUR_CONFIG`) → `SIGNEUR_*`
//! environment variables.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use std::time::Duration;

use signeur_service::MasterKey;
use signeur_service::mail::{MailSettings, Mailer};

/// The largest `SIGNEUR_HEADER_TIMEOUT_SECS` and `SIGNEUR_REQUEST_TIMEOUT_SECS`.
pub const MAX_TIMEOUT_SECS: u64 = 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub listen: String,
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// PostgreSQL's pool size (default 16); on SQLite, the readers' pool (default 8; one
    /// writer always).
    pub database_max_connections: Option<u32>,
    pub storage_url: Option<String>,
    pub master_key: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub log: String,
    pub log_format: Option<String>,
    pub smtp_url: Option<String>,
    pub smtp_timeout_secs: u64,
    pub mail_from: String,
    /// Comma-separated CIDRs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Option<String>,
    /// PKCS#12 file with the sealing key and certificate chain for every organization.
    pub seal_p12: Option<PathBuf>,
    pub seal_p12_password: Option<String>,
    /// RFC 3161 time-stamp authorities, comma-separated, tried in order.
    pub tsa_url: Option<String>,
    /// Extra trust roots (a PEM file) for HTTPS time-stamp authorities.
    pub tsa_ca_file: Option<PathBuf>,
    /// Webhook endpoints may name loopback and private hosts (development and tests).
    pub webhook_allow_private: bool,
    /// Seconds per webhook delivery attempt.
    pub webhook_timeout_secs: u64,
    /// `FIRST,CAP,ATTEMPTS,WINDOW` (seconds, seconds, count, seconds).
    pub webhook_retry: Option<String>,
    /// Seconds a request's headers may take to arrive (also the keep-alive idle time).
    pub header_timeout_secs: u64,
    /// Seconds from a request's headers to its response.
    pub request_timeout_secs: u64,
    /// Requests handled at once; more wait for a slot until their deadline.
    pub max_concurrent_requests: usize,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Every organization's API rate limit (unless the operator gave it its own).
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    /// Signer-page requests a minute, per client address and per link.
    pub page_rate_limit_per_min: u32,
    /// Shared rate-limit state for several nodes.
    pub redis_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            data_dir: PathBuf::from("./signeur-data"),
            database_url: None,
            database_max_connections: None,
            storage_url: None,
            master_key: None,
            master_key_file: None,
            log: "info".into(),
            log_format: None,
            smtp_url: None,
            smtp_timeout_secs: 10,
            mail_from: "Signeur <no-reply@localhost>".into(),
            trusted_proxies: None,
            seal_p12: None,
            seal_p12_password: None,
            tsa_url: None,
            tsa_ca_file: None,
            webhook_allow_private: false,
            webhook_timeout_secs: 5,
            webhook_retry: None,
            header_timeout_secs: 30,
            request_timeout_secs: 60,
            max_concurrent_requests: 512,
            max_connections: 4096,
            rate_limit_per_sec: 100,
            rate_limit_burst: 200,
            page_rate_limit_per_min: 600,
            redis_url: None,
        }
    }
}

impl Config {
    pub fn load() -> anyhow::Result<Config> {
        let file = std::env::var("SIGNEUR_CONFIG").unwrap_or_else(|_| "signeur.toml".into());
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&file))
            .merge(Env::prefixed("SIGNEUR_").ignore(&["config"]))
            .extract()
            .context("invalid configuration")
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("signeur.db").display()))
    }

    /// `SIGNEUR_DATABASE_MAX_CONNECTIONS`.
    pub fn database_options(&self) -> anyhow::Result<signeur_store::DbOptions> {
        if self.database_max_connections == Some(0) {
            bail!("SIGNEUR_DATABASE_MAX_CONNECTIONS must be at least 1");
        }
        Ok(signeur_store::DbOptions {
            max_connections: self.database_max_connections,
        })
    }

    pub fn storage_url(&self) -> String {
        self.storage_url
            .clone()
            .unwrap_or_else(|| format!("file://{}", self.data_dir.join("blobs").display()))
    }

    pub fn public_url(&self) -> String {
        let url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        url.trim_end_matches('/').to_string()
    }

    fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// The configured key; on SQLite, generated into `{data}/master.key` on first start.
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        if let Some(k) = &self.master_key {
            return MasterKey::from_base64(k).context("SIGNEUR_MASTER_KEY");
        }
        if let Some(path) = &self.master_key_file {
            return MasterKey::read_file(path).context("SIGNEUR_MASTER_KEY_FILE");
        }
        if !self.is_sqlite() {
            bail!(
                "SIGNEUR_MASTER_KEY or SIGNEUR_MASTER_KEY_FILE is required with PostgreSQL: every node must share it \
                 (generate one with `head -c 32 /dev/urandom | base64`)"
            );
        }
        MasterKey::load_or_create(&self.data_dir.join("master.key")).context("master key")
    }

    /// SMTP when `SIGNEUR_SMTP_URL` is set, else `.eml` files in `{data}/outbox`.
    pub fn mail(&self) -> anyhow::Result<MailSettings> {
        let timeout = Duration::from_secs(self.smtp_timeout_secs.max(1));
        let mailer = Mailer::from_config(
            self.smtp_url.as_deref(),
            timeout,
            self.data_dir.join("outbox"),
        )
        .map_err(anyhow::Error::msg)?;
        let from = self
            .mail_from
            .parse()
            .with_context(|| format!("SIGNEUR_MAIL_FROM '{}'", self.mail_from))?;
        Ok(MailSettings {
            mailer,
            from,
            timeout,
            public_url: self.public_url(),
        })
    }

    /// `SIGNEUR_TRUSTED_PROXIES`: CIDRs (or single addresses), comma-separated.
    pub fn trusted_proxies(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        let Some(list) = self.trusted_proxies.as_deref() else {
            return Ok(Vec::new());
        };
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .with_context(|| format!("SIGNEUR_TRUSTED_PROXIES: '{s}' is not a CIDR"))
            })
            .collect()
    }

    /// `SIGNEUR_SEAL_P12` / `SIGNEUR_SEAL_P12_PASSWORD`: the configured sealing identity.
    pub fn seal_identity(
        &self,
    ) -> anyhow::Result<Option<signeur_service::seal_keys::SealIdentity>> {
        let Some(path) = &self.seal_p12 else {
            return Ok(None);
        };
        let data = std::fs::read(path)
            .with_context(|| format!("SIGNEUR_SEAL_P12: reading {}", path.display()))?;
        let identity = signeur_service::seal_keys::identity_from_pkcs12(
            &data,
            self.seal_p12_password.as_deref().unwrap_or(""),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Some(identity))
    }

    /// `SIGNEUR_TSA_URL`: http:// or https:// URLs, comma-separated; `SIGNEUR_TSA_CA_FILE`.
    pub fn tsa(&self) -> anyhow::Result<signeur_service::tsa::TsaSettings> {
        let mut urls = Vec::new();
        for u in self
            .tsa_url
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
        {
            if u.is_empty() {
                continue;
            }
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                bail!("SIGNEUR_TSA_URL: '{u}' is not an http:// or https:// URL");
            }
            urls.push(u.to_string());
        }
        let extra_roots_pem = match &self.tsa_ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("SIGNEUR_TSA_CA_FILE: reading {}: {e}", path.display())
                })?;
                if let Err(e) = signeur_service::tsa::check_roots(&pem) {
                    bail!("SIGNEUR_TSA_CA_FILE: {}: {e}", path.display());
                }
                Some(pem)
            }
            None => None,
        };
        Ok(signeur_service::tsa::TsaSettings {
            urls,
            timeout: Duration::from_secs(10),
            extra_roots_pem,
        })
    }

    /// `SIGNEUR_WEBHOOK_ALLOW_PRIVATE`, `SIGNEUR_WEBHOOK_TIMEOUT_SECS`, `SIGNEUR_WEBHOOK_RETRY`.
    pub fn webhooks(&self) -> anyhow::Result<signeur_service::webhooks::WebhookSettings> {
        if self.webhook_timeout_secs == 0 {
            bail!("SIGNEUR_WEBHOOK_TIMEOUT_SECS must be at least 1");
        }
        let retry = match self.webhook_retry.as_deref() {
            None => Default::default(),
            Some(s) => signeur_service::deliveries::RetrySchedule::parse(s)
                .map_err(|e| anyhow::anyhow!("SIGNEUR_WEBHOOK_RETRY: {e}"))?,
        };
        Ok(signeur_service::webhooks::WebhookSettings {
            allow_private: self.webhook_allow_private,
            timeout: Duration::from_secs(self.webhook_timeout_secs),
            retry,
        })
    }

    /// `SIGNEUR_HEADER_TIMEOUT_SECS`, `SIGNEUR_REQUEST_TIMEOUT_SECS` (1 to
    /// [`MAX_TIMEOUT_SECS`]), `SIGNEUR_MAX_CONCURRENT_REQUESTS`, `SIGNEUR_MAX_CONNECTIONS`
    /// (at least 1).
    pub fn serve_limits(&self) -> anyhow::Result<signeur_http::ServeLimits> {
        for (name, value) in [
            (
                "SIGNEUR_HEADER_TIMEOUT_SECS",
                self.header_timeout_secs as usize,
            ),
            (
                "SIGNEUR_REQUEST_TIMEOUT_SECS",
                self.request_timeout_secs as usize,
            ),
            (
                "SIGNEUR_MAX_CONCURRENT_REQUESTS",
                self.max_concurrent_requests,
            ),
            ("SIGNEUR_MAX_CONNECTIONS", self.max_connections),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        // A deadline is `now + timeout`: a timeout of centuries would overflow it on every
        // request.
        for (name, value) in [
            ("SIGNEUR_HEADER_TIMEOUT_SECS", self.header_timeout_secs),
            ("SIGNEUR_REQUEST_TIMEOUT_SECS", self.request_timeout_secs),
        ] {
            if value > MAX_TIMEOUT_SECS {
                bail!("{name} must be at most {MAX_TIMEOUT_SECS} (one hour)");
            }
        }
        Ok(signeur_http::ServeLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_concurrent_requests: self.max_concurrent_requests,
            max_connections: self.max_connections,
        })
    }

    /// `SIGNEUR_RATE_LIMIT_PER_SEC`, `SIGNEUR_RATE_LIMIT_BURST`,
    /// `SIGNEUR_PAGE_RATE_LIMIT_PER_MIN`, `SIGNEUR_REDIS_URL`.
    pub fn rate_limits(&self) -> anyhow::Result<signeur_service::RateLimitSettings> {
        use signeur_service::ratelimit::MAX_QUOTA;
        let api = signeur_service::ApiQuota::new(self.rate_limit_per_sec, self.rate_limit_burst)
            .map_err(|e| {
                anyhow::anyhow!("SIGNEUR_RATE_LIMIT_PER_SEC / SIGNEUR_RATE_LIMIT_BURST: {e}")
            })?;
        if !(1..=MAX_QUOTA).contains(&self.page_rate_limit_per_min) {
            bail!("SIGNEUR_PAGE_RATE_LIMIT_PER_MIN must be between 1 and {MAX_QUOTA}");
        }
        let redis = match self.redis_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(url) => {
                if !(url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("redis+unix://")
                    || url.starts_with("unix://"))
                {
                    bail!("SIGNEUR_REDIS_URL must be a redis:// (or rediss://, unix://) URL");
                }
                Some(signeur_service::RedisSettings {
                    url: url.to_string(),
                    key_prefix: signeur_service::RedisSettings::DEFAULT_PREFIX.to_string(),
                })
            }
        };
        Ok(signeur_service::RateLimitSettings {
            api,
            pages_per_min: self.page_rate_limit_per_min,
            redis,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
