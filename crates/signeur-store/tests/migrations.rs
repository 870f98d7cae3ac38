//! The SQLite and PostgreSQL migrations describe the same schema.

use std::collections::BTreeMap;

/// table → column names, in order, from `CREATE TABLE` and `ALTER TABLE … ADD COLUMN`.
fn tables(sql: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in sql.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ALTER TABLE ") {
            let mut words = rest.split_whitespace();
            let table = words.next().unwrap_or("").to_string();
            let rest: Vec<&str> = words.collect();
            if let ["ADD", "COLUMN", column, ..] = rest.as_slice() {
                out.entry(format!("{table} (altered)"))
                    .or_default()
                    .push(column.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            current = Some((rest.trim_end_matches(" (").trim().to_string(), Vec::new()));
        } else if line.starts_with(");") {
            if let Some((name, cols)) = current.take() {
                out.insert(name, cols);
            }
        } else if let Some((_, cols)) = current.as_mut() {
            let first = line.split_whitespace().next().unwrap_or("");
            if !first.is_empty() && !["PRIMARY", "UNIQUE", "--"].contains(&first) {
                cols.push(first.to_string());
            }
        }
    }
    out
}

fn indexes(sql: &str) -> Vec<String> {
    sql.lines()
        .filter(|l| l.starts_with("CREATE INDEX"))
        .map(|l| l.split(" ON ").next().unwrap_or(l).to_string())
        .collect()
}

/// Views created, by name (a migration may only redefine what is derived from the tables).
fn views(sql: &str) -> Vec<String> {
    sql.lines()
        .filter_map(|l| l.strip_prefix("CREATE VIEW "))
        .map(|l| l.split_whitespace().next().unwrap_or(l).to_string())
        .collect()
}

#[test]
fn both_backends_have_the_same_migrations() {
    let (sqlite, postgres) = signeur_store::migrations_versions();
    assert_eq!(sqlite, postgres, "versions and descriptions");
    for (version, name) in sqlite {
        let file = format!("{version:04}_{name}.sql");
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/");
        let a = std::fs::read_to_string(format!("{dir}sqlite/{file}")).unwrap();
        let b = std::fs::read_to_string(format!("{dir}postgres/{file}")).unwrap();
        assert!(
            !tables(&a).is_empty() || !views(&a).is_empty() || !indexes(&a).is_empty(),
            "{file}: no schema change found"
        );
        assert_eq!(views(&a), views(&b), "{file}: views");
        assert_eq!(tables(&a), tables(&b), "{file}: tables and columns");
        assert_eq!(indexes(&a), indexes(&b), "{file}: indexes");
        assert_eq!(
            a.matches("UNIQUE").count(),
            b.matches("UNIQUE").count(),
            "{file}: unique constraints"
        );
        assert_eq!(
            a.matches("NOT NULL").count(),
            b.matches("NOT NULL").count(),
            "{file}: NOT NULL"
        );
        assert_eq!(
            a.matches("REFERENCES").count(),
            b.matches("REFERENCES").count(),
            "{file}: foreign keys"
        );
    }
}
