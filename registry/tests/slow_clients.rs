//! Slow and greedy clients over real HTTP: a stalled body fails after
//! `http.timeouts.bodyidle`, a trickling one below `http.timeouts.bodyminrate`,
//! with the connection closed and the upload still resumable; more than
//! `http.limits.concurrentuploads` simultaneous upload bodies get 429
//! `TOOMANYREQUESTS` with `Retry-After`; one address holds at most
//! `http.limits.connectionsperclient` connections, and HTTP/2 connections
//! announce `http.limits.streamsperconnection`.

mod common;

use std::time::{Duration, Instant};

use common::expect::expect;
use common::raw::{RawBody, RawResponse, head, parse, read_all};
use common::*;
use registry::oci::Algorithm;
use reqwest::{Method, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

async fn start(extra_http: &str) -> TestRegistry {
    TestRegistry::start_with(|root| config_yaml(root, extra_http)).await
}

async fn session(registry: &TestRegistry, repo: &str) -> String {
    let response = registry
        .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Opens a connection and sends a request head that promises `length` body
/// bytes, then `sent` of them; the rest never comes unless the caller writes it.
async fn stalled(
    host: &str,
    method: &str,
    path: &str,
    length: usize,
    sent: &[u8],
    range: Option<String>,
) -> TcpStream {
    // Keep-alive: only the server deciding to close ends the connection.
    let mut headers = vec![
        ("Connection", "keep-alive".to_owned()),
        ("Content-Length", length.to_string()),
    ];
    if let Some(range) = range {
        headers.push(("Content-Range", range));
    }
    let mut stream = TcpStream::connect(host).await.unwrap();
    stream
        .write_all(&head(host, method, path, &headers, &RawBody::None))
        .await
        .unwrap();
    stream.write_all(sent).await.unwrap();
    stream
}

/// Reads the response; EOF within `bound` proves the server closed the connection.
async fn response_within(stream: &mut TcpStream, bound: Duration) -> RawResponse {
    let bytes = tokio::time::timeout(bound, read_all(stream))
        .await
        .expect("the server answers and closes the connection in time");
    parse(&bytes).expect("an HTTP response")
}

#[tokio::test]
async fn stalled_and_trickling_bodies_time_out_and_uploads_resume() {
    // The rate check off: this is about idleness alone.
    let registry = start("  timeouts:\n    bodyidle: 1s\n    bodyminrate: 0\n").await;
    let host = registry.host();
    let data = random_bytes(100);
    let digest = Algorithm::Sha256.digest_of(&data);
    let upload = session(&registry, "slow/app").await;

    // 10 bytes, then a trickle of one byte per 300ms (never idle for 1s), then a stall.
    let started = Instant::now();
    let mut stream = stalled(&host, "PATCH", &upload, 100, &data[..10], None).await;
    for byte in &data[10..15] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(std::slice::from_ref(byte)).await.unwrap();
    }
    let response = response_within(&mut stream, Duration::from_secs(10)).await;
    let elapsed = started.elapsed();
    expect("PATCH", &upload, 408, "BLOB_UPLOAD_INVALID").check(&response);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(
        elapsed >= Duration::from_millis(2400) && elapsed < Duration::from_secs(8),
        "timed out after {elapsed:?}: the trickle must keep it alive, the stall must not"
    );

    // What arrived was kept: the client resumes where the server says.
    let status = registry.get(&upload).await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(status.headers()["range"], "0-14");
    let resumed = registry
        .request(Method::PATCH, &upload)
        .header("content-range", "15-99")
        .body(data[15..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::ACCEPTED);
    let done = registry
        .request(Method::PUT, &format!("{upload}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::CREATED);

    // A monolithic upload whose body never starts fails too, leaving no blob.
    let lost = Algorithm::Sha256.digest_of(b"never sent");
    let path = format!("/v2/slow/app/blobs/uploads/?digest={lost}");
    let started = Instant::now();
    let mut stream = stalled(&host, "POST", &path, 10, b"", None).await;
    let response = response_within(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(response.status, 408);
    assert!(started.elapsed() < Duration::from_secs(8));
    let missing = registry.head(&format!("/v2/slow/app/blobs/{lost}")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The server is healthy and serves what was uploaded.
    assert_eq!(registry.get("/healthz").await.status(), StatusCode::OK);
    let blob = registry.get(&format!("/v2/slow/app/blobs/{digest}")).await;
    assert_eq!(blob.status(), StatusCode::OK);
    assert_eq!(blob.bytes().await.unwrap().as_ref(), data.as_slice());
}

#[tokio::test]
async fn a_body_trickling_below_the_minimum_rate_is_cut_off_and_resumes() {
    let registry = start("  timeouts:\n    bodyidle: 1s\n    bodyminrate: 1000\n").await;
    let host = registry.host();
    let data = random_bytes(4000);
    let digest = Algorithm::Sha256.digest_of(&data);
    let upload = session(&registry, "slow/trickle").await;

    // One byte every 100 ms: never idle for the 1s, but 10 bytes/s. Without a
    // minimum rate this holds an upload slot for the 400 s the body would take.
    let started = Instant::now();
    let mut stream = stalled(&host, "PATCH", &upload, data.len(), &data[..1], None).await;
    let trickle = {
        let bytes = data[1..40].to_vec();
        async move {
            for byte in bytes {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if stream.write_all(&[byte]).await.is_err() {
                    break;
                }
            }
            stream
        }
    };
    let mut stream = trickle.await;
    let response = response_within(&mut stream, Duration::from_secs(10)).await;
    let elapsed = started.elapsed();
    assert_eq!(
        response.status,
        408,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(
        String::from_utf8_lossy(&response.body).contains("below the minimum"),
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("connection"), Some("close"));
    assert!(
        elapsed < Duration::from_secs(8),
        "cut off after {elapsed:?}"
    );

    // What arrived was kept; the rest at a normal pace completes the blob.
    let status = registry.get(&upload).await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    let received: usize = status.headers()["range"].to_str().unwrap()[2..]
        .parse::<usize>()
        .unwrap()
        + 1;
    assert!((1..40).contains(&received), "{received} bytes kept");
    let resumed = registry
        .request(Method::PATCH, &upload)
        .header("content-range", format!("{received}-{}", data.len() - 1))
        .body(data[received..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::ACCEPTED);
    let done = registry
        .request(Method::PUT, &format!("{upload}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::CREATED);
    let blob = registry
        .get(&format!("/v2/slow/trickle/blobs/{digest}"))
        .await;
    assert_eq!(blob.bytes().await.unwrap().as_ref(), data.as_slice());
}

#[tokio::test]
async fn concurrent_upload_bodies_are_capped_with_429() {
    let registry = start("  limits:\n    concurrentuploads: 2\n").await;
    let host = registry.host();
    let first = session(&registry, "busy/app").await;
    let second = session(&registry, "busy/app").await;

    // Two uploads hold both slots with bodies that stall.
    let hogs = vec![
        stalled(&host, "PATCH", &first, 1000, b"abc", None).await,
        stalled(&host, "PATCH", &second, 1000, b"abc", None).await,
    ];
    let refused = eventually(
        "a third concurrent upload body refused",
        Duration::from_secs(30),
        async || {
            let third = session(&registry, "busy/app").await;
            let response = registry
                .request(Method::PATCH, &third)
                .header("content-range", "0-4")
                .body(b"hello".to_vec())
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                return Ok(response);
            }
            // The hogs were not admitted yet, so this one went through; retry.
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            Err(response.status())
        },
    )
    .await;
    assert_eq!(refused.headers()["retry-after"], "5");
    assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS").await;

    // Requests without an upload body are not limited.
    assert_eq!(registry.get("/v2/").await.status(), StatusCode::OK);
    let fourth = session(&registry, "busy/app").await;
    assert_eq!(registry.get(&fourth).await.status(), StatusCode::NO_CONTENT);

    // Once the hogs go away, their slots are free again.
    drop(hogs);
    eventually(
        "slots released when clients disconnect",
        Duration::from_secs(30),
        async || {
            let response = registry
                .request(Method::PATCH, &fourth)
                .header("content-range", "0-4")
                .body(b"hello".to_vec())
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::ACCEPTED {
                return Ok(());
            }
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            Err(response.status())
        },
    )
    .await;
}

/// A connection from `local` (a loopback address) to the registry.
async fn connect_from(local: &str, registry: &TestRegistry) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket
        .connect(registry.host().parse().unwrap())
        .await
        .unwrap()
}

/// `GET /v2/` on an open connection: the status, or `None` when the server
/// closed it without answering.
async fn ping(stream: &mut TcpStream, host: &str) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    let request = head(
        host,
        "GET",
        "/v2/",
        &[("Connection", "close".to_owned())],
        &RawBody::None,
    );
    if stream.write_all(&request).await.is_err() {
        return None;
    }
    let mut bytes = Vec::new();
    match tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await {
        Ok(_) => parse(&bytes).map(|r| r.status),
        Err(_) => panic!("no answer and no close within 10s"),
    }
}

#[tokio::test]
async fn one_address_holds_at_most_its_connections() {
    let registry = start("  limits:\n    connectionsperclient: 3\n").await;
    let host = registry.host();
    // Three idle connections (no request yet) are the client's whole share.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", &registry).await);
    }
    // The server accepts them in order; the fourth is closed unanswered.
    let mut fourth = connect_from("127.0.0.1", &registry).await;
    assert_eq!(
        ping(&mut fourth, &host).await,
        None,
        "a fourth connection is served"
    );
    // Another address is not affected.
    let mut other = connect_from("127.0.0.2", &registry).await;
    assert_eq!(ping(&mut other, &host).await, Some(200));
    // A held connection still works; once closed, its slot is free again.
    assert_eq!(ping(&mut held[0], &host).await, Some(200));
    drop(held.remove(0));
    let served = eventually(
        "a freed slot is reused",
        Duration::from_secs(30),
        async || {
            let mut stream = connect_from("127.0.0.1", &registry).await;
            ping(&mut stream, &host).await.ok_or("closed")
        },
    )
    .await;
    assert_eq!(served, 200);
}

#[tokio::test]
async fn http2_connections_announce_the_stream_limit() {
    use tokio::io::AsyncReadExt;
    let registry = start("  limits:\n    streamsperconnection: 7\n").await;
    let mut stream = TcpStream::connect(registry.host()).await.unwrap();
    // HTTP/2 with prior knowledge: the preface, then an empty SETTINGS frame.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    stream.write_all(&hello).await.unwrap();
    // The server's first frame is its SETTINGS: 6-byte (id, value) entries.
    let mut header = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut header))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(header[3], 4, "a SETTINGS frame first: {header:?}");
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await.unwrap();
    let max_streams = payload
        .chunks(6)
        .find(|entry| u16::from_be_bytes([entry[0], entry[1]]) == 3)
        .map(|entry| u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]));
    assert_eq!(max_streams, Some(7), "SETTINGS_MAX_CONCURRENT_STREAMS");
}
