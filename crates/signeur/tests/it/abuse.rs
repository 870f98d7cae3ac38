//! Staying up under abuse (issue 16): connections that dribble their headers are closed
//! after the header timeout while normal requests go on being answered; bodies over their
//! route's limit are refused before they are read; requests over the concurrency cap wait
//! their turn, and only one that waited past the request timeout is refused; a page preview
//! that failed is not rendered again on every reload.
//!
//! These are about sockets and wall-clock timeouts: short timeouts are configured (seconds,
//! not the defaults' half minutes) and the waits are tokio's.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use signeur_http::ServeLimits;

use crate::support::*;

fn addr(app: &TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().unwrap()
}

/// Reads until the server closes the connection (or `within` passes: then None).
async fn read_to_close(
    stream: &mut (impl AsyncReadExt + Unpin),
    within: Duration,
) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn connections_that_dribble_headers_are_closed_and_others_are_served() {
    signeur_http::serve::raise_open_files_limit();
    let header_timeout = Duration::from_secs(2);
    let app = TestApp::start_with_limits(ServeLimits {
        header_timeout,
        ..ServeLimits::default()
    })
    .await;
    let addr = addr(&app);

    const SLOW: usize = 500;
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..SLOW {
        slow.spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let opened = Instant::now();
            let (mut rd, mut wr) = stream.into_split();
            let _ = wr
                .write_all(b"GET /api/v1/signatures HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await;
            // One more header line every 250 ms, forever: only the server can end this.
            let dribble = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if wr.write_all(b"X-Slow: 1\r\n").await.is_err() {
                        break;
                    }
                }
            });
            let closed = read_to_close(&mut rd, Duration::from_secs(20)).await;
            dribble.abort();
            closed.map(|_| opened.elapsed())
        });
    }

    // Meanwhile a normal API request answers promptly, again and again.
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < header_timeout + Duration::from_secs(2) {
        let t = Instant::now();
        let res =
            tokio::time::timeout(Duration::from_secs(1), app.get("/api/v1/signatures").send())
                .await
                .expect("a normal request answers within a second while 500 connections dribble")
                .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(t.elapsed() < Duration::from_secs(1));
        served += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served >= 5, "{served}");

    let mut held = 0;
    let mut too_early = 0;
    while let Some(outcome) = slow.join_next().await {
        match outcome.unwrap() {
            None => held += 1,
            // Closed by the header timeout, not before (generously: the timer starts when
            // the server begins reading, at most a moment after the client connected).
            Some(after) if after < header_timeout - Duration::from_millis(500) => too_early += 1,
            Some(_) => {}
        }
    }
    assert_eq!(held, 0, "connections still open 20 s after they began");
    assert_eq!(too_early, 0, "connections closed before the header timeout");
}

#[tokio::test]
async fn a_signer_form_over_one_megabyte_is_refused_before_it_is_read() {
    let app = TestApp::start().await;
    let v = app.create(&seed_body()).await;
    let sign_url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let path = sign_url.trim_start_matches(&app.base).to_string();

    // 4 MB announced (over the form's 1 MB, under the old 16 MB), 1 KB sent: the 413 comes
    // without the rest.
    let mut stream = TcpStream::connect(addr(&app)).await.unwrap();
    let head = format!(
        "POST {path}/sign HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        4 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'a'; 1024]).await.unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(10))
        .await
        .expect("answered (and closed) without waiting for the rest of the body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(answer.contains("text/html"), "{answer}");
    assert!(answer.contains("1 MB"), "{answer}");

    // Without a Content-Length the body is counted as it streams.
    let (mut rd, mut wr) = TcpStream::connect(addr(&app)).await.unwrap().into_split();
    let head = format!(
        "POST {path}/sign HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    wr.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        let chunk = [b'a'; 64 * 1024];
        for _ in 0..18 {
            // The server answers and closes before the last chunks: write errors are fine.
            let sent = async {
                wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                wr.write_all(&chunk).await?;
                wr.write_all(b"\r\n").await
            };
            if sent.await.is_err() {
                break;
            }
        }
    });
    let answer = read_to_close(&mut rd, Duration::from_secs(10))
        .await
        .expect("answered");
    writer.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");

    // A form under the limit still reaches the page (which refuses it for its own reasons).
    let res = app
        .client
        .post(format!("{sign_url}/sign"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 512 * 1024])
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn api_bodies_are_limited_per_route() {
    let app = TestApp::start().await;
    // 100 KB to a route that takes 64 KB.
    let padding = "x".repeat(100 * 1024);
    let res = app
        .post("/api/v1/webhook-endpoints")
        .json(&json!({"url": "https://example.com/hook", "description": padding}))
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_of(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert!(message.contains("64 KB"), "{message}");

    // Settings take 512 KB (the logo): 300 KB is read (and judged on its content), 600 KB not.
    let patch = |bytes: usize| {
        app.client
            .patch(app.url("/api/v1/settings"))
            .bearer_auth(&app.key)
            .header("content-type", "application/json")
            .body(format!("{{\"pad\": \"{}\"}}", "x".repeat(bytes)))
            .send()
    };
    let res = patch(300 * 1024).await.unwrap();
    assert_ne!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let res = patch(600 * 1024).await.unwrap();
    let (status, code, message) = error_of(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert!(message.contains("512 KB"), "{message}");

    // The create takes a 10 MB PDF in base64 (`api::a_ten_megabyte_pdf_is_accepted`); a body
    // past what any valid create needs is refused from its Content-Length.
    let res = app
        .post("/api/v1/signatures")
        .header("content-type", "application/json")
        .body(vec![b' '; signeur_http::limits::CREATE_BODY_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "payload_too_large");
}

// Two workers: the test's own connects are not queued behind the server's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_do_not_hold_their_connections() {
    let header_timeout = Duration::from_secs(2);
    let app = TestApp::start_with_limits(ServeLimits {
        header_timeout,
        max_connections: 4,
        ..ServeLimits::default()
    })
    .await;
    let addr = addr(&app);

    // Every connection the server allows asks for the OpenAPI document (about 100 KB) 100
    // times over (10 MB, more than the kernel's buffers hold), pipelined, with a small
    // receive buffer, and never reads an answer: the server's writes stop making progress.
    let mut hogs = Vec::new();
    for _ in 0..4 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let request = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(100);
        stream.write_all(&request).await.unwrap();
        hogs.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A fifth client (a fresh one: nothing pooled) is accepted once the stalled writes
    // have timed out.
    let client = http_builder().build().unwrap();
    let res = tokio::time::timeout(
        header_timeout + Duration::from_secs(3),
        client.get(app.url("/healthz")).send(),
    )
    .await
    .expect("a fifth connection is served after the write timeout")
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The server closed the stalled connections (what is buffered is read, then the end).
    for mut hog in hogs {
        read_to_close(&mut hog, Duration::from_secs(10))
            .await
            .expect("closed by the server");
    }
}

/// Sends a PATCH /api/v1/settings whose body (`{`, 64 KB of spaces, `}`) ends `after` the
/// headers: past the read-ahead, so the request holds a slot while it waits for the `}`.
async fn slow_patch(addr: SocketAddr, key: String, after: Duration) -> String {
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    let spaces = signeur_http::limits::READ_AHEAD_BYTES;
    let head = format!(
        "PATCH /api/v1/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{{}",
        spaces + 2,
        " ".repeat(spaces)
    );
    wr.write_all(head.as_bytes()).await.unwrap();
    // The answer is read while the rest is still to come (the server may answer first).
    let writer = tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = wr.write_all(b"}").await;
        wr
    });
    let answer = read_to_close(&mut rd, Duration::from_secs(20))
        .await
        .expect("answered");
    writer.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn bodies_dribbled_from_the_start_take_no_slot() {
    let app = TestApp::start_with_limits(ServeLimits {
        max_concurrent_requests: 4,
        ..ServeLimits::default()
    })
    .await;
    let addr = addr(&app);
    // As many signer forms as there are slots, announced at 1 MB, arriving a byte a second.
    let mut dribblers = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"POST /sign/some-token/verify HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                  Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1048576\r\n\r\na",
            )
            .await
            .unwrap();
        dribblers.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if stream.write_all(b"a").await.is_err() {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The API still answers at once (not after the 60 s request timeout).
    let res = tokio::time::timeout(Duration::from_secs(3), app.get("/api/v1/signatures").send())
        .await
        .expect("a slot was free")
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    for d in dribblers {
        d.abort();
    }
}

#[tokio::test]
async fn requests_over_the_cap_wait_and_only_a_wait_past_the_timeout_is_refused() {
    let app = TestApp::start_with_limits(ServeLimits {
        max_concurrent_requests: 2,
        request_timeout: Duration::from_secs(3),
        ..ServeLimits::default()
    })
    .await;
    let addr = addr(&app);
    // Two slow requests take both slots until t = 2 s (within their 3 s); two more queue
    // behind them and then hold the slots until t = 4.2 s (2.2 s after they got them).
    let first: Vec<_> = (0..2)
        .map(|_| tokio::spawn(slow_patch(addr, app.key.clone(), Duration::from_secs(2))))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second: Vec<_> = (0..2)
        .map(|_| tokio::spawn(slow_patch(addr, app.key.clone(), Duration::from_secs(4))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A request at t = 0.5 s waits behind all four: its 3 s pass at 3.5 s, before a slot
    // frees at 4.2 s.
    let res = app.get("/api/v1/signatures").send().await.unwrap();
    let retry_after = res.headers().get("retry-after").cloned();
    let (status, code, _) = error_of(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
    );
    assert!(
        retry_after.is_some_and(|v| v.to_str().unwrap().parse::<u64>().is_ok()),
        "Retry-After in seconds"
    );
    // The probes never queue.
    let res = tokio::time::timeout(
        Duration::from_secs(1),
        app.client.get(app.url("/healthz")).send(),
    )
    .await
    .expect("healthz answers at once")
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Everyone who got a slot in time was served.
    for task in first.into_iter().chain(second) {
        let answer = task.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    }
    let res = app.get("/api/v1/signatures").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_a_408() {
    let app = TestApp::start_with_limits(ServeLimits {
        request_timeout: Duration::from_secs(1),
        ..ServeLimits::default()
    })
    .await;
    let answer = slow_patch(addr(&app), app.key.clone(), Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    // Not half-written: the settings are as they were.
    let v: Value = app.get_json("/api/v1/settings").await;
    assert_eq!(v["allowed_return_urls"], json!([]));
}

/// ONE_PAGE with a page 99,999 points tall: accepted at upload, too large to preview.
fn unpreviewable_pdf() -> Vec<u8> {
    let text = ONE_PAGE.to_vec();
    let from = b"MediaBox [0 0 612 792]";
    let to = b"MediaBox [0 0 1 99999]";
    let at = text
        .windows(from.len())
        .position(|w| w == from)
        .expect("the fixture's MediaBox");
    let mut pdf = text;
    pdf[at..at + to.len()].copy_from_slice(to);
    pdf
}

#[tokio::test]
async fn a_failed_preview_is_not_rendered_again_on_reload() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["document"]["content_base64"] = json!(b64(&unpreviewable_pdf()));
    let v = app.create(&body).await;
    let sign_url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let browser = http_builder().cookie_store(true).build().unwrap();
    assert_eq!(browser.get(&sign_url).send().await.unwrap().status(), 200);

    let renders = || app.service.metrics.preview_renders_total();
    assert_eq!(renders(), 0);
    let res = browser
        .get(format!("{sign_url}/page/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(renders(), 1);
    for _ in 0..5 {
        let res = browser
            .get(format!("{sign_url}/page/1"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(renders(), 1, "reloads are answered from memory");

    // A minute later (the injectable clock) the page is tried again.
    app.advance(chrono::Duration::seconds(
        signeur_service::previews::FAILED_RENDER_TTL_SECS + 1,
    ));
    let res = browser
        .get(format!("{sign_url}/page/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(renders(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_render_per_page_runs_however_many_ask_at_once() {
    let app = TestApp::start().await;
    let mut body = seed_body();
    body["document"]["content_base64"] = json!(b64(&unpreviewable_pdf()));
    let v = app.create(&body).await;
    let sign_url = v["signers"][0]["sign_url"].as_str().unwrap().to_string();
    let browser = http_builder().cookie_store(true).build().unwrap();
    assert_eq!(browser.get(&sign_url).send().await.unwrap().status(), 200);

    // Twenty requests for the same page at once: one render, its outcome for all.
    let loads: Vec<_> = (0..20)
        .map(|_| {
            let (browser, url) = (browser.clone(), format!("{sign_url}/page/1"));
            tokio::spawn(async move { browser.get(url).send().await.unwrap().status() })
        })
        .collect();
    for load in loads {
        assert_eq!(load.await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(app.service.metrics.preview_renders_total(), 1);
}

#[tokio::test]
async fn the_binary_serves_with_the_configured_limits() {
    let backend = crate::cli::Backend::new().await;
    let (server, _) = crate::cli::serve_with(&backend, &[("SIGNEUR_HEADER_TIMEOUT_SECS", "1")]);
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();

    // Headers that never end: the connection is closed once the configured second passed.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let opened = Instant::now();
    read_to_close(&mut stream, Duration::from_secs(10))
        .await
        .expect("closed by the header timeout");
    assert!(opened.elapsed() >= Duration::from_millis(500));

    // A signer form announced at 4 MB: 413 before the body is read.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /sign/some-token/sign HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4194304\r\n\r\na=b",
        )
        .await
        .unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(10))
        .await
        .expect("answered without the rest of the body");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn a_limit_of_zero_is_refused_at_start() {
    refused_at_start("SIGNEUR_MAX_CONCURRENT_REQUESTS", "0");
}

#[test]
fn a_timeout_over_an_hour_is_refused_at_start() {
    // u64::MAX seconds would overflow every request's deadline.
    refused_at_start("SIGNEUR_REQUEST_TIMEOUT_SECS", "18446744073709551615");
    refused_at_start("SIGNEUR_HEADER_TIMEOUT_SECS", "3601");
}

/// `signeur serve` with `name=value` fails, naming the variable, before creating anything.
fn refused_at_start(name: &str, value: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_signeur"))
        .arg("serve")
        .env("SIGNEUR_DATA_DIR", &data)
        .env("SIGNEUR_CONFIG", dir.path().join("none.toml"))
        .env("SIGNEUR_LISTEN", "127.0.0.1:0")
        .env(name, value)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that accepted the value would run until stopped: stop it after 20 s.
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{name}={value} was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(name), "{err}");
    assert!(!data.exists(), "refused before anything was created");
}
