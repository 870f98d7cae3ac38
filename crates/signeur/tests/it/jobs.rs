//! The job table: leases, dedup keys, retries, and the two periodic jobs.

use chrono::Duration;
use serde_json::Value;

use signeur_core::JobKind;
use signeur_store::NewJob;

use crate::support::*;

fn job(kind: JobKind, dedup: Option<&str>, app: &TestApp) -> NewJob {
    NewJob {
        kind,
        payload: "{}".into(),
        dedup_key: dedup.map(String::from),
        run_at: app.clock.now(),
        max_attempts: 3,
    }
}

#[tokio::test]
async fn dedup_keys_and_leases() {
    let app = TestApp::start().await;
    let db = &app.db;
    let now = app.clock.now();
    assert!(
        db.enqueue(&job(JobKind::SendNotice, Some("once"), &app), now)
            .await
            .unwrap()
    );
    assert!(
        !db.enqueue(&job(JobKind::SendNotice, Some("once"), &app), now)
            .await
            .unwrap(),
        "deduplicated"
    );
    assert!(
        db.enqueue(&job(JobKind::SendNotice, None, &app), now)
            .await
            .unwrap()
    );

    let claimed = db
        .claim_due_jobs(JobKind::SendNotice, now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed.iter().all(|j| j.attempts == 1));
    // Leased: another worker gets nothing until the lease runs out.
    assert!(
        db.claim_due_jobs(JobKind::SendNotice, now, now + Duration::minutes(5), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = now + Duration::minutes(5);
    let reclaimed = db
        .claim_due_jobs(JobKind::SendNotice, later, later + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(reclaimed.len(), 2, "a dead worker's jobs come back");
    assert!(reclaimed.iter().all(|j| j.attempts == 2));

    // Retry later, then give up: the dedup key is free again after failure or completion.
    let once = reclaimed.iter().find(|j| j.payload == "{}").unwrap().id;
    // The first claim's token no longer counts: its lease went to the second claim.
    assert!(!db.complete_job(once, claimed[0].lease_token).await.unwrap());
    let token = reclaimed.iter().find(|j| j.id == once).unwrap().lease_token;
    assert!(
        db.retry_job(once, token, later + Duration::seconds(10), "boom")
            .await
            .unwrap()
    );
    assert!(
        db.claim_due_jobs(JobKind::SendNotice, later, later, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    for j in &reclaimed {
        let token = if j.id == once {
            None
        } else {
            Some(j.lease_token)
        };
        if let Some(token) = token {
            assert!(db.complete_job(j.id, token).await.unwrap());
        }
    }
    // The retried job is claimed again once due, under a new token.
    let again = db
        .claim_due_jobs(
            JobKind::SendNotice,
            later + Duration::seconds(10),
            later + Duration::minutes(1),
            10,
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(!db.complete_job(once, token).await.unwrap(), "an old token");
    assert!(db.complete_job(once, again[0].lease_token).await.unwrap());
    assert!(
        db.enqueue(&job(JobKind::SendNotice, Some("once"), &app), now)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn concurrent_claims_never_share_a_job() {
    let app = TestApp::start().await;
    let now = app.clock.now();
    for _ in 0..40 {
        app.db
            .enqueue(&job(JobKind::SealDocument, None, &app), now)
            .await
            .unwrap();
    }
    let claims = (0..8).map(|_| {
        let db = app.db.clone();
        tokio::spawn(async move {
            db.claim_due_jobs(JobKind::SealDocument, now, now + Duration::minutes(5), 3)
                .await
                .unwrap()
        })
    });
    let mut ids = Vec::new();
    for c in futures::future::join_all(claims).await {
        ids.extend(c.unwrap().into_iter().map(|j| j.id));
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a job was claimed twice");
    assert_eq!(ids.len(), 24);
}

#[tokio::test]
async fn periodic_jobs_purge_keys_and_orphan_blobs() {
    let app = TestApp::start().await;
    // A committed request's blob, a stored idempotent response, and an orphan blob (a
    // create whose transaction never committed).
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "old")
        .json(&seed_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.blobs
        .put("documents/orphan/never-committed.pdf", ONE_PAGE)
        .await
        .unwrap();

    app.service.schedule_periodic_jobs().await.unwrap();
    app.service.schedule_periodic_jobs().await.unwrap();
    assert_eq!(
        app.db
            .pending_jobs(JobKind::PurgeIdempotencyKeys)
            .await
            .unwrap()
            .len(),
        1,
        "dedup"
    );
    // Nothing is old enough yet.
    assert_eq!(
        app.service.run_due_jobs().await.unwrap(),
        3,
        "the three periodic jobs"
    );
    assert!(
        app.blobs
            .get("documents/orphan/never-committed.pdf")
            .await
            .unwrap()
            .is_some(),
        "within the grace period"
    );

    app.advance(Duration::hours(25));
    app.service.schedule_periodic_jobs().await.unwrap();
    assert_eq!(
        app.service.run_due_jobs().await.unwrap(),
        3,
        "the three periodic jobs"
    );
    assert!(
        app.blobs
            .get("documents/orphan/never-committed.pdf")
            .await
            .unwrap()
            .is_none(),
        "orphan removed"
    );
    let keys = app.blobs.list().await.unwrap();
    assert_eq!(keys.len(), 1, "the committed document stays");
    assert!(keys[0].key.contains(&id));
    // The purged key no longer replays.
    let res = app
        .post("/api/v1/signatures")
        .header("Idempotency-Key", "old")
        .json(&seed_body())
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("idempotent-replayed").is_none());
}
