//! end-12: GET `/v2/<name>/referrers/<digest>` — an image index of the
//! manifests whose `subject` is the digest; never 404. At most
//! [`REFERRERS_PAGE`] descriptors per response (fewer with `n`), with a
//! `Link: <...>; rel="next"` header (as the spec allows) when more remain.

use axum::response::Response;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use serde_json::json;

use super::listing::{link_header, parse_n};
use super::query::Query;
use super::response::{OCI_FILTERS_APPLIED, json};
use crate::content::REFERRERS_PAGE;
use crate::error::{Error, Result};
use crate::oci::media_type::OCI_INDEX;
use crate::oci::{Digest, RepositoryName};
use crate::state::AppState;

pub async fn list(
    state: &AppState,
    name: &RepositoryName,
    subject: &Digest,
    query: &Query,
) -> Result<Response> {
    let artifact_type = query.get("artifactType");
    // `n` (as for tags) asks for smaller pages; larger ones are capped.
    let n = parse_n(query)?.map_or(REFERRERS_PAGE, |n| n.min(REFERRERS_PAGE));
    let last = query
        .get("last")
        .map(|last| {
            last.parse::<Digest>().map_err(|_| {
                Error::PaginationInvalid(format!("last must be a digest, got {last:?}"))
            })
        })
        .transpose()?;
    let page = state
        .content
        .referrers(name, subject, artifact_type, last.as_ref(), n)
        .await?;
    let mut headers = vec![(CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX))];
    if artifact_type.is_some() {
        headers.push((
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        ));
    }
    if let Some(next) = &page.next {
        let filter: Vec<(&str, &str)> = artifact_type
            .map(|t| ("artifactType", t))
            .into_iter()
            .collect();
        let path = format!("/v2/{name}/referrers/{subject}");
        headers.push(link_header(&path, n, &next.to_string(), &filter)?);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": page.manifests,
    });
    json(StatusCode::OK, &index, headers)
}
