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
