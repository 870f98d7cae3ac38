//! Signature requests, their signers and their events.

use chrono::{DateTime, Utc};
use signeur_core::{
    Delivery, EventType, Locale, RequestStatus, SignerStatus, SigningOrder, VerificationMethod,
};
use uuid::Uuid;

use crate::{AttemptRow, Db, Result, Tx, on_db, on_db_write, on_tx};

/// Field order matters: `get_request_with_parts` on SQLite decodes it from a JSON array.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct RequestRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub title: String,
    pub message: Option<String>,
    pub locale: Locale,
    pub delivery: Delivery,
    pub signing_order: SigningOrder,
    pub metadata: Option<String>,
    pub status: RequestStatus,
    pub document_filename: String,
    pub document_hash: String,
    pub document_size: i64,
    pub document_page_count: i64,
    pub document_blob: String,
    pub signer_count: i64,
    pub sealed_blob: Option<String>,
    pub sealed_document_hash: Option<String>,
    #[serde(deserialize_with = "crate::rfc3339::instant")]
    pub created_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::rfc3339::instant")]
    pub updated_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub declined_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub expired_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "crate::rfc3339::instant")]
    pub expires_at: DateTime<Utc>,
    /// The hash chain's head: the last event's sequence number and hash.
    pub event_seq: i64,
    pub last_event_hash: Option<String>,
}

macro_rules! request_columns {
    () => {
        "id, org_id, title, message, locale, delivery, signing_order, metadata, status, \
    document_filename, document_hash, document_size, document_page_count, document_blob, signer_count, sealed_blob, \
    sealed_document_hash, created_at, updated_at, sent_at, opened_at, signed_at, cancelled_at, cancel_reason, \
    declined_at, expired_at, expires_at, event_seq, last_event_hash"
    };
}

/// Read by name from the objects of `signers_json` (migration 0007: the SQLite view
/// `signer_json_arrays` and the PostgreSQL function `signeur_signer_part` list its fields).
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct SignerRow {
    pub id: Uuid,
    /// Not in the aggregate: filled in from the request.
    #[serde(skip_deserializing)]
    pub request_id: Uuid,
    /// Not in the aggregate: filled in from the request.
    #[serde(skip_deserializing)]
    pub org_id: Uuid,
    pub position: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    pub name_as_signed: Option<String>,
    pub locale: Locale,
    /// The signing-link token as stored: encrypted with the master key (`sealed:v1:…`, the
    /// service opens it), or in plain text on a row written before migration 0010 and not
    /// yet sealed by the start-up pass.
    pub access_token: String,
    /// Hex SHA-256 of the token: how a link is looked up. None on a row not yet sealed.
    pub access_token_hash: Option<String>,
    pub status: SignerStatus,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub declined_at: Option<DateTime<Utc>>,
    pub decline_reason: Option<String>,
    #[serde(deserialize_with = "crate::rfc3339::maybe")]
    pub invalidated_at: Option<DateTime<Utc>>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub representing_as_invited: Option<String>,
    pub representing_as_signed: Option<String>,
    pub representing_role: Option<String>,
    pub representing_entity_id: Option<String>,
    pub email_sent: bool,
    pub email_error: Option<String>,
    /// How the signer was admitted when signing.
    pub verification_method: Option<VerificationMethod>,
    /// The drawn signature (PNG), if any.
    pub signature_image_blob: Option<String>,
    /// Where the visible signature block goes (JSON `{page, x, y}`), if the request named it.
    pub signature_position: Option<String>,
}

macro_rules! signer_columns {
    () => {
        "id, request_id, org_id, position, email, name, name_as_signed, locale, access_token, \
    access_token_hash, status, sent_at, opened_at, signed_at, declined_at, decline_reason, invalidated_at, ip_address, user_agent, \
    representing_as_invited, representing_as_signed, representing_role, representing_entity_id, email_sent, email_error, \
    verification_method, signature_image_blob, signature_position"
    };
}

/// Read by name from the objects of `events_json` (migration 0007: the SQLite view
/// `event_json_arrays` and the PostgreSQL function `signeur_event_part` list its fields).
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct EventRow {
    pub id: String,
    /// Not in the aggregate: filled in from the request.
    #[serde(skip_deserializing)]
    pub org_id: Uuid,
    /// Not in the aggregate: filled in from the request.
    #[serde(skip_deserializing)]
    pub request_id: Option<Uuid>,
    pub signer_id: Option<Uuid>,
    pub seq: i64,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(deserialize_with = "crate::rfc3339::instant")]
    pub created_at: DateTime<Utc>,
    pub data: String,
    pub prev_hash: Option<String>,
    pub hash: String,
}

macro_rules! event_columns {
    () => {
        "id, org_id, request_id, signer_id, seq, type, created_at, data, prev_hash, hash"
    };
}

/// A request with its signers (by position) and events (by sequence number).
#[derive(Debug, Clone)]
pub struct RequestWithParts {
    pub request: RequestRow,
    pub signers: Vec<SignerRow>,
    pub events: Vec<EventRow>,
    /// Every webhook attempt for its events, oldest first (its audit trail's `deliveries`).
    pub attempts: Vec<AttemptRow>,
}

/// PostgreSQL's answer to [`REQUEST_WITH_PARTS_POSTGRES`].
#[derive(sqlx::FromRow)]
struct RequestWithPartsRow {
    #[sqlx(flatten)]
    request: RequestRow,
    signers_json: String,
    events_json: String,
    attempts_json: String,
}

/// SQLite's answer to [`REQUEST_WITH_PARTS_SQLITE`]: three values for the driver to copy
/// out instead of one per column.
#[derive(sqlx::FromRow)]
struct RequestWithPartsJson {
    request_json: String,
    signers_json: String,
    events_json: String,
    attempts_json: String,
}

/// SQLite side of [`Tx::get_request_with_parts`]: the request as one JSON array of the
/// RequestRow fields in declaration order (serde reads a struct from a sequence; ids as hex,
/// which the uuid parser takes), so the driver copies out three values instead of one per
/// column. Signers and events come from the arrays the triggers of migrations 0006 and 0007
/// keep on the row (`signers_json`, `events_json`: arrays of objects keyed by the row structs'
/// field names, less the request and organization ids), in no particular order: the rows are
/// sorted after decoding.
const REQUEST_WITH_PARTS_SQLITE: &str = concat!(
    "SELECT json_array(hex(id), hex(org_id), title, message, locale, delivery, signing_order, \
        metadata, status, document_filename, document_hash, document_size, document_page_count, \
        document_blob, signer_count, sealed_blob, sealed_document_hash, created_at, updated_at, \
        sent_at, opened_at, signed_at, cancelled_at, cancel_reason, declined_at, expired_at, \
        expires_at, event_seq, last_event_hash) AS request_json",
    ", signers_json, events_json, ",
    "(SELECT json_group_array(json_object('id', hex(a.id), 'delivery_id', hex(a.delivery_id), \
        'endpoint_id', hex(a.endpoint_id), 'event_id', a.event_id, 'event_type', a.event_type, \
        'attempt', a.attempt, 'status', a.status, 'http_status', a.http_status, \
        'duration_ms', a.duration_ms, 'error', a.error, 'created_at', a.created_at)) \
      FROM events e JOIN webhook_attempts a ON a.event_id = e.id \
      WHERE e.request_id = r.id) AS attempts_json",
    " FROM signature_requests r WHERE r.id = $1 AND r.org_id = $2"
);

/// PostgreSQL side of [`Tx::get_request_with_parts`]: the request's columns and the same
/// arrays of objects as on SQLite, kept on the row by the triggers of migrations 0006 and 0007.
const REQUEST_WITH_PARTS_POSTGRES: &str = concat!(
    "SELECT ",
    request_columns!(),
    ", signers_json, events_json, ",
    "(SELECT coalesce(json_agg(json_build_object('id', a.id, 'delivery_id', a.delivery_id, \
        'endpoint_id', a.endpoint_id, 'event_id', a.event_id, 'event_type', a.event_type, \
        'attempt', a.attempt, 'status', a.status, 'http_status', a.http_status, \
        'duration_ms', a.duration_ms, 'error', a.error, 'created_at', a.created_at)), '[]')::text \
      FROM events e JOIN webhook_attempts a ON a.event_id = e.id \
      WHERE e.request_id = r.id) AS attempts_json",
    " FROM signature_requests r WHERE r.id = $1 AND r.org_id = $2"
);

/// Filters and position of one page of `list_requests`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// The status as a reader sees it (`expired` includes open requests past `expires_at`).
    pub status: Option<RequestStatus>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Keyset position: the last row of the previous page.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

impl Tx {
    pub async fn insert_request(&mut self, r: &RequestRow) -> Result<()> {
        let sql = "INSERT INTO signature_requests (id, org_id, title, message, locale, delivery, signing_order, \
            metadata, status, document_filename, document_hash, document_size, document_page_count, document_blob, \
            created_at, updated_at, sent_at, expires_at, signer_count, event_seq, last_event_hash) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";
        on_tx!(self, c => sqlx::query(sql)
            .bind(r.id)
            .bind(r.org_id)
            .bind(&r.title)
            .bind(&r.message)
            .bind(r.locale)
            .bind(r.delivery)
            .bind(r.signing_order)
            .bind(&r.metadata)
            .bind(r.status)
            .bind(&r.document_filename)
            .bind(&r.document_hash)
            .bind(r.document_size)
            .bind(r.document_page_count)
            .bind(&r.document_blob)
            .bind(r.created_at)
            .bind(r.updated_at)
            .bind(r.sent_at)
            .bind(r.expires_at)
            .bind(r.signer_count)
            .bind(r.event_seq)
            .bind(&r.last_event_hash)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn insert_signers(&mut self, signers: &[SignerRow]) -> Result<()> {
        if signers.is_empty() {
            return Ok(());
        }
        on_tx!(self, c => {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO signers (id, request_id, org_id, position, email, name, locale, access_token, \
                 access_token_hash, status, sent_at, email_sent, email_error, signature_position) ",
            );
            q.push_values(signers, |mut b, s| {
                b.push_bind(s.id)
                    .push_bind(s.request_id)
                    .push_bind(s.org_id)
                    .push_bind(s.position)
                    .push_bind(s.email.clone())
                    .push_bind(s.name.clone())
                    .push_bind(s.locale)
                    .push_bind(s.access_token.clone())
                    .push_bind(s.access_token_hash.clone())
                    .push_bind(s.status)
                    .push_bind(s.sent_at)
                    .push_bind(s.email_sent)
                    .push_bind(s.email_error.clone())
                    .push_bind(s.signature_position.clone());
            });
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// The request, its row locked for the rest of the transaction (PostgreSQL
    /// `FOR UPDATE`; SQLite's write transaction already excludes other writers).
    pub async fn lock_request(&mut self, org_id: Uuid, id: Uuid) -> Result<Option<RequestRow>> {
        let sql = match self {
            Tx::Postgres(_) => concat!(
                "SELECT ",
                request_columns!(),
                " FROM signature_requests WHERE id = $1 AND org_id = $2 FOR UPDATE"
            ),
            Tx::Sqlite(_) => concat!(
                "SELECT ",
                request_columns!(),
                " FROM signature_requests WHERE id = $1 AND org_id = $2"
            ),
        };
        let row =
            on_tx!(self, c => sqlx::query_as(sql).bind(id).bind(org_id).fetch_optional(c).await)?;
        Ok(row)
    }

    /// Writes the request's status and its status timestamps.
    pub async fn update_request_status(&mut self, r: &RequestRow) -> Result<()> {
        let sql = "UPDATE signature_requests SET status = $2, updated_at = $3, sent_at = $4, opened_at = $5, \
            signed_at = $6, cancelled_at = $7, cancel_reason = $8, declined_at = $9, expired_at = $10, \
            event_seq = $11, last_event_hash = $12 WHERE id = $1";
        on_tx!(self, c => sqlx::query(sql)
            .bind(r.id)
            .bind(r.status)
            .bind(r.updated_at)
            .bind(r.sent_at)
            .bind(r.opened_at)
            .bind(r.signed_at)
            .bind(r.cancelled_at)
            .bind(&r.cancel_reason)
            .bind(r.declined_at)
            .bind(r.expired_at)
            .bind(r.event_seq)
            .bind(&r.last_event_hash)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Invalidates every signer of the request who has not signed or declined.
    pub async fn invalidate_open_signers(
        &mut self,
        request_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let n = on_tx!(self, c => sqlx::query(
            "UPDATE signers SET status = 'invalidated', invalidated_at = $2 \
             WHERE request_id = $1 AND status IN ('pending', 'sent', 'opened')")
            .bind(request_id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n)
    }

    /// Inserts events built on the request's chain head (see `RequestRow::event_seq`); the
    /// caller writes the new head with the request row in the same transaction. The unique
    /// `(request_id, seq)` makes a forked chain impossible to commit.
    pub async fn insert_events(&mut self, events: &[EventRow]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        on_tx!(self, c => {
            let mut q = sqlx::QueryBuilder::new(concat!("INSERT INTO events (", event_columns!(), ") "));
            q.push_values(events, |mut b, e| {
                b.push_bind(e.id.clone())
                    .push_bind(e.org_id)
                    .push_bind(e.request_id)
                    .push_bind(e.signer_id)
                    .push_bind(e.seq)
                    .push_bind(e.event_type)
                    .push_bind(e.created_at)
                    .push_bind(e.data.clone())
                    .push_bind(e.prev_hash.clone())
                    .push_bind(e.hash.clone());
            });
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

impl Tx {
    /// The invitation reached the SMTP server: a `pending` signer becomes `sent`.
    pub async fn record_invitation_sent(
        &mut self,
        signer_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_tx!(self, c => sqlx::query(
            "UPDATE signers SET status = CASE WHEN status = 'pending' THEN 'sent' ELSE status END, \
             sent_at = COALESCE(sent_at, $2), email_sent = TRUE, email_error = NULL \
             WHERE id = $1 AND status IN ('pending', 'sent', 'opened')")
            .bind(signer_id)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_signer_locale(&mut self, signer_id: Uuid, locale: Locale) -> Result<()> {
        on_tx!(self, c => sqlx::query("UPDATE signers SET locale = $2 WHERE id = $1")
            .bind(signer_id)
            .bind(locale)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The invitation was refused for good; the signer stays `pending` (not invited).
    pub async fn record_invitation_failed(&mut self, signer_id: Uuid, error: &str) -> Result<()> {
        on_tx!(self, c => sqlx::query("UPDATE signers SET email_sent = FALSE, email_error = $2 WHERE id = $1")
            .bind(signer_id)
            .bind(error)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Db {
    pub async fn get_signer(&self, request_id: Uuid, signer_id: Uuid) -> Result<Option<SignerRow>> {
        let sql = concat!(
            "SELECT ",
            signer_columns!(),
            " FROM signers WHERE id = $1 AND request_id = $2"
        );
        Ok(
            on_db!(self, p => sqlx::query_as(sql).bind(signer_id).bind(request_id).fetch_optional(p).await)?,
        )
    }

    /// Stores a fresh access code's hash; attempts and lockout start over.
    pub async fn set_access_code(
        &self,
        signer_id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_db_write!(self, p => sqlx::query(
            "UPDATE signers SET access_code_hash = $2, access_code_rotated_at = $3, access_code_attempts = 0, \
             locked_until = NULL WHERE id = $1")
            .bind(signer_id)
            .bind(hash)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The bcrypt hash of the signer's current access code.
    pub async fn access_code_hash(&self, signer_id: Uuid) -> Result<Option<String>> {
        let hash: Option<Option<String>> = on_db!(self, p => sqlx::query_scalar(
            "SELECT access_code_hash FROM signers WHERE id = $1")
            .bind(signer_id)
            .fetch_optional(p)
            .await)?;
        Ok(hash.flatten())
    }

    pub async fn get_request(&self, org_id: Uuid, id: Uuid) -> Result<Option<RequestRow>> {
        let sql = concat!(
            "SELECT ",
            request_columns!(),
            " FROM signature_requests WHERE id = $1 AND org_id = $2"
        );
        Ok(on_db!(self, p => sqlx::query_as(sql).bind(id).bind(org_id).fetch_optional(p).await)?)
    }

    /// The request, its signers and its events in one statement (one round trip): the
    /// `GET /api/v1/signatures/{id}` read.
    pub async fn get_request_with_parts(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> Result<Option<RequestWithParts>> {
        let decode = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
        let row: Option<RequestWithPartsRow> = match self {
            Db::Sqlite(p) => {
                let row: Option<RequestWithPartsJson> = sqlx::query_as(REQUEST_WITH_PARTS_SQLITE)
                    .bind(id)
                    .bind(org_id)
                    .fetch_optional(&p.read)
                    .await?;
                match row {
                    None => None,
                    Some(json) => Some(RequestWithPartsRow {
                        request: serde_json::from_str(&json.request_json).map_err(decode)?,
                        signers_json: json.signers_json,
                        events_json: json.events_json,
                        attempts_json: json.attempts_json,
                    }),
                }
            }
            Db::Postgres(p) => {
                sqlx::query_as(REQUEST_WITH_PARTS_POSTGRES)
                    .bind(id)
                    .bind(org_id)
                    .fetch_optional(p)
                    .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let mut signers: Vec<SignerRow> =
            serde_json::from_str(&row.signers_json).map_err(decode)?;
        let mut events: Vec<EventRow> = serde_json::from_str(&row.events_json).map_err(decode)?;
        let request = &row.request;
        for s in &mut signers {
            (s.request_id, s.org_id) = (request.id, request.org_id);
        }
        for e in &mut events {
            (e.request_id, e.org_id) = (Some(request.id), request.org_id);
        }
        let mut attempts: Vec<AttemptRow> =
            serde_json::from_str(&row.attempts_json).map_err(decode)?;
        signers.sort_by_key(|s| s.position);
        events.sort_by_key(|e| e.seq);
        attempts.sort_by_key(|a| (a.created_at, a.id));
        Ok(Some(RequestWithParts {
            request: row.request,
            signers,
            events,
            attempts,
        }))
    }

    pub async fn signers_of(&self, request_id: Uuid) -> Result<Vec<SignerRow>> {
        let sql = concat!(
            "SELECT ",
            signer_columns!(),
            " FROM signers WHERE request_id = $1 ORDER BY position"
        );
        Ok(on_db!(self, p => sqlx::query_as(sql).bind(request_id).fetch_all(p).await)?)
    }

    /// Requests whose `signers_json`/`events_json` differ from what their signers and events
    /// rows say now (compared as JSON, in any order): empty unless a write slipped past the
    /// triggers of migration 0006. A consistency check for tests and operators; it reads
    /// every request.
    pub async fn stale_parts(&self) -> Result<Vec<Uuid>> {
        #[derive(sqlx::FromRow)]
        struct Parts {
            id: Uuid,
            signers_json: String,
            events_json: String,
            live_signers: String,
            live_events: String,
        }
        let sql = "SELECT r.id, r.signers_json, r.events_json, \
            coalesce((SELECT json FROM signer_json_arrays v WHERE v.request_id = r.id), '[]') AS live_signers, \
            coalesce((SELECT json FROM event_json_arrays v WHERE v.request_id = r.id), '[]') AS live_events \
            FROM signature_requests r";
        let rows: Vec<Parts> = on_db!(self, p => sqlx::query_as(sql).fetch_all(p).await)?;
        // Elements in a canonical order: the aggregates promise none.
        fn elements(json: &str) -> Option<Vec<String>> {
            let array: Vec<serde_json::Value> = serde_json::from_str(json).ok()?;
            let mut out: Vec<String> = array.iter().map(|e| e.to_string()).collect();
            out.sort();
            Some(out)
        }
        let fresh =
            |kept: &str, live: &str| elements(kept).is_some_and(|k| Some(k) == elements(live));
        Ok(rows
            .into_iter()
            .filter(|r| {
                !fresh(&r.signers_json, &r.live_signers) || !fresh(&r.events_json, &r.live_events)
            })
            .map(|r| r.id)
            .collect())
    }

    pub async fn events_of(&self, request_id: Uuid) -> Result<Vec<EventRow>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE request_id = $1 ORDER BY seq"
        );
        Ok(on_db!(self, p => sqlx::query_as(sql).bind(request_id).fetch_all(p).await)?)
    }

    /// One page of the organization's requests, newest first, keyset on (created_at, id).
    pub async fn list_requests(
        &self,
        org_id: Uuid,
        f: &ListFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<RequestRow>> {
        let sql = concat!(
            "SELECT ",
            request_columns!(),
            " FROM signature_requests WHERE org_id = $1 \
             AND ($2 IS NULL OR (CASE WHEN status IN ('pending', 'sent', 'opened') AND expires_at <= $3 \
                  THEN 'expired' ELSE status END) = $2) \
             AND ($4 IS NULL OR created_at >= $4) \
             AND ($5 IS NULL OR created_at < $5) \
             AND ($6 IS NULL OR created_at < $6 OR (created_at = $6 AND id < $7)) \
             ORDER BY created_at DESC, id DESC LIMIT $8"
        );
        let (after_t, after_id) = match f.after {
            Some((t, id)) => (Some(t), Some(id)),
            None => (None, None),
        };
        Ok(on_db!(self, p => sqlx::query_as(sql)
            .bind(org_id)
            .bind(f.status)
            .bind(now)
            .bind(f.created_from)
            .bind(f.created_to)
            .bind(after_t)
            .bind(after_id)
            .bind(f.limit)
            .fetch_all(p)
            .await)?)
    }

    /// Whether any request still points to this blob.
    pub async fn blob_is_referenced(&self, key: &str) -> Result<bool> {
        let n: i64 = on_db!(self, p => sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM signature_requests WHERE document_blob = $1 OR sealed_blob = $1) \
             + (SELECT COUNT(*) FROM signers WHERE signature_image_blob = $1)")
            .bind(key)
            .fetch_one(p)
            .await)?;
        Ok(n > 0)
    }
}
