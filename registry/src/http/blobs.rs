//! Blob endpoints: end-2 (GET/HEAD with `Range`) and end-10 (DELETE).

use axum::body::Body;
use axum::response::Response;
use http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LOCATION,
};
use http::{HeaderMap, HeaderValue, StatusCode};

use super::response::{DOCKER_CONTENT_DIGEST, empty, header_value, respond};
use crate::error::{Error, Result};
use crate::oci::{Digest, RepositoryName};
use crate::state::AppState;

/// end-2: GET/HEAD `/v2/<name>/blobs/<digest>`.
pub async fn get(
    state: &AppState,
    name: &RepositoryName,
    digest: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response> {
    let size = state.content.blob_meta(name, digest).await?.size;
    if !head
        && state.settings.redirect_blobs
        && let Some(url) = state.content.blob_url(digest, &http::Method::GET).await?
    {
        // HEAD is answered here (cheap, and keeps Docker-Content-Digest);
        // the bytes come from the object store.
        return Ok(respond(
            StatusCode::TEMPORARY_REDIRECT,
            vec![
                (LOCATION, header_value(&url)?),
                (DOCKER_CONTENT_DIGEST, header_value(&digest.to_string())?),
            ],
            Body::empty(),
        ));
    }
    let range = if head {
        None
    } else {
        headers
            .get(http::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_range(v, size).transpose())
            .transpose()?
    };
    let (status, offset, len) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut response_headers = vec![
        (
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (CONTENT_LENGTH, HeaderValue::from(len)),
        (DOCKER_CONTENT_DIGEST, header_value(&digest.to_string())?),
        (ETAG, header_value(&format!("\"{digest}\""))?),
        (ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        // Content-addressed data never changes.
        (CACHE_CONTROL, HeaderValue::from_static("max-age=31536000")),
    ];
    if status == StatusCode::PARTIAL_CONTENT {
        response_headers.push((
            CONTENT_RANGE,
            header_value(&format!("bytes {}-{}/{size}", offset, offset + len - 1))?,
        ));
    }
    let body = if head || len == 0 {
        Body::empty()
    } else {
        Body::from_stream(state.content.read_blob(digest, offset, len).await?)
    };
    Ok(respond(status, response_headers, body))
}

/// end-10: DELETE `/v2/<name>/blobs/<digest>` unlinks the blob from the repository.
pub async fn delete(state: &AppState, name: &RepositoryName, digest: &Digest) -> Result<Response> {
    state.content.delete_blob(name, digest).await?;
    Ok(empty(StatusCode::ACCEPTED, vec![]))
}

/// Parses a single `bytes=` range against a blob of `size` bytes into
/// inclusive `(start, end)`. Syntax it does not understand (or several
/// ranges) is ignored, as HTTP allows; an unsatisfiable range is an error.
fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = Error::RangeNotSatisfiable { size };
    let parsed = match (start.trim(), end.trim()) {
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return Err(unsatisfiable),
            Ok(n) if size > 0 => (size.saturating_sub(n), size - 1),
            Ok(_) => return Err(unsatisfiable),
            Err(_) => return Ok(None),
        },
        (start, "") => match start.parse::<u64>() {
            Ok(start) if start < size => (start, size - 1),
            Ok(_) => return Err(unsatisfiable),
            Err(_) => return Ok(None),
        },
        (start, end) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(start), Ok(end)) if start <= end && start < size => (start, end.min(size - 1)),
            (Ok(start), Ok(end)) if start <= end => return Err(unsatisfiable),
            _ => return Ok(None),
        },
    };
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range("bytes=95-200", 100).unwrap(), Some((95, 99)));
        assert_eq!(parse_range("bytes=-200", 100).unwrap(), Some((0, 99)));
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=9-0", 100).unwrap(), None);
        assert!(parse_range("bytes=100-", 100).is_err());
        assert!(parse_range("bytes=100-200", 100).is_err());
        assert!(parse_range("bytes=0-", 0).is_err());
        assert!(parse_range("bytes=-0", 100).is_err());
    }
}
