//! end-12: GET `/v2/<name>/referrers/<digest>` — an image index of the
//! manifests whose `subject` is the digest; never 404. At most
//! [`REFERRERS_PAGE`] descriptors per response, with a `Link: <...>;
//! rel="next"` header (as the spec allows) when more remain.

use axum::response::Response;
use http::header::{CONTENT_TYPE, LINK};
use http::{HeaderValue, StatusCode};
use percent_encoding::utf8_percent_encode;
use serde_json::json;

use super::listing::QUERY_VALUE;
use super::query::Query;
use super::response::{OCI_FILTERS_APPLIED, header_value, json};
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
        .referrers(name, subject, artifact_type, last.as_ref(), REFERRERS_PAGE)
        .await?;
    let mut headers = vec![(CONTENT_TYPE, HeaderValue::from_static(OCI_INDEX))];
    if let Some(artifact_type) = artifact_type {
        headers.push((
            OCI_FILTERS_APPLIED,
            HeaderValue::from_static("artifactType"),
        ));
        if let Some(next) = &page.next {
            let filter = utf8_percent_encode(artifact_type, QUERY_VALUE);
            headers.push((
                LINK,
                header_value(&format!(
                    "</v2/{name}/referrers/{subject}?last={next}&artifactType={filter}>; rel=\"next\""
                ))?,
            ));
        }
    } else if let Some(next) = &page.next {
        headers.push((
            LINK,
            header_value(&format!(
                "</v2/{name}/referrers/{subject}?last={next}>; rel=\"next\""
            ))?,
        ));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": page.manifests,
    });
    json(StatusCode::OK, &index, headers)
}
