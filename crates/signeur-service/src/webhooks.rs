//! Webhook endpoints (`/api/v1/webhook-endpoints`): where an organization's events go, each
//! with its own signing secret (`whsec_…`, shown once, stored encrypted with the master key),
//! and the rule for which hosts an endpoint may name.
//!
//! Delivery (the outbox, the retry queue, the attempt history) is in `deliveries`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use uuid::Uuid;

use signeur_core::EventType;
use signeur_core::validate::webhook as validate;
use signeur_store::{EndpointChange, WebhookEndpointRow};

use crate::{Result, Service, ServiceError};

/// The environment variable that lets endpoints name loopback and private hosts.
pub const ALLOW_PRIVATE_VAR: &str = "SIGNEUR_WEBHOOK_ALLOW_PRIVATE";
pub(crate) const SECRET_PURPOSE: &str = "webhook secret";
/// Endpoints per organization.
pub const MAX_ENDPOINTS: usize = 50;

/// How webhooks are delivered (configuration).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Deliver to (and accept endpoints on) loopback and private addresses, and plain
    /// `http://` on loopback: development and tests only.
    pub allow_private: bool,
    /// Per attempt (`SIGNEUR_WEBHOOK_TIMEOUT_SECS`, default 5 s).
    pub timeout: std::time::Duration,
    /// When failed attempts are retried (`SIGNEUR_WEBHOOK_RETRY`).
    pub retry: RetrySchedule,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private: false,
            timeout: std::time::Duration::from_secs(5),
            retry: Default::default(),
        }
    }
}

/// When failed attempts are retried: `FIRST` seconds doubling up to `CAP`, ±20 % jitter,
/// until `ATTEMPTS` attempts or `WINDOW` seconds after the event
/// (`SIGNEUR_WEBHOOK_RETRY="FIRST,CAP,ATTEMPTS,WINDOW"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    pub first: u64,
    pub cap: u64,
    pub attempts: u32,
    pub window: u64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            first: 60,
            cap: 3600,
            attempts: 28,
            window: 86400,
        }
    }
}

impl RetrySchedule {
    /// Parses `FIRST,CAP,ATTEMPTS,WINDOW` (seconds, seconds, count, seconds).
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [first, cap, attempts, window] = parts.as_slice() else {
            return Err(format!(
                "'{s}' is not FIRST,CAP,ATTEMPTS,WINDOW (four numbers, e.g. 60,3600,28,86400)"
            ));
        };
        let num = |name: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{name} '{v}' is not a whole number"))
        };
        let schedule = RetrySchedule {
            first: num("FIRST", first)?,
            cap: num("CAP", cap)?,
            attempts: u32::try_from(num("ATTEMPTS", attempts)?)
                .map_err(|_| format!("ATTEMPTS '{attempts}' is too large"))?,
            window: num("WINDOW", window)?,
        };
        if schedule.first == 0 || schedule.cap < schedule.first || schedule.attempts == 0 {
            return Err(format!(
                "'{s}': FIRST must be at least 1, CAP at least FIRST, ATTEMPTS at least 1"
            ));
        }
        Ok(schedule)
    }

    /// The delay after failed attempt `n` (1-based), before jitter.
    pub fn base_delay(&self, n: u32) -> u64 {
        let exp = n.clamp(1, 40) - 1;
        self.first.saturating_mul(1u64 << exp.min(32)).min(self.cap)
    }

    /// When attempt `n + 1` runs after attempt `n` failed at `now`; None: no more attempts
    /// (the count or the window after the event ran out).
    pub fn next_attempt(
        &self,
        n: u32,
        event_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if n >= self.attempts {
            return None;
        }
        let base = self.base_delay(n) as f64;
        let jittered = base * rand::Rng::random_range(&mut rand::rng(), 0.8..=1.2);
        let at = now + chrono::Duration::milliseconds((jittered * 1000.0) as i64);
        (at <= event_at + chrono::Duration::seconds(self.window as i64)).then_some(at)
    }
}

/// An endpoint as the API shows it (never its secret).
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    /// Empty: every event type.
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why Signeur disabled it (deliveries failing for five days); null when enabled or
    /// paused through the API.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new endpoint and its secret, shown this once.
#[derive(Debug, Clone)]
pub struct CreatedEndpoint {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

/// The wire id of an endpoint: `ep_` and its UUID.
pub fn endpoint_id(id: Uuid) -> String {
    format!("ep_{id}")
}

fn parse_endpoint_id(raw: &str) -> Result<Uuid> {
    raw.strip_prefix("ep_")
        .and_then(|u| Uuid::parse_str(u).ok())
        .ok_or(ServiceError::NotFound("Webhook endpoint"))
}

/// Why an address is not a delivery target (None: it is a public address). Loopback,
/// private (RFC 1918, shared CGNAT space), link-local (cloud metadata services live there),
/// unique-local, unspecified, multicast, broadcast and documentation ranges are refused.
pub(crate) fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => refused_v4(v4),
            None => refused_v6(v6),
        },
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address (cloud metadata services live there)")
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || a == 0 {
        Some("not a unicast address")
    } else if ip.is_documentation() || a >= 240 {
        Some("a reserved address")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if (first & 0xfe00) == 0xfc00 {
        Some("a unique-local address")
    } else if (first & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some("not a unicast address")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("a reserved address")
    } else {
        None
    }
}

fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Which hosts an endpoint (or the legacy webhook URL, `field`) may name: HTTPS to a public
/// host; with [`WebhookSettings::allow_private`], also private addresses, and plain HTTP on
/// loopback. (A host name is checked again, resolved, at every delivery.)
pub(crate) fn check_url_policy(field: &str, u: &url::Url, allow_private: bool) -> Result<()> {
    let refuse = |what: String| {
        ServiceError::Validation(signeur_core::ValidationError::of_field(
            "invalid_url",
            field,
            format!("Field '{field}' {what}."),
        ))
    };
    let loopback = is_loopback_host(u);
    let literal = match u.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    let private = literal.and_then(refused_address);
    if !allow_private {
        if loopback || private.is_some() {
            let what = private.unwrap_or("a loopback address");
            return Err(refuse(format!(
                "names {what}; endpoints on loopback or private hosts are for development \
                 only, with {ALLOW_PRIVATE_VAR}=true"
            )));
        }
        if u.scheme() != "https" {
            return Err(refuse(format!(
                "must use https (http:// only for a loopback host, with {ALLOW_PRIVATE_VAR}=true)"
            )));
        }
    } else if u.scheme() != "https" && !loopback {
        return Err(refuse(
            "must use https (http:// only for a loopback host)".into(),
        ));
    }
    Ok(())
}

fn event_types_json(types: &[EventType]) -> String {
    serde_json::to_string(&types.iter().map(|t| t.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

impl Service {
    /// Replaces the webhook settings.
    pub fn with_webhooks(mut self, webhooks: WebhookSettings) -> Self {
        self.webhooks = webhooks;
        // The client is built with these settings at its first use.
        self.webhook_client = Default::default();
        self
    }

    fn endpoint_model(row: WebhookEndpointRow) -> Result<WebhookEndpoint> {
        let names: Vec<String> = serde_json::from_str(&row.event_types)
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("stored event_types: {e}")))?;
        let event_types = names
            .iter()
            .map(|n| {
                EventType::parse(n).ok_or_else(|| {
                    ServiceError::Internal(anyhow::anyhow!("stored event type '{n}' is unknown"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(WebhookEndpoint {
            id: row.id,
            url: row.url,
            event_types,
            description: row.description,
            disabled_at: row.disabled_at,
            disabled_reason: row.disabled_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// A new endpoint secret (`whsec_…`) and its sealed form.
    pub(crate) fn new_webhook_secret(&self) -> (String, Vec<u8>) {
        self.new_signing_secret(SECRET_PURPOSE)
    }

    /// A new `whsec_…` secret and its form sealed under `purpose` (endpoints' or the legacy
    /// URL's).
    pub(crate) fn new_signing_secret(&self, purpose: &str) -> (String, Vec<u8>) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let sealed = self.keys.encrypt(purpose, secret.as_bytes());
        (secret, sealed)
    }

    /// `POST /api/v1/webhook-endpoints`.
    pub async fn create_webhook_endpoint(
        &self,
        org_id: Uuid,
        body: &[u8],
    ) -> Result<CreatedEndpoint> {
        let input = validate::endpoint(body, true)?;
        let url = input
            .url
            .ok_or_else(|| ServiceError::invalid("missing_field", "Field 'url' is required."))?;
        check_url_policy("url", &url, self.webhooks.allow_private)?;
        if self.db.webhook_endpoints(org_id).await?.len() >= MAX_ENDPOINTS {
            return Err(ServiceError::InvalidState(format!(
                "The organization has {MAX_ENDPOINTS} webhook endpoints, the most it may have; \
                 delete one first."
            )));
        }
        let now = self.clock.now();
        let (secret, sealed) = self.new_webhook_secret();
        let row = WebhookEndpointRow {
            id: Uuid::new_v4(),
            org_id,
            url: url.to_string(),
            event_types: event_types_json(&input.event_types.unwrap_or_default()),
            description: input.description.flatten(),
            secret: sealed,
            previous_secret: None,
            previous_secret_until: None,
            disabled_at: None,
            disabled_reason: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        self.db.insert_webhook_endpoint(&row).await?;
        Ok(CreatedEndpoint {
            endpoint: Self::endpoint_model(row)?,
            secret,
        })
    }

    /// Whether the endpoint still exists (the replay condition of its create).
    pub(crate) async fn webhook_endpoint_exists(&self, org_id: Uuid, id: Uuid) -> Result<bool> {
        Ok(self.db.webhook_endpoint(org_id, id).await?.is_some())
    }

    /// `GET /api/v1/webhook-endpoints`.
    pub async fn list_webhook_endpoints(&self, org_id: Uuid) -> Result<Vec<WebhookEndpoint>> {
        self.db
            .webhook_endpoints(org_id)
            .await?
            .into_iter()
            .map(Self::endpoint_model)
            .collect()
    }

    /// `PATCH /api/v1/webhook-endpoints/{id}`: only the fields given change.
    pub async fn update_webhook_endpoint(
        &self,
        org_id: Uuid,
        id: &str,
        body: &[u8],
    ) -> Result<WebhookEndpoint> {
        let id = parse_endpoint_id(id)?;
        // Another organization's endpoint is a 404 before the body is looked at.
        if self.db.webhook_endpoint(org_id, id).await?.is_none() {
            return Err(ServiceError::NotFound("Webhook endpoint"));
        }
        let input = validate::endpoint(body, false)?;
        if let Some(url) = &input.url {
            check_url_policy("url", url, self.webhooks.allow_private)?;
        }
        let change = EndpointChange {
            url: input.url.map(|u| u.to_string()),
            event_types: input.event_types.as_deref().map(event_types_json),
            description: input.description,
            disabled: input.disabled,
        };
        let row = self
            .db
            .update_webhook_endpoint(org_id, id, &change, self.clock.now())
            .await?
            .ok_or(ServiceError::NotFound("Webhook endpoint"))?;
        Self::endpoint_model(row)
    }

    /// `DELETE /api/v1/webhook-endpoints/{id}`: delivery to it stops at once.
    pub async fn delete_webhook_endpoint(&self, org_id: Uuid, id: &str) -> Result<()> {
        let id = parse_endpoint_id(id)?;
        if self.db.delete_webhook_endpoint(org_id, id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound("Webhook endpoint"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(url: &str, allow_private: bool) -> std::result::Result<(), String> {
        check_url_policy("url", &url::Url::parse(url).unwrap(), allow_private)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn public_https_only_unless_private_hosts_are_allowed() {
        assert_eq!(policy("https://hooks.example.com/x", false), Ok(()));
        for url in [
            "http://localhost:8000/hook",
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://10.1.2.3/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00:ec2::254]/",
            "https://[::ffff:192.168.1.1]/",
            "https://100.64.0.1/",
            "https://app.localhost/",
        ] {
            let err = policy(url, false).unwrap_err();
            assert!(err.contains(ALLOW_PRIVATE_VAR), "{url}: {err}");
        }
        let err = policy("http://hooks.example.com/x", false).unwrap_err();
        assert!(err.contains("must use https"), "{err}");
        assert!(err.contains(ALLOW_PRIVATE_VAR), "{err}");

        assert_eq!(policy("http://localhost:8000/hook", true), Ok(()));
        assert_eq!(policy("http://127.0.0.1:8000/hook", true), Ok(()));
        assert_eq!(policy("https://10.1.2.3/hook", true), Ok(()));
        assert!(policy("http://10.1.2.3/hook", true).is_err());
        assert!(policy("http://hooks.example.com/x", true).is_err());
    }

    #[test]
    fn refused_addresses() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.0.1",
            "169.254.169.254",
            "100.100.1.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd12::1",
            "::",
            "::ffff:127.0.0.1",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            assert!(refused_address(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert_eq!(refused_address(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
