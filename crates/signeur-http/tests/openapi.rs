//! The OpenAPI document is generated from the routes, committed as `docs/openapi.json`,
//! and must not drift. Regenerate with `UPDATE_OPENAPI=1 cargo test -p signeur-http`.

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

#[test]
fn committed_openapi_matches_the_code() {
    let generated = format!("{}\n", signeur_http::openapi().to_pretty_json().unwrap());
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p signeur-http --test openapi` and commit it"
    );
}

#[test]
fn every_route_is_in_the_spec() {
    // Routes registered with utoipa-axum's `routes!` carry their spec entry; a bare
    // `.route(` would not. Only the document itself is served that way.
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        // The signer's HTML pages (the `pages` folder) are not part of the JSON API.
        if path.file_name().is_some_and(|n| n == "pages") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains(".route(")
                || line.contains(".route_service(")
                || line.contains(".nest(")
            {
                assert!(
                    line.contains("\"/api/v1/openapi.json\""),
                    "{}:{}: a route outside utoipa's routes!(): {line}",
                    path.display(),
                    i + 1
                );
            }
        }
    }
    let spec = signeur_http::openapi();
    let paths: Vec<&String> = spec.paths.paths.keys().collect();
    for expected in [
        "/api/v1/signatures",
        "/api/v1/signatures/{id}",
        "/api/v1/signatures/{id}/signers",
        "/api/v1/signatures/{id}/signers/{signer_id}/resend",
        "/api/v1/signatures/{id}/cancel",
        "/api/v1/signatures/{id}/document",
        "/api/v1/signatures/{id}/audit-trail.pdf",
        "/api/v1/signatures/{id}/audit-trail.json",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            paths.iter().any(|p| *p == expected),
            "{expected} missing from the spec"
        );
    }
    for p in &paths {
        assert!(
            p.starts_with("/api/v1/") || ["/healthz", "/readyz", "/metrics"].contains(&p.as_str()),
            "paths are absolute: {p}"
        );
    }
}
