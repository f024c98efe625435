//! Upload endpoints: end-4a/4b (POST), end-11 (mount), end-5 (PATCH),
//! end-6 (PUT), end-13 (status) and cancel (DELETE).

use axum::body::Body;
use axum::response::Response;
use http::header::LOCATION;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body::Body as _;

use super::query::Query;
use super::response::{
    DOCKER_UPLOAD_UUID, RANGE, body_stream, content_length, created_at, empty, header_value,
};
use crate::content::{UploadId, upload_location};
use crate::error::{Error, Result};
use crate::metrics::InProgress;
use crate::oci::{Algorithm, Digest, RepositoryName};
use crate::state::AppState;

/// Headers describing an open upload session.
fn session_headers(
    name: &RepositoryName,
    id: &UploadId,
    size: u64,
) -> Result<Vec<(HeaderName, HeaderValue)>> {
    Ok(vec![
        (LOCATION, header_value(&upload_location(name, id))?),
        (
            RANGE,
            header_value(&format!("0-{}", size.saturating_sub(1)))?,
        ),
        (DOCKER_UPLOAD_UUID, header_value(id.as_str())?),
    ])
}

fn blob_location(name: &RepositoryName, digest: &Digest) -> String {
    format!("/v2/{name}/blobs/{digest}")
}

fn query_digest(query: &Query, key: &str) -> Result<Option<Digest>> {
    query
        .get(key)
        .map(|text| {
            text.parse()
                .map_err(|e: crate::oci::DigestError| Error::DigestInvalid(e.to_string()))
        })
        .transpose()
}

/// end-4a/4b/11: POST `/v2/<name>/blobs/uploads/`.
pub async fn start(
    state: &AppState,
    name: &RepositoryName,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    if let Some(digest) = query_digest(query, "mount")? {
        // An unusable `from` only means "no mount": fall back to a session (spec).
        let from = query
            .get("from")
            .and_then(|f| f.parse::<RepositoryName>().ok());
        let usable_from = query.get("from").is_none() || from.is_some();
        if usable_from
            && state
                .content
                .mount_blob(name, &digest, from.as_ref())
                .await?
        {
            return Ok(empty(
                StatusCode::CREATED,
                created_at(&blob_location(name, &digest), &digest)?,
            ));
        }
    } else if let Some(digest) = query_digest(query, "digest")? {
        let _uploading = InProgress::start(&state.metrics.uploads_in_progress);
        let declared = content_length(headers)?;
        state
            .content
            .upload_whole(name, &digest, declared, body_stream(body))
            .await?;
        return Ok(empty(
            StatusCode::CREATED,
            created_at(&blob_location(name, &digest), &digest)?,
        ));
    }
    if let Some(algorithm) = query.get("digest-algorithm") {
        Algorithm::parse(algorithm).map_err(|e| Error::DigestInvalid(e.to_string()))?;
    }
    let id = state.content.start_upload(name).await?;
    Ok(empty(StatusCode::ACCEPTED, session_headers(name, &id, 0)?))
}

/// end-13: GET `/v2/<name>/blobs/uploads/<id>`.
pub async fn status(state: &AppState, name: &RepositoryName, id: &UploadId) -> Result<Response> {
    let size = state.content.upload_size(name, id).await?;
    Ok(empty(
        StatusCode::NO_CONTENT,
        session_headers(name, id, size)?,
    ))
}

/// end-5: PATCH `/v2/<name>/blobs/uploads/<id>` — a chunk (with
/// `Content-Range`) or a streamed upload (without).
pub async fn patch(
    state: &AppState,
    name: &RepositoryName,
    id: &UploadId,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let size = append(state, name, id, headers, body).await?;
    Ok(empty(
        StatusCode::ACCEPTED,
        session_headers(name, id, size)?,
    ))
}

/// end-6: PUT `/v2/<name>/blobs/uploads/<id>?digest=` — optional last chunk, then commit.
pub async fn complete(
    state: &AppState,
    name: &RepositoryName,
    id: &UploadId,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let digest = query_digest(query, "digest")?
        .ok_or_else(|| Error::DigestInvalid("the digest query parameter is required".into()))?;
    if body.size_hint().exact() != Some(0) {
        append(state, name, id, headers, body).await?;
    }
    state.content.complete_upload(name, id, &digest).await?;
    Ok(empty(
        StatusCode::CREATED,
        created_at(&blob_location(name, &digest), &digest)?,
    ))
}

/// Cancel: DELETE `/v2/<name>/blobs/uploads/<id>`.
pub async fn cancel(state: &AppState, name: &RepositoryName, id: &UploadId) -> Result<Response> {
    state.content.cancel_upload(name, id).await?;
    Ok(empty(StatusCode::NO_CONTENT, vec![]))
}

/// Appends a request body to a session, honouring `Content-Range` and `Content-Length`.
async fn append(
    state: &AppState,
    name: &RepositoryName,
    id: &UploadId,
    headers: &HeaderMap,
    body: Body,
) -> Result<u64> {
    let declared_length = content_length(headers)?;
    let range = headers
        .get(http::header::CONTENT_RANGE)
        .map(|value| parse_content_range(value.to_str().unwrap_or_default()))
        .transpose()?;
    let declared = match (range, declared_length) {
        (Some((start, end)), Some(length)) if end - start + 1 != length => {
            return Err(Error::SizeInvalid(format!(
                "Content-Range {start}-{end} does not match Content-Length {length}"
            )));
        }
        (Some((start, end)), _) => Some(end - start + 1),
        (None, length) => length,
    };
    let _uploading = InProgress::start(&state.metrics.uploads_in_progress);
    state
        .content
        .append_upload(
            name,
            id,
            range.map(|(start, _)| start),
            declared,
            body_stream(body),
        )
        .await
}

/// Parses an upload `Content-Range` (`<start>-<end>`, inclusive). Also
/// accepts the `bytes ` / `bytes=` prefixed and `/<total>` suffixed forms some clients send.
fn parse_content_range(value: &str) -> Result<(u64, u64)> {
    let invalid = || Error::BlobUploadInvalid(format!("invalid Content-Range {value:?}"));
    let trimmed = value.trim();
    let spec = trimmed
        .strip_prefix("bytes")
        .map(|rest| rest.trim_start_matches(['=', ' ']))
        .unwrap_or(trimmed);
    let spec = spec.split('/').next().unwrap_or_default();
    let (start, end) = spec.split_once('-').ok_or_else(invalid)?;
    let start = start.trim().parse::<u64>().map_err(|_| invalid())?;
    let end = end.trim().parse::<u64>().map_err(|_| invalid())?;
    // The chunk length `end - start + 1` must fit in a u64.
    if end < start || end == u64::MAX {
        return Err(invalid());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_ranges() {
        assert_eq!(parse_content_range("0-99").unwrap(), (0, 99));
        assert_eq!(parse_content_range("bytes 100-199/*").unwrap(), (100, 199));
        assert_eq!(parse_content_range("bytes=5-5").unwrap(), (5, 5));
        for bad in ["", "5", "a-b", "9-1", "-1-2", "0-18446744073709551615"] {
            assert!(parse_content_range(bad).is_err(), "{bad}");
        }
    }
}
