//! Evidence a person can read (DESIGN.md §5): what the stamp shows on the sealed document, and
//! the audit-trail record, as JSON (`audit-trail.json`) and as PDF (`audit-trail.pdf`). Both
//! record forms come from one [`AuditRecord`], so they never disagree.

use chrono::{DateTime, Utc};
use serde_json::Value;
use signeur_core::event::{ChainBreak, ChainLink, verify_chain};
use signeur_core::{EventType, VerificationMethod, time};
use signeur_store::SignerRow;

use crate::model::Event;
use uuid::Uuid;

use crate::requests::RequestDetail;
use crate::{Result, Service, ServiceError};

/// Whether the request's event hash chain verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerdict {
    pub valid: bool,
    pub events: usize,
    /// Where it breaks, in words (`None` when valid).
    pub problem: Option<String>,
}

/// The seal of the sealed document, read back from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealInfo {
    /// `PAdES-B-B` or `PAdES-B-T`.
    pub level: String,
    pub valid: bool,
    pub certificate_subject: String,
    pub certificate_issuer: String,
    pub certificate_serial: String,
    pub not_before: String,
    pub not_after: String,
    pub self_signed: bool,
    /// The signature dictionary's `/M`, as written.
    pub signing_time: Option<String>,
    pub timestamp_time: Option<String>,
    pub timestamp_authority: Option<String>,
    pub problems: Vec<String>,
}

/// Everything the audit trail says about a request.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub detail: RequestDetail,
    pub chain: ChainVerdict,
    pub seal: Option<SealInfo>,
    pub generated_at: DateTime<Utc>,
}

/// Verifies a request's stored events as a hash chain.
pub fn chain_verdict(events: &[Event]) -> ChainVerdict {
    let parsed: Vec<(String, Value)> = events
        .iter()
        .map(|e| {
            (
                time::format(e.created_at),
                serde_json::from_str(&e.data).unwrap_or(Value::Null),
            )
        })
        .collect();
    let links: Vec<ChainLink<'_>> = events
        .iter()
        .zip(&parsed)
        .map(|(e, (created_at, data))| ChainLink {
            id: &e.id,
            event_type: e.event_type.as_str(),
            created_at,
            data,
            prev_hash: e.prev_hash.as_deref(),
            hash: &e.hash,
        })
        .collect();
    let problem = verify_chain(&links).err().map(|b| match b {
        ChainBreak::HashMismatch { index } => format!(
            "event {} ({}) does not hash to its stored hash",
            index + 1,
            events[index].id
        ),
        ChainBreak::BrokenLink { index } => format!(
            "event {} ({}) does not point to its predecessor",
            index + 1,
            events[index].id
        ),
    });
    ChainVerdict {
        valid: problem.is_none(),
        events: events.len(),
        problem,
    }
}

/// A time for people: `2026-05-14 10:51:51 UTC`.
pub fn human_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An RFC 3339 time (as the PDF crate reports them) for people; unchanged if unparsable.
fn human_rfc3339(s: &str) -> String {
    time::parse(s)
        .map(human_time)
        .unwrap_or_else(|| s.to_string())
}

/// How a signer was verified, in words.
pub fn verification_words(method: Option<VerificationMethod>) -> &'static str {
    match method {
        Some(VerificationMethod::AccessCode) => "Access code sent by email",
        Some(VerificationMethod::Link) => "Integrator link (identity checked by the integrator)",
        Some(VerificationMethod::Session) => {
            "Embedded session (identity checked by the integrator)"
        }
        None => "Not signed",
    }
}

fn str_field<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str)
}

/// One line in words for an event.
pub fn event_summary(event_type: EventType, data: &Value) -> String {
    let who = || {
        let email = str_field(data, "signer_email").unwrap_or("a signer");
        match str_field(data, "signer_name") {
            Some(name) if !name.is_empty() => format!("{name} <{email}>"),
            _ => email.to_string(),
        }
    };
    match event_type {
        EventType::SignatureRequestCreated => format!(
            "Request created: \"{}\"",
            str_field(data, "title").unwrap_or("")
        ),
        EventType::SignatureRequestSent => {
            let mut parts = Vec::new();
            for s in data
                .get("signers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let email = str_field(s, "email").unwrap_or("(link)");
                let state = if s.get("email_sent").and_then(Value::as_bool) == Some(true) {
                    "email accepted by the SMTP server".to_string()
                } else if let Some(err) = str_field(s, "email_error") {
                    format!("email failed: {err}")
                } else if str_field(data, "delivery") == Some("api") {
                    "link handed to the integrator".to_string()
                } else {
                    "email queued".to_string()
                };
                parts.push(format!("{email}: {state}"));
            }
            if parts.is_empty() {
                "Request sent".into()
            } else {
                format!("Request sent. {}", parts.join("; "))
            }
        }
        EventType::SignatureRequestOpened => "The document was opened for the first time".into(),
        EventType::SignatureRequestCompleted => {
            "Every signer signed; the document was sealed".into()
        }
        EventType::SignatureRequestSigned => {
            "Sealed (deprecated alias of signature_request.completed)".into()
        }
        EventType::SignatureRequestDeclined => format!(
            "Request declined: {}",
            str_field(data, "decline_reason").unwrap_or("no reason given")
        ),
        EventType::SignatureRequestCancelled => format!(
            "Request cancelled: {}",
            str_field(data, "reason").unwrap_or("no reason given")
        ),
        EventType::SignatureRequestExpired => "The request expired".into(),
        EventType::SignatureRequestStampFailed => format!(
            "Sealing failed: {}",
            str_field(data, "reason")
                .or_else(|| str_field(data, "error"))
                .unwrap_or("see the logs")
        ),
        EventType::SignatureRequestSealRetried => "Sealing retried on request".into(),
        EventType::SignerOpened => format!("{} opened the document", who()),
        EventType::SignerSigned => {
            let mut s = format!("{} signed", who());
            if let Some(n) = str_field(data, "name_as_signed") {
                s.push_str(&format!(" as \"{n}\""));
            }
            if let Some(r) = str_field(data, "representing") {
                s.push_str(&format!(" on behalf of {r}"));
            }
            s
        }
        EventType::SignerDeclined => format!(
            "{} declined: {}",
            who(),
            str_field(data, "decline_reason").unwrap_or("no reason given")
        ),
        EventType::SignerEmailFailed => format!(
            "Invitation email to {} refused: {}",
            who(),
            str_field(data, "email_error").unwrap_or("unknown error")
        ),
        EventType::SignerReminded => format!("Reminder emailed to {}", who()),
        EventType::SigningSessionCompleted => format!(
            "Embedded signing session ended: {}{}",
            str_field(data, "result").unwrap_or("unknown"),
            str_field(data, "failure_code")
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        ),
        EventType::WebhookEndpointTest => "Webhook endpoint test".into(),
    }
}

/// Who caused an event, with IP and user agent where the event carries them.
pub fn event_actor(data: &Value) -> Option<String> {
    let ip = str_field(data, "ip_address");
    let ua = str_field(data, "user_agent");
    let email = str_field(data, "signer_email");
    if ip.is_none() && ua.is_none() {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(e) = email {
        parts.push(e.to_string());
    }
    if let Some(ip) = ip {
        parts.push(format!("IP {ip}"));
    }
    if let Some(ua) = ua {
        parts.push(ua.to_string());
    }
    Some(parts.join(", "))
}

fn seal_info(report: &signeur_pdf::VerifyReport) -> Option<SealInfo> {
    let s = report.signatures.last()?;
    Some(SealInfo {
        level: s.pades_level().unwrap_or("not PAdES").to_string(),
        valid: report.seal_valid(),
        certificate_subject: s.signer_subject.clone(),
        certificate_issuer: s.signer_issuer.clone(),
        certificate_serial: s.signer_serial_hex.clone(),
        not_before: s.not_before.clone(),
        not_after: s.not_after.clone(),
        self_signed: s.self_signed,
        signing_time: s.signing_time.clone(),
        timestamp_time: s.timestamp_time.clone(),
        timestamp_authority: s.timestamp_authority.clone(),
        problems: s.problems.clone(),
    })
}

impl Service {
    /// The whole audit record of a request: any status, another organization's id is 404.
    pub async fn audit_record(&self, org_id: Uuid, id: Uuid) -> Result<AuditRecord> {
        let detail = self.get_request(org_id, id).await?;
        let chain = chain_verdict(&detail.events);
        let seal = match &detail.request.sealed_blob {
            Some(key) => {
                let bytes = self.blobs.get(key).await?.ok_or_else(|| {
                    ServiceError::Internal(anyhow::anyhow!("blob {key} of request {id} is missing"))
                })?;
                let report = self
                    .blocking
                    .pdf(move || signeur_pdf::verify(&bytes))
                    .await?;
                match report {
                    Ok(r) => seal_info(&r),
                    Err(e) => Some(SealInfo {
                        level: "unreadable".into(),
                        valid: false,
                        certificate_subject: String::new(),
                        certificate_issuer: String::new(),
                        certificate_serial: String::new(),
                        not_before: String::new(),
                        not_after: String::new(),
                        self_signed: false,
                        signing_time: None,
                        timestamp_time: None,
                        timestamp_authority: None,
                        problems: vec![e.to_string()],
                    }),
                }
            }
            None => None,
        };
        let generated_at = detail.now;
        Ok(AuditRecord {
            detail,
            chain,
            seal,
            generated_at,
        })
    }

    /// `GET …/audit-trail.pdf`: the record drawn for people (informational, not signed).
    pub async fn audit_trail_pdf(&self, org_id: Uuid, id: Uuid) -> Result<Vec<u8>> {
        let record = self.audit_record(org_id, id).await?;
        let trail = audit_trail(&record);
        self.blocking
            .pdf(move || signeur_pdf::audit_trail_pdf(&trail))
            .await?
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))
    }

    /// What the seal job stamps on the document: one block per signer who signed, and the
    /// certificate page.
    pub(crate) async fn stamp_input(
        &self,
        request: &signeur_store::RequestRow,
        signers: &[SignerRow],
    ) -> Result<signeur_pdf::StampInput> {
        let mut out = Vec::new();
        for s in signers.iter().filter(|s| s.signed_at.is_some()) {
            let signature_png = match &s.signature_image_blob {
                Some(key) => self.blobs.get(key).await?,
                None => None,
            };
            out.push(signeur_pdf::StampSigner {
                id: s.id.to_string(),
                name_as_signed: s
                    .name_as_signed
                    .clone()
                    .or_else(|| s.name.clone())
                    .unwrap_or_default(),
                representing: s.representing_as_signed.clone(),
                email: s.email.clone().unwrap_or_default(),
                signed_at: s.signed_at.map(human_time).unwrap_or_default(),
                opened_at: s.opened_at.map(human_time),
                ip_address: s.ip_address.clone(),
                user_agent: s.user_agent.clone(),
                verification: verification_words(s.verification_method).into(),
                signature_png,
                position: s
                    .signature_position
                    .as_deref()
                    .and_then(signeur_core::validate::SignaturePosition::from_json)
                    .map(|p| signeur_pdf::StampPosition {
                        page: p.page,
                        x: p.x,
                        y: p.y,
                    }),
            });
        }
        let completed = signers.iter().filter_map(|s| s.signed_at).max();
        Ok(signeur_pdf::StampInput {
            request_id: request.id.to_string(),
            title: request.title.clone(),
            document_sha256: request.document_hash.clone(),
            created_at: human_time(request.created_at),
            completed_at: completed.map(human_time).unwrap_or_default(),
            signers: out,
        })
    }
}

fn opt_time(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(human_time)
}

/// The record in the PDF crate's terms (all text formatted for people).
pub fn audit_trail(record: &AuditRecord) -> signeur_pdf::AuditTrail {
    let d = &record.detail;
    let r = &d.request;
    let request = signeur_pdf::AuditRequest {
        id: r.id.to_string(),
        title: r.title.clone(),
        status: d.status().to_string(),
        created_at: human_time(r.created_at),
        sent_at: opt_time(r.sent_at),
        completed_at: opt_time(r.signed_at),
        expires_at: Some(human_time(r.expires_at)),
        cancelled_at: opt_time(r.cancelled_at),
        delivery: r.delivery.as_str().to_string(),
        signing_order: r.signing_order.as_str().to_string(),
        message: r.message.clone(),
        document_name: Some(r.document_filename.clone()),
        document_sha256: r.document_hash.clone(),
        sealed_document_sha256: r.sealed_document_hash.clone(),
        metadata: r.metadata.clone(),
    };
    let signers = d
        .signers
        .iter()
        .map(|s| signeur_pdf::AuditSigner {
            position: u32::try_from(s.position).unwrap_or(0),
            id: s.id.to_string(),
            name: s.name.clone(),
            email: s.email.clone().unwrap_or_default(),
            name_as_signed: s.name_as_signed.clone(),
            representing: s
                .representing_as_signed
                .clone()
                .or_else(|| s.representing_as_invited.clone()),
            status: s.status.as_str().to_string(),
            verification: verification_words(s.verification_method).into(),
            ip_address: s.ip_address.clone(),
            user_agent: s.user_agent.clone(),
            sent_at: opt_time(s.sent_at),
            opened_at: opt_time(s.opened_at),
            signed_at: opt_time(s.signed_at),
            declined_at: opt_time(s.declined_at),
            decline_reason: s.decline_reason.clone(),
        })
        .collect();
    let events = d
        .events
        .iter()
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
            signeur_pdf::AuditEvent {
                id: e.id.clone(),
                event_type: e.event_type.as_str().to_string(),
                created_at: human_time(e.created_at),
                summary: event_summary(e.event_type, &data),
                actor: event_actor(&data),
                hash: e.hash.clone(),
                prev_hash: e.prev_hash.clone(),
            }
        })
        .collect();
    let deliveries = d
        .deliveries
        .iter()
        .map(|a| signeur_pdf::AuditDelivery {
            id: crate::deliveries::attempt_wire_id(a.id),
            event_id: a.event_id.clone(),
            event_type: a.event_type.clone(),
            endpoint: crate::webhooks::endpoint_id(a.endpoint_id),
            attempt: u32::try_from(a.attempt).unwrap_or(0),
            created_at: human_time(a.created_at),
            outcome: attempt_words(a),
        })
        .collect();
    let chain = signeur_pdf::AuditChain {
        valid: record.chain.valid,
        detail: match &record.chain.problem {
            None => format!(
                "All {} events link to their predecessor and hash to their stored SHA-256",
                record.chain.events
            ),
            Some(p) => format!("The chain is broken: {p}"),
        },
    };
    let seal = record.seal.as_ref().map(|s| signeur_pdf::AuditSeal {
        level: s.level.clone(),
        certificate_subject: s.certificate_subject.clone(),
        certificate_issuer: s.certificate_issuer.clone(),
        certificate_serial: s.certificate_serial.clone(),
        not_before: human_rfc3339(&s.not_before),
        not_after: human_rfc3339(&s.not_after),
        signed_at: s.signing_time.clone(),
        timestamp_time: s.timestamp_time.as_deref().map(human_rfc3339),
        timestamp_authority: s.timestamp_authority.clone(),
        verdict: if s.valid {
            format!(
                "Valid: the seal covers the whole file{}",
                if s.self_signed {
                    " (self-signed sealing certificate)"
                } else {
                    ""
                }
            )
        } else {
            format!("NOT valid: {}", s.problems.join("; "))
        },
    });
    signeur_pdf::AuditTrail {
        request,
        signers,
        events,
        deliveries,
        chain,
        seal,
        generated_at: human_time(record.generated_at),
    }
}

/// An attempt's outcome in words, for the audit-trail PDF.
fn attempt_words(a: &crate::deliveries::DeliveryAttempt) -> String {
    let status = a.http_status.map(|s| format!("HTTP {s}"));
    match (a.succeeded, status, a.error.as_deref()) {
        (true, Some(s), _) => format!("Succeeded: {s} in {} ms", a.duration_ms),
        (true, None, _) => format!("Succeeded in {} ms", a.duration_ms),
        (false, Some(s), _) => format!("Failed: {s} after {} ms", a.duration_ms),
        (false, None, Some(e)) => format!("Failed: {e} (after {} ms)", a.duration_ms),
        (false, None, None) => format!("Failed after {} ms", a.duration_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_name_the_delivery_outcome_of_each_invitation() {
        let data = json!({"delivery": "email", "signers": [
            {"email": "a@example.com", "email_sent": true, "email_error": null},
            {"email": "b@example.com", "email_sent": false, "email_error": "550 no such user"},
            {"email": "c@example.com", "email_sent": false, "email_error": null},
        ]});
        let s = event_summary(EventType::SignatureRequestSent, &data);
        assert!(
            s.contains("a@example.com: email accepted by the SMTP server"),
            "{s}"
        );
        assert!(
            s.contains("b@example.com: email failed: 550 no such user"),
            "{s}"
        );
        assert!(s.contains("c@example.com: email queued"), "{s}");
    }

    #[test]
    fn actors_carry_ip_and_user_agent_when_the_event_has_them() {
        let data = json!({"signer_email": "a@example.com", "ip_address": "192.0.2.1", "user_agent": "Firefox"});
        assert_eq!(
            event_actor(&data).as_deref(),
            Some("a@example.com, IP 192.0.2.1, Firefox")
        );
        assert_eq!(event_actor(&json!({"signer_email": "a@example.com"})), None);
    }

    #[test]
    fn human_times_are_utc_to_the_second() {
        let t = time::parse("2026-05-14T12:51:51.813+02:00").unwrap();
        assert_eq!(human_time(t), "2026-05-14 10:51:51 UTC");
        assert_eq!(
            human_rfc3339("2026-05-14T10:51:51Z"),
            "2026-05-14 10:51:51 UTC"
        );
    }
}
