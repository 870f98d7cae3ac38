//! The generated sealing identity: created once, shared by every node, key encrypted.

use signeur_service::{MasterKey, Service};

use crate::support::*;

#[tokio::test]
async fn every_node_seals_with_the_same_generated_identity() {
    let app = TestApp::start().await;
    let org = app.org_id;
    // Two "nodes": the same database and master key, asking at the same time.
    let other = Service::new(
        app.service.db.clone(),
        app.service.blobs.clone(),
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
    let row = app.service.db.get_seal_key(org).await.unwrap().unwrap();
    assert!(
        !row.private_key_enc
            .windows(a.private_key_pkcs8.len())
            .any(|w| w == a.private_key_pkcs8.as_slice())
    );
    let stranger = Service::new(
        app.service.db.clone(),
        app.service.blobs.clone(),
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
        app.service.db.clone(),
        app.service.blobs.clone(),
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
