//! A database written by an older schema keeps working after `migrate`.

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use signeur_core::EventType;
use signeur_store::{Db, RequestRow, SignerRow};

use crate::support::*;

fn signer(request: &RequestRow, position: i64, email: &str) -> SignerRow {
    SignerRow {
        id: Uuid::new_v4(),
        request_id: request.id,
        org_id: request.org_id,
        position,
        email: Some(email.into()),
        name: Some(format!("Signer \"{position}\"")),
        name_as_signed: None,
        locale: signeur_core::Locale::Fr,
        access_token: format!("tok_{}", Uuid::new_v4().simple()),
        access_token_hash: None,
        status: signeur_core::SignerStatus::Sent,
        sent_at: Some(request.created_at),
        opened_at: None,
        signed_at: None,
        declined_at: None,
        decline_reason: None,
        invalidated_at: None,
        ip_address: None,
        user_agent: None,
        representing_as_invited: None,
        representing_as_signed: None,
        representing_role: None,
        representing_entity_id: None,
        email_sent: false,
        email_error: None,
        verification_method: None,
        signature_image_blob: None,
        signature_position: None,
    }
}

/// The signers as the schema of migration 0005 stores them (today's insert writes columns
/// added since).
async fn insert_signers_as_0005(db: &Db, signers: &[SignerRow]) {
    let sql = "INSERT INTO signers (id, request_id, org_id, position, email, name, locale, \
               access_token, status, sent_at, email_sent) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    for s in signers {
        macro_rules! insert {
            ($pool:expr) => {
                sqlx::query(sql)
                    .bind(s.id)
                    .bind(s.request_id)
                    .bind(s.org_id)
                    .bind(s.position)
                    .bind(&s.email)
                    .bind(&s.name)
                    .bind(s.locale)
                    .bind(&s.access_token)
                    .bind(s.status)
                    .bind(s.sent_at)
                    .bind(s.email_sent)
                    .execute($pool)
                    .await
                    .map(|_| ())
            };
        }
        match db {
            Db::Sqlite(p) => insert!(&p.write),
            Db::Postgres(p) => insert!(p),
        }
        .unwrap();
    }
}

/// Migration 0006 moved the get's signers and events onto the request row: rows written before
/// it are backfilled, and rows written after it are kept by its triggers.
#[tokio::test]
async fn requests_written_before_the_materialized_parts_migration_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match pg_schema().await {
        Some((scoped, admin, schema)) => (scoped, Some((admin, schema))),
        None => (
            format!("sqlite://{}", dir.path().join("old.db").display()),
            None,
        ),
    };
    let db = Db::connect(&url).await.unwrap();
    db.migrate_to(5).await.unwrap();

    let now = signeur_core::time::ceil_ms(Utc::now());
    let org = signeur_store::OrgRow {
        id: Uuid::new_v4(),
        name: "Old".into(),
        created_at: now,
    };
    let mut request = RequestRow {
        id: Uuid::new_v4(),
        org_id: org.id,
        title: "Written by 0005".into(),
        message: None,
        locale: signeur_core::Locale::Fr,
        delivery: signeur_core::Delivery::Api,
        signing_order: signeur_core::SigningOrder::Parallel,
        metadata: Some(r#"{"k":"v"}"#.into()),
        status: signeur_core::RequestStatus::Sent,
        document_filename: "a.pdf".into(),
        document_hash: "00".repeat(32),
        document_size: 1,
        document_page_count: 1,
        document_blob: "documents/x".into(),
        signer_count: 2,
        sealed_blob: None,
        sealed_document_hash: None,
        created_at: now,
        updated_at: now,
        sent_at: Some(now),
        opened_at: None,
        signed_at: None,
        cancelled_at: None,
        cancel_reason: None,
        declined_at: None,
        expired_at: None,
        expires_at: now + chrono::Duration::days(30),
        event_seq: 0,
        last_event_hash: None,
    };
    let signers = [
        signer(&request, 0, "a@example.com"),
        signer(&request, 1, "b@example.com"),
    ];
    let id = request.id;
    let event = |request: &mut RequestRow, kind, data| {
        signeur_store::append_event(request, None, kind, data, now)
    };
    let created = event(
        &mut request,
        EventType::SignatureRequestCreated,
        json!({"signature_request_id": id, "note": "quote \" and é"}),
    );
    let sent = event(
        &mut request,
        EventType::SignatureRequestSent,
        json!({"signature_request_id": id}),
    );
    let mut tx = db.begin().await.unwrap();
    tx.insert_org(&org).await.unwrap();
    tx.insert_request(&request).await.unwrap();
    tx.update_request_status(&request).await.unwrap();
    tx.insert_events(&[created, sent]).await.unwrap();
    tx.commit().await.unwrap();
    insert_signers_as_0005(&db, &signers).await;

    db.migrate().await.unwrap();
    assert_eq!(db.stale_parts().await.unwrap(), Vec::<Uuid>::new());
    let read = db
        .get_request_with_parts(org.id, request.id)
        .await
        .unwrap()
        .unwrap();
    let emails: Vec<_> = read.signers.iter().map(|s| s.email.clone()).collect();
    assert_eq!(
        emails,
        [Some("a@example.com".into()), Some("b@example.com".into())]
    );
    assert_eq!(read.signers[1].name.as_deref(), Some("Signer \"1\""));
    assert_eq!(read.signers[0].sent_at, Some(now));
    assert_eq!(read.events.len(), 2);
    assert_eq!(
        read.events[0].event_type,
        signeur_core::EventType::SignatureRequestCreated
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&read.events[0].data).unwrap()["note"],
        "quote \" and é"
    );
    assert_eq!(
        read.events[1].prev_hash.as_deref(),
        Some(read.events[0].hash.as_str())
    );

    // After the migration, the triggers keep the row up to date.
    let mut tx = db.begin().await.unwrap();
    let mut row = tx.lock_request(org.id, request.id).await.unwrap().unwrap();
    tx.set_signer_locale(signers[0].id, signeur_core::Locale::De)
        .await
        .unwrap();
    let opened = event(
        &mut row,
        EventType::SignerOpened,
        json!({"signature_request_id": request.id}),
    );
    tx.update_request_status(&row).await.unwrap();
    tx.insert_events(&[opened]).await.unwrap();
    tx.commit().await.unwrap();
    let read = db
        .get_request_with_parts(org.id, request.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.signers[0].locale, signeur_core::Locale::De);
    assert_eq!(read.events.len(), 3);
    assert_eq!(db.stale_parts().await.unwrap(), Vec::<Uuid>::new());

    db.close().await;
    if let Some((admin, schema)) = pg {
        drop_pg_schema(admin, schema);
    }
}
