//! The event hash chain under concurrent writers.

use serde_json::{Value, json};
use uuid::Uuid;

use signeur_core::EventType;
use signeur_core::event::{ChainLink, verify_chain};
use signeur_core::time;

use crate::support::*;

#[tokio::test]
async fn concurrent_writers_never_fork_a_chain() {
    let app = TestApp::start().await;
    let id: Uuid = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let writers = (0..16).map(|i| {
        let (clock, db) = (app.clock.clone(), app.db.clone());
        let org = app.org_id;
        tokio::spawn(async move {
            let now = clock.now();
            let mut tx = db.begin().await.unwrap();
            let mut row = tx.lock_request(org, id).await.unwrap().unwrap();
            let event = signeur_store::append_event(
                &mut row,
                None,
                EventType::SignerOpened,
                json!({"signature_request_id": id, "writer": i}),
                now,
            );
            tx.update_request_status(&row).await.unwrap();
            tx.insert_events(&[event]).await.unwrap();
            tx.commit().await.unwrap();
        })
    });
    for w in futures::future::join_all(writers).await {
        w.unwrap();
    }
    let events = app.db.events_of(id).await.unwrap();
    assert_eq!(events.len(), 18, "created + sent + 16 writers");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=18).collect::<Vec<_>>()
    );
    let data: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let stamps: Vec<String> = events.iter().map(|e| time::format(e.created_at)).collect();
    let links: Vec<ChainLink> = events
        .iter()
        .zip(&data)
        .zip(&stamps)
        .map(|((e, d), t)| ChainLink {
            id: &e.id,
            event_type: e.event_type.as_str(),
            created_at: t,
            data: d,
            prev_hash: e.prev_hash.as_deref(),
            hash: &e.hash,
        })
        .collect();
    assert_eq!(verify_chain(&links), Ok(()));
    app.assert_reads_fresh().await;
}

#[tokio::test]
async fn a_forked_append_cannot_commit() {
    let app = TestApp::start().await;
    let id: Uuid = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let events = app.db.events_of(id).await.unwrap();
    // A writer that skipped the lock and reused an existing sequence number.
    let mut forged = events[1].clone();
    forged.id = format!("evt_{}", Uuid::new_v4());
    let mut tx = app.db.begin().await.unwrap();
    let err = tx.insert_events(&[forged]).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
}

#[tokio::test]
async fn concurrent_cancels_have_one_winner() {
    let app = TestApp::start().await;
    let id = app.create(&seed_body()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sends = (0..8).map(|_| app.post(&format!("/api/v1/signatures/{id}/cancel")).send());
    let statuses: Vec<u16> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let events = app.db.events_of(id.parse().unwrap()).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == EventType::SignatureRequestCancelled)
            .count(),
        1
    );
    app.assert_reads_fresh().await;
}
