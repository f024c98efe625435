//! Manifest endpoints: end-3 (GET/HEAD), end-7 (PUT), end-9 (DELETE).

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::query::Query;
use super::response::{
    DOCKER_CONTENT_DIGEST, OCI_SUBJECT, OCI_TAG, created_at, empty, header_strings, header_value,
    respond,
};
use crate::content::StoredManifest;
use crate::error::{Error, Result};
use crate::oci::manifest::MAX_MANIFEST_BYTES;
use crate::oci::media_type::{self, Negotiated};
use crate::oci::{Manifest, Reference, RepositoryName, Tag};
use crate::state::AppState;

/// end-3: GET/HEAD `/v2/<name>/manifests/<reference>`.
pub async fn get(
    state: &AppState,
    name: &RepositoryName,
    reference: &Reference,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response> {
    let mut stored = state.content.get_manifest(name, reference).await?;
    let accept = header_strings(headers, &ACCEPT);
    let by_tag = matches!(reference, Reference::Tag(_));
    match media_type::negotiate(&accept, &stored.media_type, by_tag) {
        Negotiated::Stored => {}
        Negotiated::DefaultPlatform => {
            stored = default_platform_image(state, name, &stored).await?;
            if stored.media_type == media_type::DOCKER_MANIFEST
                && !media_type::accepts(&accept, &stored.media_type)
            {
                return Err(Error::ManifestInvalid(
                    "Schema 2 manifest not supported by client".into(),
                ));
            }
        }
        Negotiated::NotAcceptable => {
            return Err(Error::ManifestNotAcceptable {
                media_type: stored.media_type,
                accept: accept.join(", "),
            });
        }
    }
    let etag = format!("\"{}\"", stored.digest);
    let mut response_headers = vec![
        (
            DOCKER_CONTENT_DIGEST,
            header_value(&stored.digest.to_string())?,
        ),
        (ETAG, header_value(&etag)?),
    ];
    let not_modified = header_strings(headers, &IF_NONE_MATCH)
        .iter()
        .any(|value| value.split(',').any(|tag| tag.trim() == etag));
    if not_modified {
        return Ok(respond(
            StatusCode::NOT_MODIFIED,
            response_headers,
            Body::empty(),
        ));
    }
    response_headers.push((CONTENT_TYPE, header_value(&stored.media_type)?));
    response_headers.push((CONTENT_LENGTH, HeaderValue::from(stored.bytes.len())));
    let body = if head {
        Body::empty()
    } else {
        Body::from(stored.bytes)
    };
    Ok(respond(StatusCode::OK, response_headers, body))
}

/// The linux/amd64 image of a stored manifest list (served to clients that
/// do not accept lists), or `MANIFEST_UNKNOWN` when it has none.
async fn default_platform_image(
    state: &AppState,
    name: &RepositoryName,
    list: &StoredManifest,
) -> Result<StoredManifest> {
    let (os, architecture) = media_type::DEFAULT_PLATFORM;
    let child = Manifest::parse_stored(&list.bytes)?
        .manifests
        .into_iter()
        .find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.get("os").and_then(|v| v.as_str()) == Some(os)
                    && p.get("architecture").and_then(|v| v.as_str()) == Some(architecture)
            })
        })
        .ok_or_else(|| {
            Error::ManifestUnknown(format!("{} has no {os}/{architecture} image", list.digest))
        })?;
    state
        .content
        .get_manifest(name, &Reference::Digest(child.digest))
        .await
}

/// Most `?tag=` parameters accepted on one manifest push.
pub const MAX_TAGS_PER_PUSH: usize = 64;

/// end-7: PUT `/v2/<name>/manifests/<reference>`, and end-7b
/// `PUT /v2/<name>/manifests/<digest>?tag=a&tag=b` (tags echoed in `OCI-Tag`).
pub async fn put(
    state: &AppState,
    name: &RepositoryName,
    reference: &Reference,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let query_tags = query
        .all("tag")
        .map(|tag| tag.parse::<Tag>().map_err(Error::from))
        .collect::<Result<Vec<_>>>()?;
    if query_tags.len() > MAX_TAGS_PER_PUSH {
        return Err(Error::ManifestInvalid(format!(
            "at most {MAX_TAGS_PER_PUSH} tag parameters per push"
        )));
    }
    let mut tags = query_tags.clone();
    if let Reference::Tag(tag) = reference
        && !tags.contains(tag)
    {
        tags.insert(0, tag.clone());
    }
    let bytes = read_manifest_body(headers, body).await?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let pushed = state
        .content
        .put_manifest(
            name,
            reference,
            &tags,
            bytes,
            content_type,
            &state.settings.manifest_validation,
        )
        .await?;
    let location = format!("/v2/{name}/manifests/{}", pushed.digest);
    let mut response_headers = created_at(&location, &pushed.digest)?;
    if let Some(subject) = &pushed.subject {
        response_headers.push((OCI_SUBJECT, header_value(&subject.to_string())?));
    }
    if !query_tags.is_empty() {
        let applied: Vec<&str> = query_tags.iter().map(Tag::as_str).collect();
        response_headers.push((OCI_TAG, header_value(&applied.join(", "))?));
    }
    Ok(empty(StatusCode::CREATED, response_headers))
}

/// end-9: DELETE `/v2/<name>/manifests/<reference>` (a tag, or a digest and its tags).
pub async fn delete(
    state: &AppState,
    name: &RepositoryName,
    reference: &Reference,
) -> Result<Response> {
    state.content.delete_manifest(name, reference).await?;
    Ok(empty(StatusCode::ACCEPTED, vec![]))
}

/// Reads a manifest body, refusing anything over the size limit with 413.
async fn read_manifest_body(headers: &HeaderMap, body: Body) -> Result<Bytes> {
    let too_large = Error::ManifestTooLarge {
        limit: MAX_MANIFEST_BYTES,
    };
    if let Some(length) = super::response::content_length(headers)?
        && length > MAX_MANIFEST_BYTES as u64
    {
        return Err(too_large);
    }
    match Limited::new(body, MAX_MANIFEST_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large),
        Err(e) => Err(Error::ManifestInvalid(format!(
            "reading the manifest failed: {e}"
        ))),
    }
}
