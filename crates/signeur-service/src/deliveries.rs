//! Webhook delivery: the fan-out written with the events (a transactional outbox), one
//! attempt per job, retries with backoff, the attempt history, test events, secret
//! rotation.
//!
//! Every recorded event becomes one `webhook_deliveries` row per matching enabled endpoint
//! in the transaction that records it, with its envelope fixed then (every attempt sends the
//! same bytes), and a `deliver_webhook` job: nothing is lost on a crash. A job makes one
//! attempt and, on failure, schedules the next one in the transaction that records the
//! attempt; the attempts of a node waiting to be recorded are written in one transaction
//! (group commit), each job returning after its commit. Jobs run in a lane of their own
//! with many slots, so a hanging receiver costs one timeout and never delays another
//! endpoint's delivery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use signeur_core::{EventType, time};
use signeur_store::{AttemptRow, DeliveryRow, EventRow, Tx};

use crate::jobs::Job;
use crate::settings::LEGACY_SECRET_PURPOSE;
use crate::webhooks::{ALLOW_PRIVATE_VAR, SECRET_PURPOSE, endpoint_id, refused_address};
use crate::{Result, Service, ServiceError, cursor};

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);
/// The most attempt outcomes written in one transaction.
const RECORDER_BATCH: usize = 128;
/// Outcomes waiting for the recorder before a sender waits (a node runs 32 attempts at once).
const RECORDER_QUEUE: usize = 1024;

/// What one attempt changes, written by the recorder with others in one transaction.
pub(crate) struct AttemptOutcome {
    attempt: AttemptRow,
    /// The delivery's status after the attempt.
    status: String,
    /// The organization's legacy URL (no endpoint row, no failure streak).
    legacy: bool,
    succeeded: bool,
    now: DateTime<Utc>,
    /// The next attempt's job and when it runs.
    next: Option<(Job, DateTime<Utc>)>,
    /// The job's claim: id and lease token.
    claim: (Uuid, Uuid),
}

/// An outcome and where its commit (or failure) is answered.
pub(crate) type PendingOutcome = (AttemptOutcome, tokio::sync::oneshot::Sender<Result<()>>);

/// The most of a response body kept in the history.
pub const EXCERPT_LIMIT: usize = 1024;
/// An endpoint whose every delivery failed for this long is disabled, with a reason (any
/// success restarts the clock).
pub const DISABLE_AFTER: Duration = Duration::days(5);
/// Attempts listed per page by default, and at most.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

pub use crate::webhooks::RetrySchedule;

/// An attempt as the history lists it.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i64,
    pub succeeded: bool,
    pub http_status: Option<i64>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<signeur_store::AttemptRow> for DeliveryAttempt {
    fn from(a: signeur_store::AttemptRow) -> Self {
        DeliveryAttempt {
            id: a.id,
            delivery_id: a.delivery_id,
            endpoint_id: a.endpoint_id,
            event_id: a.event_id,
            event_type: a.event_type,
            attempt: a.attempt,
            succeeded: a.status == "succeeded",
            http_status: a.http_status,
            duration_ms: a.duration_ms,
            error: a.error,
            response_excerpt: a.response_excerpt,
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AttemptPage {
    pub data: Vec<DeliveryAttempt>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// The `GET …/deliveries` query.
#[derive(Debug, Clone, Default)]
pub struct AttemptQuery {
    pub status: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A delivery queued by the API (test event, retry).
#[derive(Debug, Clone)]
pub struct QueuedDelivery {
    pub delivery_id: Uuid,
    pub event_id: String,
    pub event_type: String,
}

/// A rotated secret, shown this once.
#[derive(Debug, Clone)]
pub struct RotatedSecret {
    pub endpoint_id: Uuid,
    pub secret: String,
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// The wire id of a delivery: `whd_` and its UUID.
pub fn delivery_wire_id(id: Uuid) -> String {
    format!("whd_{id}")
}

/// The wire id of an attempt: `wha_` and its UUID.
pub fn attempt_wire_id(id: Uuid) -> String {
    format!("wha_{id}")
}

fn parse_prefixed(raw: &str, prefix: &str, what: &'static str) -> Result<Uuid> {
    raw.strip_prefix(prefix)
        .and_then(|u| Uuid::parse_str(u).ok())
        .ok_or(ServiceError::NotFound(what))
}

/// The envelope `{"id", "type", "created_at", "data"}` in the seed's key order; `data` is
/// the event's stored JSON, byte for byte.
fn envelope(id: &str, event_type: &str, created_at: DateTime<Utc>, data: &str) -> String {
    let s = |v: &str| serde_json::Value::String(v.to_string()).to_string();
    format!(
        "{{\"id\":{},\"type\":{},\"created_at\":{},\"data\":{}}}",
        s(id),
        s(event_type),
        s(&time::format(created_at)),
        data
    )
}

/// A delivery of event `e` to endpoint `endpoint_id`, its envelope fixed now.
fn delivery_row(org: Uuid, endpoint_id: Uuid, e: &EventRow, now: DateTime<Utc>) -> DeliveryRow {
    DeliveryRow {
        id: Uuid::now_v7(),
        org_id: org,
        endpoint_id,
        event_id: e.id.clone(),
        event_type: e.event_type.as_str().to_string(),
        event_at: e.created_at,
        body: envelope(&e.id, e.event_type.as_str(), e.created_at, &e.data),
        status: "pending".into(),
        attempts: 0,
        created_at: now,
        updated_at: now,
    }
}

/// The `endpoint_id` of deliveries to the organization's legacy webhook URL: the
/// organization's own id (no endpoint has it; the column has no foreign key), so legacy
/// deliveries share the outbox, the retries and the attempt rows of endpoints.
fn legacy_endpoint_id(org: Uuid) -> Uuid {
    org
}

fn subscribes(event_types: &str, event_type: EventType) -> bool {
    match serde_json::from_str::<Vec<String>>(event_types) {
        Ok(types) => types.is_empty() || types.iter().any(|t| t == event_type.as_str()),
        Err(_) => false,
    }
}

/// A host whose addresses the SSRF rule refuses: the reason is the attempt's error.
#[derive(Debug)]
struct RefusedHost(String);

impl std::fmt::Display for RefusedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusedHost {}

fn refusal(host: &str, ip: std::net::IpAddr, why: &str) -> String {
    format!(
        "refused: {host} resolves to {ip}, {why}; webhooks go to public addresses only \
         (unless {ALLOW_PRIVATE_VAR}=true)"
    )
}

/// Resolves a delivery's host and refuses it when any address is one `refused_address`
/// rejects: the client connects only to the addresses checked here, so a DNS answer that
/// changes between check and connect (rebinding) cannot reach a private host.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private
                && let Some((ip, why)) = addrs
                    .iter()
                    .find_map(|a| refused_address(a.ip()).map(|why| (a.ip(), why)))
            {
                return Err(Box::new(RefusedHost(refusal(&host, ip, why)))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The one client of webhook deliveries: no redirects, no proxies, the guarded resolver
/// (public for the delivery benchmark, which posts through it).
pub fn webhook_client(
    allow_private: bool,
    timeout: StdDuration,
) -> std::result::Result<reqwest::Client, String> {
    crate::tsa::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("Signeur/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .build()
        .map_err(|e| format!("webhook HTTP client: {e}"))
}

/// What one POST came to.
struct Sent {
    http_status: Option<u16>,
    error: Option<String>,
    excerpt: Option<String>,
}

/// The error of a failed request, with our refusal when the resolver refused the host.
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<RefusedHost>() {
            return r.0.clone();
        }
        source = s.source();
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut msg = kind.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

async fn read_excerpt(mut res: reqwest::Response) -> Option<String> {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < EXCERPT_LIMIT {
        match res.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(EXCERPT_LIMIT);
    if buf.is_empty() {
        return None;
    }
    // Cut at a character boundary (the excerpt may end inside one).
    let text = match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    };
    Some(text)
}

impl Service {
    fn webhook_http(&self) -> Result<reqwest::Client> {
        if let Some(c) = self.webhook_client.get() {
            return Ok(c.clone());
        }
        let client = webhook_client(self.webhooks.allow_private, self.webhooks.timeout)
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))?;
        Ok(self.webhook_client.get_or_init(|| client).clone())
    }

    /// Records `events` and, in the same transaction, one delivery per matching enabled
    /// endpoint of their organization with its job (two queries plus one per delivery).
    pub(crate) async fn record_events(&self, tx: &mut Tx, events: &[EventRow]) -> Result<()> {
        tx.insert_events(events).await?;
        let Some(first) = events.first() else {
            return Ok(());
        };
        let now = self.clock.now();
        let mut orgs: Vec<Uuid> = vec![first.org_id];
        for e in events {
            if !orgs.contains(&e.org_id) {
                orgs.push(e.org_id);
            }
        }
        let mut rows = Vec::new();
        for org in orgs {
            let endpoints = tx.enabled_webhook_endpoints(org).await?;
            if endpoints.is_empty() {
                // The legacy URL, when the organization has no endpoint at all: every event.
                if tx.legacy_webhook_target(org).await?.is_some() {
                    for e in events.iter().filter(|e| e.org_id == org) {
                        rows.push(delivery_row(org, legacy_endpoint_id(org), e, now));
                    }
                }
                continue;
            }
            for e in events.iter().filter(|e| e.org_id == org) {
                for ep in endpoints
                    .iter()
                    .filter(|ep| subscribes(&ep.event_types, e.event_type))
                {
                    rows.push(delivery_row(org, ep.id, e, now));
                }
            }
        }
        self.queue_deliveries(tx, &rows, now).await
    }

    async fn queue_deliveries(
        &self,
        tx: &mut Tx,
        rows: &[DeliveryRow],
        now: DateTime<Utc>,
    ) -> Result<()> {
        tx.insert_deliveries(rows).await?;
        for d in rows {
            let job = Job::DeliverWebhook {
                delivery_id: d.id,
                attempt: 1,
            };
            self.enqueue_job(tx, &job, now, now).await?;
        }
        Ok(())
    }

    /// One attempt of a delivery (the `deliver_webhook` job whose claim is `claim`: job id
    /// and lease token). `scheduled`: the scheduled attempt number (1-based); 0: a retry
    /// asked for through the API, which is one attempt and schedules nothing. On `Ok` the
    /// job is completed, in the transaction that records the attempt; that transaction is
    /// shared with the other attempts of this node whose outcome is waiting (group commit:
    /// on SQLite each commit is a sync of the log), and this returns after it committed.
    pub(crate) async fn deliver_webhook(
        &self,
        delivery_id: Uuid,
        scheduled: i64,
        claim: (Uuid, Uuid),
    ) -> Result<String> {
        let (job_id, lease_token) = claim;
        let lost = || tracing::warn!(job = %job_id, "lost its lease before it finished; the attempt is recorded, the job left to its new holder");
        let done = |summary: String| async move {
            if !self.db.complete_job(job_id, lease_token).await? {
                lost();
            }
            Ok(summary)
        };
        let Some(d) = self.db.webhook_delivery(delivery_id).await? else {
            return done("no such delivery".into()).await;
        };
        if scheduled > 0 && d.status != "pending" {
            return done(format!("delivery already {}", d.status)).await;
        }
        let now = self.clock.now();
        let legacy = d.endpoint_id == legacy_endpoint_id(d.org_id);
        let (url, secrets) = if legacy {
            match self.legacy_target(d.org_id).await? {
                Some(target) => target,
                None => {
                    self.db.stop_delivery(d.id, now).await?;
                    return done("legacy webhook URL removed; delivery stopped".into()).await;
                }
            }
        } else {
            let endpoint = match self.db.webhook_endpoint_by_id(d.endpoint_id).await? {
                Some(e) if e.disabled_at.is_none() => e,
                Some(_) => {
                    self.db.stop_delivery(d.id, now).await?;
                    return done("endpoint disabled; delivery stopped".into()).await;
                }
                None => {
                    self.db.stop_delivery(d.id, now).await?;
                    return done("endpoint deleted; delivery stopped".into()).await;
                }
            };
            let mut secrets = Vec::new();
            for sealed in std::iter::once(Some(&endpoint.secret)).chain(std::iter::once(
                endpoint
                    .previous_secret
                    .as_ref()
                    .filter(|_| endpoint.previous_secret_until.is_some_and(|u| u > now)),
            )) {
                let Some(sealed) = sealed else { continue };
                secrets.push(self.open_secret(
                    SECRET_PURPOSE,
                    sealed,
                    &endpoint_id(endpoint.id),
                )?);
            }
            (endpoint.url, secrets)
        };

        let started = Instant::now();
        let sent = self.post_webhook(&url, &d, &secrets).await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let succeeded = sent.error.is_none();
        let now = self.clock.now();
        let attempt = AttemptRow {
            id: Uuid::now_v7(),
            delivery_id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            attempt: d.attempts + 1,
            status: if succeeded { "succeeded" } else { "failed" }.into(),
            http_status: sent.http_status.map(i64::from),
            duration_ms,
            error: sent.error.clone(),
            response_excerpt: sent.excerpt,
            created_at: now,
        };
        let next = if succeeded || scheduled == 0 {
            None
        } else {
            let n = u32::try_from(scheduled).unwrap_or(u32::MAX);
            self.webhooks.retry.next_attempt(n, d.event_at, now)
        };
        let status = if succeeded {
            "succeeded"
        } else if scheduled == 0 {
            // A retry through the API changes nothing about the schedule.
            d.status.as_str()
        } else if next.is_some() {
            "pending"
        } else {
            "failed"
        };
        let outcome = AttemptOutcome {
            status: status.to_owned(),
            attempt,
            legacy,
            succeeded,
            now,
            next: next.map(|at| {
                let job = Job::DeliverWebhook {
                    delivery_id: d.id,
                    attempt: scheduled + 1,
                };
                (job, at)
            }),
            claim,
        };
        // Returns once the outcome is committed (with others that were waiting).
        self.record_outcome(outcome).await?;
        Ok(match (&sent.error, next) {
            (None, _) => format!("delivered ({})", sent.http_status.unwrap_or_default()),
            (Some(e), Some(at)) => format!("attempt failed ({e}); next at {}", time::format(at)),
            (Some(e), None) => format!("attempt failed ({e}); no more attempts"),
        })
    }

    /// Hands an attempt's outcome to this node's recorder and waits until it is committed.
    /// The recorder is started at the first outcome; when it is gone (its runtime ended),
    /// the outcome is written in a transaction of its own.
    async fn record_outcome(&self, outcome: AttemptOutcome) -> Result<()> {
        let sender = self.webhook_recorder.get_or_init(|| {
            let (sender, receiver) = tokio::sync::mpsc::channel(RECORDER_QUEUE);
            // The recorder's copy holds no sender: it ends when the last Service does.
            let mut recorder = self.clone();
            recorder.webhook_recorder = Default::default();
            tokio::spawn(recorder.run_recorder(receiver));
            sender
        });
        let (reply, answer) = tokio::sync::oneshot::channel();
        match sender.send((outcome, reply)).await {
            Ok(()) => answer.await.unwrap_or_else(|_| {
                Err(ServiceError::Internal(anyhow::anyhow!(
                    "the webhook recorder stopped before answering"
                )))
            }),
            Err(tokio::sync::mpsc::error::SendError((outcome, _))) => {
                self.write_outcomes(&[&outcome]).await.map(|_| ())
            }
        }
    }

    /// Group commit: takes the first waiting outcome and every other already waiting (up
    /// to [`RECORDER_BATCH`]), writes them in one transaction and answers each after the
    /// commit. A failed batch is written again one outcome per transaction, so one bad row
    /// fails only its own attempt.
    async fn run_recorder(self, mut receiver: tokio::sync::mpsc::Receiver<PendingOutcome>) {
        let mut batch = Vec::with_capacity(RECORDER_BATCH);
        while let Some(first) = receiver.recv().await {
            batch.push(first);
            while batch.len() < RECORDER_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            if batch.len() > 1 {
                let outcomes: Vec<&AttemptOutcome> = batch.iter().map(|(o, _)| o).collect();
                match self.write_outcomes(&outcomes).await {
                    Ok(()) => {
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Ok(()));
                        }
                        continue;
                    }
                    Err(e) => tracing::warn!(
                        "a batch of {} webhook attempt outcomes failed to commit ({e}); writing each alone",
                        batch.len()
                    ),
                }
            }
            for (outcome, reply) in batch.drain(..) {
                let _ = reply.send(self.write_outcomes(&[&outcome]).await);
            }
        }
    }

    /// Writes attempt outcomes in one transaction: the attempt and the delivery's status,
    /// the endpoint's streak, the next attempt's job and the end of the claim (fenced by its
    /// lease token: a lost lease leaves the job to its new holder, the attempt is recorded).
    async fn write_outcomes(&self, outcomes: &[&AttemptOutcome]) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let mut notes = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            tx.record_attempt(&o.attempt, &o.status).await?;
            let disabled = !o.legacy
                && tx
                .note_endpoint_outcome(
                    o.attempt.endpoint_id,
                    o.succeeded,
                    o.now,
                    o.now - DISABLE_AFTER,
                    &format!(
                        "Every delivery failed for {} days; PATCH {{\"disabled\": false}} resumes delivery.",
                        DISABLE_AFTER.num_days()
                    ),
                )
                .await?;
            if let Some((job, at)) = &o.next {
                self.enqueue_job(&mut tx, job, *at, o.now).await?;
            }
            let (job_id, lease_token) = o.claim;
            let kept = tx.complete_job(job_id, lease_token).await?;
            notes.push((disabled, kept));
        }
        tx.commit().await?;
        self.metrics.webhook_outcomes_committed(outcomes.len());
        for (o, (disabled, kept)) in outcomes.iter().zip(notes) {
            if disabled {
                tracing::warn!(endpoint = %endpoint_id(o.attempt.endpoint_id), "webhook endpoint disabled after failing for {} days", DISABLE_AFTER.num_days());
            }
            if !kept {
                tracing::warn!(job = %o.claim.0, "lost its lease before it finished; the attempt is recorded, the job left to its new holder");
            }
        }
        Ok(())
    }

    fn open_secret(&self, purpose: &str, sealed: &[u8], whose: &str) -> Result<String> {
        self.keys
            .decrypt(purpose, sealed)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ServiceError::Internal(anyhow::anyhow!(
                    "the secret of {whose} does not open with the master key"
                ))
            })
    }

    /// The organization's legacy webhook URL and its secret (None: no longer set).
    async fn legacy_target(&self, org_id: Uuid) -> Result<Option<(String, Vec<String>)>> {
        let Some(row) = self.db.get_settings(org_id).await? else {
            return Ok(None);
        };
        let (Some(url), Some(sealed)) = (row.legacy_webhook_url, row.legacy_webhook_secret) else {
            return Ok(None);
        };
        let secret = self.open_secret(LEGACY_SECRET_PURPOSE, &sealed, "the legacy webhook URL")?;
        Ok(Some((url, vec![secret])))
    }

    /// POSTs the delivery's body, signed now, and reads up to [`EXCERPT_LIMIT`] of the answer.
    async fn post_webhook(&self, url: &str, d: &DeliveryRow, secrets: &[String]) -> Sent {
        let fail = |error: String| Sent {
            http_status: None,
            error: Some(error),
            excerpt: None,
        };
        let parsed = match url::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return fail(format!("the endpoint's URL does not parse: {e}")),
        };
        // A literal address is never resolved: check it here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if !self.webhooks.allow_private
            && let Some(ip) = literal
            && let Some(why) = refused_address(ip)
        {
            return fail(refusal(&ip.to_string(), ip, why));
        }
        let client = match self.webhook_http() {
            Ok(c) => c,
            Err(e) => return fail(e.to_string()),
        };
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        // The signature's time is the real time of sending (receivers check it against theirs).
        let t = Utc::now().timestamp();
        let signature = signeur_webhook::sign(&secret_refs, t, d.body.as_bytes());
        let res = client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Signeur-Signature", signature)
            .header("X-Signeur-Event-Id", &d.event_id)
            .header("X-Signeur-Event-Type", &d.event_type)
            .body(d.body.clone())
            .send()
            .await;
        match res {
            Ok(res) => {
                let status = res.status();
                let excerpt = read_excerpt(res).await;
                Sent {
                    http_status: Some(status.as_u16()),
                    error: (!status.is_success())
                        .then(|| format!("the endpoint answered {}", status.as_u16())),
                    excerpt,
                }
            }
            Err(e) => fail(describe(&e)),
        }
    }

    /// `GET /api/v1/webhook-endpoints/{id}/deliveries`: one entry per attempt, newest first.
    pub async fn list_webhook_attempts(
        &self,
        org_id: Uuid,
        id: &str,
        q: &AttemptQuery,
    ) -> Result<AttemptPage> {
        let endpoint = parse_prefixed(id, "ep_", "Webhook endpoint")?;
        if self.db.webhook_endpoint(org_id, endpoint).await?.is_none() {
            return Err(ServiceError::NotFound("Webhook endpoint"));
        }
        // An empty query value means "not given".
        let given = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        let status = match given(&q.status).as_deref() {
            None => None,
            Some("succeeded") => Some("succeeded"),
            Some("failed") => Some("failed"),
            Some(_) => {
                return Err(ServiceError::invalid(
                    "invalid_filter",
                    "Query parameter 'status' must be 'succeeded' or 'failed'.",
                ));
            }
        };
        let limit = match given(&q.limit).as_deref() {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ServiceError::invalid(
                        "invalid_limit",
                        "Query parameter 'limit' must be an integer from 1 to 100.",
                    ));
                }
            },
        };
        let fingerprint = format!("deliveries:{endpoint}:{}", status.unwrap_or(""));
        let after = match given(&q.cursor).as_deref() {
            None => None,
            Some(c) => Some(
                cursor::decode(&self.keys, org_id, &fingerprint, c).ok_or_else(|| {
                    ServiceError::invalid(
                        "invalid_cursor",
                        "Query parameter 'cursor' is not a cursor issued for this list and \
                         these filters.",
                    )
                })?,
            ),
        };
        let mut rows = self
            .db
            .webhook_attempts(endpoint, status, after, limit + 1)
            .await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if has_more => Some(cursor::encode(
                &self.keys,
                org_id,
                &fingerprint,
                last.created_at,
                last.id,
            )),
            _ => None,
        };
        Ok(AttemptPage {
            data: rows.into_iter().map(DeliveryAttempt::from).collect(),
            has_more,
            next_cursor,
        })
    }

    /// `POST /api/v1/webhook-deliveries/{id}/retry`: one more attempt, now.
    pub async fn retry_webhook_delivery(&self, org_id: Uuid, id: &str) -> Result<QueuedDelivery> {
        let delivery_id = parse_prefixed(id, "whd_", "Webhook delivery")?;
        let d = self
            .db
            .webhook_delivery(delivery_id)
            .await?
            .filter(|d| d.org_id == org_id)
            .ok_or(ServiceError::NotFound("Webhook delivery"))?;
        if d.endpoint_id != legacy_endpoint_id(org_id)
            && self
                .db
                .webhook_endpoint(org_id, d.endpoint_id)
                .await?
                .is_none()
        {
            return Err(ServiceError::NotFound("Webhook endpoint"));
        }
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let job = Job::DeliverWebhook {
            delivery_id,
            attempt: 0,
        };
        self.enqueue_job(&mut tx, &job, now, now).await?;
        tx.commit().await?;
        Ok(QueuedDelivery {
            delivery_id,
            event_id: d.event_id,
            event_type: d.event_type,
        })
    }

    /// `POST /api/v1/webhook-endpoints/{id}/test`: a signed `webhook_endpoint.test` to this
    /// endpoint only (even while it is disabled it is queued, and stopped at its attempt).
    pub async fn send_test_webhook(&self, org_id: Uuid, id: &str) -> Result<QueuedDelivery> {
        let endpoint = parse_prefixed(id, "ep_", "Webhook endpoint")?;
        if self.db.webhook_endpoint(org_id, endpoint).await?.is_none() {
            return Err(ServiceError::NotFound("Webhook endpoint"));
        }
        let now = self.clock.now();
        let event_id = format!("evt_{}", Uuid::new_v4());
        let event_type = EventType::WebhookEndpointTest.as_str().to_string();
        let data = serde_json::json!({
            "webhook_endpoint_id": endpoint_id(endpoint),
            "message": "A test event from Signeur.",
        })
        .to_string();
        let row = DeliveryRow {
            id: Uuid::now_v7(),
            org_id,
            endpoint_id: endpoint,
            event_id: event_id.clone(),
            event_type: event_type.clone(),
            event_at: now,
            body: envelope(&event_id, &event_type, now, &data),
            status: "pending".into(),
            attempts: 0,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.db.begin().await?;
        self.queue_deliveries(&mut tx, std::slice::from_ref(&row), now)
            .await?;
        tx.commit().await?;
        Ok(QueuedDelivery {
            delivery_id: row.id,
            event_id,
            event_type,
        })
    }

    /// `POST /api/v1/webhook-endpoints/{id}/rotate-secret`: a new secret; the old one keeps
    /// signing (a second `v1=`) for [`ROTATION_OVERLAP`].
    pub async fn rotate_webhook_secret(&self, org_id: Uuid, id: &str) -> Result<RotatedSecret> {
        let endpoint = parse_prefixed(id, "ep_", "Webhook endpoint")?;
        let now = self.clock.now();
        let (secret, sealed) = self.new_webhook_secret();
        let until = now + ROTATION_OVERLAP;
        self.db
            .rotate_webhook_secret(org_id, endpoint, &sealed, until, now)
            .await?
            .ok_or(ServiceError::NotFound("Webhook endpoint"))?;
        Ok(RotatedSecret {
            endpoint_id: endpoint,
            secret,
            previous_secret_expires_at: until,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_parses_and_doubles_to_its_cap() {
        assert_eq!(
            RetrySchedule::parse("60,3600,28,86400").unwrap(),
            RetrySchedule::default()
        );
        for bad in [
            "",
            "1,2,3",
            "a,2,3,4",
            "0,1,1,1",
            "5,2,3,4",
            "1,2,0,4",
            "1,2,3,4,5",
        ] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
        let s = RetrySchedule::default();
        assert_eq!(s.base_delay(1), 60);
        assert_eq!(s.base_delay(2), 120);
        assert_eq!(s.base_delay(7), 3600);
        assert_eq!(s.base_delay(28), 3600);
        let t0 = Utc::now();
        for _ in 0..50 {
            let at = s.next_attempt(1, t0, t0).unwrap();
            let secs = (at - t0).num_milliseconds() as f64 / 1000.0;
            assert!((48.0..=72.0).contains(&secs), "{secs}");
        }
        assert_eq!(s.next_attempt(28, t0, t0), None, "attempts ran out");
        assert_eq!(
            s.next_attempt(3, t0, t0 + Duration::seconds(86400 - 10)),
            None,
            "window ran out"
        );
    }

    #[test]
    fn envelope_keeps_the_seed_order_and_the_data_bytes() {
        let t = time::parse("2026-05-14T10:52:24.374Z").unwrap();
        let body = envelope("evt_1", "signer.signed", t, r#"{"b":1,"a":2}"#);
        assert_eq!(
            body,
            r#"{"id":"evt_1","type":"signer.signed","created_at":"2026-05-14T10:52:24.374Z","data":{"b":1,"a":2}}"#
        );
        assert!(subscribes("[]", EventType::SignerSigned));
        assert!(subscribes(r#"["signer.signed"]"#, EventType::SignerSigned));
        assert!(!subscribes(
            r#"["signature_request.completed"]"#,
            EventType::SignerSigned
        ));
    }
}
