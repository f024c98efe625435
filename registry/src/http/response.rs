//! Small helpers for building API responses and reading request bodies.

use std::io;

use axum::body::Body;
use axum::response::Response;
use futures_util::{Stream, TryStreamExt};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::error::{Error, Result};
use crate::oci::Digest;

pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub const OCI_TAG: HeaderName = HeaderName::from_static("oci-tag");
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");
pub const RANGE: HeaderName = HeaderName::from_static("range");

/// A header value from text the registry produced (digests, paths, numbers).
pub fn header_value(text: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(text)
        .map_err(|_| Error::Internal(format!("invalid header value {text:?}")))
}

/// Builds a response with headers and a body.
pub fn respond(
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Body,
) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let map = response.headers_mut();
    for (name, value) in headers {
        map.insert(name, value);
    }
    response
}

/// A body-less response with `Content-Length: 0`.
pub fn empty(status: StatusCode, mut headers: Vec<(HeaderName, HeaderValue)>) -> Response {
    headers.push((CONTENT_LENGTH, HeaderValue::from_static("0")));
    respond(status, headers, Body::empty())
}

/// A JSON response.
pub fn json(
    status: StatusCode,
    value: &impl serde::Serialize,
    extra: Vec<(HeaderName, HeaderValue)>,
) -> Result<Response> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Internal(e.to_string()))?;
    let mut headers = vec![
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (CONTENT_LENGTH, HeaderValue::from(bytes.len())),
    ];
    headers.extend(extra);
    Ok(respond(status, headers, Body::from(bytes)))
}

/// `Location` + `Docker-Content-Digest` for a committed blob or manifest.
pub fn created_at(location: &str, digest: &Digest) -> Result<Vec<(HeaderName, HeaderValue)>> {
    Ok(vec![
        (LOCATION, header_value(location)?),
        (DOCKER_CONTENT_DIGEST, header_value(&digest.to_string())?),
    ])
}

/// The request body as a stream of byte chunks.
pub fn body_stream(body: Body) -> impl Stream<Item = io::Result<bytes::Bytes>> + Send + Unpin {
    body.into_data_stream().map_err(io::Error::other)
}

/// The declared `Content-Length`, if any.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>> {
    match headers.get(CONTENT_LENGTH) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| Error::SizeInvalid("invalid Content-Length".into())),
    }
}

/// All values of a header as strings (invalid UTF-8 values are skipped).
pub fn header_strings<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}
