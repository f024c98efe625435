//! Expected answers to raw requests: `expect(method, path, status, code)`
//! builds a request with the status and spec error code it must get, sent
//! alone (`.send(&host)`) or as a table (`expect_all`), so error-path tests
//! read as a list of cases rather than request-then-assert blocks.

use super::raw::{RawBody, RawResponse, send};

/// One request and what the registry must answer.
#[derive(Debug)]
pub struct Expect {
    pub method: &'static str,
    pub path: String,
    headers: Vec<(&'static str, String)>,
    body: RawBody,
    status: u16,
    /// The spec error code, or `None` for a (deliberately) successful step.
    code: Option<String>,
}

/// A request that must be answered `status` with the spec error `code`; an
/// empty `code` checks the status alone (a success step between errors).
pub fn expect(method: &'static str, path: impl Into<String>, status: u16, code: &str) -> Expect {
    Expect {
        method,
        path: path.into(),
        headers: Vec::new(),
        body: RawBody::None,
        status,
        code: (!code.is_empty()).then(|| code.to_owned()),
    }
}

impl Expect {
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A `Content-Length` framed body.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = RawBody::Fixed(bytes.into());
        self
    }

    /// A `Transfer-Encoding: chunked` body (one chunk), so no length is known up front.
    pub fn chunked(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = RawBody::Chunked(vec![bytes.into()]);
        self
    }

    /// A manifest body with its `Content-Type`.
    pub fn manifest(self, media_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", media_type).body(bytes)
    }

    /// Sends the request on a fresh connection to `host`, asserts the answer
    /// and returns it for any further checks.
    pub async fn send(self, host: &str) -> RawResponse {
        let label = self.label();
        self.send_as(host, &label).await
    }

    /// Asserts a response obtained some other way (e.g. from a stalled
    /// connection) against this expectation.
    pub fn check(&self, response: &RawResponse) {
        self.check_as(response, &self.label());
    }

    fn label(&self) -> String {
        // Some paths are megabytes of hostile input: keep failure messages readable.
        format!("{} {:.120}", self.method, self.path)
    }

    async fn send_as(mut self, host: &str, label: &str) -> RawResponse {
        let body = std::mem::replace(&mut self.body, RawBody::None);
        let response = send(host, self.method, &self.path, &self.headers, body).await;
        self.check_as(&response, label);
        response
    }

    fn check_as(&self, response: &RawResponse, label: &str) {
        assert_eq!(
            response.status,
            self.status,
            "{label}: body {}",
            String::from_utf8_lossy(&response.body)
        );
        if let Some(code) = &self.code {
            assert_eq!(response.code().as_deref(), Some(code.as_str()), "{label}");
        }
    }
}

/// Sends each row in order (later rows may depend on earlier ones, e.g. an
/// upload session's offset), labelling failures with the row's index.
pub async fn expect_all(host: &str, rows: Vec<Expect>) {
    for (i, row) in rows.into_iter().enumerate() {
        let label = format!("row {i}: {}", row.label());
        row.send_as(host, &label).await;
    }
}
