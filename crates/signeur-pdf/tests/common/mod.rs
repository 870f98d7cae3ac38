//! What the PDF crate's test files share: fixtures, a test key, and the outside validators
//! (each skipped when missing, unless `SIGNEUR_REQUIRE_VALIDATORS` is set).
#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};

use const_oid::db::rfc5912;
use signeur_pdf::{RingSigner, SealAlgorithm, SealSigner};
use std::process::Command;

/// A fixture's bytes, by file name under `tests/fixtures/`.
macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
        .as_slice()
    };
}

/// A throw-away RSA-2048 test key (PKCS#8): neither ring nor rcgen can generate RSA keys.
pub const RSA_TEST_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDvNAOiKD80Cvj+\n\
EK051U1ytGcxP+m9MbcPhxKpwoLsnBF/5slE6LakNmhhw+BYet2ExrSE6agMQtYc\n\
fibUEkoFdEm+cKO9bIurTnCQZO9OqHzXnAiTxcNSx/NuWgEuaNUWWrLGlD7AfCUC\n\
3xixO3cNEZei9aZibCjPJou+Q8vgdubLYcVIEFOmOJDsDqjPM+4d9NDWz9fYcWvr\n\
gU412BYI1csnwulMd6I1YTS90p3NzboFemvfBBmMOFCHKKe/stgoZRIyKLwSgqHt\n\
vacgD8a/TR1kx4z9s7XOHdlPu/nhSNbKstt09cL3nVMu7P7UnzdkA2tQ35sTIWQp\n\
p9OeMUQvAgMBAAECggEACfEqb37CUSymuJJVlpBG+kwFHI3Zt5IpDr1gRLS/v523\n\
k6CyX+B7/StumsyB5K3ZgeZZP7lGLQcktKV3pq4l7C2vGGfAjDY0G6OUfJGh+9J3\n\
X5zJR+g2bk9RGBaVvCCUCixRUTQPv1rJlirlOjJMvxZhdUyPNy+a9AwOvLc/FwBs\n\
cCn+k40lgNZxuk5PYIh3eJc0RaWU7S7fUNXSq8G1ZVhp9yj79zQZ1Cy5TTkcjnHm\n\
96xyjQK6i49v+8bGYdIdHr2WE/eiM7qiPvPW+qxS0pgfD2gM55G1f3YygHxmX2mo\n\
krjxQmiy9lLcDVgtiojJ6+e0BYZonENUR5RQy9lVAQKBgQD4eTOOydhrx0fW3oRk\n\
kz1RHaJuhu4bmWLSkrQb+0mUNNCd2pK3i7sZS01GZ5mlW9zl6fYUV8jLXpetWOgs\n\
yZHFlExq2AjUbwqq1Ew8/Xpwjd7QtwnDGMJ4w6jqIfksWHwrDmE5/sJ3NArSprKK\n\
OYjRjrFbSeFbqn02bECBqiv3LwKBgQD2cu0WcN9E2qD6GtrppMm5Hdlm5ciB+sBH\n\
VAJEv8Yflc8DoIPAqVy+fCk7yiMiOmh0ooerrD9okss/VOaxS0wdeVUUvDjLS7fm\n\
8k/IPksBDZ9PXHvN5AaBb9oD55lpELAMR5eFec1syiyqCh+PgUWZ2qwqIgGO0h1l\n\
3MOz3exDAQKBgQDgXjmDR5rpAANL8JTmaNqmo7boTWk3fNNyyExhNBFmBicXU6bG\n\
nSOvHIND/wsL+Z7H8fNmvToxAlK+kpjc0IuUOWyj0j5u7XJZfej17gIhHsrD93SW\n\
OoZpHG0sNs9VDvXYv1xmTTj3AQSA4Uw5aui0KkDW6SjZaGM2wJujOrIGuwKBgGHZ\n\
zcLcO/nVqJbFNOgRsrpaXKhbUdox2kg31dLAJgUCcThqcgV7+UP0flar8nkzoae1\n\
pJKICIEXz7Usm5AHaohFVX+vIAmv3avHx9+kxBj99KQI/2sHP4IDDBgCy8mIg63M\n\
ex/W9bZdK5C0BkXvONhWl4b/C4lOabe5CMcQtS8BAoGBAOJu8/Z/7Zz0ectiV+Om\n\
BEUkf71i32mLEmu0XKgul6Vein1gtEHT9H4tGz17wneBIMNkJspsSzw+Yva21CbX\n\
+AWz5olq74/JHGcIdZ3oQQb4X+k6CCrl1X/FEuKHlAsHSSgEg3oSiWJFMMG9bIn9\n\
dIXW3ua37o/nxQ00uVko3ACW\n\
-----END PRIVATE KEY-----\n";

pub fn has_program(name: &str, arg: &str) -> bool {
    Command::new(name)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A validator is missing: a note, or a failure when `SIGNEUR_REQUIRE_VALIDATORS` is set
/// (`.ci/run` sets it, so CI never passes by skipping).
pub fn missing(what: &str) {
    if std::env::var_os("SIGNEUR_REQUIRE_VALIDATORS").is_some() {
        panic!("{what} is required (SIGNEUR_REQUIRE_VALIDATORS is set)");
    }
    eprintln!("note: {what} not available, skipping");
}

/// poppler's `pdfsig` exits 0 even on a bad digest: every signature must say it is valid.
pub fn pdfsig_check(path: &Path) {
    if !has_program("pdfsig", "-v") {
        missing("pdfsig (poppler-utils)");
        return;
    }
    let out = Command::new("pdfsig").arg(path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let signatures = text.matches("Signature #").count();
    let valid = text
        .matches("Signature Validation: Signature is Valid.")
        .count();
    assert!(signatures > 0, "pdfsig found no signature:\n{text}");
    assert_eq!(valid, signatures, "pdfsig:\n{text}");
}

pub fn python_has_pyhanko() -> bool {
    Command::new("python3")
        .args(["-c", "import pyhanko, pyhanko_certvalidator"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn qpdf_check(path: &Path) {
    if !has_program("qpdf", "--version") {
        missing("qpdf");
        return;
    }
    let out = Command::new("qpdf")
        .arg("--check")
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "qpdf --check failed:\n{text}");
    assert!(
        !text.to_ascii_lowercase().contains("warning") && !text.contains("ERROR"),
        "qpdf --check complained:\n{text}"
    );
    assert!(
        text.contains("No syntax or stream encoding errors"),
        "{text}"
    );
}

/// Runs the PAdES checker (`$SIGNEUR_PADES_CHECK`, default `.ci/pades/pades_check.py`). Every
/// signature must be intact, valid and trusted; the B-B structure rules must hold for ours
/// (`ours` is its field name), while an earlier signature made by someone else may be plain
/// `adbe.pkcs7.detached` with a signing-time, and, with `earlier_may_see_changes` (a stamp
/// added pages and content after it), may fail any rule about later modifications.
pub fn pades_check(path: &Path, trust: &[PathBuf], ours: &str, earlier_may_see_changes: bool) {
    let script = std::env::var_os("SIGNEUR_PADES_CHECK")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../.ci/pades/pades_check.py"
            ))
        });
    if !script.is_file() {
        eprintln!(
            "note: {} not found (set SIGNEUR_PADES_CHECK), skipping",
            script.display()
        );
        return;
    }
    if !python_has_pyhanko() {
        missing("python3 with pyhanko");
        return;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(path).args(["--level", "B-B"]);
    for t in trust {
        cmd.arg("--trust").arg(t);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("pades_check.py:\n{text}");
    assert!(
        text.contains("RESULT:"),
        "pades_check.py did not finish:\n{text}"
    );
    let mut field = String::new();
    let mut seen_ours = false;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            field = rest.split(']').next().unwrap_or_default().to_owned();
            seen_ours |= field == ours;
        } else if let Some(msg) = line.trim_start().strip_prefix("FAIL") {
            let msg = msg.trim();
            let tolerated = field != ours
                && (earlier_may_see_changes
                    || msg.starts_with("/SubFilter /ETSI.CAdES.detached")
                    || msg.starts_with("no signing-time"));
            assert!(tolerated, "pades_check.py: [{field}] {msg}\n{text}");
        }
    }
    assert!(seen_ours, "pades_check.py did not report {ours}:\n{text}");
}

/// pyHanko validates every signature: each must be intact and trusted, ours (`ours`) untouched
/// (covering the whole file). An earlier signature by someone else (the approval-signed
/// fixture) may see a stamp as a later change: reported by pyHanko's exit status, not refused.
pub fn pyhanko_validate(
    path: &Path,
    trust: &[PathBuf],
    hybrid: bool,
    ours: &str,
    earlier_may_see_changes: bool,
) {
    if !has_program("pyhanko", "--version") {
        missing("the pyhanko CLI");
        return;
    }
    let mut cmd = Command::new("pyhanko");
    cmd.args(["sign", "validate", "--no-revocation-check"]);
    if hybrid {
        cmd.arg("--no-strict-syntax");
    }
    for t in trust {
        cmd.arg("--trust").arg(t);
    }
    cmd.arg("--trust-replace").arg(path);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("pyhanko sign validate:\n{text}");
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "{text}");
    for line in &lines {
        assert!(line.contains(":INTACT:TRUSTED"), "{text}");
    }
    let our_line = lines
        .iter()
        .find(|l| l.starts_with(&format!("{ours}:")))
        .unwrap_or_else(|| panic!("pyhanko did not report {ours}:\n{text}"));
    assert!(our_line.ends_with(",UNTOUCHED"), "{text}");
    if lines.len() == 1 || !earlier_may_see_changes {
        assert!(
            out.status.success(),
            "pyhanko sign validate failed:\n{text}"
        );
    }
}

/// The certificates of signatures already in `input` (the approval-signed fixture), as PEM
/// files, so that pyHanko can trust that earlier signer too.
pub fn earlier_signer_certs(input: &[u8], dir: &Path) -> Vec<PathBuf> {
    use der::Encode;
    let mut paths = Vec::new();
    let needle = b"/Contents";
    for at in (0..input.len().saturating_sub(needle.len()))
        .filter(|&i| &input[i..i + needle.len()] == needle)
    {
        let rest = input[at + needle.len()..].trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b"<") else {
            continue;
        };
        let end = rest.iter().position(|&b| b == b'>').unwrap();
        let der_bytes = hex::decode(&rest[..end]).unwrap();
        let mut reader = der::SliceReader::new(&der_bytes).unwrap();
        let info: cms::content_info::ContentInfo = der::Decode::decode(&mut reader).unwrap();
        let signed = info
            .content
            .decode_as::<cms::signed_data::SignedData>()
            .unwrap();
        for (i, cert) in signed.certificates.unwrap().0.iter().enumerate() {
            let pem = der::pem::encode_string(
                "CERTIFICATE",
                der::pem::LineEnding::LF,
                &cert.to_der().unwrap(),
            )
            .unwrap();
            let path = dir.join(format!("earlier-{at}-{i}.pem"));
            std::fs::write(&path, pem).unwrap();
            paths.push(path);
        }
    }
    paths
}

/// A sealing key with its self-signed certificate (also as `seal-cert.pem` in `dir`).
pub struct TestKey {
    pub signer: RingSigner,
    pub cert_der: Vec<u8>,
    pub signature_oid: der::asn1::ObjectIdentifier,
    pub dir: tempfile::TempDir,
}

impl TestKey {
    pub fn cert_pem(&self) -> PathBuf {
        self.dir.path().join("seal-cert.pem")
    }
}

/// A self-signed ECDSA P-256 sealing certificate, made now.
pub fn test_key() -> TestKey {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    make_test_key(key, |pkcs8, chain| {
        RingSigner::ecdsa_p256_from_pkcs8(pkcs8, chain).unwrap()
    })
}

/// A self-signed RSA sealing certificate for [`RSA_TEST_KEY`], made now.
pub fn test_key_rsa() -> TestKey {
    let key =
        rcgen::KeyPair::from_pem_and_sign_algo(RSA_TEST_KEY, &rcgen::PKCS_RSA_SHA256).unwrap();
    make_test_key(key, |pkcs8, chain| {
        RingSigner::rsa_from_pkcs8(pkcs8, chain).unwrap()
    })
}

pub fn make_test_key(
    key: rcgen::KeyPair,
    signer: impl Fn(&[u8], Vec<Vec<u8>>) -> RingSigner,
) -> TestKey {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Signeur Test Seal");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Signeur tests");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::ContentCommitment,
    ];
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seal-cert.pem"), cert.pem()).unwrap();
    let cert_der = cert.der().to_vec();
    let signer = signer(&key.serialize_der(), vec![cert_der.clone()]);
    let signature_oid = match signer.algorithm() {
        SealAlgorithm::EcdsaP256Sha256 => rfc5912::ECDSA_WITH_SHA_256,
        SealAlgorithm::RsaPkcs1Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
    };
    TestKey {
        signer,
        cert_der,
        signature_oid,
        dir,
    }
}
