//! Email: the transports behind one small type, and the localized messages.
//!
//! `Mailer::Smtp` talks to a real server (lettre; STARTTLS when offered, `smtps://` for TLS
//! from the start, credentials in the URL, pooled connections); `Mailer::File` writes each
//! message as an `.eml` file into the outbox directory, so the embedded default works with
//! no mail server; `Mailer::Memory` keeps them for unit tests.
//!
//! Message texts live in Fluent files (`locales/{en,fi,fr,de}/signeur.ftl`, read through
//! [`crate::i18n`], which the signer pages share), the layout in minijinja templates (`templates/*.txt`, `*.html`; HTML is autoescaped). The recipient
//! address is the only value from a request that goes into a header.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{Environment, Value};

use signeur_core::Locale;

use crate::i18n::translate;

/// Where messages go.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(PathBuf),
    Memory(Arc<Mutex<Vec<Message>>>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp(_) => f.write_str("Mailer::Smtp"),
            Mailer::File(p) => write!(f, "Mailer::File({})", p.display()),
            Mailer::Memory(_) => f.write_str("Mailer::Memory"),
        }
    }
}

/// A failed delivery attempt.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct MailError {
    /// The server refused for good (5xx, invalid recipient): retrying cannot help.
    pub permanent: bool,
    pub message: String,
}

impl From<SmtpError> for MailError {
    fn from(e: SmtpError) -> Self {
        MailError {
            permanent: e.is_permanent(),
            message: e.to_string(),
        }
    }
}

/// How the server sends mail.
#[derive(Clone, Debug)]
pub struct MailSettings {
    pub mailer: Mailer,
    pub from: Mailbox,
    /// Per SMTP conversation; also the budget for the invitations inside a create.
    pub timeout: Duration,
    /// Base of the links in messages, without a trailing slash.
    pub public_url: String,
}

impl MailSettings {
    /// Messages kept in memory (tests).
    pub fn memory(public_url: &str) -> MailSettings {
        MailSettings {
            mailer: Mailer::Memory(Arc::default()),
            from: default_from(),
            timeout: Duration::from_secs(10),
            public_url: public_url.trim_end_matches('/').to_string(),
        }
    }
}

pub fn default_from() -> Mailbox {
    Mailbox::new(
        Some("Signeur".into()),
        lettre::Address::new("no-reply", "localhost").expect("a valid address"),
    )
}

/// `SIGNEUR_SMTP_URL` as lettre reads it. `smtp://` uses STARTTLS when the server offers it,
/// but with a user or password in the URL TLS is required: credentials never travel over an
/// unencrypted connection unless the URL says `?tls=none` explicitly. `smtps://` is TLS from
/// the first byte.
fn lettre_url(raw: &str) -> Result<String, String> {
    let mut url = url::Url::parse(raw).map_err(|e| format!("SIGNEUR_SMTP_URL: {e}"))?;
    if url.scheme() != "smtp" {
        return Ok(raw.to_string());
    }
    let credentials = !url.username().is_empty() || url.password().is_some();
    let given = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let tls = match given.as_deref() {
        Some("none") => None,
        Some("required") => Some("required"),
        None | Some("opportunistic") if credentials => Some("required"),
        None | Some("opportunistic") => Some("opportunistic"),
        Some(other) => {
            return Err(format!(
                "SIGNEUR_SMTP_URL: tls={other} is not one of required, opportunistic or none"
            ));
        }
    };
    let others: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "tls")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    if !others.is_empty() || tls.is_some() {
        let mut q = url.query_pairs_mut();
        q.extend_pairs(others);
        if let Some(tls) = tls {
            q.append_pair("tls", tls);
        }
    }
    Ok(url.to_string())
}

impl Mailer {
    /// `smtp://[user:pass@]host:port` (STARTTLS when offered; `?tls=required` to insist; with
    /// credentials TLS is required unless `?tls=none`),
    /// `smtps://…` (TLS from the start); without a URL, `.eml` files into `outbox`.
    pub fn from_config(
        smtp_url: Option<&str>,
        timeout: Duration,
        outbox: PathBuf,
    ) -> Result<Mailer, String> {
        let Some(url) = smtp_url.filter(|u| !u.is_empty()) else {
            return Ok(Mailer::File(outbox));
        };
        let url = lettre_url(url)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .map_err(|e| format!("SIGNEUR_SMTP_URL: {e}"))?
            .timeout(Some(timeout))
            .build();
        Ok(Mailer::Smtp(transport))
    }

    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        match self {
            Mailer::Smtp(t) => {
                t.send(message).await?;
                Ok(())
            }
            Mailer::File(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(transient)?;
                let id = AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .map_err(transient)?;
                tracing::info!(file = %dir.join(format!("{id}.eml")).display(), "email written to the outbox");
                Ok(())
            }
            Mailer::Memory(m) => {
                m.lock().unwrap_or_else(|p| p.into_inner()).push(message);
                Ok(())
            }
        }
    }

    /// Messages kept by a memory mailer.
    pub fn sent(&self) -> Vec<Message> {
        match self {
            Mailer::Memory(m) => m.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            _ => Vec::new(),
        }
    }
}

fn transient(e: impl std::fmt::Display) -> MailError {
    MailError {
        permanent: false,
        message: e.to_string(),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in [
        (
            "invitation.txt",
            include_str!("../templates/invitation.txt"),
        ),
        (
            "invitation.html",
            include_str!("../templates/invitation.html"),
        ),
        ("notice.txt", include_str!("../templates/notice.txt")),
        ("notice.html", include_str!("../templates/notice.html")),
    ] {
        env.add_template(name, source)
            .expect("templates are valid (a unit test renders each)");
    }
    env.add_function("t", crate::i18n::t);
    env
}

static ENV: std::sync::LazyLock<Environment<'static>> = std::sync::LazyLock::new(environment);

/// Renders `{name}.txt` and `{name}.html` with `ctx` (which must carry `lang`).
pub fn render(name: &str, ctx: Value) -> Result<(String, String), String> {
    let text = ENV
        .get_template(&format!("{name}.txt"))
        .and_then(|t| t.render(&ctx))
        .map_err(|e| e.to_string())?;
    let html = ENV
        .get_template(&format!("{name}.html"))
        .and_then(|t| t.render(&ctx))
        .map_err(|e| e.to_string())?;
    Ok((text, html))
}

/// An invitation (first or resent) to one signer.
pub struct Invitation<'a> {
    pub locale: Locale,
    pub name: Option<&'a str>,
    pub org: &'a str,
    pub title: &'a str,
    pub message: Option<&'a str>,
    pub link: &'a str,
    pub code: &'a str,
    pub expires: &'a str,
    pub resent: bool,
    /// The branding colour (`#rrggbb`) of the HTML part's button.
    pub color: Option<&'a str>,
}

/// Subject, text and HTML of an invitation.
pub fn render_invitation(i: &Invitation<'_>) -> Result<(String, String, String), String> {
    let subject = translate(
        i.locale,
        "invitation-subject",
        &[("org", i.org.to_string())],
    )?;
    let ctx = minijinja::context! {
        lang => i.locale.as_str(), name => i.name, org => i.org, title => i.title, message => i.message,
        link => i.link, code => i.code, expires => i.expires, resent => i.resent, color => i.color,
    };
    let (text, html) = render("invitation", ctx)?;
    Ok((subject, text, html))
}

/// The notices a signer may receive besides invitations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// Everyone signed; links to the sealed document.
    Completed,
    /// A signer declined; the request is closed.
    Declined,
    /// The sender cancelled.
    Cancelled,
    /// Still waiting for this signer.
    Reminder,
}

impl NoticeKind {
    pub const ALL: &'static [NoticeKind] = &[
        NoticeKind::Completed,
        NoticeKind::Declined,
        NoticeKind::Cancelled,
        NoticeKind::Reminder,
    ];

    fn key(self) -> &'static str {
        match self {
            NoticeKind::Completed => "completed",
            NoticeKind::Declined => "declined",
            NoticeKind::Cancelled => "cancelled",
            NoticeKind::Reminder => "reminder",
        }
    }
}

pub struct Notice<'a> {
    pub kind: NoticeKind,
    pub locale: Locale,
    pub name: Option<&'a str>,
    pub org: &'a str,
    pub title: &'a str,
    /// The document (completed) or the signing page (reminder).
    pub link: Option<&'a str>,
    pub reason: Option<&'a str>,
    /// Who declined.
    pub signer: Option<&'a str>,
    pub expires: &'a str,
    /// The branding colour (`#rrggbb`) of the HTML part's button.
    pub color: Option<&'a str>,
}

/// Subject, text and HTML of a notice.
pub fn render_notice(n: &Notice<'_>) -> Result<(String, String, String), String> {
    let key = n.kind.key();
    let subject = translate(
        n.locale,
        &format!("{key}-subject"),
        &[("org", n.org.to_string())],
    )?;
    let link_label = if n.kind == NoticeKind::Completed {
        "completed-download"
    } else {
        "invitation-open"
    };
    let ctx = minijinja::context! {
        lang => n.locale.as_str(), kind => key, name => n.name, org => n.org, title => n.title, link => n.link,
        link_label => link_label, reason => n.reason, signer => n.signer.unwrap_or("—"), expires => n.expires,
        color => n.color,
    };
    let (text, html) = render("notice", ctx)?;
    Ok((subject, text, html))
}

/// A message with a plain-text and an HTML part.
pub fn build(
    from: &Mailbox,
    to: &str,
    subject: &str,
    text: String,
    html: String,
) -> Result<Message, MailError> {
    let to: Mailbox = to.parse().map_err(|e| MailError {
        permanent: true,
        message: format!("invalid recipient: {e}"),
    })?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| MailError {
            permanent: true,
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that offers AUTH but no STARTTLS, recording every command it gets.
    async fn plaintext_auth_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<String>>)
    {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut commands = Vec::new();
            let Ok(Ok((stream, _))) =
                tokio::time::timeout(Duration::from_secs(5), listener.accept()).await
            else {
                return commands;
            };
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let _ = write.write_all(b"220 localhost ESMTP\r\n").await;
            while let Ok(Ok(Some(line))) =
                tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await
            {
                let reply: &[u8] = if line.starts_with("EHLO") {
                    b"250-localhost\r\n250 AUTH PLAIN LOGIN\r\n"
                } else if line.starts_with("AUTH") {
                    b"235 2.7.0 Authentication successful\r\n"
                } else if line.starts_with("QUIT") {
                    b"221 bye\r\n"
                } else {
                    b"250 OK\r\n"
                };
                commands.push(line);
                if write.write_all(reply).await.is_err() || commands.len() > 10 {
                    break;
                }
            }
            commands
        });
        (addr, server)
    }

    fn test_message() -> Message {
        build(
            &default_from(),
            "a@example.com",
            "s",
            "t".into(),
            "<p>t</p>".into(),
        )
        .unwrap()
    }

    #[test]
    fn smtp_urls_require_tls_with_credentials() {
        let u = |raw: &str| lettre_url(raw).unwrap();
        assert_eq!(u("smtp://mx:25"), "smtp://mx:25?tls=opportunistic");
        assert_eq!(u("smtp://u:p@mx:25"), "smtp://u:p@mx:25?tls=required");
        assert_eq!(
            u("smtp://u:p@mx:25?tls=opportunistic"),
            "smtp://u:p@mx:25?tls=required"
        );
        assert_eq!(u("smtp://u:p@mx:25?tls=none"), "smtp://u:p@mx:25");
        assert_eq!(u("smtps://u:p@mx:465"), "smtps://u:p@mx:465");
        assert!(lettre_url("smtp://mx:25?tls=maybe").is_err());
    }

    #[tokio::test]
    async fn credentials_never_travel_over_an_unencrypted_connection() {
        let (addr, server) = plaintext_auth_server().await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("smtp://user:secret@{addr}");
        let mailer =
            Mailer::from_config(Some(&url), Duration::from_secs(3), dir.path().into()).unwrap();
        assert!(mailer.send(test_message()).await.is_err());
        let commands = server.await.unwrap();
        assert!(
            commands.iter().all(|c| !c.starts_with("AUTH")),
            "credentials sent in the clear: {commands:?}"
        );
    }

    #[tokio::test]
    async fn tls_none_is_the_explicit_way_to_send_credentials_in_the_clear() {
        let (addr, server) = plaintext_auth_server().await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("smtp://user:secret@{addr}?tls=none");
        let mailer =
            Mailer::from_config(Some(&url), Duration::from_secs(3), dir.path().into()).unwrap();
        let _ = mailer.send(test_message()).await;
        let commands = server.await.unwrap();
        assert!(
            commands.iter().any(|c| c.starts_with("AUTH")),
            "{commands:?}"
        );
    }

    const KEYS: &[&str] = &[
        "invitation-subject",
        "greeting",
        "greeting-anonymous",
        "invitation-intro",
        "invitation-message",
        "invitation-open",
        "invitation-code",
        "invitation-code-hint",
        "invitation-expires",
        "footer",
        "test-subject",
        "test-body",
        "invitation-resent",
        "notice-reason",
        "completed-subject",
        "completed-body",
        "completed-download",
        "declined-subject",
        "declined-body",
        "cancelled-subject",
        "cancelled-body",
        "reminder-subject",
        "reminder-body",
    ];

    #[test]
    fn every_key_exists_in_every_locale() {
        for locale in Locale::ALL {
            let path = format!(
                "{}/locales/{}/signeur.ftl",
                env!("CARGO_MANIFEST_DIR"),
                locale.as_str()
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let ids: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
                .collect();
            for key in KEYS {
                assert!(ids.contains(key), "{key} missing in {path}");
            }
            for key in crate::i18n::PAGE_KEYS {
                assert!(ids.contains(key), "{key} missing in {path}");
            }
            for id in &ids {
                assert!(
                    KEYS.contains(id) || crate::i18n::PAGE_KEYS.contains(id),
                    "{id} in {path} is not a known key"
                );
            }
        }
    }

    /// Every message in every language, committed under `src/snapshots/` (insta).
    #[test]
    fn snapshots_of_every_message() {
        for locale in Locale::ALL {
            for resent in [false, true] {
                let (subject, text, html) = render_invitation(&Invitation {
                    locale: *locale,
                    name: Some("Anna Buyer"),
                    org: "Acme Oy",
                    title: "Order Agreement #1234",
                    message: Some("Please review and sign."),
                    link: "https://sign.example.com/sign/TOKEN",
                    code: "012345",
                    expires: "2026-12-25",
                    resent,
                    color: None,
                })
                .unwrap();
                let name = format!(
                    "invitation{}_{}",
                    if resent { "_resent" } else { "" },
                    locale.as_str()
                );
                insta::assert_snapshot!(
                    name,
                    format!("Subject: {subject}\n\n{text}\n----- html -----\n{html}")
                );
            }
            for kind in NoticeKind::ALL {
                let (subject, text, html) = render_notice(&Notice {
                    kind: *kind,
                    locale: *locale,
                    name: Some("Anna Buyer"),
                    org: "Acme Oy",
                    title: "Order Agreement #1234",
                    link: matches!(kind, NoticeKind::Completed | NoticeKind::Reminder)
                        .then_some("https://sign.example.com/x"),
                    reason: (*kind != NoticeKind::Completed && *kind != NoticeKind::Reminder)
                        .then_some("Wrong amount"),
                    signer: Some("Bob Seller"),
                    expires: "2026-12-25",
                    color: None,
                })
                .unwrap();
                let name = format!("{}_{}", kind.key(), locale.as_str());
                insta::assert_snapshot!(
                    name,
                    format!("Subject: {subject}\n\n{text}\n----- html -----\n{html}")
                );
            }
        }
    }

    /// An organization's branding: its name speaks (subject, text, footer), its colour is
    /// the HTML button's.
    #[test]
    fn snapshot_of_a_branded_invitation() {
        let (subject, text, html) = render_invitation(&Invitation {
            locale: Locale::En,
            name: Some("Anna Buyer"),
            org: "Acme Signing Desk",
            title: "Order Agreement #1234",
            message: None,
            link: "https://sign.example.com/sign/TOKEN",
            code: "012345",
            expires: "2026-12-25",
            resent: false,
            color: Some("#0a7f3c"),
        })
        .unwrap();
        assert!(html.contains("background: #0a7f3c;"), "{html}");
        insta::assert_snapshot!(
            "invitation_branded_en",
            format!("Subject: {subject}\n\n{text}\n----- html -----\n{html}")
        );
    }

    #[test]
    fn invitation_renders_in_each_language_and_escapes_html() {
        for locale in Locale::ALL {
            let ctx = minijinja::context! {
                lang => locale.as_str(), name => "Anna <b>", org => "Acme & Co", title => "Deal \"42\"",
                message => "Please <sign>", link => "http://127.0.0.1/sign/abc", code => "012345",
                expires => "2026-12-25",
            };
            let (text, html) = render("invitation", ctx).unwrap();
            assert!(
                text.contains("012345") && text.contains("http://127.0.0.1/sign/abc"),
                "{text}"
            );
            assert!(text.contains("Anna <b>"), "plain text is not escaped");
            assert!(
                html.contains("Anna &lt;b&gt;")
                    && html.contains("Please &lt;sign&gt;")
                    && !html.contains("<sign>")
            );
            assert!(html.contains(&format!("lang=\"{}\"", locale.as_str())));
            let expected = translate(*locale, "invitation-open", &[]).unwrap();
            assert!(text.contains(&expected), "{locale}: {text}");
        }
        let fi = translate(Locale::Fi, "invitation-subject", &[("org", "Acme".into())]).unwrap();
        assert_eq!(fi, "Acme pyytää sinua allekirjoittamaan asiakirjan");
    }
}
