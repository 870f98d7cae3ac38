//! Expiry and reminders, run every minute by a lane of their own (`jobs.rs`), and the
//! reminder asked for through the API.
//!
//! Expiry: an open request past `expires_at` already reads `expired` (computed on read); the
//! job makes it so for good: one indexed query finds them, and each moves in a transaction
//! that locks its row and checks it again (status guard), so however many nodes run the job,
//! `signature_request.expired` is recorded (and its webhooks enqueued) exactly once.
//!
//! Reminders: each signer of an email request with a reminder policy has a schedule
//! (`signer_reminders`, the policy as it was at create). Their invitation going out sets the
//! first due time; the job finds the due ones (one indexed query), and each is queued in a
//! transaction that re-reads the schedule under the request's lock and advances it only if
//! no one else did (count guard): a reminder email job. The `signer.reminded` event is
//! recorded when the SMTP server accepted the email (as an invitation is recorded `sent`),
//! so the trail never claims a reminder that did not go out: none is sent to a signer who
//! acted meanwhile or for a request no longer open, and a refusal records nothing. A
//! reminder rotates nothing: the email links to the page, whose access code is still the
//! invitation's (the signer can ask for a new one there).

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use signeur_core::validate::ReminderPolicy;
use signeur_core::{Action, Delivery, EventType, JobKind, SignerStatus, time};
use signeur_store::{ReminderRow, RequestRow, SignerRow, Tx};

use crate::jobs::{Job, reminder_dedup_key};
use crate::mail::{MailError, NoticeKind};
use crate::model::effective_status;
use crate::{Result, Service, ServiceError, events};

/// Requests (or reminders) handled per query; the job loops until a batch comes back short.
const BATCH: i64 = 100;

/// The answer to `POST …/signers/{signer_id}/remind`.
#[derive(Debug, Clone)]
pub struct RemindOutcome {
    pub signer_id: Uuid,
    pub reminded_at: DateTime<Utc>,
    pub email_sent: bool,
    pub email_error: Option<String>,
}

/// Whether `signer` of `request` may be reminded now: an emailed signer invited and not yet
/// done (signed, declined, invalidated), of a request still open. In a sequential request
/// only the signer whose turn it is has been invited.
fn check_remindable(
    request: &RequestRow,
    signer: &SignerRow,
    now: DateTime<Utc>,
) -> std::result::Result<(), String> {
    let status = effective_status(request, now);
    if !status.is_open() {
        return Err(format!(
            "The request is '{status}'; no reminder can be sent."
        ));
    }
    if request.delivery != Delivery::Email || signer.email.is_none() {
        return Err(
            "The request has delivery 'api': Signeur emails no one, so there is no \
                    reminder to send; remind the signer yourself with their sign_url."
                .into(),
        );
    }
    match signer.status {
        SignerStatus::Sent | SignerStatus::Opened => Ok(()),
        SignerStatus::Pending => Err(
            "The signer has not been invited yet (not their turn, or the invitation is still \
             queued); there is nothing to remind them of."
                .into(),
        ),
        other => Err(format!(
            "The signer is '{other}'; there is nothing to remind them of."
        )),
    }
}

fn reminded_event(
    request: &mut RequestRow,
    signer: &SignerRow,
    number: Option<i64>,
    now: DateTime<Utc>,
) -> signeur_store::EventRow {
    let data = json!({
        "signature_request_id": request.id, "signer_id": signer.id,
        "signer_email": signer.email, "signer_name": signer.name,
        // The scheduled reminder's number (1, 2, …); null for one asked for through the API.
        "reminder": number,
    });
    events::append(
        request,
        Some(signer.id),
        EventType::SignerReminded,
        data,
        now,
    )
}

impl Service {
    /// The expiry job: every open request past `expires_at` becomes `expired` for good, its
    /// open links invalidated, with its one `signature_request.expired` event. Returns how
    /// many this run moved. A request that cannot be moved is logged and counted
    /// (`signeur_job_row_failures`) and the others go on; it is tried again next minute.
    pub async fn expire_overdue_requests(&self) -> Result<u64> {
        let mut moved = 0;
        loop {
            let now = self.clock.now();
            let due = self.db.overdue_requests(now, BATCH).await?;
            let mut moved_now = 0;
            for (org_id, id) in &due {
                match self.expire_request(*org_id, *id, now).await {
                    Ok(true) => moved_now += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(signature_request = %id, error = %e, "could not expire a request; going on with the others");
                        self.metrics.row_failure(JobKind::ExpireRequests);
                    }
                }
            }
            moved += moved_now;
            // A short batch was the last; a batch another node took entirely leaves this one.
            if (due.len() as i64) < BATCH || moved_now == 0 {
                return Ok(moved);
            }
        }
    }

    /// One request, if it is still open and overdue under its lock.
    async fn expire_request(&self, org_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        let Some(mut r) = tx.lock_request(org_id, id).await? else {
            return Ok(false);
        };
        if !r.status.is_open() || r.expires_at > now {
            return Ok(false);
        }
        r.status = r.status.apply(Action::Expire)?;
        r.expired_at = Some(now);
        r.updated_at = now;
        let data = json!({"signature_request_id": id, "expires_at": time::format(r.expires_at)});
        let event = events::append(&mut r, None, EventType::SignatureRequestExpired, data, now);
        tx.update_request_status(&r).await?;
        tx.invalidate_open_signers(id, now).await?;
        self.record_events(&mut tx, &[event]).await?;
        tx.commit().await?;
        tracing::info!(signature_request = %id, "request expired");
        Ok(true)
    }

    /// The organization's reminder policy for new requests: the default
    /// ([`ReminderPolicy::DEFAULT`]) until settings name one; None: no reminders.
    pub(crate) async fn org_reminder_policy(&self, org_id: Uuid) -> Result<Option<ReminderPolicy>> {
        Ok(match self.db.reminders_setting(org_id).await? {
            None => Some(ReminderPolicy::DEFAULT),
            Some(stored) => serde_json::from_str(&stored).map_err(|e| {
                ServiceError::Internal(anyhow::anyhow!("stored reminders setting: {e}"))
            })?,
        })
    }

    /// The schedules of a new request's signers (none for api delivery, no policy, or `max`
    /// 0); nothing is due until each signer's invitation goes out.
    pub(crate) fn reminder_schedules(
        request: &RequestRow,
        signers: &[SignerRow],
        policy: Option<ReminderPolicy>,
    ) -> Vec<ReminderRow> {
        let Some(p) = policy.filter(|p| p.max > 0) else {
            return Vec::new();
        };
        if request.delivery != Delivery::Email {
            return Vec::new();
        }
        signers
            .iter()
            .map(|s| ReminderRow {
                signer_id: s.id,
                request_id: request.id,
                org_id: request.org_id,
                first_after_days: i64::from(p.first_after_days),
                every_days: i64::from(p.every_days),
                max_reminders: i64::from(p.max),
                sent_count: 0,
                last_sent_at: None,
                next_at: None,
            })
            .collect()
    }

    /// An invitation (or a resend) reached the signer at `now`: their next reminder comes
    /// `first_after_days` later (`every_days` once reminders have gone out), if any remain.
    pub(crate) async fn schedule_reminder_after_invitation(
        &self,
        tx: &mut Tx,
        signer_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if let Some(s) = tx.reminder_of(signer_id).await? {
            let days = if s.sent_count == 0 {
                s.first_after_days
            } else {
                s.every_days
            };
            let next = (s.sent_count < s.max_reminders).then(|| now + Duration::days(days));
            tx.set_next_reminder(signer_id, next).await?;
        }
        Ok(())
    }

    /// The reminder job: queues every reminder that came due. Returns how many it queued. A
    /// schedule that cannot be handled is logged and counted (`signeur_job_row_failures`)
    /// and the others go on; it is tried again next minute.
    pub async fn send_due_reminders(&self) -> Result<u64> {
        let mut sent = 0;
        loop {
            let now = self.clock.now();
            let due = self.db.due_reminders(now, BATCH).await?;
            let mut handled = 0;
            for row in &due {
                match self.send_scheduled_reminder(row, now).await {
                    Ok(Some(true)) => {
                        sent += 1;
                        handled += 1;
                    }
                    Ok(Some(false)) => handled += 1,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(signer = %row.signer_id, error = %e, "could not queue a reminder; going on with the others");
                        self.metrics.row_failure(JobKind::SendReminders);
                    }
                }
            }
            if (due.len() as i64) < BATCH || handled == 0 {
                return Ok(sent);
            }
        }
    }

    /// One due schedule, checked again under the request's lock: Some(true) queued,
    /// Some(false) retired (the signer or request is done, or the last reminder went out),
    /// None: another node handled it.
    async fn send_scheduled_reminder(
        &self,
        seen: &ReminderRow,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>> {
        let mut tx = self.db.begin().await?;
        let Some(request) = tx.lock_request(seen.org_id, seen.request_id).await? else {
            return Ok(None);
        };
        let Some(s) = tx.reminder_of(seen.signer_id).await? else {
            return Ok(None);
        };
        if s.next_at.is_none_or(|t| t > now) {
            return Ok(None);
        }
        let signer = tx
            .signers_of_locked(request.id)
            .await?
            .into_iter()
            .find(|x| x.id == s.signer_id);
        let ok = signer
            .as_ref()
            .is_some_and(|x| check_remindable(&request, x, now).is_ok());
        let (Some(signer), true, true) = (signer, ok, s.sent_count < s.max_reminders) else {
            tx.set_next_reminder(s.signer_id, None).await?;
            tx.commit().await?;
            return Ok(Some(false));
        };
        let number = s.sent_count + 1;
        let next = (number < s.max_reminders).then(|| now + Duration::days(s.every_days));
        if !tx
            .record_reminder(s.signer_id, s.sent_count, true, now, next)
            .await?
        {
            return Ok(None);
        }
        let job = Job::SendReminder {
            org_id: request.org_id,
            request_id: request.id,
            signer_id: signer.id,
            number: Some(number),
        };
        // A reminder asked for through the API may still be waiting for its retry: that one
        // goes out instead (it is recorded when it does).
        self.enqueue_job(&mut tx, &job, now, now).await?;
        tx.commit().await?;
        tracing::info!(signature_request = %request.id, signer = %signer.id, reminder = number, "reminder queued");
        Ok(Some(true))
    }

    /// `POST …/signers/{signer_id}/remind`: one reminder now, in the signer's language, with
    /// nothing rotated (their access code stays the invitation's). It is recorded as a
    /// `signer.reminded` event once the SMTP server accepted it; it does not count towards
    /// the policy's `max`, but the next scheduled reminder moves to `every_days` after it.
    /// The email is attempted before the answer (within the SMTP timeout); a transient
    /// failure leaves it queued for the worker. A reminder job of the signer already
    /// waiting is held back meanwhile (and withdrawn if this one goes out), so one email
    /// goes, not two; while a worker is sending one, the call is refused (409).
    pub async fn remind_signer(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
    ) -> Result<RemindOutcome> {
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let request = tx
            .lock_request(org_id, request_id)
            .await?
            .ok_or(ServiceError::NotFound("Signature request"))?;
        let signer = tx
            .signers_of_locked(request_id)
            .await?
            .into_iter()
            .find(|s| s.id == signer_id)
            .ok_or(ServiceError::NotFound("Signer"))?;
        check_remindable(&request, &signer, now).map_err(ServiceError::InvalidState)?;
        if let Some(s) = tx.reminder_of(signer_id).await? {
            let next = s.next_at.map(|_| now + Duration::days(s.every_days));
            tx.record_reminder(signer_id, s.sent_count, false, now, next)
                .await?;
        }
        // The worker's copy waits while this call makes the first attempt.
        let job = Job::SendReminder {
            org_id,
            request_id,
            signer_id,
            number: None,
        };
        let window =
            Duration::from_std(self.mail.timeout).unwrap_or_default() + Duration::seconds(5);
        let key = reminder_dedup_key(signer_id);
        if !self.enqueue_job(&mut tx, &job, now + window, now).await?
            && !tx.defer_job_by_dedup_key(&key, now + window, now).await?
        {
            return Err(ServiceError::InvalidState(
                "A reminder to this signer is being sent right now; try again in a minute.".into(),
            ));
        }
        tx.commit().await?;

        let attempt = self
            .deliver_reminder(org_id, request_id, signer_id, None)
            .await?;
        // (message, permanent): a permanent failure is not retried by the worker either.
        let email_error: Option<(String, bool)> = match attempt {
            Some(Ok(())) => None,
            Some(Err(e)) => Some((e.message, e.permanent)),
            None => Some((
                "the reminder was not sent: the signer or the request changed meanwhile".into(),
                true,
            )),
        };
        let done = email_error.as_ref().is_none_or(|(_, permanent)| *permanent);
        if done {
            self.db
                .complete_job_by_dedup_key(&key, self.clock.now())
                .await?;
        }
        Ok(RemindOutcome {
            signer_id,
            reminded_at: now,
            email_sent: email_error.is_none(),
            email_error: email_error.map(|(m, _)| m),
        })
    }
}

impl Service {
    /// The reminder job: Ok(true) the SMTP server accepted it, Ok(false) nothing went out
    /// (the signer or request is done, or a refusal, logged); a transient failure is an
    /// error, so the job retries it.
    pub(crate) async fn send_reminder(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
        number: Option<i64>,
    ) -> Result<bool> {
        match self
            .deliver_reminder(org_id, request_id, signer_id, number)
            .await?
        {
            Some(Ok(())) => Ok(true),
            None => Ok(false),
            Some(Err(e)) if e.permanent => {
                tracing::warn!(signer = %signer_id, error = %e, "reminder refused");
                Ok(false)
            }
            Some(Err(e)) => Err(ServiceError::Internal(anyhow::anyhow!(
                "reminder not delivered yet: {e}"
            ))),
        }
    }

    /// Sends a reminder if the signer may still be reminded, and records `signer.reminded`
    /// under the request's lock once the SMTP server accepted it. None: nothing to send.
    async fn deliver_reminder(
        &self,
        org_id: Uuid,
        request_id: Uuid,
        signer_id: Uuid,
        number: Option<i64>,
    ) -> Result<Option<std::result::Result<(), MailError>>> {
        let attempt = self
            .deliver_notice(org_id, request_id, signer_id, NoticeKind::Reminder)
            .await?;
        if !matches!(attempt, Some(Ok(()))) {
            return Ok(attempt);
        }
        // It went out: the trail says so, whatever happened since the check before sending.
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let Some(mut request) = tx.lock_request(org_id, request_id).await? else {
            return Ok(attempt);
        };
        let Some(signer) = tx
            .signers_of_locked(request_id)
            .await?
            .into_iter()
            .find(|s| s.id == signer_id)
        else {
            return Ok(attempt);
        };
        let event = reminded_event(&mut request, &signer, number, now);
        tx.update_request_status(&request).await?;
        self.record_events(&mut tx, &[event]).await?;
        tx.commit().await?;
        tracing::info!(signature_request = %request_id, signer = %signer_id, reminder = ?number, "reminder sent");
        Ok(attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signeur_core::RequestStatus;

    #[test]
    fn only_expirable_statuses_are_open() {
        for s in RequestStatus::ALL {
            assert_eq!(s.apply(Action::Expire).is_ok(), s.is_open(), "{s}");
        }
    }
}
