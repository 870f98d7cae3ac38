//! The audit-trail PDF: drawn from realistic and hostile records, read back by this crate and,
//! when installed, by qpdf and poppler (`pdftotext`, `pdfinfo`, `pdftoppm`).

use std::path::{Path, PathBuf};
use std::process::Command;

use signeur_pdf::{
    AuditChain, AuditDelivery, AuditEvent, AuditRequest, AuditSeal, AuditSigner, AuditTrail,
    RenderLimits, audit_trail_pdf, inspect, render_page_png,
};

const ORIGINAL_SHA256: &str = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b";
const SEALED_SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SERIAL: &str = "4F:2A:91:0C:7E:55:13:B8:D2:06:AA:31:9C:E4:70:5B";
const USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                          (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86";

/// A deterministic 64-hex "hash" for event `i`.
fn hash(i: usize) -> String {
    (0..8)
        .map(|k| {
            format!(
                "{:08x}",
                (i as u32 + 1).wrapping_mul(2_654_435_761) ^ (k as u32).wrapping_mul(0x9e37_79b9)
            )
        })
        .collect()
}

fn event(i: usize, time: &str, event_type: &str, summary: &str, actor: Option<&str>) -> AuditEvent {
    AuditEvent {
        id: format!("evt_01JD{:020}", i + 1),
        event_type: event_type.into(),
        created_at: time.into(),
        summary: summary.into(),
        actor: actor.map(Into::into),
        hash: hash(i),
        prev_hash: (i > 0).then(|| hash(i - 1)),
    }
}

fn signer(position: u32, name: &str, email: &str, ip: &str) -> AuditSigner {
    AuditSigner {
        position,
        id: format!("sgn_{position:04}"),
        name: Some(name.into()),
        email: email.into(),
        name_as_signed: Some(name.into()),
        representing: None,
        status: "Signed".into(),
        verification: "Access code sent by email".into(),
        ip_address: Some(ip.into()),
        user_agent: Some(USER_AGENT.into()),
        sent_at: Some("2026-11-20 09:00:04 UTC".into()),
        opened_at: Some("2026-11-20 09:12:40 UTC".into()),
        signed_at: Some("2026-11-20 09:14:02 UTC".into()),
        declined_at: None,
        decline_reason: None,
    }
}

/// A completed, sealed request with three signers and fifteen events.
fn sample() -> AuditTrail {
    let mut signers = vec![
        signer(1, "Aino Äänekoski", "aino@example.fi", "203.0.113.17"),
        signer(2, "Łucja Łódź-Ærø", "lucja@example.pl", "198.51.100.42"),
        signer(3, "Ελένη Παππά", "eleni@example.gr", "2001:db8::7:1"),
    ];
    signers[1].representing = Some("Ærø Shipping ApS".into());
    signers[2].name_as_signed = Some("Ελένη Π.".into());
    let by = |who: &str, ip: &str| format!("{who} from {ip}, Chrome 131 on Windows");
    let a = by("Aino Äänekoski", "203.0.113.17");
    let b = by("Łucja Łódź-Ærø", "198.51.100.42");
    let c = by("Ελένη Παππά", "2001:db8::7:1");
    let api = Some("API key sk_live_…4f2a (Integrator Юлия Смирнова)");
    let events = vec![
        event(
            0,
            "2026-11-20 08:59:51 UTC",
            "request.created",
            "Request created with 3 signers in sequential order",
            api,
        ),
        event(
            1,
            "2026-11-20 09:00:02 UTC",
            "request.sent",
            "Request sent for signing",
            api,
        ),
        event(
            2,
            "2026-11-20 09:00:04 UTC",
            "email.sent",
            "Invitation email accepted by the SMTP server for aino@example.fi",
            None,
        ),
        event(
            3,
            "2026-11-20 09:12:40 UTC",
            "signer.opened",
            "Aino Äänekoski opened the signing page",
            Some(&a),
        ),
        event(
            4,
            "2026-11-20 09:14:02 UTC",
            "signer.signed",
            "Aino Äänekoski signed (typed name “Aino Äänekoski”)",
            Some(&a),
        ),
        event(
            5,
            "2026-11-20 09:14:03 UTC",
            "email.failed",
            "Invitation email to lucja@example.pl failed: 451 4.7.1 greylisted, will retry in 5 minutes (attempt 1 of 5)",
            None,
        ),
        event(
            6,
            "2026-11-20 09:19:05 UTC",
            "email.sent",
            "Invitation email accepted by the SMTP server for lucja@example.pl (attempt 2 of 5)",
            None,
        ),
        event(
            7,
            "2026-11-20 10:02:11 UTC",
            "signer.opened",
            "Łucja Łódź-Ærø opened the signing page",
            Some(&b),
        ),
        event(
            8,
            "2026-11-20 10:05:37 UTC",
            "signer.signed",
            "Łucja Łódź-Ærø signed on behalf of Ærø Shipping ApS",
            Some(&b),
        ),
        event(
            9,
            "2026-11-20 10:05:39 UTC",
            "email.sent",
            "Invitation email accepted by the SMTP server for eleni@example.gr",
            None,
        ),
        event(
            10,
            "2026-11-20 11:40:00 UTC",
            "signer.opened",
            "Ελένη Παππά opened the signing page",
            Some(&c),
        ),
        event(
            11,
            "2026-11-20 11:41:15 UTC",
            "signer.signed",
            "Ελένη Παππά signed (typed name “Ελένη Π.”); witness 山田太郎",
            Some(&c),
        ),
        event(
            12,
            "2026-11-20 11:41:18 UTC",
            "request.sealed",
            "Document sealed with PAdES-B-T (timestamp from tsa.example.com)",
            None,
        ),
        event(
            13,
            "2026-11-20 11:41:19 UTC",
            "request.completed",
            "All signers signed; request completed",
            None,
        ),
        event(
            14,
            "2026-11-20 11:41:21 UTC",
            "email.sent",
            "Completion email with the sealed document accepted by the SMTP server for 3 recipients",
            None,
        ),
    ];
    AuditTrail {
        request: AuditRequest {
            id: "req_01JD8Q6ZK3T7M2V9X4C5B1N0PA".into(),
            title: "Framework agreement Äänekoski – Łódź (2026–2028), with Greek and Russian annexes".into(),
            status: "Completed".into(),
            created_at: "2026-11-20 08:59:51 UTC".into(),
            sent_at: Some("2026-11-20 09:00:02 UTC".into()),
            completed_at: Some("2026-11-20 11:41:19 UTC".into()),
            expires_at: Some("2026-12-20 08:59:51 UTC".into()),
            cancelled_at: None,
            delivery: "Email invitations sent by Signeur".into(),
            signing_order: "Sequential (one signer after the other)".into(),
            message: Some("Dear all, please sign the framework agreement before the end of the month. Юлия will countersign the annexes.".into()),
            document_name: Some("framework-agreement-2026.pdf".into()),
            document_sha256: ORIGINAL_SHA256.into(),
            sealed_document_sha256: Some(SEALED_SHA256.into()),
            metadata: Some(r#"{"crm_id":"OPP-2026-0042","department":"Procurement","owner":"Юлия Смирнова"}"#.into()),
        },
        signers,
        events,
        deliveries: vec![
            AuditDelivery {
                id: "wha_0193b0c4-7e4a-7cc2-9a51-3f0e4b1d2c3a".into(),
                event_id: format!("evt_01JD{:020}", 14),
                event_type: "signature_request.completed".into(),
                endpoint: "ep_a1b2c3d4-e5f6-7890-abcd-ef1234567890".into(),
                attempt: 1,
                created_at: "2026-11-20 11:41:20 UTC".into(),
                outcome: "Failed: HTTP 503 after 41 ms".into(),
            },
            AuditDelivery {
                id: "wha_0193b0c5-1111-7cc2-9a51-3f0e4b1d2c3a".into(),
                event_id: format!("evt_01JD{:020}", 14),
                event_type: "signature_request.completed".into(),
                endpoint: "ep_a1b2c3d4-e5f6-7890-abcd-ef1234567890".into(),
                attempt: 2,
                created_at: "2026-11-20 11:42:21 UTC".into(),
                outcome: "Succeeded: HTTP 204 in 12 ms".into(),
            },
        ],
        chain: AuditChain {
            valid: true,
            detail: "All 15 events link to their predecessor".into(),
        },
        seal: Some(AuditSeal {
            level: "PAdES-B-T".into(),
            certificate_subject: "CN=Signeur Document Seal, O=Example Signatures Oy, C=FI".into(),
            certificate_issuer: "CN=Example Qualified Seal CA 2025, O=Example Trust Services, C=FI".into(),
            certificate_serial: SERIAL.into(),
            not_before: "2025-01-01 00:00:00 UTC".into(),
            not_after: "2027-12-31 23:59:59 UTC".into(),
            signed_at: Some("2026-11-20 11:41:18 UTC".into()),
            timestamp_time: Some("2026-11-20 11:41:18 UTC".into()),
            timestamp_authority: Some("CN=Example TSA, O=Example Trust Services, C=FI".into()),
            verdict: "Valid: the signature and the timestamp verify against the sealed bytes".into(),
        }),
        generated_at: "2026-11-25 14:03:12 UTC".into(),
    }
}

fn assert_pdf(bytes: &[u8]) -> u32 {
    assert!(bytes.starts_with(b"%PDF-"));
    let info = inspect(bytes).expect("our own PDF passes inspection");
    let png = render_page_png(bytes, 0, 600, &RenderLimits::default()).expect("page 1 renders");
    assert!(png.starts_with(b"\x89PNG"));
    info.page_count
}

#[test]
fn realistic_record_renders_and_is_deterministic() {
    let trail = sample();
    let bytes = audit_trail_pdf(&trail).expect("drawn");
    let pages = assert_pdf(&bytes);
    assert!(
        pages >= 2,
        "three signers and fifteen events take more than a page"
    );
    assert_eq!(audit_trail_pdf(&trail).expect("drawn again"), bytes);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("pdfaid:part"), "PDF/A-2b identification");
    assert!(text.contains("/StructTreeRoot"), "tagged");
    // `SIGNEUR_AUDIT_PDF_OUT=path` keeps the sample for a look.
    if let Some(path) = std::env::var_os("SIGNEUR_AUDIT_PDF_OUT") {
        std::fs::write(path, &bytes).unwrap();
    }
}

#[test]
fn hundreds_of_events_paginate() {
    let mut trail = sample();
    trail.events = (0..300)
        .map(|i| {
            event(
                i,
                &format!("2026-11-20 {:02}:{:02}:00 UTC", i / 60 % 24, i % 60),
                if i % 3 == 0 {
                    "email.sent"
                } else {
                    "signer.opened"
                },
                "Invitation email accepted by the SMTP server for someone@example.com",
                Some("Someone from 192.0.2.1"),
            )
        })
        .collect();
    let bytes = audit_trail_pdf(&trail).expect("drawn");
    let pages = assert_pdf(&bytes);
    assert!(pages > 10, "300 events should take many pages, got {pages}");
}

#[test]
fn unsealed_record_with_a_broken_chain() {
    let mut trail = sample();
    trail.seal = None;
    trail.request.sealed_document_sha256 = None;
    trail.request.status = "Sent".into();
    trail.chain = AuditChain {
        valid: false,
        detail: "Event 7 does not link to event 6: its previous hash differs".into(),
    };
    let bytes = audit_trail_pdf(&trail).expect("drawn");
    assert_pdf(&bytes);
    if let Some(text) = pdftotext(&bytes) {
        assert!(text.contains("Not sealed yet"));
        assert!(text.contains("NOT VERIFIED"));
        assert!(text.contains("Event 7 does not link to event 6"));
    }
}

/// Empty strings, a 2 KB user agent, control characters, RTL, CJK and supplementary-plane
/// text, a 5000-character title, 20 KB of metadata, malformed hashes, an unparsable date.
fn hostile() -> AuditTrail {
    let mut trail = sample();
    let long_agent = format!("Mozilla/5.0 {}", "(compatible; X) ".repeat(130));
    assert!(long_agent.len() > 2000);
    trail.signers[0].user_agent = Some(long_agent);
    trail.signers[1].name = Some("\u{0}\u{7}ctrl\tchars\r\nand\u{feff}bom\u{fffe}".into());
    trail.signers[2].name = Some("שלום עליכם مرحبا 山田太郎 \u{20000} \u{e000}".into());
    trail.signers[2].email = String::new();
    trail.request.title = "x".repeat(5000);
    trail.request.metadata = Some(format!("{{\"blob\":\"{}\"}}", "a".repeat(20_000)));
    trail.request.id = String::new();
    trail.events[3].hash = "g".repeat(300);
    trail.events[4].prev_hash = Some(String::new());
    trail.events[5].summary = "line one\nline two\n\n".repeat(50);
    trail.events[6] = AuditEvent::default();
    trail.deliveries.push(AuditDelivery::default());
    trail.deliveries[0].outcome = format!("Failed: {}", "\u{0}<html>\u{202e}".repeat(400));
    trail.generated_at = "not a date".into();
    trail
}

#[test]
fn hostile_input_never_panics() {
    let empty = AuditTrail::default();
    assert_pdf(&audit_trail_pdf(&empty).expect("an empty record still draws"));
    assert_pdf(&audit_trail_pdf(&hostile()).expect("hostile record draws"));
}

#[test]
fn ten_thousand_events() {
    let mut trail = sample();
    trail.events = (0..10_000)
        .map(|i| event(i, "2026-11-20 09:00:00 UTC", "email.sent", "Accepted", None))
        .collect();
    let bytes = audit_trail_pdf(&trail).expect("drawn");
    assert!(bytes.starts_with(b"%PDF-"));
    assert!(bytes.trim_ascii_end().ends_with(b"%%EOF"));
}

/// A validator is missing: a note, or a failure when `SIGNEUR_REQUIRE_VALIDATORS` is set.
fn missing(what: &str) {
    if std::env::var_os("SIGNEUR_REQUIRE_VALIDATORS").is_some() {
        panic!("{what} is required (SIGNEUR_REQUIRE_VALIDATORS is set)");
    }
    eprintln!("note: {what} not available, skipping");
}

fn available(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-v")
        .output()
        .or_else(|_| Command::new(tool).arg("--version").output())
        .is_ok();
    if !ok {
        missing(tool);
    }
    ok
}

fn write_temp(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.pdf");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn pdftotext(bytes: &[u8]) -> Option<String> {
    if !available("pdftotext") {
        return None;
    }
    let (_dir, path) = write_temp(bytes);
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .unwrap();
    // stderr is not required to be empty: poppler 22.x prints "Syntax Error: Suspects object
    // is wrong type (boolean)" for the valid `/MarkInfo << /Suspects false >>` krilla writes.
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn qpdf_finds_no_problem() {
    if !available("qpdf") {
        return;
    }
    let mut unsealed = sample();
    unsealed.seal = None;
    for trail in [sample(), unsealed, hostile(), AuditTrail::default()] {
        let (_dir, path) = write_temp(&audit_trail_pdf(&trail).unwrap());
        let out = Command::new("qpdf")
            .arg("--check")
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(
            stdout.contains("No syntax or stream encoding errors found"),
            "{stdout}"
        );
        assert!(!stdout.to_lowercase().contains("warning"), "{stdout}");
        assert!(stderr.trim().is_empty(), "{stderr}");
    }
}

#[test]
fn text_lists_the_whole_record() {
    let trail = sample();
    let Some(text) = pdftotext(&audit_trail_pdf(&trail).unwrap()) else {
        return;
    };
    for event in &trail.events {
        assert!(text.contains(&event.id), "event id {}", event.id);
        assert!(text.contains(&event.hash), "event hash {}", event.hash);
        assert!(
            text.contains(&event.event_type),
            "event type {}",
            event.event_type
        );
        assert!(
            text.contains(&event.created_at),
            "event time {}",
            event.created_at
        );
    }
    assert!(text.contains("Webhook deliveries"));
    for d in &trail.deliveries {
        assert!(text.contains(&d.id), "attempt id {}", d.id);
        assert!(text.contains(&d.endpoint), "endpoint {}", d.endpoint);
        assert!(text.contains(&d.outcome), "outcome {}", d.outcome);
        assert!(
            text.contains(&d.created_at),
            "attempt time {}",
            d.created_at
        );
    }
    assert!(text.contains(ORIGINAL_SHA256));
    assert!(text.contains(SEALED_SHA256));
    for signer in &trail.signers {
        assert!(
            text.contains(signer.name.as_deref().unwrap()),
            "{:?}",
            signer.name
        );
        assert!(text.contains(&signer.email));
        assert!(text.contains(signer.ip_address.as_deref().unwrap()));
    }
    // The user agent wraps: every word of it is there.
    for word in USER_AGENT.split(' ') {
        assert!(text.contains(word), "user agent word {word}");
    }
    assert!(text.contains(SERIAL));
    assert!(text.contains("PAdES-B-T"));
    assert!(text.contains("not cryptographically signed"));
    assert!(text.contains(&trail.request.id));
    // Unifont-drawn CJK is still extracted, through /ActualText.
    assert!(text.contains("山田太郎"));
}

#[test]
fn pdfinfo_reports_pages_and_tags() {
    if !available("pdfinfo") {
        return;
    }
    let bytes = audit_trail_pdf(&sample()).unwrap();
    let pages = inspect(&bytes).unwrap().page_count;
    let (_dir, path) = write_temp(&bytes);
    let out = Command::new("pdfinfo").arg(&path).output().unwrap();
    assert!(out.status.success());
    let info = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field("Pages:"), pages.to_string(), "{info}");
    assert_eq!(field("Tagged:"), "yes", "{info}");
    assert_eq!(field("Page size:"), "595.28 x 841.89 pts (A4)", "{info}");
    assert!(
        field("Title:").starts_with("Audit trail: Framework agreement"),
        "{info}"
    );
    let out = Command::new("pdfinfo")
        .arg("-struct")
        .arg(&path)
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&out.stdout);
    for tag in [
        "Document",
        "H1 \"Audit trail\"",
        "H2 \"Timeline\"",
        "H3",
        "P",
        "Table",
        "THead",
        "TBody",
        "TR",
        "TH",
        "TD",
    ] {
        assert!(
            tree.lines().any(|l| l.trim_start().starts_with(tag)),
            "{tag} in\n{tree}"
        );
    }
}

#[test]
fn pdftoppm_renders_page_one() {
    if !available("pdftoppm") {
        return;
    }
    let bytes = audit_trail_pdf(&sample()).unwrap();
    let (dir, path) = write_temp(&bytes);
    let prefix = dir.path().join("page");
    let out = Command::new("pdftoppm")
        .args(["-r", "70", "-png", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&path)
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).trim().is_empty());
    let png = std::fs::read(prefix.with_extension("png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    // `SIGNEUR_WRITE_DOCS=1` refreshes the picture in the docs.
    if std::env::var_os("SIGNEUR_WRITE_DOCS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/evidence");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("audit-trail-page-1.png"), &png).unwrap();
    }
}
