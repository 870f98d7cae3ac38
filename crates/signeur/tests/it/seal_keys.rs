//! The generated sealing identity: created once, shared by every node, key encrypted.

use std::process::{Command, Stdio};

use signeur_service::{MasterKey, Service};

use crate::support::*;

#[tokio::test]
async fn every_node_seals_with_the_same_generated_identity() {
    let app = TestApp::start().await;
    let org = app.org_id;
    // Two "nodes": the same database and master key, asking at the same time.
    let other = Service::new(
        app.db.clone(),
        app.blobs.clone(),
        app.service.clock.clone(),
        app.service.keys.clone(),
    );
    let (a, b) = tokio::join!(app.service.seal_identity(org), other.seal_identity(org));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.certificate_chain, b.certificate_chain);
    assert_eq!(a.private_key_pkcs8, b.private_key_pkcs8);
    let again = app.service.seal_identity(org).await.unwrap();
    assert_eq!(
        again.certificate_chain, a.certificate_chain,
        "generated once"
    );

    let cert = &a.certificate_chain[0];
    assert_eq!(cert[0], 0x30, "DER");
    let subject = String::from_utf8_lossy(cert);
    assert!(
        subject.contains("Default"),
        "the organization's name is the subject"
    );
    assert!(subject.contains("self-signed"), "marked self-signed");

    // The private key is stored encrypted: not in the clear, and useless without the key.
    let row = app.db.get_seal_key(org).await.unwrap().unwrap();
    assert!(
        !row.private_key_enc
            .windows(a.private_key_pkcs8.len())
            .any(|w| w == a.private_key_pkcs8.as_slice())
    );
    let stranger = Service::new(
        app.db.clone(),
        app.blobs.clone(),
        app.service.clock.clone(),
        MasterKey::generate(),
    );
    assert!(stranger.seal_identity(org).await.is_err());

    // Another organization gets its own.
    let (other_org, _) = app.other_org().await;
    let theirs = app.service.seal_identity(other_org).await.unwrap();
    assert_ne!(theirs.certificate_chain, a.certificate_chain);
}

/// `SIGNEUR_SEAL_P12`: a PKCS#12 made by openssl (RSA key, CA-issued certificate, chain) seals
/// every organization's documents, and the seal verifies.
#[tokio::test]
async fn a_configured_pkcs12_seals_with_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.ci/pades/make_test_pki.sh"
    );
    let made = std::process::Command::new("bash")
        .arg(script)
        .arg(dir.path())
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        _ if std::env::var_os("SIGNEUR_REQUIRE_VALIDATORS").is_none() => {
            eprintln!("note: openssl not available, skipping");
            return;
        }
        other => panic!("make_test_pki.sh failed: {other:?}"),
    }
    let p12 = std::fs::read(dir.path().join("leaf.p12")).unwrap();
    assert!(signeur_service::seal_keys::identity_from_pkcs12(&p12, "wrong").is_err());
    let identity = signeur_service::seal_keys::identity_from_pkcs12(&p12, "test123").unwrap();
    assert_eq!(identity.certificate_chain.len(), 2, "leaf and root");

    let app = TestApp::start().await;
    let service = Service::new(
        app.db.clone(),
        app.blobs.clone(),
        app.service.clock.clone(),
        app.service.keys.clone(),
    )
    .with_seal_identity(identity.clone());
    let used = service.seal_identity(app.org_id).await.unwrap();
    assert_eq!(used.certificate_chain, identity.certificate_chain);
    let sealed = signeur_pdf::seal(
        ONE_PAGE,
        &used.signer().unwrap(),
        &signeur_pdf::SealOptions::new(chrono::Utc::now()),
    )
    .unwrap();
    let report = signeur_pdf::verify(&sealed).unwrap();
    assert!(report.seal_valid(), "{report:?}");
    assert!(
        report.signatures[0]
            .signer_subject
            .contains("Example eSign Seal")
    );
    assert!(!report.signatures[0].self_signed);
}

/// `SIGNEUR_TSA_URL`: the seal carries an RFC 3161 time-stamp from a local authority (PAdES
/// B-T); with no authority answering, the seal job fails and retries instead of faking one.
#[tokio::test]
async fn seals_are_time_stamped_by_the_configured_authority() {
    let require = std::env::var_os("SIGNEUR_REQUIRE_VALIDATORS").is_some();
    let pki = tempfile::tempdir().unwrap();
    let ci = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/pades/");
    let made = Command::new("bash")
        .arg(format!("{ci}make_test_pki.sh"))
        .arg(pki.path())
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        assert!(!require, "make_test_pki.sh failed: {made:?}");
        eprintln!("note: openssl not available, skipping");
        return;
    }
    let (port, tsa) = start_tsa(ci, pki.path(), None).await;

    let app = TestApp::start().await;
    let with_tsa = |urls: Vec<String>| {
        Service::new(
            app.db.clone(),
            app.blobs.clone(),
            app.service.clock.clone(),
            app.service.keys.clone(),
        )
        .with_tsa(signeur_service::tsa::TsaSettings {
            urls,
            timeout: std::time::Duration::from_secs(5),
            extra_roots_pem: None,
        })
    };
    let sign_one = || async {
        let mut body = seed_body();
        body["signers"] = serde_json::json!([{ "email": "a@example.com", "name": "Anna" }]);
        let v = app.create(&body).await;
        let id: uuid::Uuid = v["id"].as_str().unwrap().parse().unwrap();
        let signer: uuid::Uuid = v["signers"][0]["id"].as_str().unwrap().parse().unwrap();
        let token = v["signers"][0]["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let link = app
            .service
            .signing_link(&token, None)
            .await
            .unwrap()
            .unwrap();
        let _ = signer;
        app.service
            .sign(
                &link,
                signeur_service::signing::SignInput {
                    full_name: "Anna".into(),
                    consent: true,
                    ip_address: "127.0.0.1".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        id
    };

    // No authority answers: the job fails and stays queued; the request waits.
    let dead = with_tsa(vec!["http://127.0.0.1:9/tsr".into()]);
    let id = sign_one().await;
    dead.run_due_jobs().await.unwrap();
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(
        got["status"], "awaiting_stamp",
        "never sealed without the time-stamp"
    );

    // The first authority is down, the second answers.
    let live = with_tsa(vec![
        "http://127.0.0.1:9/tsr".into(),
        format!("http://127.0.0.1:{port}/"),
    ]);
    app.advance(chrono::Duration::hours(2));
    live.run_due_jobs().await.unwrap();
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(got["status"], "signed");
    let res = app
        .get(&format!("/api/v1/signatures/{id}/document"))
        .send()
        .await
        .unwrap();
    let sealed = res.bytes().await.unwrap().to_vec();
    let report = signeur_pdf::verify(&sealed).unwrap();
    assert!(report.seal_valid(), "{report:?}");
    let seal = &report.signatures[0];
    assert!(seal.has_timestamp, "PAdES B-T");
    assert!(
        seal.timestamp_imprint_ok,
        "the token is over the signature value"
    );
    let stamped_at = seal.timestamp_time.as_deref().expect("genTime read back");
    let stamped_at = chrono::DateTime::parse_from_rfc3339(stamped_at).unwrap();
    assert!(
        (stamped_at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .num_minutes()
            .abs()
            < 10
    );
    assert!(
        seal.timestamp_authority
            .as_deref()
            .is_some_and(|a| !a.is_empty()),
        "{seal:?}"
    );
    drop(tsa);

    // An HTTPS authority: refused while its certificate is not trusted (the job retries),
    // used once its root is given (SIGNEUR_TSA_CA_FILE).
    let tls = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".into()])
        .unwrap();
    let tls_dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = (
        tls_dir.path().join("tls.crt"),
        tls_dir.path().join("tls.key"),
    );
    std::fs::write(&cert_pem, tls.cert.pem()).unwrap();
    std::fs::write(&key_pem, tls.signing_key.serialize_pem()).unwrap();
    let (https_port, https_tsa) = start_tsa(ci, pki.path(), Some((&cert_pem, &key_pem))).await;
    let https_url = format!("https://127.0.0.1:{https_port}/");
    let untrusted = with_tsa(vec![https_url.clone()]);
    let id = sign_one().await;
    untrusted.run_due_jobs().await.unwrap();
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(
        got["status"], "awaiting_stamp",
        "an untrusted TLS certificate is refused"
    );
    let trusted = Service::new(
        app.db.clone(),
        app.blobs.clone(),
        app.service.clock.clone(),
        app.service.keys.clone(),
    )
    .with_tsa(signeur_service::tsa::TsaSettings {
        urls: vec![https_url],
        timeout: std::time::Duration::from_secs(5),
        extra_roots_pem: Some(tls.cert.pem().into_bytes()),
    });
    app.advance(chrono::Duration::hours(2));
    trusted.run_due_jobs().await.unwrap();
    let got = app.get_json(&format!("/api/v1/signatures/{id}")).await;
    assert_eq!(
        got["status"], "signed",
        "sealed with the HTTPS authority's time-stamp"
    );
    let https_sealed = app
        .get(&format!("/api/v1/signatures/{id}/document"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let report = signeur_pdf::verify(&https_sealed).unwrap();
    assert!(
        report.seal_valid() && report.signatures[0].has_timestamp,
        "{report:?}"
    );
    drop(https_tsa);

    // The independent checker at level B-T, trusting the seal and the TSA's root.
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("sealed.pdf");
    std::fs::write(&pdf, &sealed).unwrap();
    let seal_cert = dir.path().join("seal.der");
    let identity = app.service.seal_identity(app.org_id).await.unwrap();
    std::fs::write(&seal_cert, &identity.certificate_chain[0]).unwrap();
    match Command::new("python3")
        .arg(format!("{ci}pades_check.py"))
        .arg(&pdf)
        .arg("--trust")
        .arg(&seal_cert)
        .arg("--trust")
        .arg(pki.path().join("root.crt"))
        .args(["--level", "B-T"])
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            if text.contains("No module named") && !require {
                eprintln!("note: pyhanko not installed, skipping pades_check");
            } else {
                panic!("pades_check B-T: {text}");
            }
        }
        Err(e) => assert!(!require, "python3: {e}"),
    }
}

/// Stops a test TSA however the test ends.
struct Stop(std::process::Child);
impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `.ci/pades/test_tsa.py` on a free port (HTTPS with `tls` = certificate and key).
async fn start_tsa(
    ci: &str,
    pki: &std::path::Path,
    tls: Option<(&std::path::Path, &std::path::Path)>,
) -> (u16, Stop) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("python3");
    cmd.arg(format!("{ci}test_tsa.py"))
        .arg(pki)
        .arg(port.to_string());
    if let Some((cert, key)) = tls {
        cmd.arg(cert).arg(key);
    }
    let tsa = Stop(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3"),
    );
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "the test TSA did not start");
    (port, tsa)
}
