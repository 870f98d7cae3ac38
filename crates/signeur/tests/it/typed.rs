//! Rows carry the domain's types: a stored spelling this build does not know is an error,
//! never quietly read as some default status.

use reqwest::StatusCode;
use serde_json::Value;
use signeur_store::Db;

use crate::support::*;

async fn execute(db: &Db, sql: &str) {
    match db {
        Db::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&p.write)
            .await
            .map(|_| ()),
        Db::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(p)
            .await
            .map(|_| ()),
    }
    .unwrap();
}

#[tokio::test]
async fn an_unknown_stored_status_is_an_error_not_a_default() {
    let app = TestApp::start().await;
    let created = app.create(&seed_body()).await;
    let id = created["id"].as_str().unwrap().to_string();
    execute(
        &app.db,
        &format!(
            "UPDATE signature_requests SET status = 'archived' WHERE id = {}",
            sql_uuid(&app.db, &id)
        ),
    )
    .await;

    let res = app
        .get(&format!("/api/v1/signatures/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "internal_error");
    let res = app.get("/api/v1/signatures").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let uuid = id.parse().unwrap();
    let err = app.db.get_request(app.org_id, uuid).await.unwrap_err();
    assert!(err.to_string().contains("archived"), "{err}");
}

/// How a UUID literal is written in SQL on this backend (SQLite stores them as 16 bytes).
fn sql_uuid(db: &Db, id: &str) -> String {
    match db {
        Db::Sqlite(_) => format!("X'{}'", id.replace('-', "")),
        Db::Postgres(_) => format!("'{id}'"),
    }
}
