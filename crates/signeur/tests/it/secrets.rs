//! Secrets at rest: signing-link tokens are stored encrypted with the master key and found
//! by their hash; rows from before that are sealed at start-up.

use serde_json::Value;
use sha2::Digest as _;
use signeur_store::Db;

use crate::support::*;

async fn rows(db: &Db, sql: &str) -> Vec<(Option<String>, Option<String>)> {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    match db {
        Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(&p.write).await,
        Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
    }
    .unwrap()
}

async fn execute(db: &Db, sql: String) {
    let sql = sqlx::AssertSqlSafe(sql);
    match db {
        Db::Sqlite(p) => sqlx::query(sql).execute(&p.write).await.map(|_| ()),
        Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
    }
    .unwrap();
}

fn hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

fn tokens(created: &Value) -> Vec<String> {
    created["signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["access_token"].as_str().unwrap().to_string())
        .collect()
}

/// Everything the database holds about signers and their requests, as text.
async fn everything_stored(db: &Db) -> String {
    let signers = rows(
        db,
        "SELECT access_token, access_token_hash FROM signers ORDER BY position",
    )
    .await;
    let parts = rows(
        db,
        "SELECT signers_json, events_json FROM signature_requests",
    )
    .await;
    format!("{signers:?} {parts:?}")
}

#[tokio::test]
async fn link_tokens_are_stored_encrypted_and_links_found_by_hash() {
    let app = TestApp::start().await;
    let created = app.create(&seed_body()).await;
    let id = created["id"].as_str().unwrap();
    let tokens = tokens(&created);
    assert_eq!(tokens.len(), 2);

    let stored = rows(
        &app.db,
        "SELECT access_token, access_token_hash FROM signers ORDER BY position",
    )
    .await;
    let all = everything_stored(&app.db).await;
    for (token, (sealed, h)) in tokens.iter().zip(&stored) {
        assert!(!all.contains(token.as_str()), "a token is stored in clear");
        assert!(sealed.as_deref().unwrap().starts_with("sealed:v1:"));
        assert_eq!(h.as_deref(), Some(hash(token).as_str()));
    }
    // The API still hands the tokens out, and the links open.
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(self::tokens(&got), tokens);
    for t in &tokens {
        let res = http_client()
            .get(app.url(&format!("/sign/{t}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // The stored hash is not a way in.
    let res = http_client()
        .get(app.url(&format!("/sign/{}", hash(&tokens[0]))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // A rotated link is sealed too.
    let signer = created["signers"][0]["id"].as_str().unwrap();
    let r: Value = app
        .post(&format!(
            "/api/v1/signatures/{id}/signers/{signer}/rotate-link"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = r["access_token"].as_str().unwrap();
    assert!(!everything_stored(&app.db).await.contains(new));
    let res = http_client()
        .get(app.url(&format!("/sign/{new}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http_client()
        .get(app.url(&format!("/sign/{}", tokens[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
}

/// A row written before tokens were encrypted (migration 0010) has its token in clear and no
/// hash: it keeps working, and the start-up pass seals it.
#[tokio::test]
async fn tokens_stored_in_clear_before_the_upgrade_work_and_are_sealed_at_start_up() {
    let app = TestApp::start().await;
    let created = app.create(&seed_body()).await;
    let id = created["id"].as_str().unwrap();
    let tokens = tokens(&created);
    for (i, t) in tokens.iter().enumerate() {
        execute(
            &app.db,
            format!(
                "UPDATE signers SET access_token = '{t}', access_token_hash = NULL \
                 WHERE position = {i}"
            ),
        )
        .await;
    }
    assert!(
        everything_stored(&app.db)
            .await
            .contains(tokens[0].as_str())
    );
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(self::tokens(&got), tokens);
    let open = |t: String| {
        let url = app.url(&format!("/sign/{t}"));
        async move { http_client().get(url).send().await.unwrap().status() }
    };
    assert_eq!(open(tokens[0].clone()).await, 200);

    assert_eq!(app.service.seal_plain_link_tokens().await.unwrap(), 2);
    assert_eq!(app.service.seal_plain_link_tokens().await.unwrap(), 0);
    let all = everything_stored(&app.db).await;
    for t in &tokens {
        assert!(!all.contains(t.as_str()), "still in clear after the pass");
        assert_eq!(open(t.clone()).await, 200);
    }
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(self::tokens(&got), tokens);
}
