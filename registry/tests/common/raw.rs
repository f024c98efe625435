//! A raw HTTP/1.1 client over TCP for requests well-behaved clients refuse
//! to send: unnormalized paths (`..`), lying length headers, stalled bodies.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How a request body is framed on the wire.
#[derive(Debug, Clone)]
pub enum RawBody {
    /// No body and no length header.
    None,
    /// `Content-Length` framing.
    Fixed(Vec<u8>),
    /// `Transfer-Encoding: chunked`, one chunk per element.
    Chunked(Vec<Vec<u8>>),
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first spec error code of the JSON body, if any.
    pub fn code(&self) -> Option<String> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        body["errors"][0]["code"].as_str().map(str::to_owned)
    }
}

/// The request head (request line and headers, ending in the blank line).
pub fn head(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &RawBody,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    // One request per connection, unless the caller decides (e.g. to see the server close it).
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        head.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match body {
        RawBody::None => {}
        RawBody::Fixed(bytes) => head.push_str(&format!("Content-Length: {}\r\n", bytes.len())),
        RawBody::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn encode_body(body: &RawBody) -> Vec<u8> {
    match body {
        RawBody::None => Vec::new(),
        RawBody::Fixed(bytes) => bytes.clone(),
        RawBody::Chunked(chunks) => {
            let mut out = Vec::new();
            for chunk in chunks.iter().filter(|c| !c.is_empty()) {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
    }
}

/// Sends one request on a fresh connection and reads the response. The body
/// is written concurrently with reading, because the server may answer (and
/// close) before it has read everything, e.g. with 413.
pub async fn send(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: RawBody,
) -> RawResponse {
    let stream = TcpStream::connect(host).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let mut wire = head(host, method, path, headers, &body);
    wire.extend(encode_body(&body));
    let writing = tokio::spawn(async move {
        // Errors are expected when the server answers early and closes.
        let _ = writer.write_all(&wire).await;
        let _ = writer.flush().await;
        writer
    });
    let response = tokio::time::timeout(Duration::from_secs(30), read_all(&mut reader))
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no response within 30s"));
    drop(writing.await);
    parse(&response).unwrap_or_else(|| panic!("{method} {path}: unparsable response"))
}

/// Reads until EOF or a connection error, keeping what arrived.
pub async fn read_all(reader: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Parses a complete HTTP/1.1 response (the first one in `bytes`).
pub fn parse(bytes: &[u8]) -> Option<RawResponse> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut response = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &bytes[end + 4..];
    response.body = if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        decode_chunked(rest)
    } else {
        let len = response
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(rest.len());
        rest[..len.min(rest.len())].to_vec()
    };
    Some(response)
}

fn decode_chunked(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        rest = &rest[line_end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[(size + 2).min(rest.len())..];
    }
    out
}
