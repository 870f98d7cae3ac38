//! A committed write survives a power cut on SQLite: WAL with `synchronous=FULL` syncs the
//! log at every commit (`NORMAL` would only sync at checkpoints, losing the last commits).

use signeur_store::Db;

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_commits_are_synced() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .unwrap();
    let Db::Sqlite(pools) = &db else {
        panic!("a sqlite:// URL opens SQLite")
    };
    for pool in [&pools.write, &pools.read] {
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(level, 2, "PRAGMA synchronous is FULL (2)");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }
    db.close().await;
}
