//! Sealing: the seal job (stamp, then PAdES-seal the stamped file), its failure, and the
//! retry an integrator may ask for.

use serde_json::json;
use sha2::Digest as _;
use uuid::Uuid;

use chrono::{DateTime, Utc};
use signeur_core::{Action, EventType, RequestStatus, time};
use signeur_store::Tx;

use crate::jobs::Job;
use crate::model::effective_status;
use crate::{Result, Service, ServiceError, events};

pub use crate::jobs::SEAL_ATTEMPTS;

impl Service {
    /// The seal job: the original (checked against `document_hash`) sealed with the
    /// organization's identity (PAdES B-B), stored, and the request `signed` with
    /// `signature_request.completed` and `.signed` in one transaction. The slow part runs
    /// before the transaction, which re-checks the state, so a second run changes nothing.
    pub async fn seal_request(&self, org_id: Uuid, request_id: Uuid) -> Result<String> {
        let Some(parts) = self.db.get_request_with_parts(org_id, request_id).await? else {
            return Ok("request gone".into());
        };
        let request = &parts.request;
        if request.status != RequestStatus::AwaitingStamp {
            return Ok(format!("nothing to seal ({})", request.status));
        }
        let (blob, hash) = (request.document_blob.clone(), request.document_hash.clone());
        // The document to seal must be the one the signers saw.
        let original = self.blobs.get(&blob).await?.ok_or_else(|| {
            ServiceError::Internal(anyhow::anyhow!("the document blob {blob} is missing"))
        })?;
        if hex::encode(sha2::Sha256::digest(&original)) != hash {
            return Err(ServiceError::Internal(anyhow::anyhow!(
                "the document blob {blob} does not match document_hash"
            )));
        }
        let stamp = self.stamp_input(request, &parts.signers).await?;
        let identity = self.seal_identity(org_id).await?;
        let now = self.clock.now();
        let signer = identity.signer()?;
        let timestamper = if self.tsa.urls.is_empty() {
            None
        } else {
            Some(crate::tsa::HttpTimestamper {
                settings: self.tsa.clone(),
                client: crate::tsa::http_client(&self.tsa)
                    .map_err(|e| ServiceError::Internal(anyhow::anyhow!(e)))?,
                handle: tokio::runtime::Handle::current(),
            })
        };
        // Stamp (the blocks and the certificate page, one incremental update), then seal the
        // stamped file (a further update): the upload stays a byte-exact prefix throughout.
        let sealed = tokio::task::spawn_blocking(move || {
            let stamped = signeur_pdf::stamp(&original, &stamp)
                .map_err(|e| anyhow::anyhow!("stamping failed: {e}"))?;
            drop(original);
            signeur_pdf::seal_with_timestamp(
                &stamped,
                &signer,
                &signeur_pdf::SealOptions::new(now),
                timestamper
                    .as_ref()
                    .map(|t| t as &dyn signeur_pdf::Timestamper),
            )
            .map_err(|e| anyhow::anyhow!("sealing failed: {e}"))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.into()))?
        .map_err(ServiceError::Internal)?;
        let sealed_hash = hex::encode(sha2::Sha256::digest(&sealed));
        // Content-addressed: a second run of this seal (on another node, after a lost lease)
        // writes its own file and can never change the bytes a committed row points to; the
        // loser's file is an orphan for `remove_orphan_blobs`. (Rows written before this point
        // to `sealed/{request_id}.pdf`, which stays readable.)
        let sealed_key = format!("sealed/{request_id}/{sealed_hash}.pdf");
        self.blobs.put(&sealed_key, &sealed).await?;

        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let Some(mut r) = tx.lock_request(org_id, request_id).await? else {
            return Ok("request gone".into());
        };
        if r.status != RequestStatus::AwaitingStamp {
            return Ok(format!("sealed elsewhere meanwhile ({})", r.status));
        }
        let next = RequestStatus::AwaitingStamp.apply(Action::SealSucceeded)?;
        tx.set_sealed_document(r.id, &sealed_key, &sealed_hash)
            .await?;
        r.sealed_blob = Some(sealed_key);
        r.sealed_document_hash = Some(sealed_hash.clone());
        r.status = next;
        r.signed_at = Some(now);
        r.updated_at = now;
        let data = json!({
            "signature_request_id": r.id, "status": "signed", "signed_at": time::format(now),
            "document_hash": r.document_hash, "sealed_document_hash": sealed_hash,
            "download_url": format!("{}/api/v1/signatures/{}/document", self.public_url(), r.id),
        });
        let evs = vec![
            events::append(
                &mut r,
                None,
                EventType::SignatureRequestCompleted,
                data.clone(),
                now,
            ),
            events::append(&mut r, None, EventType::SignatureRequestSigned, data, now),
        ];
        tx.update_request_status(&r).await?;
        self.record_events(&mut tx, &evs).await?;
        tx.commit().await?;
        tracing::info!(signature_request = %request_id, "sealed (PAdES B-B)");
        Ok("sealed".into())
    }
}

impl Service {
    /// The seal job gave up: `stamp_failed`, with the reason in the audit trail. A failed
    /// seal is never silent: an event, an error log line (and the job row keeps the error).
    pub async fn seal_failed(&self, org_id: Uuid, request_id: Uuid, reason: &str) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        self.seal_failed_in(&mut tx, org_id, request_id, reason, now)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Service::seal_failed`] in the caller's transaction: the one that gives the seal job
    /// up, so a crash cannot leave the request `awaiting_stamp` with no job.
    pub(crate) async fn seal_failed_in(
        &self,
        tx: &mut Tx,
        org_id: Uuid,
        request_id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let Some(mut r) = tx.lock_request(org_id, request_id).await? else {
            return Ok(());
        };
        let Ok(next) = r.status.apply(Action::SealFailed) else {
            return Ok(());
        };
        r.status = next;
        r.updated_at = now;
        let event = events::append(
            &mut r,
            None,
            EventType::SignatureRequestStampFailed,
            json!({"signature_request_id": request_id, "reason": reason, "failed_at": time::format(now)}),
            now,
        );
        tx.update_request_status(&r).await?;
        self.record_events(tx, &[event]).await?;
        tracing::error!(signature_request = %request_id, reason, "sealing failed; the request is stamp_failed until retried");
        Ok(())
    }

    /// `POST /api/v1/signatures/{id}/retry-seal`: `stamp_failed` → `awaiting_stamp`, the seal
    /// job queued again.
    pub async fn retry_seal(&self, org_id: Uuid, request_id: Uuid) -> Result<RequestStatus> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut r = tx
            .lock_request(org_id, request_id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        let next = effective_status(&r, now).apply(Action::RetrySeal)?;
        r.status = next;
        r.updated_at = now;
        let event = events::append(
            &mut r,
            None,
            EventType::SignatureRequestSealRetried,
            json!({"signature_request_id": request_id, "retried_at": time::format(now)}),
            now,
        );
        self.enqueue_job(&mut tx, &Job::SealDocument { org_id, request_id }, now, now)
            .await?;
        tx.update_request_status(&r).await?;
        self.record_events(&mut tx, &[event]).await?;
        tx.commit().await?;
        Ok(next)
    }
}
