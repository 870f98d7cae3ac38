//! An in-process SMTP server for tests: real SMTP over TCP on 127.0.0.1, enough for
//! `lettre`'s async client (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no
//! AUTH). Every accepted message is recorded and can be read back decoded
//! (`mail-parser`). A sink can be stopped — the port is closed at once, so later
//! connects are refused — and restarted on the same address with [`SmtpSink::start_on`],
//! to play an SMTP server that is down and comes back.

#![allow(dead_code)]

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use mail_parser::{HeaderValue, MessageParser, PartType};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::AbortHandle;

/// One message the sink accepted (recorded once the final `.` got `250 2.0.0 OK`).
#[derive(Clone, Debug)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`), without the angle brackets.
    pub from: String,
    /// The accepted envelope recipients (`RCPT TO`), in order, without angle brackets.
    pub to: Vec<String>,
    /// The message as sent after DATA, dot-unstuffed, CRLF line endings kept.
    pub raw: String,
}

impl Received {
    /// The decoded (RFC 2047) value of the first header with this name (case-insensitive),
    /// unfolded and trimmed. Address headers come back as text too, e.g.
    /// `Äänekoski <a@example.com>`.
    pub fn header(&self, name: &str) -> Option<String> {
        // Every header but the MIME ones as unstructured text: decodes encoded words
        // whatever the header, and keeps addresses, dates and ids as written.
        let parser = MessageParser::new()
            .with_mime_headers()
            .default_header_text();
        let message = parser.parse(self.raw.as_bytes())?;
        let header = message
            .headers()
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))?;
        let value = match header.value() {
            HeaderValue::Text(text) => text.to_string(),
            HeaderValue::TextList(list) => list.join(", "),
            HeaderValue::Empty => String::new(),
            // MIME headers (Content-Type, …): the raw value.
            _ => {
                let raw = &self.raw.as_bytes()
                    [header.offset_start() as usize..header.offset_end() as usize];
                String::from_utf8_lossy(raw)
                    .replace("\r\n", "")
                    .replace('\n', "")
            }
        };
        Some(value.trim().to_string())
    }

    /// The decoded text/plain body (the first one), with `\r\n` turned into `\n`. A message
    /// with no text/plain part gives its HTML body turned into text, or "" if none.
    pub fn text(&self) -> String {
        let Some(message) = MessageParser::default().parse(self.raw.as_bytes()) else {
            return String::new();
        };
        let text = message
            .text_bodies()
            .find_map(|part| match &part.body {
                PartType::Text(text) => Some(text.to_string()),
                _ => None,
            })
            .or_else(|| message.body_text(0).map(|t| t.into_owned()))
            .unwrap_or_default();
        text.replace("\r\n", "\n")
    }

    /// The decoded text/html body (the first one), with `\r\n` turned into `\n`; `None`
    /// when the message has no text/html part.
    pub fn html(&self) -> Option<String> {
        let message = MessageParser::default().parse(self.raw.as_bytes())?;
        message.html_bodies().find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.replace("\r\n", "\n")),
            _ => None,
        })
    }
}

/// A running SMTP sink. Dropping it stops it.
pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    /// Lowercased addresses whose RCPT TO gets a 550.
    rejected: Vec<String>,
    messages: Mutex<Vec<Received>>,
    /// The listener, shared with the accept task so that `stop()` can close it at once.
    listener: Mutex<Option<TcpListener>>,
    /// The accept task and the connection tasks, to abort on `stop()`.
    tasks: Mutex<Vec<AbortHandle>>,
    stopped: std::sync::atomic::AtomicBool,
}

impl SmtpSink {
    /// A sink on a free port of 127.0.0.1 that accepts every recipient.
    pub async fn start() -> SmtpSink {
        Self::bind("127.0.0.1:0".parse().unwrap(), &[]).await
    }

    /// A sink on a free port of 127.0.0.1 that answers `RCPT TO` of these addresses
    /// (case-insensitive) with `550 5.1.1 mailbox unavailable`.
    pub async fn start_rejecting(recipients: &[&str]) -> SmtpSink {
        Self::bind("127.0.0.1:0".parse().unwrap(), recipients).await
    }

    /// A sink that accepts everything on this address, e.g. the `addr` of a stopped sink.
    pub async fn start_on(addr: SocketAddr) -> SmtpSink {
        Self::bind(addr, &[]).await
    }

    /// [`SmtpSink::start_rejecting`] on this address (e.g. a stopped sink's).
    pub async fn start_rejecting_on(addr: SocketAddr, recipients: &[&str]) -> SmtpSink {
        Self::bind(addr, recipients).await
    }

    async fn bind(addr: SocketAddr, rejected: &[&str]) -> SmtpSink {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .expect("smtp sink: socket");
        socket.set_reuseaddr(true).expect("smtp sink: SO_REUSEADDR");
        socket
            .bind(addr)
            .unwrap_or_else(|e| panic!("smtp sink: bind {addr}: {e}"));
        let listener = socket.listen(128).expect("smtp sink: listen");
        let addr = listener.local_addr().expect("smtp sink: local_addr");
        let state = Arc::new(State {
            rejected: rejected.iter().map(|r| r.to_ascii_lowercase()).collect(),
            messages: Mutex::new(Vec::new()),
            listener: Mutex::new(Some(listener)),
            tasks: Mutex::new(Vec::new()),
            stopped: std::sync::atomic::AtomicBool::new(false),
        });
        let accept = tokio::spawn(accept_loop(state.clone()));
        state.tasks.lock().unwrap().push(accept.abort_handle());
        SmtpSink { addr, state }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://{}:{}", self.addr.ip(), self.addr.port())
    }

    /// The messages accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        self.state.messages.lock().unwrap().clone()
    }

    /// Waits up to 10 s for at least `n` messages, then returns what it has.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages();
            if messages.len() >= n || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes the listener (now: later connects are refused and the port is free for
    /// `start_on`) and aborts every connection.
    pub fn stop(&self) {
        self.state
            .stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        drop(self.state.listener.lock().unwrap().take());
        for task in self.state.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(state: Arc<State>) {
    loop {
        let accepted = poll_fn(|cx| match state.listener.lock().unwrap().as_ref() {
            Some(listener) => listener.poll_accept(cx).map(Some),
            None => Poll::Ready(None),
        })
        .await;
        let stream = match accepted {
            None => return,
            Some(Ok((stream, _))) => stream,
            // E.g. EMFILE, or a connection reset before it was accepted: keep serving.
            Some(Err(_)) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let task = tokio::spawn(serve(stream, state.clone()));
        let mut tasks = state.tasks.lock().unwrap();
        if state.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            task.abort();
            return;
        }
        tasks.retain(|t| !t.is_finished());
        tasks.push(task.abort_handle());
    }
}

/// The address in `<…>` after a `MAIL FROM:` / `RCPT TO:` verb, or the first word when
/// it has no brackets; `None` when there is none.
fn path_arg(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        Some(inner[..end].to_string())
    } else {
        rest.split_whitespace().next().map(str::to_string)
    }
}

/// `line` starts with `prefix`, ASCII case-insensitively; returns the rest.
fn strip_prefix_ci<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &line[prefix.len()..])
}

async fn serve(stream: TcpStream, state: Arc<State>) {
    let _ = session(stream, &state).await;
}

async fn session(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write
        .write_all(b"220 localhost ESMTP Signeur test sink\r\n")
        .await?;

    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if read.read_until(b'\n', &mut buf).await? == 0 {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\r', '\n']);
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();

        let reply: &str = match verb.as_str() {
            "EHLO" => {
                from = None;
                to.clear();
                "250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            }
            "HELO" => {
                from = None;
                to.clear();
                "250 localhost\r\n"
            }
            "MAIL" => match strip_prefix_ci(line, "MAIL FROM:").and_then(path_arg) {
                _ if from.is_some() => "503 5.5.1 Error: nested MAIL command\r\n",
                Some(sender) => {
                    from = Some(sender);
                    "250 2.1.0 OK\r\n"
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n",
            },
            "RCPT" => match strip_prefix_ci(line, "RCPT TO:").and_then(path_arg) {
                _ if from.is_none() => "503 5.5.1 Error: need MAIL command\r\n",
                Some(rcpt) if state.rejected.contains(&rcpt.to_ascii_lowercase()) => {
                    "550 5.1.1 mailbox unavailable\r\n"
                }
                Some(rcpt) => {
                    to.push(rcpt);
                    "250 2.1.5 OK\r\n"
                }
                None => "501 5.5.4 Syntax: RCPT TO:<address>\r\n",
            },
            "DATA" if from.is_none() || to.is_empty() => "503 5.5.1 Error: need RCPT command\r\n",
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut raw = Vec::new();
                loop {
                    buf.clear();
                    if read.read_until(b'\n', &mut buf).await? == 0 {
                        // The client went away mid-message: nothing is recorded.
                        return Ok(());
                    }
                    if buf == b".\r\n" || buf == b".\n" {
                        break;
                    }
                    let line = buf.strip_prefix(b".").unwrap_or(&buf[..]);
                    raw.extend_from_slice(line);
                }
                let received = Received {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    raw: String::from_utf8_lossy(&raw).into_owned(),
                };
                state.messages.lock().unwrap().push(received);
                "250 2.0.0 OK\r\n"
            }
            "RSET" => {
                from = None;
                to.clear();
                "250 2.0.0 OK\r\n"
            }
            "NOOP" => "250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                write.shutdown().await?;
                return Ok(());
            }
            _ => "500 5.5.2 Error: command not recognized\r\n",
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use lettre::message::{Mailbox, MultiPart};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    fn transport(sink_addr: SocketAddr) -> AsyncSmtpTransport<Tokio1Executor> {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(sink_addr.port())
            .timeout(Some(Duration::from_secs(5)))
            .build()
    }

    fn message(to: &str, subject: &str) -> Message {
        Message::builder()
            .from("Signeur <noreply@signeur.test>".parse::<Mailbox>().unwrap())
            .to(to.parse::<Mailbox>().unwrap())
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(
                "Hei Äänekoski,\nplease sign the document.\n".to_string(),
                "<p>Hei Äänekoski,</p><p>please <a href=\"https://s.test/x\">sign</a>.</p>"
                    .to_string(),
            ))
            .unwrap()
    }

    fn is_connection_refused(e: &lettre::transport::smtp::Error) -> bool {
        let mut source = std::error::Error::source(e);
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                return io.kind() == std::io::ErrorKind::ConnectionRefused;
            }
            source = err.source();
        }
        false
    }

    #[tokio::test]
    async fn smtp_sink_receives_a_decoded_alternative_message() {
        let sink = SmtpSink::start().await;
        assert_eq!(sink.url(), format!("smtp://127.0.0.1:{}", sink.addr.port()));
        let mailer = transport(sink.addr);
        mailer
            .send(message(
                "Ärje Signer <arje@example.com>",
                "Allekirjoita: Äänekoski",
            ))
            .await
            .expect("send");

        let got = sink.wait_for(1).await;
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!(m.from, "noreply@signeur.test");
        assert_eq!(m.to, vec!["arje@example.com".to_string()]);
        assert_eq!(
            m.header("subject").as_deref(),
            Some("Allekirjoita: Äänekoski")
        );
        assert_eq!(
            m.header("To").as_deref(),
            Some("Ärje Signer <arje@example.com>")
        );
        assert!(m.header("x-missing").is_none());
        assert_eq!(m.text(), "Hei Äänekoski,\nplease sign the document.\n");
        assert_eq!(
            m.html().as_deref(),
            Some("<p>Hei Äänekoski,</p><p>please <a href=\"https://s.test/x\">sign</a>.</p>")
        );
        assert!(m.raw.contains("\r\n\r\n"), "raw keeps CRLF: {:?}", m.raw);
    }

    #[tokio::test]
    async fn smtp_sink_unstuffs_dots_and_serves_connections_concurrently() {
        let sink = SmtpSink::start().await;
        // A client that connected and idles must not hold up another one.
        let idle = TcpStream::connect(sink.addr).await.unwrap();
        let body = ".leading dot\n..two dots\n.\nend\n";
        let msg = Message::builder()
            .from("a@signeur.test".parse::<Mailbox>().unwrap())
            .to("b@example.com".parse::<Mailbox>().unwrap())
            .subject("dots")
            .body(body.to_string())
            .unwrap();
        transport(sink.addr).send(msg).await.expect("send");
        let got = sink.wait_for(1).await;
        // lettre always ends DATA with "\r\n.\r\n", so a single-part body that already
        // ends with a line break arrives with one more.
        assert_eq!(got[0].text(), format!("{body}\n"));
        assert!(got[0].html().is_none());
        drop(idle);
    }

    #[tokio::test]
    async fn smtp_sink_speaks_plain_smtp() {
        let sink = SmtpSink::start().await;
        let stream = TcpStream::connect(sink.addr).await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let mut line = String::new();
        let mut expect = async |prefix: &str| {
            line.clear();
            read.read_line(&mut line).await.unwrap();
            assert!(line.starts_with(prefix), "{line:?} !~ {prefix:?}");
        };
        expect("220 ").await;
        for (cmd, reply) in [
            ("HELO me", "250 "),
            ("NOOP", "250 "),
            ("FROB", "500 "),
            ("RCPT TO:<x@example.com>", "503 "),
            ("mail from:<a@b.test> BODY=8BITMIME", "250 "),
            ("RSET", "250 "),
            ("MAIL FROM:<>", "250 "),
            ("RCPT TO:<x@example.com>", "250 "),
            ("DATA", "354 "),
            ("Subject: hi\r\n\r\nbody\r\n.", "250 2.0.0"),
            ("QUIT", "221 "),
        ] {
            write
                .write_all(format!("{cmd}\r\n").as_bytes())
                .await
                .unwrap();
            expect(reply).await;
        }
        let got = sink.messages();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].from, "");
        assert_eq!(got[0].to, vec!["x@example.com".to_string()]);
        assert_eq!(got[0].raw, "Subject: hi\r\n\r\nbody\r\n");
        assert_eq!(got[0].header("SUBJECT").as_deref(), Some("hi"));
    }

    #[tokio::test]
    async fn smtp_sink_rejected_recipient_is_a_permanent_error() {
        let sink = SmtpSink::start_rejecting(&["Gone@Example.com"]).await;
        let err = transport(sink.addr)
            .send(message("gone@example.com", "Allekirjoita: Äänekoski"))
            .await
            .expect_err("rejected recipient");
        assert!(err.is_permanent(), "{err:?}");
        assert!(sink.messages().is_empty());

        // Other recipients still get through.
        transport(sink.addr)
            .send(message("ok@example.com", "ok"))
            .await
            .expect("send");
        assert_eq!(sink.wait_for(1).await.len(), 1);
    }

    #[tokio::test]
    async fn smtp_sink_stop_refuses_and_start_on_comes_back() {
        let sink = SmtpSink::start().await;
        let addr = sink.addr;
        let mailer = transport(addr);
        mailer
            .send(message("a@example.com", "one"))
            .await
            .expect("send");
        assert_eq!(sink.wait_for(1).await.len(), 1);

        sink.stop();
        let err = mailer
            .send(message("a@example.com", "two"))
            .await
            .expect_err("the sink is down");
        assert!(is_connection_refused(&err), "{err:?}");
        assert!(TcpStream::connect(addr).await.is_err());
        assert_eq!(sink.messages().len(), 1);

        let back = SmtpSink::start_on(addr).await;
        assert_eq!(back.addr, addr);
        mailer
            .send(message("a@example.com", "three"))
            .await
            .expect("send after restart");
        let got = back.wait_for(1).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].header("Subject").as_deref(), Some("three"));
    }
}
